// Portable C++ micro-kernel (any CPU; the compiler vectorises the NR loop): up to 4 x 16.
// Contract: kernels.h.
#include <utility>

#include "cpu/gemm/kernels.h"

namespace forgeml::gemm::detail {
namespace {

constexpr int MR = 4, NR = 16;
constexpr int kMC = 512, kKC = 256, kNC = 512;  // conservative: unknown caches

// sgemm_portable_<M>x16; RowA: op(A)(i, k) = a[i * as + k], else a[k * as + i].
template <int M, bool RowA>
void sgemm_portable(int64_t kc, const float* a, int64_t as, const float* b, int64_t bs, float* c, int64_t ldc,
                    float alpha, float beta, int m, int n) {
  (void)m;
  float acc[M][NR] = {};
  float bk[NR] = {};
  for (int64_t k = 0; k < kc; ++k, b += bs) {
    for (int j = 0; j < n; ++j) bk[j] = b[j];
    for (int i = 0; i < M; ++i) {
      const float ai = RowA ? a[i * as + k] : a[k * as + i];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * bk[j];
    }
  }
  for (int i = 0; i < M; ++i, c += ldc) {
    if (beta == 0.f)
      for (int j = 0; j < n; ++j) c[j] = alpha * acc[i][j];
    else
      for (int j = 0; j < n; ++j) c[j] = alpha * acc[i][j] + beta * c[j];
  }
}

template <int... I>
void fill(Kernel& k, std::integer_sequence<int, I...>) {
  for (int narrow = 0; narrow < 2; ++narrow) {
    ((k.tile[narrow][0][I + 1] = sgemm_portable<I + 1, false>), ...);
    ((k.tile[narrow][1][I + 1] = sgemm_portable<I + 1, true>), ...);
  }
}

}  // namespace

void kernel_portable(Kernel& k) {
  k = Kernel{};
  fill(k, std::make_integer_sequence<int, MR>{});
  k.mr = MR;
  k.nr = NR;
  k.mc = kMC;
  k.kc = kKC;
  k.nc = kNC;
  k.act = activation_scalar;
  k.bias_act = bias_act_scalar;
  k.name = "sgemm_portable_4x16";
}

}  // namespace forgeml::gemm::detail
