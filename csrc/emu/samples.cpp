// The sample kernels under the SIMT emulator, plus kernels whose barriers diverge (undefined
// behaviour on a GPU, so they live only here) for the divergence-detection tests.
#include "cuda/samples.cu"

namespace forgeml::cuda::samples {

__global__ void divergent_barrier_kernel(int kind, float* out) {
  __shared__ float s[1024];
  s[threadIdx.x] = float(threadIdx.x);
  if (kind == 0) {
    if (threadIdx.x % 3 == 0) return;  // these never reach the barrier below
    __syncthreads();
  } else if (kind == 1) {
    if (threadIdx.x % 2) __syncthreads();
    else __syncthreads();  // a different barrier
  } else if (kind == 2) {
    if (threadIdx.x % 32 == 5) return;  // lane 5 never joins the shuffle
    s[threadIdx.x] = __shfl_down_sync(0xffffffffu, s[threadIdx.x], 1);
  } else {
    if (threadIdx.x % 32 < 16) __syncwarp();  // waits for lanes 16..31, which wait below: deadlock
    __syncthreads();
  }
  out[threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
}

void divergent_barrier(int kind, int threads) {
  static thread_local float out[1024];
  FORGEML_LAUNCH(divergent_barrier_kernel, 2, threads, 0, nullptr, kind, out);
  FORGEML_CUDA_CHECK_LAUNCH();
}

}  // namespace forgeml::cuda::samples
