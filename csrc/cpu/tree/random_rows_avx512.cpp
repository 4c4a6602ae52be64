// The packed-row kernels (random_rows.h) compiled for AVX-512 (BW for bytes): a 64-byte row is
// one register, its comparisons set mask registers.
#include "cpu/tree/random_rows.h"

#if defined(__x86_64__)
namespace forgeml::tree {
namespace {
constexpr int kRowChunk = 64;  // one ZMM register
}  // namespace
}  // namespace forgeml::tree

#include <immintrin.h>

#include "cpu/tree/random_rows_impl.h"

namespace forgeml::tree {
namespace {

// partition_ranges_w<64> with the sides' min / max updated under mask registers: one masked op
// per side and statistic (the generic version builds each side's operand with and / or first,
// which doubles the vector work per row). Same results.
int64_t partition_ranges_64(const uint8_t* src, int64_t m, int f, int bin, bool nan_left, uint8_t* dst,
                            uint8_t* ranges) {
  const __m512i one = _mm512_set1_epi8(1);
  __m512i lo_l = _mm512_set1_epi8(-1), lo_r = lo_l;
  __m512i top_l = _mm512_setzero_si512(), top_r = top_l, hi_l = top_l, hi_r = top_l;
  int64_t nl = 0, nr = 0;
  const uint32_t nan_goes = nan_left, b1 = static_cast<uint32_t>(bin) + 1;
  for (int64_t i = 0; i < m; ++i) {
    const __m512i v = _mm512_loadu_si512(src + i * 64);
    const uint32_t c = src[i * 64 + f];
    const int64_t left = ((c - b1) >> 31) | ((((c ^ 255u) - 1) >> 31) & nan_goes);
    const int64_t r = m - 1 - nr;
    _mm512_storeu_si512(dst + (r + ((nl - r) & -left)) * 64, v);
    nl += left;
    nr += 1 - left;
    const __mmask64 kl = _cvtu64_mask64(0 - static_cast<uint64_t>(left)), kr = _knot_mask64(kl);
    const __m512i p = _mm512_add_epi8(v, one);
    lo_l = _mm512_mask_min_epu8(lo_l, kl, lo_l, v);
    lo_r = _mm512_mask_min_epu8(lo_r, kr, lo_r, v);
    top_l = _mm512_mask_max_epu8(top_l, kl, top_l, v);
    top_r = _mm512_mask_max_epu8(top_r, kr, top_r, v);
    hi_l = _mm512_mask_max_epu8(hi_l, kl, hi_l, p);
    hi_r = _mm512_mask_max_epu8(hi_r, kr, hi_r, p);
  }
  const __m512i out[6] = {lo_l, top_l, hi_l, lo_r, top_r, hi_r};
  for (int s = 0; s < 6; ++s) _mm512_storeu_si512(ranges + s * 64, out[s]);
  return nl;
}

int64_t partition_ranges_avx512(const uint8_t* src, int64_t m, int W, int f, int bin, bool nan_left, uint8_t* dst,
                                uint8_t* ranges) {
  if (W == 64) return partition_ranges_64(src, m, f, bin, nan_left, dst, ranges);
  return partition_ranges_rows(src, m, W, f, bin, nan_left, dst, ranges);
}

}  // namespace

bool row_kernels_avx512(RowKernels& k) {
  k = {range_rows, count_rows, partition_rows, partition_ranges_avx512, "avx512"};
  return true;
}

}  // namespace forgeml::tree

#else

namespace forgeml::tree {
bool row_kernels_avx512(RowKernels&) { return false; }
}  // namespace forgeml::tree

#endif
