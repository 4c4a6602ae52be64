// Gate math compiled with the avx2 flags (CMake gives *_avx2.cpp its ISA); see gates.h.
// The LSTM rows are written with intrinsics, as in gates_avx512.cpp: GCC's vectorised FastMath
// (degree-7 Taylor exp, clamps as blends) was 12% of an LSTM N32 T100 H256 forward on Zen 2, these
// rows ~10%.
// Whole vectors are loaded and stored plainly; only a row's last partial vector is masked
// (vmaskmovps stores are microcoded on Zen 2).
#include "kernels.h"
#if defined(__x86_64__)
#include <immintrin.h>

#include "gates.h"
#endif

namespace forgeml::rnn {

#if defined(__x86_64__)
namespace {

// e^{-a} for a in [0, 88]: 2^n * p(r), n = round(-a / ln 2), |r| <= ln2/2, with gates_avx512.cpp's
// degree-5 equal-ripple polynomial; 2^n is built in the exponent bits (n >= -127: 2^-127 and
// below come out as 0, where e^{-a} < 1e-38 is lost against 1 anyway).
inline __m256 exp_neg(__m256 a) {
  const __m256 y = _mm256_sub_ps(_mm256_setzero_ps(), a);
  const __m256 n =
      _mm256_round_ps(_mm256_mul_ps(y, _mm256_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145752f), y);  // ln2 in two parts: exact reduction
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860677e-6f), r);
  __m256 p = _mm256_set1_ps(8.290314115583897e-3f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.189793020486832e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.1666763573884964f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.4999915063381195f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.9999997019767761f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 scale = _mm256_and_ps(_mm256_castsi256_ps(e), _mm256_cmp_ps(n, _mm256_set1_ps(-127.0f), _CMP_GT_OQ));
  return _mm256_mul_ps(p, scale);
}

// 1 / d for d in [1, 2], correctly rounded: a division, not vrcpps + Newton (whose 12-bit estimate
// left 1 / 2 at 0.49999997 on Zen 2, so tanh(0) came out as -3e-8 instead of 0).
inline __m256 recip(__m256 d) { return _mm256_div_ps(_mm256_set1_ps(1.0f), d); }

inline __m256 abs_ps(__m256 z) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z); }

// From e = e^{-|z|} in (0, 1], so that nothing overflows: 1 / (1 + e) for z >= 0, e / (1 + e) below.
inline __m256 sigmoid(__m256 z) {
  const __m256 e = exp_neg(_mm256_min_ps(abs_ps(z), _mm256_set1_ps(88.0f)));
  const __m256 r = recip(_mm256_add_ps(_mm256_set1_ps(1.0f), e));
  return _mm256_blendv_ps(r, _mm256_mul_ps(r, e), z);  // the sign bit of z picks
}

// (1 - e) / (1 + e) = 2 / (1 + e) - 1 with e = e^{-2|z|}, and the sign of z.
inline __m256 tanh(__m256 z) {
  const __m256 a = _mm256_min_ps(abs_ps(z), _mm256_set1_ps(44.0f));
  const __m256 e = exp_neg(_mm256_add_ps(a, a));
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 t = _mm256_fmsub_ps(_mm256_set1_ps(2.0f), recip(_mm256_add_ps(one, e)), one);
  return _mm256_or_ps(t, _mm256_and_ps(z, _mm256_set1_ps(-0.0f)));
}

// Loads and stores of 8 units from j, masked when fewer than 8 are left.
struct Span {
  int64_t j, left;
  __m256i mask;
  Span(int64_t j, int64_t w)
      : j(j),
        left(w - j),
        mask(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::min<int64_t>(w - j, 8))),
                                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))) {}
  __m256 load(const float* p) const { return left >= 8 ? _mm256_loadu_ps(p + j) : _mm256_maskload_ps(p + j, mask); }
  void store(float* p, __m256 v) const {
    if (left >= 8) _mm256_storeu_ps(p + j, v);
    else _mm256_maskstore_ps(p + j, mask, v);
  }
};

// Rows<>::lstm_fwd's contract (gates.h), 8 units per iteration.
void lstm_fwd(int64_t w, float* z, const float* b, const float* cprev, float* c, float* h) {
  for (int64_t j = 0; j < w; j += 8) {
    const Span s(j, w);
    auto in = [&](int g) { return _mm256_add_ps(s.load(z + g * w), s.load(b + g * w)); };
    const __m256 i = sigmoid(in(0)), f = sigmoid(in(1)), g = tanh(in(2)), o = sigmoid(in(3));
    const __m256 ct = _mm256_fmadd_ps(f, s.load(cprev), _mm256_mul_ps(i, g));
    s.store(z, i);
    s.store(z + w, f);
    s.store(z + 2 * w, g);
    s.store(z + 3 * w, o);
    s.store(c, ct);
    s.store(h, _mm256_mul_ps(o, tanh(ct)));
  }
}

// Rows<>::lstm_bwd's contract (gates.h), likewise.
void lstm_bwd(int64_t w, const float* gates, const float* c, const float* cprev, const float* dy, const float* dhn,
              float* dcn, float* dz) {
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int64_t j = 0; j < w; j += 8) {
    const Span s(j, w);
    __m256 dh = s.load(dhn);
    if (dy) dh = _mm256_add_ps(dh, s.load(dy));
    const __m256 i = s.load(gates), f = s.load(gates + w), g = s.load(gates + 2 * w), o = s.load(gates + 3 * w);
    const __m256 tc = tanh(s.load(c)), dho = _mm256_mul_ps(dh, o);
    const __m256 dc = _mm256_fmadd_ps(dho, _mm256_fnmadd_ps(tc, tc, one), s.load(dcn));
    s.store(dz + 3 * w, _mm256_mul_ps(_mm256_mul_ps(dho, tc), _mm256_sub_ps(one, o)));
    s.store(dz, _mm256_mul_ps(_mm256_mul_ps(dc, g), _mm256_fnmadd_ps(i, i, i)));
    s.store(dz + w, _mm256_mul_ps(_mm256_mul_ps(dc, s.load(cprev)), _mm256_fnmadd_ps(f, f, f)));
    s.store(dz + 2 * w, _mm256_mul_ps(_mm256_mul_ps(dc, i), _mm256_fnmadd_ps(g, g, one)));
    s.store(dcn, _mm256_mul_ps(dc, f));
  }
}

}  // namespace
#endif

bool gate_kernels_avx2(GateKernels& k) {
#if defined(__x86_64__)
  k = Rows<FastMath>::table("avx2");
  k.lstm_fwd = &lstm_fwd;
  k.lstm_bwd = &lstm_bwd;
  return true;
#else
  (void)k;
  return false;
#endif
}

}  // namespace forgeml::rnn
