// bin_codes' search (bin_code.h's code_of) for AVX2: binning_avx512.cpp's two-step count with
// 8-lane compares: the 16 block-end cuts e[15], e[31], ..., e[255] (two vectors) give the block
// of 16 the value falls in, then that block's 16 cuts (two vectors) give the rest.
#include <cmath>

#include "cpu/tree/bin_code.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace forgeml::tree {

namespace {

// #lanes of a and b below v
inline uint32_t count_below(__m256 a, __m256 b, __m256 v) {
  const int lo = _mm256_movemask_ps(_mm256_cmp_ps(a, v, _CMP_LT_OQ));
  const int hi = _mm256_movemask_ps(_mm256_cmp_ps(b, v, _CMP_LT_OQ));
  return static_cast<uint32_t>(__builtin_popcount(static_cast<unsigned>(lo | (hi << 8))));
}

}  // namespace

bool codes_avx2(const float* e, const float* x, int64_t stride, int64_t count, uint8_t* out) {
  const __m256 last_lo = _mm256_setr_ps(e[15], e[31], e[47], e[63], e[79], e[95], e[111], e[127]);
  const __m256 last_hi = _mm256_setr_ps(e[143], e[159], e[175], e[191], e[207], e[223], e[239], e[255]);
  for (int64_t i = 0; i < count; ++i) {
    const float v = x[i * stride];
    const __m256 vb = _mm256_set1_ps(v);
    const uint32_t block = count_below(last_lo, last_hi, vb);
    const uint32_t b = block < 16 ? block : 15;
    const uint32_t n = 16 * b + count_below(_mm256_loadu_ps(e + 16 * b), _mm256_loadu_ps(e + 16 * b + 8), vb);
    // code_of's search never looks at e[255] (+inf padding unless 255 cuts): at most 255
    const uint32_t code = n < 255 ? n : 255;
    out[i * stride] = std::isnan(v) ? static_cast<uint8_t>(kNanBin) : static_cast<uint8_t>(code);
  }
  return true;
}

}  // namespace forgeml::tree

#else

namespace forgeml::tree {
bool codes_avx2(const float*, const float*, int64_t, int64_t, uint8_t*) { return false; }
}  // namespace forgeml::tree

#endif
