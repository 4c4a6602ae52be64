// L1-regularised squared-hinge linear SVM in the primal (liblinear's L1R_L2LOSS_SVC): coordinate
// descent with a one-variable Newton direction (CDN; Yuan, Chang, Hsieh & Lin 2010, section 4.1.2).
//   X: columns (d [+1 bias], n); y: (n,) +1/-1; C: (n,) per-sample cost; w: (d [+1],) float64.
//   f(w) = |w|_1 + L(w),  L(w) = sum_i C_i max(0, b_i)^2,  b_i = 1 - y_i w.x_i  (b kept up to date).
// For feature j, with g = dL/dw_j and h its generalised second derivative at the current w:
//   d = argmin_z g z + h z^2 / 2 + |w_j + z|   (closed form: a soft threshold),
// then lambda = 1, 1/2, ... until f(w + lambda d e_j) - f(w) <= sigma lambda (g d + |w_j + d| - |w_j|).
// The exact loss change costs a pass over column j; a sufficient test goes first, bounding the
// curvature on the whole line by 2 sum_i C_i x_ij^2. Shrinking: a feature at zero whose gradient is
// well inside [-1, 1] leaves the active set; at convergence every feature is checked once more.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "cpu/svm/linear/linear.h"
#include "forgeml/parallel.h"

namespace forgeml::svm {

namespace {

// Partial sums: term i goes to slot i mod 16 and the slots are reduced in a fixed order, so the
// dense passes of every ISA (linear_l1_avx2.cpp, linear_l1_avx512.cpp) and the sparse pass below
// give the same bits: a dense column's zeros add exactly zero. Sixteen independent chains keep the
// adds pipelined, and max / 0-1 factors replace branches on the (unpredictable) sign of b_i.
constexpr int kSlots = 16;

inline double reduce16(const double* a) {
  double r[8];
  for (int u = 0; u < 8; ++u) r[u] = a[u] + a[u + 8];
  return ((r[0] + r[4]) + (r[2] + r[6])) + ((r[1] + r[5]) + (r[3] + r[7]));
}

// term(u, i, v) over rows 0..n-1 of a dense column (col[i], or cst when col is null), u = i mod 16
template <class Term>
inline void for_dense(const float* col, double cst, int64_t n, Term&& term) {
  auto run = [&](auto value) {
    int64_t i = 0;
    for (; i + kSlots <= n; i += kSlots)
      for (int u = 0; u < kSlots; ++u) term(u, i + u, value(i + u));
    for (; i < n; ++i) term(int(i % kSlots), i, value(i));
  };
  if (col) run([&](int64_t i) { return double(col[i]); });
  else run([&](int64_t) { return cst; });
}

// The portable dense passes (contracts in linear.h, L1ColumnKernels); plain C++ without -mfma.
void derivs_portable(const float* col, double cst, int64_t n, const double* __restrict b, const double* __restrict yC,
                     const double* __restrict C, double* g, double* h) {
  for_dense(col, cst, n, [&](int u, int64_t i, double v) {
    g[u] -= yC[i] * v * std::max(b[i], 0.0);
    h[u] += C[i] * double(b[i] > 0) * v * v;
  });
}
void shift_portable(const float* col, double cst, int64_t n, double s, const double* __restrict y,
                    const double* __restrict C, double* __restrict b, double* lo, double* ln) {
  for_dense(col, cst, n, [&](int u, int64_t i, double v) {
    const double bo = b[i], bn = bo - s * y[i] * v;  // bn == bo when v == 0
    const double c = C[i] * double(v != 0);           // rows outside the column do not count
    const double po = std::max(bo, 0.0), pn = std::max(bn, 0.0);
    b[i] = bn;
    lo[u] += c * po * po;
    ln[u] += c * pn * pn;
  });
}
void axpy_portable(const float* col, double cst, int64_t n, double s, const double* __restrict y,
                   double* __restrict b) {
  for_dense(col, cst, n, [&](int, int64_t i, double v) { b[i] -= s * y[i] * v; });
}


// The column passes of one solve: dense columns (and the implicit bias column) through the ISA's
// kernels, CSC columns as scalar loops over the stored entries with the same slots and operations.
struct Columns {
  const LinearColumns& X;
  const L1ColumnKernels k = active_l1_column_kernels();

  bool dense(int64_t j) const { return j == X.d || !X.sparse; }
  const float* col(int64_t j) const { return j == X.d ? nullptr : X.val.data() + j * X.n; }

  // g = -sum_i yC_i x_ij max(b_i, 0) and h = sum_{b_i > 0} C_i x_ij^2
  void derivatives(int64_t j, const double* __restrict b, const double* __restrict yC, const double* __restrict C,
                   double& g, double& h) const {
    double ga[kSlots] = {}, ha[kSlots] = {};
    if (dense(j)) {
      k.derivs(col(j), X.bias, X.n, b, yC, C, ga, ha);
    } else {
      for (int64_t p = X.ptr[j]; p < X.ptr[j + 1]; ++p) {
        const int64_t i = X.row[p];
        const int u = int(i % kSlots);
        const double v = X.val[p];
        ga[u] -= yC[i] * v * std::max(b[i], 0.0);
        ha[u] += C[i] * double(b[i] > 0) * v * v;
      }
    }
    g = reduce16(ga);
    h = reduce16(ha);
  }

  // b -= s y .* x_j; the column rows' loss sum_i C_i max(b_i, 0)^2 before and after
  void shift(int64_t j, double s, const double* __restrict y, const double* __restrict C, double* __restrict b,
             double& before, double& after) const {
    double lo[kSlots] = {}, ln[kSlots] = {};
    if (dense(j)) {
      k.shift(col(j), X.bias, X.n, s, y, C, b, lo, ln);
    } else {
      for (int64_t p = X.ptr[j]; p < X.ptr[j + 1]; ++p) {
        const int64_t i = X.row[p];
        const int u = int(i % kSlots);
        const double v = X.val[p], bo = b[i], bn = bo - s * y[i] * v;
        const double c = C[i] * double(v != 0);
        const double po = std::max(bo, 0.0), pn = std::max(bn, 0.0);
        b[i] = bn;
        lo[u] += c * po * po;
        ln[u] += c * pn * pn;
      }
    }
    before = reduce16(lo);
    after = reduce16(ln);
  }

  // b -= s y .* x_j
  void axpy(int64_t j, double s, const double* __restrict y, double* __restrict b) const {
    if (dense(j)) {
      k.axpy(col(j), X.bias, X.n, s, y, b);
    } else {
      for (int64_t p = X.ptr[j]; p < X.ptr[j + 1]; ++p) b[X.row[p]] -= s * y[X.row[p]] * double(X.val[p]);
    }
  }

  // sum_i C_i x_ij^2 (once per solve)
  double sumsq(int64_t j, const double* C) const {
    double a[kSlots] = {};
    if (dense(j)) {
      for_dense(col(j), X.bias, X.n, [&](int u, int64_t i, double v) { a[u] += C[i] * v * v; });
    } else {
      for (int64_t p = X.ptr[j]; p < X.ptr[j + 1]; ++p) a[X.row[p] % kSlots] += C[X.row[p]] * double(X.val[p]) * X.val[p];
    }
    return reduce16(a);
  }
};

// b = 1 - y .* (X w), from scratch (after a failed line search, so rounding does not accumulate).
void recompute_margins(const Columns& cols, const std::vector<double>& y, const std::vector<double>& w,
                       std::vector<double>& b) {
  std::fill(b.begin(), b.end(), 1.0);
  for (int64_t j = 0; j < cols.X.dim(); ++j)
    if (w[j] != 0) cols.axpy(j, w[j], y.data(), b.data());
}

}  // namespace

void l1_column_kernels_portable(L1ColumnKernels& k) { k = {derivs_portable, shift_portable, axpy_portable}; }

LinearColumns linear_columns(const LinearData& X) {
  LinearColumns c;
  c.n = X.n;
  c.d = X.d;
  c.bias = X.bias;
  c.sparse = X.indptr != nullptr;
  if (!c.sparse) {
    c.val.resize(size_t(X.n * X.d));
    constexpr int64_t kTile = 64;  // transpose in tiles so both sides stay in cache
    for (int64_t i0 = 0; i0 < X.n; i0 += kTile)
      for (int64_t j0 = 0; j0 < X.d; j0 += kTile)
        for (int64_t i = i0; i < std::min(X.n, i0 + kTile); ++i)
          for (int64_t j = j0; j < std::min(X.d, j0 + kTile); ++j) c.val[j * X.n + i] = X.dense[i * X.d + j];
    return c;
  }
  const int64_t nnz = X.indptr[X.n];
  c.ptr.assign(size_t(X.d + 1), 0);
  for (int64_t p = 0; p < nnz; ++p) ++c.ptr[X.indices[p] + 1];
  for (int64_t j = 0; j < X.d; ++j) c.ptr[j + 1] += c.ptr[j];
  c.row.resize(static_cast<size_t>(nnz));
  c.val.resize(static_cast<size_t>(nnz));
  std::vector<int64_t> next(c.ptr.begin(), c.ptr.end() - 1);
  for (int64_t i = 0; i < X.n; ++i)  // rows in order, so each column's rows come out sorted
    for (int64_t p = X.indptr[i]; p < X.indptr[i + 1]; ++p) {
      const int64_t q = next[X.indices[p]]++;
      c.row[q] = int32_t(i);
      c.val[q] = X.data[p];
    }
  return c;
}

LinearResult linear_l1_fit(const LinearColumns& X, const std::vector<double>& y, const std::vector<double>& C,
                           double tol, int64_t max_iter, uint64_t seed) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  constexpr double kSigma = 0.01;
  constexpr int kMaxSearch = 20;
  const int64_t n = X.n, dim = X.dim();
  LinearResult res;
  res.w.assign(size_t(dim), 0.0);
  std::vector<double>& w = res.w;
  std::vector<double> b(size_t(n), 1.0), xsq(size_t(dim), 0.0);  // xsq_j = sum_i C_i x_ij^2
  std::vector<int64_t> index(static_cast<size_t>(dim));
  std::vector<double> yC(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) yC[i] = y[i] * C[i];
  const Columns cols{X};
  for (int64_t j = 0; j < dim; ++j) {
    index[j] = j;
    xsq[j] = cols.sumsq(j, C.data());
  }
  int64_t npos = 0;
  for (double v : y) npos += v > 0;
  // liblinear's primal tolerance: relative to the first pass, scaled by the minority class share
  const double eps = tol * double(std::max<int64_t>(std::min(npos, n - npos), 1)) / double(std::max<int64_t>(n, 1));

  std::mt19937_64 rng(seed);
  int64_t active = dim, iter = 0;
  double Gmax_old = kInf, Gnorm1_init = -1;
  while (iter < max_iter) {
    if (!in_parallel()) check_interrupt();
    double Gmax = 0, Gnorm1 = 0;
    for (int64_t s = 0; s < active; ++s) {
      std::uniform_int_distribution<int64_t> pick(s, active - 1);
      std::swap(index[s], index[pick(rng)]);
    }
    for (int64_t s = 0; s < active; ++s) {
      const int64_t j = index[s];
      double g, h;
      cols.derivatives(j, b.data(), yC.data(), C.data(), g, h);
      g *= 2;
      h = std::max(2 * h, 1e-12);
      const double gp = g + 1, gn = g - 1;  // one-sided derivatives of f at w_j (the |w_j| term)
      double violation = 0;
      if (w[j] == 0) {
        if (gp < 0) {
          violation = -gp;
        } else if (gn > 0) {
          violation = gn;
        } else if (gp > Gmax_old / double(n) && gn < -Gmax_old / double(n)) {
          std::swap(index[s], index[--active]);  // comfortably optimal at zero: shrink
          --s;
          continue;
        }
      } else {
        violation = w[j] > 0 ? std::fabs(gp) : std::fabs(gn);
      }
      Gmax = std::max(Gmax, violation);
      Gnorm1 += violation;

      double d = gp < h * w[j] ? -gp / h : gn > h * w[j] ? -gn / h : -w[j];
      if (std::fabs(d) < 1e-12) continue;
      double lam_delta = g * d + std::fabs(w[j] + d) - std::fabs(w[j]);  // lambda * Delta
      double applied = 0, loss_old = 0;  // b reflects w_j + applied
      int t = 0;
      for (; t < kMaxSearch; ++t) {
        const double cond = std::fabs(w[j] + d) - std::fabs(w[j]) - kSigma * lam_delta;
        if (xsq[j] * d * d + g * d + cond <= 0) {  // sufficient: no need for the exact loss
          cols.axpy(j, d - applied, y.data(), b.data());
          break;
        }
        double lo, ln;
        cols.shift(j, d - applied, y.data(), C.data(), b.data(), lo, ln);
        applied = d;
        if (t == 0) loss_old = lo;
        if (cond + ln - loss_old <= 0) break;
        d *= 0.5;
        lam_delta *= 0.5;
      }
      w[j] += d;
      if (t == kMaxSearch) recompute_margins(cols, y, w, b);  // b lags the accepted step: rebuild
    }
    if (iter == 0) Gnorm1_init = Gnorm1;
    ++iter;
    if (Gnorm1 <= eps * Gnorm1_init) {
      if (active == dim) break;
      active = dim;  // check once more on every feature
      Gmax_old = kInf;
      continue;
    }
    Gmax_old = Gmax;
  }
  res.iterations = iter;
  res.converged = iter < max_iter;
  return res;
}

}  // namespace forgeml::svm
