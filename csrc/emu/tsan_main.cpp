// forgeml_tsan: CUDA kernels in the emulator's thread mode (one OS thread per CUDA thread),
// built with -fsanitize=thread: ThreadSanitizer then reports every shared-memory race a missing
// barrier leaves. A TSan-built Python extension cannot be imported, hence this executable.
//   forgeml_tsan CASE...   runs the cases and checks their results; exit 1 on a wrong result
//                          (TSan itself exits 66 after a report). No CASE: list them.
// Expected: every case but histogram_no_barrier runs clean; that one must give a TSan report.
// Families add their cases in csrc/emu/tsan_FAMILY.inc (included below, each registering itself
// with a TSAN_CASE line); each checks its result against a plain float64 loop reference.
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

#include "cuda/samples.cu"

namespace samples = forgeml::cuda::samples;

namespace {

struct Case {
  const char* name;
  bool (*run)();
};
std::vector<Case>& registered() {  // the .inc files' cases, in include order
  static std::vector<Case> cases;
  return cases;
}
struct Register {
  Register(const char* name, bool (*run)()) { registered().push_back({name, run}); }
};
#define TSAN_CASE_CAT(a, b) a##b
#define TSAN_CASE_NAME(n) TSAN_CASE_CAT(tsan_case_, n)
#define TSAN_CASE(name, fn) const Register TSAN_CASE_NAME(__COUNTER__){name, fn}

std::vector<float> normal_floats(size_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// |got - ref| <= rtol * scale + atol for every element; names the first failure on stderr.
bool check_close(const char* what, const float* got, const std::vector<double>& ref, const std::vector<double>& scale,
                 double rtol, double atol) {
  for (size_t i = 0; i < ref.size(); ++i) {
    const double tol = rtol * (scale.empty() ? std::fabs(ref[i]) : scale[i]) + atol;
    if (!(std::fabs(got[i] - ref[i]) <= tol)) {
      std::fprintf(stderr, "%s[%zu]: got %.9g, expected %.9g (tolerance %.3g)\n", what, i, double(got[i]), ref[i], tol);
      return false;
    }
  }
  return true;
}

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

const Case kCases[] = {
    {"reduce", reduce},
    {"histogram", [] { return histogram(false, 45, 2003, 2, 64); }},
    {"histogram_no_barrier", [] { return histogram(true, 45, 2003, 2, 64); }},
    {"transpose", transpose},
};

}  // namespace

#include "emu/tsan_gemm.inc"
#include "emu/tsan_conv.inc"
#include "emu/tsan_rnn.inc"
#include "emu/tsan_tree.inc"
#include "emu/tsan_tree_grower.inc"
#include "emu/tsan_svm.inc"
#include "emu/tsan_lowp.inc"

int main(int argc, char** argv) {
  std::vector<Case> cases(std::begin(kCases), std::end(kCases));
  cases.insert(cases.end(), registered().begin(), registered().end());
  if (argc < 2) {
    for (const Case& c : cases) std::printf("%s\n", c.name);
    return 0;
  }
  int failed = 0;
  for (int a = 1; a < argc; ++a) {
    const Case* found = nullptr;
    for (const Case& c : cases)
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
