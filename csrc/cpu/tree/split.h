// Best split of one feature from its histogram: hist is (256, S) statistics per bin (see
// criterion.h), occ a 256-bit mask of the bins holding rows, total the node's statistics.
// Value bins are scanned left to right; with NaN rows present each boundary is tried with the
// NaN bin on either side, plus "all values left, NaN right". The threshold bin of a boundary
// between occupied bins a < b is the middle one, (a + b - 1) / 2, so unseen values in between
// split evenly (as scikit-learn's midpoint threshold does).
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>

#include "cpu/tree/criterion.h"
#include "cpu/tree/tree.h"

namespace forgeml::tree {

struct Limits {
  double min_leaf;         // rows
  double min_weight_leaf;  // weight
};

struct Best {
  double proxy = -std::numeric_limits<double>::infinity();
  int feature = -1;
  int rank = 1 << 30;  // position of the feature in the node's draw order (deterministic ties)
  int bin = 0;
  bool nan_left = false;
  double* left;   // S statistics, owned by the caller
  double* right;
  bool found() const { return feature >= 0; }
};

// Visits the set bits of a 256-bit mask in increasing order.
template <class F>
inline void for_each_bit(const uint64_t* occ, int words, F&& f) {
  for (int w = 0; w < words; ++w)
    for (uint64_t m = occ[w]; m; m &= m - 1) f(w * 64 + __builtin_ctzll(m));
}

// Returns false when the feature is constant in the node (one occupied bin including NaN).
// tmp must hold 3 * S doubles.
template <class C>
bool scan_feature(const C& crit, const double* hist, const uint64_t* occ, const double* total, int S,
                  const Limits& lim, int feature, int rank, double* tmp, Best& best) {
  const bool has_nan = (occ[3] >> 63) & 1;
  int bins[256], u = 0;
  for_each_bit(occ, 4, [&](int b) { if (b != kNanBin) bins[u++] = b; });
  if (u + (has_nan ? 1 : 0) <= 1) return false;
  double* L = tmp;
  double* R = tmp + S;
  double* LN = tmp + 2 * S;
  const double* nan = hist + kNanBin * S;
  std::fill(L, L + S, 0.0);
  auto consider = [&](const double* l, int bin, bool nan_left) {
    for (int s = 0; s < S; ++s) R[s] = total[s] - l[s];
    if (l[0] < lim.min_leaf || R[0] < lim.min_leaf) return;
    if (l[1] < lim.min_weight_leaf || R[1] < lim.min_weight_leaf || l[1] <= 0 || R[1] <= 0) return;
    double pr = crit.proxy(l) + crit.proxy(R);
    if (pr > best.proxy || (pr == best.proxy && rank < best.rank && feature != best.feature)) {
      best.proxy = pr;
      best.feature = feature;
      best.rank = rank;
      best.bin = bin;
      // no NaN seen here: NaN at predict time follows the child with more rows
      best.nan_left = has_nan ? nan_left : (l[0] >= R[0]);
      std::copy(l, l + S, best.left);
      std::copy(R, R + S, best.right);
    }
  };
  for (int j = 0; j < u; ++j) {
    const double* h = hist + bins[j] * S;
    for (int s = 0; s < S; ++s) L[s] += h[s];
    if (j + 1 < u) {
      int bin = (bins[j] + bins[j + 1] - 1) / 2;
      consider(L, bin, false);
      if (has_nan) {
        for (int s = 0; s < S; ++s) LN[s] = L[s] + nan[s];
        consider(LN, bin, true);
      }
    } else if (has_nan) {
      consider(L, kAllLeft, false);
    }
  }
  return true;
}

}  // namespace forgeml::tree
