// Kernel rows of a sparse (CSR) training set. Row i scatters x_i into a dense float32 vector (in
// L1 for d up to ~8k) and takes each x_j . x_i over x_j's nonzeros only: the work per row is the
// number of nonzeros of X, not n * d (a 20k x 5k matrix at 1% density: 1M multiply-adds a row
// instead of 100M, and 8 MB read instead of 400 MB). Products are exact in float64 and summed
// there in four lanes (one chain would wait on the add latency), so K_ij and K_ji agree to the
// last bits of a float64 sum, which the float32 rows round away; the squared norms are the same
// dots of each row with itself, so the rbf diagonal is exactly 1 (kernel_precise.h says why the
// solver needs rows that agree with each other).
#include <algorithm>
#include <cmath>

#include "cpu/svm/kernel.h"
#include "cpu/svm/kernel_precise.h"
#include "forgeml/check.h"
#include "forgeml/parallel.h"

namespace forgeml::svm {

namespace {

// x scattered into a zeroed dense vector, and cleared again after use (only its nonzeros).
struct Scatter {
  std::vector<float> v;
  explicit Scatter(int64_t d) : v(size_t(d), 0.f) {}
  void set(const CsrMatrix& X, int64_t r) {
    for (int64_t k = X.indptr[r]; k < X.indptr[r + 1]; ++k) v[X.indices[k]] = X.values[k];
  }
  void clear(const CsrMatrix& X, int64_t r) {
    for (int64_t k = X.indptr[r]; k < X.indptr[r + 1]; ++k) v[X.indices[k]] = 0.f;
  }
  double dot(const CsrMatrix& X, int64_t r) const {
    const int64_t b = X.indptr[r], e = X.indptr[r + 1];
    const float* val = X.values.data();
    const int32_t* idx = X.indices.data();
    double s[4] = {0, 0, 0, 0};
    int64_t k = b;
    for (; k + 4 <= e; k += 4)
      for (int u = 0; u < 4; ++u) s[u] += double(val[k + u]) * double(v[idx[k + u]]);
    for (; k < e; ++k) s[0] += double(val[k]) * double(v[idx[k]]);
    return (s[0] + s[1]) + (s[2] + s[3]);
  }
};

}  // namespace

CsrMatrix gather_csr(const CsrView& X, int64_t d, const int64_t* idx, int64_t l) {
  const int64_t* indptr = X.indptr;
  CsrMatrix out;
  out.d = d;
  out.indptr.assign(size_t(l + 1), 0);
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
  parallel_for(
      R, 256,
      [&](int64_t b, int64_t e) {
        Scatter x(d_);
        for (int64_t r = b; r < e; ++r) {
          x.set(csr_, r);
          csr_norms_[r] = x.dot(csr_, r);
          x.clear(csr_, r);
        }
      },
      max_threads);
  diag_.resize(size_t(n_));
  for (int64_t t = 0; t < n_; ++t) diag_[t] = float(sparse_value(csr_norms_[t % R], t % R, t % R));
}

// The kernel value of samples i and j (rows of csr_) from their dot product.
double KernelRows::sparse_value(double dot, int64_t i, int64_t j) const {
  if (p_.type == KernelType::rbf) return std::exp(-p_.gamma * std::max(0.0, csr_norms_[i] + csr_norms_[j] - 2.0 * dot));
  return precise::apply(p_, dot);
}

void KernelRows::sparse_row(int64_t i, const int64_t* cols, int64_t m, float* out) const {
  const int64_t R = csr_.rows(), si = i % R;
  Scatter x(d_);
  x.set(csr_, si);
  parallel_for(
      m, 1024,
      [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) {
          const int64_t sj = (cols ? cols[t] : t) % R;
          out[t] = float(sparse_value(x.dot(csr_, sj), si, sj));
        }
      },
      max_threads_);
}

void KernelRows::sparse_weighted_sum(const int64_t* targets, int64_t nt, const int64_t* sources, const double* w,
                                     int64_t ns, double* out) const {
  const int64_t R = csr_.rows();
  parallel_for(
      nt, 16,
      [&](int64_t b, int64_t e) {
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
      },
      max_threads_);
}

}  // namespace forgeml::svm
