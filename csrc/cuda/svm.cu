// CUDA kernel SVC: contract in svm.cuh. Kernels: squared row norms, row gathers, the SGEMM kernel
// epilogue, the one-block local SMO solver and the gradient update; then the host driver that
// picks working sets (from a host copy of G) and launches them, under nvcc and the emulator alike.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "cuda/gemm_tile.cuh"
#include "cuda/launch.cuh"
#include "cuda/svm.cuh"
#include "forgeml/check.h"
#include "forgeml/smo_step.h"

namespace forgeml::cuda::svm {

namespace {

constexpr int kMaxQ = 1024;  // working-set slots; the selection keys keep the slot in 10 bits
constexpr double kTau = 1e-12;
constexpr int kBlock = 256;

// The kernel function applied to the SGEMM's dot products. Row i of the block is sample
// rows_a[i] (or i when rows_a is null): its squared norm is norms_a[rows_a[i]].
struct KernelEpilogue {
  int type;
  float gamma, coef0;
  int degree;
  const float* norms_a;
  const int32_t* rows_a;
  const float* norms_b;
  __device__ __forceinline__ float operator()(int64_t i, int64_t j, float v) const {
    switch (type) {
      case 1: {
        const float base = gamma * v + coef0;  // integer power by products, as the CPU kernel
        float r = 1.0f;
        for (int k = 0; k < degree; ++k) r *= base;
        return r;
      }
      case 2: {
        const float ni = norms_a[rows_a ? rows_a[i] : i];
        return expf(-gamma * max(0.0f, ni + norms_b[j] - 2.0f * v));
      }
      case 3: return tanhf(gamma * v + coef0);
      default: return v;
    }
  }
};

// ---------------------------------------------------------------- kernels

// out[r] = |X[r, :]|^2 (float64 sum), one warp per row. X (n, d).
__global__ void row_norms_kernel(const float* __restrict__ X, int64_t n, int64_t d, float* __restrict__ out) {
  const int lane = threadIdx.x % 32;
  const int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= n) return;  // the whole warp leaves together
  const float* x = X + row * d;
  double s = 0.0;
  for (int64_t k = lane; k < d; k += 32) s += double(x[k]) * x[k];
  for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
  if (lane == 0) out[row] = static_cast<float>(s);
}

// dst (m, cols) = src[rows[r], 0:cols] (src row stride ld). grid (column blocks, m).
__global__ void gather_rows_kernel(const float* __restrict__ src, int64_t ld, const int32_t* __restrict__ rows,
                                   int64_t cols, float* __restrict__ dst) {
  const int64_t r = blockIdx.y;
  const float* s = src + int64_t(rows[r]) * ld;
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < cols; c += int64_t(gridDim.x) * blockDim.x)
    dst[r * cols + c] = s[c];
}

// kww (q, q) = krows[a, ws[b]] for krows (q, n). grid (column blocks, q).
__global__ void gather_cols_kernel(const float* __restrict__ krows, int64_t n, const int32_t* __restrict__ ws, int q,
                                   float* __restrict__ kww) {
  const int64_t a = blockIdx.y;
  for (int b = blockIdx.x * blockDim.x + threadIdx.x; b < q; b += gridDim.x * blockDim.x)
    kww[a * q + b] = krows[a * n + ws[b]];
}

// Order-preserving 64-bit key of a double with the slot in the low 10 bits (ties go to the lower
// slot), so one max-reduction gives the arg-max; 0 means "no candidate". Dropping the 10 low
// mantissa bits changes which of two values within 2^-42 relative wins, nothing else.
__device__ __forceinline__ unsigned long long slot_key(double v, int slot) {
  unsigned long long b;
#ifdef __CUDACC__
  b = static_cast<unsigned long long>(__double_as_longlong(v));
#else
  std::memcpy(&b, &v, sizeof b);
#endif
  b = (b >> 63) ? ~b : (b | (1ull << 63));
  return (b & ~static_cast<unsigned long long>(kMaxQ - 1)) | static_cast<unsigned long long>(kMaxQ - 1 - slot);
}
__device__ __forceinline__ int key_slot(unsigned long long key) { return kMaxQ - 1 - int(key & (kMaxQ - 1)); }

struct MaxPair {
  unsigned long long key;
  double m;
};

// Block-wide max of (key, m): warp butterflies, one barrier, then every thread folds the per-warp
// partials itself. part is (2, 32), used alternately (buf flips), so the next reduction's writes
// never meet this one's reads: a barrier always lies between them.
template <bool kWithM>
__device__ MaxPair block_max(unsigned long long key, double m, MaxPair* part, int& buf) {
  for (int off = 16; off > 0; off >>= 1) {
    const unsigned long long k2 = __shfl_xor_sync(0xffffffffu, key, off);
    key = k2 > key ? k2 : key;
    if (kWithM) {
      const double m2 = __shfl_xor_sync(0xffffffffu, m, off);
      m = m2 > m ? m2 : m;
    }
  }
  MaxPair* p = part + buf * 32;
  if (threadIdx.x % 32 == 0) p[threadIdx.x / 32] = MaxPair{key, m};
  __syncthreads();
  MaxPair r = p[0];
  for (int w = 1; w < int(blockDim.x / 32); ++w) {
    if (p[w].key > r.key) r.key = p[w].key;
    if (kWithM && p[w].m > r.m) r.m = p[w].m;
  }
  buf ^= 1;
  return r;
}

// One block (blockDim.x a multiple of 32) solves the q-variable sub-problem: libsvm's SMO with
// second-order working-set selection (csrc/cpu/svm/smo.cpp), slot t's alpha, gradient, bound,
// label and K_tt in shared memory (float64 where sums run long), kernel rows i and j of
// kww (q, q) read from global memory (coalesced, L2-resident). Contract in svm.cuh (local_solve).
__global__ void __launch_bounds__(kMaxQ)
    local_smo_kernel(int q, const int32_t* __restrict__ ws, const float* __restrict__ kww, const float* __restrict__ y,
                     const double* __restrict__ C, double* __restrict__ alpha, const double* __restrict__ G,
                     double tol, int64_t max_iter, double* __restrict__ delta, double* __restrict__ out, bool nu) {
  FORGEML_DYNAMIC_SHARED(double, smem);
  double* a = smem;  // (q) alpha
  double* g = a + q;  // (q) gradient of the sub-problem
  double* c = g + q;  // (q) upper bounds
  float* ys = reinterpret_cast<float*>(c + q);  // (q) labels
  float* qd = ys + q;  // (q) K_tt
  __shared__ MaxPair part[2 * 32];
  __shared__ double step[2];  // y_i dalpha_i, y_j dalpha_j of the last update
  const int tid = threadIdx.x, T = blockDim.x;
  for (int t = tid; t < q; t += T) {
    const int s = ws[t];
    a[t] = alpha[s], g[t] = G[s], c[t] = C[s], ys[t] = y[s], qd[t] = kww[int64_t(t) * q + t];
  }
  __syncthreads();
  auto in_up = [&](int t) { return ys[t] > 0 ? a[t] < c[t] : a[t] > 0; };  // y_t a_t can grow
  auto in_low = [&](int t) { return ys[t] > 0 ? a[t] > 0 : a[t] < c[t]; };
  int buf = 0;
  double eps = tol, first = 0.0;
  int64_t it = 0;
  for (;; ++it) {
    // i = argmax over I_up of -y_t G_t; in nu mode one i per label (class c = 1 for y < 0), as
    // the pair must share its label there
    unsigned long long key[2] = {0, 0};
    for (int t = tid; t < q; t += T)
      if (in_up(t)) {
        const int cl = nu && ys[t] < 0;
        const unsigned long long k = slot_key(-ys[t] * g[t], t);
        key[cl] = k > key[cl] ? k : key[cl];
      }
    const unsigned long long ki[2] = {block_max<false>(key[0], 0.0, part, buf).key,
                                      nu ? block_max<false>(key[1], 0.0, part, buf).key : 0ull};
    if (ki[0] == 0 && ki[1] == 0) break;  // uniform: every thread folded the same partials
    int ic[2] = {-1, -1};
    double gmax[2] = {-INFINITY, -INFINITY};
    for (int cl = 0; cl < 2; ++cl)
      if (ki[cl]) ic[cl] = key_slot(ki[cl]), gmax[cl] = -ys[ic[cl]] * g[ic[cl]];
    // j = argmin over I_low (of i's label) with y_t G_t > -gmax of -(gmax + y_t G_t)^2 / quad_it;
    // gmax2 = max y_t G_t
    unsigned long long kj[2] = {0, 0};
    double gmax2[2] = {-INFINITY, -INFINITY};
    for (int t = tid; t < q; t += T) {
      if (!in_low(t)) continue;
      const int cl = nu && ys[t] < 0;
      const double v = ys[t] * g[t];
      gmax2[cl] = v > gmax2[cl] ? v : gmax2[cl];
      const double gd = gmax[cl] + v;
      if (gd > 0 && ic[cl] >= 0) {
        double quad = qd[ic[cl]] + qd[t] - 2.0 * double(kww[int64_t(ic[cl]) * q + t]);  // |phi(x_i) - phi(x_t)|^2
        if (quad <= 0) quad = kTau;
        const unsigned long long k = slot_key(gd * gd / quad, t);
        kj[cl] = k > kj[cl] ? k : kj[cl];
      }
    }
    const MaxPair rj0 = block_max<true>(kj[0], gmax2[0], part, buf);
    const MaxPair rj1 = nu ? block_max<true>(kj[1], gmax2[1], part, buf) : MaxPair{0, -INFINITY};
    const double diff = fmax(gmax[0] + rj0.m, gmax[1] + rj1.m);
    if (it == 0) first = diff, eps = 0.1 * diff > tol ? 0.1 * diff : tol;
    if (diff < eps || (rj0.key == 0 && rj1.key == 0) || it >= max_iter) break;
    const int pick = rj1.key > rj0.key;  // the larger gain (keys order by gain, then slot)
    const int i = ic[pick], j = key_slot(pick ? rj1.key : rj0.key);
    const double qdi = qd[i];
    const float* Ki = kww + int64_t(i) * q;
    if (tid == 0) {  // the two-variable step, shared with smo.cpp
      const double Ci = c[i], Cj = c[j], old_ai = a[i], old_aj = a[j];
      double ai = old_ai, aj = old_aj;
      double quad = qdi + qd[j] - 2.0 * double(Ki[j]);
      if (quad <= 0) quad = kTau;
      forgeml::svm::smo_pair_step(ys[i] == ys[j], g[i], g[j], quad, Ci, Cj, ai, aj);
      a[i] = ai, a[j] = aj;
      step[0] = (ai - old_ai) * ys[i], step[1] = (aj - old_aj) * ys[j];
    }
    __syncthreads();
    const double di = step[0], dj = step[1];
    const float* Kj = kww + int64_t(j) * q;
    // G_t += Q_ti dai + Q_tj daj; each thread owns its slots, so no barrier until the next reduction
    for (int t = tid; t < q; t += T) g[t] += ys[t] * (double(Ki[t]) * di + double(Kj[t]) * dj);
  }
  for (int t = tid; t < q; t += T) {
    const int s = ws[t];
    delta[t] = ys[t] * (a[t] - alpha[s]);
    alpha[s] = a[t];
    out[t] = a[t];
  }
  if (tid == 0) out[q] = double(it), out[q + 1] = first;
}

// G[t] += y[t] * sum_r krows[r, t] delta[r], one thread per sample t; rows with delta 0 skipped
// (a uniform branch: delta sits in shared memory). Fixed summation order: deterministic.
__global__ void gradient_update_kernel(int q, int64_t n, const float* __restrict__ krows,
                                       const double* __restrict__ delta, const float* __restrict__ y,
                                       double* __restrict__ G) {
  FORGEML_DYNAMIC_SHARED(double, d);  // (q)
  for (int r = threadIdx.x; r < q; r += blockDim.x) d[r] = delta[r];
  __syncthreads();
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= n) return;
  double acc = 0.0;
  for (int r = 0; r < q; ++r)
    if (d[r] != 0.0) acc += double(krows[int64_t(r) * n + t]) * d[r];
  G[t] += double(y[t]) * acc;
}

// ---------------------------------------------------------------- launchers

unsigned blocks_for(int64_t n, int per_block) {
  const int64_t b = ceil_div(n, per_block);
  FORGEML_CHECK_ARG(b <= 0x7fffffff, "svm: too many samples (", n, ")");
  return static_cast<unsigned>(std::max<int64_t>(b, 1));
}

void row_norms(const float* X, int64_t n, int64_t d, float* out, cudaStream_t s) {
  if (n == 0) return;
  FORGEML_LAUNCH(row_norms_kernel, blocks_for(n, kBlock / 32), kBlock, 0, s, X, n, d, out);
  FORGEML_CUDA_CHECK_LAUNCH();
}

void check_kernel(const Kernel& k) {
  FORGEML_CHECK_ARG(k.type >= 0 && k.type <= 4, "kernel: type must be 0..4, got ", k.type);
  FORGEML_CHECK_ARG(k.degree >= 0, "kernel: degree must be >= 0, got ", k.degree);
}

// The workspace, carved into 256-byte aligned pieces.
struct Work {
  float *norms, *y, *xrows, *krows, *kww;
  double *C, *alpha, *G, *delta, *out;
  int32_t* ws;
};

template <class F>
int64_t carve(const Kernel& k, int64_t n, int64_t d, int q, F&& take) {
  int64_t off = 0;
  auto piece = [&](int64_t bytes) {
    const int64_t at = off;
    off += (bytes + 255) / 256 * 256;
    return at;
  };
  take(piece(n * 4), piece(n * 4), piece(k.type == 4 ? 0 : int64_t(q) * d * 4), piece(int64_t(q) * n * 4),
       piece(int64_t(q) * q * 4), piece(n * 8), piece(n * 8), piece(n * 8), piece(int64_t(q) * 8),
       piece((int64_t(q) + 2) * 8), piece(int64_t(q) * 4));
  return off;
}

// The host side of the decomposition: the current alphas, gradient copy and status.
class Driver {
 public:
  Driver(const Kernel& k, const float* X, int64_t n, int64_t d, const double* y, const double* C, const Options& o,
         void* workspace, cudaStream_t s)
      : k_(k), X_(X), n_(n), d_(d), y_(y), C_(C), opt_(o), s_(s) {
    q_ = int(std::min<int64_t>(o.ws_size, n));
    half_ = q_ / 2;
    char* base = static_cast<char*>(workspace);
    carve(k, n, d, q_, [&](int64_t norms, int64_t yv, int64_t xrows, int64_t krows, int64_t kww, int64_t Cv,
                           int64_t alpha, int64_t G, int64_t delta, int64_t out, int64_t ws) {
      w_ = Work{reinterpret_cast<float*>(base + norms), reinterpret_cast<float*>(base + yv),
                reinterpret_cast<float*>(base + xrows), reinterpret_cast<float*>(base + krows),
                reinterpret_cast<float*>(base + kww), reinterpret_cast<double*>(base + Cv),
                reinterpret_cast<double*>(base + alpha), reinterpret_cast<double*>(base + G),
                reinterpret_cast<double*>(base + delta), reinterpret_cast<double*>(base + out),
                reinterpret_cast<int32_t*>(base + ws)};
    });
    alpha_.assign(n, 0.0);
    G_.assign(n, -1.0);  // G = Q a + p with a = 0, p = -e
    if (o.alpha0) alpha_.assign(o.alpha0, o.alpha0 + n);
    if (o.p) G_.assign(o.p, o.p + n);
    ws_.assign(q_, -1);
    in_ws_.assign(n, 0);
    out_.resize(q_ + 2);
    threads_ = o.local_threads > 0 ? o.local_threads : int(std::min<int64_t>(ceil_div(q_, 32) * 32, kMaxQ));
    local_iter_ = o.local_iter > 0 ? o.local_iter : std::max<int64_t>(1000, 10 * int64_t(q_));
    max_iter_ = o.max_iter > 0 ? o.max_iter : std::max<int64_t>(10000000, 100 * n);
  }

  Result run() {
    std::vector<float> yf(y_, y_ + n_);
    std::transform(y_, y_ + n_, yf.begin(), [](double v) { return v > 0 ? 1.0f : -1.0f; });
    FORGEML_CUDA_CHECK(cudaMemcpyAsync(w_.y, yf.data(), n_ * 4, cudaMemcpyHostToDevice, s_));
    FORGEML_CUDA_CHECK(cudaMemcpyAsync(w_.C, C_, n_ * 8, cudaMemcpyHostToDevice, s_));
    FORGEML_CUDA_CHECK(cudaMemcpyAsync(w_.alpha, alpha_.data(), n_ * 8, cudaMemcpyHostToDevice, s_));
    FORGEML_CUDA_CHECK(cudaMemcpyAsync(w_.G, G_.data(), n_ * 8, cudaMemcpyHostToDevice, s_));
    if (k_.type == 2) row_norms(X_, n_, d_, w_.norms, s_);
    start_gradient();
    Result res;
    int stalls = 0;
    for (;; ++res.outer) {
      if (violation() < opt_.tol) break;
      if (res.iterations >= max_iter_ || stalls >= 3) {
        res.converged = false;
        break;
      }
      // slots [lo, lo + m) get new samples (and kernel rows); the rest keep theirs
      int lo = 0, m = q_;
      if (res.outer > 0) {
        if (q_ == n_) m = 0;  // the whole problem is the working set: rows already there
        else if (half_ >= 2) lo = (res.outer % 2) * half_, m = half_;  // FIFO: keep the newer half
        // (q == 2: a new pair every time, so that the worst pair is always in)
      }
      if (m > 0) {
        select(lo, m);
        FORGEML_CUDA_CHECK(cudaMemcpyAsync(w_.ws + lo, ws_.data() + lo, int64_t(m) * 4, cudaMemcpyHostToDevice, s_));
        kernel_rows(k_, X_, n_, d_, w_.norms, w_.ws + lo, m, w_.xrows, w_.krows + int64_t(lo) * n_, s_);
        FORGEML_LAUNCH(gather_cols_kernel, dim3(blocks_for(q_, kBlock), unsigned(q_)), kBlock, 0, s_, w_.krows, n_,
                       w_.ws, q_, w_.kww);
        FORGEML_CUDA_CHECK_LAUNCH();
      }
      local_solve(q_, w_.ws, w_.kww, w_.y, w_.C, w_.alpha, w_.G, opt_.tol,
                  std::min(local_iter_, max_iter_ - res.iterations), w_.delta, w_.out, threads_, s_, opt_.nu);
      gradient_update(q_, n_, w_.krows, w_.delta, w_.y, w_.G, s_);
      FORGEML_CUDA_CHECK(cudaMemcpyAsync(G_.data(), w_.G, n_ * 8, cudaMemcpyDeviceToHost, s_));
      FORGEML_CUDA_CHECK(cudaMemcpyAsync(out_.data(), w_.out, (int64_t(q_) + 2) * 8, cudaMemcpyDeviceToHost, s_));
      FORGEML_CUDA_CHECK(cudaStreamSynchronize(s_));
      for (int t = 0; t < q_; ++t) alpha_[ws_[t]] = out_[t];
      const int64_t steps = int64_t(out_[q_]);
      res.iterations += steps;
      stalls = steps == 0 ? stalls + 1 : 0;  // cannot happen while the worst pair is in the set
    }
    if (opt_.nu) {
      const double r1 = class_rho(1.0), r2 = class_rho(-1.0);
      res.rho = (r1 - r2) / 2, res.r = (r1 + r2) / 2;
    } else {
      res.rho = rho();
    }
    double obj = 0;  // 0.5 a'Qa + p'a = 0.5 a'(G + p)
    for (int64_t t = 0; t < n_; ++t) obj += alpha_[t] * (G_[t] + (opt_.p ? opt_.p[t] : -1.0));
    res.obj = obj / 2;
    res.alpha = std::move(alpha_);
    return res;
  }

 private:
  // G = p + Q a0: the kernel rows of the nonzero start alphas, q at a time, through the same
  // gradient update the solve uses (delta_r = y_r a0_r).
  void start_gradient() {
    std::vector<int32_t> nz;
    for (int64_t t = 0; t < n_; ++t)
      if (alpha_[t] != 0) nz.push_back(int32_t(t));
    std::vector<double> delta(q_);
    for (size_t b = 0; b < nz.size(); b += size_t(q_)) {
      const int m = int(std::min(nz.size() - b, size_t(q_)));
      for (int r = 0; r < m; ++r) delta[r] = y_[nz[b + r]] * alpha_[nz[b + r]];
      FORGEML_CUDA_CHECK(cudaMemcpyAsync(w_.ws, nz.data() + b, int64_t(m) * 4, cudaMemcpyHostToDevice, s_));
      FORGEML_CUDA_CHECK(cudaMemcpyAsync(w_.delta, delta.data(), int64_t(m) * 8, cudaMemcpyHostToDevice, s_));
      kernel_rows(k_, X_, n_, d_, w_.norms, w_.ws, m, w_.xrows, w_.krows, s_);
      gradient_update(m, n_, w_.krows, w_.delta, w_.y, w_.G, s_);
    }
    FORGEML_CUDA_CHECK(cudaMemcpyAsync(G_.data(), w_.G, n_ * 8, cudaMemcpyDeviceToHost, s_));
    FORGEML_CUDA_CHECK(cudaStreamSynchronize(s_));
  }

  bool up(int64_t t) const { return y_[t] > 0 ? alpha_[t] < C_[t] : alpha_[t] > 0; }
  bool low(int64_t t) const { return y_[t] > 0 ? alpha_[t] > 0 : alpha_[t] < C_[t]; }

  // The label class of t: all 0, or in nu mode 1 for y < 0 (pairs keep their label there).
  int cls(int64_t t) const { return opt_.nu && y_[t] < 0; }

  // m(a) - M(a): max over I_up of -y G plus max over I_low of y G (the CPU solver's criterion);
  // in nu mode the larger of the two labels' violations
  double violation() const {
    double gmax[2] = {-INFINITY, -INFINITY}, gmax2[2] = {-INFINITY, -INFINITY};
    for (int64_t t = 0; t < n_; ++t) {
      const double v = y_[t] * G_[t];
      if (up(t)) gmax[cls(t)] = std::max(gmax[cls(t)], -v);
      if (low(t)) gmax2[cls(t)] = std::max(gmax2[cls(t)], v);
    }
    return std::max(gmax[0] + gmax2[0], gmax[1] + gmax2[1]);
  }

  // Fills slots [lo, lo + m) with samples not in the other slots: alternately the next most
  // violating of I_up (largest -y G) and of I_low (largest y G), as ThunderSVM does. The worst
  // pair always enters (or is kept), so every local solve makes progress.
  void select(int lo, int m) {
    for (int t = lo; t < lo + m; ++t)
      if (ws_[t] >= 0) in_ws_[ws_[t]] = 0;
    std::vector<std::pair<double, int64_t>> upv, lowv, upv2, lowv2;  // (nu mode: upv2, lowv2 for y < 0)
    for (int64_t t = 0; t < n_; ++t) {
      if (in_ws_[t]) continue;
      const double v = y_[t] * G_[t];
      if (up(t)) (cls(t) ? upv2 : upv).emplace_back(-v, t);
      if (low(t)) (cls(t) ? lowv2 : lowv).emplace_back(v, t);
    }
    auto top = [&](std::vector<std::pair<double, int64_t>>& v) {  // best first, ties to the lower index
      const auto better = [](const auto& x, const auto& z) { return x.first > z.first || (x.first == z.first && x.second < z.second); };
      const size_t k = std::min<size_t>(v.size(), 2 * size_t(m));
      std::partial_sort(v.begin(), v.begin() + k, v.end(), better);
      v.resize(k);
    };
    top(upv);
    top(lowv);
    top(upv2);
    top(lowv2);
    int filled = 0;
    size_t pu = 0, pl = 0, pu2 = 0, pl2 = 0;
    auto take = [&](std::vector<std::pair<double, int64_t>>& v, size_t& p) {
      while (p < v.size() && in_ws_[v[p].second]) ++p;
      if (p == v.size()) return false;
      const int64_t t = v[p++].second;
      in_ws_[t] = 1, ws_[lo + filled++] = int32_t(t);
      return true;
    };
    while (filled < m) {  // each label's worst pair first (nu mode: both labels alternately)
      bool any = take(upv, pu);
      if (filled < m) any |= take(lowv, pl);
      if (filled < m) any |= take(upv2, pu2);
      if (filled < m) any |= take(lowv2, pl2);
      if (!any) break;
    }
    for (int64_t t = 0; t < n_ && filled < m; ++t)  // both lists used up: any sample left
      if (!in_ws_[t]) in_ws_[t] = 1, ws_[lo + filled++] = int32_t(t);
  }

  // nu mode: r of one label from its free gradients (libsvm's Solver_NU::calculate_rho)
  double class_rho(double label) const {
    double ub = INFINITY, lb = -INFINITY, sum_free = 0;
    int64_t nr_free = 0;
    for (int64_t t = 0; t < n_; ++t) {
      if (y_[t] != label) continue;  // libsvm takes G itself here, not y G
      if (alpha_[t] >= C_[t]) lb = std::max(lb, G_[t]);
      else if (alpha_[t] <= 0) ub = std::min(ub, G_[t]);
      else ++nr_free, sum_free += G_[t];
    }
    return nr_free > 0 ? sum_free / double(nr_free) : (ub + lb) / 2;
  }

  double rho() const {  // as libsvm (and smo.cpp's compute_rho)
    double ub = INFINITY, lb = -INFINITY, sum_free = 0;
    int64_t nr_free = 0;
    for (int64_t t = 0; t < n_; ++t) {
      const double yG = y_[t] * G_[t];
      if (alpha_[t] >= C_[t]) {
        if (y_[t] < 0) ub = std::min(ub, yG); else lb = std::max(lb, yG);
      } else if (alpha_[t] <= 0) {
        if (y_[t] > 0) ub = std::min(ub, yG); else lb = std::max(lb, yG);
      } else {
        ++nr_free, sum_free += yG;
      }
    }
    return nr_free > 0 ? sum_free / double(nr_free) : (ub + lb) / 2;
  }

  Kernel k_;
  const float* X_;
  int64_t n_, d_;
  const double *y_, *C_;
  Options opt_;
  cudaStream_t s_;
  int q_ = 0, half_ = 0, threads_ = 0;
  int64_t local_iter_ = 0, max_iter_ = 0;
  Work w_{};
  std::vector<double> alpha_, G_, out_;
  std::vector<int32_t> ws_;
  std::vector<uint8_t> in_ws_;
};

}  // namespace

void kernel_block(const Kernel& k, const float* A, int64_t m, const float* B, int64_t nb, int64_t d, float* norms_a,
                  float* norms_b, float* out, cudaStream_t s) {
  check_kernel(k);
  FORGEML_CHECK_ARG(k.type != 4, "kernel_block: a precomputed kernel has no function to evaluate");
  FORGEML_CHECK_ARG(m >= 0 && nb >= 0 && d >= 0, "kernel_block: sizes must be >= 0");
  if (m == 0 || nb == 0) return;
  if (k.type == 2) {
    row_norms(A, m, d, norms_a, s);
    row_norms(B, nb, d, norms_b, s);
  }
  const int64_t ld = std::max<int64_t>(d, 1);
  sgemm_launch(false, true, m, nb, d, 1.0f, A, ld, B, ld, 0.0f, out, nb,
               KernelEpilogue{k.type, k.gamma, k.coef0, k.degree, norms_a, nullptr, norms_b}, s);
}

void kernel_rows(const Kernel& k, const float* X, int64_t n, int64_t d, const float* norms, const int32_t* rows,
                 int64_t m, float* xrows, float* out, cudaStream_t s) {
  check_kernel(k);
  if (m == 0 || n == 0) return;
  FORGEML_CHECK_ARG(m <= 65535, "kernel_rows: at most 65535 rows at once, got ", m);
  if (k.type == 4) {  // the Gram matrix's rows are the kernel rows
    FORGEML_LAUNCH(gather_rows_kernel, dim3(blocks_for(std::min<int64_t>(n, 64 * kBlock), kBlock), unsigned(m)),
                   kBlock, 0, s, X, n, rows, n, out);
    FORGEML_CUDA_CHECK_LAUNCH();
    return;
  }
  if (d > 0) {
    FORGEML_LAUNCH(gather_rows_kernel, dim3(blocks_for(std::min<int64_t>(d, 64 * kBlock), kBlock), unsigned(m)),
                   kBlock, 0, s, X, d, rows, d, xrows);
    FORGEML_CUDA_CHECK_LAUNCH();
  }
  const int64_t ld = std::max<int64_t>(d, 1);
  sgemm_launch(false, true, m, n, d, 1.0f, xrows, ld, X, ld, 0.0f, out, n,
               KernelEpilogue{k.type, k.gamma, k.coef0, k.degree, norms, rows, norms}, s);
}

void local_solve(int q, const int32_t* ws, const float* kww, const float* y, const double* C, double* alpha,
                 const double* G, double tol, int64_t max_iter, double* delta, double* out, int threads,
                 cudaStream_t s, bool nu) {
  FORGEML_CHECK_ARG(q >= 1 && q <= kMaxQ, "local_solve: q must be 1..", kMaxQ, ", got ", q);
  FORGEML_CHECK_ARG(threads >= 32 && threads <= 1024 && threads % 32 == 0,
                    "local_solve: threads must be a multiple of 32 in [32, 1024], got ", threads);
  const size_t smem = size_t(q) * (3 * sizeof(double) + 2 * sizeof(float));
  FORGEML_LAUNCH(local_smo_kernel, 1, threads, smem, s, q, ws, kww, y, C, alpha, G, tol, max_iter, delta, out, nu);
  FORGEML_CUDA_CHECK_LAUNCH();
}

void gradient_update(int q, int64_t n, const float* krows, const double* delta, const float* y, double* G,
                     cudaStream_t s) {
  if (n == 0 || q == 0) return;
  FORGEML_LAUNCH(gradient_update_kernel, blocks_for(n, kBlock), kBlock, size_t(q) * sizeof(double), s, q, n, krows,
                 delta, y, G);
  FORGEML_CUDA_CHECK_LAUNCH();
}

int64_t workspace_bytes(const Kernel& k, int64_t n, int64_t d, int q) {
  return carve(k, n, d, q, [](auto...) {});
}

Result solve(const Kernel& k, const float* X, int64_t n, int64_t d, const double* y, const double* C,
             const Options& opt, void* workspace, cudaStream_t s) {
  check_kernel(k);
  FORGEML_CHECK_ARG(n >= 2, "svm: need at least 2 samples, got ", n);
  FORGEML_CHECK_ARG(k.type != 4 || d == n, "svm: a precomputed kernel needs an (n, n) matrix, got d = ", d);
  FORGEML_CHECK_ARG(opt.ws_size >= 2 && opt.ws_size <= kMaxQ && opt.ws_size % 2 == 0,
                    "svm: ws_size must be even in [2, ", kMaxQ, "], got ", opt.ws_size);
  FORGEML_CHECK_ARG(opt.tol > 0, "svm: tol must be > 0, got ", opt.tol);
  for (int64_t t = 0; t < n; ++t) {
    FORGEML_CHECK_ARG(y[t] == 1.0 || y[t] == -1.0, "y: labels must be +1 or -1, got ", y[t], " at ", t);
    FORGEML_CHECK_ARG(C[t] > 0, "C: every bound must be positive, got ", C[t], " at ", t);
    FORGEML_CHECK_ARG(!opt.alpha0 || (opt.alpha0[t] >= 0 && opt.alpha0[t] <= C[t]),
                      "alpha0: the start must lie in [0, C], got ", opt.alpha0 ? opt.alpha0[t] : 0.0, " at ", t);
  }
  return Driver(k, X, n, d, y, C, opt, workspace, s).run();
}

}  // namespace forgeml::cuda::svm
