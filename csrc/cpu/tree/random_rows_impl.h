// The packed-row kernels of random_rows.h as templates over the row width, in GCC vector
// extensions: one TU per ISA includes this (its templates sit in an anonymous namespace, so each
// TU keeps its own copy) after defining kRowChunk, the ISA's vector width in bytes.
#pragma once
#include <cstdint>
#include <cstring>

#include "cpu/tree/random_rows.h"

namespace forgeml::tree {
namespace {

// A row is W / C chunks of C bytes, each one vector of the ISA's width (kRowChunk, set by the TU
// before including this: 16 for SSE2 / NEON, 64 for AVX-512); the accumulators of a row's
// chunks live in registers. (A W-byte vector wider than the ISA's registers compiles to byte
// moves through memory.)
constexpr int chunk_for(int W) { return W < kRowChunk ? W : kRowChunk; }

template <int C>
struct RowVec {
  typedef uint8_t type __attribute__((vector_size(C)));
};

template <int W>
void range_w(const uint8_t* rows, int64_t m, uint8_t* lo, uint8_t* top, uint8_t* hi1) {
  constexpr int C = chunk_for(W), N = W / C;
  using V = typename RowVec<C>::type;
  V l[N], t[N], h[N];
  for (int c = 0; c < N; ++c) {
    l[c] = V{} + static_cast<uint8_t>(255);
    t[c] = V{};
    h[c] = V{};
  }
  for (int64_t i = 0; i < m; ++i) {
    for (int c = 0; c < N; ++c) {
      V v;
      std::memcpy(&v, rows + i * W + c * C, C);
      const V p = v + static_cast<uint8_t>(1);  // NaN's 255 wraps to 0: never the largest value + 1
      l[c] = v < l[c] ? v : l[c];
      t[c] = v > t[c] ? v : t[c];
      h[c] = p > h[c] ? p : h[c];
    }
  }
  std::memcpy(lo, l, W);
  std::memcpy(top, t, W);
  std::memcpy(hi1, h, W);
}

// Byte counters (a lane gains 1 per row where the comparison holds: subtracting its -1 mask)
// wrap after 255 rows: they are added to 32-bit counts every kBlock rows.
constexpr int64_t kBlock = 255;

template <int W>
void count_w(const uint8_t* rows, int64_t m, int K, const int64_t* class_rows, const uint8_t* thr_in,
             uint32_t* counts) {
  constexpr int C = chunk_for(W), N = W / C;
  using V = typename RowVec<C>::type;
  V thr[N];
  std::memcpy(thr, thr_in, W);
  std::memset(counts, 0, sizeof(uint32_t) * K * W);
  (void)m;  // the runs of class_rows cover the m rows
  const uint8_t* r = rows;
  for (int k = 0; k < K; ++k) {  // class k's run of rows: no class test per row
    const int64_t mk = class_rows[k];
    for (int64_t b = 0; b < mk; b += kBlock) {
      const int64_t e = b + kBlock < mk ? b + kBlock : mk;
      V a[N];
      for (int c = 0; c < N; ++c) a[c] = V{};
      for (int64_t i = b; i < e; ++i)
        for (int c = 0; c < N; ++c) {
          V v;
          std::memcpy(&v, r + i * W + c * C, C);
          a[c] -= reinterpret_cast<V>(v <= thr[c]);  // -1 where it holds
        }
      for (int c = 0; c < N; ++c)
        for (int j = 0; j < C; ++j) counts[k * W + c * C + j] += a[c][j];
    }
    r += mk * W;
  }
}

// count_w for m <= kMaxCount8Rows rows: the byte counters are the counts (K, W bytes).
template <int W>
void count8_w(const uint8_t* rows, int K, const int64_t* class_rows, const uint8_t* thr_in, uint8_t* counts) {
  constexpr int C = chunk_for(W), N = W / C;
  using V = typename RowVec<C>::type;
  V thr[N];
  std::memcpy(thr, thr_in, W);
  const uint8_t* r = rows;
  for (int k = 0; k < K; ++k) {
    const int64_t mk = class_rows[k];
    V a[N];
    for (int c = 0; c < N; ++c) a[c] = V{};
    for (int64_t i = 0; i < mk; ++i)
      for (int c = 0; c < N; ++c) {
        V v;
        std::memcpy(&v, r + i * W + c * C, C);
        a[c] -= reinterpret_cast<V>(v <= thr[c]);  // -1 where it holds
      }
    std::memcpy(counts + k * W, a, W);
    r += mk * W;
  }
}

// 1 when a row whose code is c goes left of the split (c <= bin, with b1 = bin + 1; a NaN code
// 255 goes left when nan_goes), else 0: from sign bits, no branch.
inline int64_t goes_left(uint32_t c, uint32_t b1, uint32_t nan_goes) {
  return ((c - b1) >> 31) | ((((c ^ 255u) - 1) >> 31) & nan_goes);
}

template <int W>
int64_t partition_w(const uint8_t* src, int64_t m, int f, int bin, bool nan_left, uint8_t* dst) {
  constexpr int C = chunk_for(W), N = W / C;
  using V = typename RowVec<C>::type;
  int64_t nl = 0, nr = 0;
  const uint32_t nan_goes = nan_left, b1 = static_cast<uint32_t>(bin) + 1;
  for (int64_t i = 0; i < m; ++i) {  // one store per row; side and address in arithmetic: no branch
    V v[N];
    std::memcpy(v, src + i * W, W);
    const uint32_t c = src[i * W + f];
    const int64_t left = goes_left(c, b1, nan_goes);
    const int64_t r = m - 1 - nr;
    std::memcpy(dst + (r + ((nl - r) & -left)) * W, v, W);
    nl += left;
    nr += 1 - left;
  }
  return nl;
}

// partition_w, and the ranges of both sides on the way (range_w's lo / top / hi1 of the rows
// sent left, then of those sent right, W each): the children's range pass is not needed. A row
// updates both sides' accumulators through a mask (all ones on its side, zeros on the other),
// which leaves the other side's min / max as they were: no branch on the side.
// kNan false: the rows hold no NaN code, top = hi1 - 1 (saturating) is set at the end instead.
template <int W, bool kNan = true>
int64_t partition_ranges_w(const uint8_t* src, int64_t m, int f, int bin, bool nan_left, int64_t left_rows,
                           uint8_t* dst, uint8_t* ranges) {
  constexpr int C = chunk_for(W), N = W / C;
  using V = typename RowVec<C>::type;
  V lo[2][N], top[2][N], hi[2][N];  // [0]: left, [1]: right
  for (int s = 0; s < 2; ++s)
    for (int c = 0; c < N; ++c) {
      lo[s][c] = V{} + static_cast<uint8_t>(255);
      top[s][c] = V{};
      hi[s][c] = V{};
    }
  int64_t nl = 0, nr = 0;
  const uint32_t nan_goes = nan_left, b1 = static_cast<uint32_t>(bin) + 1;
  for (int64_t i = 0; i < m; ++i) {
    V v[N];
    std::memcpy(v, src + i * W, W);
    const uint32_t c = src[i * W + f];
    const int64_t left = goes_left(c, b1, nan_goes);
    const int64_t r = left_rows + nr;
    std::memcpy(dst + (r + ((nl - r) & -left)) * W, v, W);
    nl += left;
    nr += 1 - left;
    const V ml = V{} - static_cast<uint8_t>(left);  // all ones: a left row
    for (int k = 0; k < N; ++k) {
      const V p = v[k] + static_cast<uint8_t>(1);
      const V vl = v[k] | ~ml, vr = v[k] | ml;  // 255 on the other side: no effect on the min
      lo[0][k] = vl < lo[0][k] ? vl : lo[0][k];
      lo[1][k] = vr < lo[1][k] ? vr : lo[1][k];
      const V pl = p & ml, pr = p & ~ml;  // 0: no effect on the max
      if constexpr (kNan) {
        const V tl = v[k] & ml, tr = v[k] & ~ml;
        top[0][k] = tl > top[0][k] ? tl : top[0][k];
        top[1][k] = tr > top[1][k] ? tr : top[1][k];
      }
      hi[0][k] = pl > hi[0][k] ? pl : hi[0][k];
      hi[1][k] = pr > hi[1][k] ? pr : hi[1][k];
    }
  }
  if constexpr (!kNan) {
    for (int s = 0; s < 2; ++s)
      for (int k = 0; k < N; ++k) top[s][k] = hi[s][k] - (hi[s][k] > 0 ? V{} + static_cast<uint8_t>(1) : V{});
  }
  for (int s = 0; s < 2; ++s) {
    std::memcpy(ranges + (3 * s) * W, lo[s], W);
    std::memcpy(ranges + (3 * s + 1) * W, top[s], W);
    std::memcpy(ranges + (3 * s + 2) * W, hi[s], W);
  }
  return nl;
}

#define FORGEML_ROW_WIDTHS(F, ...) \
  switch (W) {                     \
    case 16:                       \
      return F<16>(__VA_ARGS__);   \
    case 32:                       \
      return F<32>(__VA_ARGS__);   \
    case 64:                       \
      return F<64>(__VA_ARGS__);   \
    default:                       \
      return F<128>(__VA_ARGS__);  \
  }

void range_rows(const uint8_t* rows, int64_t m, int W, uint8_t* lo, uint8_t* top, uint8_t* hi1) {
  FORGEML_ROW_WIDTHS(range_w, rows, m, lo, top, hi1);
}

void count_rows(const uint8_t* rows, int64_t m, int W, int K, const int64_t* class_rows, const uint8_t* thr,
                uint32_t* counts) {
  FORGEML_ROW_WIDTHS(count_w, rows, m, K, class_rows, thr, counts);
}

void count8_rows(const uint8_t* rows, int64_t m, int W, int K, const int64_t* class_rows, const uint8_t* thr,
                 uint8_t* counts) {
  (void)m;  // the runs of class_rows cover the m rows
  FORGEML_ROW_WIDTHS(count8_w, rows, K, class_rows, thr, counts);
}

int64_t partition_rows(const uint8_t* src, int64_t m, int W, int f, int bin, bool nan_left, uint8_t* dst) {
  FORGEML_ROW_WIDTHS(partition_w, src, m, f, bin, nan_left, dst);
}

[[maybe_unused]] int64_t partition_ranges_rows(const uint8_t* src, int64_t m, int W, int f, int bin, bool nan_left,
                                               int64_t left_rows, uint8_t* dst, uint8_t* ranges) {
  FORGEML_ROW_WIDTHS(partition_ranges_w, src, m, f, bin, nan_left, left_rows, dst, ranges);
}

[[maybe_unused]] int64_t partition_ranges_no_nan_rows(const uint8_t* src, int64_t m, int W, int f, int bin,
                                                      bool nan_left, int64_t left_rows, uint8_t* dst, uint8_t* ranges) {
  switch (W) {
    case 16:
      return partition_ranges_w<16, false>(src, m, f, bin, nan_left, left_rows, dst, ranges);
    case 32:
      return partition_ranges_w<32, false>(src, m, f, bin, nan_left, left_rows, dst, ranges);
    case 64:
      return partition_ranges_w<64, false>(src, m, f, bin, nan_left, left_rows, dst, ranges);
    default:
      return partition_ranges_w<128, false>(src, m, f, bin, nan_left, left_rows, dst, ranges);
  }
}

#undef FORGEML_ROW_WIDTHS

}  // namespace
}  // namespace forgeml::tree
