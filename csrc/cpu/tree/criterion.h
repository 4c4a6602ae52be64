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

// ---------------------------------------------------------------- multi-output (k > 1 outputs)
// One histogram entry per bin h = {W, stats...} (H = S - 1), statistics s = {count, W, stats...}:
//   classification: stats = w_{o,c}, output o < k, class slot c < K (S = 2 + k K)
//   regression:     stats = sum w y_o (k) then sum w y_o^2 (or sum w y_o ln y_o, poisson) (S = 2 + 2k)
// cost is the mean over outputs of each output's single-output cost (scikit-learn's impurity);
// proxy sums the outputs' proxies (k times the mean: the same ranking). add(h, w, row) adds one
// row's contribution to h (row-major y (n, k)), value appends the node's (k, K) or (k) values.
template <class C>
constexpr bool is_multi() {
  if constexpr (requires { C::kMulti; }) return C::kMulti;
  return false;
}
// Whether bins hold per-class weights only (single-output classification, split.h's layout).
template <class C>
constexpr bool class_layout() { return C::kClassify && !is_multi<C>(); }

template <bool kEntropy>
struct MultiClass {
  static constexpr bool kClassify = true;
  static constexpr bool kMulti = true;
  int K = 1;  // class slots per output (the most classes of any output)
  int k = 1;  // outputs
  const int32_t* y = nullptr;
  int width() const { return 2 + k * K; }
  double cost(const double* s) const {
    const double W = s[1];
    if (W <= 0) return 0;
    double c = 0;
    for (int o = 0; o < k; ++o) {
      const double* w = s + 2 + o * K;
      if constexpr (kEntropy) {
        double e = Entropy::xlogx(W);
        for (int j = 0; j < K; ++j) e -= Entropy::xlogx(w[j]);
        c += e / std::log(2.0);
      } else {
        double sq = 0;
        for (int j = 0; j < K; ++j) sq += w[j] * w[j];
        c += W - sq / W;
      }
    }
    return c / k;
  }
  double proxy(const double* s) const {
    double p = 0;
    for (int o = 0; o < k; ++o) {
      const double* w = s + 2 + o * K;
      if constexpr (kEntropy) {
        double e = -Entropy::xlogx(s[1]);
        for (int j = 0; j < K; ++j) e += Entropy::xlogx(w[j]);
        p += e;
      } else {
        double sq = 0;
        for (int j = 0; j < K; ++j) sq += w[j] * w[j];
        p += sq / s[1];
      }
    }
    return p;
  }
  void add(double* h, double w, int64_t row) const {
    h[0] += w;
    for (int o = 0; o < k; ++o) h[1 + o * K + y[row * k + o]] += w;
  }
  template <class V>
  void value(const double* s, V& out) const {
    for (int j = 0; j < k * K; ++j) out.push_back(s[2 + j] / s[1]);
  }
  double pure_tol(const double*) const { return std::numeric_limits<double>::epsilon(); }
};

template <bool kPoisson>
struct MultiRegression {
  static constexpr bool kClassify = false;
  static constexpr bool kMulti = true;
  int K = 1;  // unused
  int k = 1;
  const double* y = nullptr;
  int width() const { return 2 + 2 * k; }
  static bool zero_mean(double sy, double W) { return sy <= 1e-12 * W; }
  double cost(const double* s) const {
    const double W = s[1];
    if (W <= 0) return 0;
    double c = 0;
    for (int o = 0; o < k; ++o) {
      const double sy = s[2 + o], s2 = s[2 + k + o];
      if constexpr (kPoisson) c += zero_mean(sy, W) ? 0.0 : s2 - sy * std::log(sy / W);
      else c += s2 - sy * sy / W;
    }
    return c / k;
  }
  double proxy(const double* s) const {
    double p = 0;
    for (int o = 0; o < k; ++o) {
      const double sy = s[2 + o];
      if constexpr (kPoisson) {
        if (zero_mean(sy, s[1])) return -std::numeric_limits<double>::infinity();
        p += sy * std::log(sy / s[1]);
      } else {
        p += sy * sy / s[1];
      }
    }
    return p;
  }
  void add(double* h, double w, int64_t row) const {
    h[0] += w;
    for (int o = 0; o < k; ++o) {
      const double v = y[row * k + o], wy = w * v;
      h[1 + o] += wy;
      if constexpr (kPoisson) h[1 + k + o] += w * Poisson::xlogy(v);
      else h[1 + k + o] += wy * v;
    }
  }
  template <class V>
  void value(const double* s, V& out) const {
    for (int o = 0; o < k; ++o) out.push_back(s[2 + o] / s[1]);
  }
  // "pure" within rounding of the squared means (the single-output rule, on the mean over outputs)
  double pure_tol(const double* s) const {
    double m2 = 0;
    for (int o = 0; o < k; ++o) m2 += (s[2 + o] / s[1]) * (s[2 + o] / s[1]);
    return std::numeric_limits<double>::epsilon() * (1.0 + m2 / k);
  }
};

}  // namespace forgeml::tree
