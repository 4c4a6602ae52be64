// Internal to csrc/cpu/conv: the pooling loops, compiled for each ISA: in pool.cpp for any CPU,
// in pool_avx2.cpp and (forward only) pool_avx512.cpp with those ISAs enabled (the same
// arithmetic; only the vector width differs). Everything here has internal linkage, so the
// builds never merge at link time.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "cpu/conv/conv.h"
#include "forgeml/isa_local.h"

#pragma GCC diagnostic ignored "-Wpsabi"  // Lanes never crosses a call boundary of another unit

namespace forgeml::conv {

// Output rows [r0, r1) (row = n * OH + oh) of pool_forward, by ISA.
void pool_rows_portable(const Geom& g, Pool kind, const float* x, float* y, int64_t r0, int64_t r1);
void pool_rows_avx512(const Geom& g, Pool kind, const float* x, float* y, int64_t r0, int64_t r1);
void pool_rows_avx2(const Geom& g, Pool kind, const float* x, float* y, int64_t r0, int64_t r1);
bool pool_rows_avx512_available();  // built with AVX-512 and the CPU has it
bool pool_avx2_available();         // built with AVX2 and the CPU has it
// The active ISA's (pool.cpp); the int8 convolution's fused pooling uses it too.
using PoolRows = void (*)(const Geom& g, Pool kind, const float* x, float* y, int64_t r0, int64_t r1);
PoolRows active_pool_rows();

// Images [n0, n1) of pool_backward into dx (zeroed by the caller), by ISA.
void pool_back_portable(const Geom& g, Pool kind, const float* x, const float* dy, float* dx, int64_t n0, int64_t n1);
void pool_back_avx2(const Geom& g, Pool kind, const float* x, const float* dy, float* dx, int64_t n0, int64_t n1);
using PoolBack = void (*)(const Geom& g, Pool kind, const float* x, const float* dy, float* dx, int64_t n0, int64_t n1);
PoolBack active_pool_back();

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

// One register of channels as one value (GCC vector extension: a zmm on AVX-512, a ymm on AVX2,
// an xmm in the portable build), so a window's block of channels is reduced in registers and
// stored once. Wider than the register, GCC lowered the compares one lane at a time.
#if defined(__AVX512F__)
constexpr int64_t kLanes = 16;
#elif defined(__AVX2__)
constexpr int64_t kLanes = 8;
#else
constexpr int64_t kLanes = 4;
#endif
typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));

inline Lanes load(const float* p) {
  Lanes v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, Lanes v) { __builtin_memcpy(p, &v, sizeof v); }
// Lane masks (all ones or zero) and selects by bitwise operations.
typedef int32_t Mask __attribute__((vector_size(kLanes * sizeof(int32_t))));
inline Lanes select(Mask m, Lanes a, Lanes b) { return (Lanes)((m & (Mask)a) | (~m & (Mask)b)); }
// max_nan lane by lane
inline Lanes max_nan(Lanes best, Lanes v) { return select((v > best) | (v != v), v, best); }

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

// The usual MaxPooling2D, 2 x 2 windows with stride 2 all inside the input: the fast paths.
inline bool max_2x2(const Geom& g, Pool kind) {
  return kind == Pool::max && g.KH == 2 && g.KW == 2 && g.sh == 2 && g.sw == 2 && g.pt == 0 && g.pl == 0 &&
         2 * g.OH <= g.H && 2 * g.OW <= g.W;
}

// Output rows [r0, r1) (row = n * OH + oh). A window's elements are taken row by row, column by
// column, as before (the max is exact in any order; the sum keeps its order); max starts from
// the first element (the same as starting from -inf), so a window of 1 x 1 is a copy.
// Max over 2 x 2 windows with stride 2, every window inside the input (the usual MaxPooling2D):
// four loads and three max_nan per register of channels, no window arithmetic per pixel.
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
  if (max_2x2(g, kind)) return max_rows_2x2(g, x, y, r0, r1);
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

// Max over 2 x 2 windows with stride 2, every window inside the input: the windows do not
// overlap, so each element of a window is written once: dy to the first element equal to the
// window's maximum (or the first NaN when the maximum is NaN), zero to the rest.
inline Mask hit(Lanes v, Lanes best) { return (v == best) | ((best != best) & (v != v)); }
inline bool hit(float v, float best) { return v == best || (best != best && v != v); }  // or the first NaN

inline void max_back_2x2(const Geom& g, const float* x, const float* dy, float* dx, int64_t n0, int64_t n1) {
  const int64_t C = g.C, line = g.W * C;
  for (int64_t row = n0 * g.OH; row < n1 * g.OH; ++row) {
    const int64_t n = row / g.OH, oh = row % g.OH;
    const int64_t off = (n * g.H + 2 * oh) * line;
    const float *a = x + off, *b = a + line, *d = dy + row * g.OW * C;
    float *da = dx + off, *db = da + line;
    for (int64_t ow = 0; ow < g.OW; ++ow, a += 2 * C, b += 2 * C, da += 2 * C, db += 2 * C, d += C) {
      int64_t c0 = 0;
      for (; c0 + kLanes <= C; c0 += kLanes) {
        const Lanes v0 = load(a + c0), v1 = load(a + C + c0), v2 = load(b + c0), v3 = load(b + C + c0);
        const Lanes best = max_nan(max_nan(v0, v1), max_nan(v2, v3)), dv = load(d + c0);
        const Mask h0 = hit(v0, best), h1 = hit(v1, best) & ~h0, taken = h0 | h1;
        const Mask h2 = hit(v2, best) & ~taken, h3 = ~(taken | h2);
        store(da + c0, (Lanes)(h0 & (Mask)dv));
        store(da + C + c0, (Lanes)(h1 & (Mask)dv));
        store(db + c0, (Lanes)(h2 & (Mask)dv));
        store(db + C + c0, (Lanes)(h3 & (Mask)dv));
      }
      for (; c0 < C; ++c0) {
        const float best = max_nan(max_nan(a[c0], a[C + c0]), max_nan(b[c0], b[C + c0]));
        const bool h0 = hit(a[c0], best), h1 = !h0 && hit(a[C + c0], best), h2 = !h0 && !h1 && hit(b[c0], best);
        da[c0] = h0 ? d[c0] : 0.f, da[C + c0] = h1 ? d[c0] : 0.f;
        db[c0] = h2 ? d[c0] : 0.f, db[C + c0] = !h0 && !h1 && !h2 ? d[c0] : 0.f;
      }
    }
  }
}

// Images [n0, n1) of pool_backward (dx zeroed). Max: the window's maximum per channel, then a
// pass in window order that hands each channel's dy to the first element equal to it (plain
// float selects that vectorise: branches on random data mispredict half the time).
inline void pool_back(const Geom& g, Pool kind, const float* x, const float* dy, float* dx, int64_t n0, int64_t n1) {
  const int64_t C = g.C, HWC = g.H * g.W * C;
  if (max_2x2(g, kind)) return max_back_2x2(g, x, dy, dx, n0, n1);
  LocalVec<float> best_buf(C), rest_buf(C);
  float* __restrict best = best_buf.data();
  float* __restrict rest = rest_buf.data();
  for (int64_t n = n0; n < n1; ++n) {
    const float* xn = x + n * HWC;
    float* dxn = dx + n * HWC;
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const float* __restrict d = dy + ((n * g.OH + oh) * g.OW + ow) * C;
        Window win = window(g, oh, ow);
        if (kind == Pool::max) {
          std::fill(best, best + C, -std::numeric_limits<float>::infinity());
          for (int64_t ih = win.h0; ih < win.h1; ++ih)
            for (int64_t iw = win.w0; iw < win.w1; ++iw) {
              const float* __restrict xp = xn + (ih * g.W + iw) * C;
              for (int64_t c = 0; c < C; ++c) best[c] = max_nan(best[c], xp[c]);
            }
          std::copy(d, d + C, rest);
          for (int64_t ih = win.h0; ih < win.h1; ++ih)
            for (int64_t iw = win.w0; iw < win.w1; ++iw) {
              const float* __restrict xp = xn + (ih * g.W + iw) * C;
              float* __restrict dp = dxn + (ih * g.W + iw) * C;
              for (int64_t c = 0; c < C; ++c) {
                const bool h = hit(xp[c], best[c]);
                dp[c] += h ? rest[c] : 0.f;
                rest[c] = h ? 0.f : rest[c];  // given: later equal elements add 0
              }
            }
        } else {
          float inv = 1.f / static_cast<float>((win.h1 - win.h0) * (win.w1 - win.w0));
          for (int64_t ih = win.h0; ih < win.h1; ++ih)
            for (int64_t iw = win.w0; iw < win.w1; ++iw) {
              float* dp = dxn + (ih * g.W + iw) * C;
              for (int64_t c = 0; c < C; ++c) dp[c] += d[c] * inv;
            }
        }
      }
  }
}

}  // namespace
}  // namespace pool_detail
}  // namespace forgeml::conv
