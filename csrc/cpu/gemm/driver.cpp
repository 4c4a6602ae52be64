// The BLIS-style driver: argument checks, thread split, packing, the macro-kernel over packed
// panels and the epilogue on each finished tile. The micro-kernels live in kernel_*.cpp.
//
// Loop nest per thread, over its own rectangle of C (threads never share a buffer, so there is
// no barrier; the operand packed redundantly is the smaller one):
//   ic over M by MC:  pc over K by KC:  pack op(A)[ic.., pc..]      (MC x KC: L2/L3)
//     jc over N by NC:  pack op(B)[pc.., jc..]                   (KC x NC: L2)
//       ir over MR panels:  jr over NR panels:  micro-kernel      (A panel stays in L1)
// Packing is skipped where it does not pay: a row-major B is read in place when it is small
// enough to stay in L2 or when few row panels reuse it, and so is A when few column panels
// reuse it (the skinny shapes of network training).
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "cpu/gemm/kernels.h"
#include "forgeml/check.h"
#include "forgeml/parallel.h"

namespace forgeml::gemm {

struct PackedB::Impl {
  const detail::Kernel* kern = nullptr;  // null: reference path, `data` holds op(B) row-major
  int64_t K = 0, N = 0, npad = 0;
  float* data = nullptr;
  bool owns_data = true;  // false: a view of a per-call shared packing (run's shared_b)
  ~Impl() {
    if (owns_data) std::free(data);
  }
  // Packed slice for depth block p0 (a multiple of KC) and column j0 (a multiple of NR).
  const float* at(int64_t p0, int64_t j0, int64_t kc) const { return data + p0 * npad + j0 * kc; }
};

namespace {

using detail::Kernel;
using detail::MicroKernel;

constexpr int64_t kMinFlopsPerThread = int64_t{1} << 21;  // below this, threads cost more than they give
constexpr double kInterruptFlops = 4e9;                   // ~20-40 ms of work between Ctrl-C checks

float* aligned_floats(size_t n) {
  void* p = std::aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64);
  if (!p) throw std::bad_alloc();
  return static_cast<float*>(p);
}

// A per-thread scratch buffer that only grows.
struct Scratch {
  float* p = nullptr;
  size_t cap = 0;
  ~Scratch() { std::free(p); }
  float* get(size_t n) {
    if (n > cap) {
      std::free(p);
      p = nullptr;
      cap = 0;
      p = aligned_floats(n);
      cap = n;
    }
    return p;
  }
};

// dst[panel][k][i] = op(A)(i0 + panel*MR + i, p0 + k) for the m rows (an edge panel's tail is
// left unset: the kernel for that row count never reads it).
void pack_a(bool trans, const float* A, int64_t lda, int64_t i0, int64_t m, int64_t p0, int64_t kc, int mr,
            float* dst) {
  for (int64_t ip = 0; ip < m; ip += mr, dst += kc * mr) {
    int mm = static_cast<int>(std::min<int64_t>(mr, m - ip));
    if (!trans) {
      for (int i = 0; i < mm; ++i) {
        const float* src = A + (i0 + ip + i) * lda + p0;
        for (int64_t k = 0; k < kc; ++k) dst[k * mr + i] = src[k];
      }
    } else {
      for (int64_t k = 0; k < kc; ++k) std::memcpy(dst + k * mr, A + (p0 + k) * lda + i0 + ip, mm * sizeof(float));
    }
  }
}

// dst[panel][k][j] = op(B)(p0 + k, j0 + panel*NR + j); columns past n are zero.
void pack_b(bool trans, const float* B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t n, int nr,
            float* dst) {
  for (int64_t jp = 0; jp < n; jp += nr, dst += kc * nr) {
    int nn = static_cast<int>(std::min<int64_t>(nr, n - jp));
    if (!trans) {
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = B + (p0 + k) * ldb + j0 + jp;
        float* d = dst + k * nr;
        std::memcpy(d, src, nn * sizeof(float));
        for (int j = nn; j < nr; ++j) d[j] = 0.f;
      }
    } else {
      for (int j = 0; j < nn; ++j) {
        const float* src = B + (j0 + jp + j) * ldb + p0;
        for (int64_t k = 0; k < kc; ++k) dst[k * nr + j] = src[k];
      }
      for (int j = nn; j < nr; ++j)
        for (int64_t k = 0; k < kc; ++k) dst[k * nr + j] = 0.f;
    }
  }
}

void epilogue_tile(const Kernel& kern, const Epilogue& ep, int64_t i0, int m, int64_t j0, int n, float* c,
                   int64_t ldc) {
  if (ep.bias || ep.act != Activation::none) kern.bias_act(ep.bias ? ep.bias + j0 : nullptr, ep.act, c, ldc, m, n);
  if (ep.fn) ep.fn(ep.ctx, i0, i0 + m, j0, j0 + n, c, ldc);
}

struct Problem {
  bool trans_a, trans_b;
  int64_t M, N, K;
  float alpha;
  const float* A;
  int64_t lda;
  const float* B;  // unpacked B, or null when `packed` is given
  int64_t ldb;
  const PackedB::Impl* packed;
  float beta;
  float* C;
  int64_t ldc;
  const Epilogue* ep;
};

// C rows [m0, m1) x columns [n0, n1) on the calling thread.
void gemm_block(const Kernel& kern, const Problem& p, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  static thread_local Scratch abuf, bbuf;
  const int mr = kern.mr, nr = kern.nr;
  const int64_t KC = kern.kc, NC = kern.nc;
  // B is read in place when it is small, or when too few row panels would reuse a packed copy.
  const bool b_direct = !p.packed && !p.trans_b && (p.K * p.N <= kern.in_place_b || m1 - m0 <= 2 * mr);
  const bool a_direct = n1 - n0 <= kern.in_place_a_panels * nr;
  // Balanced row blocks of at most MC rows, whole panels each.
  const int64_t nblk = (m1 - m0 + kern.mc - 1) / kern.mc;
  const int64_t MC = ((m1 - m0 + nblk - 1) / nblk + mr - 1) / mr * mr;
  float* ap = a_direct ? nullptr : abuf.get(static_cast<size_t>(MC + mr) * KC);
  float* bp = p.packed || b_direct ? nullptr : bbuf.get(static_cast<size_t>(NC + nr) * KC);
  for (int64_t ic = m0; ic < m1; ic += MC) {
    const int64_t mc = std::min(MC, m1 - ic);
    for (int64_t pc = 0; pc < p.K; pc += KC) {
      const int64_t kc = std::min(KC, p.K - pc);
      const float beta = pc == 0 ? p.beta : 1.f;
      const bool last = pc + kc == p.K;
      if (!a_direct) {
        if (kern.pack_a) kern.pack_a(p.trans_a, p.A, p.lda, ic, mc, pc, kc, ap);
        else pack_a(p.trans_a, p.A, p.lda, ic, mc, pc, kc, mr, ap);
      }
      for (int64_t jc = n0; jc < n1; jc += NC) {
        const int64_t nc = std::min(NC, n1 - jc);
        const float* b;
        int64_t bs = nr, bstep = kc * nr;  // panel layout: next NR columns kc * NR floats on
        if (p.packed) {
          b = p.packed->at(pc, jc, kc);
        } else if (b_direct) {
          b = p.B + pc * p.ldb + jc;
          bs = p.ldb;
          bstep = nr;
        } else {
          if (kern.pack_b) kern.pack_b(p.trans_b, p.B, p.ldb, jc, nc, pc, kc, bp);
          else pack_b(p.trans_b, p.B, p.ldb, pc, kc, jc, nc, nr, bp);
          b = bp;
        }
        for (int64_t ir = 0; ir < mc; ir += mr) {
          const int m = static_cast<int>(std::min<int64_t>(mr, mc - ir));
          const float* a;
          int64_t as;
          bool row_a = false;
          if (!a_direct) {
            a = ap + ir * kc, as = mr;
          } else if (p.trans_a) {
            a = p.A + pc * p.lda + ic + ir, as = p.lda;
          } else {
            a = p.A + (ic + ir) * p.lda + pc, as = p.lda, row_a = true;
          }
          float* crow = p.C + (ic + ir) * p.ldc + jc;
          for (int64_t jr = 0; jr < nc; jr += nr) {
            const int n = static_cast<int>(std::min<int64_t>(nr, nc - jr));
            kern.tile[2 * n <= nr][row_a][m](kc, a, as, b + (jr / nr) * bstep, bs, crow + jr, p.ldc, p.alpha, beta,
                                              m, n);
          }
          // on the row panel's whole width: one call per panel, not per tile (the Dense layers'
          // bias + relu paid a call for every 6 x 16 tile), the panel still in L1
          if (last) epilogue_tile(kern, *p.ep, ic + ir, m, jc, static_cast<int>(nc), crow, p.ldc);
        }
      }
    }
  }
}

// K == 0: C = epilogue(beta * C).
void scale_only(const Kernel& kern, const Problem& p) {
  for (int64_t i = 0; i < p.M; ++i) {
    float* row = p.C + i * p.ldc;
    for (int64_t j = 0; j < p.N; ++j) row[j] = p.beta == 0.f ? 0.f : p.beta * row[j];
  }
  kern.bias_act(p.ep->bias, p.ep->act, p.C, p.ldc, p.M, p.N);
  if (p.ep->fn) p.ep->fn(p.ep->ctx, 0, p.M, 0, p.N, p.C, p.ldc);
}

int threads_for(const Problem& p, int max_threads) {
  int t = max_threads > 0 ? std::min(max_threads, num_threads()) : num_threads();
  if (in_parallel()) t = 1;  // a caller already inside a parallel call gets its own thread
  const double flops = 2.0 * p.M * p.N * p.K;
  t = static_cast<int>(std::min<double>(t, std::max(1.0, flops / kMinFlopsPerThread)));
  return std::max(t, 1);
}

// Splits rows [r0, r1) x all columns into chunks along the longer side, claimed by `t` threads
// from a shared counter: a thread the OS parks (this machine is often oversubscribed) leaves
// its unclaimed chunks to the others instead of stalling the call. A chunk that must pack its
// own copy of the other operand (B for row chunks, A for column chunks) spans at least
// kMinPackingChunk rows (columns), so the repeated packing stays a few percent of its
// arithmetic. With B packed once for the call (p.packed), rows split from 2 * kMinSharedChunk
// rows on: guided (run_guided) while B fits L3, else in chunks of about kSharedChunkRows: each
// row chunk streams all of the shared B from DRAM once, and at 64-row chunks that traffic held
// 2048^3 on two threads of a Zen 2 at 154 GFLOP/s against OpenBLAS's 184 (384 rows: 184;
// bench/results/gemm_profile.md). Each element is computed the same way whichever chunk holds
// it, so results do not depend on t or on the chunking.
constexpr int64_t kGemmChunksPerThread = 4;
constexpr int64_t kMinPackingChunk = 192;
constexpr int64_t kSharedChunksPerThread = 12;
constexpr int64_t kMinSharedChunk = 64;
constexpr int64_t kSharedChunkRows = 384;

// Row chunks over a shared packed B that stays in L3 (up to kGuidedMaxB floats), claimed guided:
// each claim takes 1/(2t) of the row panels still unclaimed (at least kMinSharedChunk rows), so
// the bulk goes in large chunks and the last ones shrink: a thread the OS parks holds back at most
// one small chunk of the tail. With fixed chunks of kSharedChunkRows, 1024^3 on two threads was
// one chunk each and took twice one thread's time right after a NumPy call (OpenBLAS's spinning
// worker held half a core): 37-50 ms, guided 22-29, one thread 24. A larger B streams from DRAM
// and keeps the fixed equal chunks: threads in step share each B block's trip through L3 (guided,
// 2048^3 on two threads ran 10-15% slower on a Zen 2).
constexpr int64_t kGuidedMaxB = int64_t{1} << 21;

void run_guided(const Kernel& kern, const Problem& p, int64_t r0, int64_t r1, int t) {
  const int64_t panels = (r1 - r0 + kern.mr - 1) / kern.mr;
  // at most 1/t of the rows: a short call (64 rows with a deep B) still runs on every thread
  const int64_t min_panels = std::max<int64_t>(1, std::min<int64_t>(kMinSharedChunk / kern.mr, panels / t));
  ExceptionSlot slot;
  std::atomic<int64_t> next{0};
  parallel_run(t, [&](int, int) {
    for (int64_t b = next.load(std::memory_order_relaxed); b < panels;) {
      const int64_t take = std::min(panels - b, std::max(min_panels, (panels - b) / (2 * t)));
      if (!next.compare_exchange_weak(b, b + take, std::memory_order_relaxed)) continue;  // b reloaded
      slot.run([&] { gemm_block(kern, p, r0 + b * kern.mr, std::min(r0 + (b + take) * kern.mr, r1), 0, p.N); });
      b = next.load(std::memory_order_relaxed);
    }
  });
  slot.rethrow();
}

void run_threads(const Kernel& kern, const Problem& p, int64_t r0, int64_t r1, int t) {
  if (t <= 1) return gemm_block(kern, p, r0, r1, 0, p.N);
  const int64_t rows = r1 - r0;
  // Rows when they are the longer side, or whenever B is shared (no operand is packed twice).
  const bool split_m = rows >= p.N || (p.packed && rows >= 2 * kMinSharedChunk);
  const int64_t extent = split_m ? rows : p.N, unit = split_m ? kern.mr : kern.nr;
  const int64_t panels = (extent + unit - 1) / unit;
  const bool repacks = split_m ? !p.packed && (p.trans_b || p.K * p.N > kern.in_place_b) : true;
  const bool shared = split_m && p.packed;
  if (shared && p.K * p.N <= kGuidedMaxB) return run_guided(kern, p, r0, r1, t);
  int64_t want;
  if (repacks) want = std::clamp<int64_t>(extent / kMinPackingChunk, t, kGemmChunksPerThread * t);
  else if (shared)  // a multiple of t, so equal threads finish together
    want = (std::clamp<int64_t>(extent / kSharedChunkRows, t, kSharedChunksPerThread * t) + t - 1) / t * t;
  else if (split_m)  // B read in place: a chunk costs only its rows, so small ones balance a late worker
    want = (std::clamp<int64_t>(extent / (2 * unit), t, kSharedChunksPerThread * t) + t - 1) / t * t;
  else want = std::clamp<int64_t>(extent / (2 * unit), t, kGemmChunksPerThread * t);
  const int64_t chunks = std::min<int64_t>(panels, want);
  t = static_cast<int>(std::min<int64_t>(t, chunks));
  ExceptionSlot slot;
  std::atomic<int64_t> next{0};
  parallel_run(t, [&](int, int) {
    for (int64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < chunks;) {
      const int64_t b = panels * c / chunks * unit, e = std::min(panels * (c + 1) / chunks * unit, extent);
      slot.run([&] {
        if (split_m) gemm_block(kern, p, r0 + b, r0 + e, 0, p.N);
        else gemm_block(kern, p, r0, r1, b, e);
      });
    }
  });
  slot.rethrow();
}

// B packed once for the whole call, shared read-only by every thread, pays where gemm_block
// would otherwise pack it more than once: several threads splitting the rows (each chunk packed
// all of B: at 1024^3 on two threads that was ~25% of the call), or more than one row pass (M
// above MC, or a huge call cut into Ctrl-C chunks). Up to kMaxSharedB floats (32 MiB: it is
// read back from L3); the packing itself is split over the threads in KC x NC blocks.
constexpr int64_t kMaxSharedB = int64_t{1} << 23;
constexpr int64_t kSerialSharedB = int64_t{1} << 16;  // below this, one thread packs it (no dispatch)

bool wants_shared_b(const Kernel& kern, const Problem& p, int t) {
  if (p.packed || (!p.trans_b && p.K * p.N <= kern.in_place_b)) return false;  // B not packed by gemm_block
  const int64_t npad = (p.N + kern.nr - 1) / kern.nr * kern.nr;
  if (p.K * npad > kMaxSharedB) return false;
  if (t > 1) return p.M >= p.N || p.M >= 2 * kMinSharedChunk;  // row chunks (run_threads' split_m)
  return p.M > kern.mc || 2.0 * p.M * p.N * p.K > kInterruptFlops;
}

void pack_shared_b(const Kernel& kern, const Problem& p, int t, Scratch& buf, PackedB::Impl& im) {
  im.kern = &kern;
  im.K = p.K;
  im.N = p.N;
  im.npad = (p.N + kern.nr - 1) / kern.nr * kern.nr;
  im.data = buf.get(static_cast<size_t>(p.K * im.npad));
  im.owns_data = false;
  const int64_t kblocks = (p.K + kern.kc - 1) / kern.kc, nblocks = (p.N + kern.nc - 1) / kern.nc;
  const int64_t blocks = kblocks * nblocks;
  auto pack = [&](int64_t blk) {
    const int64_t pc = blk / nblocks * kern.kc, jc = blk % nblocks * kern.nc;
    const int64_t kc = std::min<int64_t>(kern.kc, p.K - pc), nc = std::min<int64_t>(kern.nc, p.N - jc);
    float* dst = im.data + pc * im.npad + jc * kc;
    if (kern.pack_b) kern.pack_b(p.trans_b, p.B, p.ldb, jc, nc, pc, kc, dst);
    else pack_b(p.trans_b, p.B, p.ldb, pc, kc, jc, nc, kern.nr, dst);
  };
  if (t <= 1 || p.K * im.npad <= kSerialSharedB) {
    for (int64_t blk = 0; blk < blocks; ++blk) pack(blk);
    return;
  }
  std::atomic<int64_t> next{0};
  parallel_run(static_cast<int>(std::min<int64_t>(t, blocks)), [&](int, int) {
    for (int64_t blk; (blk = next.fetch_add(1, std::memory_order_relaxed)) < blocks;) pack(blk);
  });
}

void run(const Problem& problem, const Kernel* kern, int max_threads) {
  if (problem.M == 0 || problem.N == 0) return;
  if (problem.K == 0) return scale_only(*kern, problem);
  const int t = threads_for(problem, max_threads);
  Problem p = problem;
  PackedB::Impl shared_b;
  static thread_local Scratch shared_buf;  // the caller's; grows to the largest B it packed
  static thread_local bool shared_busy = false;  // a GEMM from inside an epilogue packs its own way
  struct Release {
    bool* flag;
    ~Release() {
      if (flag) *flag = false;
    }
  } release{nullptr};
  if (!shared_busy && wants_shared_b(*kern, p, t)) {
    shared_busy = true;
    release.flag = &shared_busy;
    pack_shared_b(*kern, p, t, shared_buf, shared_b);
    p.packed = &shared_b;
  }
  const double flops = 2.0 * p.M * p.N * p.K;
  if (flops <= kInterruptFlops) return run_threads(*kern, p, 0, p.M, t);
  // Huge call: row chunks of ~kInterruptFlops a thread, Ctrl-C checked between them.
  int64_t chunk = static_cast<int64_t>(kInterruptFlops * t / (2.0 * p.N * p.K));
  chunk = std::max<int64_t>(kern->mr, chunk / kern->mr * kern->mr);
  for (int64_t r = 0; r < p.M; r += chunk) {
    if (r > 0) check_interrupt();
    run_threads(*kern, p, r, std::min(p.M, r + chunk), t);
  }
}

void check_args(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                const float* B, int64_t ldb, const float* C, int64_t ldc) {
  FORGEML_CHECK_ARG(M >= 0 && N >= 0 && K >= 0, "sgemm: sizes must be >= 0, got M=", M, " N=", N, " K=", K);
  // A leading dimension matters only for a matrix with elements (an empty one, e.g. K = 0
  // features, may come with ld = 0).
  FORGEML_CHECK_ARG(M * K == 0 || lda >= (trans_a ? M : K), "sgemm: lda=", lda, " is below ",
                    trans_a ? "M=" : "K=", trans_a ? M : K);
  FORGEML_CHECK_ARG(K * N == 0 || ldb >= (trans_b ? K : N), "sgemm: ldb=", ldb, " is below ",
                    trans_b ? "K=" : "N=", trans_b ? K : N);
  FORGEML_CHECK_ARG(M * N == 0 || ldc >= N, "sgemm: ldc=", ldc, " is below N=", N);
  FORGEML_CHECK_ARG((M * N == 0 || C) && (M * K == 0 || A) && (K * N == 0 || B), "sgemm: null matrix pointer");
}

}  // namespace

// ---------------------------------------------------------------- public entry points

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const Epilogue& ep, int max_threads) {
  check_args(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  const Isa isa = active_isa();
  if (isa == Isa::reference) return sgemm_reference(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
  Problem p{trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, nullptr, beta, C, ldc, &ep};
  run(p, &detail::kernel_for(isa), max_threads);
}

void sgemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                   const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b,
                   float beta, float* C, int64_t ldc, int64_t stride_c, const Epilogue& ep, int max_threads) {
  FORGEML_CHECK_ARG(batch >= 0, "sgemm_batched: batch must be >= 0, got ", batch);
  check_args(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  FORGEML_CHECK_ARG(batch <= 1 || M * N == 0 || stride_c >= (M - 1) * ldc + N || stride_c <= -((M - 1) * ldc + N),
                    "sgemm_batched: stride_c=", stride_c, " makes the output matrices overlap");
  if (batch == 0 || M == 0 || N == 0) return;
  // A shared op(B) and stacked row-major A and C: one tall GEMM.
  if (stride_b == 0 && !trans_a && stride_a == M * lda && stride_c == M * ldc && ep.fn == nullptr)
    return sgemm(false, trans_b, batch * M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep, max_threads);
  const Isa isa = active_isa();
  const double flops = 2.0 * M * N * K;
  int t = max_threads > 0 ? std::min(max_threads, num_threads()) : num_threads();
  if (in_parallel()) t = 1;
  auto one = [&](int64_t b, int threads) {
    if (isa == Isa::reference)
      return sgemm_reference(trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta,
                             C + b * stride_c, ldc, ep);
    Problem p{trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, nullptr, beta,
              C + b * stride_c, ldc, &ep};
    run(p, &detail::kernel_for(isa), threads);
  };
  // Many small products: one whole product per thread. Otherwise each product uses every thread.
  if (t > 1 && batch >= t && flops < 64.0 * kMinFlopsPerThread * t) {
    const int64_t per_chunk = std::max<int64_t>(t, static_cast<int64_t>(kInterruptFlops / std::max(flops, 1.0)));
    for (int64_t b0 = 0; b0 < batch; b0 += per_chunk) {
      if (b0 > 0) check_interrupt();
      const int64_t b1 = std::min(batch, b0 + per_chunk);
      std::atomic<int64_t> next{b0};  // whole products to whichever thread is free
      parallel_run(static_cast<int>(std::min<int64_t>(t, b1 - b0)), [&](int, int) {
        for (int64_t b; (b = next.fetch_add(1, std::memory_order_relaxed)) < b1;) one(b, 1);
      });
    }
    return;
  }
  for (int64_t b = 0; b < batch; ++b) {
    if (b > 0 && flops * b > kInterruptFlops) check_interrupt();
    one(b, t);
  }
}

PackedB::PackedB(bool trans_b, int64_t K, int64_t N, const float* B, int64_t ldb) : impl_(std::make_unique<Impl>()) {
  FORGEML_CHECK_ARG(K >= 0 && N >= 0, "PackedB: sizes must be >= 0, got K=", K, " N=", N);
  FORGEML_CHECK_ARG(ldb >= std::max<int64_t>(1, trans_b ? K : N), "PackedB: ldb=", ldb, " is below ",
                    trans_b ? "K=" : "N=", trans_b ? K : N);
  FORGEML_CHECK_ARG(K * N == 0 || B, "PackedB: null matrix pointer");
  Impl& im = *impl_;
  im.K = K;
  im.N = N;
  const Isa isa = active_isa();
  if (isa == Isa::reference) {
    im.npad = N;
    im.data = aligned_floats(std::max<int64_t>(1, K * N));
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < N; ++j) im.data[k * N + j] = trans_b ? B[j * ldb + k] : B[k * ldb + j];
    return;
  }
  const Kernel& kern = detail::kernel_for(isa);
  im.kern = &kern;
  im.npad = (N + kern.nr - 1) / kern.nr * kern.nr;
  im.data = aligned_floats(std::max<int64_t>(1, K * im.npad));
  for (int64_t pc = 0; pc < K; pc += kern.kc) {
    const int64_t kc = std::min<int64_t>(kern.kc, K - pc);
    if (kern.pack_b) kern.pack_b(trans_b, B, ldb, 0, N, pc, kc, im.data + pc * im.npad);
    else pack_b(trans_b, B, ldb, pc, kc, 0, N, kern.nr, im.data + pc * im.npad);
  }
}

PackedB::~PackedB() = default;
PackedB::PackedB(PackedB&&) noexcept = default;
PackedB& PackedB::operator=(PackedB&&) noexcept = default;
int64_t PackedB::K() const { return impl_->K; }
int64_t PackedB::N() const { return impl_->N; }

void sgemm_packed(bool trans_a, int64_t M, float alpha, const float* A, int64_t lda, const PackedB& B, float beta,
                  float* C, int64_t ldc, const Epilogue& ep, int max_threads) {
  const PackedB::Impl& im = B.impl();
  const int64_t N = im.N, K = im.K;
  check_args(trans_a, false, M, N, K, A, lda, im.data, std::max<int64_t>(1, N), C, ldc);
  if (!im.kern)
    return sgemm_reference(trans_a, false, M, N, K, alpha, A, lda, im.data, std::max<int64_t>(1, N), beta, C, ldc,
                           ep);
  Problem p{trans_a, false, M, N, K, alpha, A, lda, nullptr, 0, &im, beta, C, ldc, &ep};
  run(p, im.kern, max_threads);
}

}  // namespace forgeml::gemm
