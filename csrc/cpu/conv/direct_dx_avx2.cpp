// AVX2 direct data gradient for inputs with few channels (C <= 4: a network's RGB or grey first
// layer) at stride 1: dx[n, ih, iw, c] = sum over taps (kh, kw) and outputs o of
//   dy[n, ih + pt - kh*dh, iw + pl - kw*dw, o] * w[kh, kw, c, o].
// The GEMM path computed dy @ w^T into patch rows of KH*KW*C floats and scattered them back
// (col2im): ~half of a C = 3 layer's backward on Zen 2, and Winograd does not pay with C outputs.
// Here a tile is P pixels of one input row x all C channels in P*C <= 12 ymm accumulators over
// the o axis (8 at a time: the C weights loaded once serve the P pixels); the sums over the 8 lanes
// come out by hadd trees as P*C contiguous floats, which is dx's layout. Taps that fall outside dy
// read a zero row, so every tile runs the same code.
#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>

#include "cpu/conv/kernels.h"
#include "forgeml/isa_local.h"
#include "forgeml/parallel.h"

namespace forgeml::conv {

namespace {

// The 8 lanes of a[0..4) each summed, in order.
inline __m128 sum4(const __m256* a) {
  const __m256 u = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  return _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));
}

// Rows r in [r0, r1) of dx (r = n*H + ih), P pixels a tile.
template <int C, int P>
void data_grad_rows(const Geom& g, const float* w, const float* dy, const float* zeros, int64_t r0, int64_t r1,
                    float* dx) {
  constexpr int A = C * P;
  static_assert(A % 4 == 0 && A <= 12, "the accumulators are summed four at a time, 12 at most");
  const int64_t O = g.O;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / g.H, ih = r % g.H;
    for (int64_t iw0 = 0; iw0 < g.W; iw0 += P) {
      __m256 acc[A];
      for (int a = 0; a < A; ++a) acc[a] = _mm256_setzero_ps();
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        const int64_t oh = ih + g.pt - kh * g.dh;
        if (oh < 0 || oh >= g.OH) continue;
        const float* dy_row = dy + (n * g.OH + oh) * g.OW * O;
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const float* src[P];
          for (int p = 0; p < P; ++p) {
            const int64_t ow = iw0 + p + g.pl - kw * g.dw;
            src[p] = iw0 + p < g.W && ow >= 0 && ow < g.OW ? dy_row + ow * O : zeros;
          }
          const float* wk = w + (kh * g.KW + kw) * C * O;
          for (int64_t o = 0; o < O; o += 8) {
            __m256 wv[C];
            for (int c = 0; c < C; ++c) wv[c] = _mm256_loadu_ps(wk + c * O + o);
            for (int p = 0; p < P; ++p) {
              const __m256 d = _mm256_loadu_ps(src[p] + o);
              for (int c = 0; c < C; ++c) acc[p * C + c] = _mm256_fmadd_ps(d, wv[c], acc[p * C + c]);
            }
          }
        }
      }
      alignas(32) float sums[A];
      for (int a = 0; a < A; a += 4) _mm_store_ps(sums + a, sum4(acc + a));
      const int64_t pixels = std::min<int64_t>(P, g.W - iw0);
      std::copy(sums, sums + pixels * C, dx + (r * g.W + iw0) * C);
    }
  }
}

template <int C, int P>
void data_grad(const Geom& g, const float* w, const float* dy, float* dx) {
  LocalVec<float> zeros(g.O, 0.f);
  parallel_for(g.N * g.H, 4, [&](int64_t r0, int64_t r1) { data_grad_rows<C, P>(g, w, dy, zeros.data(), r0, r1, dx); });
}

}  // namespace

bool direct_data_grad_avx2_applies(const Geom& g) { return g.C <= 4 && g.O % 8 == 0 && g.sh == 1 && g.sw == 1; }

void direct_data_grad_avx2(const Geom& g, const float* w, const float* dy, float* dx) {
  switch (g.C) {
    case 1:
      return data_grad<1, 8>(g, w, dy, dx);
    case 2:
      return data_grad<2, 6>(g, w, dy, dx);
    case 3:
      return data_grad<3, 4>(g, w, dy, dx);
    default:
      return data_grad<4, 3>(g, w, dy, dx);
  }
}

}  // namespace forgeml::conv

#endif
