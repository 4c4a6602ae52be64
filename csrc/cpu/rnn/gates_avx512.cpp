// Gate math compiled with the avx512 flags (CMake gives *_avx512.cpp its ISA); see gates.h.
// The LSTM rows are written with intrinsics: GCC turns FastMath's clamps into masked arithmetic
// there, and its divisions cost more than a reciprocal estimate plus one Newton step.
#include "kernels.h"
#if defined(__x86_64__)
#include <immintrin.h>

#include "gates.h"
#endif

namespace forgeml::rnn {

#if defined(__x86_64__)
namespace {

// e^{-a} for a in [0, 88]: 2^n * p(r), n = round(-a / ln 2), |r| <= ln2/2; p is a degree-5
// polynomial fitted for equal relative error there (< 1.7e-7 in float arithmetic, about
// 1.4 ulp: two fewer terms than exp_fast's Taylor series); vscalefps applies 2^n.
inline __m512 exp_neg(__m512 a) {
  const __m512 y = _mm512_sub_ps(_mm512_setzero_ps(), a);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(y, _mm512_set1_ps(1.44269504f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), y);  // ln2 in two parts: exact reduction
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), r);
  __m512 p = _mm512_set1_ps(8.290314115583897e-3f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.189793020486832e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.1666763573884964f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.4999915063381195f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.9999997019767761f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// 1 / d for d in [1, 2]: the 14-bit estimate and one Newton step (relative error ~2^-28).
inline __m512 recip(__m512 d) {
  const __m512 r = _mm512_rcp14_ps(d);
  return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(1.0f)), r);
}

// From e = e^{-|z|} in (0, 1], so that nothing overflows: 1 / (1 + e) for z >= 0, e / (1 + e) below.
inline __m512 sigmoid(__m512 z) {
  const __m512 e = exp_neg(_mm512_min_ps(_mm512_abs_ps(z), _mm512_set1_ps(88.0f)));
  const __m512 r = recip(_mm512_add_ps(_mm512_set1_ps(1.0f), e));
  return _mm512_mask_mul_ps(r, _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ), r, e);
}

// (1 - e) / (1 + e) = 2 / (1 + e) - 1 with e = e^{-2|z|}, and the sign of z.
inline __m512 tanh(__m512 z) {
  const __m512 a = _mm512_min_ps(_mm512_abs_ps(z), _mm512_set1_ps(44.0f));
  const __m512 e = exp_neg(_mm512_add_ps(a, a));
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 t = _mm512_fmsub_ps(_mm512_set1_ps(2.0f), recip(_mm512_add_ps(one, e)), one);
  return _mm512_or_ps(t, _mm512_and_ps(z, _mm512_set1_ps(-0.0f)));
}

// Rows<>::lstm_fwd's contract (gates.h), 16 units per iteration, the last one masked.
void lstm_fwd(int64_t w, float* z, const float* b, const float* cprev, float* c, float* h) {
  for (int64_t j = 0; j < w; j += 16) {
    const __mmask16 m = w - j >= 16 ? 0xffff : static_cast<__mmask16>((1u << (w - j)) - 1);
    auto in = [&](int g) {
      return _mm512_add_ps(_mm512_maskz_loadu_ps(m, z + g * w + j), _mm512_maskz_loadu_ps(m, b + g * w + j));
    };
    const __m512 i = sigmoid(in(0)), f = sigmoid(in(1)), g = tanh(in(2)), o = sigmoid(in(3));
    const __m512 ct = _mm512_fmadd_ps(f, _mm512_maskz_loadu_ps(m, cprev + j), _mm512_mul_ps(i, g));
    _mm512_mask_storeu_ps(z + j, m, i);
    _mm512_mask_storeu_ps(z + w + j, m, f);
    _mm512_mask_storeu_ps(z + 2 * w + j, m, g);
    _mm512_mask_storeu_ps(z + 3 * w + j, m, o);
    _mm512_mask_storeu_ps(c + j, m, ct);
    _mm512_mask_storeu_ps(h + j, m, _mm512_mul_ps(o, tanh(ct)));
  }
}

// Rows<>::lstm_bwd's contract (gates.h), likewise.
void lstm_bwd(int64_t w, const float* gates, const float* c, const float* cprev, const float* dy, const float* dhn,
              float* dcn, float* dz) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t j = 0; j < w; j += 16) {
    const __mmask16 m = w - j >= 16 ? 0xffff : static_cast<__mmask16>((1u << (w - j)) - 1);
    auto ld = [&](const float* p) { return _mm512_maskz_loadu_ps(m, p + j); };
    __m512 dh = ld(dhn);
    if (dy) dh = _mm512_add_ps(dh, ld(dy));
    const __m512 i = ld(gates), f = ld(gates + w), g = ld(gates + 2 * w), o = ld(gates + 3 * w);
    const __m512 tc = tanh(ld(c)), dho = _mm512_mul_ps(dh, o);
    const __m512 dc = _mm512_fmadd_ps(dho, _mm512_fnmadd_ps(tc, tc, one), ld(dcn));
    _mm512_mask_storeu_ps(dz + 3 * w + j, m, _mm512_mul_ps(_mm512_mul_ps(dho, tc), _mm512_sub_ps(one, o)));
    _mm512_mask_storeu_ps(dz + j, m, _mm512_mul_ps(_mm512_mul_ps(dc, g), _mm512_fnmadd_ps(i, i, i)));
    _mm512_mask_storeu_ps(dz + w + j, m, _mm512_mul_ps(_mm512_mul_ps(dc, ld(cprev)), _mm512_fnmadd_ps(f, f, f)));
    _mm512_mask_storeu_ps(dz + 2 * w + j, m, _mm512_mul_ps(_mm512_mul_ps(dc, i), _mm512_fnmadd_ps(g, g, one)));
    _mm512_mask_storeu_ps(dcn + j, m, _mm512_mul_ps(dc, f));
  }
}

}  // namespace
#endif

bool gate_kernels_avx512(GateKernels& k) {
#if defined(__x86_64__)
  k = Rows<FastMath>::table("avx512");
  k.lstm_fwd = &lstm_fwd;
  k.lstm_bwd = &lstm_bwd;
  return true;
#else
  (void)k;
  return false;
#endif
}

}  // namespace forgeml::rnn
