// The time loop shared by forward and backward: one OpenMP team per chunk of steps, each thread
// owning parts k = tid, tid + threads, ...; every phase of a step ends in a barrier. Exceptions
// are collected (the barriers are still reached) and rethrown after the team; Ctrl-C is checked
// between chunks.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "forgeml/parallel.h"

namespace forgeml::rnn {

template <class... Phases>
void run_steps(int64_t parts, int64_t T, bool reverse, Phases&&... phases) {
  const int64_t chunk = 32;
  int threads = static_cast<int>(std::min<int64_t>(parts, num_threads()));
  for (int64_t s0 = 0; s0 < T; s0 += chunk) {
    int64_t s1 = std::min(T, s0 + chunk);
    ExceptionSlot slot;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
      int tid = omp_get_thread_num(), team = omp_get_num_threads();
      for (int64_t s = s0; s < s1; ++s) {
        int64_t t = reverse ? T - 1 - s : s;
        auto one = [&](auto& phase) {
          for (int64_t k = tid; k < parts; k += team) slot.run([&] { phase(k, t); });
          if (team > 1) {
#pragma omp barrier
          }
        };
        (one(phases), ...);
      }
    }
    slot.rethrow();
    check_interrupt();
  }
}

}  // namespace forgeml::rnn
