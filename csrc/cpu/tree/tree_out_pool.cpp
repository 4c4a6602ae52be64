// The TreeOut pool (tree_out_pool.h): a list under a mutex (trees are returned from the forest's
// copy threads).
#include "cpu/tree/tree_out_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <mutex>
#include <vector>

namespace forgeml::tree {
namespace {

struct Pool {
  std::mutex mu;
  std::vector<TreeOut> trees;
  std::vector<size_t> used;  // each held tree's used bytes
  size_t bytes = 0;
};

Pool& pool() {
  static Pool* p = new Pool;  // never destroyed: trees may come back while statics are torn down
  return *p;
}

template <class V>
size_t used_bytes(const V& v) {
  return v.size() * sizeof(v[0]);
}

// The whole pages inside v's used part madvised free, v emptied (its capacity kept).
template <class V>
void release(V& v) {
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t a = reinterpret_cast<uintptr_t>(v.data()), b = a + used_bytes(v);
  const uintptr_t lo = (a + page - 1) & ~(page - 1), hi = b & ~(page - 1);
#ifdef MADV_FREE
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_FREE);  // a failure only costs faults later
#endif
  v.clear();
}

}  // namespace

TreeOut take_tree_out() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  if (p.trees.empty()) return TreeOut{};
  TreeOut t = std::move(p.trees.back());
  p.trees.pop_back();
  p.bytes -= p.used.back();
  p.used.pop_back();
  return t;
}

void give_tree_out(TreeOut&& t) noexcept {
  const size_t n = used_bytes(t.feature) + used_bytes(t.left) + used_bytes(t.right) + used_bytes(t.thr_bin) +
                   used_bytes(t.nan_left) + used_bytes(t.impurity) + used_bytes(t.weighted_n) + used_bytes(t.value) +
                   used_bytes(t.n_samples);
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mu);
    if (p.bytes + n > kMaxTreeOutBytes) return;  // t is freed on return
  }
  // the madvise calls outside the lock (concurrent returns may pass the limit by a few trees)
  release(t.feature), release(t.left), release(t.right), release(t.thr_bin), release(t.nan_left);
  release(t.impurity), release(t.weighted_n), release(t.value), release(t.n_samples);
  t.depth = 0;
  std::lock_guard<std::mutex> lock(p.mu);
  try {  // called from destructors: out of memory drops the tree instead
    p.trees.reserve(p.trees.size() + 1);
    p.used.reserve(p.used.size() + 1);
  } catch (...) {
    return;
  }
  p.trees.push_back(std::move(t));
  p.used.push_back(n);
  p.bytes += n;
}

size_t tree_out_pool_release() {
  std::vector<TreeOut> drop;  // freed after the lock is released
  size_t bytes = 0;
  {
    std::lock_guard<std::mutex> lock(pool().mu);
    drop.swap(pool().trees);
    pool().used.clear();
    bytes = pool().bytes;
    pool().bytes = 0;
  }
  return bytes;
}

size_t tree_out_pool_trees() {
  std::lock_guard<std::mutex> lock(pool().mu);
  return pool().trees.size();
}

}  // namespace forgeml::tree
