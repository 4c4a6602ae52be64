// SVM kernel functions on float32 rows, computed in blocks with forgeml's SGEMM.
//
//   X1 is (m, d), X2 is (n, d), both row-major; K is (m, n):
//     linear   K = x1.x2
//     poly     K = (gamma x1.x2 + coef0)^degree
//     rbf      K = exp(-gamma |x1 - x2|^2) = exp(-gamma (|x1|^2 + |x2|^2 - 2 x1.x2))
//     sigmoid  K = tanh(gamma x1.x2 + coef0)
//   precomputed: X is itself the (n_samples, n_train) Gram matrix; rows are gathered, not computed.
// Blocks of K (prediction, gradient reconstruction) come from gemm::sgemm with the kernel
// function in its epilogue, applied while the block is still in cache (rbf takes the row norms
// through the epilogue's context). The SMO solver's single rows use a panel GEMV instead
// (kernel_fn.h): one row through the GEMM pads it to the micro-kernel's full height.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cpu/svm/helper.h"
#include "forgeml/gemm.h"

namespace forgeml::svm {

enum class KernelType : int { linear = 0, poly = 1, rbf = 2, sigmoid = 3, precomputed = 4 };

struct KernelParams {
  KernelType type = KernelType::rbf;
  double gamma = 1.0, coef0 = 0.0;
  int degree = 3;
};

KernelType kernel_from_name(const std::string& name);  // throws std::invalid_argument

// Squared norms of the n rows of X (n, d), accumulated in float64.
std::vector<float> row_norms(const float* X, int64_t n, int64_t d);

// K (m, n) with leading dimension ldk, for X1 (m, d) against X2 (n, d). norms1/norms2 are the
// squared row norms (only read for rbf; may be null otherwise). Not for precomputed.
void kernel_block(const KernelParams& p, const float* X1, const float* norms1, int64_t m, const float* X2,
                  const float* norms2, int64_t n, int64_t d, float* K, int64_t ldk, int max_threads = 0);

// A sparse X (rows, d) in CSR form with float32 values; column indices sorted within each row
// (then K_ij and K_ji are the same float64 sum, bit for bit).
struct CsrMatrix {
  std::vector<int64_t> indptr{0};
  std::vector<int32_t> indices;
  std::vector<float> values;
  int64_t d = 0;
  int64_t rows() const { return int64_t(indptr.size()) - 1; }
};
// A caller's CSR arrays (not owned).
struct CsrView {
  const int64_t* indptr;
  const int32_t* indices;
  const float* values;
};
// The l rows idx[0..l) of X (d columns) as a CsrMatrix of their own.
CsrMatrix gather_csr(const CsrView& X, int64_t d, const int64_t* idx, int64_t l);

// Kernel rows against one fixed training set (a sub-problem's rows), X kept in 16-row panels
// (all rows, and the solver's active subset once it shrinks).
class KernelRows {
 public:
  // X (n, d) for computed kernels; for precomputed, gram is the full (N, N_all) Gram matrix with
  // leading dimension ld_gram and idx maps sub-problem rows to its rows and columns.
  KernelRows(const KernelParams& p, const float* X, int64_t n, int64_t d, int max_threads);
  KernelRows(const float* gram, int64_t ld_gram, std::vector<int64_t> idx);
  // Sparse rows: dot products over each row's nonzeros, all in float64 (kernel_sparse.cpp). The
  // solver has `size` variables (X.rows() or twice that for the regression duals); variable t
  // stands for row t mod X.rows().
  KernelRows(const KernelParams& p, CsrMatrix X, int64_t size, int max_threads);
  int64_t size() const { return n_; }
  // Rows [half, 2 half) of X repeat rows [0, half) (the regression duals): a row's dot products
  // are computed once for the first half and copied.
  void set_repeated_half(int64_t half) { half_ = half; }
  float diag(int64_t i) const { return diag_[i]; }
  // out[0..n) = K(x_i, x_j) for all j.
  void row(int64_t i, float* out) const;
  // The columns that row_active() computes: a subset of [0, n) (the solver's active set), packed
  // once per change. Empty means all of them.
  void set_active(const int64_t* idx, int64_t m);
  int64_t active_count() const { return active_.empty() ? n_ : int64_t(active_.size()); }
  // out[t] = K(x_i, x_active[t]) for t < active_count() (the whole row when all are active).
  void row_active(int64_t i, float* out) const;
  // out[t] = sum_s w[s] K(x_targets[t], x_sources[s]) in float64, by blocks of GEMM.
  void weighted_sum(const int64_t* targets, int64_t nt, const int64_t* sources, const double* w, int64_t ns,
                    double* out) const;

 private:
  KernelParams p_;
  const float* X_ = nullptr;
  int64_t n_ = 0, d_ = 0;
  int max_threads_ = 0;
  bool precise_ = false;  // float64 dot products, symmetric rows (kernel_precise.h)
  int64_t half_ = 0;      // see set_repeated_half
  mutable std::vector<float> half_row_;
  void first_half_row(int64_t i, float* out) const;
  void weighted_sum_rows(const int64_t* targets, int64_t nt, const int64_t* sources, const double* w, int64_t ns,
                         double* out) const;
  std::vector<float> norms_, diag_;
  // sparse rows (sparse_ true): X, its float64 squared norms, and the row/weighted-sum passes
  bool sparse_ = false;
  CsrMatrix csr_;
  std::vector<double> csr_norms_;
  double sparse_value(double dot, int64_t i, int64_t j) const;
  void sparse_row(int64_t i, const int64_t* cols, int64_t m, float* out) const;
  void sparse_weighted_sum(const int64_t* targets, int64_t nt, const int64_t* sources, const double* w, int64_t ns,
                           double* out) const;
  std::vector<float> panels_;  // X in 16-row panels for single rows (see gemv_panels)
  // the active subset: its indices, norms and panels
  std::vector<int64_t> active_;
  std::vector<float> active_norms_, active_panels_;
  std::unique_ptr<RowHelper> helper_;  // a second thread for long rows, when threads allow

 public:
  mutable double t_row = 0, t_active = 0, t_wsum = 0;  // seconds (FORGEML_PROFILE builds only)
  mutable int64_t n_row = 0, n_active = 0, n_wsum = 0;
  double helper_share() const { return helper_ ? helper_->share() : 0.0; }
  const float* gram_ = nullptr;
  int64_t ld_gram_ = 0;
  std::vector<int64_t> idx_;
};

}  // namespace forgeml::svm
