// One-vs-one training of a kernel SVC: one binary SMO problem per pair of classes (a < b),
// samples of class a labelled +1 and of class b labelled -1, in that order (libsvm's layout).
#pragma once
#include <cstdint>
#include <vector>

#include "cpu/svm/kernel.h"
#include "cpu/svm/smo.h"

namespace forgeml::svm {

struct PairResult {
  std::vector<double> coef;  // y_i a_i for the pair's samples (class a's, then class b's)
  double rho = 0;
  int64_t iterations = 0;
  bool converged = true;
};

// X is (n, d) (for precomputed: the (n, n) Gram matrix, d == n), or, when csr is given, X is
// null and the rows are csr's (sorted column indices); members[c] lists the sample
// indices of class c in increasing order; C is the per-sample bound (n,). Pairs run in parallel
// when there are several, each on one thread; a single pair uses all threads for its kernel rows.
std::vector<PairResult> fit_ovo(const KernelParams& p, const float* X, int64_t n, int64_t d,
                                const std::vector<std::vector<int64_t>>& members, const double* C,
                                const SmoOptions& opt, double cache_bytes, const CsrView* csr = nullptr);

}  // namespace forgeml::svm
