// SVM kernels: GEMM for the dot products, the kernel function in the epilogue.
#include "cpu/svm/kernel.h"

#include <algorithm>

#include <bit>
#include <chrono>
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

struct Timer {
  double& total;
  int64_t& count;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  ~Timer() {
    total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++count;
  }
};

// exp(x) for x <= 0 in plain arithmetic so the loop vectorises (libm's expf does not):
// x = n ln2 + r with |r| <= ln2 / 2, exp(r) by a degree-6 Taylor polynomial (relative error
// below 2e-7), 2^n through the exponent bits. Underflows to 0 below -87.
inline float exp_nonpos(float x) {
  x = std::max(x, -87.0f);
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (x * 1.44269504088896341f + shifter) - shifter;
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
  float p = 1.f / 720;
  p = p * r + 1.f / 120;
  p = p * r + 1.f / 24;
  p = p * r + 1.f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  const int32_t bits = (int32_t(n) + 127) << 23;
  return p * std::bit_cast<float>(bits);
}

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
        for (int64_t j = 0; j < n; ++j) r[j] = exp_nonpos(-g * std::max(0.f, ni + nj[j] - 2.f * r[j]));
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
  Timer tm{t_row, n_row};
  if (p_.type == KernelType::precomputed) {
    const float* g = gram_ + idx_[i] * ld_gram_;
    for (int64_t j = 0; j < n_; ++j) out[j] = g[idx_[j]];
    return;
  }
  EpiCtx ctx{p_, norms_.data() + i, norms_.data()};
  // One row: A is x_i (1, d); the epilogue sees row index 0, so norms1 points at |x_i|^2.
  gemm::sgemm_packed(false, 1, 1.f, X_ + i * d_, d_, *packed_, 0.f, out, n_, make_epilogue(ctx), max_threads_);
}

void KernelRows::set_active(const int64_t* idx, int64_t m) {
  if (m >= n_) {
    active_.clear();
    active_packed_.reset();
    return;
  }
  active_.assign(idx, idx + m);
  std::sort(active_.begin(), active_.end());  // keeps the gathered rows in memory order
  if (p_.type == KernelType::precomputed) return;
  std::vector<float> Xa(size_t(m * d_));
  active_norms_.resize(m);
  for (int64_t t = 0; t < m; ++t) {
    std::copy_n(X_ + active_[t] * d_, d_, Xa.data() + t * d_);
    active_norms_[t] = norms_[active_[t]];
  }
  active_packed_ = std::make_unique<gemm::PackedB>(true, d_, m, Xa.data(), d_);
}

void KernelRows::row_active(int64_t i, float* out) const {
  if (active_.empty()) return row(i, out);
  Timer tm{t_active, n_active};
  const int64_t m = int64_t(active_.size());
  if (p_.type == KernelType::precomputed) {
    const float* g = gram_ + idx_[i] * ld_gram_;
    for (int64_t t = 0; t < m; ++t) out[active_[t]] = g[idx_[active_[t]]];
    return;
  }
  scratch_.resize(m);
  // the epilogue indexes norms1 by C's row (0) and norms2 by column (position in the subset)
  EpiCtx ctx{p_, norms_.data() + i, active_norms_.data()};
  gemm::sgemm_packed(false, 1, 1.f, X_ + i * d_, d_, *active_packed_, 0.f, scratch_.data(), m, make_epilogue(ctx),
                     max_threads_);
  for (int64_t t = 0; t < m; ++t) out[active_[t]] = scratch_[t];
}

void KernelRows::weighted_sum(const int64_t* targets, int64_t nt, const int64_t* sources, const double* w,
                              int64_t ns, double* out) const {
  std::fill(out, out + nt, 0.0);
  if (nt == 0 || ns == 0) return;
  Timer tm{t_wsum, n_wsum};
  if (p_.type == KernelType::precomputed) {
    for (int64_t t = 0; t < nt; ++t) {
      const float* g = gram_ + idx_[targets[t]] * ld_gram_;
      double acc = 0;
      for (int64_t s = 0; s < ns; ++s) acc += w[s] * double(g[idx_[sources[s]]]);
      out[t] = acc;
    }
    return;
  }
  constexpr int64_t kT = 2048, kS = 512;  // a (kT, kS) block of K is 4 MB
  std::vector<float> Xt(size_t(std::min(nt, kT) * d_)), Xs(size_t(std::min(ns, kS) * d_));
  std::vector<float> nT(std::min(nt, kT)), nS(std::min(ns, kS)), K(size_t(std::min(nt, kT) * std::min(ns, kS)));
  for (int64_t t0 = 0; t0 < nt; t0 += kT) {
    const int64_t mt = std::min(kT, nt - t0);
    for (int64_t t = 0; t < mt; ++t) {
      std::copy_n(X_ + targets[t0 + t] * d_, d_, Xt.data() + t * d_);
      nT[t] = norms_[targets[t0 + t]];
    }
    for (int64_t s0 = 0; s0 < ns; s0 += kS) {
      const int64_t ms = std::min(kS, ns - s0);
      for (int64_t s = 0; s < ms; ++s) {
        std::copy_n(X_ + sources[s0 + s] * d_, d_, Xs.data() + s * d_);
        nS[s] = norms_[sources[s0 + s]];
      }
      kernel_block(p_, Xt.data(), nT.data(), mt, Xs.data(), nS.data(), ms, d_, K.data(), ms, max_threads_);
      parallel_for(mt, 64, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) {
          const float* k = K.data() + t * ms;
          double acc = 0;
          for (int64_t s = 0; s < ms; ++s) acc += w[s0 + s] * double(k[s]);
          out[t0 + t] += acc;
        }
      }, max_threads_);
    }
  }
}

}  // namespace forgeml::svm
