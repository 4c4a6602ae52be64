// An LRU cache of whole kernel rows (float32, length n), bounded in bytes like libsvm's cache_size.
// Rows are keyed by the sub-problem's sample index; a row stays valid whatever the active set is,
// so unshrinking never recomputes. At least two rows always fit (the SMO pair).
#pragma once
#include <cstdint>
#include <list>
#include <vector>

#include "cpu/svm/kernel.h"

namespace forgeml::svm {

class RowCache {
 public:
  RowCache(const KernelRows& rows, double bytes)
      : rows_(rows), n_(rows.size()), slot_of_(rows.size(), -1) {
    int64_t row_bytes = std::max<int64_t>(1, n_) * int64_t(sizeof(float));
    capacity_ = std::max<int64_t>(2, std::min<int64_t>(n_, int64_t(bytes / double(row_bytes))));
  }

  // K(x_i, .) for the whole sub-problem; the pointer stays valid until two more misses.
  const float* get(int64_t i) {
    int64_t s = slot_of_[i];
    if (s >= 0) {
      lru_.splice(lru_.begin(), lru_, where_[s]);
      ++hits_;
      return data_[s].data();
    }
    if (int64_t(data_.size()) < capacity_) {
      s = int64_t(data_.size());
      data_.emplace_back(n_);
      owner_.push_back(i);
      lru_.push_front(s);
      where_.push_back(lru_.begin());
    } else {
      s = lru_.back();  // evict the least recently used
      slot_of_[owner_[s]] = -1;
      owner_[s] = i;
      lru_.splice(lru_.begin(), lru_, where_[s]);
    }
    slot_of_[i] = s;
    rows_.row(i, data_[s].data());
    ++misses_;
    return data_[s].data();
  }
  int64_t misses() const { return misses_; }
  int64_t hits() const { return hits_; }

 private:
  const KernelRows& rows_;
  int64_t n_, capacity_ = 2, hits_ = 0, misses_ = 0;
  std::vector<int64_t> slot_of_, owner_;
  std::vector<std::vector<float>> data_;
  std::list<int64_t> lru_;
  std::vector<std::list<int64_t>::iterator> where_;
};

}  // namespace forgeml::svm
