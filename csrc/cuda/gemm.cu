// The SGEMM with forgeml.ops.matmul's epilogue (bias, activation); kernels in gemm_tile.cuh.
#include "cuda/gemm_tile.cuh"

namespace forgeml::cuda {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const float* bias, int activation,
           CUstream_st* stream, int tile) {
  FORGEML_CHECK_ARG(activation >= 0 && activation <= 4, "sgemm: activation must be 0..4, got ", activation);
  sgemm_launch(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, BiasActivation{bias, activation},
               stream, tile);
}

}  // namespace forgeml::cuda
