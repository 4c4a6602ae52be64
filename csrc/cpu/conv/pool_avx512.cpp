// pool_rows.h's loops built with AVX-512 (this file gets -mavx512f ...): 16 channels a step.
#include "cpu/conv/pool_rows.h"

namespace forgeml::conv {

#if defined(__AVX512F__)
void pool_rows_avx512(const Geom& g, Pool kind, const float* x, float* y, int64_t r0, int64_t r1) {
  pool_detail::pool_rows(g, kind, x, y, r0, r1);
}
bool pool_rows_avx512_available() { return __builtin_cpu_supports("avx512f"); }
#else
void pool_rows_avx512(const Geom& g, Pool kind, const float* x, float* y, int64_t r0, int64_t r1) {
  pool_rows_portable(g, kind, x, y, r0, r1);
}
bool pool_rows_avx512_available() { return false; }
#endif

}  // namespace forgeml::conv
