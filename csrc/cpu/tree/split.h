// Best split of one feature from its histogram.
//
//   hw   (256, H) per-bin sums: class weights w_0..w_{K-1} (classification, H = K) or
//        {w, w*y, w*y^2} (regression, H = 3)
//   cnt  (256) rows per bin;  occ: 256-bit mask of the bins holding rows (bin 255 = NaN)
//   total (S = H + 2 for classification, 4 for regression): the node's statistics, criterion.h
//
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

// s += bin b's statistics (S = H + 2 layout).
template <bool kClassify>
inline void add_bin(double* s, const double* hw, const uint32_t* cnt, int b, int H) {
  const double* h = hw + static_cast<size_t>(b) * H;
  s[0] += cnt[b];
  if constexpr (kClassify) {
    double W = 0;
    for (int k = 0; k < H; ++k) { s[2 + k] += h[k]; W += h[k]; }
    s[1] += W;
  } else {
    s[1] += h[0];
    s[2] += h[1];
    s[3] += h[2];
  }
}

// Returns false when the feature is constant in the node (one occupied bin including NaN).
// SC is S when known at compile time (0: use S). tmp must hold 4 * S doubles.
template <class C, int SC = 0>
bool scan_feature(const C& crit, const double* hw, const uint32_t* cnt, const uint64_t* occ, const double* total,
                  int S_rt, const Limits& lim, int feature, int rank, double* tmp, Best& best) {
  const int S = SC > 0 ? SC : S_rt;
  const int H = C::kClassify ? S - 2 : 3;
  const bool has_nan = (occ[3] >> 63) & 1;
  int bins[256], u = 0;
  for_each_bit(occ, 4, [&](int b) { if (b != kNanBin) bins[u++] = b; });
  if (u + (has_nan ? 1 : 0) <= 1) return false;
  double* L = tmp;
  double* R = tmp + S;
  double* LN = tmp + 2 * S;
  std::fill(L, L + S, 0.0);
  double* N = tmp + 3 * S;  // the NaN bin's statistics
  if (has_nan) {
    std::fill(N, N + S, 0.0);
    add_bin<C::kClassify>(N, hw, cnt, kNanBin, H);
  }
  auto consider = [&](const double* l, int bin, bool nan_left) __attribute__((always_inline)) {
    if (l[0] < lim.min_leaf || total[0] - l[0] < lim.min_leaf) return;
    for (int s = 0; s < S; ++s) R[s] = total[s] - l[s];
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
    add_bin<C::kClassify>(L, hw, cnt, bins[j], H);
    if (j + 1 < u) {
      int bin = (bins[j] + bins[j + 1] - 1) / 2;
      consider(L, bin, false);
      if (has_nan) {
        for (int s = 0; s < S; ++s) LN[s] = L[s] + N[s];
        consider(LN, bin, true);
      }
    } else if (has_nan) {
      consider(L, kAllLeft, false);
    }
  }
  return true;
}

}  // namespace forgeml::tree
