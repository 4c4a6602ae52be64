// The SMO passes of smo_pass.h with AVX2: 4 float64 gradients per step, float32 kernel rows
// widened on load, arg-max kept per lane (value, position) and reduced at the end so ties still
// go to the last position; the last m % 4 positions run scalar after the reduction (they come
// last, so ">=" keeps the tie rule). The arithmetic is smo_avx512.cpp's (one FMA in the update),
// so both ISAs take the same steps. The scalar tails repeat smo_pass.h's loops rather than call
// them: an inline function compiled here could become the copy the portable table links to.
#include "cpu/svm/kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <cmath>
#include <cstring>

namespace forgeml::svm {

namespace {

struct LaneMax {
  __m256d v = _mm256_set1_pd(-std::numeric_limits<double>::infinity());
  __m256i i = _mm256_set1_epi64x(-1);
  void take(__m256d c, __m256d x, __m256i idx) {
    v = _mm256_blendv_pd(v, x, c);
    i = _mm256_castpd_si256(_mm256_blendv_pd(_mm256_castsi256_pd(i), _mm256_castsi256_pd(idx), c));
  }
  // the largest value, and the last position holding it (-1 when nothing was taken)
  void reduce(double& best, int64_t& at) const {
    alignas(32) double vs[4];
    alignas(32) int64_t is[4];
    _mm256_store_pd(vs, v);
    _mm256_store_si256(reinterpret_cast<__m256i*>(is), i);
    best = std::max(std::max(vs[0], vs[1]), std::max(vs[2], vs[3]));
    at = -1;
    for (int l = 0; l < 4; ++l)
      if (vs[l] == best && is[l] > at) at = is[l];
  }
};

// all-ones lanes where flags[t + l] has `bit`
inline __m256d flag_mask(const uint8_t* flags, uint8_t bit) {
  int32_t four;
  std::memcpy(&four, flags, 4);
  const __m256i f = _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(four));
  const __m256i b = _mm256_set1_epi64x(bit);
  return _mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_and_si256(f, b), b));
}

inline __m256d load_ps(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }

inline __m256i lanes(int64_t t) { return _mm256_add_epi64(_mm256_set_epi64x(3, 2, 1, 0), _mm256_set1_epi64x(t)); }

}  // namespace

PickI update_pick_i_avx2(double* F, const float* Ki, const float* Kj, double di, double dj, const uint8_t* flags,
                         int64_t m) {
  const __m256d vdi = _mm256_set1_pd(di), vdj = _mm256_set1_pd(dj), sign = _mm256_set1_pd(-0.0);
  LaneMax best;
  int64_t t = 0;
  for (; t + 4 <= m; t += 4) {
    const __m256d dk = _mm256_fmadd_pd(load_ps(Kj + t), vdj, _mm256_mul_pd(load_ps(Ki + t), vdi));
    const __m256d f = _mm256_add_pd(_mm256_loadu_pd(F + t), dk);
    _mm256_storeu_pd(F + t, f);
    const __m256d nf = _mm256_xor_pd(f, sign);
    const __m256d c = _mm256_and_pd(flag_mask(flags + t, kUp), _mm256_cmp_pd(nf, best.v, _CMP_GE_OQ));
    best.take(c, nf, lanes(t));
  }
  PickI r;
  best.reduce(r.gmax, r.i);
  for (; t < m; ++t) {
    const double f = F[t] + std::fma(double(Kj[t]), dj, double(Ki[t]) * di);
    F[t] = f;
    if ((flags[t] & kUp) && -f >= r.gmax) r.gmax = -f, r.i = t;
  }
  return r;
}

PickI pick_i_avx2(const double* F, const uint8_t* flags, int64_t m) {
  const __m256d sign = _mm256_set1_pd(-0.0);
  LaneMax best;
  int64_t t = 0;
  for (; t + 4 <= m; t += 4) {
    const __m256d nf = _mm256_xor_pd(_mm256_loadu_pd(F + t), sign);
    const __m256d c = _mm256_and_pd(flag_mask(flags + t, kUp), _mm256_cmp_pd(nf, best.v, _CMP_GE_OQ));
    best.take(c, nf, lanes(t));
  }
  PickI r;
  best.reduce(r.gmax, r.i);
  for (; t < m; ++t)
    if ((flags[t] & kUp) && -F[t] >= r.gmax) r.gmax = -F[t], r.i = t;
  return r;
}

PickJ pick_j_avx2(const double* F, const float* Ki, const float* QD, double QDi, double gmax, const uint8_t* flags,
                  int64_t m) {
  const __m256d vgmax = _mm256_set1_pd(gmax), vqdi = _mm256_set1_pd(QDi), two = _mm256_set1_pd(2.0),
                zero = _mm256_setzero_pd(), tau = _mm256_set1_pd(kTau);
  __m256d g2 = _mm256_set1_pd(-std::numeric_limits<double>::infinity());
  LaneMax best;
  int64_t t = 0;
  for (; t + 4 <= m; t += 4) {
    const __m256d low = flag_mask(flags + t, kLow);
    if (_mm256_movemask_pd(low) == 0) continue;
    const __m256d f = _mm256_loadu_pd(F + t);
    g2 = _mm256_blendv_pd(g2, f, _mm256_and_pd(low, _mm256_cmp_pd(f, g2, _CMP_GT_OQ)));
    const __m256d gd = _mm256_add_pd(vgmax, f);
    const __m256d cand = _mm256_and_pd(low, _mm256_cmp_pd(gd, zero, _CMP_GT_OQ));
    if (_mm256_movemask_pd(cand) == 0) continue;
    // (QD_i + QD_t) - 2 K_it, as the scalar loop rounds it (2 K_it is exact)
    __m256d quad = _mm256_fnmadd_pd(two, load_ps(Ki + t), _mm256_add_pd(vqdi, load_ps(QD + t)));
    quad = _mm256_blendv_pd(quad, tau, _mm256_cmp_pd(quad, zero, _CMP_LE_OQ));
    const __m256d ratio = _mm256_div_pd(_mm256_mul_pd(gd, gd), quad);
    const __m256d c = _mm256_and_pd(cand, _mm256_cmp_pd(ratio, best.v, _CMP_GE_OQ));
    best.take(c, ratio, lanes(t));
  }
  PickJ r;
  alignas(32) double g2s[4];
  _mm256_store_pd(g2s, g2);
  r.gmax2 = std::max(std::max(g2s[0], g2s[1]), std::max(g2s[2], g2s[3]));
  best.reduce(r.best, r.j);
  for (; t < m; ++t) {
    if (!(flags[t] & kLow)) continue;
    const double f = F[t];
    if (f > r.gmax2) r.gmax2 = f;
    const double gd = gmax + f;
    if (gd > 0) {
      double quad = QDi + double(QD[t]) - 2.0 * double(Ki[t]);
      if (quad <= 0) quad = kTau;
      const double ratio = gd * gd / quad;
      if (ratio >= r.best) r.best = ratio, r.j = t;
    }
  }
  return r;
}

}  // namespace forgeml::svm

#endif
