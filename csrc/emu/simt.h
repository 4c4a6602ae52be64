// SIMT emulator: the CUDA subset forgeml kernels use, compiled by g++ (C++20) and run on the CPU.
//
// Fiber mode (default, forgeml._emu): each CUDA thread is a ucontext fiber; a block's fibers run
// on one OS thread, resumed in a selectable order (forward / reversed / shuffled), so a run is
// deterministic and a missing barrier gives wrong results. Blocks may run in parallel on OpenMP
// threads, so __shared__ is a per-OS-thread static.
// Thread mode (FORGEML_EMU_THREADS=1, the TSan executable): one OS thread per CUDA thread and
// blocks one after another, so ThreadSanitizer sees every shared-memory race a barrier would fix.
//
// Barriers are generation counters. A barrier reached by only some threads of a block (one
// exited, or two different __syncthreads) and any deadlock raise std::runtime_error instead of
// hanging. Everything waits through one function, Block::wait, the only mode-specific part.
// The CUDA language surface (qualifiers, types, intrinsics, atomics, runtime calls) is in
// emu/cuda_api.h; this file is the execution model behind it.
#pragma once
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef FORGEML_EMU_THREADS
#include <condition_variable>
#include <thread>
#else
#include <sys/mman.h>
#include <ucontext.h>
#endif

#include "emu/cuda_api.h"

// ---------------------------------------------------------------- blocks, barriers, warps
namespace forgeml::emu {

enum class Order { forward, reversed, shuffled };
inline std::atomic<Order> thread_order{Order::forward};
inline std::atomic<uint64_t> shuffle_seed{0};
inline std::atomic<int> block_threads{0};  // OS threads running blocks in fiber mode (0 = OpenMP's)

struct Aborted {};  // unwinds the threads of a block that failed

#if defined(FORGEML_EMU_THREADS) && defined(__SANITIZE_THREAD__)
}  // namespace forgeml::emu
extern "C" {
void AnnotateIgnoreSyncBegin(const char*, int);
void AnnotateIgnoreSyncEnd(const char*, int);
void AnnotateIgnoreReadsBegin(const char*, int);
void AnnotateIgnoreReadsEnd(const char*, int);
void AnnotateIgnoreWritesBegin(const char*, int);
void AnnotateIgnoreWritesEnd(const char*, int);
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
}
namespace forgeml::emu {
// TSan must not see the emulator's own mutex: it would order a thread after every thread that
// took it before (a late waker after threads that already finished), far more than CUDA
// promises, and hide the very races this mode is for. So the bookkeeping under the mutex is
// hidden from TSan, and barriers declare only CUDA's edges: every arrival happens before every
// departure.
struct TsanHidden {
  TsanHidden() {
    AnnotateIgnoreSyncBegin(__FILE__, __LINE__);
    AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
    AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
  }
  ~TsanHidden() {
    AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
    AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
    AnnotateIgnoreSyncEnd(__FILE__, __LINE__);
  }
};
inline void tsan_release(void* p) {  // called under the hidden lock: un-ignore just this edge
  AnnotateIgnoreSyncEnd(__FILE__, __LINE__);
  __tsan_release(p);
  AnnotateIgnoreSyncBegin(__FILE__, __LINE__);
}
inline void tsan_acquire(void* p) { __tsan_acquire(p); }  // called after it
#else
struct TsanHidden {};
inline void tsan_release(void*) {}
inline void tsan_acquire(void*) {}
#endif

struct Block {
  int n = 0;                              // CUDA threads in the block
  std::vector<unsigned char> dyn_shared;  // FORGEML_DYNAMIC_SHARED storage
  std::string error;                      // the first failure, raised by launch()
  bool aborted = false;
  uint64_t progress = 0;  // bumped on every arrival and exit: a pass without it is a deadlock
  // __syncthreads
  int arrived = 0, exited = 0;
  unsigned gen = 0;
  int bar_counter = -1, bar_line = 0;
  const char* bar_file = "";
  char edge[2];  // TSan sync objects for even and odd barrier generations
  // warp exchange: double-buffered by generation parity, so one barrier per exchange suffices
  struct Warp {
    uint64_t slot[2][32];
    unsigned existing = 0, exited = 0, arrived = 0, mask = 0, gen = 0;
    char edge[2];
  };
  std::vector<Warp> warps;
#ifdef FORGEML_EMU_THREADS
  std::mutex mu;
  std::condition_variable cv;
  struct Lock {
    TsanHidden hidden;  // first in, last out
    std::unique_lock<std::mutex> lk;
  };
  Lock lock() { return Lock{{}, std::unique_lock<std::mutex>(mu)}; }
  void wake() { cv.notify_all(); }
#else
  struct Lock {};  // one OS thread per block: nothing to lock
  Lock lock() { return {}; }
  void wake() {}
#endif
  template <class Pred> void wait(Lock& lk, Pred done);  // mode-specific, below

  [[noreturn]] void fail(const std::string& what) {
    if (error.empty()) error = what;
    aborted = true;
    wake();
    throw Aborted{};
  }
};

inline thread_local Block* current = nullptr;

inline int linear_tid() { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }
inline std::string where() {
  return "thread (" + std::to_string(threadIdx.x) + "," + std::to_string(threadIdx.y) + "," +
         std::to_string(threadIdx.z) + ") of block (" + std::to_string(blockIdx.x) + "," +
         std::to_string(blockIdx.y) + "," + std::to_string(blockIdx.z) + ")";
}
inline void* dynamic_shared() { return current->dyn_shared.data(); }

inline void sync_threads(int counter, int line, const char* file) {
  Block& b = *current;
  char* edge = nullptr;
  {
    auto lk = b.lock();
    if (b.aborted) throw Aborted{};
    if (b.exited)
      b.fail("divergent __syncthreads at " + std::string(file) + ":" + std::to_string(line) + ": " +
             std::to_string(b.exited) + " thread(s) of the block already exited");
    if (b.arrived == 0) {
      b.bar_counter = counter, b.bar_line = line, b.bar_file = file;
    } else if (b.bar_counter != counter) {
      b.fail("divergent __syncthreads: " + where() + " is at line " + std::to_string(line) +
             " while other threads wait at line " + std::to_string(b.bar_line) + " of " + file);
    }
    edge = &b.edge[b.gen & 1];
    tsan_release(edge);
    ++b.progress;
    if (++b.arrived == b.n) {
      b.arrived = 0, ++b.gen;
      b.wake();
    } else {
      unsigned g = b.gen;
      b.wait(lk, [&] { return b.gen != g; });
    }
  }
  tsan_acquire(edge);
}

// A thread finished the kernel: a barrier that still counts on it would never open.
inline void thread_exit() {
  Block& b = *current;
  [[maybe_unused]] auto lk = b.lock();
  ++b.exited, ++b.progress;
  if (b.aborted) return;
  Block::Warp& w = b.warps[linear_tid() / 32];
  unsigned bit = 1u << (linear_tid() % 32);
  w.exited |= bit;
  if (b.arrived > 0) {
    b.error = "divergent __syncthreads at " + std::string(b.bar_file) + ":" + std::to_string(b.bar_line) + ": " +
              where() + " exited while other threads wait there";
  } else if (w.arrived && (w.mask & bit)) {
    b.error = "warp-synchronous call: " + where() + " exited while lanes of its mask wait for it";
  } else {
    return;
  }
  b.aborted = true;
  b.wake();
}

// Every lane in `mask` writes v and waits for the others; then read(slots, lanes, lane) makes
// its result from the values written (slots[l] holds lane l's bytes).
template <class T, class Read>
auto warp_exchange(unsigned mask, T v, Read read) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>);
  Block& b = *current;
  int lane = linear_tid() % 32;
  Block::Warp& w = b.warps[linear_tid() / 32];
  char* edge = nullptr;
  auto out = [&] {
    auto lk = b.lock();
    if (b.aborted) throw Aborted{};
    unsigned need = mask & w.existing;
    if (!(need >> lane & 1u)) b.fail("warp-synchronous call by " + where() + ", whose lane is not in the mask");
    if (need & w.exited) b.fail("warp-synchronous call by " + where() + " waits for a lane that exited");
    if (w.arrived == 0) w.mask = need;
    else if (w.mask != need) b.fail("warp-synchronous calls with different masks in one warp (" + where() + ")");
    unsigned buf = w.gen & 1u;
    edge = &w.edge[buf];
    tsan_release(edge);
    w.slot[buf][lane] = 0;
    std::memcpy(&w.slot[buf][lane], &v, sizeof(T));
    ++b.progress;
    w.arrived |= 1u << lane;
    if (w.arrived == need) {
      w.arrived = 0, ++w.gen;
      b.wake();
    } else {
      unsigned g = w.gen;
      b.wait(lk, [&] { return w.gen != g; });
    }
    return read(static_cast<const uint64_t*>(w.slot[buf]), need, lane);
  }();
  tsan_acquire(edge);
  return out;
}

// Shuffle: lane l gets the value of lane src(l); outside the participating lanes (undefined in
// CUDA) it keeps its own.
template <class T, class Src>
T warp_shuffle(unsigned mask, T v, Src src) {
  return warp_exchange(mask, v, [&](const uint64_t* slots, unsigned need, int lane) {
    int s = src(lane);
    if (s < 0 || s > 31 || !(need >> s & 1u)) return v;
    T out;
    std::memcpy(&out, &slots[s], sizeof(T));
    return out;
  });
}

#ifdef FORGEML_EMU_THREADS
template <class Pred> void Block::wait(Lock& lk, Pred done) {
  cv.wait(lk.lk, [&] { return aborted || done(); });
  if (aborted) throw Aborted{};
}
#else
// ---------------------------------------------------------------- fiber mode
struct Fiber {
  ucontext_t ctx;
  int tid = 0;
  bool done = false;
};
inline thread_local ucontext_t* scheduler_ctx = nullptr;
inline thread_local Fiber* running = nullptr;
inline thread_local const std::function<void()>* kernel_body = nullptr;

template <class Pred> void Block::wait(Lock&, Pred done) {
  while (!aborted && !done()) swapcontext(&running->ctx, scheduler_ctx);  // let the others run
  if (aborted) throw Aborted{};
}

// Stacks with a guard page below, kept per OS thread across launches (mmap is slow) and unmapped
// when the thread exits: threads that come and go (host worker threads, their OpenMP teams) would
// otherwise leak two mappings per fiber until mmap and pthread_create fail (vm.max_map_count).
constexpr size_t kStack = 64 * 1024, kPage = 4096;
struct StackCache {
  std::vector<char*> stacks;
  ~StackCache() {
    for (char* p : stacks) munmap(p - kPage, kStack + kPage);
  }
};
inline thread_local StackCache stack_cache;
inline char* stack(int i) {
  auto& stacks = stack_cache.stacks;
  while (static_cast<int>(stacks.size()) <= i) {
    void* p = mmap(nullptr, kStack + kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("emulator: cannot map a fiber stack");
    mprotect(p, kPage, PROT_NONE);  // a stack overflow faults instead of corrupting a neighbour
    stacks.push_back(static_cast<char*>(p) + kPage);
  }
  return stacks[i];
}

inline void set_tid(int t) {
  threadIdx = {t % blockDim.x, t / blockDim.x % blockDim.y, t / (blockDim.x * blockDim.y)};
}

inline void fiber_main() {
  try {
    (*kernel_body)();
  } catch (Aborted&) {
  } catch (std::exception& e) {
    if (current->error.empty()) current->error = e.what();
    current->aborted = true;
  } catch (...) {  // nothing may unwind past a fiber's first frame
    if (current->error.empty()) current->error = "unknown exception";
    current->aborted = true;
  }
  thread_exit();
  running->done = true;
}  // returns to uc_link, the scheduler

inline void run_block(Block& b, const std::function<void()>& body, uint64_t block_index) {
  std::vector<Fiber> fibers(b.n);
  std::vector<int> order(b.n);
  std::iota(order.begin(), order.end(), 0);
  Order o = thread_order.load();
  if (o == Order::reversed) std::reverse(order.begin(), order.end());
  if (o == Order::shuffled) {
    std::mt19937_64 rng(shuffle_seed.load() * 0x9E3779B97F4A7C15ull + block_index);
    std::shuffle(order.begin(), order.end(), rng);
  }
  ucontext_t sched;
  scheduler_ctx = &sched, kernel_body = &body;
  for (int t = 0; t < b.n; ++t) {
    Fiber& f = fibers[t];
    f.tid = t;
    getcontext(&f.ctx);
    f.ctx.uc_stack = {stack(t), 0, kStack};
    f.ctx.uc_link = &sched;
    makecontext(&f.ctx, fiber_main, 0);
  }
  for (int live = b.n; live > 0;) {
    uint64_t before = b.progress;
    for (int t : order) {
      if (fibers[t].done) continue;
      running = &fibers[t];
      set_tid(t);
      swapcontext(&sched, &fibers[t].ctx);
      live -= fibers[t].done;
    }
    if (live > 0 && b.progress == before && !b.aborted) {  // nobody moved: all wait forever
      b.error = "deadlock: every live thread waits at a barrier or warp-synchronous call that the others never reach";
      b.aborted = true;  // the next pass unwinds them
    }
  }
}
#endif

inline void launch(dim3 grid, dim3 block, size_t smem, cudaStream_t, const std::function<void()>& body) {
  uint64_t nthreads = uint64_t{block.x} * block.y * block.z;
  uint64_t nblocks = uint64_t{grid.x} * grid.y * grid.z;
  if (nthreads == 0 || nthreads > 1024 || block.z > 64 || grid.y > 65535 || grid.z > 65535 || nblocks == 0 ||
      smem > 227 * 1024) {
    last_error = cudaErrorInvalidConfiguration;
    return;
  }
#ifdef FORGEML_EMU_THREADS
  // one kernel at a time whichever host thread launches it (the GPU tree grower's workers do):
  // __shared__ is a plain static in this mode
  static std::mutex one_kernel_mu;
  std::lock_guard<std::mutex> one_kernel(one_kernel_mu);
#endif
  std::string error;
  std::mutex error_mu;
  auto one_block = [&](uint64_t i) {
    Block b;
    b.n = static_cast<int>(nthreads);
    b.dyn_shared.assign(smem + 16, 0xFF);  // NaN bytes: reading before writing shows up
    b.warps.resize((b.n + 31) / 32);
    for (int t = 0; t < b.n; ++t) b.warps[t / 32].existing |= 1u << (t % 32);
    current = &b;
    blockDim = block, gridDim = grid;
    blockIdx = {unsigned(i % grid.x), unsigned(i / grid.x % grid.y), unsigned(i / (uint64_t{grid.x} * grid.y))};
#ifdef FORGEML_EMU_THREADS
    std::vector<std::thread> threads;
    for (int t = 0; t < b.n; ++t)
      threads.emplace_back([&, t, bi = blockIdx] {
        current = &b;
        blockDim = block, gridDim = grid, blockIdx = bi;
        threadIdx = {t % block.x, t / block.x % block.y, t / (block.x * block.y)};
        try {
          body();
        } catch (Aborted&) {
        } catch (...) {  // an exception leaving a std::thread would terminate the process
          auto lk = b.lock();
          if (b.error.empty()) {
            try {
              throw;
            } catch (std::exception& e) {
              b.error = e.what();
            } catch (...) {
              b.error = "unknown exception";
            }
          }
          b.aborted = true;
          b.wake();
        }
        thread_exit();
      });
    for (auto& t : threads) t.join();
#else
    run_block(b, body, i);
#endif
    current = nullptr;
    if (!b.error.empty()) {
      std::lock_guard<std::mutex> lk(error_mu);
      if (error.empty()) error = b.error;
    }
  };
#if defined(_OPENMP) && !defined(FORGEML_EMU_THREADS)
  int threads = block_threads.load() > 0 ? block_threads.load() : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (nblocks > 1 && threads > 1)
  for (uint64_t i = 0; i < nblocks; ++i) one_block(i);
#else
  for (uint64_t i = 0; i < nblocks; ++i) one_block(i);
#endif
  if (!error.empty()) throw std::runtime_error("emulated kernel failed: " + error);
}

}  // namespace forgeml::emu

// ---------------------------------------------------------------- warp intrinsics
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  forgeml::emu::warp_exchange(mask, 0, [](const uint64_t*, unsigned, int) { return 0; });
}
template <class T> T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  return forgeml::emu::warp_shuffle(mask, v, [=](int l) { return (l & ~(width - 1)) + (src & (width - 1)); });
}
template <class T> T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return forgeml::emu::warp_shuffle(mask, v, [=](int l) { return l % width + int(delta) < width ? l + int(delta) : l; });
}
template <class T> T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return forgeml::emu::warp_shuffle(mask, v, [=](int l) { return l % width >= int(delta) ? l - int(delta) : l; });
}
template <class T> T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  return forgeml::emu::warp_shuffle(mask, v, [=](int l) { return (l ^ lane_mask) / width == l / width ? l ^ lane_mask : l; });
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
  return forgeml::emu::warp_exchange(mask, pred ? 1 : 0, [](const uint64_t* slots, unsigned need, int) {
    unsigned bits = 0;
    for (int l = 0; l < 32; ++l) bits |= (need >> l & 1u) && slots[l] ? 1u << l : 0u;
    return bits;
  });
}

// kernel may be a function or a function pointer (take a template instantiation's address first).
#define FORGEML_LAUNCH(kernel, grid, block, smem, stream, ...) \
  ::forgeml::emu::launch(dim3(grid), dim3(block), (smem), (stream), [&] { kernel(__VA_ARGS__); })
