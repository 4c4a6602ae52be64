// Split criteria behind one small interface, on per-bin statistics of width S:
//   classification: s = {count, W, w_0 .. w_{K-1}}  (S = K + 2; w_k = weight of class k)
//   regression:     s = {count, W, sum w*y, sum w*y^2}  (S = 4)
// count is the number of rows (for min_samples_leaf), W their total weight.
//
//   cost(s)  = W * impurity(s): the weighted impurity a node contributes.
//     gini:          W * (1 - sum_k (w_k/W)^2)    = W - sum_k w_k^2 / W
//     entropy:       W * (-sum_k p_k log2 p_k)     = (W ln W - sum_k w_k ln w_k) / ln 2
//     squared_error: W * (E[y^2] - E[y]^2)         = sum w y^2 - (sum w y)^2 / W
//     poisson:       half Poisson deviance of the mean = sum w y ln y - Y ln(Y / W), Y = sum w y;
//                    its statistics keep sum w y ln y where squared_error keeps sum w y^2
//   proxy(s): a split maximises proxy(left) + proxy(right), which equals -(cost(left) +
//     cost(right)) up to terms constant at a node (so the constants cancelling in gini and
//     squared_error are never computed, keeping the comparison exact in float64).
//   add(s, w, row): one row's contribution.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

namespace forgeml::tree {

struct Gini {
  static constexpr bool kClassify = true;
  int K;
  double cost(const double* s) const {
    double W = s[1];
    if (W <= 0) return 0;
    double sq = 0;
    for (int k = 0; k < K; ++k) sq += s[2 + k] * s[2 + k];
    return W - sq / W;
  }
  double proxy(const double* s) const {
    double sq = 0;
    for (int k = 0; k < K; ++k) sq += s[2 + k] * s[2 + k];
    return sq / s[1];
  }
  // proxy with S = K + 2 known at compile time (same arithmetic, same order: identical bits)
  template <int S>
  double proxy_n(const double* s) const {
    double sq = 0;
    for (int k = 0; k < S - 2; ++k) sq += s[2 + k] * s[2 + k];
    return sq / s[1];
  }
  // proxy(l) + proxy(r) with both divisions in one 2-lane divide (each lane is the same IEEE
  // quotient as the scalar one, so the same bits; half the divider work of the scan).
  template <int S>
  double pair_n(const double* l, const double* r) const {
    typedef double v2d __attribute__((vector_size(16)));
    v2d sq = {0, 0};
    for (int k = 0; k < S - 2; ++k) {
      v2d x = {l[2 + k], r[2 + k]};
      sq += x * x;
    }
    v2d w = {l[1], r[1]};
    v2d q = sq / w;
    return q[0] + q[1];
  }
};

struct Entropy {
  static constexpr bool kClassify = true;
  int K;
  static double xlogx(double x) { return x > 0 ? x * std::log(x) : 0.0; }
  double cost(const double* s) const {
    double c = xlogx(s[1]);
    for (int k = 0; k < K; ++k) c -= xlogx(s[2 + k]);
    return c / std::log(2.0);
  }
  double proxy(const double* s) const {
    double c = -xlogx(s[1]);
    for (int k = 0; k < K; ++k) c += xlogx(s[2 + k]);
    return c;
  }
  template <int S>
  double proxy_n(const double* s) const {
    double c = -xlogx(s[1]);
    for (int k = 0; k < S - 2; ++k) c += xlogx(s[2 + k]);
    return c;
  }
  template <int S>
  double pair_n(const double* l, const double* r) const { return proxy_n<S>(l) + proxy_n<S>(r); }
};

struct SquaredError {
  static constexpr bool kClassify = false;
  int K;  // unused (1)
  double cost(const double* s) const { return s[1] > 0 ? s[3] - s[2] * s[2] / s[1] : 0.0; }
  double proxy(const double* s) const { return s[2] * s[2] / s[1]; }
  template <int S>
  double proxy_n(const double* s) const { return proxy(s); }
  template <int S>
  double pair_n(const double* l, const double* r) const { return proxy(l) + proxy(r); }
};

struct Poisson {
  static constexpr bool kClassify = false;
  static constexpr bool kLogStat = true;  // s[3] = sum w y ln y
  int K;  // unused (1)
  static double xlogy(double y) { return y > 0 ? y * std::log(y) : 0.0; }
  // A mean this small is zero: what is left of a zero sum after parent-minus-sibling histograms.
  static bool zero_mean(const double* s) { return s[2] <= 1e-12 * s[1]; }
  double cost(const double* s) const { return s[1] > 0 && !zero_mean(s) ? s[3] - s[2] * std::log(s[2] / s[1]) : 0.0; }
  // A child whose targets sum to 0 has mean 0: the deviance is infinite (scikit-learn's rule).
  double proxy(const double* s) const {
    return zero_mean(s) ? -std::numeric_limits<double>::infinity() : s[2] * std::log(s[2] / s[1]);
  }
  template <int S>
  double proxy_n(const double* s) const { return proxy(s); }
  template <int S>
  double pair_n(const double* l, const double* r) const { return proxy(l) + proxy(r); }
};

// Whether the criterion's last statistic is sum w y ln y instead of sum w y^2.
template <class C>
constexpr bool log_stat() {
  if constexpr (requires { C::kLogStat; }) return C::kLogStat;
  return false;
}

inline int stat_width(bool classify, int n_classes) { return classify ? n_classes + 2 : 4; }

}  // namespace forgeml::tree
