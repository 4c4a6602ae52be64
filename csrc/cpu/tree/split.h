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
//
// scan_feature is the generic (runtime S) scan and the reference; growth calls scan_any /
// scan_packed, the same scan with S fixed at compile time (statistics in registers), reading
// either the double histogram or packed integer counts. All give identical bits.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>
#include <stdexcept>

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

// Monotonic constraint on a split: both children's values (statistic 2 over weight: the mean
// target in regression, the fraction of class 0 in classification) inside [lower, upper], and
// ordered left <= right for cst = +1, left >= right for cst = -1.
struct Monotonic {
  int cst;
  double lower, upper;
  bool allows(const double* l, const double* r) const {
    const double vl = l[2] / l[1], vr = r[2] / r[1];
    return vl >= lower && vr >= lower && vl <= upper && vr <= upper && (vl - vr) * cst <= 0;
  }
};

// Visits the set bits of a 256-bit mask in increasing order.
template <class F>
inline void for_each_bit(const uint64_t* occ, int words, F&& f) {
  for (int w = 0; w < words; ++w)
    for (uint64_t m = occ[w]; m; m &= m - 1) f(w * 64 + __builtin_ctzll(m));
}

// s += bin b's statistics (S = H + 2 layout for single-output classification, else S = H + 1).
template <bool kClassify>
inline void add_bin(double* s, const double* hw, const uint32_t* cnt, int b, int H) {
  const double* h = hw + static_cast<size_t>(b) * H;
  s[0] += cnt[b];
  if constexpr (kClassify) {
    double W = 0;
    for (int k = 0; k < H; ++k) { s[2 + k] += h[k]; W += h[k]; }
    s[1] += W;
  } else {
    for (int i = 0; i < H; ++i) s[1 + i] += h[i];
  }
}

// The random splitter's threshold bin for a feature whose value bins in the node span lo < hi:
// uniform over lo .. hi - 1 (scikit-learn's threshold, uniform between the node's minimum and
// maximum, on the bin scale), so a gap between occupied bins is drawn in proportion to its width.
// draw % (hi - lo) exactly without a 64-bit divide (one waited for was ~1% of an ExtraTrees fit):
// the quotient by Granlund and Montgomery's multiply for any 64-bit dividend (their unsigned
// division by an invariant, with l = ceil(log2 d): m = floor(2^64 (2^l - d) / d) + 1,
// q = (t + ((n - t) >> min(l, 1))) >> max(l - 1, 0) with t = mulhi(m, n)), then n - q d: two
// multiplies (a 128-bit fraction took four). Per divisor d < 256 (bins span at most 255).
struct RemainderMagic {
  uint64_t m = 0;
  uint8_t s1 = 0, s2 = 0;
};
struct RemainderTable {
  RemainderMagic g[256];
};
inline constexpr RemainderTable kRemainders = [] {
  RemainderTable t{};
  for (uint64_t d = 1; d < 256; ++d) {
    int l = 0;
    while ((uint64_t{1} << l) < d) ++l;
    __extension__ typedef unsigned __int128 U128;
    t.g[d].m = static_cast<uint64_t>((static_cast<U128>((uint64_t{1} << l) - d) << 64) / d + 1);
    t.g[d].s1 = static_cast<uint8_t>(l < 1 ? l : 1);
    t.g[d].s2 = static_cast<uint8_t>(l > 1 ? l - 1 : 0);
  }
  return t;
}();

inline uint64_t draw_remainder(uint64_t draw, uint64_t d) {
  if (d >= 256) return draw % d;
  const RemainderMagic& g = kRemainders.g[d];
  __extension__ typedef unsigned __int128 U128;
  const uint64_t t = static_cast<uint64_t>((static_cast<U128>(g.m) * draw) >> 64);
  const uint64_t q = (t + ((draw - t) >> g.s1)) >> g.s2;
  return draw - q * d;
}

inline int random_threshold_bin(int lo, int hi, uint64_t draw) {
  return lo + static_cast<int>(draw_remainder(draw, static_cast<uint64_t>(hi - lo)));
}

// Offers the split with left statistics l (S values, criterion.h layout) at bin to best. R: S
// doubles of scratch. has_nan: the node holds NaN rows in this feature (nan_left says where they
// went); without them NaN at predict time follows the child with more rows (ties: right).
template <class C>
inline __attribute__((always_inline)) void offer_split(const C& crit, const double* l, const double* total, int S, const Limits& lim,
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

// Returns false when the feature is constant in the node (one occupied bin including NaN).
// SC is S when known at compile time (0: use S). tmp must hold 4 * S doubles.
// mono (optional): splits it disallows are skipped. draw (optional): the random splitter; only
// the boundary holding random_threshold_bin is tried (each side for NaN), at that bin, or "all
// values left, NaN right" when the node has one value bin plus NaN.
template <class C, int SC = 0>
bool scan_feature(const C& crit, const double* hw, const uint32_t* cnt, const uint64_t* occ, const double* total,
                  int S_rt, const Limits& lim, int feature, int rank, double* tmp, Best& best,
                  const Monotonic* mono = nullptr, const uint64_t* draw = nullptr) {
  const int S = SC > 0 ? SC : S_rt;
  constexpr bool kClassLayout = class_layout<C>();
  const int H = kClassLayout ? S - 2 : S - 1;
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
    add_bin<kClassLayout>(N, hw, cnt, kNanBin, H);
  }
  auto consider = [&](const double* l, int bin, bool nan_left) __attribute__((always_inline)) {
    offer_split(crit, l, total, S, lim, mono, feature, rank, bin, nan_left, has_nan, R, best);
  };
  int pick = -1, drawn_bin = 0;
  if (draw && u >= 2) {
    drawn_bin = random_threshold_bin(bins[0], bins[u - 1], *draw);
    for (pick = 0; bins[pick + 1] <= drawn_bin;) ++pick;
  }
  for (int j = 0; j < u; ++j) {
    add_bin<kClassLayout>(L, hw, cnt, bins[j], H);
    if (draw && u > 1 && j != pick) continue;
    if (j + 1 < u) {
      int bin = pick >= 0 ? drawn_bin : (bins[j] + bins[j + 1] - 1) / 2;
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

// scan_feature with S fixed at compile time: the running statistics live in registers (the
// generic loop spills them to tmp and reloads them wider than stored, stalling store
// forwarding on every bin). Same arithmetic in the same order, so the same bits and winner.
template <bool kClassify, int S>
inline void add_bin_n(double* s, const double* hw, const uint32_t* cnt, int b) {
  constexpr int H = kClassify ? S - 2 : 3;
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

// s += bin b's statistics from packed integer counts (K = S - 2 entries per bin):
// entry (b, k) = rows of class k << 32 | their total weight (integer weights only). Sums of
// integers below 2^53 are exact, so this gives the same bits as the double histogram.
template <int S>
inline void add_bin_packed(double* s, const uint64_t* pk, int b) {
  constexpr int K = S - 2;
  const uint64_t* e = pk + static_cast<size_t>(b) * K;
  uint64_t rows = 0;
  double W = 0;
  for (int k = 0; k < K; ++k) {
    rows += e[k] >> 32;
    const double wk = static_cast<double>(static_cast<uint32_t>(e[k]));
    s[2 + k] += wk;
    W += wk;
  }
  s[0] += static_cast<double>(rows);
  s[1] += W;
}

// The scan with S fixed; add(s, b) adds bin b's statistics to s.
template <class C, int S, class Add>
bool scan_bins_n(const C& crit, Add&& add, const uint64_t* occ, const double* total, const Limits& lim,
                 int feature, int rank, Best& best) {
  const bool has_nan = (occ[3] >> 63) & 1;
  int bins[256], u = 0;
  for_each_bit(occ, 4, [&](int b) { if (b != kNanBin) bins[u++] = b; });
  if (u + (has_nan ? 1 : 0) <= 1) return false;
  double T[S], L[S], N[S];
  for (int s = 0; s < S; ++s) { T[s] = total[s]; L[s] = 0; N[s] = 0; }
  if (has_nan) add(N, kNanBin);
  const double min_leaf = lim.min_leaf, min_w = lim.min_weight_leaf;
  auto consider = [&](const double* l, int bin, bool nan_left) __attribute__((always_inline)) {
    if (l[0] < min_leaf || T[0] - l[0] < min_leaf) return;
    double R[S];
    for (int s = 0; s < S; ++s) R[s] = T[s] - l[s];
    if (l[1] < min_w || R[1] < min_w || l[1] <= 0 || R[1] <= 0) return;
    double pr = crit.template pair_n<S>(l, R);
    if (pr > best.proxy ||
        (pr == best.proxy && best.found() && rank < best.rank && feature != best.feature)) [[unlikely]] {
      best.proxy = pr;
      best.feature = feature;
      best.rank = rank;
      best.bin = bin;
      best.nan_left = has_nan ? nan_left : (l[0] > R[0]);
      for (int s = 0; s < S; ++s) { best.left[s] = l[s]; best.right[s] = R[s]; }
    }
  };
  for (int j = 0; j < u; ++j) {
    add(L, bins[j]);
    if (j + 1 < u) {
      int bin = (bins[j] + bins[j + 1] - 1) / 2;
      consider(L, bin, false);
      if (has_nan) {
        double LN[S];
        for (int s = 0; s < S; ++s) LN[s] = L[s] + N[s];
        consider(LN, bin, true);
      }
    } else if (has_nan) {
      consider(L, kAllLeft, false);
    }
  }
  return true;
}

template <class C, int S>
bool scan_feature_n(const C& crit, const double* hw, const uint32_t* cnt, const uint64_t* occ, const double* total,
                    const Limits& lim, int feature, int rank, Best& best) {
  auto add = [&](double* s, int b) __attribute__((always_inline)) { add_bin_n<C::kClassify, S>(s, hw, cnt, b); };
  return scan_bins_n<C, S>(crit, add, occ, total, lim, feature, rank, best);
}

template <class C, int S>
bool scan_packed_n(const C& crit, const uint64_t* pk, const uint64_t* occ, const double* total, const Limits& lim,
                   int feature, int rank, Best& best) {
  auto add = [&](double* s, int b) __attribute__((always_inline)) { add_bin_packed<S>(s, pk, b); };
  return scan_bins_n<C, S>(crit, add, occ, total, lim, feature, rank, best);
}

constexpr int kMaxPackedClasses = 8;

// Packed-count scan (classification, 1 <= K <= kMaxPackedClasses).
template <class C>
bool scan_packed(const C& crit, const uint64_t* pk, const uint64_t* occ, const double* total, int S,
                 const Limits& lim, int feature, int rank, Best& best) {
  switch (S) {
#define FORGEML_SCAN_P(n) \
  case n: return scan_packed_n<C, n>(crit, pk, occ, total, lim, feature, rank, best);
    FORGEML_SCAN_P(3) FORGEML_SCAN_P(4) FORGEML_SCAN_P(5) FORGEML_SCAN_P(6)
    FORGEML_SCAN_P(7) FORGEML_SCAN_P(8) FORGEML_SCAN_P(9) FORGEML_SCAN_P(10)
#undef FORGEML_SCAN_P
  }
  throw std::logic_error("scan_packed: unsupported width");
}

// The scan for any S: fixed-width for the common widths (up to 8 classes), generic otherwise.
template <class C>
bool scan_any(const C& crit, const double* hw, const uint32_t* cnt, const uint64_t* occ, const double* total, int S,
              const Limits& lim, int feature, int rank, double* tmp, Best& best) {
#define FORGEML_SCAN_N(n) \
  case n: return scan_feature_n<C, n>(crit, hw, cnt, occ, total, lim, feature, rank, best);
  if constexpr (is_multi<C>()) {  // k outputs: the generic scan
    return scan_feature(crit, hw, cnt, occ, total, S, lim, feature, rank, tmp, best);
  } else if constexpr (C::kClassify) {
    switch (S) {
      FORGEML_SCAN_N(3) FORGEML_SCAN_N(4) FORGEML_SCAN_N(5) FORGEML_SCAN_N(6)
      FORGEML_SCAN_N(7) FORGEML_SCAN_N(8) FORGEML_SCAN_N(9) FORGEML_SCAN_N(10)
      default: return scan_feature(crit, hw, cnt, occ, total, S, lim, feature, rank, tmp, best);
    }
  } else {
    return scan_feature_n<C, 4>(crit, hw, cnt, occ, total, lim, feature, rank, best);
  }
#undef FORGEML_SCAN_N
}

}  // namespace forgeml::tree
