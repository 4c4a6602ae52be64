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
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

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

bool histogram(bool remove_barrier) {
  std::mt19937 rng(2);
  const int bins = 45;
  std::vector<int32_t> codes(2003);
  for (auto& c : codes) c = int32_t(rng() % bins);
  std::vector<unsigned> hist(bins, 0), ref(bins, 0);
  samples::histogram(codes.data(), codes.size(), bins, hist.data(), 2, 64, remove_barrier, nullptr);
  for (int32_t c : codes) ++ref[c];
  return remove_barrier || hist == ref;  // the broken one is only here for TSan's report
}

struct Case {
  const char* name;
  bool (*run)();
};
const Case kCases[] = {
    {"reduce", reduce},
    {"histogram", [] { return histogram(false); }},
    {"histogram_no_barrier", [] { return histogram(true); }},
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
