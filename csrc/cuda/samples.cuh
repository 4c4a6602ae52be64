// Sample kernels that exercise the SIMT emulator (tests only). Compiled by nvcc into _cuda too,
// so they stay valid CUDA; bound only in _emu (numpy in/out: emulated device memory is host memory).
// Declarations only, so binding files need no CUDA header (cudaStream_t is CUstream_st*).
#pragma once
#include <cstdint>

struct CUstream_st;

namespace forgeml::cuda::samples {

// x is (n,). partial is (blocks,): each block's sum. positives (one counter, zeroed by the
// caller) gets the number of x > 0. Uses __shfl_xor_sync, __shfl_down_sync, __shfl_sync and
// __ballot_sync; threads is a multiple of 32, at most 1024.
void block_reduce(const float* x, int64_t n, float* partial, unsigned* positives, int blocks, int threads,
                  CUstream_st* stream);

// codes is (n,) with values in [0, bins); hist is (bins,), accumulated into (zero it first).
// A shared-memory histogram per block (dynamic shared memory, shared atomics), flushed with
// global atomics. remove_barrier_for_test drops the __syncthreads between counting and flushing:
// a deliberately broken variant that the emulator tests must catch.
void histogram(const int32_t* codes, int64_t n, int bins, unsigned* hist, int blocks, int threads,
               bool remove_barrier_for_test, CUstream_st* stream);

// x is (rows, cols) row-major; y = x^T is (cols, rows). 32 x 8 blocks (2-D threadIdx) move
// 32 x 32 tiles through padded shared memory, so reads and writes are both coalesced.
void transpose(const float* x, int64_t rows, int64_t cols, float* y, CUstream_st* stream);

#ifdef FORGEML_EMU
// Emulator-only kernels whose barriers diverge (undefined behaviour on a GPU), defined in
// emu/samples.cpp: kind 0 = some threads exit before a __syncthreads the others wait at,
// 1 = two different __syncthreads, 2 = a shuffle waiting for lanes that exited, 3 = a deadlock
// (half a warp in __syncwarp, the other half in __syncthreads).
void divergent_barrier(int kind, int threads);
#endif

}  // namespace forgeml::cuda::samples
