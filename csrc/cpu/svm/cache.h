// An LRU cache of kernel rows (float32), bounded in bytes like libsvm's cache_size.
//
// Rows are laid out on the solver's current "space": a sorted subset of the samples (its active
// set), position s holding K(x_i, x_space[s]); the full set is space 0. A cached row computed on
// an older space that contains the current one is still good: on a hit it is compacted in place
// (a gather, far cheaper than recomputing); rows of a space that does not contain the current one
// are recomputed (they may become usable again after the solver grows and shrinks its active set
// back inside them). At least two rows always fit (the SMO pair).
//
// The cache grows to its budget only as rows prove useful: past 64 rows a miss takes a fresh
// slot when the least recently used row has been hit again after its own iteration, and
// otherwise recycles it. Early on, SMO touches two new full rows per iteration and seldom comes
// back to them; filling the whole budget with them cost more in fresh memory than it saved.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <list>
#include <memory>
#include <new>
#include <vector>

#include "cpu/svm/kernel.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif


namespace forgeml::svm {

class RowCache {
 public:
  RowCache(KernelRows& rows, double bytes) : rows_(rows), n_(rows.size()), slot_of_(rows.size(), -1) {
    const int64_t row_bytes = std::max<int64_t>(1, n_) * int64_t(sizeof(float));
    capacity_ = std::max<int64_t>(2, std::min<int64_t>(n_, int64_t(bytes / double(row_bytes))));
    spaces_.push_back(Space{{}, true});
    // One arena, a full row's room per slot, touched only as far as rows are written.
    arena_bytes_ = (size_t(capacity_) * size_t(row_bytes) + kPage - 1) / kPage * kPage;
    arena_.reset(static_cast<float*>(std::aligned_alloc(kPage, arena_bytes_)));
    if (!arena_) throw std::bad_alloc();
  }

  // Rows on samples idx[0..m) (sorted) from now on, or on all of them when idx is null.
  void set_space(const int64_t* idx, int64_t m) {
    std::vector<uint8_t> used(spaces_.size(), 0);  // spaces no cached row is laid out on are dropped
    for (const Slot& sl : slots_) used[sl.space] = 1;
    for (size_t s = 1; s < spaces_.size(); ++s)
      if (!used[s]) spaces_[s] = Space{};
    const bool all = !idx || m >= n_;
    for (size_t s = 1; s < spaces_.size(); ++s) {
      Space& sp = spaces_[s];
      sp.alive = !all && !sp.pos.empty();
      for (int64_t t = 0; t < m && sp.alive; ++t) sp.alive = sp.pos[idx[t]] >= 0;
    }
    if (all) {
      cur_ = 0;
      idx_.clear();
      rows_.set_active(nullptr, n_);
      return;
    }
    Space sp{std::vector<int32_t>(n_, -1), true};
    for (int64_t t = 0; t < m; ++t) sp.pos[idx[t]] = int32_t(t);
    cur_ = int64_t(spaces_.size());
    spaces_.push_back(std::move(sp));
    rows_.set_active(idx, m);
    idx_.assign(idx, idx + m);
  }

  // K(x_i, .) on the current space. The pointer stays valid until two more misses.
  const float* get(int64_t i) {
    int64_t s = slot_of_[i];
    if (s >= 0) {
      lru_.splice(lru_.begin(), lru_, where_[s]);
      Slot& sl = slots_[s];
      if (misses_ - sl.born >= 2) sl.reused = true;  // hit again after its own iteration
      if (sl.space == cur_) {
        ++hits_;
        return sl.data;
      }
      if (spaces_[sl.space].alive) {  // a superset of the current space: compact in place
        float* d = sl.data;
        if (sl.space == 0) {
          for (size_t t = 0; t < idx_.size(); ++t) d[t] = d[idx_[t]];
        } else {
          const int32_t* pos = spaces_[sl.space].pos.data();
          for (size_t t = 0; t < idx_.size(); ++t) d[t] = d[pos[idx_[t]]];
        }
        sl.space = cur_;
        ++hits_;
        return d;
      }
    } else if (int64_t(slots_.size()) < capacity_ &&
               (int64_t(slots_.size()) < kMinSlots || slots_[lru_.back()].reused)) {
      s = int64_t(slots_.size());
      slots_.push_back(Slot{arena_.get() + s * n_, 0, i, 0, false});
      if (rows_.active_count() == n_) prefault(size_t(s + 1) * size_t(n_) * sizeof(float));
      lru_.push_front(s);
      where_.push_back(lru_.begin());
    } else {
      s = lru_.back();  // evict the least recently used
      slot_of_[slots_[s].owner] = -1;
      slots_[s].owner = i;
      slots_[s].reused = false;
      lru_.splice(lru_.begin(), lru_, where_[s]);
    }
    slot_of_[i] = s;
    Slot& sl = slots_[s];
    rows_.row_active(i, sl.data);
    sl.space = cur_;
    sl.born = ++misses_;
    return sl.data;
  }
  int64_t misses() const { return misses_; }
  int64_t hits() const { return hits_; }

 private:
  // Full rows fill fresh memory fast (80 KB per miss at 20k samples): fault it in 2 MB at a time
  // with one madvise call rather than a trap per 4 KB page (~10% of a solve). Huge pages would
  // do it too, but with the kernel's usual defrag=madvise a fault may stall on compaction.
  void prefault(size_t upto) {
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
    if (upto <= populated_ || !populate_ok_) return;
    const size_t end = std::min(arena_bytes_, (upto + kChunk - 1) / kChunk * kChunk);
    populate_ok_ = madvise(reinterpret_cast<char*>(arena_.get()) + populated_, end - populated_,
                           MADV_POPULATE_WRITE) == 0;  // older kernels: EINVAL, plain faults
    populated_ = end;
#else
    (void)upto;
#endif
  }

  struct Space {
    std::vector<int32_t> pos;  // sample -> position (-1: absent); empty for space 0 and dropped spaces
    bool alive = false;        // contains the current space (so its rows can be compacted)
  };
  struct Slot {
    float* data;  // n floats in the arena
    int64_t space;
    int64_t owner;
    int64_t born;  // misses_ when computed
    bool reused;   // hit in a later iteration than its own
  };
  KernelRows& rows_;
  int64_t n_, capacity_ = 2, hits_ = 0, misses_ = 0, cur_ = 0;
  std::vector<int64_t> slot_of_;
  std::vector<Space> spaces_;
  std::vector<int64_t> idx_;  // the current space's samples (when not space 0)
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  static constexpr size_t kPage = 4096, kChunk = size_t(2) << 20;
  static constexpr int64_t kMinSlots = 64;
  std::unique_ptr<float, Free> arena_;
  size_t arena_bytes_ = 0, populated_ = 0;
  bool populate_ok_ = true;
  std::vector<Slot> slots_;
  std::list<int64_t> lru_;
  std::vector<std::list<int64_t>::iterator> where_;
};

}  // namespace forgeml::svm
