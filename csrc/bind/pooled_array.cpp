// The page pool behind pooled_array (pooled_array.h).
#include "bind/pooled_array.h"

#include <atomic>
#include <mutex>
#include <new>
#include <vector>

#include "bind/registry.h"
#include "forgeml/check.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace forgeml::bind {

namespace {

constexpr size_t kPage = 4096;
// Smaller arrays come from malloc (whose own heap serves them well); settable for tests.
std::atomic<size_t> min_pooled{size_t{1} << 20};
constexpr size_t kMaxHeld = size_t{1} << 30;  // freed bytes kept at most; beyond, blocks are unmapped

struct Block {
  void* p;
  size_t capacity;
};

// Never destroyed: arrays may be freed while the process exits, after static destructors ran.
struct Pool {
  std::mutex mu;
  std::vector<Block> held;  // freed blocks, oldest first
  size_t held_bytes = 0;
};
Pool& pool() {
  static Pool* p = new Pool;
  return *p;
}

}  // namespace

#if defined(__linux__)

void* pool_take(size_t bytes, size_t* capacity) {
  if (bytes == 0 || bytes < min_pooled.load()) return nullptr;
  const size_t want = (bytes + kPage - 1) / kPage * kPage;
  Block b{nullptr, 0};
  {
    Pool& P = pool();
    std::lock_guard<std::mutex> lock(P.mu);
    // the smallest block that holds `want`; else the largest (grown below: only its tail is fresh)
    int fit = -1, big = -1;
    for (int i = 0; i < static_cast<int>(P.held.size()); ++i) {
      const size_t c = P.held[i].capacity;
      if (c >= want && (fit < 0 || c < P.held[fit].capacity)) fit = i;
      if (big < 0 || c > P.held[big].capacity) big = i;
    }
    const int pick = fit >= 0 ? fit : big;
    if (pick >= 0) {
      b = P.held[pick];
      P.held.erase(P.held.begin() + pick);
      P.held_bytes -= b.capacity;
    }
  }
  if (b.p && b.capacity != want && (b.capacity < want || b.capacity > 2 * want)) {
    // resize in place or by moving its page tables (no copy); a shrink returns the tail's pages
    void* q = mremap(b.p, b.capacity, want, MREMAP_MAYMOVE);
    if (q == MAP_FAILED) {
      munmap(b.p, b.capacity);
      b.p = nullptr;
    } else {
      b = {q, want};
    }
  }
  if (!b.p) {
    void* q = mmap(nullptr, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED) throw std::bad_alloc();
    b = {q, want};
  }
  *capacity = b.capacity;
  return b.p;
}

void pool_give(void* block, size_t capacity) {
  // the pages stay mapped for the next array, but the kernel may reclaim them instead of swapping
  madvise(block, capacity, MADV_FREE);
  std::vector<Block> drop;
  {
    Pool& P = pool();
    std::lock_guard<std::mutex> lock(P.mu);
    P.held.push_back({block, capacity});
    P.held_bytes += capacity;
    while (P.held_bytes > kMaxHeld) {
      drop.push_back(P.held.front());
      P.held_bytes -= P.held.front().capacity;
      P.held.erase(P.held.begin());
    }
  }
  for (const Block& b : drop) munmap(b.p, b.capacity);
}

#else

void* pool_take(size_t, size_t*) { return nullptr; }
void pool_give(void*, size_t) {}

#endif

size_t pool_release() {
  std::vector<Block> drop;
  size_t bytes = 0;
  {
    Pool& P = pool();
    std::lock_guard<std::mutex> lock(P.mu);
    drop.swap(P.held);
    bytes = P.held_bytes;
    P.held_bytes = 0;
  }
#if defined(__linux__)
  for (const Block& b : drop) munmap(b.p, b.capacity);
#endif
  return bytes;
}

size_t pool_held_bytes() {
  Pool& P = pool();
  std::lock_guard<std::mutex> lock(P.mu);
  return P.held_bytes;
}

namespace {
forgeml::bind::Register reg{[](py::module_& m) {
  m.def("pooled_array_held_bytes", &pool_held_bytes, "Bytes of freed large arrays' pages kept for reuse.");
  m.def("pooled_array_release", &pool_release,
        "Unmaps the freed large arrays' pages kept for reuse; returns their bytes.");
  m.def(
      "pooled_array_min_bytes",
      [](int64_t bytes) {
        FORGEML_CHECK_ARG(bytes >= 0, "bytes: expected >= 0, got ", bytes);
        return static_cast<int64_t>(min_pooled.exchange(static_cast<size_t>(bytes)));
      },
      py::arg("bytes"), "Sets the size from which arrays are pooled (tests); returns the previous one.");
}};
}  // namespace

}  // namespace forgeml::bind
