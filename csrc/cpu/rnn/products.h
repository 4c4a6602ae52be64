// Internal to csrc/cpu/rnn: the family's matrix products in float32 (gemm.h) or in bf16
// (gemm_lowp.h: each operand rounded to bfloat16 once, exact products, float32 sums), chosen per
// call by Forward::bf16. The gate math, states and every elementwise sum stay float32.
#pragma once
#include <algorithm>
#include <cstdint>
#include <optional>

#include "forgeml/gemm.h"
#include "forgeml/gemm_lowp.h"

namespace forgeml::rnn {

// op(B) (K, N) packed once per call for the per-step products, in the chosen precision.
class StepWeights {
 public:
  StepWeights(bool bf16, bool trans_b, int64_t K, int64_t N, const float* B, int64_t ldb) {
    if (bf16) b16_.emplace(trans_b, K, N, B, ldb);
    else f32_.emplace(trans_b, K, N, B, ldb);
  }
  // C = epilogue(A (M, K) @ B + (accumulate ? C : 0)) on the calling thread.
  void run(int64_t M, const float* A, int64_t lda, bool accumulate, float* C, int64_t ldc,
           const gemm::Epilogue& ep = {}) const {
    if (b16_) gemm::gemm_bf16_packed(M, A, lda, *b16_, accumulate, C, ldc, ep, 1);
    else gemm::sgemm_packed(false, M, 1.0f, A, lda, *f32_, accumulate ? 1.0f : 0.0f, C, ldc, ep, 1);
  }

 private:
  std::optional<gemm::PackedB> f32_;
  std::optional<gemm::PackedBf16> b16_;
};

// C = epilogue(op(A) @ op(B)) (C write-only) over all threads; nothing for M or N == 0, the
// epilogue of zeros for K == 0.
inline void product(bool bf16, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                    const float* B, int64_t ldb, float* C, int64_t ldc, const gemm::Epilogue& ep = {}) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // (no features: x may come with lda = 0, which gemm_bf16 rejects) zeros, then the epilogue
    for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
    return gemm::sgemm(false, false, M, N, 0, 1.0f, nullptr, 1, nullptr, N, 1.0f, C, ldc, ep);
  }
  if (bf16) return gemm::gemm_bf16(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, ep);
  gemm::sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc, ep);
}

}  // namespace forgeml::rnn
