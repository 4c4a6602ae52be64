// Internal to csrc/cpu/conv: the forward pooling loops, compiled twice: in pool.cpp for any CPU
// and in pool_avx512.cpp with AVX-512 enabled (the same arithmetic; only the vector width differs).
// Everything here has internal linkage, so the two builds never merge at link time.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "cpu/conv/conv.h"

#pragma GCC diagnostic ignored "-Wpsabi"  // Lanes never crosses a call boundary of another unit

namespace forgeml::conv {

// Output rows [r0, r1) (row = n * OH + oh) of pool_forward, by ISA.
void pool_rows_portable(const Geom& g, Pool kind, const float* x, float* y, int64_t r0, int64_t r1);
void pool_rows_avx512(const Geom& g, Pool kind, const float* x, float* y, int64_t r0, int64_t r1);
bool pool_rows_avx512_available();  // built with AVX-512 and the CPU has it
// The active ISA's (pool.cpp); the int8 convolution's fused pooling uses it too.
using PoolRows = void (*)(const Geom& g, Pool kind, const float* x, float* y, int64_t r0, int64_t r1);
PoolRows active_pool_rows();

namespace pool_detail {
namespace {

// max that lets NaN win, as NumPy's max and Keras's max pooling do (std::max keeps its first
// argument when either is NaN, which would hide a NaN input).
inline float max_nan(float best, float v) { return v > best || v != v ? v : best; }

struct Window {
  int64_t h0, h1, w0, w1;  // real rows [h0, h1), columns [w0, w1)
};

inline Window window(const Geom& g, int64_t oh, int64_t ow) {
  int64_t h = oh * g.sh - g.pt, w = ow * g.sw - g.pl;
  return {std::max<int64_t>(h, 0), std::min(g.H, h + g.KH), std::max<int64_t>(w, 0), std::min(g.W, w + g.KW)};
}

// 16 channels as one value (GCC vector extension: one zmm on AVX-512, four xmm in the portable
// build), so a window's block of channels is reduced in registers and stored once.
constexpr int64_t kLanes = 16;
typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));

inline Lanes load(const float* p) {
  Lanes v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, Lanes v) { __builtin_memcpy(p, &v, sizeof v); }
// max_nan lane by lane
inline Lanes max_nan(Lanes best, Lanes v) { return (v > best) | (v != v) ? v : best; }

// y = max over count elements x, x + step, ... channel by channel (count >= 1). Starting from the
// first element is the same as starting from -inf.
inline void max_rows(const float* __restrict x, int64_t step, int64_t count, float* __restrict y, int64_t C) {
  int64_t c0 = 0;
  for (; c0 + kLanes <= C; c0 += kLanes) {
    Lanes acc = load(x + c0);
    for (int64_t t = 1; t < count; ++t) acc = max_nan(acc, load(x + t * step + c0));
    store(y + c0, acc);
  }
  for (int64_t c = c0; c < C; ++c) {
    float m = x[c];
    for (int64_t t = 1; t < count; ++t) m = max_nan(m, x[t * step + c]);
    y[c] = m;
  }
}

// y = 0 + x + (x + step) + ... in that order (the sum from zero, as before: -0 + 0 is +0).
inline void sum_rows(const float* __restrict x, int64_t step, int64_t count, float* __restrict y, int64_t C) {
  for (int64_t c = 0; c < C; ++c) y[c] = 0.f + x[c];
  for (int64_t t = 1; t < count; ++t) {
    const float* __restrict xp = x + t * step;
    for (int64_t c = 0; c < C; ++c) y[c] += xp[c];
  }
}

// The window's elements (rows [h0, h1) x columns [w0, w1) of an image x (., W, C)) max-reduced
// into y.
inline void max_window(const float* __restrict x, int64_t W, int64_t C, int64_t h0, int64_t h1, int64_t w0, int64_t w1,
                       float* __restrict y) {
  const int64_t cols = w1 - w0, rows = h1 - h0;
  if (rows == 1) return max_rows(x + (h0 * W + w0) * C, C, cols, y, C);
  if (cols == 1) return max_rows(x + (h0 * W + w0) * C, W * C, rows, y, C);
  const float* first = x + (h0 * W + w0) * C;
  if (rows == 2 && cols == 2) {  // the common 2 x 2 as a tree: max_nan is associative (the max,
    // else the last NaN in window order; the first of equal values), so the bits are the loop's
    const float *b = first + C, *c = first + W * C, *d = c + C;
    int64_t c0 = 0;
    for (; c0 + kLanes <= C; c0 += kLanes)
      store(y + c0, max_nan(max_nan(load(first + c0), load(b + c0)), max_nan(load(c + c0), load(d + c0))));
    for (; c0 < C; ++c0) y[c0] = max_nan(max_nan(first[c0], b[c0]), max_nan(c[c0], d[c0]));
    return;
  }
  int64_t c0 = 0;
  for (; c0 + kLanes <= C; c0 += kLanes) {
    Lanes acc = load(first + c0);
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = ih == h0 ? w0 + 1 : w0; iw < w1; ++iw) acc = max_nan(acc, load(x + (ih * W + iw) * C + c0));
    store(y + c0, acc);
  }
  for (int64_t c = c0; c < C; ++c) {
    float m = first[c];
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = ih == h0 ? w0 + 1 : w0; iw < w1; ++iw) m = max_nan(m, x[(ih * W + iw) * C + c]);
    y[c] = m;
  }
}

// Output rows [r0, r1) (row = n * OH + oh). A window's elements are taken row by row, column by
// column, as before (the max is exact in any order; the sum keeps its order); max starts from
// the first element (the same as starting from -inf), so a window of 1 x 1 is a copy.
// Max over 2 x 2 windows with stride 2, every window inside the input (the usual MaxPooling2D):
// four loads and three max_nan per 16 channels, no window arithmetic per pixel.
inline void max_rows_2x2(const Geom& g, const float* x, float* y, int64_t r0, int64_t r1) {
  const int64_t C = g.C, line = g.W * C;
  for (int64_t row = r0; row < r1; ++row) {
    const int64_t n = row / g.OH, oh = row % g.OH;
    const float* a = x + (n * g.H + 2 * oh) * line;
    const float* b = a + line;
    float* yp = y + row * g.OW * C;
    for (int64_t ow = 0; ow < g.OW; ++ow, a += 2 * C, b += 2 * C, yp += C) {
      int64_t c0 = 0;
      for (; c0 + kLanes <= C; c0 += kLanes) {
#if defined(__AVX512F__)
        // without NaN, max_nan(p, v) is vmaxps(v, p) (v if v > p, else p): one instruction
        // instead of two compares and a blend; a NaN anywhere in the block takes the exact path
        const __m512 v0 = _mm512_loadu_ps(a + c0), v1 = _mm512_loadu_ps(a + C + c0);
        const __m512 v2 = _mm512_loadu_ps(b + c0), v3 = _mm512_loadu_ps(b + C + c0);
        if (!(_mm512_cmp_ps_mask(v0, v1, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(v2, v3, _CMP_UNORD_Q))) {
          _mm512_storeu_ps(yp + c0, _mm512_max_ps(_mm512_max_ps(v3, v2), _mm512_max_ps(v1, v0)));
          continue;
        }
#endif
        store(yp + c0, max_nan(max_nan(load(a + c0), load(a + C + c0)), max_nan(load(b + c0), load(b + C + c0))));
      }
      for (; c0 < C; ++c0) yp[c0] = max_nan(max_nan(a[c0], a[C + c0]), max_nan(b[c0], b[C + c0]));
    }
  }
}

inline void pool_rows(const Geom& g, Pool kind, const float* x, float* y, int64_t r0, int64_t r1) {
  const int64_t C = g.C;
  if (kind == Pool::max && g.KH == 2 && g.KW == 2 && g.sh == 2 && g.sw == 2 && g.pt == 0 && g.pl == 0 &&
      2 * g.OH <= g.H && 2 * g.OW <= g.W)
    return max_rows_2x2(g, x, y, r0, r1);
  for (int64_t row = r0; row < r1; ++row) {
    const int64_t n = row / g.OH, oh = row % g.OH;
    const float* xn = x + n * g.H * g.W * C;
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      float* __restrict yp = y + (row * g.OW + ow) * C;
      const Window win = window(g, oh, ow);
      const int64_t cols = win.w1 - win.w0;
      if (win.h1 <= win.h0 || cols <= 0) {  // no real element (only with unusual padding)
        std::fill(yp, yp + C, kind == Pool::max ? -std::numeric_limits<float>::infinity() : 0.f);
        continue;
      }
      if (kind == Pool::max) {
        max_window(xn, g.W, C, win.h0, win.h1, win.w0, win.w1, yp);
      } else {
        sum_rows(xn + (win.h0 * g.W + win.w0) * C, C, cols, yp, C);
        for (int64_t ih = win.h0 + 1; ih < win.h1; ++ih) {
          const float* __restrict xp = xn + (ih * g.W + win.w0) * C;
          for (int64_t iw = 0; iw < cols; ++iw, xp += C)
            for (int64_t c = 0; c < C; ++c) yp[c] += xp[c];
        }
        const float inv = 1.f / static_cast<float>((win.h1 - win.h0) * cols);
        for (int64_t c = 0; c < C; ++c) yp[c] *= inv;
      }
    }
  }
}

}  // namespace
}  // namespace pool_detail
}  // namespace forgeml::conv
