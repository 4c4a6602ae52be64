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

// Kernel rows against one fixed training set (a sub-problem's rows), X kept in 16-row panels
// (all rows, and the solver's active subset once it shrinks).
class KernelRows {
 public:
  // X (n, d) for computed kernels; for precomputed, gram is the full (N, N_all) Gram matrix with
  // leading dimension ld_gram and idx maps sub-problem rows to its rows and columns.
  KernelRows(const KernelParams& p, const float* X, int64_t n, int64_t d, int max_threads);
  KernelRows(const float* gram, int64_t ld_gram, std::vector<int64_t> idx);
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
