// The driver of dense_x_csc (forgeml/sparse.h): checks, the float64 oracle (reference ISA), the
// per-ISA kernel choice, the transposes in and out of the kernel's row blocks, bias + activation
// (the gemm family's epilogue) and the thread split: over row blocks when there are enough of
// them, else over column chunks of each block.
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <new>

#include "cpu/gemm/kernels.h"
#include "cpu/sparse/kernels.h"
#include "forgeml/check.h"
#include "forgeml/parallel.h"
#include "forgeml/sparse.h"

namespace forgeml::sparse {

namespace {

constexpr int64_t kColumnChunk = 32;           // columns per kernel call (its yt stays in L1)
constexpr int64_t kMinFlopsPerThread = 1 << 20;
// xt floats per depth slice (256 KiB, in L2): 32 KiB slices that stay in L1 measured slower at
// 1024 x 1024, 90% sparse (1.8x vs 2.4x the dense GEMM): each slice costs every column a pass.
constexpr int64_t kDepthFloats = 65536;

struct Floats {
  std::unique_ptr<float, decltype(&std::free)> p{nullptr, &std::free};
  explicit Floats(int64_t n) {
    void* q = std::aligned_alloc(64, static_cast<size_t>(std::max<int64_t>(16, (n + 15) / 16 * 16)) * 4);
    if (!q) throw std::bad_alloc();
    p.reset(static_cast<float*>(q));
  }
  float* get() const { return p.get(); }
};

struct Job {
  const detail::CscKernel& k;
  const gemm::detail::Kernel& epi;
  int64_t M;
  const float* X;
  int64_t ldx;
  const CscMatrix& W;
  float* Y;
  int64_t ldy;
  const float* bias;
  gemm::Activation act;
};

// xt = rows [r0, r0 + rows) of X transposed to K x MB (zero rows past `rows`), 16 depths at a
// time so both the reads of X and the writes of xt stay within a few cache lines.
void transpose_in(const Job& J, int64_t r0, int64_t rows, int64_t k0, int64_t k1, float* xt) {
  const int mb = J.k.mb;
  for (int64_t kk = k0; kk < k1; kk += 16) {
    const int64_t ke = std::min(k1, kk + 16);
    for (int64_t b = 0; b < rows; ++b) {
      const float* x = J.X + (r0 + b) * J.ldx;
      for (int64_t k = kk; k < ke; ++k) xt[k * mb + b] = x[k];
    }
    for (int64_t k = kk; k < ke; ++k)
      for (int64_t b = rows; b < mb; ++b) xt[k * mb + b] = 0.f;
  }
}

// Columns [j0, j1) of the block's Y rows from xt, kColumnChunk at a time through yt, the depth
// in slices of xt of kDepthFloats.
void columns(const Job& J, int64_t r0, int64_t rows, const float* xt, int64_t j0, int64_t j1, float* yt) {
  const int mb = J.k.mb;
  const int64_t depth_block = std::max<int64_t>(16, kDepthFloats / mb);
  int64_t cur[kColumnChunk];
  for (int64_t c0 = j0; c0 < j1; c0 += kColumnChunk) {
    const int64_t c1 = std::min(j1, c0 + kColumnChunk), cols = c1 - c0;
    std::copy(J.W.ptr + c0, J.W.ptr + c1, cur);
    for (int64_t k0 = 0; k0 < std::max<int64_t>(J.W.K, 1); k0 += depth_block) {
      const auto k1 = static_cast<int32_t>(std::min(J.W.K, k0 + depth_block));
      J.k.panel(cols, cur, J.W.ptr + c0 + 1, k1, J.W.idx, J.W.val, xt, yt, k0 > 0);
    }
    for (int64_t b = 0; b < rows; ++b) {
      float* y = J.Y + (r0 + b) * J.ldy;
      for (int64_t j = c0; j < c1; ++j) y[j] = yt[(j - c0) * mb + b];
    }
    if (J.bias || J.act != gemm::Activation::none)
      J.epi.bias_act(J.bias ? J.bias + c0 : nullptr, J.act, J.Y + r0 * J.ldy + c0, J.ldy, rows, cols);
  }
}

void reference(int64_t M, const float* X, int64_t ldx, const CscMatrix& W, float* Y, int64_t ldy, const float* bias,
               gemm::Activation act) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < W.N; ++j) {
      double s = 0;
      for (int64_t p = W.ptr[j]; p < W.ptr[j + 1]; ++p) s += double(W.val[p]) * X[i * ldx + W.idx[p]];
      Y[i * ldy + j] = static_cast<float>(s);
    }
  gemm::detail::bias_act_scalar(bias, act, Y, ldy, M, W.N);
}

// True when every column's row indices lie in [0, K) and strictly ascend: one branch-free pass
// the compiler vectorises (the per-entry checks below, with their messages, cost ~20% of a
// 90%-sparse 1024 x 1024 product at batch 64, every call).
bool csc_indices_ok(const CscMatrix& W) {
  bool ok = true;
  for (int64_t j = 0; j < W.N; ++j) {
    const int64_t p0 = W.ptr[j], p1 = W.ptr[j + 1];
    if (p0 == p1) continue;
    ok &= W.idx[p0] >= 0 && W.idx[p1 - 1] < W.K;  // the column's ends: with ascent, all of it
    int bad = 0;
    for (int64_t p = p0 + 1; p < p1; ++p) bad |= W.idx[p] <= W.idx[p - 1];
    ok &= bad == 0;
  }
  return ok;
}

}  // namespace

void check_csc(const CscMatrix& W) {
  FORGEML_CHECK_ARG(W.K >= 0 && W.N >= 0, "w: sizes must be >= 0, got K=", W.K, " N=", W.N);
  FORGEML_CHECK_ARG(W.K < (int64_t{1} << 31), "w: K=", W.K, " is too large for int32 row indices");
  FORGEML_CHECK_ARG(W.ptr && W.ptr[0] == 0, "w: indptr must start at 0");
  for (int64_t j = 0; j < W.N; ++j)
    FORGEML_CHECK_ARG(W.ptr[j + 1] >= W.ptr[j], "w: indptr decreases at column ", j);
  const int64_t nnz = W.ptr[W.N];
  FORGEML_CHECK_ARG(nnz == 0 || (W.idx && W.val), "w: null index or value pointer");
  if (csc_indices_ok(W)) return;
  for (int64_t j = 0; j < W.N; ++j)  // name the first bad entry
    for (int64_t p = W.ptr[j]; p < W.ptr[j + 1]; ++p) {
      FORGEML_CHECK_ARG(W.idx[p] >= 0 && W.idx[p] < W.K, "w: row index ", W.idx[p], " at nonzero ", p,
                        " is outside [0, ", W.K, ")");
      FORGEML_CHECK_ARG(p == W.ptr[j] || W.idx[p] > W.idx[p - 1], "w: row indices of column ", j,
                        " must be strictly ascending");
    }
}

void dense_x_csc(int64_t M, const float* X, int64_t ldx, const CscMatrix& W, float* Y, int64_t ldy, const float* bias,
                 gemm::Activation act, int max_threads) {
  FORGEML_CHECK_ARG(M >= 0, "x: rows must be >= 0, got ", M);
  FORGEML_CHECK_ARG(ldx >= std::max<int64_t>(1, W.K), "x: ldx=", ldx, " is below K=", W.K);
  FORGEML_CHECK_ARG(ldy >= std::max<int64_t>(1, W.N), "out: ldy=", ldy, " is below N=", W.N);
  FORGEML_CHECK_ARG((M * W.K == 0 || X) && (M * W.N == 0 || Y), "dense_x_csc: null matrix pointer");
  check_csc(W);
  if (M == 0 || W.N == 0) return;
  const Isa isa = active_isa();
  if (isa == Isa::reference) return reference(M, X, ldx, W, Y, ldy, bias, act);
  const Job J{detail::csc_kernel_for(isa), gemm::detail::kernel_for(isa), M, X, ldx, W, Y, ldy, bias, act};
  const int mb = J.k.mb;
  const int64_t blocks = (M + mb - 1) / mb;
  const double flops = 2.0 * double(M) * double(std::max<int64_t>(W.ptr[W.N], 1)) + double(M) * (W.K + W.N);
  int t = max_threads > 0 ? std::min(max_threads, num_threads()) : num_threads();
  t = static_cast<int>(std::max<double>(1, std::min<double>(t, flops / kMinFlopsPerThread)));
  if (blocks >= t) {  // whole row blocks per thread, Ctrl-C checked between rounds
    const int64_t round = std::max<int64_t>(t, int64_t{t} * (int64_t{1} << 24) / std::max<double>(1, flops / blocks));
    for (int64_t g0 = 0; g0 < blocks; g0 += round) {
      if (g0 > 0) check_interrupt();
      const int64_t g1 = std::min(blocks, g0 + round);
      parallel_for(g1 - g0, 1, [&](int64_t b0, int64_t b1) {
        Floats xt(W.K * mb), yt(kColumnChunk * mb);
        for (int64_t blk = g0 + b0; blk < g0 + b1; ++blk) {
          const int64_t r0 = blk * mb, rows = std::min<int64_t>(mb, M - r0);
          transpose_in(J, r0, rows, 0, W.K, xt.get());
          columns(J, r0, rows, xt.get(), 0, W.N, yt.get());
        }
      }, t);
    }
    return;
  }
  Floats xt(W.K * mb);  // few blocks: each block's columns split over the threads
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t r0 = blk * mb, rows = std::min<int64_t>(mb, M - r0);
    parallel_for(W.K, 256, [&](int64_t k0, int64_t k1) { transpose_in(J, r0, rows, k0, k1, xt.get()); }, t);
    const int64_t chunks = (W.N + kColumnChunk - 1) / kColumnChunk;
    parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
      Floats yt(kColumnChunk * mb);
      columns(J, r0, rows, xt.get(), c0 * kColumnChunk, std::min(W.N, c1 * kColumnChunk), yt.get());
    }, t);
  }
}

const char* sparse_kernel_name() {
  const Isa isa = active_isa();
  return isa == Isa::reference ? "csc_reference" : detail::csc_kernel_for(isa).name;
}

}  // namespace forgeml::sparse
