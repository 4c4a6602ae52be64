// Run-time facts shared by every CPU kernel: ISA detection, thread count, interrupt hook.
#include <pthread.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

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
std::atomic<int> g_threads{0};  // 0: OpenMP's default (honours OMP_NUM_THREADS)
thread_local int t_pinned = 0;   // > 0 inside a ThreadCountScope on this thread
InterruptHook g_hook = nullptr;

// fork() safety. libgomp's thread pool does not survive fork(): the child inherits the pool's
// bookkeeping but none of its threads, so the child's first multi-threaded parallel region
// waits forever on workers that do not exist (libgomp has no way to rebuild the pool). A
// parallel region of one thread never touches the pool, so the child runs every kernel on one
// thread: it stays correct, never hangs, and the processes a fork-based pool (multiprocessing,
// joblib) starts share the cores between them anyway. The parent keeps its pool untouched.
std::atomic<bool> g_forked_child{false};
void after_fork_in_child() {
  g_forked_child.store(true);
  g_threads.store(1);
}
[[maybe_unused]] const bool g_atfork_installed = pthread_atfork(nullptr, nullptr, after_fork_in_child) == 0;

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
  return n > 0 ? n : omp_get_max_threads();
}
void set_num_threads(int n) {
  FORGEML_CHECK_ARG(n >= 1, "n: expected a thread count >= 1, got ", n);
  if (g_forked_child.load()) return;  // one thread after fork(): see after_fork_in_child
  g_threads.store(n);
}
bool in_forked_child() { return g_forked_child.load(); }

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
