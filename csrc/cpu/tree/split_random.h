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

// Offers the split with left statistics l (S values, criterion.h layout) at bin to best. R: S
// doubles of scratch. has_nan: the node holds NaN rows in this feature (nan_left says where they
// went); without them NaN at predict time follows the child with more rows (ties: right).
template <class C>
inline void consider_random(const C& crit, const double* l, const double* total, int S, const Limits& lim,
                            const Monotonic* mono, int feature, int rank, int bin, bool nan_left, bool has_nan,
                            double* R, Best& best) {
  if (l[0] < lim.min_leaf || total[0] - l[0] < lim.min_leaf) return;
  for (int s = 0; s < S; ++s) R[s] = total[s] - l[s];
  if (l[1] < lim.min_weight_leaf || R[1] < lim.min_weight_leaf || l[1] <= 0 || R[1] <= 0) return;
  if (mono && !mono->allows(l, R)) return;
  const double pr = crit.proxy(l) + crit.proxy(R);
  if (pr > best.proxy || (pr == best.proxy && best.found() && rank < best.rank && feature != best.feature)) {
    best.proxy = pr;
    best.feature = feature;
    best.rank = rank;
    best.bin = bin;
    best.nan_left = has_nan ? nan_left : (l[0] > R[0]);
    std::copy(l, l + S, best.left);
    std::copy(R, R + S, best.right);
  }
}

}  // namespace forgeml::tree
