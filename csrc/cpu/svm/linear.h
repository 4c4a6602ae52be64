// Linear SVM solvers (the liblinear formulations, bias as an extra feature of value `bias`):
//   primal  min_w 0.5 |w|^2 + sum_i C_i max(0, 1 - y_i w.x_i)^2           (squared hinge)
//   dual    min_a 0.5 a^T (Q + D) a - e^T a,  0 <= a_i <= U_i,  Q_ij = y_i y_j x_i.x_j
//           hinge: D = 0, U_i = C_i;  squared hinge: D_ii = 1 / (2 C_i), U_i = inf;  w = sum y_i a_i x_i
// The dual is solved by coordinate descent with shrinking and a random order (Hsieh et al. 2008);
// the primal by Newton-CG with a backtracking line search. w (d + 1 with the bias) is float64.
#pragma once
#include <cstdint>
#include <vector>

namespace forgeml::svm {

// X is dense (n, d) row-major, or CSR when indptr is non-null (data/indices with n + 1 offsets).
struct LinearData {
  int64_t n = 0, d = 0;
  const float* dense = nullptr;
  const int64_t* indptr = nullptr;
  const int32_t* indices = nullptr;
  const float* data = nullptr;
  double bias = -1;  // > 0: append a feature of this value and learn its weight
};

enum class LinearSolver : int { dual_hinge = 0, dual_squared_hinge = 1, primal_squared_hinge = 2 };

struct LinearResult {
  std::vector<double> w;  // d (+ 1 when bias > 0)
  int64_t iterations = 0;
  bool converged = true;
};

// One binary problem; y is +1/-1, C the per-sample cost. threads: 0 = all, 1 = inline.
LinearResult linear_fit(const LinearData& X, const std::vector<double>& y, const std::vector<double>& C,
                        LinearSolver solver, double tol, int64_t max_iter, uint64_t seed, int threads);

}  // namespace forgeml::svm
