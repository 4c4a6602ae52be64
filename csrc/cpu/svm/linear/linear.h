// Linear SVM solvers (the liblinear formulations, bias as an extra feature of value `bias`):
//   primal  min_w 0.5 |w|^2 + sum_i C_i max(0, 1 - y_i w.x_i)^2           (squared hinge)
//   dual    min_a 0.5 a^T (Q + D) a - e^T a,  0 <= a_i <= U_i,  Q_ij = y_i y_j x_i.x_j
//           hinge: D = 0, U_i = C_i;  squared hinge: D_ii = 1 / (2 C_i), U_i = inf;  w = sum y_i a_i x_i
// The dual is solved by coordinate descent with shrinking and a random order (Hsieh et al. 2008);
// the primal by Newton-CG with a backtracking line search. w (d + 1 with the bias) is float64.
// Also (linear_l1.cpp) L1-regularised squared hinge in the primal, by coordinate descent over
// columns, and (linear_cs.cpp) the Crammer-Singer multi-class dual, by coordinate descent over rows.
#pragma once
#include <cstdint>
#include <vector>

#include "forgeml/cpu_features.h"

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

enum class LinearSolver : int {
  dual_hinge = 0,
  dual_squared_hinge = 1,
  primal_squared_hinge = 2,
  l1_primal_squared_hinge = 3,  // via linear_columns + linear_l1_fit
};

struct LinearResult {
  std::vector<double> w;  // d (+ 1 when bias > 0)
  int64_t iterations = 0;
  bool converged = true;
};

// One binary problem; y is +1/-1, C the per-sample cost. threads: 0 = all, 1 = inline.
LinearResult linear_fit(const LinearData& X, const std::vector<double>& y, const std::vector<double>& C,
                        LinearSolver solver, double tol, int64_t max_iter, uint64_t seed, int threads);

// Column copy of X for the L1 solver, built once and shared read-only by the one-vs-rest problems:
// dense X becomes column-major (d, n) floats, CSR becomes CSC; the bias column stays implicit.
struct LinearColumns {
  int64_t n = 0, d = 0;
  double bias = -1;
  bool sparse = false;
  std::vector<float> val;        // dense: column j at val[j * n]; sparse: the stored values
  std::vector<int64_t> ptr;      // sparse: d + 1 offsets into row / val
  std::vector<int32_t> row;
  int64_t dim() const { return d + (bias > 0 ? 1 : 0); }
};
LinearColumns linear_columns(const LinearData& X);

// min_w |w|_1 + sum_i C_i max(0, 1 - y_i w.x_i)^2 (the bias weight is penalised too); y is +1/-1.
LinearResult linear_l1_fit(const LinearColumns& X, const std::vector<double>& y, const std::vector<double>& C,
                           double tol, int64_t max_iter, uint64_t seed);

// The L1 solver's passes over one dense column v (n floats, or the constant cst when col is null), per ISA
// (linear_l1_avx2.cpp, linear_l1_avx512.cpp). Term i goes to partial sum i mod 16 with the scalar code's
// operations in its order (no fused multiply-add), so every path gives the same bits.
//   derivs: g[u] -= yC_i v_i max(b_i, 0), h[u] += C_i [b_i > 0] v_i v_i
//   shift:  b_i -= (s y_i) v_i; lo[u] / ln[u] += c_i p_i p_i with c_i = C_i [v_i != 0], p = max(b, 0) before / after
//   axpy:   b_i -= (s y_i) v_i
struct L1ColumnKernels {
  void (*derivs)(const float* col, double cst, int64_t n, const double* b, const double* yC, const double* C,
                 double* g, double* h);
  void (*shift)(const float* col, double cst, int64_t n, double s, const double* y, const double* C, double* b,
                double* lo, double* ln);
  void (*axpy)(const float* col, double cst, int64_t n, double s, const double* y, double* b);
};
// The table per ISA (registry.cpp picks active_isa()'s; an ISA this build lacks falls back to the
// next narrower). Entries: the plain loops (also the reference: every ISA gives the same bits), and
// the AVX2 / AVX-512 files, which return false where they were not built.
const L1ColumnKernels& l1_column_kernels_for(Isa isa);
const L1ColumnKernels& active_l1_column_kernels();
void l1_column_kernels_portable(L1ColumnKernels& k);
bool l1_column_kernels_avx2(L1ColumnKernels& k);
bool l1_column_kernels_avx512(L1ColumnKernels& k);

// L2-regularised linear SVR by dual coordinate descent (liblinear's solver 12 / 13): y real, C the
// per-sample cost; loss |r|_eps (squared=false) or |r|_eps^2 (squared=true), r = y_i - w.x_i.
LinearResult linear_svr_fit(const LinearData& X, const std::vector<double>& y, const std::vector<double>& C,
                            double epsilon, bool squared, double tol, int64_t max_iter, uint64_t seed);

// Crammer-Singer: min_W 0.5 |W|_F^2 + sum_i C_i max_m (1[m != y_i] + w_m.x_i - w_{y_i}.x_i), labels y in
// [0, k). result.w is (k, dim) row-major, dim = d (+ 1 with the bias).
LinearResult linear_cs_fit(const LinearData& X, const std::vector<int32_t>& y, const std::vector<double>& C,
                           int k, double tol, int64_t max_iter, uint64_t seed);

}  // namespace forgeml::svm
