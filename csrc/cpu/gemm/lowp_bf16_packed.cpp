// The bf16 GEMM on a B packed once (gemm_lowp.h: PackedBf16, gemm_bf16_packed): the recurrent
// kernels' per-step product, where converting B on every step would cost as much as the product.
#include <algorithm>
#include <memory>

#include "cpu/gemm/kernels.h"
#include "cpu/gemm/lowp.h"
#include "cpu/gemm/lowp_run.h"
#include "forgeml/check.h"
#include "forgeml/gemm_lowp.h"

namespace forgeml::gemm {

struct PackedBf16::Data {
  detail::Words b;  // panels, or (reference ISA) the rounded op(B) row-major, one bf16 per word
  explicit Data(size_t words) : b(words) {}
};

struct PackedBf16Access {
  static const uint32_t* words(const PackedBf16& B) { return B.data_->b.get(); }
};

PackedBf16::PackedBf16(bool trans_b, int64_t K, int64_t N, const float* B, int64_t ldb)
    : K_(K), N_(N), isa_(active_isa()) {
  FORGEML_CHECK_ARG(K >= 0 && N >= 0, "pack_bf16: sizes must be >= 0, got K=", K, " N=", N);
  FORGEML_CHECK_ARG(ldb >= std::max<int64_t>(1, trans_b ? K : N), "pack_bf16: ldb=", ldb, " is too small");
  FORGEML_CHECK_ARG(K * N == 0 || B, "pack_bf16: null matrix pointer");
  if (isa_ == Isa::reference) {
    data_ = std::make_shared<Data>(static_cast<size_t>(K * N));
    uint32_t* d = data_->b.get();
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < N; ++j) d[k * N + j] = detail::to_bf16(trans_b ? B[j * ldb + k] : B[k * ldb + j]);
    return;
  }
  const detail::LowpKernels& k = detail::lowp_kernels_for(isa_, 0);
  const int64_t Kg = (K + 1) / 2, npad = (N + k.nr - 1) / k.nr * k.nr;
  data_ = std::make_shared<Data>(static_cast<size_t>(Kg * npad));
  if (K > 0 && N > 0) detail::pack_b_bf16(k, trans_b, K, N, B, ldb, data_->b.get(), 0);
}

void gemm_bf16_packed(int64_t M, const float* A, int64_t lda, const PackedBf16& B, bool accumulate, float* C,
                      int64_t ldc, const Epilogue& ep, int max_threads) {
  const int64_t N = B.n(), K = B.k();
  detail::check_common("gemm_bf16_packed", M, N, K, lda, std::max<int64_t>(1, N), ldc, false, false, A, &B, C);
  FORGEML_CHECK_ARG(B.isa() == active_isa(), "gemm_bf16_packed: B was packed for ", isa_name(B.isa()),
                    " but the active ISA is ", isa_name(active_isa()), "; pack it again");
  if (M == 0 || N == 0) return;
  const uint32_t* bw = PackedBf16Access::words(B);
  if (B.isa() == Isa::reference || K == 0) {  // the oracle: exact products of the rounded values, float64 sums
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = accumulate ? C[i * ldc + j] : 0.0;
        for (int64_t k = 0; k < K; ++k)
          s += double(detail::from_bf16(detail::to_bf16(A[i * lda + k]))) * detail::from_bf16(bw[k * N + j]);
        C[i * ldc + j] = static_cast<float>(s);
      }
    return detail::epilogue_all(ep, C, ldc, M, N);
  }
  const detail::LowpKernels& k = detail::lowp_kernels_for(B.isa(), 0);
  max_threads = detail::lowp_threads(M, N, K, max_threads);
  const int64_t Kg = (K + 1) / 2, npad = (N + k.nr - 1) / k.nr * k.nr;
  const int64_t as = detail::padded_rows(Kg);
  detail::Words a(static_cast<size_t>(M * as));
  detail::Lowp L{
      &k, &detail::kernel_for(B.isa()), M, N, Kg, npad, a.get(), bw, nullptr, nullptr, nullptr, C, ldc, &ep, accumulate,
      as};
  uint32_t* ap = a.get();
  auto convert = [&](int64_t r0, int64_t r1) { detail::pack_a_bf16_rows(k, false, K, A, lda, ap, as, r0, r1); };
  detail::lowp_run(L, max_threads, detail::range_fn(convert));
}

}  // namespace forgeml::gemm
