// The random splitter's candidate from statistics gathered on the node's rows (no histogram):
// growth gathers the drawn features' codes over the node's rows, takes each one's range of codes,
// draws the threshold bin (random_threshold_bin) and sums the statistics left of it (and of NaN).
// This ranks the candidate as split.h's scan_feature does with a draw: same proxy, same checks,
// same ties, so both give the same tree (up to the order of floating-point sums).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

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

// A candidate split for offer_splits: its left statistics (S values) and what offer_split takes.
struct SplitCandidate {
  const double* l;
  int feature, rank, bin;
  bool nan_left, has_nan;
};

// A criterion with pair_n: proxy(l) + proxy(r) in one 2-lane divide, the same bits.
template <class C>
concept HasPairProxy = requires(const C& k, const double* v) { k.template pair_n<4>(v, v); };

// The proxy of a split with left / right statistics l / r: proxy(l) + proxy(r), by pair_n when S
// is known at compile time (SN > 0) and the criterion has it.
template <int SN, class C>
inline double split_proxy(const C& crit, const double* l, const double* r) {
  if constexpr (SN > 0 && HasPairProxy<C>) return crit.template pair_n<SN>(l, r);
  else return crit.proxy(l) + crit.proxy(r);
}

// offer_split (no monotonic constraints) over n candidates in order: every candidate's checks and
// proxy first, then offer_split's comparisons in the same order, so the same winner, bit for bit.
// Interleaved, each proxy's divisions waited behind the previous comparison's unpredictable branch;
// apart, they overlap. R: n * S doubles of scratch, pr: n. SN: S at compile time (0: runtime S),
// the proxies then by the criterion's pair_n (the same bits as proxy(l) + proxy(r)).
template <int SN, class C>
void offer_splits_s(const C& crit, const SplitCandidate* c, int n, const double* total, int S_rt, const Limits& lim,
                    double* R, double* pr, Best& best) {
  const int S = SN ? SN : S_rt;
  for (int i = 0; i < n; ++i) {
    const double* l = c[i].l;
    double* r = R + static_cast<size_t>(i) * S;
    pr[i] = std::numeric_limits<double>::quiet_NaN();  // not offered: never compares greater or equal
    if (l[0] < lim.min_leaf || total[0] - l[0] < lim.min_leaf) continue;
    for (int s = 0; s < S; ++s) r[s] = total[s] - l[s];
    if (l[1] < lim.min_weight_leaf || r[1] < lim.min_weight_leaf || l[1] <= 0 || r[1] <= 0) continue;
    pr[i] = split_proxy<SN>(crit, l, r);
  }
  for (int i = 0; i < n; ++i) {
    const double p = pr[i];
    if (std::isnan(p)) continue;
    if (p > best.proxy || (p == best.proxy && best.found() && c[i].rank < best.rank && c[i].feature != best.feature)) {
      const double* l = c[i].l;
      const double* r = R + static_cast<size_t>(i) * S;
      best.proxy = p;
      best.feature = c[i].feature;
      best.rank = c[i].rank;
      best.bin = c[i].bin;
      best.nan_left = c[i].has_nan ? c[i].nan_left : (l[0] > r[0]);
      std::copy(l, l + S, best.left);
      std::copy(r, r + S, best.right);
    }
  }
}

// Two classes (S = 4, the packed-row splitter's usual case) with S at compile time.
template <class C>
void offer_splits(const C& crit, const SplitCandidate* c, int n, const double* total, int S, const Limits& lim,
                  double* R, double* pr, Best& best) {
  if constexpr (HasPairProxy<C>) {
    if (S == 4) return offer_splits_s<4>(crit, c, n, total, S, lim, R, pr, best);
  }
  offer_splits_s<0>(crit, c, n, total, S, lim, R, pr, best);
}

}  // namespace forgeml::tree
