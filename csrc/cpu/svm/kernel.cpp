// SVM kernels: GEMM for the dot products, the kernel function in the epilogue.
#include "cpu/svm/kernel.h"

#include <cmath>

#include "forgeml/check.h"
#include "forgeml/parallel.h"

namespace forgeml::svm {

KernelType kernel_from_name(const std::string& name) {
  if (name == "linear") return KernelType::linear;
  if (name == "poly") return KernelType::poly;
  if (name == "rbf") return KernelType::rbf;
  if (name == "sigmoid") return KernelType::sigmoid;
  if (name == "precomputed") return KernelType::precomputed;
  FORGEML_CHECK_ARG(false, "kernel: expected 'linear', 'poly', 'rbf', 'sigmoid' or 'precomputed', got '", name, "'");
  return KernelType::rbf;
}

std::vector<float> row_norms(const float* X, int64_t n, int64_t d) {
  std::vector<float> out(n);
  parallel_for(n, 256, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float* x = X + i * d;
      double s = 0;
      for (int64_t k = 0; k < d; ++k) s += double(x[k]) * x[k];
      out[i] = float(s);
    }
  });
  return out;
}

namespace {

struct EpiCtx {
  KernelParams p;
  const float* norms1;  // indexed by block row (C's row i)
  const float* norms2;  // indexed by column j
};

// The epilogue: C(i, j) holds x1_i . x2_j; replace it by the kernel value.
void kernel_epilogue(void* vctx, int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* c, int64_t ldc) {
  const auto& ctx = *static_cast<const EpiCtx*>(vctx);
  const float g = float(ctx.p.gamma), c0 = float(ctx.p.coef0);
  for (int64_t i = i0; i < i1; ++i) {
    float* r = c + (i - i0) * ldc;
    const int64_t n = j1 - j0;
    switch (ctx.p.type) {
      case KernelType::rbf: {
        const float ni = ctx.norms1[i];
        const float* nj = ctx.norms2 + j0;
        for (int64_t j = 0; j < n; ++j) r[j] = std::exp(-g * std::max(0.f, ni + nj[j] - 2.f * r[j]));
        break;
      }
      case KernelType::poly:
        for (int64_t j = 0; j < n; ++j) r[j] = float(std::pow(double(g * r[j] + c0), ctx.p.degree));
        break;
      case KernelType::sigmoid:
        for (int64_t j = 0; j < n; ++j) r[j] = std::tanh(g * r[j] + c0);
        break;
      default:
        break;
    }
  }
}

gemm::Epilogue make_epilogue(EpiCtx& ctx) {
  gemm::Epilogue e;
  if (ctx.p.type != KernelType::linear) {
    e.fn = kernel_epilogue;
    e.ctx = &ctx;
  }
  return e;
}

}  // namespace

void kernel_block(const KernelParams& p, const float* X1, const float* norms1, int64_t m, const float* X2,
                  const float* norms2, int64_t n, int64_t d, float* K, int64_t ldk, int max_threads) {
  FORGEML_CHECK_ARG(p.type != KernelType::precomputed, "kernel_block: precomputed kernels are not computed");
  if (m == 0 || n == 0) return;
  EpiCtx ctx{p, norms1, norms2};
  gemm::sgemm(false, true, m, n, d, 1.f, X1, d, X2, d, 0.f, K, ldk, make_epilogue(ctx), max_threads);
}

KernelRows::KernelRows(const KernelParams& p, const float* X, int64_t n, int64_t d, int max_threads)
    : p_(p), X_(X), n_(n), d_(d), max_threads_(max_threads) {
  norms_ = row_norms(X, n, d);
  packed_ = std::make_unique<gemm::PackedB>(true, d, n, X, d);
  diag_.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    float v = norms_[i];
    switch (p.type) {
      case KernelType::rbf: v = 1.f; break;
      case KernelType::poly: v = float(std::pow(p.gamma * v + p.coef0, p.degree)); break;
      case KernelType::sigmoid: v = float(std::tanh(p.gamma * v + p.coef0)); break;
      default: break;
    }
    diag_[i] = v;
  }
}

KernelRows::KernelRows(const float* gram, int64_t ld_gram, std::vector<int64_t> idx)
    : n_(int64_t(idx.size())), gram_(gram), ld_gram_(ld_gram), idx_(std::move(idx)) {
  p_.type = KernelType::precomputed;
  diag_.resize(n_);
  for (int64_t i = 0; i < n_; ++i) diag_[i] = gram_[idx_[i] * ld_gram_ + idx_[i]];
}

void KernelRows::row(int64_t i, float* out) const {
  if (p_.type == KernelType::precomputed) {
    const float* g = gram_ + idx_[i] * ld_gram_;
    for (int64_t j = 0; j < n_; ++j) out[j] = g[idx_[j]];
    return;
  }
  EpiCtx ctx{p_, norms_.data() + i, norms_.data()};
  // One row: A is x_i (1, d); the epilogue sees row index 0, so norms1 points at |x_i|^2.
  gemm::sgemm_packed(false, 1, 1.f, X_ + i * d_, d_, *packed_, 0.f, out, n_, make_epilogue(ctx), max_threads_);
}

}  // namespace forgeml::svm
