// AVX2 + FMA micro-kernel: up to 6 x 16 (12 ymm accumulators, 2 for B, 1 broadcast), one
// instantiation per row count; N edges use masked loads and a scalar store. Contract: kernels.h.
#include "cpu/gemm/kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <utility>

namespace forgeml::gemm::detail {
namespace {

constexpr int MR = 6, NV = 2, NR = 8 * NV;
constexpr int kMC = 768, kKC = 256, kNC = 256;  // A panel 6 KiB in L1, B block 256 KiB: half of a Zen 2 L2

// sgemm_avx2_<M>x16; RowA: op(A)(i, k) = a[i * as + k], else a[k * as + i]. Full: n == NR,
// plain loads and stores (15 of the 16 ymm registers in use); else masked ones.
template <int M, bool RowA, bool Full>
void tile(int64_t kc, const float* a, int64_t as, const float* b, int64_t bs, float* c, int64_t ldc, float alpha,
          float beta, int n) {
  __m256i mask[NV];
  for (int v = 0; v < NV; ++v)
    mask[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8 * v), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  __m256 acc[M][NV];
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_setzero_ps();
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k, b += bs) {
    __m256 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = Full ? _mm256_loadu_ps(b + 8 * v) : _mm256_maskload_ps(b + 8 * v, mask[v]);
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      __m256 ai = _mm256_broadcast_ss(RowA ? a + i * as + k : a + k * as + i);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
    }
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      float* p = c + i * ldc + 8 * v;
      __m256 r = _mm256_mul_ps(va, acc[i][v]);
      if (Full) {
        if (beta != 0.f) r = _mm256_fmadd_ps(vb, _mm256_loadu_ps(p), r);
        _mm256_storeu_ps(p, r);
      } else {
        if (beta != 0.f) r = _mm256_fmadd_ps(vb, _mm256_maskload_ps(p, mask[v]), r);
        _mm256_maskstore_ps(p, mask[v], r);
      }
    }
  }
}

template <int M, bool RowA>
void sgemm_avx2(int64_t kc, const float* a, int64_t as, const float* b, int64_t bs, float* c, int64_t ldc,
                float alpha, float beta, int, int n) {
  if (n == NR) tile<M, RowA, true>(kc, a, as, b, bs, c, ldc, alpha, beta, n);
  else tile<M, RowA, false>(kc, a, as, b, bs, c, ldc, alpha, beta, n);
}

template <int... I>
void fill(Kernel& k, std::integer_sequence<int, I...>) {
  for (int narrow = 0; narrow < 2; ++narrow) {
    ((k.tile[narrow][0][I + 1] = sgemm_avx2<I + 1, false>), ...);
    ((k.tile[narrow][1][I + 1] = sgemm_avx2<I + 1, true>), ...);
  }
}

}  // namespace

bool kernel_avx2(Kernel& k) {
  k = Kernel{};
  fill(k, std::make_integer_sequence<int, MR>{});
  k.mr = MR;
  k.nr = NR;
  k.mc = kMC;
  k.kc = kKC;
  k.nc = kNC;
  k.act = activation_scalar;
  k.bias_act = bias_act_scalar;
  k.name = "sgemm_avx2_6x16";
  return true;
}

}  // namespace forgeml::gemm::detail

#else
namespace forgeml::gemm::detail {
bool kernel_avx2(Kernel&) { return false; }
}  // namespace forgeml::gemm::detail
#endif
