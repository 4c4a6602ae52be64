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
