// TEMPORARY: weak stand-ins for gemm.h until branch `gemm` is merged (its strong symbols win).
#include <algorithm>
#include <vector>

#include "forgeml/gemm.h"
#include "forgeml/check.h"
#include <cmath>

namespace forgeml::gemm {

struct PackedB::Impl {
  int64_t K, N;
  std::vector<float> b;  // (K, N)
};

__attribute__((weak)) PackedB::PackedB(bool tb, int64_t K, int64_t N, const float* B, int64_t ldb)
    : impl_(new Impl{K, N, std::vector<float>(K * N)}) {
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) impl_->b[k * N + n] = tb ? B[n * ldb + k] : B[k * ldb + n];
}
__attribute__((weak)) PackedB::~PackedB() = default;
__attribute__((weak)) PackedB::PackedB(PackedB&&) noexcept = default;
__attribute__((weak)) int64_t PackedB::K() const { return impl_->K; }
__attribute__((weak)) int64_t PackedB::N() const { return impl_->N; }

static void run(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const Epilogue& ep) {
#pragma omp parallel for if (M * N * K > 100000)
  for (int64_t i = 0; i < M; ++i) {
    std::vector<float> acc(N, 0.0f);
    for (int64_t k = 0; k < K; ++k) {
      float a = ta ? A[k * lda + i] : A[i * lda + k];
      if (tb)
        for (int64_t j = 0; j < N; ++j) acc[j] += a * B[j * ldb + k];
      else
        for (int64_t j = 0; j < N; ++j) acc[j] += a * B[k * ldb + j];
    }
    float* c = C + i * ldc;
    for (int64_t j = 0; j < N; ++j) {
      float v = alpha * acc[j] + (beta == 0.0f ? 0.0f : beta * c[j]);
      if (ep.bias) v += ep.bias[j];
      c[j] = v;
    }
    if (ep.act == Activation::tanh) for (int64_t j = 0; j < N; ++j) c[j] = std::tanh(c[j]);
    if (ep.fn) ep.fn(ep.ctx, i, i + 1, 0, N, c, ldc);
  }
}

__attribute__((weak)) void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
                                 const Epilogue& ep, int) {
  run(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
}

__attribute__((weak)) void sgemm_packed(bool ta, int64_t M, float alpha, const float* A, int64_t lda,
                                        const PackedB& B, float beta, float* C, int64_t ldc, const Epilogue& ep,
                                        int) {
  const auto& p = B.impl();
  run(ta, false, M, p.N, p.K, alpha, A, lda, p.b.data(), p.N, beta, C, ldc, ep);
}

}  // namespace forgeml::gemm
