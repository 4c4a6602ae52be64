// Gathers the small node pairs of many trees into one device round trip (tree_gpu_grower.h).
// Each worker thread grows its trees depth first and needs its pair's results before it can go
// on, so it hands the pair to the batcher and blocks; one of the blocked workers then serves every
// pending pair at once (the dispatch callback: one upload, one launch, one download, one sync)
// and wakes their owners. The trees do not depend on how pairs are grouped: each pair's results
// are its own.
//
// When to dispatch: when no worker is doing host work that will soon bring another pair (every
// worker is blocked here, busy with device work of its own, preparing a tree, or done), or when
// the oldest pending pair has waited max_wait (a worker that is slow to get a core). Up to
// `lanes` batches are in flight at once, each with its own buffers (the callback's lane index),
// so one group of workers decides while another's batch runs. Every wait is bounded, so a worker
// that fails or finishes never leaves others blocked; a failed dispatch fails every pair in it.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

namespace forgeml::cuda::tree_gpu {

class Batcher {
 public:
  struct Request {
    const void* item = nullptr;  // the caller's description of its pair
    void* result = nullptr;      // where the callback puts its results
    bool taken = false, done = false;
    std::exception_ptr error;
    std::condition_variable cv;
  };
  // dispatch(lane, batch): serves every request of batch (results written; may throw). Returns
  // the seconds it spent enqueueing device work (the rest of its time is waiting for it).
  using Dispatch = std::function<double(int, const std::vector<Request*>&)>;

  Batcher(int lanes, std::chrono::microseconds max_wait, Dispatch dispatch)
      : max_wait_(max_wait), dispatch_(std::move(dispatch)) {
    for (int i = 0; i < lanes; ++i) free_lanes_.push_back(i);
  }

  int64_t batches() const {
    std::lock_guard<std::mutex> lk(mu_);
    return batches_;
  }
  int64_t served() const {  // pairs
    std::lock_guard<std::mutex> lk(mu_);
    return served_;
  }

  // A worker starts (stops) host work that will bring a pair soon. Balanced by the caller
  // (HostWork below); stopping may start the dispatch that was waiting for it.
  void host_begin() {
    std::lock_guard<std::mutex> lk(mu_);
    ++host_;
  }
  void host_end() {
    std::unique_lock<std::mutex> lk(mu_);
    --host_;
    if (ready(Clock::now())) dispatch(lk);
  }

  // Serves r (the caller is in host work, and still is on return). Returns the seconds this
  // thread spent enqueueing batches; rethrows the error of r's batch.
  double submit(Request& r) {
    std::unique_lock<std::mutex> lk(mu_);
    r.taken = r.done = false, r.error = nullptr;
    if (pending_.empty()) oldest_since_ = Clock::now();
    pending_.push_back(&r);
    --host_;
    double issue_s = 0;
    while (!r.done) {
      if (!r.taken && ready(Clock::now())) {
        issue_s += dispatch(lk);
      } else if (!r.taken && pending_.front() == &r && !free_lanes_.empty()) {
        r.cv.wait_until(lk, oldest_since_ + max_wait_);  // the oldest pair's owner watches the clock
      } else {
        r.cv.wait(lk);  // woken when its batch is done, or (the oldest pair's) when a lane is free
      }
    }
    ++host_;
    if (r.error) std::rethrow_exception(r.error);
    return issue_s;
  }

 private:
  using Clock = std::chrono::steady_clock;

  // A batch may start now: pairs pending, a lane free, and nobody about to bring another pair
  // (or the oldest pending pair waited long enough).
  bool ready(Clock::time_point now) const {
    return !pending_.empty() && !free_lanes_.empty() && (host_ == 0 || now - oldest_since_ >= max_wait_);
  }

  // Takes every pending request and serves it on a free lane, unlocked meanwhile.
  double dispatch(std::unique_lock<std::mutex>& lk) {
    std::vector<Request*> batch;
    batch.swap(pending_);
    for (Request* q : batch) q->taken = true;
    const int lane = free_lanes_.back();
    free_lanes_.pop_back();
    lk.unlock();
    std::exception_ptr error;
    double issue_s = 0;
    try {
      issue_s = dispatch_(lane, batch);
    } catch (...) {
      error = std::current_exception();
    }
    lk.lock();
    free_lanes_.push_back(lane);
    ++batches_, served_ += static_cast<int64_t>(batch.size());
    for (Request* q : batch) {
      q->error = error, q->done = true;
      q->cv.notify_one();
    }
    // pairs that came meanwhile: the owner of the oldest waits for a lane without a clock; now it
    // serves them or watches the clock again
    if (!pending_.empty()) pending_.front()->cv.notify_one();
    return issue_s;
  }

  mutable std::mutex mu_;
  const std::chrono::microseconds max_wait_;
  Dispatch dispatch_;
  std::vector<Request*> pending_;
  std::vector<int> free_lanes_;
  int host_ = 0;  // workers in host work that will bring a pair
  int64_t batches_ = 0, served_ = 0;
  Clock::time_point oldest_since_{};  // when the oldest pending request came
};

// Marks a worker's host work for the batcher (null: no batcher) and ends it on every exit path.
class HostWork {
 public:
  explicit HostWork(Batcher* b) : b_(b) {}
  ~HostWork() {
    try {
      set(false);
    } catch (...) {  // a destructor must not throw: only a failed mutex lock could get here
    }
  }
  HostWork(const HostWork&) = delete;
  HostWork& operator=(const HostWork&) = delete;
  void set(bool on) {
    if (!b_ || on == on_) return;
    on_ = on;
    if (on) b_->host_begin();
    else b_->host_end();
  }

 private:
  Batcher* b_;
  bool on_ = false;
};

}  // namespace forgeml::cuda::tree_gpu
