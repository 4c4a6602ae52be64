// Threads and interrupts for the CPU kernels.
//
// parallel_for runs f(begin, end) over [0, n) in chunks on the OpenMP pool. Exceptions never
// escape the parallel region: the first one is captured and rethrown on the calling thread.
// Long kernels call check_interrupt() between chunks (never inside a parallel region): the
// Python binding installs a hook that takes the GIL and turns a pending Ctrl-C into
// KeyboardInterrupt.
#pragma once
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>

namespace forgeml {

int num_threads();            // the thread count kernels use (the call's snapshot inside a ThreadCountScope)
void set_num_threads(int n);  // n >= 1 (1 in a child after fork(): see runtime.cpp)
bool in_forked_child();       // true in a process forked from one that loaded forgeml

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

// Collects the first exception thrown inside an OpenMP region.
class ExceptionSlot {
 public:
  template <class F>
  void run(F&& f) noexcept {
    if (failed_.load(std::memory_order_relaxed)) return;
    try {
      f();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
      failed_.store(true);
    }
  }
  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  void rethrow() {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::atomic<bool> failed_{false};
  std::exception_ptr error_;
  std::mutex mu_;
};

// f(begin, end) over [0, n) split into contiguous ranges of at least `grain` items, one pass
// of chunks per thread; work below one grain runs inline on the caller.
template <class F>
void parallel_for(int64_t n, int64_t grain, F&& f, int max_threads = 0) {
  if (n <= 0) return;
  int threads = max_threads > 0 ? std::min(max_threads, num_threads()) : num_threads();
  int64_t chunks = std::min<int64_t>(threads, std::max<int64_t>(1, n / std::max<int64_t>(grain, 1)));
  if (chunks <= 1) {
    f(int64_t{0}, n);
    return;
  }
  ExceptionSlot slot;
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
    slot.run([&] { f(b, e); });
  }
  slot.rethrow();
}

}  // namespace forgeml
