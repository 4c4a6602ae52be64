// The one way kernels are launched and errors checked, under nvcc and under the SIMT emulator
// (g++ with FORGEML_EMU defined, see emu/simt.h). Kernel rules: launch only through
// FORGEML_LAUNCH, dynamic shared memory only through FORGEML_DYNAMIC_SHARED, no implicitly
// warp-synchronous code (use __syncwarp and the *_sync intrinsics).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#ifdef FORGEML_EMU
#include "emu/simt.h"
#else
#include <cuda_runtime.h>
#define FORGEML_LAUNCH(kernel, grid, block, smem, stream, ...) \
  kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)
#define FORGEML_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif

namespace forgeml::cuda {

inline void check(cudaError_t err, const char* what, const char* file, int line) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error: ") + cudaGetErrorString(err) + " (" + what +
                             " at " + file + ":" + std::to_string(line) + ")");
}

constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Host-side queries, defined in runtime.cu (real CUDA only).
int runtime_version();
std::pair<bool, std::string> device_status();

// Stream-ordered device scratch for a launcher's temporaries (256-byte aligned). On a GPU it comes
// from a memory pool of this library's own that keeps up to 256 MiB cached between calls, so a
// call does not map fresh memory after every synchronize (runtime.cu); where the device or driver
// has no memory pools (or the pool fails), from cudaMalloc, and cudaFree then waits for the device
// (pooled says which). In the emulator from host memory. Throws on failure.
#ifdef FORGEML_EMU
inline void* scratch_alloc(size_t bytes, cudaStream_t, bool& pooled) {
  void* p = nullptr;
  pooled = false;
  if (cudaMalloc(&p, bytes) != cudaSuccess) throw std::runtime_error("CUDA error: out of memory (scratch)");
  return p;
}
inline void scratch_free(void* p, cudaStream_t, bool) noexcept { cudaFree(p); }
#else
void* scratch_alloc(size_t bytes, cudaStream_t stream, bool& pooled);
void scratch_free(void* p, cudaStream_t stream, bool pooled) noexcept;
#endif

// One scratch allocation, freed on the stream when it goes out of scope (also when a launch throws).
class Scratch {
 public:
  Scratch(size_t bytes, cudaStream_t stream) : s_(stream), p_(bytes ? scratch_alloc(bytes, stream, pooled_) : nullptr) {}
  ~Scratch() {
    if (p_) scratch_free(p_, s_, pooled_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  void* get() const { return p_; }

 private:
  cudaStream_t s_;
  bool pooled_ = false;  // declared before p_: set by scratch_alloc in p_'s initializer
  void* p_;
};

}  // namespace forgeml::cuda

#define FORGEML_CUDA_CHECK(expr) ::forgeml::cuda::check((expr), #expr, __FILE__, __LINE__)
// After every launch: configuration errors show up here, execution errors at the next sync.
#define FORGEML_CUDA_CHECK_LAUNCH() FORGEML_CUDA_CHECK(cudaGetLastError())
