// An LRU cache of kernel rows (float32, indexed by sample, length n), bounded in bytes like
// libsvm's cache_size. A row is either full or covers the solver's active set at the time it was
// computed; active sets only shrink within an epoch, so a partial row stays valid until the
// solver grows the active set again (new_epoch()). At least two rows always fit (the SMO pair).
#pragma once
#include <cstdint>
#include <list>
#include <vector>

#include "cpu/svm/kernel.h"

namespace forgeml::svm {

class RowCache {
 public:
  RowCache(KernelRows& rows, double bytes) : rows_(rows), n_(rows.size()), slot_of_(rows.size(), -1) {
    int64_t row_bytes = std::max<int64_t>(1, n_) * int64_t(sizeof(float));
    capacity_ = std::max<int64_t>(2, std::min<int64_t>(n_, int64_t(bytes / double(row_bytes))));
  }

  // K(x_i, .) valid on the current active set, or on all samples when `full`. The pointer stays
  // valid until two more misses.
  const float* get(int64_t i, bool full = false) {
    int64_t s = slot_of_[i];
    if (s >= 0) {
      lru_.splice(lru_.begin(), lru_, where_[s]);
      Slot& sl = slots_[s];
      if (sl.full || (!full && sl.epoch == epoch_)) {
        ++hits_;
        return sl.data.data();
      }
    } else if (int64_t(slots_.size()) < capacity_) {
      s = int64_t(slots_.size());
      slots_.push_back(Slot{std::vector<float>(n_), -1, false, i});
      lru_.push_front(s);
      where_.push_back(lru_.begin());
    } else {
      s = lru_.back();  // evict the least recently used
      slot_of_[slots_[s].owner] = -1;
      slots_[s].owner = i;
      lru_.splice(lru_.begin(), lru_, where_[s]);
    }
    slot_of_[i] = s;
    Slot& sl = slots_[s];
    const bool all = full || rows_.active_count() == n_;
    if (all) rows_.row(i, sl.data.data()); else rows_.row_active(i, sl.data.data());
    sl.full = all;
    sl.epoch = epoch_;
    ++misses_;
    return sl.data.data();
  }
  void new_epoch() { ++epoch_; }
  int64_t misses() const { return misses_; }
  int64_t hits() const { return hits_; }

 private:
  struct Slot {
    std::vector<float> data;
    int64_t epoch;
    bool full;
    int64_t owner;
  };
  KernelRows& rows_;
  int64_t n_, capacity_ = 2, hits_ = 0, misses_ = 0, epoch_ = 0;
  std::vector<int64_t> slot_of_;
  std::vector<Slot> slots_;
  std::list<int64_t> lru_;
  std::vector<std::list<int64_t>::iterator> where_;
};

}  // namespace forgeml::svm
