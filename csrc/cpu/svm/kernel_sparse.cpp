// Kernel rows of a sparse (CSR) training set. Row i scatters x_i into a dense float64 vector and
// takes each x_j . x_i over x_j's nonzeros only: the work per row is the number of nonzeros of
// X, not n * d (a 20k x 5k matrix at 1% density: 1M multiply-adds a row instead of 100M, and 8 MB
// read instead of 400 MB). Everything is summed in float64 in column order, so K_ij and K_ji are
// the same sum of the same products and agree with the diagonal (see kernel_precise.h for why
// the solver needs that).
#include <algorithm>
#include <cmath>

#include "cpu/svm/kernel.h"
#include "cpu/svm/kernel_precise.h"
#include "forgeml/check.h"
#include "forgeml/parallel.h"

namespace forgeml::svm {

CsrMatrix gather_csr(const CsrView& X, int64_t d, const int64_t* idx, int64_t l) {
  const int64_t* indptr = X.indptr;
  CsrMatrix out;
  out.d = d;
  out.indptr.resize(size_t(l + 1));
  for (int64_t t = 0; t < l; ++t) out.indptr[t + 1] = out.indptr[t] + (indptr[idx[t] + 1] - indptr[idx[t]]);
  out.indices.resize(size_t(out.indptr[l]));
  out.values.resize(size_t(out.indptr[l]));
  for (int64_t t = 0; t < l; ++t) {
    const int64_t b = indptr[idx[t]], e = indptr[idx[t] + 1];
    std::copy(X.indices + b, X.indices + e, out.indices.begin() + out.indptr[t]);
    std::copy(X.values + b, X.values + e, out.values.begin() + out.indptr[t]);
  }
  return out;
}

KernelRows::KernelRows(const KernelParams& p, CsrMatrix X, int64_t size, int max_threads)
    : p_(p), n_(size), d_(X.d), max_threads_(max_threads), sparse_(true), csr_(std::move(X)) {
  FORGEML_CHECK_ARG(p.type != KernelType::precomputed, "X: a precomputed kernel cannot be sparse");
  const int64_t R = csr_.rows();
  FORGEML_CHECK_ARG(R > 0 && size % R == 0, "size: expected a multiple of the ", R, " rows");
  csr_norms_.resize(size_t(R));
  for (int64_t r = 0; r < R; ++r) {
    double s = 0;
    for (int64_t k = csr_.indptr[r]; k < csr_.indptr[r + 1]; ++k) s += double(csr_.values[k]) * csr_.values[k];
    csr_norms_[r] = s;
  }
  diag_.resize(size_t(n_));
  for (int64_t t = 0; t < n_; ++t) diag_[t] = float(sparse_value(csr_norms_[t % R], t % R, t % R));
}

// The kernel value of samples i and j (rows of csr_) from their dot product.
double KernelRows::sparse_value(double dot, int64_t i, int64_t j) const {
  if (p_.type == KernelType::rbf)
    return std::exp(-p_.gamma * std::max(0.0, csr_norms_[i] + csr_norms_[j] - 2.0 * dot));
  return precise::apply(p_, dot);
}

namespace {

// x scattered into a zeroed dense vector, and cleared again after use (only its nonzeros).
struct Scatter {
  std::vector<double> v;
  explicit Scatter(int64_t d) : v(size_t(d), 0.0) {}
  void set(const CsrMatrix& X, int64_t r) {
    for (int64_t k = X.indptr[r]; k < X.indptr[r + 1]; ++k) v[X.indices[k]] = X.values[k];
  }
  void clear(const CsrMatrix& X, int64_t r) {
    for (int64_t k = X.indptr[r]; k < X.indptr[r + 1]; ++k) v[X.indices[k]] = 0.0;
  }
  double dot(const CsrMatrix& X, int64_t r) const {
    double s = 0;
    for (int64_t k = X.indptr[r]; k < X.indptr[r + 1]; ++k) s += double(X.values[k]) * v[X.indices[k]];
    return s;
  }
};

}  // namespace

void KernelRows::sparse_row(int64_t i, const int64_t* cols, int64_t m, float* out) const {
  const int64_t R = csr_.rows(), si = i % R;
  Scatter x(d_);
  x.set(csr_, si);
  parallel_for(m, 1024, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t sj = (cols ? cols[t] : t) % R;
      out[t] = float(sparse_value(x.dot(csr_, sj), si, sj));
    }
  }, max_threads_);
}

void KernelRows::sparse_weighted_sum(const int64_t* targets, int64_t nt, const int64_t* sources, const double* w,
                                     int64_t ns, double* out) const {
  const int64_t R = csr_.rows();
  parallel_for(nt, 16, [&](int64_t b, int64_t e) {
    Scatter x(d_);
    for (int64_t t = b; t < e; ++t) {
      const int64_t st = targets[t] % R;
      x.set(csr_, st);
      double acc = 0;
      for (int64_t s = 0; s < ns; ++s) {
        const int64_t ss = sources[s] % R;
        acc += w[s] * double(float(sparse_value(x.dot(csr_, ss), st, ss)));  // rounded as the rows are
      }
      out[t] = acc;
      x.clear(csr_, st);
    }
  }, max_threads_);
}

}  // namespace forgeml::svm
