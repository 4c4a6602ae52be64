// CUDA SGEMM: the contract of forgeml/gemm.h, on device memory.
//   op(A) is (M, K): A is (M, K) with lda >= K, or (K, M) with lda >= M when trans_a.
//   op(B) is (K, N): B is (K, N) with ldb >= N, or (N, K) with ldb >= K when trans_b.
//   C is (M, N) with ldc >= N. All row-major float32.
//   C(i, j) = epilogue(i, j, alpha * (op(A) @ op(B))(i, j) + beta * C(i, j))
// beta == 0 means C is write-only (it may hold NaN). K == 0 gives epilogue(beta * C).
//
// Declarations only (plain C++, for the binding files); the kernel templates are in gemm_tile.cuh.
#pragma once
#include <cstdint>

struct CUstream_st;  // cudaStream_t is CUstream_st*

namespace forgeml::cuda {

// bias: length N or null. activation: forgeml::gemm::Activation as int (0 none, 1 relu,
// 2 sigmoid, 3 tanh, 4 gelu with erf). tile: 0 picks by size; 64 or 128 forces one (tests).
// Invalid sizes throw std::invalid_argument; CUDA errors throw std::runtime_error.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const float* bias, int activation,
           CUstream_st* stream, int tile = 0);

}  // namespace forgeml::cuda
