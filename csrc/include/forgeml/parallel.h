// Threads and interrupts for the CPU kernels.
//
// parallel_for runs f(begin, end) over [0, n) in chunks on forgeml's thread pool
// (thread_pool.h). Exceptions never escape a worker: the first one is captured and rethrown on
// the calling thread.
// Long kernels call check_interrupt() between chunks (never inside a parallel region): the
// Python binding installs a hook that takes the GIL and turns a pending Ctrl-C into
// KeyboardInterrupt.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>

#include "forgeml/thread_pool.h"

namespace forgeml {

int num_threads();            // the thread count kernels use (the call's snapshot inside a ThreadCountScope)
void set_num_threads(int n);  // n >= 1

// Pins num_threads() on the calling thread to one read for the rest of a kernel call, so
// per-thread buffers and the work split agree even when set_num_threads runs meanwhile on
// another thread. Nested scopes keep the outermost snapshot.
class ThreadCountScope {
 public:
  ThreadCountScope();
  ~ThreadCountScope();
  ThreadCountScope(const ThreadCountScope&) = delete;
  ThreadCountScope& operator=(const ThreadCountScope&) = delete;

 private:
  bool outer_;
};

using InterruptHook = void (*)();
void set_interrupt_hook(InterruptHook hook);
void check_interrupt();  // calls the hook (throws if the user pressed Ctrl-C); cheap otherwise

// f(begin, end) over [0, n) in contiguous ranges of at least `grain` items; work below two
// grains (or inside another parallel call) runs inline on the caller. Up to kChunksPerThread
// ranges per thread, claimed from a shared counter: when the OS takes a core away for a moment,
// the other threads take over its unclaimed ranges instead of waiting for it.
constexpr int64_t kChunksPerThread = 4;
template <class F>
void parallel_for(int64_t n, int64_t grain, F&& f, int max_threads = 0) {
  if (n <= 0) return;
  int threads = max_threads > 0 ? std::min(max_threads, num_threads()) : num_threads();
  const int64_t most = std::max<int64_t>(1, n / std::max<int64_t>(grain, 1));
  if (threads <= 1 || most <= 1 || in_parallel()) {
    f(int64_t{0}, n);
    return;
  }
  threads = static_cast<int>(std::min<int64_t>(threads, most));
  const int64_t chunks = std::min<int64_t>(most, threads * kChunksPerThread);
  std::atomic<int64_t> next{0};
  parallel_run(threads, [&](int, int) {
    for (int64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < chunks;) f(n * c / chunks, n * (c + 1) / chunks);
  });
}

}  // namespace forgeml
