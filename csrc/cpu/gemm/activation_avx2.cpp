// AVX2 activations for the GEMM epilogue and apply_activation: activation_avx512.cpp's math in
// 8 lanes (the AVX2 table used the scalar libm loops: 4% of the seed MLP's epoch at batch 256,
// and sigmoid / tanh / gelu one element at a time). Accuracy as there. Contract: kernels.h.
#include "cpu/gemm/kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <cstdint>

#include "cpu/store_lanes_avx2.h"

namespace forgeml::gemm::detail {
namespace {

// 2^n for integral n in [-150, 128], in two factors so that each is a normal float: the product
// then underflows gradually and overflows to inf as the AVX-512 version's vscalefps does.
inline __m256 pow2(__m256 n) {
  const __m256i ni = _mm256_cvtps_epi32(n), lo = _mm256_srai_epi32(ni, 1), hi = _mm256_sub_epi32(ni, lo);
  const __m256i bias = _mm256_set1_epi32(127);
  return _mm256_mul_ps(_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(lo, bias), 23)),
                       _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(hi, bias), 23)));
}

// e^x: x = n ln2 + r with |r| <= ln2/2 (two-part ln2), a degree-6 polynomial for e^r, times 2^n.
inline __m256 exp_ps(__m256 x) {
  // Bounds first: max/min return their second operand for NaN, so a NaN x passes through.
  x = _mm256_max_ps(_mm256_set1_ps(-104.f), _mm256_min_ps(_mm256_set1_ps(88.8f), x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-06f), r);
  __m256 p = _mm256_set1_ps(1.f / 720);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  return _mm256_mul_ps(p, pow2(n));
}

inline __m256 abs_ps(__m256 x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.f), x); }

inline __m256 sigmoid_ps(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

// Odd Taylor polynomial below |x| = 0.3 (no cancellation), 1 - 2 / (e^{2|x|} + 1) above.
inline __m256 tanh_ps(__m256 x) {
  const __m256 ax = abs_ps(x);
  const __m256 one = _mm256_set1_ps(1.f);
  __m256 big =
      _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.f), _mm256_add_ps(exp_ps(_mm256_add_ps(ax, ax)), one)));
  const __m256 x2 = _mm256_mul_ps(x, x);
  __m256 p = _mm256_set1_ps(-1382.f / 155925);
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(62.f / 2835));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-17.f / 315));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(2.f / 15));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-1.f / 3));
  const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, x2), x, x);
  big = _mm256_or_ps(big, _mm256_and_ps(x, _mm256_set1_ps(-0.f)));  // sign of x
  return _mm256_blendv_ps(big, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.3f), _CMP_LT_OQ));
}

// x * Phi(x) with Phi from erfc(|x|/sqrt2) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2) (Numerical
// Recipes' erfcc, fractional error below 1.2e-7), as in activation_avx512.cpp.
inline __m256 gelu_ps(__m256 x) {
  const __m256 z = _mm256_mul_ps(abs_ps(x), _mm256_set1_ps(0.70710678118654752f));
  const __m256 one = _mm256_set1_ps(1.f);
  const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(z, _mm256_set1_ps(0.5f), one));
  static constexpr float c[] = {0.17087277f,  -0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f,
                                -0.18628806f, 0.09678418f,  0.37409196f, 1.00002368f,  -1.26551223f};
  __m256 p = _mm256_set1_ps(c[0]);
  for (int i = 1; i < 10; ++i) p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(c[i]));
  const __m256 half_e = _mm256_mul_ps(_mm256_mul_ps(t, exp_ps(_mm256_fnmadd_ps(z, z, p))), _mm256_set1_ps(0.5f));
  const __m256 phi =
      _mm256_blendv_ps(_mm256_sub_ps(one, half_e), half_e, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
  return _mm256_mul_ps(x, phi);
}

template <Activation A>
inline __m256 act_ps(__m256 x) {
  // max(0, x) returns its second operand when x is NaN: NaN propagates (a NaN loss, as in Keras)
  if constexpr (A == Activation::relu) return _mm256_max_ps(_mm256_setzero_ps(), x);
  if constexpr (A == Activation::sigmoid) return sigmoid_ps(x);
  if constexpr (A == Activation::tanh) return tanh_ps(x);
  if constexpr (A == Activation::gelu) return gelu_ps(x);
  return x;
}

// Rows of c (m x n, row stride ldc): x = act(x + bias[j]). Whole vectors load and store plainly;
// a row's last partial vector is masked (vmaskmovps stores are microcoded on Zen 2).
template <Activation A>
void bias_act(const float* bias, float* c, int64_t ldc, int64_t m, int64_t n) {
  const int64_t whole = n / 8 * 8;
  const __m256i tail =
      _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n - whole)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  for (int64_t i = 0; i < m; ++i, c += ldc) {
    for (int64_t j = 0; j < whole; j += 8) {
      __m256 x = _mm256_loadu_ps(c + j);
      if (bias) x = _mm256_add_ps(x, _mm256_loadu_ps(bias + j));
      _mm256_storeu_ps(c + j, act_ps<A>(x));
    }
    if (whole < n) {
      __m256 x = _mm256_maskload_ps(c + whole, tail);
      if (bias) x = _mm256_add_ps(x, _mm256_maskload_ps(bias + whole, tail));
      store_lanes(c + whole, act_ps<A>(x), static_cast<int>(n - whole));
    }
  }
}

}  // namespace

void bias_act_avx2(const float* bias, Activation act, float* c, int64_t ldc, int64_t m, int64_t n) {
  switch (act) {
    case Activation::none:
      return bias_act<Activation::none>(bias, c, ldc, m, n);
    case Activation::relu:
      return bias_act<Activation::relu>(bias, c, ldc, m, n);
    case Activation::sigmoid:
      return bias_act<Activation::sigmoid>(bias, c, ldc, m, n);
    case Activation::tanh:
      return bias_act<Activation::tanh>(bias, c, ldc, m, n);
    case Activation::gelu:
      return bias_act<Activation::gelu>(bias, c, ldc, m, n);
  }
}

void activation_avx2(Activation act, float* x, int64_t n) { bias_act_avx2(nullptr, act, x, n, 1, n); }

}  // namespace forgeml::gemm::detail
#endif
