// Tree kernels on the GPU (and under the SIMT emulator): a node's histograms and the per-feature
// split scan. Declarations only, so binding files need no CUDA header.
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

}  // namespace forgeml::cuda::tree
