// Crammer-Singer multi-class linear SVM by the sequential dual method (Keerthi, Sundararajan, Chang,
// Hsieh & Lin 2008; liblinear's MCSVM_CS).
//   X: rows (n, d [+1 bias]); y: (n,) labels in [0, k); C: (n,) per-sample cost; W: (d [+1], k) float64.
// Dual: min_a 0.5 sum_m |w_m|^2 + sum_i sum_{m != y_i} a_im,  w_m = sum_i a_im x_i,
//       s.t. sum_m a_im = 0,  a_im <= C_i [m == y_i].
// One sample at a time: with A = |x_i|^2 and G_m = w_m.x_i + [m != y_i], the sub-problem in a_i is
//   min 0.5 A |a|^2 + B.a,  B_m = G_m - A a_im,  under the same constraints,
// solved exactly: a_m = min(bound_m, (beta - B_m) / A) with beta found by sorting
// D_m = B_m + A bound_m in decreasing order. Shrinking drops classes that sit at their bound with a
// gradient below every free one, and samples left with one class; the run stops when the largest
// per-sample gradient spread max G - min G (free) is under tol on a full pass.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>

#include "cpu/svm/linear/linear.h"
#include "forgeml/parallel.h"

namespace forgeml::svm {

namespace {

// f(j, x_ij) over the stored entries of row i, then the bias feature (j == d).
template <class F>
inline void for_row(const LinearData& X, int64_t i, F&& f) {
  if (X.indptr) {
    for (int64_t p = X.indptr[i]; p < X.indptr[i + 1]; ++p) f(int64_t(X.indices[p]), double(X.data[p]));
  } else {
    const float* x = X.dense + i * X.d;
    for (int64_t j = 0; j < X.d; ++j) f(j, double(x[j]));
  }
  if (X.bias > 0) f(X.d, X.bias);
}

// w_c.x_i for W (dim, k), bias included: four partial sums picked by j mod 4 in registers (the class
// loop inside the feature loop would chain every add through memory), the same for dense and CSR.
double row_dot(const LinearData& X, int64_t i, const double* W, int k, int c) {
  double acc[4] = {0, 0, 0, 0};
  if (X.indptr) {
    for (int64_t p = X.indptr[i]; p < X.indptr[i + 1]; ++p) {
      const int64_t j = X.indices[p];
      acc[j & 3] += W[j * k + c] * double(X.data[p]);
    }
  } else {
    const float* x = X.dense + i * X.d;
    const double* w = W + c;
    int64_t j = 0;
    for (; j + 4 <= X.d; j += 4)
      for (int u = 0; u < 4; ++u) acc[u] += w[(j + u) * k] * double(x[j + u]);
    for (; j < X.d; ++j) acc[j & 3] += w[j * k] * double(x[j]);
  }
  if (X.bias > 0) acc[X.d & 3] += W[X.d * k + c] * X.bias;
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

// Exact solution of the sample's sub-problem over its r active classes. B: (r,); yr: the position of
// the true class among them (>= r when it was shrunk, i.e. it sits at its bound Ci). out: (r,).
void solve_sub_problem(const double* B, int r, int yr, double A, double Ci, std::vector<double>& D, double* out) {
  D.assign(B, B + r);
  if (yr < r) D[yr] += A * Ci;
  std::sort(D.begin(), D.end(), std::greater<double>());
  // sum_m a_m = 0 with a_m = (beta - B_m) / A on the top-t classes of D, at the bound elsewhere
  double beta = D[0] - A * Ci;
  int t = 1;
  for (; t < r && beta < t * D[t]; ++t) beta += D[t];
  beta /= t;
  for (int m = 0; m < r; ++m) out[m] = std::min(m == yr ? Ci : 0.0, (beta - B[m]) / A);
}

}  // namespace

LinearResult linear_cs_fit(const LinearData& X, const std::vector<int32_t>& y, const std::vector<double>& C,
                           int k, double tol, int64_t max_iter, uint64_t seed) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const int64_t n = X.n, dim = X.d + (X.bias > 0 ? 1 : 0);
  const size_t nk = static_cast<size_t>(n * k), kk = static_cast<size_t>(k), nn = static_cast<size_t>(n);
  std::vector<double> W(static_cast<size_t>(dim * k), 0.0);  // (dim, k): a row's classes are adjacent
  std::vector<double> alpha(nk, 0.0);                        // (n, k) by class id
  std::vector<int32_t> cls(nk);                              // (n, k): the active classes of i first
  std::vector<int32_t> nact(nn, k), ypos(nn);                // active count; position of y_i in cls
  std::vector<double> QD(nn, 0.0), G(kk), B(kk), anew(kk), dval(kk), D;
  std::vector<int32_t> dind(kk);
  std::vector<int64_t> index(nn);
  for (int64_t i = 0; i < n; ++i) {
    for (int m = 0; m < k; ++m) cls[i * k + m] = m;
    for_row(X, i, [&](int64_t, double v) { QD[i] += v * v; });
    ypos[i] = y[i];
    index[i] = i;
  }
  std::mt19937_64 rng(seed);
  double eps_shrink = std::max(10.0 * tol, 1.0);  // the looser tolerance while shrinking
  bool from_all = true;
  int64_t active = n, iter = 0;
  while (iter < max_iter) {
    if (!in_parallel()) check_interrupt();
    double spread = -kInf;
    for (int64_t s = 0; s < active; ++s) {
      std::uniform_int_distribution<int64_t> pick(s, active - 1);
      std::swap(index[s], index[pick(rng)]);
    }
    for (int64_t s = 0; s < active; ++s) {
      const int64_t i = index[s];
      const double A = QD[i];
      if (A <= 0) continue;  // an all-zero row without bias never moves
      double* a = alpha.data() + i * k;
      int32_t* ci = cls.data() + i * k;
      int& r = nact[i];
      int& yr = ypos[i];
      for (int m = 0; m < r; ++m) G[m] = (m == yr ? 0.0 : 1.0) + row_dot(X, i, W.data(), k, ci[m]);
      double minG = kInf, maxG = -kInf;
      for (int m = 0; m < r; ++m) {
        if (a[ci[m]] < 0 && G[m] < minG) minG = G[m];
        maxG = std::max(maxG, G[m]);
      }
      if (yr < r && a[y[i]] < C[i] && G[yr] < minG) minG = G[yr];
      // shrink: a class at its bound whose gradient is below every free one will stay there
      auto shrinkable = [&](int m) { return a[ci[m]] == (m == yr ? C[i] : 0.0) && G[m] < minG; };
      for (int m = 0; m < r; ++m) {
        if (!shrinkable(m)) continue;
        --r;
        while (r > m) {  // move the last non-shrinkable class into slot m
          if (!shrinkable(r)) {
            std::swap(ci[m], ci[r]);
            std::swap(G[m], G[r]);
            if (yr == r) {
              yr = m;
            } else if (yr == m) {
              yr = r;
            }
            break;
          }
          --r;
        }
      }
      if (r <= 1) {  // nothing left to move for this sample
        std::swap(index[s], index[--active]);
        --s;
        continue;
      }
      if (maxG - minG <= 1e-12) continue;
      spread = std::max(spread, maxG - minG);
      for (int m = 0; m < r; ++m) B[m] = G[m] - A * a[ci[m]];
      solve_sub_problem(B.data(), r, yr, A, C[i], D, anew.data());
      int nz = 0;
      for (int m = 0; m < r; ++m) {
        const double delta = anew[m] - a[ci[m]];
        a[ci[m]] = anew[m];
        if (std::fabs(delta) >= 1e-12) {
          dind[nz] = ci[m];
          dval[nz++] = delta;
        }
      }
      for_row(X, i, [&](int64_t j, double v) {
        double* wj = W.data() + j * k;
        for (int q = 0; q < nz; ++q) wj[dind[q]] += dval[q] * v;
      });
    }
    ++iter;
    if (spread < eps_shrink) {
      if (spread < tol && from_all) break;
      active = n;  // un-shrink everything and tighten the shrinking tolerance
      std::fill(nact.begin(), nact.end(), k);
      eps_shrink = std::max(eps_shrink / 2, tol);
      from_all = true;
    } else {
      from_all = false;
    }
  }
  LinearResult res;
  res.w.resize(static_cast<size_t>(k * dim));
  for (int m = 0; m < k; ++m)
    for (int64_t j = 0; j < dim; ++j) res.w[m * dim + j] = W[j * k + m];
  res.iterations = iter;
  res.converged = iter < max_iter;
  return res;
}

}  // namespace forgeml::svm
