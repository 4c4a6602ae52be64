// forgeml_tsan: CUDA kernels in the emulator's thread mode (one OS thread per CUDA thread),
// built with -fsanitize=thread: ThreadSanitizer then reports every shared-memory race a missing
// barrier leaves. A TSan-built Python extension cannot be imported, hence this executable.
//   forgeml_tsan CASE...   runs the cases and checks their results; exit 1 on a wrong result
//                          (TSan itself exits 66 after a report). No CASE: list them.
// Expected: every case but histogram_no_barrier runs clean; that one must give a TSan report.
#ifndef FORGEML_EMU
#define FORGEML_EMU 1
#endif
#ifndef FORGEML_EMU_THREADS
#define FORGEML_EMU_THREADS 1
#endif
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "cuda/gemm.cu"
#include "cuda/samples.cu"
#include "cuda/svm.cu"

namespace samples = forgeml::cuda::samples;

namespace {

bool reduce() {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> x(3001);
  for (float& v : x) v = normal(rng);
  const int blocks = 3;
  std::vector<float> partial(blocks);
  unsigned positives = 0;
  samples::block_reduce(x.data(), x.size(), partial.data(), &positives, blocks, 96, nullptr);
  double sum = 0, ref = 0, scale = 0;
  unsigned ref_pos = 0;
  for (float p : partial) sum += p;
  for (float v : x) ref += v, scale += std::fabs(v), ref_pos += v > 0;
  return std::fabs(sum - ref) <= 1e-5 * scale && positives == ref_pos;
}

bool histogram(bool remove_barrier, int bins, int n, int blocks, int threads) {
  std::mt19937 rng(2);
  std::vector<int32_t> codes(n);
  for (auto& c : codes) c = int32_t(rng() % bins);
  std::vector<unsigned> hist(bins, 0), ref(bins, 0);
  samples::histogram(codes.data(), codes.size(), bins, hist.data(), blocks, threads, remove_barrier, nullptr);
  for (int32_t c : codes) ++ref[c];
  return remove_barrier || hist == ref;  // the broken one is only here for TSan's report
}

bool transpose() {
  const int64_t rows = 45, cols = 70;
  std::vector<float> x(rows * cols), y(rows * cols);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i);
  samples::transpose(x.data(), rows, cols, y.data(), nullptr);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      if (y[c * rows + r] != x[r * cols + c]) return false;
  return true;
}

// Every transpose combination, both tiles, sizes spanning two tiles, bias + gelu, alpha and beta.
bool sgemm() {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  bool ok = true;
  for (int tile : {64, 128})
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      const int64_t M = tile + 3, N = tile + 5, K = 13;
      std::vector<float> A(M * K), B(K * N), C(M * N), bias(N);
      for (auto* v : {&A, &B, &C, &bias})
        for (float& x : *v) x = normal(rng);
      std::vector<float> C0 = C;
      forgeml::cuda::sgemm(ta, tb, M, N, K, 0.5f, A.data(), ta ? M : K, B.data(), tb ? K : N, 2.0f, C.data(), N,
                           bias.data(), 4, nullptr, tile);
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          double acc = 0, scale = 0;
          for (int64_t k = 0; k < K; ++k) {
            const double a = ta ? A[k * M + i] : A[i * K + k], b = tb ? B[j * K + k] : B[k * N + j];
            acc += a * b, scale += std::fabs(a * b);
          }
          const double v = 0.5 * acc + 2.0 * C0[i * N + j] + bias[j];
          const double ref = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
          ok &= std::fabs(C[i * N + j] - ref) <= 1e-5 * (scale + std::fabs(C0[i * N + j]) + std::fabs(bias[j])) + 1e-5;
        }
    }
  return ok;
}

// The SVM solver's own kernels: a local SMO (two warps, two slots for some threads, a few
// steps) on an rbf Gram matrix, then the gradient update; checked against float64 sums.
bool svm_local() {
  std::mt19937 rng(4);
  std::normal_distribution<float> normal;
  const int n = 90, q = 77, d = 3;
  std::vector<float> X(n * d), K(n * n), yf(n), kww(q * q), krows(int64_t(q) * n);
  for (float& v : X) v = normal(rng);
  std::vector<double> C(n, 1.0), alpha(n, 0.0), G(n, -1.0), delta(q), out(q + 2);
  std::vector<int32_t> ws(q);
  for (int i = 0; i < n; ++i) {
    yf[i] = X[i * d] + 0.5f * normal(rng) > 0 ? 1.0f : -1.0f;
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int k = 0; k < d; ++k) s += double(X[i * d + k] - X[j * d + k]) * (X[i * d + k] - X[j * d + k]);
      K[i * n + j] = float(std::exp(-0.3 * s));
    }
  }
  for (int t = 0; t < q; ++t) ws[t] = (t * 7) % n;  // 7 and 90 coprime: distinct
  for (int a = 0; a < q; ++a) {
    for (int b = 0; b < q; ++b) kww[a * q + b] = K[ws[a] * n + ws[b]];
    for (int j = 0; j < n; ++j) krows[int64_t(a) * n + j] = K[ws[a] * n + j];
  }
  namespace cs = forgeml::cuda::svm;
  cs::local_solve(q, ws.data(), kww.data(), yf.data(), C.data(), alpha.data(), G.data(), 1e-3, 12, delta.data(),
                  out.data(), 64, nullptr);
  std::vector<double> G0 = G;
  cs::gradient_update(q, n, krows.data(), delta.data(), yf.data(), G.data(), nullptr);
  bool ok = out[q] == 12;
  double sum = 0;
  for (int t = 0; t < q; ++t) sum += yf[ws[t]] * alpha[ws[t]];
  ok &= std::fabs(sum) < 1e-12;
  for (int j = 0; j < n; ++j) {  // G_j = y_j sum_t K_{ws_t, j} y_t a_t - 1 from a = 0
    double ref = 0;
    for (int t = 0; t < q; ++t) ref += double(K[ws[t] * n + j]) * yf[ws[t]] * alpha[ws[t]];
    ok &= std::fabs(G[j] - (yf[j] * ref - 1.0)) < 1e-12;
  }
  return ok;
}

struct Case {
  const char* name;
  bool (*run)();
};
const Case kCases[] = {
    {"reduce", reduce},
    {"histogram", [] { return histogram(false, 45, 2003, 2, 64); }},
    {"histogram_no_barrier", [] { return histogram(true, 45, 2003, 2, 64); }},
    {"transpose", transpose},
    {"sgemm", sgemm},
    {"svm_local", svm_local},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    for (const Case& c : kCases) std::printf("%s\n", c.name);
    return 0;
  }
  int failed = 0;
  for (int a = 1; a < argc; ++a) {
    const Case* found = nullptr;
    for (const Case& c : kCases)
      if (std::strcmp(c.name, argv[a]) == 0) found = &c;
    if (!found) {
      std::fprintf(stderr, "forgeml_tsan: unknown case '%s'\n", argv[a]);
      return 2;
    }
    bool ok = false;
    try {
      ok = found->run();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", found->name, e.what());
    }
    std::printf("%s: %s\n", found->name, ok ? "ok" : "WRONG RESULT");
    failed += !ok;
  }
  return failed ? 1 : 0;
}
