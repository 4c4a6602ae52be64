// SMO for libsvm's dual (the libsvm algorithm, Fan, Chen & Lin 2005):
//   min_a 0.5 a^T Q a + p^T a   s.t.  0 <= a_i <= C_i,  y^T a = const,   Q_ij = y_i y_j K_ij
// (C-SVC: p = -e, a = 0 at the start; SVR, one-class and the nu forms set p and a start point).
// with second-order working-set selection, shrinking, and gradients G = Q a - e in float64.
// The decision function is f(x) = sum_i y_i a_i K(x_i, x) - rho.
#pragma once
#include <cstdint>
#include <vector>

#include "cpu/svm/cache.h"

namespace forgeml::svm {

struct SmoOptions {
  double tol = 1e-3;      // stop when max violation m(a) - M(a) < tol
  bool shrinking = true;
  int64_t max_iter = -1;  // -1: libsvm's limit, max(1e7, 100 l)
  bool interruptible = false;  // call check_interrupt() (only outside parallel regions)
  // libsvm's Solver_NU: working pairs within one label, rho and r from the two labels' free
  // gradients (nu-SVC, nu-SVR); shrinking is not used in this mode.
  bool nu = false;
  const std::vector<double>* p = nullptr;       // linear term (null: -1 for every sample)
  const std::vector<double>* alpha0 = nullptr;  // feasible start point (null: all zero)
};

struct SmoResult {
  std::vector<double> alpha;  // a_i (unsigned)
  double rho = 0, obj = 0;
  double r = 0;  // nu mode: (r1 + r2) / 2, libsvm's si.r
  int64_t iterations = 0;
  bool converged = true;
};

// y is +1/-1 per sample; C is the per-sample upper bound (C * class weight * sample weight).
SmoResult smo_solve(RowCache& cache, KernelRows& rows, const std::vector<double>& y,
                    const std::vector<double>& C, const SmoOptions& opt);

}  // namespace forgeml::svm
