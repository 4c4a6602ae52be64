// Max and average pooling, channels last: x (N, H, W, C) -> y (N, OH, OW, C) over KH x KW windows.
// Padded positions never take part: max ignores them and average divides by the number of real
// elements in the window (Keras/TensorFlow "same"). Memory-bound, so plain loops over C that the
// compiler vectorises; threads over images (backward) or output rows (forward).
#include <algorithm>

#include "cpu/conv/conv.h"
#include "cpu/conv/pool_rows.h"
#include "forgeml/cpu_features.h"
#include "forgeml/parallel.h"

namespace forgeml::conv {

void pool_rows_portable(const Geom& g, Pool kind, const float* x, float* y, int64_t r0, int64_t r1) {
  pool_detail::pool_rows(g, kind, x, y, r0, r1);
}
void pool_back_portable(const Geom& g, Pool kind, const float* x, const float* dy, float* dx, int64_t n0, int64_t n1) {
  pool_detail::pool_back(g, kind, x, dy, dx, n0, n1);
}

PoolRows active_pool_rows() {
  if (active_isa() == Isa::avx512 && pool_rows_avx512_available()) return pool_rows_avx512;
  return active_isa() >= Isa::avx2 && pool_avx2_available() ? pool_rows_avx2 : pool_rows_portable;
}
// (AVX-512 CPUs run the AVX2 build of the backward loops)
PoolBack active_pool_back() {
  return active_isa() >= Isa::avx2 && pool_avx2_available() ? pool_back_avx2 : pool_back_portable;
}

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
  const PoolBack back = active_pool_back();
  parallel_for(g.N, 1, [&](int64_t b, int64_t e) { back(g, kind, x, dy, dx, b, e); });
}

}  // namespace forgeml::conv
