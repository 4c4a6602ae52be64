// AVX-512 micro-kernel: up to 12 x 32 (two zmm of B per k, one broadcast per row of A, 24
// accumulators, leaving registers for B and the broadcasts). Instantiated for every row count
// 1..12 so M edges cost no wasted FMAs; N edges use masked loads and stores. Contract: kernels.h.
#include "cpu/gemm/kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <utility>

namespace forgeml::gemm::detail {
namespace {

constexpr int MR = 12, NV = 2, NR = 16 * NV;

// sgemm_avx512_<M>x32; RowA: op(A)(i, k) = a[i * as + k], else a[k * as + i].
template <int M, bool RowA>
void sgemm_avx512(int64_t kc, const float* a, int64_t as, const float* b, int64_t bs, float* c, int64_t ldc,
                  float alpha, float beta, int m, int n) {
  (void)m;
  __mmask16 mask[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    int rem = n - 16 * v;
    mask[v] = rem >= 16 ? 0xffff : rem <= 0 ? 0 : static_cast<__mmask16>((1u << rem) - 1);
  }
  __m512 acc[M][NV];
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  const float* arow[RowA ? M : 1];
  if constexpr (RowA)
    for (int i = 0; i < M; ++i) arow[i] = a + i * as;
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k, b += bs) {
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_maskz_loadu_ps(mask[v], b + 16 * v);
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
      __m512 ai = _mm512_set1_ps(RowA ? arow[i][k] : a[k * as + i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      float* p = c + i * ldc + 16 * v;
      __m512 r = alpha == 1.f ? acc[i][v] : _mm512_mul_ps(va, acc[i][v]);
      if (beta != 0.f) r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask[v], p), r);
      _mm512_mask_storeu_ps(p, mask[v], r);
    }
  }
}

template <int... I>
void fill(Kernel& k, std::integer_sequence<int, I...>) {
  ((k.cols[I + 1] = sgemm_avx512<I + 1, false>), ...);
  ((k.rows[I + 1] = sgemm_avx512<I + 1, true>), ...);
}

}  // namespace

bool kernel_avx512(Kernel& k) {
  k = Kernel{};
  fill(k, std::make_integer_sequence<int, MR>{});
  k.mr = MR;
  k.nr = NR;
  k.mc = 1008;  // A block (MC x KC, 1.5 MiB) streams from L2/L3 once per NC columns
  k.kc = 384;   // one packed A panel (12 x 384 floats, 18 KiB) stays in the 48 KiB L1
  k.nc = 320;   // one packed B block (384 x 320 floats, 480 KiB) stays in the 1 MiB L2
  k.act = activation_scalar;
  k.name = "sgemm_avx512_12x32";
  return true;
}

}  // namespace forgeml::gemm::detail

#else
namespace forgeml::gemm::detail {
bool kernel_avx512(Kernel&) { return false; }
}  // namespace forgeml::gemm::detail
#endif
