// Winograd F(2x2, 3x3) forward (winograd.h) with AVX2 transforms over 8-channel vectors; the
// products are forgeml's SGEMM (its AVX2 micro-kernel) on weights packed once per call. Same
// transforms and order of operations as winograd_avx512.cpp, so both round alike.
#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <memory>

#include "cpu/conv/winograd.h"
#include "forgeml/isa_local.h"
#include "forgeml/parallel.h"

namespace forgeml::conv {

namespace {

// Tiles per chunk: 16 x 32 x C floats of V and 16 x 32 x O of products stay in a 512 KiB L2.
constexpr int64_t kChunkTiles = 32;
// The weight gradient's chunks: a deeper product per GEMM call (u[e] is read and written once
// per call), and chunks between Ctrl-C checks.
constexpr int64_t kGradTiles = 128, kGradGroup = 64;

__m256i lanes(int64_t left) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::min<int64_t>(left, 8))),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Plain loads and stores for whole vectors, masked ones only for a channel tail: a masked store
// (vmaskmovps) is microcoded on AMD Zen, ~10x slower.
__m256 load(const float* p, __m256i k, bool whole) { return whole ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, k); }
void store(float* p, __m256i k, bool whole, __m256 v) {
  if (whole) _mm256_storeu_ps(p, v);
  else _mm256_maskstore_ps(p, k, v);
}

// V[e] (m, C) for tiles [t0, t0 + m): each tile's 4x4 input patch, zeros outside the image.
void transform_input(const Geom& g, const WinogradTiles& tl, const float* x, int64_t t0, int64_t m, const float* zeros,
                     float* v) {
  const int64_t C = g.C, stride_e = m * C;
  for (int64_t r = 0; r < m; ++r) {
    const float* d[4][4];
    winograd_patch(g, tl, x, t0 + r, zeros, d);
    float* out = v + r * C;
    for (int64_t c = 0; c < C; c += 8) {
      const __m256i k = lanes(C - c);
      const bool whole = C - c >= 8;
      __m256 b[4][4];  // B^T d
      for (int j = 0; j < 4; ++j) {
        const __m256 d0 = load(d[0][j] + c, k, whole), d1 = load(d[1][j] + c, k, whole);
        const __m256 d2 = load(d[2][j] + c, k, whole), d3 = load(d[3][j] + c, k, whole);
        b[0][j] = _mm256_sub_ps(d0, d2), b[1][j] = _mm256_add_ps(d1, d2);
        b[2][j] = _mm256_sub_ps(d2, d1), b[3][j] = _mm256_sub_ps(d1, d3);
      }
      for (int i = 0; i < 4; ++i) {  // (B^T d) B
        float* o = out + 4 * i * stride_e + c;
        store(o, k, whole, _mm256_sub_ps(b[i][0], b[i][2]));
        store(o + stride_e, k, whole, _mm256_add_ps(b[i][1], b[i][2]));
        store(o + 2 * stride_e, k, whole, _mm256_sub_ps(b[i][2], b[i][1]));
        store(o + 3 * stride_e, k, whole, _mm256_sub_ps(b[i][1], b[i][3]));
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
    for (int64_t o = 0; o < O; o += 8) {
      const __m256i k = lanes(O - o);
      const bool whole = O - o >= 8;
      __m256 a[2][4];  // A^T M
      for (int j = 0; j < 4; ++j) {
        const __m256 m0 = load(s + j * stride_e + o, k, whole);
        const __m256 m1 = load(s + (4 + j) * stride_e + o, k, whole);
        const __m256 m2 = load(s + (8 + j) * stride_e + o, k, whole);
        const __m256 m3 = load(s + (12 + j) * stride_e + o, k, whole);
        a[0][j] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
        a[1][j] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
      }
      const __m256 b = bias ? load(bias + o, k, whole) : _mm256_setzero_ps();
      __m256 q[4];
      for (int i = 0; i < 2; ++i) {
        q[2 * i] = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a[i][0], a[i][1]), a[i][2]), b);
        q[2 * i + 1] = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(a[i][1], a[i][2]), a[i][3]), b);
      }
      for (int p = 0; p < 4; ++p)  // max(0, q): a NaN q is the second operand, so it stays NaN
        if (keep[p]) store(dst[p] + o, k, whole, relu ? _mm256_max_ps(_mm256_setzero_ps(), q[p]) : q[p]);
    }
    if (act != gemm::Activation::none && !relu)
      for (int p = 0; p < 4; ++p)
        if (keep[p]) gemm::apply_activation(act, dst[p], O);
  }
}

// The weight gradient's transform of dy, the transpose of transform_output: G[e] (m, O) =
// A dy A^T for each tile's 2x2 block of dy (zeros past the output's edge),
// A = [1 0; 1 1; 1 -1; 0 -1].
void transform_grad(const Geom& g, const WinogradTiles& tl, const float* dy, int64_t t0, int64_t m, const float* zeros,
                    float* gm) {
  const int64_t O = g.O, stride_e = m * O;
  for (int64_t r = 0; r < m; ++r) {
    int64_t off[4];
    winograd_outputs(g, tl, t0 + r, off);
    const float* src[2][2];
    for (int p = 0; p < 4; ++p) src[p / 2][p % 2] = off[p] >= 0 ? dy + off[p] : zeros;
    float* out = gm + r * O;
    for (int64_t o = 0; o < O; o += 8) {
      const __m256i k = lanes(O - o);
      const bool whole = O - o >= 8;
      __m256 a[4][2];  // A d
      for (int j = 0; j < 2; ++j) {
        const __m256 d0 = load(src[0][j] + o, k, whole), d1 = load(src[1][j] + o, k, whole);
        a[0][j] = d0, a[1][j] = _mm256_add_ps(d0, d1), a[2][j] = _mm256_sub_ps(d0, d1);
        a[3][j] = _mm256_sub_ps(_mm256_setzero_ps(), d1);
      }
      for (int i = 0; i < 4; ++i) {  // (A d) A^T
        float* q = out + 4 * i * stride_e + o;
        store(q, k, whole, a[i][0]);
        store(q + stride_e, k, whole, _mm256_add_ps(a[i][0], a[i][1]));
        store(q + 2 * stride_e, k, whole, _mm256_sub_ps(a[i][0], a[i][1]));
        store(q + 3 * stride_e, k, whole, _mm256_sub_ps(_mm256_setzero_ps(), a[i][1]));
      }
    }
  }
}

// dw (3, 3, C, O) = G^T U G for the summed products u[e] (C, O), G as in winograd_weights.
void weights_back(const Geom& g, const float* u, float* dw) {
  const int64_t CO = g.C * g.O;
  for (int64_t i = 0; i < CO; ++i) {
    float t[3][4];  // G^T U
    for (int j = 0; j < 4; ++j) {
      const float u0 = u[j * CO + i], u1 = u[(4 + j) * CO + i], u2 = u[(8 + j) * CO + i], u3 = u[(12 + j) * CO + i];
      t[0][j] = u0 + 0.5f * (u1 + u2), t[1][j] = 0.5f * (u1 - u2), t[2][j] = 0.5f * (u1 + u2) + u3;
    }
    for (int kh = 0; kh < 3; ++kh) {  // (G^T U) G
      dw[(kh * 3) * CO + i] = t[kh][0] + 0.5f * (t[kh][1] + t[kh][2]);
      dw[(kh * 3 + 1) * CO + i] = 0.5f * (t[kh][1] - t[kh][2]);
      dw[(kh * 3 + 2) * CO + i] = 0.5f * (t[kh][1] + t[kh][2]) + t[kh][3];
    }
  }
}

}  // namespace

void winograd_forward_avx2(const Geom& g, const float* x, const float* w, const float* bias, gemm::Activation act,
                           float* y) {
  winograd_run(g, x, w, bias, act, y, kChunkTiles, transform_input, transform_output);
}

// dw = sum over tiles and images of G^T [(A dy A^T) . (B^T x B)] G: 16 GEMMs u[e] += V[e]^T G[e]
// (C x O, the tiles as depth) instead of one of depth 9 C per pixel. Each thread sums a fixed
// range of tiles, and the partial sums are added in thread order: the same bits on every run.
void winograd_weight_grad_avx2(const Geom& g, const float* x, const float* dy, float* dw) {
  const WinogradTiles tl{(g.OH + 1) / 2, (g.OW + 1) / 2};
  const int64_t tiles = g.N * (tl.th * tl.tw), CO = g.C * g.O;
  const int64_t chunks = (tiles + kGradTiles - 1) / kGradTiles;
  const int T = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(num_threads(), chunks)));
  LocalVec<float> u(static_cast<size_t>(T) * 16 * CO, 0.f);
  const LocalVec<float> zeros(std::max(g.C, g.O), 0.f);
  for (int64_t c0 = 0; c0 < chunks; c0 += kGradGroup) {
    const int64_t c1 = std::min(chunks, c0 + kGradGroup);
    parallel_for(
        T, 1,
        [&](int64_t tb, int64_t te) {
          std::unique_ptr<float[]> v(new float[16 * kGradTiles * g.C]), gm(new float[16 * kGradTiles * g.O]);
          for (int64_t th = tb; th < te; ++th) {
            float* ut = u.data() + th * 16 * CO;
            for (int64_t c = c0 + (c1 - c0) * th / T; c < c0 + (c1 - c0) * (th + 1) / T; ++c) {
              const int64_t t0 = c * kGradTiles, m = std::min(kGradTiles, tiles - t0);
              transform_input(g, tl, x, t0, m, zeros.data(), v.get());
              transform_grad(g, tl, dy, t0, m, zeros.data(), gm.get());
              for (int e = 0; e < 16; ++e)
                gemm::sgemm(true, false, g.C, g.O, m, 1.f, v.get() + e * m * g.C, g.C, gm.get() + e * m * g.O, g.O, 1.f,
                            ut + e * CO, g.O, {}, 1);
            }
          }
        },
        T);
    check_interrupt();
  }
  for (int th = 1; th < T; ++th)
    for (int64_t i = 0; i < 16 * CO; ++i) u[i] += u[th * 16 * CO + i];
  weights_back(g, u.data(), dw);
}

}  // namespace forgeml::conv
#endif  // __x86_64__: conv_gemm.cpp's AVX2 entry calls it only there
