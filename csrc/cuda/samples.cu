// Sample kernels for the SIMT emulator's tests: a warp-shuffle block reduction and a
// shared-memory histogram (see samples.cuh for the contracts).
#include "cuda/launch.cuh"
#include "cuda/samples.cuh"

namespace forgeml::cuda::samples {

constexpr unsigned kFullMask = 0xffffffffu;

// Butterfly: every lane ends with the warp's sum.
__device__ __forceinline__ float warp_allsum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

// Tree: only lane 0 ends with the sum.
__device__ __forceinline__ float warp_sum_to_lane0(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(kFullMask, v, offset);
  return v;
}

// ---------------------------------------------------------------- kernels

// x (n,) -> partial (gridDim.x,), *positives += count(x > 0). blockDim.x = 32 * warps.
__global__ void block_reduce_kernel(const float* x, int64_t n, float* partial, unsigned* positives) {
  __shared__ float warp_sums[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  float v = 0.0f;
  unsigned count = 0;
  // The loop bound is uniform over the block, so every lane takes part in every ballot.
  for (int64_t base = int64_t(blockIdx.x) * blockDim.x; base < n; base += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = base + threadIdx.x;
    const float xi = i < n ? x[i] : 0.0f;
    v += xi;
    count += __popc(__ballot_sync(kFullMask, xi > 0.0f));
  }
  v = warp_allsum(v);
  if (lane == 0) {
    warp_sums[warp] = v;
    atomicAdd(positives, count);
  }
  __syncthreads();
  if (warp == 0) {
    float s = lane < warps ? warp_sums[lane] : 0.0f;
    s = warp_sum_to_lane0(s);
    s = __shfl_sync(kFullMask, s, 0);  // broadcast, so any lane may write
    if (lane == 31) partial[blockIdx.x] = s;  // not lane 0: proves the broadcast
  }
}

// codes (n,) in [0, bins) -> hist (bins,) += counts. Dynamic shared memory: bins counters.
template <bool kRemoveBarrierForTest>
__global__ void histogram_kernel(const int32_t* codes, int64_t n, int bins, unsigned* hist) {
  FORGEML_DYNAMIC_SHARED(unsigned, local);
  for (int b = threadIdx.x; b < bins; b += blockDim.x) local[b] = 0;
  __syncthreads();
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    atomicAdd(&local[codes[i]], 1u);
  if constexpr (!kRemoveBarrierForTest) __syncthreads();  // test sample: without it, flushes race the counts
  for (int b = threadIdx.x; b < bins; b += blockDim.x)
    if (local[b]) atomicAdd(&hist[b], local[b]);
}

// x (rows, cols) -> y (cols, rows). grid (ceil(cols / 32), ceil(rows / 32)), block (32, 8).
__global__ void transpose_kernel(const float* x, int64_t rows, int64_t cols, float* y) {
  __shared__ float tile[32][33];  // +1 column: the column reads below hit 32 different banks
  const int64_t r0 = int64_t(blockIdx.y) * 32, c0 = int64_t(blockIdx.x) * 32;
  for (int i = threadIdx.y; i < 32; i += blockDim.y)
    if (r0 + i < rows && c0 + threadIdx.x < cols) tile[i][threadIdx.x] = x[(r0 + i) * cols + c0 + threadIdx.x];
  __syncthreads();
  for (int i = threadIdx.y; i < 32; i += blockDim.y)
    if (c0 + i < cols && r0 + threadIdx.x < rows) y[(c0 + i) * rows + r0 + threadIdx.x] = tile[threadIdx.x][i];
}

// ---------------------------------------------------------------- launchers

void block_reduce(const float* x, int64_t n, float* partial, unsigned* positives, int blocks, int threads,
                  CUstream_st* stream) {
  FORGEML_LAUNCH(block_reduce_kernel, blocks, threads, 0, stream, x, n, partial, positives);
  FORGEML_CUDA_CHECK_LAUNCH();
}

void histogram(const int32_t* codes, int64_t n, int bins, unsigned* hist, int blocks, int threads,
               bool remove_barrier_for_test, CUstream_st* stream) {
  const size_t smem = size_t(bins) * sizeof(unsigned);
  auto kernel = remove_barrier_for_test ? histogram_kernel<true> : histogram_kernel<false>;
  FORGEML_LAUNCH(kernel, blocks, threads, smem, stream, codes, n, bins, hist);
  FORGEML_CUDA_CHECK_LAUNCH();
}

void transpose(const float* x, int64_t rows, int64_t cols, float* y, CUstream_st* stream) {
  if (rows == 0 || cols == 0) return;
  const dim3 grid(unsigned(ceil_div(cols, 32)), unsigned(ceil_div(rows, 32))), block(32, 8);
  FORGEML_LAUNCH(transpose_kernel, grid, block, 0, stream, x, rows, cols, y);
  FORGEML_CUDA_CHECK_LAUNCH();
}

}  // namespace forgeml::cuda::samples
