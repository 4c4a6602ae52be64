// Max and average pooling, channels last: x (N, H, W, C) -> y (N, OH, OW, C) over KH x KW windows.
// Padded positions never take part: max ignores them and average divides by the number of real
// elements in the window (Keras/TensorFlow "same"). Memory-bound, so plain loops over C that the
// compiler vectorises; threads over images (backward) or output rows (forward).
#include <algorithm>
#include <limits>
#include <vector>

#include "cpu/conv/conv.h"
#include "cpu/conv/pool_rows.h"
#include "forgeml/cpu_features.h"
#include "forgeml/parallel.h"

namespace forgeml::conv {

using pool_detail::max_nan;

void pool_rows_portable(const Geom& g, Pool kind, const float* x, float* y, int64_t r0, int64_t r1) {
  pool_detail::pool_rows(g, kind, x, y, r0, r1);
}

PoolRows active_pool_rows() {
  return active_isa() == Isa::avx512 && pool_rows_avx512_available() ? pool_rows_avx512 : pool_rows_portable;
}


namespace {

using pool_detail::Window;
using pool_detail::window;

}  // namespace

// Memory-bound and short: threads only for work worth waking them (>= ~64K window reads each);
// the rows on the AVX-512 build of the same loops where that ISA is active (the compiler's
// vectorisation of the NaN-aware max is 4 lanes wide in the portable build).
void pool_forward(const Geom& g, Pool kind, const float* x, float* y) {
  if (g.N * g.OH * g.OW * g.C == 0) return;
  const int64_t per_row = std::max<int64_t>(1, g.OW * g.C * g.KH * g.KW);
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / per_row);
  const PoolRows rows = active_pool_rows();
  parallel_for(g.N * g.OH, grain, [&](int64_t b, int64_t e) { rows(g, kind, x, y, b, e); });
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
