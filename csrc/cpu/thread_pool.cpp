// The CPU thread pool behind parallel_run (contract in forgeml/thread_pool.h).
//
// One job at a time. job_ packs (generation, tid count, next tid) in one word: a thread claims
// a tid with a compare-exchange on it, so a worker that wakes after the job is over (or after
// the next one was posted) can never claim a stale tid. The job's function is read only after a
// successful claim, and the caller returns only when every tid has finished, so the function
// and its captures outlive every reader.
//
// Waking: wake_ is a futex word bumped once per job. An idle worker spins on it for
// spin_microseconds() (FORGEML_SPIN_US, default 50: longer than the Python overhead between
// back-to-back kernel calls, far shorter than any idle gap), then sleeps in FUTEX_WAIT. The
// caller issues FUTEX_WAKE only when some worker sleeps (a Dekker pair of seq_cst accesses on
// wake_ and sleepers_ makes that check safe), and never waits for the woken ones: it starts on
// the tids itself.
//
// A worker does not spin on its caller's CPU: on a busy machine the scheduler often wakes the
// worker onto the CPU the caller runs on, where it preempts the caller and runs the tids; its
// 50 us of spinning then kept the caller (who only needs to see the job finished) off the CPU,
// so a call after an idle gap cost the one-thread time plus the spin. Such a worker yields.
//
// Nor is a sleeping worker woken onto its caller's CPU: there it either preempted the caller and
// ran every tid alone, or (more often, traced in bench/results/gemm_profile.md, session 17) sat
// queued behind the running caller for milliseconds, until well after the call, while the caller
// ran every chunk alone. The caller narrows each sleeping worker's affinity to the other allowed
// CPUs before the wake (keep_off_my_cpu); the worker restores it once it has run its tids.
#include "forgeml/thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <csignal>

#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#include <pthread.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <system_error>
#include <thread>
#include <vector>

namespace forgeml {

namespace {

thread_local bool t_in_parallel = false;

class InParallel {
 public:
  InParallel() : prev_(t_in_parallel) { t_in_parallel = true; }
  ~InParallel() { t_in_parallel = prev_; }

 private:
  bool prev_;
};


int read_spin_microseconds() {
  const char* env = std::getenv("FORGEML_SPIN_US");
  if (env && *env) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && v >= 0 && v <= 100000) return static_cast<int>(v);
  }
  return 50;
}
const int g_spin_us = read_spin_microseconds();

#if defined(__linux__)
void futex_wait(std::atomic<uint32_t>* word, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}
void futex_wake(std::atomic<uint32_t>* word, int count) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, count, nullptr, nullptr, 0);
}
int current_cpu() { return sched_getcpu(); }  // glibc reads it from rseq: a load, no syscall
#else
void futex_wait(std::atomic<uint32_t>* word, uint32_t expected) { word->wait(expected); }
void futex_wake(std::atomic<uint32_t>* word, int) { word->notify_all(); }
int current_cpu() { return -1; }
#endif

constexpr int kMaxTids = 0xffff;  // the tid count and the next tid are 16-bit fields of job_

// What the caller needs to steer one worker's wake-up.
struct Worker {
  std::atomic<long> tid{0};             // the kernel's id of the thread (0 until it first runs)
  std::atomic<bool> asleep{false};      // in (or entering) FUTEX_WAIT
  std::atomic<bool> narrowed{false};    // the caller narrowed its affinity; `restore` holds the old one
#if defined(__linux__)
  cpu_set_t restore;  // written by the caller before `narrowed`, read by the worker after
#endif
};

class Pool {
 public:
  std::mutex submit;  // held by the one caller whose job the pool runs

  // Runs the job with the submit mutex held; returns when every tid has finished.
  void run(int n, pool::TaskFn fn, void* ctx, ExceptionSlot& slot) {
    grow(n - 1);
    caller_cpu_.store(current_cpu(), std::memory_order_relaxed);
    fn_ = fn;
    ctx_ = ctx;
    slot_ = &slot;
    finished_.store(0, std::memory_order_relaxed);
    ++gen_;
    job_.store((gen_ << 32) | (uint64_t(n) << 16), std::memory_order_release);
    const bool sleeping = sleepers_.load(std::memory_order_seq_cst) > 0;
    if (sleeping) keep_off_my_cpu();  // before wake_ moves: a worker that leaves its wait sees `narrowed`
    wake_.fetch_add(1, std::memory_order_seq_cst);
    if (sleeping || sleepers_.load(std::memory_order_seq_cst) > 0) futex_wake(&wake_, n - 1);
    run_claimed();
    for (int spins = 0; finished_.load(std::memory_order_acquire) < n; ++spins) {
      if (spins < 4096) cpu_relax();  // the rest are running on workers: usually a short wait
      else std::this_thread::yield();
    }
  }

  int workers() const { return started_.load(std::memory_order_relaxed); }

 private:
  // Claims and runs tids of the current job until none is left.
  void run_claimed() {
    uint64_t w = job_.load(std::memory_order_acquire);
    for (;;) {
      const int n = static_cast<int>((w >> 16) & kMaxTids), next = static_cast<int>(w & kMaxTids);
      if (next >= n) return;
      if (!job_.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      {
        InParallel inside;
        pool::TaskFn fn = fn_;
        void* ctx = ctx_;
        slot_->run([&] { fn(ctx, next, n); });
      }
      finished_.fetch_add(1, std::memory_order_release);
      w = job_.load(std::memory_order_acquire);
    }
  }

  void worker_loop(Worker* me) {
#if defined(__x86_64__)
    // The default SSE control word: a new thread starts with its creator's, and the pool may grow
    // inside a kernel that flushes denormals (the fused Dense step sets FTZ | DAZ), which then
    // stuck to the worker and flushed every later kernel's tiny results on it alone.
    _mm_setcsr(0x1F80);
#endif
#if defined(__linux__)
    me->tid.store(static_cast<long>(syscall(SYS_gettid)), std::memory_order_release);
    pthread_setname_np(pthread_self(), "forgeml-pool");  // how top, py-spy and the tests tell them apart
#endif
    // Process-directed signals (Ctrl-C, kill) go to the threads that do not block them: keep them
    // off the workers, so Python's main thread sees them and a long kernel stops (check_interrupt).
    sigset_t async_signals;
    sigemptyset(&async_signals);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGALRM, SIGUSR1, SIGUSR2, SIGCHLD, SIGPIPE})
      sigaddset(&async_signals, sig);
    pthread_sigmask(SIG_BLOCK, &async_signals, nullptr);
    for (;;) {
      const uint32_t seen = wake_.load(std::memory_order_acquire);
      run_claimed();
      restore_affinity(*me);  // after the work: the syscall (~15 us after a sleep) would delay it
      wait_for_job(seen, *me);
    }
  }

  // Narrows every sleeping worker's affinity to the allowed CPUs other than this (the caller's)
  // one, so that the wake-up cannot queue it behind the caller. A syscall per sleeping worker
  // (~3 us warm, ~15 us as the first syscall after an idle gap on the 2-vCPU guest), paid only
  // when workers slept. Nothing when the process is pinned to one CPU.
  void keep_off_my_cpu() {
#if defined(__linux__)
    const int cpu = caller_cpu_.load(std::memory_order_relaxed);
    if (cpu < 0 || cpu >= CPU_SETSIZE) return;
    cpu_set_t allowed, away;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
    away = allowed;
    CPU_CLR(cpu, &away);
    if (CPU_COUNT(&away) == 0) return;
    for (auto& w : workers_) {
      const long tid = w->tid.load(std::memory_order_acquire);
      if (tid <= 0 || !w->asleep.load(std::memory_order_seq_cst) || w->narrowed.load(std::memory_order_relaxed))
        continue;
      w->restore = allowed;
      if (sched_setaffinity(static_cast<pid_t>(tid), sizeof away, &away) == 0)
        w->narrowed.store(true, std::memory_order_seq_cst);
    }
#endif
  }

  // The worker's side: back to the affinity it had before the caller narrowed it (it runs the job
  // narrowed: it was placed on another CPU than its caller's anyway).
  static void restore_affinity(Worker& me) {
#if defined(__linux__)
    if (!me.narrowed.load(std::memory_order_seq_cst)) return;
    sched_setaffinity(0, sizeof me.restore, &me.restore);
    me.narrowed.store(false, std::memory_order_relaxed);
#endif
  }

  // Whether this worker runs on the CPU its last job was posted from: the caller may be queued
  // behind it there. It yields instead of spinning, and stays runnable, so the scheduler can
  // move it to another CPU (a worker that slept instead was woken onto the caller's CPU again
  // by the next call, and back-to-back calls on a busy machine never ran in parallel).
  bool on_callers_cpu() const {
    const int cpu = current_cpu();
    return cpu >= 0 && cpu == caller_cpu_.load(std::memory_order_relaxed);
  }

  void wait_for_job(uint32_t seen, Worker& me) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(g_spin_us);
    for (int i = 0; wake_.load(std::memory_order_acquire) == seen; ++i) {
      cpu_relax();
      if ((i & 63) != 0) continue;
      if (std::chrono::steady_clock::now() >= deadline) break;
      if (on_callers_cpu()) sched_yield();
    }
    while (wake_.load(std::memory_order_acquire) == seen) {
      me.asleep.store(true, std::memory_order_seq_cst);
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      if (wake_.load(std::memory_order_seq_cst) == seen) futex_wait(&wake_, seen);
      sleepers_.fetch_sub(1, std::memory_order_seq_cst);
      me.asleep.store(false, std::memory_order_seq_cst);
    }
  }

  // At least `count` workers, as far as the system lets us start them: a job never needs its
  // workers (the caller runs the tids nobody claimed), so a failed start only costs speed.
  void grow(int count) {
    while (static_cast<int>(threads_.size()) < count) {
      workers_.push_back(std::make_unique<Worker>());
      try {
        threads_.emplace_back([this, w = workers_.back().get()] { worker_loop(w); });
      } catch (const std::system_error&) {
        workers_.pop_back();
        return;
      }
      started_.store(static_cast<int>(threads_.size()), std::memory_order_relaxed);
    }
  }

  std::atomic<uint64_t> job_{0};   // generation << 32 | tid count << 16 | next tid
  std::atomic<uint32_t> wake_{0};  // futex word: one increment per job
  std::atomic<int> sleepers_{0};   // workers in (or entering) FUTEX_WAIT
  std::atomic<int> finished_{0};   // tids of the current job that have finished
  std::atomic<int> started_{0};
  std::atomic<int> caller_cpu_{-1};  // the CPU the last job was posted from (-1: unknown)
  uint64_t gen_ = 0;               // the submitter's count of jobs
  pool::TaskFn fn_ = nullptr;      // the current job (read only after a successful claim)
  void* ctx_ = nullptr;
  ExceptionSlot* slot_ = nullptr;
  std::vector<std::unique_ptr<Worker>> workers_;  // one per thread in threads_, same order
  std::vector<std::thread> threads_;  // never joined: the pool lives until the process exits
};

// Created on first use and never destroyed (workers may still be spinning at exit). A forked
// child drops the parent's pool, whose workers do not exist there, and builds its own.
std::atomic<Pool*> g_pool{nullptr};

Pool& the_pool() {
  Pool* p = g_pool.load(std::memory_order_acquire);
  if (!p) {
    Pool* fresh = new Pool;
    if (g_pool.compare_exchange_strong(p, fresh, std::memory_order_acq_rel)) p = fresh;
    else delete fresh;
  }
  return *p;
}

void after_fork_in_child() { g_pool.store(nullptr); }  // the parent's pool is leaked, not touched
[[maybe_unused]] const bool g_atfork_installed = pthread_atfork(nullptr, nullptr, after_fork_in_child) == 0;

}  // namespace

bool in_parallel() { return t_in_parallel; }

namespace pool {

int spin_microseconds() { return g_spin_us; }
int workers() {
  Pool* p = g_pool.load(std::memory_order_acquire);
  return p ? p->workers() : 0;
}

void run(int n, TaskFn fn, void* ctx) {
  if (n <= 1) {
    if (n == 1) fn(ctx, 0, 1);
    return;
  }
  ExceptionSlot slot;
  if (!t_in_parallel && n <= kMaxTids) {
    Pool& p = the_pool();
    std::unique_lock<std::mutex> lock(p.submit, std::try_to_lock);
    if (lock.owns_lock()) {
      p.run(n, fn, ctx, slot);
      lock.unlock();
      slot.rethrow();
      return;
    }
  }
  // Nested, or another thread's job holds the pool: every tid here, one after another.
  {
    InParallel inside;
    for (int tid = 0; tid < n && !slot.failed(); ++tid) slot.run([&] { fn(ctx, tid, n); });
  }
  slot.rethrow();
}

}  // namespace pool

}  // namespace forgeml
