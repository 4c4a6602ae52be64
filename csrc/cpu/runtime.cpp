// Run-time facts shared by every CPU kernel: ISA detection, thread count, interrupt hook.
// (The threads themselves: thread_pool.cpp, which also handles fork().)
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "forgeml/check.h"
#include "forgeml/cpu_features.h"
#include "forgeml/parallel.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define FORGEML_X86 1
#endif

namespace forgeml {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::reference: return "reference";
    case Isa::portable: return "portable";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "?";
}

namespace {

#ifdef FORGEML_X86
unsigned long long xgetbv0() {
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}
#endif

Isa detect() {
#ifdef FORGEML_X86
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::portable;
  bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28);
  if (!(fma && osxsave && avx)) return Isa::portable;
  unsigned long long xcr0 = xgetbv0();
  if ((xcr0 & 0x6) != 0x6) return Isa::portable;  // OS saves xmm + ymm
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return Isa::portable;
  bool avx2 = b & (1u << 5);
  bool avx512 = (b & (1u << 16)) && (b & (1u << 17)) && (b & (1u << 30)) && (b & (1u << 31));  // F DQ BW VL
  bool os_zmm = (xcr0 & 0xe6) == 0xe6;  // opmask + zmm state
  if (avx512 && os_zmm) return Isa::avx512;
  if (avx2) return Isa::avx2;
#endif
  return Isa::portable;
}

Isa from_env(Isa detected) {
  const char* env = std::getenv("FORGEML_ISA");
  if (!env || !*env) return detected;
  for (Isa isa : {Isa::reference, Isa::portable, Isa::avx2, Isa::avx512})
    if (std::strcmp(env, isa_name(isa)) == 0 && isa <= detected) return isa;
  return detected;  // unknown or unsupported: ignore rather than crash at import
}

Isa g_detected = detect();
Isa g_active = from_env(g_detected);
// The default thread count: OMP_NUM_THREADS (its first entry, as OpenMP reads it) when set,
// else the CPUs this process may run on.
int default_threads() {
  const char* env = std::getenv("OMP_NUM_THREADS");
  if (env && *env) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && v >= 1) return static_cast<int>(std::min<long>(v, 4096));
  }
#ifdef CPU_COUNT
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

const int g_default_threads = default_threads();
std::atomic<int> g_threads{0};  // 0: not set, g_default_threads (a forked child keeps the parent's)
thread_local int t_pinned = 0;   // > 0 inside a ThreadCountScope on this thread
InterruptHook g_hook = nullptr;

}  // namespace

Isa detected_isa() { return g_detected; }
Isa active_isa() { return g_active; }
void set_active_isa(Isa isa) {
  FORGEML_CHECK_ARG(isa <= g_detected, "isa: this CPU supports at most '", isa_name(g_detected),
                    "', got '", isa_name(isa), "'");
  g_active = isa;
}

int num_threads() {
  if (t_pinned > 0) return t_pinned;
  int n = g_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : g_default_threads;
}
void set_num_threads(int n) {
  FORGEML_CHECK_ARG(n >= 1, "n: expected a thread count >= 1, got ", n);
  g_threads.store(n);
}

ThreadCountScope::ThreadCountScope() : outer_(t_pinned == 0) {
  if (outer_) t_pinned = num_threads();
}
ThreadCountScope::~ThreadCountScope() {
  if (outer_) t_pinned = 0;
}

void set_interrupt_hook(InterruptHook hook) { g_hook = hook; }
void check_interrupt() {
  if (g_hook) g_hook();
}

}  // namespace forgeml
