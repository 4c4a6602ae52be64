// Dual coordinate descent and primal Newton-CG for linear SVMs, on dense or CSR rows.
#include "cpu/svm/linear/linear.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "forgeml/parallel.h"

namespace forgeml::svm {

namespace {

// Ctrl-C between passes, except inside the parallel loop over classes.
void maybe_interrupt() {
  if (!in_parallel()) check_interrupt();
}

// Row access shared by both solvers: x_i . w and w += a x_i, bias feature included.
struct Rows {
  const LinearData& X;
  int64_t dim() const { return X.d + (X.bias > 0 ? 1 : 0); }
  double dot(int64_t i, const double* w) const {
    double s = X.bias > 0 ? X.bias * w[X.d] : 0.0;
    if (X.indptr) {
      for (int64_t p = X.indptr[i]; p < X.indptr[i + 1]; ++p) s += double(X.data[p]) * w[X.indices[p]];
    } else {
      const float* x = X.dense + i * X.d;
      double acc[4] = {0, 0, 0, 0};  // independent partial sums: the loop pipelines and vectorises
      int64_t k = 0;
      for (; k + 4 <= X.d; k += 4)
        for (int u = 0; u < 4; ++u) acc[u] += double(x[k + u]) * w[k + u];
      for (; k < X.d; ++k) acc[0] += double(x[k]) * w[k];
      s += (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
    return s;
  }
  void axpy(int64_t i, double a, double* w) const {
    if (X.bias > 0) w[X.d] += a * X.bias;
    if (X.indptr) {
      for (int64_t p = X.indptr[i]; p < X.indptr[i + 1]; ++p) w[X.indices[p]] += a * double(X.data[p]);
    } else {
      const float* x = X.dense + i * X.d;
      for (int64_t k = 0; k < X.d; ++k) w[k] += a * double(x[k]);
    }
  }
  double sqnorm(int64_t i) const {
    double s = X.bias > 0 ? X.bias * X.bias : 0.0;
    if (X.indptr) {
      for (int64_t p = X.indptr[i]; p < X.indptr[i + 1]; ++p) s += double(X.data[p]) * X.data[p];
    } else {
      const float* x = X.dense + i * X.d;
      for (int64_t k = 0; k < X.d; ++k) s += double(x[k]) * x[k];
    }
    return s;
  }
};

// liblinear's dual coordinate descent for L2-regularised SVR (Ho & Lin 2012), without shrinking:
//   min_b 0.5 b^T (Q + D) b - y^T b + eps |b|_1,  -U_i <= b_i <= U_i,  Q_ij = x_i.x_j,  w = sum b_i x_i
// epsilon-insensitive: D = 0, U_i = C_i; squared: D_ii = 1 / (2 C_i), U_i = inf. Stops when the
// sum of the violations falls to tol times the first pass's.
LinearResult svr_dual_cd(const Rows& R, const std::vector<double>& y, const std::vector<double>& C, double eps,
                         bool squared, double tol, int64_t max_iter, uint64_t seed) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const int64_t n = R.X.n, dim = R.dim();
  LinearResult res;
  res.w.assign(dim, 0.0);
  std::vector<double> beta(n, 0.0), QD(n), lam(n), U(n);
  std::vector<int64_t> index(n);
  for (int64_t i = 0; i < n; ++i) {
    lam[i] = squared ? 0.5 / C[i] : 0.0;
    U[i] = squared ? kInf : C[i];
    QD[i] = R.sqnorm(i) + lam[i];
    index[i] = i;
  }
  std::mt19937_64 rng(seed);
  double norm_init = -1;
  int64_t iter = 0;
  bool done = false;
  while (iter < max_iter && !done) {
    if (iter % 64 == 0) maybe_interrupt();
    for (int64_t s = 0; s < n; ++s) {
      std::uniform_int_distribution<int64_t> pick(s, n - 1);
      std::swap(index[s], index[pick(rng)]);
    }
    double norm = 0;
    for (int64_t s = 0; s < n; ++s) {
      const int64_t i = index[s];
      const double H = QD[i];
      if (H <= 0) continue;
      const double G = -y[i] + lam[i] * beta[i] + R.dot(i, res.w.data());
      const double Gp = G + eps, Gn = G - eps, b = beta[i];
      double viol;  // the projected-gradient violation at b (|b|_1 has a kink at 0)
      if (b == 0) viol = Gp < 0 ? -Gp : (Gn > 0 ? Gn : 0.0);
      else if (b >= U[i]) viol = Gp > 0 ? Gp : 0.0;
      else if (b <= -U[i]) viol = Gn < 0 ? -Gn : 0.0;
      else viol = b > 0 ? std::fabs(Gp) : std::fabs(Gn);
      norm += viol;
      double d;  // the Newton step of the one-variable problem, on the side of 0 it lands
      if (Gp < H * b) d = -Gp / H;
      else if (Gn > H * b) d = -Gn / H;
      else d = -b;
      if (std::fabs(d) < 1e-12) continue;
      beta[i] = std::min(std::max(b + d, -U[i]), U[i]);
      if (beta[i] != b) R.axpy(i, beta[i] - b, res.w.data());
    }
    if (iter == 0) norm_init = norm;
    ++iter;
    done = norm <= tol * norm_init;
  }
  res.iterations = iter;
  res.converged = done;
  return res;
}

LinearResult dual_cd(const Rows& R, const std::vector<double>& y, const std::vector<double>& C, bool squared,
                     double tol, int64_t max_iter, uint64_t seed) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const int64_t n = R.X.n, dim = R.dim();
  LinearResult res;
  res.w.assign(dim, 0.0);
  std::vector<double> alpha(n, 0.0), QD(n), Dii(n), U(n);
  std::vector<int64_t> index(n);
  for (int64_t i = 0; i < n; ++i) {
    Dii[i] = squared ? 0.5 / C[i] : 0.0;
    U[i] = squared ? kInf : C[i];
    QD[i] = R.sqnorm(i) + Dii[i];
    index[i] = i;
  }
  std::mt19937_64 rng(seed);
  int64_t active = n, iter = 0;
  double PGmax_old = kInf, PGmin_old = -kInf;
  while (iter < max_iter) {
    if (iter % 64 == 0) maybe_interrupt();
    double PGmax = -kInf, PGmin = kInf;
    for (int64_t s = 0; s < active; ++s) {
      std::uniform_int_distribution<int64_t> pick(s, active - 1);
      std::swap(index[s], index[pick(rng)]);
    }
    for (int64_t s = 0; s < active; ++s) {
      const int64_t i = index[s];
      if (QD[i] <= 0) continue;  // an all-zero row without bias never moves
      const double G = y[i] * R.dot(i, res.w.data()) - 1.0 + Dii[i] * alpha[i];
      double PG = 0;
      if (alpha[i] == 0) {
        if (G > PGmax_old) {  // shrink: stays at the lower bound
          std::swap(index[s], index[--active]);
          --s;
          continue;
        }
        if (G < 0) PG = G;
      } else if (alpha[i] == U[i]) {
        if (G < PGmin_old) {
          std::swap(index[s], index[--active]);
          --s;
          continue;
        }
        if (G > 0) PG = G;
      } else {
        PG = G;
      }
      PGmax = std::max(PGmax, PG);
      PGmin = std::min(PGmin, PG);
      if (std::fabs(PG) > 1e-12) {
        const double old = alpha[i];
        alpha[i] = std::min(std::max(alpha[i] - G / QD[i], 0.0), U[i]);
        R.axpy(i, (alpha[i] - old) * y[i], res.w.data());
      }
    }
    ++iter;
    if (PGmax - PGmin <= tol) {
      if (active == n) break;
      active = n;  // check once more on the whole set
      PGmax_old = kInf;
      PGmin_old = -kInf;
      continue;
    }
    PGmax_old = PGmax <= 0 ? kInf : PGmax;
    PGmin_old = PGmin >= 0 ? -kInf : PGmin;
  }
  res.iterations = iter;
  res.converged = iter < max_iter;
  return res;
}

// Primal squared hinge: f(w) = 0.5 |w|^2 + sum C_i max(0, 1 - y_i z_i)^2 with z = X w.
class Primal {
 public:
  Primal(const Rows& R, const std::vector<double>& y, const std::vector<double>& C, int threads)
      : R_(R), y_(y), C_(C), n_(R.X.n), dim_(R.dim()), threads_(threads) {}

  LinearResult run(double tol, int64_t max_iter) {
    LinearResult res;
    std::vector<double> w(dim_, 0.0), z(n_, 0.0), g(dim_), s(dim_), Xs(n_);
    int64_t npos = 0;
    for (double v : y_) npos += v > 0;
    const double eps = tol * double(std::max<int64_t>(std::min(npos, n_ - npos), 1)) / double(n_);
    double gnorm0 = -1, f = objective(w, z);
    int64_t it = 0;
    res.converged = false;
    for (; it < max_iter; ++it) {
      maybe_interrupt();
      gradient(w, z, g);
      const double gnorm = std::sqrt(dotv(g, g));
      if (gnorm0 < 0) gnorm0 = gnorm;
      if (gnorm <= eps * gnorm0) {
        res.converged = true;
        break;
      }
      conjugate_gradient(z, g, s, 0.1 * gnorm);
      matvec(s, Xs);
      // backtracking (Armijo) line search along s
      const double gs = dotv(g, s);
      double step = 1.0, fnew = f;
      std::vector<double> wn(dim_), zn(n_);
      bool ok = false;
      for (int t = 0; t < 30; ++t) {
        for (int64_t k = 0; k < dim_; ++k) wn[k] = w[k] + step * s[k];
        for (int64_t i = 0; i < n_; ++i) zn[i] = z[i] + step * Xs[i];
        fnew = objective(wn, zn);
        if (fnew <= f + 0.01 * step * gs) {
          ok = true;
          break;
        }
        step *= 0.5;
      }
      if (!ok) {  // no decrease possible at float64 precision: we are at the optimum
        res.converged = true;
        break;
      }
      w.swap(wn);
      z.swap(zn);
      const double df = f - fnew;
      f = fnew;
      if (df <= 1e-12 * std::fabs(f)) {
        res.converged = true;
        ++it;
        break;
      }
    }
    res.w = std::move(w);
    res.iterations = it;
    return res;
  }

 private:
  double dotv(const std::vector<double>& a, const std::vector<double>& b) const {
    double s = 0;
    for (size_t k = 0; k < a.size(); ++k) s += a[k] * b[k];
    return s;
  }
  double objective(const std::vector<double>& w, const std::vector<double>& z) const {
    double f = 0.5 * dotv(w, w);
    for (int64_t i = 0; i < n_; ++i) {
      const double m = 1.0 - y_[i] * z[i];
      if (m > 0) f += C_[i] * m * m;
    }
    return f;
  }
  void matvec(const std::vector<double>& v, std::vector<double>& out) const {  // out = X v
    parallel_for(n_, 2048, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) out[i] = R_.dot(i, v.data());
    }, threads_);
  }
  // out = sum_i u_i x_i over fixed blocks reduced in order, so the sum does not depend on threads.
  void rmatvec(const std::vector<double>& u, std::vector<double>& out) const {
    constexpr int64_t kBlocks = 16;
    std::vector<double> part(size_t(kBlocks * dim_), 0.0);
    parallel_for(kBlocks, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        double* acc = part.data() + b * dim_;
        for (int64_t i = n_ * b / kBlocks; i < n_ * (b + 1) / kBlocks; ++i)
          if (u[i] != 0) R_.axpy(i, u[i], acc);
      }
    }, threads_);
    std::fill(out.begin(), out.end(), 0.0);
    for (int64_t b = 0; b < kBlocks; ++b)
      for (int64_t k = 0; k < dim_; ++k) out[k] += part[b * dim_ + k];
  }
  void gradient(const std::vector<double>& w, const std::vector<double>& z, std::vector<double>& g) {
    active_.assign(n_, 0.0);
    std::vector<double> u(n_, 0.0);
    for (int64_t i = 0; i < n_; ++i)
      if (y_[i] * z[i] < 1) {
        active_[i] = 2 * C_[i];
        u[i] = 2 * C_[i] * (z[i] - y_[i]);
      }
    rmatvec(u, g);
    for (int64_t k = 0; k < dim_; ++k) g[k] += w[k];
  }
  void hess_vec(const std::vector<double>& v, std::vector<double>& out, std::vector<double>& tmp) const {
    matvec(v, tmp);
    for (int64_t i = 0; i < n_; ++i) tmp[i] *= active_[i];
    rmatvec(tmp, out);
    for (int64_t k = 0; k < dim_; ++k) out[k] += v[k];
  }
  // Solve H s = -g to |r| <= tol (the generalized Hessian of the active set).
  void conjugate_gradient(const std::vector<double>&, const std::vector<double>& g, std::vector<double>& s,
                          double tol) const {
    std::vector<double> r(dim_), d(dim_), Hd(dim_), tmp(n_);
    for (int64_t k = 0; k < dim_; ++k) s[k] = 0, r[k] = -g[k], d[k] = r[k];
    double rr = dotv(r, r);
    for (int64_t it = 0; it < 10 * dim_ + 100 && std::sqrt(rr) > tol; ++it) {
      hess_vec(d, Hd, tmp);
      const double a = rr / dotv(d, Hd);
      for (int64_t k = 0; k < dim_; ++k) s[k] += a * d[k], r[k] -= a * Hd[k];
      const double rr_new = dotv(r, r);
      for (int64_t k = 0; k < dim_; ++k) d[k] = r[k] + (rr_new / rr) * d[k];
      rr = rr_new;
    }
  }

  const Rows& R_;
  const std::vector<double>& y_;
  const std::vector<double>& C_;
  int64_t n_, dim_;
  int threads_;
  std::vector<double> active_;  // 2 C_i on the active set, else 0
};

}  // namespace

LinearResult linear_fit(const LinearData& X, const std::vector<double>& y, const std::vector<double>& C,
                        LinearSolver solver, double tol, int64_t max_iter, uint64_t seed, int threads) {
  Rows R{X};
  // below ~4M stored values a pass over X takes a millisecond or less: one thread, no regions
  const int64_t stored = X.indptr ? X.indptr[X.n] : X.n * X.d;
  if (stored < (int64_t(1) << 22)) threads = 1;
  if (solver == LinearSolver::primal_squared_hinge) return Primal(R, y, C, threads).run(tol, max_iter);
  return dual_cd(R, y, C, solver == LinearSolver::dual_squared_hinge, tol, max_iter, seed);
}

LinearResult linear_svr_fit(const LinearData& X, const std::vector<double>& y, const std::vector<double>& C,
                            double epsilon, bool squared, double tol, int64_t max_iter, uint64_t seed) {
  return svr_dual_cd(Rows{X}, y, C, epsilon, squared, tol, max_iter, seed);
}

}  // namespace forgeml::svm
