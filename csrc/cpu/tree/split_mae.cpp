// Absolute-error split search and node statistics (see split_mae.h).
#include "cpu/tree/split_mae.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>

namespace forgeml::tree {

namespace {

// Index order of y ascending (ties by index: deterministic).
void sort_by_y(const double* y, int64_t n, std::vector<int64_t>& idx) {
  idx.resize(n);
  std::iota(idx.begin(), idx.end(), int64_t{0});
  std::sort(idx.begin(), idx.end(), [y](int64_t a, int64_t b) { return y[a] < y[b] || (y[a] == y[b] && a < b); });
}

}  // namespace

void mae_node_stats(const double* y, const double* w, int64_t n, double* s) {
  std::vector<int64_t> idx;
  sort_by_y(y, n, idx);
  double W = 0;
  for (int64_t k = 0; k < n; ++k) W += w[idx[k]];
  const double half = 0.5 * W;
  double median = n ? y[idx[n - 1]] : 0.0, cum = 0;
  for (int64_t k = 0; k < n; ++k) {
    cum += w[idx[k]];
    if (cum == half && k + 1 < n) {  // a prefix weighs exactly half: the mid-point
      median = (y[idx[k]] + y[idx[k + 1]]) / 2;
      break;
    }
    if (cum > half) {
      median = y[idx[k]];
      break;
    }
  }
  double ae = 0;
  for (int64_t k = 0; k < n; ++k) ae += w[idx[k]] * std::abs(y[idx[k]] - median);
  s[0] = static_cast<double>(n);
  s[1] = W;
  s[2] = ae;
  s[3] = median;
}

void MaeSplitter::rank_rows() {
  const int64_t n = static_cast<int64_t>(y_.size());
  std::vector<int64_t> idx;
  sort_by_y(y_.data(), n, idx);
  rank_.resize(n);
  sorted_y_.resize(n);
  for (int64_t k = 0; k < n; ++k) {
    rank_[idx[k]] = k;
    sorted_y_[k] = y_[idx[k]];
  }
  fw_w_.assign(n + 1, 0.0);
  fw_wy_.assign(n + 1, 0.0);
  top_bit_ = 1;
  while (top_bit_ * 2 <= n) top_bit_ *= 2;
}

void MaeSplitter::fw_clear() {
  std::fill(fw_w_.begin(), fw_w_.end(), 0.0);
  std::fill(fw_wy_.begin(), fw_wy_.end(), 0.0);
}

void MaeSplitter::fw_add(int64_t rank, double w, double wy) {
  const int64_t n = static_cast<int64_t>(fw_w_.size()) - 1;
  for (int64_t i = rank + 1; i <= n; i += i & -i) {
    fw_w_[i] += w;
    fw_wy_[i] += wy;
  }
}

void MaeSplitter::fw_median(double W, double WY, double* median, double* ae) const {
  const int64_t n = static_cast<int64_t>(fw_w_.size()) - 1;
  const double half = 0.5 * W;
  // pos: the largest index whose prefix weight is <= half; below = its prefix sums
  int64_t pos = 0, pos_lt = 0;
  double cw = 0, cwy = 0, cw_lt = 0;
  for (int64_t bit = top_bit_; bit; bit >>= 1) {
    const int64_t next = pos + bit;
    if (next <= n && cw + fw_w_[next] <= half) {
      pos = next;
      cw += fw_w_[next];
      cwy += fw_wy_[next];
    }
    const int64_t next_lt = pos_lt + bit;
    if (next_lt <= n && cw_lt + fw_w_[next_lt] < half) {
      pos_lt = next_lt;
      cw_lt += fw_w_[next_lt];
    }
  }
  pos = std::min(pos, n - 1);  // rounding guard: the prefix sums of all rows must pass half
  // The median's rank is the first active one above pos (index pos + 1 onward: the descent
  // stops before the first index whose prefix passes half, which is an active row).
  const double y_hi = sorted_y_[pos];  // index pos + 1, 1-based
  // cw == half: rows up to pos weigh exactly half; pos_lt + 1 holds the last of them.
  const double m = cw == half ? (sorted_y_[pos_lt] + y_hi) / 2 : y_hi;
  *median = m;
  *ae = (WY - cwy - m * (W - cw)) + (m * cw - cwy);
}

void MaeSplitter::arrange(const uint8_t* col, int64_t stride, const int* groups, int G, const int64_t* cnt) {
  const int64_t n = static_cast<int64_t>(row_.size());
  int64_t at[256];
  int64_t sum = 0;
  start_.resize(G + 1);
  for (int j = 0; j < G; ++j) {
    start_[j] = sum;
    at[groups[j]] = sum;
    sum += cnt[groups[j]];
  }
  start_[G] = n;
  order_.resize(n);
  for (int64_t i = 0; i < n; ++i) order_[at[col[static_cast<int64_t>(row_[i]) * stride]]++] = i;
}

void MaeSplitter::sweep(int G) {
  const int nb = G - 1;  // boundary k: groups [0, k] left, [k + 1, G) right
  side_l_.resize(nb);
  side_r_.resize(nb);
  fw_clear();
  double W = 0, WY = 0;
  for (int k = 0; k < nb; ++k) {
    for (int64_t p = start_[k]; p < start_[k + 1]; ++p) {
      const int64_t i = order_[p];
      const double wy = w_[i] * y_[i];
      fw_add(rank_[i], w_[i], wy);
      W += w_[i];
      WY += wy;
    }
    side_l_[k] = {static_cast<double>(start_[k + 1]), W, 0, 0};
    fw_median(W, WY, &side_l_[k][3], &side_l_[k][2]);
  }
  fw_clear();
  W = 0;
  WY = 0;
  const int64_t n = static_cast<int64_t>(row_.size());
  for (int k = nb - 1; k >= 0; --k) {
    for (int64_t p = start_[k + 2] - 1; p >= start_[k + 1]; --p) {
      const int64_t i = order_[p];
      const double wy = w_[i] * y_[i];
      fw_add(rank_[i], w_[i], wy);
      W += w_[i];
      WY += wy;
    }
    side_r_[k] = {static_cast<double>(n - start_[k + 1]), W, 0, 0};
    fw_median(W, WY, &side_r_[k][3], &side_r_[k][2]);
  }
}

bool MaeSplitter::scan(const uint8_t* col, int64_t stride, int f, int rank, const Limits& lim, Best& best,
                       const Monotonic* mono, const uint64_t* draw) {
  const int64_t n = static_cast<int64_t>(row_.size());
  int64_t cnt[256] = {0};
  for (int64_t i = 0; i < n; ++i) ++cnt[col[static_cast<int64_t>(row_[i]) * stride]];
  const bool has_nan = cnt[kNanBin] > 0;
  int groups[257], u = 0;  // groups[1 .. u]: the occupied value bins ascending
  for (int b = 0; b < kNanBin; ++b)
    if (cnt[b]) groups[1 + u++] = b;
  if (u + (has_nan ? 1 : 0) <= 1) return false;
  int pick = -1, drawn_bin = 0;  // the random splitter: the boundary holding the drawn bin, at that bin
  if (draw && u >= 2) {
    drawn_bin = random_threshold_bin(groups[1], groups[u], *draw);
    for (pick = 0; groups[pick + 2] <= drawn_bin;) ++pick;
  }
  auto bin_at = [&](int a, int b) { return pick >= 0 ? drawn_bin : (a + b - 1) / 2; };
  auto consider = [&](const std::array<double, 4>& l, const std::array<double, 4>& r, int boundary, int bin,
                      bool nan_left) {
    if (pick >= 0 && boundary != pick) return;
    if (l[0] < lim.min_leaf || r[0] < lim.min_leaf) return;
    if (l[1] < lim.min_weight_leaf || r[1] < lim.min_weight_leaf || l[1] <= 0 || r[1] <= 0) return;
    if (mono) {  // the children's values are their medians
      const double vl = l[3], vr = r[3];
      if (!(vl >= mono->lower && vr >= mono->lower && vl <= mono->upper && vr <= mono->upper &&
            (vl - vr) * mono->cst <= 0))
        return;
    }
    const double pr = -(l[2] + r[2]);
    if (pr > best.proxy || (pr == best.proxy && best.found() && rank < best.rank && f != best.feature)) {
      best.proxy = pr;
      best.feature = f;
      best.rank = rank;
      best.bin = bin;
      // no NaN seen here: NaN at predict time follows the child with more rows (ties: right)
      best.nan_left = has_nan ? nan_left : l[0] > r[0];
      std::copy(l.begin(), l.end(), best.left);
      std::copy(r.begin(), r.end(), best.right);
    }
  };
  // NaN right (scikit-learn searches this way first): value bins ascending, then NaN; the last
  // boundary sends only NaN right ("all values left")
  int G = u;
  if (has_nan) groups[1 + G++] = kNanBin;
  arrange(col, stride, groups + 1, G, cnt);
  sweep(G);
  for (int k = 0; k + 1 < G; ++k) {
    if (k + 1 < u) consider(side_l_[k], side_r_[k], k, bin_at(groups[1 + k], groups[2 + k]), false);
    else if (pick < 0) consider(side_l_[k], side_r_[k], k, kAllLeft, false);
  }
  // NaN left: NaN, then value bins ascending (NaN alone on the left is the split above)
  if (has_nan && u >= 2) {
    groups[0] = kNanBin;
    arrange(col, stride, groups, u + 1, cnt);
    sweep(u + 1);
    for (int k = 1; k < u; ++k) consider(side_l_[k], side_r_[k], k - 1, bin_at(groups[k], groups[k + 1]), true);
  }
  return true;
}

}  // namespace forgeml::tree
