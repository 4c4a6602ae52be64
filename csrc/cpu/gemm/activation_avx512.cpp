// AVX-512 activations for the GEMM epilogue and apply_activation. Accuracy (float32, all x):
// exp and the erfc below are within a few ulp; sigmoid, tanh and gelu stay within ~3e-7
// relative (tanh: absolute near 0). Contract: kernels.h.
#include "cpu/gemm/kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace forgeml::gemm::detail {
namespace {

// e^x: x = n ln2 + r with |r| <= ln2/2 (two-part ln2), a degree-6 polynomial for e^r, then
// scalef by 2^n (which saturates to 0 / inf on its own).
inline __m512 exp_ps(__m512 x) {
  // Bounds first: max/min return their second operand for NaN, so a NaN x passes through.
  x = _mm512_max_ps(_mm512_set1_ps(-104.f), _mm512_min_ps(_mm512_set1_ps(88.8f), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
  __m512 p = _mm512_set1_ps(1.f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  return _mm512_scalef_ps(p, n);
}

inline __m512 sigmoid_ps(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.f);
  return _mm512_div_ps(one, _mm512_add_ps(one, exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

// Odd Taylor polynomial below |x| = 0.3 (no cancellation), 1 - 2 / (e^{2|x|} + 1) above.
inline __m512 tanh_ps(__m512 x) {
  const __m512 ax = _mm512_abs_ps(x);
  const __m512 one = _mm512_set1_ps(1.f);
  __m512 big = _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.f),
                                                _mm512_add_ps(exp_ps(_mm512_add_ps(ax, ax)), one)));
  const __m512 x2 = _mm512_mul_ps(x, x);
  __m512 p = _mm512_set1_ps(-1382.f / 155925);
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(62.f / 2835));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-17.f / 315));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(2.f / 15));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-1.f / 3));
  const __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, x2), x, x);
  big = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(big),  // sign of x
                                            _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN))));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.3f), _CMP_LT_OQ), big, small);
}

// x * Phi(x) with Phi from erfc(|x|/sqrt2) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2), whose
// fractional error is below 1.2e-7 everywhere (Numerical Recipes' erfcc), so no cancellation
// for negative x.
inline __m512 gelu_ps(__m512 x) {
  const __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(0.70710678118654752f));
  const __m512 one = _mm512_set1_ps(1.f);
  const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(z, _mm512_set1_ps(0.5f), one));
  static constexpr float c[] = {0.17087277f, -0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f,
                                -0.18628806f, 0.09678418f, 0.37409196f, 1.00002368f, -1.26551223f};
  __m512 p = _mm512_set1_ps(c[0]);
  for (int i = 1; i < 10; ++i) p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(c[i]));
  const __m512 e = _mm512_mul_ps(t, exp_ps(_mm512_fnmadd_ps(z, z, p)));  // erfc(z)
  const __m512 half_e = _mm512_mul_ps(e, _mm512_set1_ps(0.5f));
  const __m512 phi = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ),
                                          _mm512_sub_ps(one, half_e), half_e);
  return _mm512_mul_ps(x, phi);
}

template <Activation A>
inline __m512 act_ps(__m512 x) {
  // max(0, x) returns its second operand when x is NaN: NaN propagates (a NaN loss, as in Keras)
  if constexpr (A == Activation::relu) return _mm512_max_ps(_mm512_setzero_ps(), x);
  if constexpr (A == Activation::sigmoid) return sigmoid_ps(x);
  if constexpr (A == Activation::tanh) return tanh_ps(x);
  if constexpr (A == Activation::gelu) return gelu_ps(x);
  return x;
}

// Rows of c (m x n, row stride ldc): x = act(x + bias[j]).
template <Activation A>
void bias_act(const float* bias, float* c, int64_t ldc, int64_t m, int64_t n) {
  for (int64_t i = 0; i < m; ++i, c += ldc)
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 mask = n - j >= 16 ? 0xffff : static_cast<__mmask16>((1u << (n - j)) - 1);
      __m512 x = _mm512_maskz_loadu_ps(mask, c + j);
      if (bias) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask, bias + j));
      _mm512_mask_storeu_ps(c + j, mask, act_ps<A>(x));
    }
}

}  // namespace

void bias_act_avx512(const float* bias, Activation act, float* c, int64_t ldc, int64_t m, int64_t n) {
  switch (act) {
    case Activation::none: return bias_act<Activation::none>(bias, c, ldc, m, n);
    case Activation::relu: return bias_act<Activation::relu>(bias, c, ldc, m, n);
    case Activation::sigmoid: return bias_act<Activation::sigmoid>(bias, c, ldc, m, n);
    case Activation::tanh: return bias_act<Activation::tanh>(bias, c, ldc, m, n);
    case Activation::gelu: return bias_act<Activation::gelu>(bias, c, ldc, m, n);
  }
}

void activation_avx512(Activation act, float* x, int64_t n) { bias_act_avx512(nullptr, act, x, n, 1, n); }

}  // namespace forgeml::gemm::detail
#endif
