// The packed-row kernels (random_rows.h) compiled for AVX2: a 64-byte row is two YMM registers.
// AVX2 has no mask registers, so partition_ranges_w's fused form (each row updates both sides'
// ranges through an and / or with the side's mask: ~9 vector ops per register) costs more than
// moving the rows and then taking each side's range in a pass of its own over rows just written
// (hot in L1 / L2): 2 ops per register without NaN codes (min, max), 4 with.
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

// The left rows (code <= bin; NaN: nan_left) to dst in order, the right ones in order from
// dst + left_rows * W. The row's slot is picked by a mask, not `left ? to_l : to_r`: GCC made that
// a branch, mispredicted on half the rows of a random split (ExtraTrees fit 1.45 -> 1.28 s).
template <int W, bool kNan>
int64_t split_rows_w(const uint8_t* src, int64_t m, int f, int bin, bool nan_left, int64_t left_rows, uint8_t* dst) {
  int64_t nl = 0, nr = 0;
  const uint32_t nan_goes = nan_left, b1 = static_cast<uint32_t>(bin) + 1;
  for (int64_t i = 0; i < m; ++i) {
    const uint32_t c = src[i * W + f];
    const int64_t left = kNan ? static_cast<int64_t>(goes_left(c, b1, nan_goes)) : (c - b1) >> 31;
    const int64_t r = left_rows + nr;
    copy_row<W>(dst + (r + ((nl - r) & -left)) * W, src + i * W);
    nl += left;
    nr += 1 - left;
  }
  return nl;
}

// lo and top of rows without NaN codes (each <= 254), hi1 = top + 1 (0 when m == 0, as range_w).
template <int W>
void range_no_nan_w(const uint8_t* rows, int64_t m, uint8_t* lo, uint8_t* top, uint8_t* hi1) {
  constexpr int C = chunk_for(W), N = W / C;
  using V = typename RowVec<C>::type;
  V l[N], t[N];
  for (int c = 0; c < N; ++c) {
    l[c] = V{} + static_cast<uint8_t>(255);
    t[c] = V{};
  }
  for (int64_t i = 0; i < m; ++i)
    for (int c = 0; c < N; ++c) {
      V v;
      std::memcpy(&v, rows + i * W + c * C, C);
      l[c] = v < l[c] ? v : l[c];
      t[c] = v > t[c] ? v : t[c];
    }
  const uint8_t step = m > 0;
  V h[N];
  for (int c = 0; c < N; ++c) h[c] = t[c] + step;
  std::memcpy(lo, l, W);
  std::memcpy(top, t, W);
  std::memcpy(hi1, h, W);
}

template <int W, bool kNan>
int64_t partition_then_ranges_w(const uint8_t* src, int64_t m, int f, int bin, bool nan_left, int64_t left_rows,
                                uint8_t* dst, uint8_t* ranges) {
  const int64_t nl = split_rows_w<W, kNan>(src, m, f, bin, nan_left, left_rows, dst);
  const uint8_t* side[2] = {dst, dst + nl * W};
  const int64_t rows[2] = {nl, m - nl};
  for (int s = 0; s < 2; ++s) {
    uint8_t* r = ranges + 3 * s * W;
    if constexpr (kNan) range_w<W>(side[s], rows[s], r, r + W, r + 2 * W);
    else range_no_nan_w<W>(side[s], rows[s], r, r + W, r + 2 * W);
  }
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
  k = {range_rows, count_rows, partition_rows, partition_then_ranges<true>, partition_then_ranges<false>, "avx2"};
  return true;
}

}  // namespace forgeml::tree

#else

namespace forgeml::tree {
bool row_kernels_avx2(RowKernels&) { return false; }
}  // namespace forgeml::tree

#endif
