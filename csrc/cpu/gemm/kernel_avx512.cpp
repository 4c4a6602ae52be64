// AVX-512 micro-kernel: MR x 32 (two zmm of B per k, one broadcast per row of A, MR*2
// accumulators). N edges use masked loads/stores; M edges store fewer rows. Contract: kernels.h.
#include "cpu/gemm/kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <cstdio>
#include <cstdlib>

namespace forgeml::gemm::detail {
namespace {

// sgemm_avx512_MRx(16*NV)
template <int MR, int NV>
void sgemm_avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float beta, int m, int n) {
  constexpr int NR = 16 * NV;
  __m512 acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k, a += MR, b += NR) {
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_load_ps(b + 16 * v);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
    }
  }
  __mmask16 mask[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    int rem = n - 16 * v;
    mask[v] = rem >= 16 ? 0xffff : rem <= 0 ? 0 : static_cast<__mmask16>((1u << rem) - 1);
  }
  const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (i >= m) break;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      float* p = c + i * ldc + 16 * v;
      __m512 r = acc[i][v];
      if (beta != 0.f) r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask[v], p), r);
      _mm512_mask_storeu_ps(p, mask[v], r);
    }
  }
}

}  // namespace

bool kernel_avx512(Kernel& k) {
  k = Kernel{sgemm_avx512<14, 2>, 14, 32, 1008, 384, 320, activation_scalar, "sgemm_avx512_14x32"};
  const char* e = std::getenv("FORGEML_GEMM_TUNE");  // temporary tuning knob: "mr nv mc kc nc"
  if (e) {
    int mr, nv, mc, kc, nc;
    if (std::sscanf(e, "%d %d %d %d %d", &mr, &nv, &mc, &kc, &nc) == 5) {
      MicroKernel t = nullptr;
      if (mr == 14 && nv == 2) t = sgemm_avx512<14, 2>;
      if (mr == 12 && nv == 2) t = sgemm_avx512<12, 2>;
      if (mr == 8 && nv == 2) t = sgemm_avx512<8, 2>;
      if (mr == 6 && nv == 4) t = sgemm_avx512<6, 4>;
      if (mr == 4 && nv == 4) t = sgemm_avx512<4, 4>;
      if (mr == 8 && nv == 3) t = sgemm_avx512<8, 3>;
      if (mr == 10 && nv == 3) t = sgemm_avx512<10, 3>;
      if (mr == 16 && nv == 1) t = sgemm_avx512<16, 1>;
      if (t) k = Kernel{t, mr, 16 * nv, mc, kc, nc, activation_scalar, "tune"};
    }
  }
  return true;
}

}  // namespace forgeml::gemm::detail

#else
namespace forgeml::gemm::detail {
bool kernel_avx512(Kernel&) { return false; }
}  // namespace forgeml::gemm::detail
#endif
