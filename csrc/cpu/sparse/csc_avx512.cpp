// The AVX-512 CSC kernel (csc.h): 64 rows per block, four zmm accumulators per nonzero, and two
// sets of them (even and odd nonzeros) so the FMA latency is hidden.
#include "cpu/sparse/kernels.h"

#if defined(__AVX512F__)
#include <immintrin.h>

namespace forgeml::sparse::detail {

namespace {

constexpr int kMB = 64;

void panel(int64_t cols, int64_t* cur, const int64_t* end, int32_t k1, const int32_t* idx, const float* val,
           const float* xt, float* yt, bool accumulate) {
  for (int64_t c = 0; c < cols; ++c) {
    float* y = yt + c * kMB;
    __m512 a0, a1, a2, a3;
    if (accumulate) {
      a0 = _mm512_load_ps(y), a1 = _mm512_load_ps(y + 16), a2 = _mm512_load_ps(y + 32), a3 = _mm512_load_ps(y + 48);
    } else {
      a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    }
    __m512 b0 = _mm512_setzero_ps(), b1 = b0, b2 = b0, b3 = b0;
    int64_t p = cur[c];
    const int64_t e = end[c];
    for (; p + 1 < e && idx[p + 1] < k1; p += 2) {  // rows ascend: both nonzeros lie below k1
      const __m512 v = _mm512_set1_ps(val[p]), w = _mm512_set1_ps(val[p + 1]);
      const float* x = xt + int64_t{idx[p]} * kMB;
      const float* z = xt + int64_t{idx[p + 1]} * kMB;
      a0 = _mm512_fmadd_ps(v, _mm512_load_ps(x), a0);
      a1 = _mm512_fmadd_ps(v, _mm512_load_ps(x + 16), a1);
      a2 = _mm512_fmadd_ps(v, _mm512_load_ps(x + 32), a2);
      a3 = _mm512_fmadd_ps(v, _mm512_load_ps(x + 48), a3);
      b0 = _mm512_fmadd_ps(w, _mm512_load_ps(z), b0);
      b1 = _mm512_fmadd_ps(w, _mm512_load_ps(z + 16), b1);
      b2 = _mm512_fmadd_ps(w, _mm512_load_ps(z + 32), b2);
      b3 = _mm512_fmadd_ps(w, _mm512_load_ps(z + 48), b3);
    }
    if (p < e && idx[p] < k1) {
      const __m512 v = _mm512_set1_ps(val[p]);
      const float* x = xt + int64_t{idx[p]} * kMB;
      a0 = _mm512_fmadd_ps(v, _mm512_load_ps(x), a0);
      a1 = _mm512_fmadd_ps(v, _mm512_load_ps(x + 16), a1);
      a2 = _mm512_fmadd_ps(v, _mm512_load_ps(x + 32), a2);
      a3 = _mm512_fmadd_ps(v, _mm512_load_ps(x + 48), a3);
      ++p;
    }
    cur[c] = p;
    _mm512_store_ps(y, _mm512_add_ps(a0, b0));
    _mm512_store_ps(y + 16, _mm512_add_ps(a1, b1));
    _mm512_store_ps(y + 32, _mm512_add_ps(a2, b2));
    _mm512_store_ps(y + 48, _mm512_add_ps(a3, b3));
  }
}

}  // namespace

bool csc_avx512(CscKernel& k) {
  k = CscKernel{panel, kMB, "csc_avx512_64"};
  return true;
}

}  // namespace forgeml::sparse::detail

#else

namespace forgeml::sparse::detail {
bool csc_avx512(CscKernel&) { return false; }
}  // namespace forgeml::sparse::detail

#endif
