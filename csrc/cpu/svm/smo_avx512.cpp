// The SMO passes of smo_pass.h with AVX-512: 8 float64 gradients per step, float32 kernel rows
// widened on load, arg-max kept per lane (value, position) and reduced at the end so ties still
// go to the last position.
#include "cpu/svm/kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace forgeml::svm {

namespace {

struct LaneMax {
  __m512d v = _mm512_set1_pd(-std::numeric_limits<double>::infinity());
  __m512i i = _mm512_set1_epi64(-1);
  void take(__mmask8 c, __m512d x, __m512i idx) {
    v = _mm512_mask_mov_pd(v, c, x);
    i = _mm512_mask_mov_epi64(i, c, idx);
  }
  // the largest value, and the last position holding it (-1 when nothing was taken)
  void reduce(double& best, int64_t& at) const {
    best = _mm512_reduce_max_pd(v);
    const __mmask8 eq = _mm512_cmp_pd_mask(v, _mm512_set1_pd(best), _CMP_EQ_OQ);
    at = _mm512_mask_reduce_max_epi64(eq, i);
  }
};

inline __mmask8 flag_mask(const uint8_t* flags, __mmask8 live, uint8_t bit) {
  const __m128i f = _mm_maskz_loadu_epi8(__mmask16(live), flags);
  return __mmask8(_mm_mask_test_epi8_mask(__mmask16(live), f, _mm_set1_epi8(char(bit))));
}

inline __m512d load_ps(const float* p, __mmask8 live) { return _mm512_cvtps_pd(_mm256_maskz_loadu_ps(live, p)); }

inline __mmask8 tail(int64_t left) { return left >= 8 ? __mmask8(0xff) : __mmask8((1u << left) - 1); }

// positions t .. t+7 (built in the function: a global would run AVX-512 code at load time)
inline __m512i lanes(int64_t t) { return _mm512_add_epi64(_mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi64(t)); }

}  // namespace

PickI update_pick_i_avx512(double* F, const float* Ki, const float* Kj, double di, double dj, const uint8_t* flags,
                           int64_t m) {
  const __m512d vdi = _mm512_set1_pd(di), vdj = _mm512_set1_pd(dj), sign = _mm512_set1_pd(-0.0);
  LaneMax best;
  for (int64_t t = 0; t < m; t += 8) {
    const __mmask8 live = tail(m - t);
    const __m512d dk = _mm512_fmadd_pd(load_ps(Kj + t, live), vdj, _mm512_mul_pd(load_ps(Ki + t, live), vdi));
    const __m512d f = _mm512_add_pd(_mm512_maskz_loadu_pd(live, F + t), dk);
    _mm512_mask_storeu_pd(F + t, live, f);
    const __m512d nf = _mm512_xor_pd(f, sign);
    const __mmask8 c = _mm512_mask_cmp_pd_mask(flag_mask(flags + t, live, kUp), nf, best.v, _CMP_GE_OQ);
    best.take(c, nf, lanes(t));
  }
  PickI r;
  best.reduce(r.gmax, r.i);
  return r;
}

PickI pick_i_avx512(const double* F, const uint8_t* flags, int64_t m) {
  const __m512d sign = _mm512_set1_pd(-0.0);
  LaneMax best;
  for (int64_t t = 0; t < m; t += 8) {
    const __mmask8 live = tail(m - t);
    const __m512d nf = _mm512_xor_pd(_mm512_maskz_loadu_pd(live, F + t), sign);
    const __mmask8 c = _mm512_mask_cmp_pd_mask(flag_mask(flags + t, live, kUp), nf, best.v, _CMP_GE_OQ);
    best.take(c, nf, lanes(t));
  }
  PickI r;
  best.reduce(r.gmax, r.i);
  return r;
}

PickJ pick_j_avx512(const double* F, const float* Ki, const float* QD, double QDi, double gmax, const uint8_t* flags,
                    int64_t m) {
  const __m512d vgmax = _mm512_set1_pd(gmax), vqdi = _mm512_set1_pd(QDi), two = _mm512_set1_pd(2.0),
                zero = _mm512_setzero_pd(), tau = _mm512_set1_pd(kTau);
  __m512d g2 = _mm512_set1_pd(-std::numeric_limits<double>::infinity());
  LaneMax best;
  for (int64_t t = 0; t < m; t += 8) {
    const __mmask8 live = tail(m - t);
    const __mmask8 low = flag_mask(flags + t, live, kLow);
    if (!low) continue;
    const __m512d f = _mm512_maskz_loadu_pd(live, F + t);
    g2 = _mm512_mask_max_pd(g2, low, g2, f);
    const __m512d gd = _mm512_add_pd(vgmax, f);
    const __mmask8 cand = _mm512_mask_cmp_pd_mask(low, gd, zero, _CMP_GT_OQ);
    if (!cand) continue;
    // (QD_i + QD_t) - 2 K_it, as the scalar loop rounds it (2 K_it is exact)
    __m512d quad = _mm512_fnmadd_pd(two, load_ps(Ki + t, live), _mm512_add_pd(vqdi, load_ps(QD + t, live)));
    quad = _mm512_mask_mov_pd(quad, _mm512_cmp_pd_mask(quad, zero, _CMP_LE_OQ), tau);
    const __m512d ratio = _mm512_div_pd(_mm512_mul_pd(gd, gd), quad);
    const __mmask8 c = _mm512_mask_cmp_pd_mask(cand, ratio, best.v, _CMP_GE_OQ);
    best.take(c, ratio, lanes(t));
  }
  PickJ r;
  r.gmax2 = _mm512_reduce_max_pd(g2);
  best.reduce(r.best, r.j);
  return r;
}

}  // namespace forgeml::svm

#endif
