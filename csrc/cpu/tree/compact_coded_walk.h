// Internal to csrc/cpu/tree: the block loop of the vector walks over the coded layout
// (compact_coded.h), shared by compact_avx2.cpp and compact_avx512.cpp, which supply the vector
// width, the quantizer and the walk of a few vectors of rows. Everything here has internal
// linkage, so the ISA builds never merge at link time.
#pragma once
#include <algorithm>
#include <cstdint>

#include "cpu/tree/compact.h"
#include "forgeml/isa_local.h"

namespace forgeml::tree::coded_walk {
namespace {

// Leaf values waiting to be added for rows [out's row, + lanes): added after the next rows' walk,
// while their cache lines (prefetched by hold) arrive; a leaf value is mostly a miss (the
// values of the bench's 100 trees are 23 MB). Each row still adds its trees in tree order.
template <int kCapacity>
struct PendingLeaves {
  alignas(64) int32_t src[kCapacity];
  int lanes = 0;
  double* out = nullptr;

  // Holds the first `n` leaves in src for output rows from `rows`, fetching their values' lines.
  void hold(int n, double* rows, const double* values, int k) {
    for (int l = 0; l < n; ++l) __builtin_prefetch(values + static_cast<int64_t>(src[l]) * k, 0, 3);
    lanes = n;
    out = rows;
  }

  void flush(const double* values, int k) {
    if (k == 2) {
      for (int l = 0; l < lanes; ++l) {
        const double* v = values + static_cast<int64_t>(src[l]) * 2;
        out[2 * l] += v[0];
        out[2 * l + 1] += v[1];
      }
    } else {
      for (int l = 0; l < lanes; ++l) {
        const double* v = values + static_cast<int64_t>(src[l]) * k;
        for (int j = 0; j < k; ++j) out[static_cast<int64_t>(l) * k + j] += v[j];
      }
    }
    lanes = 0;
  }
};

// out rows [r0, r1) += the leaf values of trees[0..T) (all when null) over codes of CB bytes.
// Walk: kLanes (rows a vector), kVectors (vectors in lockstep), kBlockBytes (float X a block,
// quantized at once: each tree's nodes are read once per block), quantize<CB>(cf, X, d, b0, b1,
// codes) and rows<G, CB>(f, cf, t, codes, c0, d, c, r1, values, k, out, leaves): rows
// [c, min(c + kLanes G, r1)) through tree t, their leaves into leaves.
template <class Walk, int CB>
void accumulate(const CompactForest& f, const CodedForest& cf, const float* X, int64_t r0, int64_t r1,
                const double* values, int k, const int64_t* trees, int64_t T, double* out) {
  constexpr int kRows = Walk::kLanes * Walk::kVectors;
  const int64_t d = f.n_features;
  const int64_t block = std::max<int64_t>(128, Walk::kBlockBytes / (4 * std::max<int64_t>(d, 1)));
  LocalVec<uint8_t> codes(std::min(block, r1 - r0) * d * CB + 4);  // + 4: a code's 32-bit read
  PendingLeaves<kRows> leaves[2];
  int now = 0;
  for (int64_t b0 = r0; b0 < r1; b0 += block) {
    const int64_t b1 = std::min(r1, b0 + block);
    Walk::template quantize<CB>(cf, X, d, b0, b1, codes.data());
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = trees ? trees[s] : s;
      for (int64_t c = b0; c < b1; now ^= 1) {
        if (c + kRows <= b1) {
          Walk::template rows<Walk::kVectors, CB>(f, cf, t, codes.data(), b0, d, c, b1, values, k, out, leaves[now]);
          c += kRows;
        } else {
          Walk::template rows<1, CB>(f, cf, t, codes.data(), b0, d, c, b1, values, k, out, leaves[now]);
          c += Walk::kLanes;
        }
        leaves[now ^ 1].flush(values, k);  // the previous rows' (their lines have had a walk to arrive)
      }
    }
    leaves[now ^ 1].flush(values, k);
  }
}

}  // namespace
}  // namespace forgeml::tree::coded_walk
