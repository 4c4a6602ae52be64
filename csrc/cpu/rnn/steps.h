// The time loops shared by forward and backward. run_steps: each step has one or more phases; every phase
// runs phase(k, t) for all parts k, and a phase starts only when the previous one is complete.
//
// Instead of a barrier with fixed owners, the threads of one parallel_run claim (phase, part)
// tasks: each thread tries its own part first (so a part's packed weights stay in one core's
// L2), then any part still unclaimed. When a thread is descheduled (an oversubscribed machine),
// the others do its parts instead of waiting a time slice for it at a barrier. Exceptions are
// collected (tasks still count as done) and rethrown after the call; Ctrl-C is checked between
// chunks of steps.
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "forgeml/parallel.h"

namespace forgeml::rnn {

namespace detail {

inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

// Waits until counter >= target, yielding the core after a short spin.
inline void wait_for(const std::atomic<int64_t>& counter, int64_t target) {
  for (int spins = 0; counter.load(std::memory_order_acquire) < target; ++spins) {
    if (spins < 2000) cpu_relax();
    else std::this_thread::yield();
  }
}

}  // namespace detail

template <class... Phases>
void run_steps(int64_t parts, int64_t T, bool reverse, Phases&&... phases) {
  constexpr int64_t kPhases = sizeof...(Phases);
  const int64_t chunk = 32;
  const int threads = static_cast<int>(std::min<int64_t>(parts, num_threads()));
  for (int64_t s0 = 0; s0 < T; s0 += chunk) {
    const int64_t s1 = std::min(T, s0 + chunk), groups = (s1 - s0) * kPhases;
    ExceptionSlot slot;
    std::atomic<int64_t> done{0};                                    // tasks finished, all groups
    std::unique_ptr<std::atomic<int64_t>[]> claimed(new std::atomic<int64_t>[parts]);  // next group per part
    for (int64_t k = 0; k < parts; ++k) claimed[k].store(0);
    auto run_task = [&](int64_t g, int64_t k) {
      const int64_t s = s0 + g / kPhases, t = reverse ? T - 1 - s : s, phase = g % kPhases;
      int64_t i = 0;
      slot.run([&] { ((i++ == phase ? phases(k, t) : void()), ...); });
      done.fetch_add(1, std::memory_order_release);
    };
    // Any one thread can finish every task, so a tid that starts late (or on the caller after
    // its own) never holds up the others: what parallel_run asks of fn.
    parallel_run(threads, [&](int tid, int) {
      for (int64_t g = 0; g < groups; ++g) {
        detail::wait_for(done, g * parts);  // the previous phase is complete
        for (int64_t j = 0; j < parts; ++j) {
          const int64_t k = (tid + j) % parts;
          int64_t expected = g;
          if (claimed[k].load(std::memory_order_relaxed) == g &&
              claimed[k].compare_exchange_strong(expected, g + 1, std::memory_order_acq_rel))
            run_task(g, k);
        }
      }
    });
    slot.rethrow();
    check_interrupt();
  }
}

// The time loop for steps whose rows are independent recurrences (the LSTM / GRU forward): task
// (t, i, k) = step t, row panel i, part k, and it needs only (t - 1, i, every part) done, not the
// whole of step t - 1. A part that runs late by less than a step then holds nobody up (a barrier
// per step made both threads wait for the slower one at every step, ~10% of a 2-thread run).
//
// Each thread runs its own parts (k % threads == tid, so their packed weights stay in its L2)
// panel by panel. Only when it is blocked on a task that nobody has claimed (a part's thread
// more than a step behind: parked by the OS, or a tid run after the others by parallel_run) does
// it take that part's tasks itself, oldest first. fn(k, t, i, tid): tid picks per-thread buffers
// (a part's tasks may run on either thread).
template <class Fn>
void run_waves(int64_t parts, int64_t T, int64_t panels, Fn&& fn) {
  const int64_t chunk = 32;
  const int threads = static_cast<int>(std::min<int64_t>(parts, num_threads()));
  for (int64_t s0 = 0; s0 < T; s0 += chunk) {
    const int64_t groups = (std::min(T, s0 + chunk) - s0) * panels;  // group g: step s0 + g / panels, panel g % panels
    ExceptionSlot slot;
    std::unique_ptr<std::atomic<int64_t>[]> done(new std::atomic<int64_t>[groups]);     // parts done per group
    std::unique_ptr<std::atomic<int64_t>[]> claimed(new std::atomic<int64_t>[parts]);  // next group per part
    for (int64_t g = 0; g < groups; ++g) done[g].store(0, std::memory_order_relaxed);
    for (int64_t k = 0; k < parts; ++k) claimed[k].store(0, std::memory_order_relaxed);
    auto ready = [&](int64_t g) { return g < panels || done[g - panels].load(std::memory_order_acquire) == parts; };
    auto run_task = [&](int64_t k, int64_t g, int tid) {
      slot.run([&] { fn(k, s0 + g / panels, g % panels, tid); });
      done[g].fetch_add(1, std::memory_order_release);
    };
    // Claims part j's next task if it is in a group <= last and its inputs are complete.
    auto take = [&](int64_t j, int64_t last, int tid) {
      int64_t c = claimed[j].load(std::memory_order_acquire);
      if (c > last || !ready(c) || !claimed[j].compare_exchange_strong(c, c + 1, std::memory_order_acq_rel))
        return false;
      run_task(j, c, tid);
      return true;
    };
    parallel_run(threads, [&](int tid, int) {
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t k = tid; k < parts; k += threads) {
          if (claimed[k].load(std::memory_order_acquire) != g) continue;  // taken by another thread
          for (int spins = 0; !ready(g); ++spins) {
            bool took = false;
            for (int64_t j = 0; j < parts; ++j) took = take(j, g - panels, tid) || took;
            if (took) spins = 0;
            else if (spins < 2000) detail::cpu_relax();
            else std::this_thread::yield();
          }
          take(k, g, tid);
        }
    });
    slot.rethrow();
    check_interrupt();
  }
}

}  // namespace forgeml::rnn
