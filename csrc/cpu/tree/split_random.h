// The random splitter's candidate from statistics gathered on the node's rows (no histogram):
// growth gathers the drawn features' codes over the node's rows, takes each one's range of codes,
// draws the threshold bin (random_threshold_bin) and sums the statistics left of it (and of NaN).
// This ranks the candidate as split.h's scan_feature does with a draw: same proxy, same checks,
// same ties, so both give the same tree (up to the order of floating-point sums).
#pragma once
#include <algorithm>
#include <cstdint>

#include "cpu/tree/split.h"

namespace forgeml::tree {

// A feature's codes over a node's rows: lo = smallest code, hi1 = largest value code + 1 (NaN's
// 255 wraps to 0, so it never counts), top = largest code (255: NaN present).
struct CodeRange {
  uint8_t lo = 255, hi1 = 0, top = 0;
  bool has_nan() const { return top == kNanBin; }
  bool has_values() const { return hi1 > 0; }
  // Constant: one occupied bin (including NaN), nothing to split.
  bool constant() const { return !has_values() || (lo + 1 == hi1 && !has_nan()); }
  // The threshold bin to split at: drawn between the value bins, or "all values left, NaN right"
  // when a single value bin sits beside NaN. Only for a feature that is not constant.
  int threshold(uint64_t draw) const { return lo + 1 < hi1 ? random_threshold_bin(lo, hi1 - 1, draw) : kAllLeft; }
};

}  // namespace forgeml::tree
