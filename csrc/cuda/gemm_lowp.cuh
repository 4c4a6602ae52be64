// CUDA bf16 and int8 GEMMs: the contract of forgeml/gemm_lowp.h on device memory.
//   gemm_bf16: op(A) (M, K), op(B) (K, N) float32 (transposes as in gemm.cuh), rounded to bf16
//     (nearest even) as they are staged in shared memory; the products are exact in float32 and
//     summed with float32 FMAs: C = act(bf16(op(A)) @ bf16(op(B)) + bias).
//   gemm_int8: A (M, K) and B (K, N) int8 row-major, a_scale (M), b_scale (N) float32:
//     C[i, j] = act(a_scale[i] b_scale[j] sum_k A[i, k] B[k, j] + bias[j]), int32 sums by dp4a.
//
// One 64 x 64 tile per block of 256 threads, each thread 4 x 4 outputs strided by 16 (so a
// warp's shared-memory reads hit distinct banks). The math is plain per-thread register code:
// the SIMT emulator (forgeml._emu) runs it as it is. Tensor-core versions (mma.sync on bf16 /
// s8) are not written yet: WMMA fragments have a warp-collective register layout the emulator
// does not model, and this tile is the tested contract they would have to meet.
#pragma once
#include <cstdint>

struct CUstream_st;

namespace forgeml::cuda {

// bias: length N or null; activation as in gemm.cuh (0 none, 1 relu, 2 sigmoid, 3 tanh, 4 gelu).
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
               const float* B, int64_t ldb, float* C, int64_t ldc, const float* bias, int activation,
               CUstream_st* stream);
void gemm_int8(int64_t M, int64_t N, int64_t K, const int8_t* A, int64_t lda, const float* a_scale, const int8_t* B,
               int64_t ldb, const float* b_scale, float* C, int64_t ldc, const float* bias, int activation,
               CUstream_st* stream);

}  // namespace forgeml::cuda

#if defined(__CUDACC__) || defined(FORGEML_EMU)
#include "cuda/gemm.cuh"

namespace forgeml::cuda {

constexpr int kLowpBM = 64, kLowpBN = 64, kLowpBK = 32, kLowpThreads = 256;

// float32 rounded to the nearest bf16 (ties to even), returned as a float32; NaN stays NaN.
__device__ __forceinline__ float round_bf16(float x) {
  uint32_t u = __float_as_uint(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return x;
  u += 0x7fffu + ((u >> 16) & 1u);
  return __uint_as_float(u & 0xffff0000u);
}

// sum of the four signed byte products of a and b, plus c (the dp4a instruction).
__device__ __forceinline__ int dot4_i8(int a, int b, int c) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 610
  return __dp4a(a, b, c);
#else
#pragma unroll
  for (int q = 0; q < 4; ++q)
    c += static_cast<int>(static_cast<int8_t>(a >> (8 * q))) * static_cast<int>(static_cast<int8_t>(b >> (8 * q)));
  return c;
#endif
}

// ---------------------------------------------------------------- kernels

// grid (ceil(N / 64), ceil(M / 64)), block 256.
template <bool kTransA, bool kTransB>
__global__ void __launch_bounds__(kLowpThreads)
    gemm_bf16_kernel(int64_t M, int64_t N, int64_t K, const float* __restrict__ A, int64_t lda,
                     const float* __restrict__ B, int64_t ldb, float* __restrict__ C, int64_t ldc,
                     BiasActivation epilogue) {
  constexpr int BM = kLowpBM, BN = kLowpBN, BK = kLowpBK;
  __shared__ float As[BK][BM + 1];  // op(A) tile, k-major, already rounded to bf16
  __shared__ float Bs[BK][BN + 1];
  const int64_t m0 = int64_t(blockIdx.y) * BM, n0 = int64_t(blockIdx.x) * BN;
  const int tr = threadIdx.x / 16, tc = threadIdx.x % 16;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += BK) {
    for (int q = threadIdx.x; q < BM * BK; q += kLowpThreads) {
      // consecutive threads walk the contiguous dimension of the global matrix
      const int kk = kTransA ? q / BM : q % BK, mm = kTransA ? q % BM : q / BK;
      const int64_t gi = m0 + mm, gk = k0 + kk;
      As[kk][mm] = gi < M && gk < K ? round_bf16(kTransA ? A[gk * lda + gi] : A[gi * lda + gk]) : 0.0f;
      const int kb = kTransB ? q % BK : q / BN, nb = kTransB ? q / BK : q % BN;
      const int64_t gj = n0 + nb, gkb = k0 + kb;
      Bs[kb][nb] = gj < N && gkb < K ? round_bf16(kTransB ? B[gj * ldb + gkb] : B[gkb * ldb + gj]) : 0.0f;
    }
    __syncthreads();
#pragma unroll 8
    for (int k = 0; k < BK; ++k) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = As[k][tr + 16 * i], b[i] = Bs[k][tc + 16 * i];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t row = m0 + tr + 16 * i;
    if (row >= M) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t col = n0 + tc + 16 * j;
      if (col < N) C[row * ldc + col] = epilogue(row, col, acc[i][j]);
    }
  }
}

// grid (ceil(N / 64), ceil(M / 64)), block 256. Shared tiles hold 4 consecutive k per int.
// Epilogue: as in gemm.cuh, applied to the dequantized value.
template <class Epilogue>
__global__ void __launch_bounds__(kLowpThreads)
    gemm_int8_kernel(int64_t M, int64_t N, int64_t K, const int8_t* __restrict__ A, int64_t lda,
                     const float* __restrict__ a_scale, const int8_t* __restrict__ B, int64_t ldb,
                     const float* __restrict__ b_scale, float* __restrict__ C, int64_t ldc, Epilogue epilogue) {
  constexpr int BM = kLowpBM, BN = kLowpBN, BK = kLowpBK, G = BK / 4;
  __shared__ int As[G][BM + 1];
  __shared__ int Bs[G][BN + 1];
  const int64_t m0 = int64_t(blockIdx.y) * BM, n0 = int64_t(blockIdx.x) * BN;
  const int tr = threadIdx.x / 16, tc = threadIdx.x % 16;
  int acc[4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += BK) {
    for (int q = threadIdx.x; q < BM * G; q += kLowpThreads) {
      const int g = q % G, mm = q / G;  // A: 4 consecutive bytes of one row
      const int64_t gi = m0 + mm;
      uint32_t w = 0;
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        const int64_t gk = k0 + 4 * g + b;
        const uint32_t v = gi < M && gk < K ? static_cast<uint8_t>(A[gi * lda + gk]) : 0u;
        w |= v << (8 * b);
      }
      As[g][mm] = static_cast<int>(w);
      const int nb = q % BN, gb = q / BN;  // B: one column, 4 rows
      const int64_t gj = n0 + nb;
      uint32_t wb = 0;
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        const int64_t gk = k0 + 4 * gb + b;
        const uint32_t v = gj < N && gk < K ? static_cast<uint8_t>(B[gk * ldb + gj]) : 0u;
        wb |= v << (8 * b);
      }
      Bs[gb][nb] = static_cast<int>(wb);
    }
    __syncthreads();
#pragma unroll
    for (int g = 0; g < G; ++g) {
      int a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = As[g][tr + 16 * i], b[i] = Bs[g][tc + 16 * i];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = dot4_i8(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t row = m0 + tr + 16 * i;
    if (row >= M) continue;
    const float rs = a_scale[row];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t col = n0 + tc + 16 * j;
      if (col < N) C[row * ldc + col] = epilogue(row, col, static_cast<float>(acc[i][j]) * (rs * b_scale[col]));
    }
  }
}

}  // namespace forgeml::cuda
#endif
