// Max and average pooling, channels last: x (N, H, W, C) -> y (N, OH, OW, C) over KH x KW windows.
// Padded positions never take part: max ignores them and average divides by the number of real
// elements in the window (Keras/TensorFlow "same"). Memory-bound, so plain loops over C that the
// compiler vectorises; threads over images (backward) or output rows (forward).
#include <algorithm>
#include <limits>
#include <vector>

#include "cpu/conv/conv.h"
#include "forgeml/parallel.h"

namespace forgeml::conv {

namespace {
// max that lets NaN win, as NumPy's max and Keras's max pooling do (std::max keeps its first
// argument when either is NaN, which would hide a NaN input).
inline float max_nan(float best, float v) { return v > best || v != v ? v : best; }
}  // namespace


namespace {

struct Window {
  int64_t h0, h1, w0, w1;  // real rows [h0, h1), columns [w0, w1)
};

Window window(const Geom& g, int64_t oh, int64_t ow) {
  int64_t h = oh * g.sh - g.pt, w = ow * g.sw - g.pl;
  return {std::max<int64_t>(h, 0), std::min(g.H, h + g.KH), std::max<int64_t>(w, 0), std::min(g.W, w + g.KW)};
}

}  // namespace

void pool_forward(const Geom& g, Pool kind, const float* x, float* y) {
  const int64_t C = g.C;
  if (g.N * g.OH * g.OW * C == 0) return;
  parallel_for(g.N * g.OH, 1, [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      int64_t n = row / g.OH, oh = row % g.OH;
      const float* xn = x + n * g.H * g.W * C;
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        float* yp = y + (row * g.OW + ow) * C;
        Window win = window(g, oh, ow);
        if (kind == Pool::max) {
          std::fill(yp, yp + C, -std::numeric_limits<float>::infinity());
          for (int64_t ih = win.h0; ih < win.h1; ++ih)
            for (int64_t iw = win.w0; iw < win.w1; ++iw) {
              const float* xp = xn + (ih * g.W + iw) * C;
              for (int64_t c = 0; c < C; ++c) yp[c] = max_nan(yp[c], xp[c]);
            }
        } else {
          std::fill(yp, yp + C, 0.f);
          for (int64_t ih = win.h0; ih < win.h1; ++ih)
            for (int64_t iw = win.w0; iw < win.w1; ++iw) {
              const float* xp = xn + (ih * g.W + iw) * C;
              for (int64_t c = 0; c < C; ++c) yp[c] += xp[c];
            }
          float inv = 1.f / static_cast<float>((win.h1 - win.h0) * (win.w1 - win.w0));
          for (int64_t c = 0; c < C; ++c) yp[c] *= inv;
        }
      }
    }
  });
}

void pool_backward(const Geom& g, Pool kind, const float* x, const float* dy, float* dx) {
  const int64_t C = g.C, HWC = g.H * g.W * C;
  std::fill(dx, dx + g.N * HWC, 0.f);
  if (g.N * g.OH * g.OW * C == 0) return;
  // Windows overlap inside an image, so an image belongs to one thread.
  parallel_for(g.N, 1, [&](int64_t b, int64_t e) {
    // The window's maximum per channel, then a pass in window order that hands each channel's
    // dy to the first element equal to it: plain float selects that vectorise (branches on
    // random data mispredict half the time).
    std::vector<float> best_buf(C), rest_buf(C);
    float* __restrict best = best_buf.data();
    float* __restrict rest = rest_buf.data();
    for (int64_t n = b; n < e; ++n) {
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
                  const bool hit = xp[c] == best[c] || (best[c] != best[c] && xp[c] != xp[c]);  // or the first NaN
                  float add = hit ? rest[c] : 0.f;
                  dp[c] += add;
                  rest[c] = hit ? 0.f : rest[c];  // given: later equal elements add 0
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
  });
}

}  // namespace forgeml::conv
