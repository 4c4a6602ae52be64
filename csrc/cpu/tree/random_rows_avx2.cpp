// The packed-row kernels (random_rows.h) compiled for AVX2: a 64-byte row is two YMM registers.
// AVX2 has no mask registers, so partition_ranges_w's fused form (each row updates both sides'
// ranges through an and / or with the side's mask: ~9 vector ops per register) costs more than
// moving a block of rows and then taking each side's range over the block's rows just written
// (hot in L1): 2 ops per register without NaN codes (min, max), 4 with.
#include "cpu/tree/random_rows.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace forgeml::tree {
namespace {
constexpr int kRowChunk = 32;  // one YMM register
}  // namespace
}  // namespace forgeml::tree

#include "cpu/tree/random_rows_impl.h"

namespace forgeml::tree {
namespace {

// A row in whole YMM (XMM for 16 bytes) moves: a memcpy through a vector array staged each row on
// the stack in 16-byte pieces (twice the stores; the loop is store-bound).
template <int W>
inline void copy_row(uint8_t* dst, const uint8_t* src) {
  if constexpr (W == 16) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm_loadu_si128(reinterpret_cast<const __m128i*>(src)));
  } else {
    for (int c = 0; c < W; c += 32)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + c),
                          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + c)));
  }
}

// Per-side range accumulators in registers: range_w's lo / top / hi1 (kNan) or lo / top only
// (no NaN codes: hi1 = top + 1 at the end).
template <int W, bool kNan>
struct SideRange {
  static constexpr int C = chunk_for(W), N = W / C;
  using V = typename RowVec<C>::type;
  V l[N], t[N], h[N];

  SideRange() {
    for (int c = 0; c < N; ++c) {
      l[c] = V{} + static_cast<uint8_t>(255);
      t[c] = V{};
      h[c] = V{};
    }
  }
  // The m rows at rows (just written: hot in L1) into the accumulators.
  void add(const uint8_t* rows, int64_t m) {
    V lo[N], top[N], hi[N];  // locals: the loop keeps them in registers
    for (int c = 0; c < N; ++c) {
      lo[c] = l[c];
      top[c] = t[c];
      hi[c] = h[c];
    }
    for (int64_t i = 0; i < m; ++i)
      for (int c = 0; c < N; ++c) {
        V v;
        std::memcpy(&v, rows + i * W + c * C, C);
        lo[c] = v < lo[c] ? v : lo[c];
        top[c] = v > top[c] ? v : top[c];
        if constexpr (kNan) {
          const V p = v + static_cast<uint8_t>(1);  // NaN's 255 wraps to 0: never the largest value + 1
          hi[c] = p > hi[c] ? p : hi[c];
        }
      }
    for (int c = 0; c < N; ++c) {
      l[c] = lo[c];
      t[c] = top[c];
      h[c] = hi[c];
    }
  }
  void store(uint8_t* out, int64_t m) {
    if constexpr (!kNan) {  // codes <= 254: hi1 = top + 1, 0 when empty (as range_w)
      const uint8_t step = m > 0;
      for (int c = 0; c < N; ++c) h[c] = t[c] + step;
    }
    std::memcpy(out, l, W);
    std::memcpy(out + W, t, W);
    std::memcpy(out + 2 * W, h, W);
  }
};

// Rows split in blocks of kSplitBlock: each block's rows moved, then each side's rows of the block
// ranged while they are in L1 (a range pass per side after the whole split re-read them from L2
// or beyond: the top levels' partitions took ~1.3x the time).
constexpr int64_t kSplitBlock = 128;

// The left rows (code <= bin; NaN: nan_left) to dst in order, the right ones in order from
// dst + left_rows * W, and both sides' ranges (6, W). A write pointer per side, the row's chosen
// by a cmov: GCC made `left ? to_l : to_r` a branch, mispredicted on half the rows of a random split.
template <int W, bool kNan>
int64_t partition_then_ranges_w(const uint8_t* src, int64_t m, int f, int bin, bool nan_left, int64_t left_rows,
                                uint8_t* dst, uint8_t* ranges) {
  const uint32_t nan_goes = nan_left, b1 = static_cast<uint32_t>(bin) + 1;
  uint8_t* to_l = dst;
  uint8_t* to_r = dst + left_rows * W;
  SideRange<W, kNan> side[2];
  for (int64_t b = 0; b < m; b += kSplitBlock) {
    const int64_t e = b + kSplitBlock < m ? b + kSplitBlock : m;
    uint8_t *l0 = to_l, *r0 = to_r;
    for (int64_t i = b; i < e; ++i) {
      const uint8_t* row = src + i * W;
      const uint32_t c = row[f];
      const uint64_t left = kNan ? static_cast<uint64_t>(goes_left(c, b1, nan_goes)) : (c - b1) >> 31;
      uint8_t* to = to_r;
      asm("test %[left], %[left]\n\tcmovnz %[to_l], %[to]" : [to] "+r"(to) : [left] "r"(left), [to_l] "r"(to_l) : "cc");
      copy_row<W>(to, row);
      to_l += left * W;
      to_r += (left ^ 1) * W;
    }
    side[0].add(l0, (to_l - l0) / W);
    side[1].add(r0, (to_r - r0) / W);
  }
  const int64_t nl = (to_l - dst) / W;
  side[0].store(ranges, nl);
  side[1].store(ranges + 3 * W, m - nl);
  return nl;
}

template <bool kNan>
int64_t partition_then_ranges(const uint8_t* src, int64_t m, int W, int f, int bin, bool nan_left, int64_t left_rows,
                              uint8_t* dst, uint8_t* ranges) {
  switch (W) {
    case 16:
      return partition_then_ranges_w<16, kNan>(src, m, f, bin, nan_left, left_rows, dst, ranges);
    case 32:
      return partition_then_ranges_w<32, kNan>(src, m, f, bin, nan_left, left_rows, dst, ranges);
    case 64:
      return partition_then_ranges_w<64, kNan>(src, m, f, bin, nan_left, left_rows, dst, ranges);
    default:
      return partition_then_ranges_w<128, kNan>(src, m, f, bin, nan_left, left_rows, dst, ranges);
  }
}

}  // namespace

bool row_kernels_avx2(RowKernels& k) {
  k = {range_rows, count_rows, count8_rows, partition_rows, partition_then_ranges<true>, partition_then_ranges<false>,
       "avx2"};
  return true;
}

}  // namespace forgeml::tree

#else

namespace forgeml::tree {
bool row_kernels_avx2(RowKernels&) { return false; }
}  // namespace forgeml::tree

#endif
