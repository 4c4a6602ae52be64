// One-vs-one: gather each pair's samples, solve, keep the signed dual coefficients.
#include "cpu/svm/ovo.h"

#include <algorithm>
#include <cstdlib>

#include "forgeml/parallel.h"

namespace forgeml::svm {

namespace {

PairResult solve_pair(const KernelParams& p, const float* X, int64_t n, int64_t d, const std::vector<int64_t>& a,
                      const std::vector<int64_t>& b, const double* C, SmoOptions opt, double cache_bytes,
                      int threads, const CsrView* csr) {
  std::vector<int64_t> idx(a);
  idx.insert(idx.end(), b.begin(), b.end());
  const int64_t l = int64_t(idx.size());
  std::vector<double> y(l), Cs(l);
  for (int64_t i = 0; i < l; ++i) {
    y[i] = i < int64_t(a.size()) ? 1.0 : -1.0;
    Cs[i] = C[idx[i]];
  }
  std::vector<float> Xs;
  std::unique_ptr<KernelRows> rows;
  if (p.type == KernelType::precomputed) {
    rows = std::make_unique<KernelRows>(X, n, idx);
  } else if (csr) {
    rows = std::make_unique<KernelRows>(p, gather_csr(*csr, d, idx.data(), l), l, threads);
  } else {
    Xs.resize(size_t(l * d));
    for (int64_t i = 0; i < l; ++i) std::copy_n(X + idx[i] * d, d, Xs.data() + i * d);
    rows = std::make_unique<KernelRows>(p, Xs.data(), l, d, threads);
    // (long kernel rows are shared with a helper thread when threads allow; see RowHelper)
  }
  RowCache cache(*rows, cache_bytes);
  SmoResult r = smo_solve(cache, *rows, y, Cs, opt);
  PairResult out;
  out.coef.resize(l);
  for (int64_t i = 0; i < l; ++i) out.coef[i] = y[i] * r.alpha[i];
  out.rho = r.rho;
  out.iterations = r.iterations;
  out.converged = r.converged;
  return out;
}

}  // namespace

std::vector<PairResult> fit_ovo(const KernelParams& p, const float* X, int64_t n, int64_t d,
                                const std::vector<std::vector<int64_t>>& members, const double* C,
                                const SmoOptions& opt, double cache_bytes, const CsrView* csr) {
  const int64_t k = int64_t(members.size());
  std::vector<std::pair<int64_t, int64_t>> pairs;
  for (int64_t a = 0; a < k; ++a)
    for (int64_t b = a + 1; b < k; ++b) pairs.emplace_back(a, b);
  const int64_t P = int64_t(pairs.size());
  std::vector<PairResult> out(P);
  const int threads = num_threads();
  if (P == 1 || threads == 1) {
    SmoOptions o = opt;
    o.interruptible = true;
    for (int64_t q = 0; q < P; ++q) {
      out[q] = solve_pair(p, X, n, d, members[pairs[q].first], members[pairs[q].second], C, o, cache_bytes, 0, csr);
      check_interrupt();
    }
    return out;
  }
  // Several pairs: one per thread, largest first so the long ones start early.
  std::vector<int64_t> order(P);
  for (int64_t q = 0; q < P; ++q) order[q] = q;
  auto size = [&](int64_t q) { return members[pairs[q].first].size() + members[pairs[q].second].size(); };
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return size(x) > size(y); });
  const int used = int(std::min<int64_t>(threads, P));
  ExceptionSlot slot;
  std::atomic<int64_t> next{0};
  parallel_run(used, [&](int, int) {
    for (int64_t t; (t = next.fetch_add(1)) < P;) {
      const int64_t q = order[t];
      slot.run([&] {
        out[q] = solve_pair(p, X, n, d, members[pairs[q].first], members[pairs[q].second], C, opt,
                            cache_bytes / used, 1, csr);
      });
    }
  });
  slot.rethrow();
  return out;
}

}  // namespace forgeml::svm
