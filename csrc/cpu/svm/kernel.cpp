// SVM kernels: GEMM for the dot products, the kernel function in the epilogue.
#include "cpu/svm/kernel.h"

#include <algorithm>

#include <bit>
#include <chrono>
#include <cmath>

#include "cpu/svm/kernels.h"
#include "cpu/svm/kernel_precise.h"
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

#ifdef FORGEML_PROFILE  // -DFORGEML_PROFILE=ON: time the row, active-set and weighted-sum passes
struct Timer {
  double& total;
  int64_t& count;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  ~Timer() {
    total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++count;
  }
};
#else
struct Timer {  // profiling off: no clock reads on the hot path
  Timer(double&, int64_t&) {}
};
#endif

struct EpiCtx {
  KernelParams p;
  const float* norms1;  // indexed by block row (C's row i)
  const float* norms2;  // indexed by column j
};

// The epilogue: C(i, j) holds x1_i . x2_j; replace it by the kernel value (AVX-512 build of the
// same loops when the CPU has it).
void kernel_epilogue(void* vctx, int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* c, int64_t ldc) {
  const auto& ctx = *static_cast<const EpiCtx*>(vctx);
  const auto fn = active_kernels().kernel_fn;
  for (int64_t i = i0; i < i1; ++i) {
    const float ni = ctx.p.type == KernelType::rbf ? ctx.norms1[i] : 0.f;
    fn(int(ctx.p.type), float(ctx.p.gamma), float(ctx.p.coef0), ctx.p.degree, ni,
       ctx.norms2 ? ctx.norms2 + j0 : nullptr, c + (i - i0) * ldc, j1 - j0);
  }
}

// X rows (all, or rows idx[0..n)) in 16-row panels, zero-padded.
std::vector<float> make_panels(const float* X, const int64_t* idx, int64_t n, int64_t d) {
  const int64_t panels = (n + 15) / 16;
  std::vector<float> P(size_t(panels * d * 16), 0.f);
  for (int64_t j = 0; j < n; ++j) {
    const float* x = X + (idx ? idx[j] : j) * d;
    float* p = P.data() + (j / 16) * d * 16 + j % 16;
    for (int64_t k = 0; k < d; ++k) p[k * 16] = x[k];
  }
  return P;
}

// out[j] = k(x, X_j) for the n rows in `panels`; norms2 are their squared norms. Long rows are
// shared with the helper thread (when there is one) in chunks of whole panels.
struct RowJob {
  const KernelParams* p;
  const float *P, *norms2, *x;
  float xnorm;
  float* out;
  int64_t n, d;
  // columns [j0, j1), j0 a multiple of 16; the kernel function follows each 256 columns while
  // they are in L1, so its arithmetic overlaps the GEMV's wait for the next panels
  void run(int64_t j0, int64_t j1) const {
    constexpr int64_t kStep = 256;
    EpiCtx ctx{*p, &xnorm, norms2};
    const auto gemv = active_kernels().gemv_panels;
    for (int64_t b = j0; b < j1; b += kStep) {
      const int64_t e = std::min(j1, b + kStep);
      gemv(P + b * d, e - b, d, x, out + b);
      if (p->type != KernelType::linear) kernel_epilogue(&ctx, 0, 1, b, e, out + b, n);
    }
  }
};

constexpr int64_t kHelperChunk = 1024;  // columns per claim (64 panels)

void panel_row(const KernelParams& p, const float* P, const float* norms2, int64_t n, int64_t d, const float* x,
               float xnorm, float* out, RowHelper* helper) {
  RowJob job{&p, P, norms2, x, xnorm, out, n, d};
  if (!helper || n < 4 * kHelperChunk) return job.run(0, n);
  helper->run([](void* ctx, int64_t c) {
    const auto& jb = *static_cast<const RowJob*>(ctx);
    jb.run(c * kHelperChunk, std::min(jb.n, (c + 1) * kHelperChunk));
  }, &job, (n + kHelperChunk - 1) / kHelperChunk);
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
  const int threads = max_threads > 0 ? std::min(max_threads, num_threads()) : num_threads();
  if (threads >= 2 && n >= 4 * kHelperChunk) helper_ = std::make_unique<RowHelper>();
  norms_ = row_norms(X, n, d);
  panels_ = make_panels(X, nullptr, n, d);
  diag_.resize(n);
  precise_ = precise::used_for(p.type);
  for (int64_t i = 0; i < n; ++i) {
    if (precise_) {  // the same float64 sum the rows use, so K_ii in a row equals the diagonal
      diag_[i] = float(precise::apply(p, precise::dot(X + i * d, X + i * d, d)));
      continue;
    }
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
  if (half_ > 0) {
    first_half_row(i, out);
    std::copy_n(out, half_, out + half_);
    return;
  }
  if (sparse_) return sparse_row(i, nullptr, n_, out);
  if (precise_) return precise::row(p_, panels_.data(), n_, d_, X_ + i * d_, out);
  panel_row(p_, panels_.data(), norms_.data(), n_, d_, X_ + i * d_, norms_[i], out, helper_.get());
}

// K(x_i, X_j) for j < half_ (the panels of the first half_ rows are a prefix of panels_).
void KernelRows::first_half_row(int64_t i, float* out) const {
  if (sparse_) return sparse_row(i, nullptr, half_, out);
  if (precise_) return precise::row(p_, panels_.data(), half_, d_, X_ + i * d_, out);
  panel_row(p_, panels_.data(), norms_.data(), half_, d_, X_ + i * d_, norms_[i], out, helper_.get());
}

void KernelRows::set_active(const int64_t* idx, int64_t m) {
  if (m >= n_) {
    active_.clear();
    active_panels_.clear();
    return;
  }
  active_.assign(idx, idx + m);
  std::sort(active_.begin(), active_.end());  // keeps the gathered rows in memory order
  if (p_.type == KernelType::precomputed || sparse_) return;
  active_norms_.resize(m);
  for (int64_t t = 0; t < m; ++t) active_norms_[t] = norms_[active_[t]];
  active_panels_ = make_panels(X_, active_.data(), m, d_);
}

void KernelRows::row_active(int64_t i, float* out) const {
  if (active_.empty()) return row(i, out);
  Timer tm{t_active, n_active};
  const int64_t m = int64_t(active_.size());
  if (p_.type == KernelType::precomputed) {
    const float* g = gram_ + idx_[i] * ld_gram_;
    for (int64_t t = 0; t < m; ++t) out[t] = g[idx_[active_[t]]];
    return;
  }
  if (half_ > 0 && m > half_) {  // the half row once, then gathered: cheaper than m columns
    half_row_.resize(size_t(half_));
    first_half_row(i, half_row_.data());
    for (int64_t t = 0; t < m; ++t) out[t] = half_row_[active_[t] % half_];
    return;
  }
  if (sparse_) return sparse_row(i, active_.data(), m, out);
  if (precise_) return precise::row(p_, active_panels_.data(), m, d_, X_ + i * d_, out);
  panel_row(p_, active_panels_.data(), active_norms_.data(), m, d_, X_ + i * d_, norms_[i], out, helper_.get());
}

void KernelRows::weighted_sum(const int64_t* targets, int64_t nt, const int64_t* sources, const double* w,
                              int64_t ns, double* out) const {
  if (half_ == 0) return weighted_sum_rows(targets, nt, sources, w, ns, out);
  // repeated rows: sources merged on their sample (weights added), each target sample once
  std::vector<double> wsum(size_t(half_), 0.0);
  for (int64_t s = 0; s < ns; ++s) wsum[size_t(sources[s] % half_)] += w[s];
  std::vector<int64_t> src, tgt, slot(size_t(half_), -1), pos_of(static_cast<size_t>(nt));
  std::vector<double> w2;
  for (int64_t j = 0; j < half_; ++j)
    if (wsum[size_t(j)] != 0) src.push_back(j), w2.push_back(wsum[size_t(j)]);
  for (int64_t t = 0; t < nt; ++t) {
    const int64_t j = targets[t] % half_;
    if (slot[size_t(j)] < 0) slot[size_t(j)] = int64_t(tgt.size()), tgt.push_back(j);
    pos_of[size_t(t)] = slot[size_t(j)];
  }
  std::vector<double> out2(tgt.size());
  weighted_sum_rows(tgt.data(), int64_t(tgt.size()), src.data(), w2.data(), int64_t(src.size()), out2.data());
  for (int64_t t = 0; t < nt; ++t) out[t] = out2[size_t(pos_of[size_t(t)])];
}

void KernelRows::weighted_sum_rows(const int64_t* targets, int64_t nt, const int64_t* sources, const double* w,
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
  if (sparse_) return sparse_weighted_sum(targets, nt, sources, w, ns, out);
  if (precise_) {  // the solver's own kernel values (rounded to float32 as its rows are)
    parallel_for(nt, 16, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const float* xt = X_ + targets[t] * d_;
        double acc = 0;
        for (int64_t s = 0; s < ns; ++s)
          acc += w[s] * double(float(precise::apply(p_, precise::dot(xt, X_ + sources[s] * d_, d_))));
        out[t] = acc;
      }
    }, max_threads_);
    return;
  }
  // Each thread takes ranges of target blocks and runs single-threaded GEMMs over blocks of
  // sources (a (kT, kS) block of K is 1 MB, in L2). With a helper thread, the ranges go to it
  // rather than to OpenMP, whose workers would then spin against the helper for a while.
  constexpr int64_t kT = 512, kS = 512;
  const int64_t nblocks = (nt + kT - 1) / kT;
  auto blocks = [&](int64_t b0, int64_t b1) {
    std::vector<float> Xt(size_t(kT * d_)), Xs(size_t(kS * d_)), nT(kT), nS(kS), K(size_t(kT * kS));
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t t0 = blk * kT, mt = std::min(kT, nt - t0);
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
        kernel_block(p_, Xt.data(), nT.data(), mt, Xs.data(), nS.data(), ms, d_, K.data(), ms, 1);
        for (int64_t t = 0; t < mt; ++t) {
          const float* k = K.data() + t * ms;
          double acc[4] = {0, 0, 0, 0};  // four partial sums so the loop pipelines
          int64_t s = 0;
          for (; s + 4 <= ms; s += 4)
            for (int u = 0; u < 4; ++u) acc[u] += w[s0 + s + u] * double(k[s + u]);
          for (; s < ms; ++s) acc[0] += w[s0 + s] * double(k[s]);
          out[t0 + t] += (acc[0] + acc[1]) + (acc[2] + acc[3]);
        }
      }
    }
  };
  if (!helper_ || nblocks < 2) return parallel_for(nblocks, 1, blocks, max_threads_);
  constexpr int64_t kChunks = 4;  // claimed dynamically: a late helper leaves its share to the caller
  struct Ctx {
    decltype(blocks)* f;
    int64_t nblocks;
  } ctx{&blocks, nblocks};
  helper_->run([](void* v, int64_t c) {
    const auto& cx = *static_cast<const Ctx*>(v);
    (*cx.f)(cx.nblocks * c / kChunks, cx.nblocks * (c + 1) / kChunks);
  }, &ctx, kChunks);
}

}  // namespace forgeml::svm
