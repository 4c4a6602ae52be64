// Tree kernels on the GPU (and under the SIMT emulator): node histograms, the per-feature split
// scan and the row partition of split nodes. Declarations only, so binding files need no CUDA header.
#pragma once
#include <cstdint>

struct CUstream_st;

namespace forgeml::cuda::tree {

// codes (n, d) uint8 row-major (255 = NaN); rows (m) int32: the node's rows; w (n) float64
// weights; classification: cls (n) int32 class index, y null, H = n_classes; regression: cls
// null, y (n) float64, H = 3 ({w, w*y, w*y^2}). Accumulates into hw (d, 256, H) float64 and
// cnt (d, 256) uint32 (zero them first). Float atomics: the low bits of non-integer weight sums
// depend on the order the GPU runs threads in.
void histogram(const uint8_t* codes, int64_t n, int d, const int32_t* rows, int64_t m, const int32_t* cls,
               const double* w, const double* y, int H, double* hw, uint32_t* cnt, CUstream_st* stream);

// Best split of each feature from hw/cnt (as above) and the node's statistics total (S = H + 2
// classification {count, W, w_k}; 4 regression {count, W, sum wy, sum wy^2}). criterion:
// 0 gini, 1 entropy, 2 squared_error. Outputs per feature: proxy (-inf when no valid split),
// bin (threshold bin, 254 = all values left), nan_left. Same candidates and ties as the CPU scan
// (csrc/cpu/tree/split.h). classification needs H <= 16.
void split_scan(const double* hw, const uint32_t* cnt, int d, int H, int criterion, const double* total,
                double min_leaf, double min_weight_leaf, double* proxy, int32_t* bin, int32_t* nan_left,
                CUstream_st* stream);

// Several nodes at once: node z's rows are rows[ranges[2z] .. ranges[2z+1]) (ranges (nodes, 2)
// int64 in device memory), max_rows the largest such range; node z accumulates into hw + z * d *
// 256 * H and cnt + z * d * 256. At most 65535 nodes.
void histogram_nodes(const uint8_t* codes, int d, const int32_t* rows, const int64_t* ranges, int nodes,
                     int64_t max_rows, const int32_t* cls, const double* w, const double* y, int H, double* hw,
                     uint32_t* cnt, CUstream_st* stream);

// split_scan over nodes (z's histograms, total (nodes, S) and outputs at z's offsets). left
// (nodes, d, S), when not null: each feature's best candidate's left statistics (zeros where
// none), summed in the scan's order. varies (nodes, d) int32, when not null: 1 where the feature
// has more than one occupied bin (NaN included), the CPU grower's "not constant".
void split_scan_nodes(const double* hw, const uint32_t* cnt, int d, int nodes, int H, int criterion,
                      const double* total, double min_leaf, double min_weight_leaf, double* proxy, int32_t* bin,
                      int32_t* nan_left, double* left, int32_t* varies, CUstream_st* stream);

// Stable partition of each node's rows (ranges as above) by its split: code <= bin[z] goes left,
// NaN (255) goes left when nan_left[z]; left rows first, each side keeping its order (the CPU
// grower's order). tmp: scratch as long as rows. n_left (nodes) int64: rows sent left.
void partition(const uint8_t* codes, int d, int32_t* rows, int32_t* tmp, const int64_t* ranges, int nodes,
               const int32_t* feature, const int32_t* bin, const int32_t* nan_left, int64_t* n_left,
               CUstream_st* stream);

// partition from rows into out (rows unchanged; out outside the ranges untouched), several
// blocks per node for large nodes: blocks (0: chosen from max_rows, the largest range) of at
// most kMaxPartBlocks; block_left: scratch of nodes * kMaxPartBlocks int64. Returns the launches
// made (1 with one block per node, else 2).
constexpr int kMaxPartBlocks = 64;
int partition_into(const uint8_t* codes, int d, const int32_t* rows, int32_t* out, const int64_t* ranges, int nodes,
                   int64_t max_rows, const int32_t* feature, const int32_t* bin, const int32_t* nan_left,
                   int64_t* block_left, int64_t* n_left, CUstream_st* stream, int blocks = 0);

// One node pair of the GPU grower in one launch (a parent of few rows: one block partitions it):
// the parent's rows rows[begin .. end) partitioned into out (as partition_into, n_left: one
// int64) and the histograms and split scans of its searched children (nodes: 1 or 2; side[z]: 0
// left child, 1 right; total[z]: its S statistics), built from the parent's rows in shared
// memory; outputs as split_scan_nodes (left and varies not null). split_pair_fits: whether H
// classes fit one block's shared memory (else use the separate kernels).
struct PairArgs {
  int64_t begin, end;
  int32_t feature, bin, nan_left, nodes;
  int32_t side[2];
  double total[2][18];
};
constexpr int kPairMaxRows = 2048;  // the grower's limit for split_pair: one partition block, as partition_into
bool split_pair_fits(int H, int criterion);
void split_pair(const uint8_t* codes, int d, const int32_t* rows, int32_t* out, const PairArgs& a, const int32_t* cls,
                const double* w, const double* y, int H, int criterion, double min_leaf, double min_weight_leaf,
                int64_t* n_left, double* proxy, int32_t* bin, int32_t* nan_left, double* left, int32_t* varies,
                CUstream_st* stream);

// Many node pairs (of different trees) in one launch: jobs (pairs, in device memory) each hold a
// pair's arguments and its tree's buffers (rows, out, weights w; codes, cls, y are shared), its
// leaf limits and its outputs (as split_pair's). The trees' rows must not overlap in out.
struct PairJob {
  PairArgs a;
  const int32_t* rows;
  int32_t* out;
  const double* w;
  double min_leaf, min_weight_leaf;
  int64_t* n_left;
  double* proxy;
  int32_t* bin;
  int32_t* nan_left;
  double* left;
  int32_t* varies;
};
void split_pair_batch(const uint8_t* codes, int d, const PairJob* jobs, int pairs, const int32_t* cls, const double* y,
                      int H, int criterion, CUstream_st* stream);

}  // namespace forgeml::cuda::tree
