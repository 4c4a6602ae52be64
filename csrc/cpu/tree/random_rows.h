// The random splitter on packed rows (classification with unit weights, d < 128 features): each
// of the tree's rows is kept as W bytes (W = 16, 32, 64 or 128): the codes of features 0..d-1,
// then the row's class, then zeros, in node order, so a node's rows are contiguous and every pass
// over them reads memory in sequence, a whole row per vector load. Within a node the rows are
// grouped by class (class 0's first): the root's rows are packed so, and the partition keeps each
// side's order, so a count needs no per-row class test. Per node:
//   range:     each byte lane's smallest code, largest code and largest code + 1 (wrapping at
//              255: split_random.h's CodeRange) over the node's rows, all features in one pass;
//   count:     per lane, the rows of each class with code <= thr[lane], all features in one pass
//              (class by class: the node's rows of each class are a known run);
//   partition: by one feature's code against the split, into the other of two buffers (a node
//              at depth k holds its rows in buffer k % 2); the rows move with their codes, each
//              side in order (the left side's size is the split's count), and both sides' ranges
//              are taken on the way (a child needs no range pass of its own).
// The counts are the integers the gather path sums (grow.cpp), so both give the same trees.
// Kernel bodies: random_rows_impl.h, compiled once per ISA (random_rows.cpp, *_avx2.cpp, *_avx512.cpp).
#pragma once
#include <cstdint>

namespace forgeml::tree {

constexpr int kMaxRowBytes = 128;        // widest packed row (features + the class byte)
constexpr int kMaxRowClasses = 8;        // classes counted in byte lanes
constexpr int64_t kMaxCount8Rows = 255;  // RowKernels::count8's limit

struct RowKernels {
  // lo / top / hi1 (W each): per lane, min code, max code, max of (code + 1) mod 256.
  void (*range)(const uint8_t* rows, int64_t m, int W, uint8_t* lo, uint8_t* top, uint8_t* hi1);
  // counts (K, W): counts[k * W + j] = rows of class k whose byte j is <= thr[j]; the m rows hold
  // class_rows[0] rows of class 0 first, then class_rows[1] of class 1, ... (K runs, summing to m).
  void (*count)(const uint8_t* rows, int64_t m, int W, int K, const int64_t* class_rows, const uint8_t* thr,
                uint32_t* counts);
  // count for m <= kMaxCount8Rows rows, the counts in bytes (the counters as they are: a small
  // node's count is then a few vector ops, not a widening of every lane).
  void (*count8)(const uint8_t* rows, int64_t m, int W, int K, const int64_t* class_rows, const uint8_t* thr,
                 uint8_t* counts);
  // Partition of the m rows of src into dst: the left ones (byte f <= bin; 255, NaN: nan_left)
  // first, in order, then the right ones in reverse order. Returns the left rows' count.
  int64_t (*partition)(const uint8_t* src, int64_t m, int W, int f, int bin, bool nan_left, uint8_t* dst);
  // partition, but the right rows in order after the left ones (at left_rows, the number of rows
  // that go left: the caller knows it from the split's counts), and the two sides' ranges as range
  // gives them: ranges (6, W) = lo, top, hi1 of the left rows, then of the right rows (the
  // children's ranges without a pass of their own). Keeps runs of classes runs of classes.
  int64_t (*partition_ranges)(const uint8_t* src, int64_t m, int W, int f, int bin, bool nan_left, int64_t left_rows,
                              uint8_t* dst, uint8_t* ranges);
  // partition_ranges for rows without NaN codes (255) in any feature: each side's top is its hi1 - 1
  // (0 when empty), not tracked row by row.
  int64_t (*partition_ranges_no_nan)(const uint8_t* src, int64_t m, int W, int f, int bin, bool nan_left,
                                     int64_t left_rows, uint8_t* dst, uint8_t* ranges);
  const char* name;
};

// Row width for d features (the class byte after them), 0 when they do not fit.
inline int packed_row_width(int d) {
  for (int w = 16; w <= kMaxRowBytes; w *= 2)
    if (d + 1 <= w) return w;
  return 0;
}

const RowKernels& row_kernels();  // active_isa()'s table
void row_kernels_portable(RowKernels& k);
bool row_kernels_avx2(RowKernels& k);    // false: not built for AVX2
bool row_kernels_avx512(RowKernels& k);  // false: not built for AVX-512

}  // namespace forgeml::tree
