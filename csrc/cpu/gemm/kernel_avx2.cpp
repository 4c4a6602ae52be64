// AVX2 + FMA micro-kernel: 6 x 16 (12 ymm accumulators, 2 for B, 1 broadcast). Contract: kernels.h.
#include "cpu/gemm/kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace forgeml::gemm::detail {
namespace {

// sgemm_avx2_MRx(8*NV)
template <int MR, int NV>
void sgemm_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float beta, int m, int n) {
  constexpr int NR = 8 * NV;
  __m256 acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_setzero_ps();
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k, a += MR, b += NR) {
    __m256 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm256_load_ps(b + 8 * v);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      __m256 ai = _mm256_broadcast_ss(a + i);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
    }
  }
  if (m == MR && n == NR) {
    const __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        float* p = c + i * ldc + 8 * v;
        _mm256_storeu_ps(p, beta == 0.f ? acc[i][v] : _mm256_fmadd_ps(vb, _mm256_loadu_ps(p), acc[i][v]));
      }
    }
    return;
  }
  alignas(32) float tile[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) _mm256_store_ps(&tile[i][8 * v], acc[i][v]);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.f ? tile[i][j] : tile[i][j] + beta * c[i * ldc + j];
}

}  // namespace

bool kernel_avx2(Kernel& k) {
  k = Kernel{sgemm_avx2<6, 2>, 6, 16, 768, 256, 512, activation_scalar, "sgemm_avx2_6x16"};
  return true;
}

}  // namespace forgeml::gemm::detail

#else
namespace forgeml::gemm::detail {
bool kernel_avx2(Kernel&) { return false; }
}  // namespace forgeml::gemm::detail
#endif
