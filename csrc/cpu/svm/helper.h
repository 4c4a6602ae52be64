// A second thread for the SMO solver's long kernel rows (tens of microseconds each, thousands of
// them): an OpenMP region per row waits at its join for a worker the OS may not have scheduled,
// which on a busy machine costs milliseconds per row. Here the caller and the helper claim chunks
// from one atomic counter, so the caller never waits for a helper that has not started: it only
// waits for chunks the helper is already running. Between jobs the helper spins ~100 us (rows
// come every few tens of microseconds), then sleeps until the next one. When the helper runs
// under a quarter of the chunks (its core is busy with other work), it is left asleep for a while.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace forgeml::svm {

class RowHelper {
 public:
  using Fn = void (*)(void* ctx, int64_t chunk);

  RowHelper() : th_([this] { loop(); }) {}
  ~RowHelper() {
    stop_.store(true);
    job_.fetch_add(kGen);  // a new generation with no chunks wakes and stops the helper
    job_.notify_one();
    th_.join();
  }
  double share() const { return total_ > 0 ? double(helped_) / double(total_) : 0.0; }  // of the chunks
  RowHelper(const RowHelper&) = delete;
  RowHelper& operator=(const RowHelper&) = delete;

  // fn(ctx, c) for every c in [0, n), on this thread and the helper; returns when all are done.
  void run(Fn fn, void* ctx, int64_t n) {
    if (off_ > 0) {  // the helper has not been getting a core: do it all here for a while
      --off_;
      for (int64_t c = 0; c < n; ++c) fn(ctx, c);
      return;
    }
    fn_.store(fn, std::memory_order_relaxed);
    ctx_.store(ctx, std::memory_order_relaxed);
    n_.store(n, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    gen_ += kGen;
    job_.store(gen_);  // seq_cst with the load of sleeping_ (the helper does the mirror image)
    if (sleeping_.load()) job_.notify_one();
    const int64_t mine = work(gen_);
    while (mine + done_.load(std::memory_order_acquire) < n) pause();
    total_ += n;
    helped_ += n - mine;
    // every 32 jobs: a helper that ran under a quarter of the chunks is sharing its core with
    // other work; stop waking it for the next 512 jobs rather than compete for the CPU
    win_total_ += n;
    win_helper_ += n - mine;
    if (++win_jobs_ == 32) {
      if (4 * win_helper_ < win_total_) off_ = 512;
      win_jobs_ = win_total_ = win_helper_ = 0;
    }
  }

 private:
  static constexpr uint64_t kGen = uint64_t(1) << 32;  // job_ = generation << 32 | next chunk

  static void pause() {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }

  // Claims and runs chunks of generation `gen` until none are left; returns how many it ran.
  int64_t work(uint64_t gen) {
    int64_t ran = 0;
    uint64_t cur = job_.load(std::memory_order_acquire);
    while ((cur & ~(kGen - 1)) == gen && int64_t(cur & (kGen - 1)) < n_.load(std::memory_order_relaxed)) {
      if (!job_.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel)) continue;
      // the claim pins this generation's parameters until the chunk is counted done
      fn_.load(std::memory_order_relaxed)(ctx_.load(std::memory_order_relaxed), int64_t(cur & (kGen - 1)));
      ++ran;
      cur = job_.load(std::memory_order_acquire);
    }
    return ran;
  }

  void loop() {
    uint64_t seen = job_.load() & ~(kGen - 1);
    auto idle_since = std::chrono::steady_clock::now();
    for (int spins = 0;;) {
      const uint64_t v = job_.load(std::memory_order_acquire);
      if (stop_.load(std::memory_order_relaxed)) return;
      if ((v & ~(kGen - 1)) != seen) {
        seen = v & ~(kGen - 1);
        if (const int64_t ran = work(seen)) done_.fetch_add(ran, std::memory_order_release);
        idle_since = std::chrono::steady_clock::now();
        spins = 0;
        continue;
      }
      pause();
      if (++spins % 64 == 0 && std::chrono::steady_clock::now() - idle_since > std::chrono::microseconds(100)) {
        sleeping_.store(true);
        job_.wait(v);
        sleeping_.store(false);
        idle_since = std::chrono::steady_clock::now();
      }
    }
  }

  std::atomic<uint64_t> job_{0};
  std::atomic<Fn> fn_{nullptr};
  std::atomic<void*> ctx_{nullptr};
  std::atomic<int64_t> n_{0}, done_{0};
  std::atomic<bool> sleeping_{false}, stop_{false};
  int64_t total_ = 0, helped_ = 0;  // chunks run, and by the helper (also steers the helper)
  int64_t off_ = 0, win_jobs_ = 0, win_total_ = 0, win_helper_ = 0;
  uint64_t gen_ = 0;  // the caller's last generation
  std::thread th_;    // last: starts once everything above is initialised
};

}  // namespace forgeml::svm
