// Absolute-error criterion (scikit-learn's criterion="absolute_error"): median leaves, impurity
// = sum w |y - median| / W. Not a sum over bins, so its split search walks the node's rows.
//
// Node statistics keep the S = 4 layout of the regression criteria with other meanings:
//   s = {count, W, sum w |y - median|, median}
// The median is scikit-learn's weighted median: the smallest y whose cumulative weight (y
// ascending) exceeds W / 2, or the mid-point of the two values around W / 2 when a prefix
// weighs exactly W / 2.
//
// Split search of one feature: the node's rows in bin order (counting sort on the codes), then
// a forward and a backward sweep inserting rows into a Fenwick tree over the node-local ranks of
// y (weight and w*y sums). At each boundary between occupied bins the tree gives the side's
// weighted median by binary descent and its absolute deviation by the pinball identity
//   sum w |y - m| = (wy_above - m w_above) + (m w_below - wy_below).
// O(n log n) per feature; the node's y ranks are computed once per node (reset).
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "cpu/tree/split.h"

namespace forgeml::tree {

// The criterion for grow.cpp's Grower: costs are the stored absolute deviations; proxy exists
// only so the histogram scans compile (growth calls MaeSplitter instead).
struct AbsoluteError {
  static constexpr bool kClassify = false;
  static constexpr bool kMedian = true;
  int K;  // unused (1)
  double cost(const double* s) const { return s[2]; }
  double proxy(const double* s) const { return -s[2]; }
  template <int S>
  double proxy_n(const double* s) const {
    return proxy(s);
  }
  template <int S>
  double pair_n(const double* l, const double* r) const {
    return proxy(l) + proxy(r);
  }
};

// Whether C is AbsoluteError-like: median leaves, statistics from the node's rows.
template <class C>
constexpr bool median_leaves() {
  if constexpr (requires { C::kMedian; }) return C::kMedian;
  return false;
}

// s[4] = {count, W, sum w |y - median|, median} of n rows (y, w), w > 0, summed directly.
void mae_node_stats(const double* y, const double* w, int64_t n, double* s);

class MaeSplitter {
 public:
  // The node's rows (records with .row, .w, .y), before any scan.
  template <class Rec>
  void reset(const Rec* rows, int64_t n) {
    row_.resize(n);
    w_.resize(n);
    y_.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      row_[i] = rows[i].row;
      w_[i] = rows[i].w;
      y_[i] = rows[i].y;
    }
    rank_rows();
  }
  // Best split of feature f (the proxy is -(AE_left + AE_right)), updating best as split.h's
  // scans do (same candidates, tie rule and threshold bins; the splits with NaN rows right are
  // tried first, as scikit-learn does). mono (optional): the children's medians must satisfy it.
  // draw: the random splitter (the boundary holding random_threshold_bin). false: f is constant.
  // Feature f's code of row r is col[r * stride] (row-major codes: codes + f, stride d).
  bool scan(const uint8_t* col, int64_t stride, int f, int rank, const Limits& lim, Best& best, const Monotonic* mono,
            const uint64_t* draw);

 private:
  void rank_rows();
  // order_: the node's rows grouped by bin of feature f, groups[0..G) in that order (start_).
  void arrange(const uint8_t* col, int64_t stride, const int* groups, int G, const int64_t* cnt);
  // side_l_[k] / side_r_[k]: statistics of groups [0, k] and (k, G), for k < G - 1.
  void sweep(int G);
  // Fenwick tree over ranks 1..n: weight and w*y prefix sums.
  void fw_clear();
  void fw_add(int64_t rank, double w, double wy);
  // {median, absolute deviation} of the inserted rows (total weight W, total w*y WY).
  void fw_median(double W, double WY, double* median, double* ae) const;

  std::vector<int32_t> row_;
  std::vector<double> w_, y_;
  std::vector<int64_t> rank_;     // node-local rank of row i's y
  std::vector<double> sorted_y_;  // y by rank
  std::vector<double> fw_w_, fw_wy_;
  int64_t top_bit_ = 1;
  std::vector<int64_t> order_, start_;
  std::vector<std::array<double, 4>> side_l_, side_r_;
};

}  // namespace forgeml::tree
