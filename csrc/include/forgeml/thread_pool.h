// forgeml's own CPU thread pool (csrc/cpu/thread_pool.cpp); every CPU kernel's threads come from it.
//
// parallel_run(n, fn) calls fn(tid, n) once for every tid in [0, n). The tids are claimed by
// whichever thread comes first, the caller included, so a call never waits for a worker that has
// not woken up yet: the caller runs the unclaimed tids itself and waits only for tids already
// running. Hence fn must never wait for another tid to *start* (no barriers between tids); it may
// wait for work another tid has claimed. Exceptions are captured (the tids not yet started are
// skipped) and the first is rethrown on the caller. A call from inside fn (nested), or while
// another thread's call holds the pool, runs its tids one after another on the calling thread.
//
// Workers spin a few microseconds after a job (back-to-back kernels find them awake), then sleep
// on a futex: an idle process uses no CPU. After fork() the child builds a fresh pool on its first
// call (the parent's workers do not exist there).
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>

namespace forgeml {

// Collects the first exception thrown on any thread of a parallel call.
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

namespace pool {
using TaskFn = void (*)(void* ctx, int tid, int n);
void run(int n, TaskFn fn, void* ctx);  // see parallel_run
int spin_microseconds();               // how long an idle worker spins before it sleeps
int workers();                         // worker threads started so far (tests, show_config)
}  // namespace pool

bool in_parallel();

// One step of a spin-wait (a pause on x86, so the sibling hyperthread runs on).
inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}  // true inside fn of a parallel_run (on a worker or on the caller)

template <class F>
void parallel_run(int n, F&& fn) {
  using Fn = std::remove_reference_t<F>;
  pool::run(n, [](void* ctx, int tid, int count) { (*static_cast<Fn*>(ctx))(tid, count); },
            const_cast<void*>(static_cast<const void*>(&fn)));
}

}  // namespace forgeml
