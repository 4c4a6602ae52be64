// Launchers of the bf16 and int8 GEMMs; kernels in gemm_lowp.cuh.
#include "cuda/gemm_lowp.cuh"

namespace forgeml::cuda {

namespace {

dim3 lowp_grid(const char* fn, int64_t M, int64_t N) {
  const int64_t gm = ceil_div(M, kLowpBM), gn = ceil_div(N, kLowpBN);
  FORGEML_CHECK_ARG(gm <= 65535 && gn <= 0x7fffffff, fn, ": M = ", M, ", N = ", N, " is too large");
  return dim3(static_cast<unsigned>(gn), static_cast<unsigned>(gm));
}

void check_sizes(const char* fn, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc, bool ta,
                 bool tb, int activation) {
  FORGEML_CHECK_ARG(M >= 0 && N >= 0 && K >= 0, fn, ": sizes must be >= 0, got M = ", M, ", N = ", N, ", K = ", K);
  FORGEML_CHECK_ARG(activation >= 0 && activation <= 4, fn, ": activation must be 0..4, got ", activation);
  if (M == 0 || N == 0) return;
  FORGEML_CHECK_ARG(lda >= (ta ? M : K), fn, ": lda = ", lda, " is too small");
  FORGEML_CHECK_ARG(ldb >= (tb ? K : N), fn, ": ldb = ", ldb, " is too small");
  FORGEML_CHECK_ARG(ldc >= N, fn, ": ldc = ", ldc, " is below N = ", N);
}

}  // namespace

void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
               int64_t ldb, float* C, int64_t ldc, const float* bias, int activation, CUstream_st* stream) {
  check_sizes("gemm_bf16", M, N, K, lda, ldb, ldc, ta, tb, activation);
  if (M == 0 || N == 0) return;
  const dim3 grid = lowp_grid("gemm_bf16", M, N);
  auto kernel = ta ? (tb ? gemm_bf16_kernel<true, true> : gemm_bf16_kernel<true, false>)
                   : (tb ? gemm_bf16_kernel<false, true> : gemm_bf16_kernel<false, false>);
  FORGEML_LAUNCH(kernel, grid, kLowpThreads, 0, stream, M, N, K, A, lda, B, ldb, C, ldc,
                 BiasActivation{bias, activation});
  FORGEML_CUDA_CHECK_LAUNCH();
}

void gemm_int8(int64_t M, int64_t N, int64_t K, const int8_t* A, int64_t lda, const float* a_scale, const int8_t* B,
               int64_t ldb, const float* b_scale, float* C, int64_t ldc, const float* bias, int activation,
               CUstream_st* stream) {
  check_sizes("gemm_int8", M, N, K, lda, ldb, ldc, false, false, activation);
  if (M == 0 || N == 0) return;
  FORGEML_LAUNCH(gemm_int8_kernel<BiasActivation>, lowp_grid("gemm_int8", M, N), kLowpThreads, 0, stream, M, N, K, A, lda, a_scale, B,
                 ldb, b_scale, C, ldc, BiasActivation{bias, activation});
  FORGEML_CUDA_CHECK_LAUNCH();
}

}  // namespace forgeml::cuda
