// The plain loops: sgemm_reference (float64 accumulation) and the scalar activations. Kept as
// the oracle in tests and the path FORGEML_ISA=reference selects.
#include <cmath>

#include "cpu/gemm/kernels.h"
#include "forgeml/check.h"
#include "forgeml/cpu_features.h"
#include "forgeml/gemm.h"

namespace forgeml::gemm {

namespace detail {

void activation_scalar(Activation act, float* x, int64_t n) {
  switch (act) {
    case Activation::none: return;
    case Activation::relu:
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] < 0.f ? 0.f : x[i];  // NaN stays NaN (Keras: NaN loss)
      return;
    case Activation::sigmoid:
      for (int64_t i = 0; i < n; ++i) x[i] = 1.f / (1.f + std::exp(-x[i]));
      return;
    case Activation::tanh:
      for (int64_t i = 0; i < n; ++i) x[i] = std::tanh(x[i]);
      return;
    case Activation::gelu:  // exact form: x * Phi(x)
      for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.f + std::erf(x[i] * 0.70710678118654752f));
      return;
  }
  throw std::invalid_argument(concat("activation: unknown value ", static_cast<int>(act)));
}

void bias_act_scalar(const float* bias, Activation act, float* c, int64_t ldc, int64_t m, int64_t n) {
  for (int64_t i = 0; i < m; ++i, c += ldc) {
    if (bias)
      for (int64_t j = 0; j < n; ++j) c[j] += bias[j];
    activation_scalar(act, c, n);
  }
}

// The reference table: the scalar activations; its tiles and blocking are the portable ones, which a
// reference sgemm never uses (it runs sgemm_reference below as a whole).
void kernel_reference(Kernel& k) {
  kernel_portable(k);
  k.act = activation_scalar;
  k.bias_act = bias_act_scalar;
  k.name = "sgemm_reference";
}

}  // namespace detail

void apply_activation(Activation act, float* x, int64_t n) { detail::kernel_for(active_isa()).act(act, x, n); }

void sgemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                     int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
                     const Epilogue& ep) {
  for (int64_t i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        double a = trans_a ? A[k * lda + i] : A[i * lda + k];
        double b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        acc += a * b;
      }
      double v = alpha * acc;
      if (beta != 0.f) v += static_cast<double>(beta) * c[j];
      if (ep.bias) v += ep.bias[j];
      c[j] = static_cast<float>(v);
    }
    detail::activation_scalar(ep.act, c, N);
  }
  if (ep.fn && M > 0 && N > 0) ep.fn(ep.ctx, 0, M, 0, N, C, ldc);
}

}  // namespace forgeml::gemm
