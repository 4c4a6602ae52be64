// Portable C++ micro-kernel (any CPU; the compiler vectorises the NR loop). Contract: kernels.h.
#include "cpu/gemm/kernels.h"

namespace forgeml::gemm::detail {
namespace {

// sgemm_portable_MRxNR
template <int MR, int NR>
void sgemm_portable(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float beta, int m, int n) {
  float acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k, a += MR, b += NR)
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
  for (int i = 0; i < m; ++i, c += ldc) {
    if (beta == 0.f)
      for (int j = 0; j < n; ++j) c[j] = acc[i][j];
    else
      for (int j = 0; j < n; ++j) c[j] = acc[i][j] + beta * c[j];
  }
}

}  // namespace

void kernel_portable(Kernel& k) {
  k = Kernel{sgemm_portable<4, 16>, 4, 16, 512, 256, 512, activation_scalar, "sgemm_portable_4x16"};
}

}  // namespace forgeml::gemm::detail
