// The L1 solver's dense column passes (linear.h, L1ColumnKernels) with AVX-512: two 8-lane float64
// accumulators cover partial sums 0-7 and 8-15, float32 column values are widened on load, and the
// squared-hinge terms use max(b, 0) and masks instead of branches. Tails are masked loads of zeros,
// which add nothing. Contraction to FMA is off so the bits match the scalar code.
#include "cpu/svm/linear/linear.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma GCC optimize("fp-contract=off")

namespace forgeml::svm {

namespace {

inline __mmask8 tail(int64_t left) { return left >= 8 ? __mmask8(0xff) : left <= 0 ? 0 : __mmask8((1u << left) - 1); }

// column values i .. i+7 (zeros past the end)
template <bool kConst>
inline __m512d column(const float* col, double cst, int64_t i, __mmask8 live) {
  if constexpr (kConst) return _mm512_maskz_mov_pd(live, _mm512_set1_pd(cst));
  else return _mm512_cvtps_pd(_mm256_maskz_loadu_ps(live, col + i));
}

template <bool kConst>
void derivs(const float* col, double cst, int64_t n, const double* b, const double* yC, const double* C, double* g,
            double* h) {
  const __m512d zero = _mm512_setzero_pd();
  __m512d ga[2] = {zero, zero}, ha[2] = {zero, zero};
  for (int64_t i = 0; i < n; i += 16)
    for (int k = 0; k < 2; ++k) {
      const int64_t at = i + 8 * k;
      const __mmask8 live = tail(n - at);
      const __m512d v = column<kConst>(col, cst, at, live), bi = _mm512_maskz_loadu_pd(live, b + at);
      const __m512d pos = _mm512_max_pd(zero, bi);  // std::max(b, 0.0), -0.0 included
      ga[k] = _mm512_sub_pd(ga[k], _mm512_mul_pd(_mm512_mul_pd(_mm512_maskz_loadu_pd(live, yC + at), v), pos));
      const __m512d c = _mm512_maskz_loadu_pd(_mm512_cmp_pd_mask(bi, zero, _CMP_GT_OQ) & live, C + at);
      ha[k] = _mm512_add_pd(ha[k], _mm512_mul_pd(_mm512_mul_pd(c, v), v));
    }
  for (int k = 0; k < 2; ++k) {
    _mm512_storeu_pd(g + 8 * k, ga[k]);
    _mm512_storeu_pd(h + 8 * k, ha[k]);
  }
}

template <bool kConst>
void shift(const float* col, double cst, int64_t n, double s, const double* y, const double* C, double* b, double* lo,
           double* ln) {
  const __m512d zero = _mm512_setzero_pd(), vs = _mm512_set1_pd(s);
  __m512d la[2] = {zero, zero}, lb[2] = {zero, zero};
  for (int64_t i = 0; i < n; i += 16)
    for (int k = 0; k < 2; ++k) {
      const int64_t at = i + 8 * k;
      const __mmask8 live = tail(n - at);
      const __m512d v = column<kConst>(col, cst, at, live), bo = _mm512_maskz_loadu_pd(live, b + at);
      const __m512d bn = _mm512_sub_pd(bo, _mm512_mul_pd(_mm512_mul_pd(vs, _mm512_maskz_loadu_pd(live, y + at)), v));
      _mm512_mask_storeu_pd(b + at, live, bn);
      const __m512d c = _mm512_maskz_loadu_pd(_mm512_cmp_pd_mask(v, zero, _CMP_NEQ_UQ) & live, C + at);
      const __m512d po = _mm512_max_pd(zero, bo), pn = _mm512_max_pd(zero, bn);
      la[k] = _mm512_add_pd(la[k], _mm512_mul_pd(_mm512_mul_pd(c, po), po));
      lb[k] = _mm512_add_pd(lb[k], _mm512_mul_pd(_mm512_mul_pd(c, pn), pn));
    }
  for (int k = 0; k < 2; ++k) {
    _mm512_storeu_pd(lo + 8 * k, la[k]);
    _mm512_storeu_pd(ln + 8 * k, lb[k]);
  }
}

template <bool kConst>
void axpy(const float* col, double cst, int64_t n, double s, const double* y, double* b) {
  const __m512d vs = _mm512_set1_pd(s);
  for (int64_t i = 0; i < n; i += 8) {
    const __mmask8 live = tail(n - i);
    const __m512d v = column<kConst>(col, cst, i, live), bi = _mm512_maskz_loadu_pd(live, b + i);
    _mm512_mask_storeu_pd(b + i, live,
                          _mm512_sub_pd(bi, _mm512_mul_pd(_mm512_mul_pd(vs, _mm512_maskz_loadu_pd(live, y + i)), v)));
  }
}

// one entry point per pass; the constant (bias) column is rare, so a branch per call is enough
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

bool l1_column_kernels_avx512(L1ColumnKernels& k) {
  k = {derivs_any, shift_any, axpy_any};
  return true;
}

}  // namespace forgeml::svm

#else
namespace forgeml::svm {
bool l1_column_kernels_avx512(L1ColumnKernels&) { return false; }
}  // namespace forgeml::svm
#endif  // __x86_64__
