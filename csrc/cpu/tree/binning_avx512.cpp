// bin_codes' search (bin_code.h's code_of) for AVX-512: the code of a value is the number of cut
// points below it, counted in two vector compares instead of eight dependent loads: the 16 cuts
// e[15], e[31], ..., e[255] give the block of 16 the value falls in (every cut of the blocks
// before it is below the value: the cuts ascend), then that block's 16 cuts give the rest.
#include <cmath>

#include "cpu/tree/bin_code.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace forgeml::tree {

bool codes_avx512(const float* e, const float* x, int64_t stride, int64_t count, uint8_t* out) {
  const __m512 last = _mm512_set_ps(e[255], e[239], e[223], e[207], e[191], e[175], e[159], e[143], e[127], e[111],
                                    e[95], e[79], e[63], e[47], e[31], e[15]);
  for (int64_t i = 0; i < count; ++i) {
    const float v = x[i * stride];
    const __m512 vb = _mm512_set1_ps(v);
    const uint32_t block = static_cast<uint32_t>(__builtin_popcount(_mm512_cmp_ps_mask(last, vb, _CMP_LT_OQ)));
    const uint32_t b = block < 16 ? block : 15;
    const __mmask16 below = _mm512_cmp_ps_mask(_mm512_loadu_ps(e + 16 * b), vb, _CMP_LT_OQ);
    // code_of's search never looks at e[255] (+inf padding unless 255 cuts): at most 255
    const uint32_t n = 16 * b + static_cast<uint32_t>(__builtin_popcount(below));
    const uint32_t code = n < 255 ? n : 255;
    out[i * stride] = std::isnan(v) ? static_cast<uint8_t>(kNanBin) : static_cast<uint8_t>(code);
  }
  return true;
}

}  // namespace forgeml::tree

#else

namespace forgeml::tree {
bool codes_avx512(const float*, const float*, int64_t, int64_t, uint8_t*) { return false; }
}  // namespace forgeml::tree

#endif
