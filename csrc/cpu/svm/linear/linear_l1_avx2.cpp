// The L1 solver's dense column passes (linear.h, L1ColumnKernels) with AVX2: four 4-lane float64
// accumulators cover partial sums 0-15, float32 column values are widened on load, and the
// squared-hinge terms use max(b, 0) and and-masks instead of branches. Tails are masked loads of
// zeros, which add nothing. Contraction to FMA is off so the bits match the scalar code.
#include "cpu/svm/linear/linear.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma GCC optimize("fp-contract=off")

namespace forgeml::svm {

namespace {

// lanes below `left` live, as 64-bit masks for doubles and 32-bit masks for the floats
struct Live {
  __m256i d;
  __m128i f;
  explicit Live(int64_t left) {
    const int32_t k = int32_t(left < 0 ? 0 : left > 4 ? 4 : left);
    d = _mm256_cmpgt_epi64(_mm256_set1_epi64x(k), _mm256_set_epi64x(3, 2, 1, 0));
    f = _mm_cmpgt_epi32(_mm_set1_epi32(k), _mm_set_epi32(3, 2, 1, 0));
  }
};
inline __m256d load(const double* p, const Live& live) { return _mm256_maskload_pd(p, live.d); }
inline __m256d select(__m256d x, __m256d mask) { return _mm256_and_pd(x, mask); }  // x or +0

template <bool kConst>
inline __m256d column(const float* col, double cst, int64_t i, const Live& live) {
  if constexpr (kConst) return select(_mm256_set1_pd(cst), _mm256_castsi256_pd(live.d));
  else return _mm256_cvtps_pd(_mm_maskload_ps(col + i, live.f));
}

template <bool kConst>
void derivs(const float* col, double cst, int64_t n, const double* b, const double* yC, const double* C, double* g,
            double* h) {
  const __m256d zero = _mm256_setzero_pd();
  __m256d ga[4] = {zero, zero, zero, zero}, ha[4] = {zero, zero, zero, zero};
  for (int64_t i = 0; i < n; i += 16)
    for (int k = 0; k < 4; ++k) {
      const int64_t at = i + 4 * k;
      const Live live(n - at);
      const __m256d v = column<kConst>(col, cst, at, live), bi = load(b + at, live);
      const __m256d pos = _mm256_max_pd(zero, bi);  // std::max(b, 0.0), -0.0 included
      ga[k] = _mm256_sub_pd(ga[k], _mm256_mul_pd(_mm256_mul_pd(load(yC + at, live), v), pos));
      const __m256d c = select(load(C + at, live), _mm256_cmp_pd(bi, zero, _CMP_GT_OQ));
      ha[k] = _mm256_add_pd(ha[k], _mm256_mul_pd(_mm256_mul_pd(c, v), v));
    }
  for (int k = 0; k < 4; ++k) {
    _mm256_storeu_pd(g + 4 * k, ga[k]);
    _mm256_storeu_pd(h + 4 * k, ha[k]);
  }
}

template <bool kConst>
void shift(const float* col, double cst, int64_t n, double s, const double* y, const double* C, double* b, double* lo,
           double* ln) {
  const __m256d zero = _mm256_setzero_pd(), vs = _mm256_set1_pd(s);
  __m256d la[4] = {zero, zero, zero, zero}, lb[4] = {zero, zero, zero, zero};
  for (int64_t i = 0; i < n; i += 16)
    for (int k = 0; k < 4; ++k) {
      const int64_t at = i + 4 * k;
      const Live live(n - at);
      const __m256d v = column<kConst>(col, cst, at, live), bo = load(b + at, live);
      const __m256d bn = _mm256_sub_pd(bo, _mm256_mul_pd(_mm256_mul_pd(vs, load(y + at, live)), v));
      _mm256_maskstore_pd(b + at, live.d, bn);
      const __m256d c = select(load(C + at, live), _mm256_cmp_pd(v, zero, _CMP_NEQ_UQ));
      const __m256d po = _mm256_max_pd(zero, bo), pn = _mm256_max_pd(zero, bn);
      la[k] = _mm256_add_pd(la[k], _mm256_mul_pd(_mm256_mul_pd(c, po), po));
      lb[k] = _mm256_add_pd(lb[k], _mm256_mul_pd(_mm256_mul_pd(c, pn), pn));
    }
  for (int k = 0; k < 4; ++k) {
    _mm256_storeu_pd(lo + 4 * k, la[k]);
    _mm256_storeu_pd(ln + 4 * k, lb[k]);
  }
}

template <bool kConst>
void axpy(const float* col, double cst, int64_t n, double s, const double* y, double* b) {
  const __m256d vs = _mm256_set1_pd(s);
  for (int64_t i = 0; i < n; i += 4) {
    const Live live(n - i);
    const __m256d v = column<kConst>(col, cst, i, live), bi = load(b + i, live);
    _mm256_maskstore_pd(b + i, live.d, _mm256_sub_pd(bi, _mm256_mul_pd(_mm256_mul_pd(vs, load(y + i, live)), v)));
  }
}

void derivs_any(const float* col, double cst, int64_t n, const double* b, const double* yC, const double* C, double* g,
                double* h) {
  col ? derivs<false>(col, cst, n, b, yC, C, g, h) : derivs<true>(col, cst, n, b, yC, C, g, h);
}
void shift_any(const float* col, double cst, int64_t n, double s, const double* y, const double* C, double* b,
               double* lo, double* ln) {
  col ? shift<false>(col, cst, n, s, y, C, b, lo, ln) : shift<true>(col, cst, n, s, y, C, b, lo, ln);
}
void axpy_any(const float* col, double cst, int64_t n, double s, const double* y, double* b) {
  col ? axpy<false>(col, cst, n, s, y, b) : axpy<true>(col, cst, n, s, y, b);
}

}  // namespace

bool l1_column_kernels_avx2(L1ColumnKernels& k) {
  k = {derivs_any, shift_any, axpy_any};
  return true;
}

}  // namespace forgeml::svm

#else
namespace forgeml::svm {
bool l1_column_kernels_avx2(L1ColumnKernels&) { return false; }
}  // namespace forgeml::svm
#endif  // __x86_64__
