// pool_rows.h's loops built with AVX2 (this file gets -mavx2 ...): 8 channels a step.
#include "cpu/conv/pool_rows.h"

namespace forgeml::conv {

#if defined(__AVX2__)
void pool_rows_avx2(const Geom& g, Pool kind, const float* x, float* y, int64_t r0, int64_t r1) {
  pool_detail::pool_rows(g, kind, x, y, r0, r1);
}
void pool_back_avx2(const Geom& g, Pool kind, const float* x, const float* dy, float* dx, int64_t n0, int64_t n1) {
  pool_detail::pool_back(g, kind, x, dy, dx, n0, n1);
}
bool pool_avx2_available() { return __builtin_cpu_supports("avx2"); }
#else
void pool_rows_avx2(const Geom& g, Pool kind, const float* x, float* y, int64_t r0, int64_t r1) {
  pool_rows_portable(g, kind, x, y, r0, r1);
}
void pool_back_avx2(const Geom& g, Pool kind, const float* x, const float* dy, float* dx, int64_t n0, int64_t n1) {
  pool_back_portable(g, kind, x, dy, dx, n0, n1);
}
bool pool_avx2_available() { return false; }
#endif

}  // namespace forgeml::conv
