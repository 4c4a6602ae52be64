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
// which doubles the vector work per row). Same results. The loop is bound by its instruction
// count, not by memory: each side keeps its own write pointer (the row's goes by a cmov), the
// masked ops merge into their own accumulator (GCC copies it otherwise), and kNan false (rows
// without NaN codes: each is <= 254) tests only code <= bin and takes hi1 = top + 1 at the end.
template <bool kNan>
int64_t partition_ranges_64(const uint8_t* src, int64_t m, int f, int bin, bool nan_left, int64_t left_rows,
                            uint8_t* dst, uint8_t* ranges) {
  const __m512i one = _mm512_set1_epi8(1);
  __m512i lo_l = _mm512_set1_epi8(-1), lo_r = lo_l;
  __m512i top_l = _mm512_setzero_si512(), top_r = top_l, hi_l = top_l, hi_r = top_l;
  uint8_t* to_l = dst;
  uint8_t* to_r = dst + left_rows * 64;
  const uint32_t nan_goes = nan_left, b1 = static_cast<uint32_t>(bin) + 1;
  for (int64_t i = 0; i < m; ++i) {
    const __m512i v = _mm512_loadu_si512(src + i * 64);
    const uint32_t c = src[i * 64 + f];
    const uint64_t left = kNan ? static_cast<uint64_t>(goes_left(c, b1, nan_goes)) : (c - b1) >> 31;
    _mm512_storeu_si512(left ? to_l : to_r, v);
    to_l += left * 64;
    to_r += (left ^ 1) * 64;
    const __mmask64 kl = _cvtu64_mask64(0 - left), kr = _knot_mask64(kl);
    lo_l = _mm512_mask_min_epu8(lo_l, kl, v, lo_l);
    lo_r = _mm512_mask_min_epu8(lo_r, kr, v, lo_r);
    top_l = _mm512_mask_max_epu8(top_l, kl, v, top_l);
    top_r = _mm512_mask_max_epu8(top_r, kr, v, top_r);
    if constexpr (kNan) {
      const __m512i p = _mm512_add_epi8(v, one);
      hi_l = _mm512_mask_max_epu8(hi_l, kl, p, hi_l);
      hi_r = _mm512_mask_max_epu8(hi_r, kr, p, hi_r);
    }
  }
  const int64_t nl = (to_l - dst) / 64;
  if constexpr (!kNan) {  // codes <= 254: hi1 = top + 1 without wrapping, 0 on an empty side
    hi_l = _mm512_maskz_add_epi8(nl > 0 ? ~__mmask64{0} : 0, top_l, one);
    hi_r = _mm512_maskz_add_epi8(nl < m ? ~__mmask64{0} : 0, top_r, one);
  }
  const __m512i out[6] = {lo_l, top_l, hi_l, lo_r, top_r, hi_r};
  for (int s = 0; s < 6; ++s) _mm512_storeu_si512(ranges + s * 64, out[s]);
  return nl;
}

// count_w<64>: a class's run of rows adds 1 to the lanes where the row's code is <= the threshold,
// under the comparison's mask register; two rows a step into two byte accumulators (the masked add
// depends on the previous one: one chain halves its rate). Byte counters are widened to 32 bits
// every kBlock rows; the counts are the same.
void count_64_runs(const uint8_t* rows, int K, const int64_t* class_rows, const uint8_t* thr_in, uint32_t* counts) {
  const __m512i thr = _mm512_loadu_si512(thr_in), one = _mm512_set1_epi8(1);
  const uint8_t* r = rows;
  for (int k = 0; k < K; ++k) {
    const int64_t mk = class_rows[k];
    __m512i acc[4];
    for (int q = 0; q < 4; ++q) acc[q] = _mm512_setzero_si512();
    for (int64_t b = 0; b < mk; b += kBlock) {
      const int64_t e = b + kBlock < mk ? b + kBlock : mk;
      __m512i a = _mm512_setzero_si512(), a2 = a;
      int64_t i = b;
      for (; i + 1 < e; i += 2) {
        a = _mm512_mask_add_epi8(a, _mm512_cmple_epu8_mask(_mm512_loadu_si512(r + i * 64), thr), a, one);
        a2 = _mm512_mask_add_epi8(a2, _mm512_cmple_epu8_mask(_mm512_loadu_si512(r + i * 64 + 64), thr), a2, one);
      }
      if (i < e) a = _mm512_mask_add_epi8(a, _mm512_cmple_epu8_mask(_mm512_loadu_si512(r + i * 64), thr), a, one);
      const __m128i* ab = reinterpret_cast<const __m128i*>(&a);
      const __m128i* ab2 = reinterpret_cast<const __m128i*>(&a2);
      for (int q = 0; q < 4; ++q)  // bytes 16q .. 16q + 15 as 32-bit lanes
        acc[q] = _mm512_add_epi32(acc[q], _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128(ab + q)),
                                                           _mm512_cvtepu8_epi32(_mm_loadu_si128(ab2 + q))));
    }
    for (int q = 0; q < 4; ++q) _mm512_storeu_si512(counts + k * 64 + 16 * q, acc[q]);
    r += mk * 64;
  }
}

void count_avx512(const uint8_t* rows, int64_t m, int W, int K, const int64_t* class_rows, const uint8_t* thr,
                  uint32_t* counts) {
  if (W == 64) return count_64_runs(rows, K, class_rows, thr, counts);
  count_rows(rows, m, W, K, class_rows, thr, counts);
}

int64_t partition_ranges_avx512(const uint8_t* src, int64_t m, int W, int f, int bin, bool nan_left, int64_t left_rows,
                                uint8_t* dst, uint8_t* ranges) {
  if (W == 64) return partition_ranges_64<true>(src, m, f, bin, nan_left, left_rows, dst, ranges);
  return partition_ranges_rows(src, m, W, f, bin, nan_left, left_rows, dst, ranges);
}

int64_t partition_ranges_no_nan_avx512(const uint8_t* src, int64_t m, int W, int f, int bin, bool nan_left,
                                       int64_t left_rows, uint8_t* dst, uint8_t* ranges) {
  if (W == 64) return partition_ranges_64<false>(src, m, f, bin, nan_left, left_rows, dst, ranges);
  return partition_ranges_no_nan_rows(src, m, W, f, bin, nan_left, left_rows, dst, ranges);
}

}  // namespace

bool row_kernels_avx512(RowKernels& k) {
  k = {range_rows, count_avx512, count8_rows, partition_rows, partition_ranges_avx512, partition_ranges_no_nan_avx512,
       "avx512"};
  return true;
}

}  // namespace forgeml::tree

#else

namespace forgeml::tree {
bool row_kernels_avx512(RowKernels&) { return false; }
}  // namespace forgeml::tree

#endif
