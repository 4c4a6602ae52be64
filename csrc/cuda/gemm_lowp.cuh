// CUDA bf16 and int8 GEMMs: the contract of forgeml/gemm_lowp.h on device memory.
//   gemm_bf16: op(A) (M, K), op(B) (K, N) float32 (transposes as in gemm.cuh), rounded to bf16
//     (nearest even) as they are staged (SIMT) or packed (tensor cores); the products are exact in
//     float32 and summed in float32: C = act(bf16(op(A)) @ bf16(op(B)) + bias).
//   gemm_int8: A (M, K) and B (K, N) int8 row-major, a_scale (M), b_scale (N) float32:
//     C[i, j] = act(a_scale[i] b_scale[j] sum_k A[i, k] B[k, j] + bias[j]), exact int32 sums.
//
// Both run on tensor cores on sm_80 and later (gemm_mma.cuh: the operands packed into scratch as
// words along K, then mma.sync m16n8k16 bf16 / m16n8k32 s8 on 128 x 128 tiles), otherwise on SIMT
// kernels: one 64 x 64 tile per block of 256 threads, each thread 4 x 4 outputs strided by 16
// (int8 by dp4a). The emulator (forgeml._emu) runs all four: the mma fragments and ldmatrix
// through warp shuffles, cp.async as a plain copy (mma.cuh).
#pragma once
#include <cstdint>

struct CUstream_st;

namespace forgeml::cuda {

enum class LowpKernel { automatic, simt, tensor_cores };  // automatic: tensor cores where the device has them

// True when the current device has bf16 / int8 tensor cores (compute capability 8.0 or later).
bool tensor_cores();

// bias: length N or null; activation as in gemm.cuh (0 none, 1 relu, 2 sigmoid, 3 tanh, 4 gelu).
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
               const float* B, int64_t ldb, float* C, int64_t ldc, const float* bias, int activation,
               CUstream_st* stream, LowpKernel which = LowpKernel::automatic);
void gemm_int8(int64_t M, int64_t N, int64_t K, const int8_t* A, int64_t lda, const float* a_scale, const int8_t* B,
               int64_t ldb, const float* b_scale, float* C, int64_t ldc, const float* bias, int activation,
               CUstream_st* stream, LowpKernel which = LowpKernel::automatic);

}  // namespace forgeml::cuda
