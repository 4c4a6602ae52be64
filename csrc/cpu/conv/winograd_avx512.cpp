// Winograd F(2x2, 3x3) forward (winograd.h) with AVX-512 transforms over channel vectors; the
// products are forgeml's SGEMM on weights packed once per call.
//   U = G g G^T (4x4 per input / output channel pair), V = B^T d B (4x4 input patch d),
//   y tile (2x2) = A^T (U . V summed over input channels) A, with
//   G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1], B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],
//   A^T = [1 1 1 0; 0 1 -1 -1].
#if defined(__x86_64__)
#include <immintrin.h>

#include "cpu/conv/winograd.h"

namespace forgeml::conv {

namespace {

constexpr int64_t kChunkTiles = 48;  // tiles per chunk: 16 x 48 x C floats of V stay in L2

inline __mmask16 lanes(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
}

// V[e] (m, C) for tiles [t0, t0 + m): each tile's 4x4 input patch, zeros outside the image.
void transform_input(const Geom& g, const WinogradTiles& tl, const float* x, int64_t t0, int64_t m, const float* zeros,
                     float* v) {
  const int64_t C = g.C, stride_e = m * C;
  for (int64_t r = 0; r < m; ++r) {
    const float* d[4][4];
    winograd_patch(g, tl, x, t0 + r, zeros, d);
    float* out = v + r * C;
    for (int64_t c = 0; c < C; c += 16) {
      const __mmask16 k = lanes(C - c);
      __m512 b[4][4];  // B^T d
      for (int j = 0; j < 4; ++j) {
        const __m512 d0 = _mm512_maskz_loadu_ps(k, d[0][j] + c), d1 = _mm512_maskz_loadu_ps(k, d[1][j] + c);
        const __m512 d2 = _mm512_maskz_loadu_ps(k, d[2][j] + c), d3 = _mm512_maskz_loadu_ps(k, d[3][j] + c);
        b[0][j] = _mm512_sub_ps(d0, d2), b[1][j] = _mm512_add_ps(d1, d2);
        b[2][j] = _mm512_sub_ps(d2, d1), b[3][j] = _mm512_sub_ps(d1, d3);
      }
      for (int i = 0; i < 4; ++i) {  // (B^T d) B
        float* o = out + 4 * i * stride_e + c;
        _mm512_mask_storeu_ps(o, k, _mm512_sub_ps(b[i][0], b[i][2]));
        _mm512_mask_storeu_ps(o + stride_e, k, _mm512_add_ps(b[i][1], b[i][2]));
        _mm512_mask_storeu_ps(o + 2 * stride_e, k, _mm512_sub_ps(b[i][2], b[i][1]));
        _mm512_mask_storeu_ps(o + 3 * stride_e, k, _mm512_sub_ps(b[i][1], b[i][3]));
      }
    }
  }
}

// y tiles from the products M[e] (m, O): A^T M A, then bias and activation, inside the output.
void transform_output(const Geom& g, const WinogradTiles& tl, const float* mp, int64_t t0, int64_t m, const float* bias,
                      gemm::Activation act, float* y) {
  const int64_t O = g.O, stride_e = m * O;
  const bool relu = act == gemm::Activation::relu;
  for (int64_t r = 0; r < m; ++r) {
    int64_t off[4];
    winograd_outputs(g, tl, t0 + r, off);
    float* dst[4];
    bool keep[4];
    for (int p = 0; p < 4; ++p) keep[p] = off[p] >= 0, dst[p] = keep[p] ? y + off[p] : nullptr;
    const float* s = mp + r * O;
    for (int64_t o = 0; o < O; o += 16) {
      const __mmask16 k = lanes(O - o);
      __m512 a[2][4];  // A^T M
      for (int j = 0; j < 4; ++j) {
        const __m512 m0 = _mm512_maskz_loadu_ps(k, s + j * stride_e + o);
        const __m512 m1 = _mm512_maskz_loadu_ps(k, s + (4 + j) * stride_e + o);
        const __m512 m2 = _mm512_maskz_loadu_ps(k, s + (8 + j) * stride_e + o);
        const __m512 m3 = _mm512_maskz_loadu_ps(k, s + (12 + j) * stride_e + o);
        a[0][j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
        a[1][j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
      }
      const __m512 b = bias ? _mm512_maskz_loadu_ps(k, bias + o) : _mm512_setzero_ps();
      __m512 q[4];
      for (int i = 0; i < 2; ++i) {
        q[2 * i] = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a[i][0], a[i][1]), a[i][2]), b);
        q[2 * i + 1] = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(a[i][1], a[i][2]), a[i][3]), b);
      }
      for (int p = 0; p < 4; ++p)  // max(0, q): a NaN q is the second operand, so it stays NaN
        if (keep[p]) _mm512_mask_storeu_ps(dst[p] + o, k, relu ? _mm512_max_ps(_mm512_setzero_ps(), q[p]) : q[p]);
    }
    if (act != gemm::Activation::none && !relu)
      for (int p = 0; p < 4; ++p)
        if (keep[p]) gemm::apply_activation(act, dst[p], O);
  }
}

}  // namespace

void winograd_forward(const Geom& g, const float* x, const float* w, const float* bias, gemm::Activation act,
                      float* y) {
  winograd_run(g, x, w, bias, act, y, kChunkTiles, transform_input, transform_output);
}

}  // namespace forgeml::conv
#endif  // __x86_64__: conv_avx512.cpp, the only caller, is x86-only too
