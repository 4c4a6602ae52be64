// The driver of the bf16 and int8 GEMMs (gemm_lowp.h): argument checks, conversion of op(A) to
// depth groups, packing of op(B) into NR-column panels, the thread split and the loop over
// panels; the micro-kernels live in lowp_avx512.cpp / lowp_avx2.cpp / lowp_portable.cpp
// (contract: lowp.h).
//
// Both operands are converted once per call (float32 -> bf16 must happen somewhere, and the
// int8 A needs its +128 offset for vpdpbusd), so there is no in-place path as in the SGEMM.
// Loop nest per thread, over its own rows x panels of C:
//   pc over depth by KCg groups:  jc over its panels by NC columns (a KCg x NC block of B in L2):
//     ir over MR rows (the A strip, KCg groups, stays in L1):  jr over the block's panels: tile
// bf16 with all of packed B in L2 (bf16_strips) skips the converted copy of A instead:
//   ir over MR rows: convert the strip's rows (all of the depth, into a per-thread buffer):
//     pc over depth by KCg groups:  jr over the thread's panels: tile
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "cpu/gemm/kernels.h"
#include "cpu/gemm/lowp.h"
#include "cpu/gemm/lowp_run.h"
#include "forgeml/check.h"
#include "forgeml/gemm_lowp.h"
#include "forgeml/parallel.h"

namespace forgeml::gemm {

namespace detail {

const LowpKernels& lowp_kernels_for(Isa isa, int kind) {
  static const LowpKernels pb = [] { LowpKernels k; lowp_portable_bf16(k); return k; }();
  static const LowpKernels pi = [] { LowpKernels k; lowp_portable_int8(k); return k; }();
  // (an ISA's fill functions are compiled for it: not called on a CPU without it)
  static const bool avx2 = detected_isa() >= Isa::avx2, avx512 = detected_isa() == Isa::avx512;
  static const LowpKernels ab = [&] { LowpKernels k; return avx2 && lowp_avx2_bf16(k) ? k : pb; }();
  static const LowpKernels ai = [&] { LowpKernels k; return avx2 && lowp_avx2_int8(k) ? k : pi; }();
  // an AVX-512 CPU without avx512_bf16 / vnni runs the AVX2 tiles
  static const LowpKernels vb = [&] { LowpKernels k; return avx512 && lowp_avx512_bf16(k) ? k : ab; }();
  static const LowpKernels vi = [&] { LowpKernels k; return avx512 && lowp_avx512_int8(k) ? k : ai; }();
  if (isa == Isa::avx512) return kind ? vi : vb;
  if (isa == Isa::avx2) return kind ? ai : ab;
  return kind ? pi : pb;
}

constexpr int64_t kMinFlopsPerThread = int64_t{1} << 21;

Words::Words(size_t n) {
  void* q = std::aligned_alloc(64, std::max<size_t>(64, (n * 4 + 63) / 64 * 64));
  if (!q) throw std::bad_alloc();
  p.reset(static_cast<uint32_t*>(q));
}

namespace {

// The calling thread's buffer for one converted A strip (StripFn), reused by every call; a
// lowp_block nested in another's epilogue on the same thread gets its own.
struct StripBuf {
  uint32_t* p = nullptr;
  size_t cap = 0;
  bool busy = false;
  ~StripBuf() { std::free(p); }
};

}  // namespace

bool bf16_strips(const LowpKernels& k, int64_t M, int64_t Kg, int64_t npad, int threads) {
  return Kg * npad * 4 <= kStripBBytes && (threads <= 1 || (M + k.mr - 1) / k.mr >= npad / k.nr);
}

// Rows [m0, m1) x panels [p0, p1) of C on the calling thread (lowp_run.h).
void lowp_block(const Lowp& L, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  const LowpKernels& k = *L.kern;
  const int mr = k.mr, nr = k.nr;
  const int64_t panels_per_block = std::max<int64_t>(1, k.nc / nr);
  const Epilogue& ep = *L.ep;
  // bias and relu inside the int8 tile's epilogue, while the tile is still in registers
  const bool fused = L.row_scale && k.int8_bias_relu && (ep.act == Activation::none || ep.act == Activation::relu);
  // The tile of rows [ir, ir + m) x panel p over depth block [pc, pc + kc), A's strip at a.
  auto tile = [&](int64_t ir, int m, int64_t pc, int64_t kc, int64_t p, const uint32_t* a, int64_t as) {
    const bool last = pc + kc == L.Kg;
    const int64_t j0 = p * nr;
    const int n = static_cast<int>(std::min<int64_t>(nr, L.N - j0));
    LowpTile t;
    if (L.row_scale) t = LowpTile{L.row_scale + ir, L.col_scale + j0, L.corr + (pc / k.kcg) * L.npad + j0};
    if (fused && last) t.bias = ep.bias ? ep.bias + j0 : nullptr, t.relu = ep.act == Activation::relu;
    float* c = L.C + ir * L.ldc + j0;
    k.tile[2 * n <= nr][m](kc, a, as, L.b + pc * L.npad + p * nr * kc, c, L.ldc, pc > 0 || L.accumulate, t, m, n);
    if (last) {
      if (!fused && (ep.bias || ep.act != Activation::none))
        L.f32->bias_act(ep.bias ? ep.bias + j0 : nullptr, ep.act, c, L.ldc, m, n);
      if (ep.fn) ep.fn(ep.ctx, ir, ir + m, j0, j0 + n, c, L.ldc);
    }
  };
  if (L.strip.fn) {  // strip by strip: all of a strip's depth converted, then its tiles (B is in L2)
    static thread_local StripBuf strip_buf;
    std::unique_ptr<Words> own;  // when strip_buf is in use further up this thread's stack
    const int64_t ss = padded_rows((L.Kg + 15) / 16 * 16);
    const size_t need = static_cast<size_t>(mr * ss);
    uint32_t* sb;
    if (strip_buf.busy) {
      own = std::make_unique<Words>(need);
      sb = own->get();
    } else {
      if (need > strip_buf.cap) {
        std::free(strip_buf.p);
        strip_buf.p = nullptr, strip_buf.cap = 0;
        strip_buf.p = Words(need).p.release();
        strip_buf.cap = need;
      }
      sb = strip_buf.p;
      strip_buf.busy = true;
    }
    struct Release {
      bool* flag;
      ~Release() {
        if (flag) *flag = false;
      }
    } release{own ? nullptr : &strip_buf.busy};
    for (int64_t ir = m0; ir < m1; ir += mr) {
      const int m = static_cast<int>(std::min<int64_t>(mr, m1 - ir));
      L.strip.fn(L.strip.ctx, ir, ir + m, 0, L.Kg, sb, ss);
      for (int64_t pc = 0; pc < L.Kg; pc += k.kcg)
        for (int64_t p = p0; p < p1; ++p) tile(ir, m, pc, std::min<int64_t>(k.kcg, L.Kg - pc), p, sb + pc, ss);
    }
    return;
  }
  for (int64_t pc = 0; pc < L.Kg; pc += k.kcg) {
    const int64_t kc = std::min<int64_t>(k.kcg, L.Kg - pc);
    for (int64_t jc = p0; jc < p1; jc += panels_per_block) {
      const int64_t je = std::min(p1, jc + panels_per_block);
      for (int64_t ir = m0; ir < m1; ir += mr) {
        const int m = static_cast<int>(std::min<int64_t>(mr, m1 - ir));
        for (int64_t p = jc; p < je; ++p) tile(ir, m, pc, kc, p, L.a + ir * L.a_stride() + pc, L.a_stride());
      }
    }
  }
}

// Threads worth waking for an M x N x K product (the packing passes use the same count: on a
// busy machine waking a thread costs more than converting a small operand).
int lowp_threads(int64_t M, int64_t N, int64_t K, int max_threads) {
  int t = max_threads > 0 ? std::min(max_threads, num_threads()) : num_threads();
  if (in_parallel()) t = 1;
  const double flops = 2.0 * M * N * K;
  return static_cast<int>(std::max<double>(1, std::min<double>(t, flops / kMinFlopsPerThread)));
}

void check_packed(const char* fn, const PackedInt8& B, const float* b_scale) {
  FORGEML_CHECK_ARG(B.n() == 0 || b_scale, fn, ": null scale pointer");
  FORGEML_CHECK_ARG(B.isa() == active_isa(), fn, ": B was packed for ", isa_name(B.isa()), " but the active ISA is ",
                    isa_name(active_isa()), "; pack it again");
}

constexpr double kInterruptFlops = 4e9;

// Splits rows (in MR units) or panels, whichever is longer, over the threads; Ctrl-C is checked
// between row chunks of ~kInterruptFlops.
constexpr int64_t kPrepBytes = int64_t{256} << 10;    // A rows filled per block inside the run
constexpr int64_t kSmallBBytes = int64_t{512} << 10;  // B read again per block only when this small

void lowp_run(const Lowp& L, int max_threads, RangeFn prep, RangeFn pack) {
  const LowpKernels& k = *L.kern;
  const double flops_per_row = 2.0 * L.N * L.Kg;
  const int t = max_threads;  // from lowp_threads
  const int64_t panels = L.npad / k.nr;
  int64_t chunk_rows = std::max<int64_t>(k.mr, static_cast<int64_t>(kInterruptFlops / flops_per_row) / k.mr * k.mr);
  const bool small_b = L.Kg * L.npad * 4 <= kSmallBBytes;
  const int64_t prep_rows = small_b ? std::max<int64_t>(k.mr, kPrepBytes / (4 * L.a_stride()) / k.mr * k.mr) : chunk_rows;
  auto rows = [&](int64_t m0, int64_t m1) {
    if (!prep.fn) return lowp_block(L, m0, m1, 0, panels);
    for (int64_t s0 = m0; s0 < m1; s0 += prep_rows) {
      const int64_t s1 = std::min(m1, s0 + prep_rows);
      prep.fn(prep.ctx, s0, s1);
      lowp_block(L, s0, s1, 0, panels);
    }
  };
  for (int64_t r0 = 0; r0 < L.M; r0 += chunk_rows) {
    if (r0 > 0) check_interrupt();
    const int64_t r1 = std::min(L.M, r0 + chunk_rows);
    const int64_t row_units = (r1 - r0 + k.mr - 1) / k.mr;
    const bool packing = pack.fn && r0 == 0;
    if (row_units >= panels || t == 1) {
      const int threads = static_cast<int>(std::min<int64_t>(t, row_units));
      if (threads <= 1 || in_parallel()) {
        if (packing) pack.fn(pack.ctx, 0, panels);
        rows(r0, r1);
        continue;
      }
      // One parallel call for both passes: B's panels are claimed one by one, and a thread that
      // finds none left waits for the claimed ones to finish (never for a thread to start), then
      // the row chunks are claimed as in parallel_for.
      const int64_t chunks = std::min<int64_t>(row_units, threads * kChunksPerThread);
      std::atomic<int64_t> next_panel{0}, packed{0}, next_chunk{0};
      parallel_run(threads, [&](int, int) {
        if (packing) {
          for (int64_t p; (p = next_panel.fetch_add(1, std::memory_order_relaxed)) < panels;) {
            pack.fn(pack.ctx, p, p + 1);
            packed.fetch_add(1, std::memory_order_release);
          }
          while (packed.load(std::memory_order_acquire) < panels) cpu_relax();
        }
        for (int64_t c; (c = next_chunk.fetch_add(1, std::memory_order_relaxed)) < chunks;)
          rows(r0 + row_units * c / chunks * k.mr, std::min(r1, r0 + row_units * (c + 1) / chunks * k.mr));
      });
    } else {
      if (prep.fn) parallel_for(r1 - r0, 64, [&](int64_t b, int64_t e) { prep.fn(prep.ctx, r0 + b, r0 + e); }, t);
      parallel_for(panels, 1, [&](int64_t b, int64_t e) {
        if (packing) pack.fn(pack.ctx, b, e);  // a chunk's own panels
        lowp_block(L, r0, r1, b, e);
      }, t);
    }
  }
}

void check_common(const char* fn, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc, bool ta,
                  bool tb, const void* A, const void* B, const float* C) {
  FORGEML_CHECK_ARG(M >= 0 && N >= 0 && K >= 0, fn, ": sizes must be >= 0, got M=", M, " N=", N, " K=", K);
  FORGEML_CHECK_ARG(lda >= std::max<int64_t>(1, ta ? M : K), fn, ": lda=", lda, " is too small");
  FORGEML_CHECK_ARG(ldb >= std::max<int64_t>(1, tb ? K : N), fn, ": ldb=", ldb, " is too small");
  FORGEML_CHECK_ARG(ldc >= std::max<int64_t>(1, N), fn, ": ldc=", ldc, " is below N=", N);
  FORGEML_CHECK_ARG((M * N == 0 || C) && (M * K == 0 || A) && (K * N == 0 || B), fn, ": null matrix pointer");
}

void epilogue_all(const Epilogue& ep, float* C, int64_t ldc, int64_t M, int64_t N) {
  detail::bias_act_scalar(ep.bias, ep.act, C, ldc, M, N);
  if (ep.fn && M > 0 && N > 0) ep.fn(ep.ctx, 0, M, 0, N, C, ldc);
}

// Rows [r0, r1) x groups [g0, g1) of op(A) (M, K) -> bf16 pairs, group g of row i at
// dst[(i - r0) * dst_stride + g - g0] (the odd K's last group paired with zero).
void pack_a_bf16_block(const LowpKernels& k, bool ta, int64_t K, const float* A, int64_t lda, uint32_t* dst,
                       int64_t dst_stride, int64_t r0, int64_t r1, int64_t g0, int64_t g1) {
  const int64_t Kg = (K + 1) / 2, whole = std::min(g1, K / 2);  // groups [g0, whole) hold two values
  auto pair = [](float lo, float hi) { return bf16_bits(lo) | bf16_bits(hi) << 16; };
  if (!ta) {
    for (int64_t i = r0; i < r1; ++i)
      if (whole > g0) k.row_bf16(A + i * lda + 2 * g0, reinterpret_cast<uint16_t*>(dst + (i - r0) * dst_stride),
                                 2 * (whole - g0));
  } else {  // A is (K, M): down the rows of A, along its columns
    for (int64_t g = g0; g < whole; ++g) {
      const float* lo = A + 2 * g * lda;
      for (int64_t i = r0; i < r1; ++i) dst[(i - r0) * dst_stride + g - g0] = pair(lo[i], lo[lda + i]);
    }
  }
  if (K % 2 && g1 == Kg)
    for (int64_t i = r0; i < r1; ++i)
      dst[(i - r0) * dst_stride + Kg - 1 - g0] = pair(ta ? A[(K - 1) * lda + i] : A[i * lda + K - 1], 0.f);
}

// Rows [r0, r1) of op(A) (M, K) -> rows of Kg = ceil(K / 2) bf16 pairs (the odd tail paired with zero).
void pack_a_bf16_rows(const LowpKernels& k, bool ta, int64_t K, const float* A, int64_t lda, uint32_t* ap,
                      int64_t ap_stride, int64_t r0, int64_t r1) {
  pack_a_bf16_block(k, ta, K, A, lda, ap + r0 * ap_stride, ap_stride, r0, r1, 0, (K + 1) / 2);
}

// Panels [p0, p1) of op(B) (K, N) -> NR-column panels of bf16 pairs per depth block (lowp.h),
// padded with zeros.
void pack_b_bf16_panels(const LowpKernels& k, bool tb, int64_t K, int64_t N, const float* B, int64_t ldb, uint32_t* bp,
                        int64_t p0, int64_t p1) {
  const int64_t Kg = (K + 1) / 2, nr = k.nr, npad = (N + nr - 1) / nr * nr;
  auto pair = [](float lo, float hi) { return bf16_bits(lo) | bf16_bits(hi) << 16; };
  for (int64_t pc = 0; pc < Kg; pc += k.kcg) {
    const int64_t kc = std::min<int64_t>(k.kcg, Kg - pc);
    if (!tb) {  // two rows of B per group, read along the rows into the panels
      const int64_t j0 = p0 * nr, nn = std::min(N, p1 * nr) - j0, pad = p1 * nr - j0 - nn;
      uint32_t* d = bp + pc * npad + p0 * nr * kc;
      uint32_t* last = d + (p1 - 1 - p0) * nr * kc;
      for (int64_t g = 0; g < kc; ++g) {
        const int64_t k0 = 2 * (pc + g);
        const float* lo = B + k0 * ldb + j0;
        if (k0 + 1 < K) {
          k.pair_bf16(lo, lo + ldb, d + g * nr, nn, nr, nr * kc);
        } else {  // the odd K's last group pairs with zero
          const std::vector<float> zeros(static_cast<size_t>(nn));
          k.pair_bf16(lo, zeros.data(), d + g * nr, nn, nr, nr * kc);
        }
        std::fill_n(last + g * nr + nr - pad, pad, 0u);
      }
      continue;
    }
    for (int64_t p = p0; p < p1; ++p) {  // B is (N, K): one row of B per column of the panel
      uint32_t* d = bp + pc * npad + p * nr * kc;
      const int64_t j0 = p * nr, nn = std::min<int64_t>(nr, N - j0);
      for (int64_t jj = 0; jj < nr; ++jj) {
        if (jj >= nn) {
          for (int64_t g = 0; g < kc; ++g) d[g * nr + jj] = 0u;
          continue;
        }
        const float* src = B + (j0 + jj) * ldb + 2 * pc;
        for (int64_t g = 0; g < kc; ++g) d[g * nr + jj] = pair(src[2 * g], 2 * (pc + g) + 1 < K ? src[2 * g + 1] : 0.f);
      }
    }
  }
}

// All of op(B)'s panels, over the threads.
void pack_b_bf16(const LowpKernels& k, bool tb, int64_t K, int64_t N, const float* B, int64_t ldb, uint32_t* bp,
                 int max_threads) {
  parallel_for((N + k.nr - 1) / k.nr, 4, [&](int64_t p0, int64_t p1) {
    pack_b_bf16_panels(k, tb, K, N, B, ldb, bp, p0, p1);
  }, max_threads);
}

}  // namespace detail

using detail::Lowp;
using detail::LowpKernels;
using detail::LowpTile;
using detail::Words;
using detail::check_common;
using detail::check_packed;
using detail::epilogue_all;
using detail::lowp_block;
using detail::lowp_run;
using detail::lowp_threads;

// ---------------------------------------------------------------- bf16

void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
               int64_t ldb, float* C, int64_t ldc, const Epilogue& ep, int max_threads) {
  check_common("gemm_bf16", M, N, K, lda, ldb, ldc, ta, tb, A, B, C);
  if (M == 0 || N == 0) return;
  auto a_at = [&](int64_t i, int64_t k) { return ta ? A[k * lda + i] : A[i * lda + k]; };
  auto b_at = [&](int64_t k, int64_t j) { return tb ? B[j * ldb + k] : B[k * ldb + j]; };
  const Isa isa = active_isa();
  if (isa == Isa::reference || K == 0) {  // the oracle: exact products of the rounded values, float64 sums
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k)
          s += double(detail::from_bf16(detail::to_bf16(a_at(i, k)))) * detail::from_bf16(detail::to_bf16(b_at(k, j)));
        C[i * ldc + j] = static_cast<float>(s);
      }
    return epilogue_all(ep, C, ldc, M, N);
  }
  const LowpKernels& k = detail::lowp_kernels_for(isa, 0);
  max_threads = lowp_threads(M, N, K, max_threads);
  const int64_t Kg = (K + 1) / 2, nr = k.nr, npad = (N + nr - 1) / nr * nr;
  const bool strips = detail::bf16_strips(k, M, Kg, npad, max_threads);
  const int64_t as = detail::padded_rows(Kg);
  Words a(strips ? 1 : static_cast<size_t>(M * as)), b(static_cast<size_t>(Kg * npad));
  uint32_t* ap = a.get();
  uint32_t* bp = b.get();
  Lowp L{&k, &detail::kernel_for(isa), M, N, Kg, npad, ap, bp, nullptr, nullptr, nullptr, C, ldc, &ep};
  L.lda = as;
  auto convert = [&](int64_t r0, int64_t r1) { detail::pack_a_bf16_rows(k, ta, K, A, lda, ap, as, r0, r1); };
  auto strip = [&](int64_t r0, int64_t r1, int64_t g0, int64_t g1, uint32_t* dst, int64_t stride) {
    detail::pack_a_bf16_block(k, ta, K, A, lda, dst, stride, r0, r1, g0, g1);
  };
  auto pack = [&](int64_t p0, int64_t p1) { detail::pack_b_bf16_panels(k, tb, K, N, B, ldb, bp, p0, p1); };
  if (strips) L.strip = detail::strip_fn(strip);
  lowp_run(L, max_threads, strips ? detail::RangeFn{} : detail::range_fn(convert), detail::range_fn(pack));
}

// ---------------------------------------------------------------- int8

namespace {

// Packs B (K, N) into NR-column panels per depth block, with the +128 corrections (lowp.h).
void pack_b_int8(const LowpKernels& k, int64_t K, int64_t N, const int8_t* B, int64_t ldb, uint32_t* bp, int32_t* corr,
                 int max_threads) {
  const int64_t Kg = (K + 3) / 4, nr = k.nr, npad = (N + nr - 1) / nr * nr;
  const int64_t panels = npad / nr;
  parallel_for(panels, 4, [&](int64_t p0, int64_t p1) {
    for (int64_t pc = 0; pc < Kg; pc += k.kcg) {
      const int64_t kc = std::min<int64_t>(k.kcg, Kg - pc);
      for (int64_t p = p0; p < p1; ++p) {
        auto* d = reinterpret_cast<int8_t*>(bp + pc * npad + p * nr * kc);
        const int64_t j0 = p * nr, nn = std::min<int64_t>(nr, N - j0);
        int32_t* cs = corr + (pc / k.kcg) * npad + j0;
        for (int64_t jj = 0; jj < nr; ++jj) cs[jj] = 0;
        for (int64_t g = 0; g < kc; ++g)
          for (int q = 0; q < 4; ++q) {
            const int64_t kk = 4 * (pc + g) + q;
            int8_t* dd = d + g * nr * 4 + q;
            if (kk >= K) {
              for (int64_t jj = 0; jj < nr; ++jj) dd[4 * jj] = 0;
              continue;
            }
            const int8_t* src = B + kk * ldb + j0;
            for (int64_t jj = 0; jj < nn; ++jj) dd[4 * jj] = src[jj], cs[jj] += src[jj];
            for (int64_t jj = nn; jj < nr; ++jj) dd[4 * jj] = 0;
          }
        for (int64_t jj = 0; jj < nr; ++jj) cs[jj] *= 128;
      }
    }
  }, max_threads);
}

// Row i of A as unsigned bytes (A + 128), zero-padded (128) to whole groups.
void pack_a_row_int8(const int8_t* s, int64_t K, int64_t Kg, uint32_t* row) {
  auto* d = reinterpret_cast<uint8_t*>(row);
  for (int64_t q = 0; q < K; ++q) d[q] = static_cast<uint8_t>(s[q]) ^ 0x80u;  // == s + 128 as a byte
  for (int64_t q = K; q < 4 * Kg; ++q) d[q] = 128;  // a zero: B's padding is zero anyway
}

int64_t corr_blocks(const LowpKernels& k, int64_t Kg) { return (Kg + k.kcg - 1) / k.kcg; }

void check_row_scale(float s, int64_t i) {
  FORGEML_CHECK_ARG(!std::isnan(s), "x: row ", i, " holds NaN or infinity; int8 quantization needs finite values");
}

}  // namespace

void gemm_int8(int64_t M, int64_t N, int64_t K, const int8_t* A, int64_t lda, const float* a_scale, const int8_t* B,
               int64_t ldb, const float* b_scale, float* C, int64_t ldc, const Epilogue& ep, int max_threads) {
  check_common("gemm_int8", M, N, K, lda, ldb, ldc, false, false, A, B, C);
  FORGEML_CHECK_ARG((M == 0 || a_scale) && (N == 0 || b_scale), "gemm_int8: null scale pointer");
  if (M == 0 || N == 0) return;
  const Isa isa = active_isa();
  if (isa == Isa::reference || K == 0) {  // the oracle: int64 sums, scales applied in float64
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        int64_t s = 0;
        for (int64_t k = 0; k < K; ++k) s += int64_t{A[i * lda + k]} * B[k * ldb + j];
        C[i * ldc + j] = static_cast<float>(double(s) * a_scale[i] * b_scale[j]);
      }
    return epilogue_all(ep, C, ldc, M, N);
  }
  const LowpKernels& k = detail::lowp_kernels_for(isa, 1);
  max_threads = lowp_threads(M, N, K, max_threads);
  const int64_t Kg = (K + 3) / 4, nr = k.nr, npad = (N + nr - 1) / nr * nr;
  Words a(static_cast<size_t>(M * Kg)), b(static_cast<size_t>(Kg * npad));
  std::unique_ptr<int32_t[]> corr(new int32_t[corr_blocks(k, Kg) * npad]);
  uint32_t* ap = a.get();
  pack_b_int8(k, K, N, B, ldb, b.get(), corr.get(), max_threads);
  Lowp L{&k, &detail::kernel_for(isa), M, N, Kg, npad, ap, b.get(), a_scale, b_scale, corr.get(), C, ldc, &ep};
  auto fill = [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) pack_a_row_int8(A + i * lda, K, Kg, ap + i * Kg);
  };
  lowp_run(L, max_threads, detail::range_fn(fill));
}

// ---------------------------------------------------------------- int8 with B packed once

struct PackedInt8::Data {
  Words b;
  std::unique_ptr<int32_t[]> corr;
  explicit Data(size_t words, size_t ncorr) : b(words), corr(new int32_t[std::max<size_t>(1, ncorr)]) {}
};

PackedInt8::PackedInt8(int64_t K, int64_t N, const int8_t* B, int64_t ldb) : K_(K), N_(N), isa_(active_isa()) {
  FORGEML_CHECK_ARG(K >= 0 && N >= 0, "pack_int8: sizes must be >= 0, got K=", K, " N=", N);
  FORGEML_CHECK_ARG(ldb >= std::max<int64_t>(1, N), "pack_int8: ldb=", ldb, " is below N=", N);
  FORGEML_CHECK_ARG(K * N == 0 || B, "pack_int8: null matrix pointer");
  FORGEML_CHECK_ARG(isa_ != Isa::reference, "pack_int8: the reference ISA has no packed layout");
  const LowpKernels& k = detail::lowp_kernels_for(isa_, 1);
  const int64_t Kg = (K + 3) / 4, npad = (N + k.nr - 1) / k.nr * k.nr;
  data_ = std::make_shared<Data>(static_cast<size_t>(Kg * npad), static_cast<size_t>(corr_blocks(k, Kg) * npad));
  if (K > 0 && N > 0) pack_b_int8(k, K, N, B, ldb, data_->b.get(), data_->corr.get(), 0);
}

const uint32_t* PackedInt8Access::panels(const PackedInt8& B) { return B.data_->b.get(); }
const int32_t* PackedInt8Access::corr(const PackedInt8& B) { return B.data_->corr.get(); }

void gemm_int8_packed(int64_t M, const int8_t* A, const float* A_float, int64_t lda, const float* a_scale,
                      const PackedInt8& B, const float* b_scale, float* C, int64_t ldc, const Epilogue& ep,
                      int max_threads) {
  const int64_t N = B.n(), K = B.k();
  check_common("gemm_int8_packed", M, N, K, lda, std::max<int64_t>(1, N), ldc, false, false,
               A ? static_cast<const void*>(A) : A_float, &B, C);
  FORGEML_CHECK_ARG(!A || a_scale, "gemm_int8_packed: int8 A needs a_scale");
  check_packed("gemm_int8_packed", B, b_scale);
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.f);
    return epilogue_all(ep, C, ldc, M, N);
  }
  const LowpKernels& k = detail::lowp_kernels_for(B.isa(), 1);
  max_threads = lowp_threads(M, N, K, max_threads);
  const int64_t Kg = (K + 3) / 4, npad = (N + k.nr - 1) / k.nr * k.nr;
  Words a(static_cast<size_t>(std::max<int64_t>(1, M * Kg)));
  uint32_t* ap = a.get();
  std::unique_ptr<float[]> scale(A ? nullptr : new float[M]);  // float A: dynamic per-row scales
  const float* row_scale = A ? a_scale : scale.get();
  Lowp L{&k, &detail::kernel_for(B.isa()), M, N, Kg, npad, ap, PackedInt8Access::panels(B), row_scale, b_scale,
         PackedInt8Access::corr(B), C, ldc, &ep};
  auto fill = [&](int64_t r0, int64_t r1) {
    if (A) {
      for (int64_t i = r0; i < r1; ++i) pack_a_row_int8(A + i * lda, K, Kg, ap + i * Kg);
      return;
    }
    auto row = [&](int64_t i) { return reinterpret_cast<int8_t*>(ap + i * Kg); };
    int64_t i = r0;  // each row quantized with its own scale, two at a time where the ISA can
    if (k.quantize_two_rows)
      for (; i + 2 <= r1; i += 2)
        k.quantize_two_rows(A_float + i * lda, A_float + (i + 1) * lda, K, row(i), row(i + 1), scale.get() + i);
    for (; i < r1; ++i) scale[i] = k.quantize_row(A_float + i * lda, K, row(i));
    for (i = r0; i < r1; ++i) {
      check_row_scale(scale[i], i);
      pack_a_row_int8(row(i), K, Kg, ap + i * Kg);  // in place: each byte read before it is written
    }
  };
  lowp_run(L, max_threads, detail::range_fn(fill));
}

// ---------------------------------------------------------------- quantization and names

void quantize_rows_int8(int64_t M, int64_t K, const float* X, int64_t ldx, int8_t* Q, float* scale) {
  FORGEML_CHECK_ARG(M >= 0 && K >= 0 && ldx >= std::max<int64_t>(1, K), "quantize_rows_int8: bad sizes");
  const Isa isa = active_isa();
  auto row = isa == Isa::reference ? detail::quantize_row_scalar : detail::lowp_kernels_for(isa, 1).quantize_row;
  const int64_t grain = std::max<int64_t>(64, (int64_t{1} << 18) / std::max<int64_t>(1, K));  // >= 256K values a thread
  parallel_for(M, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      scale[i] = row(X + i * ldx, K, Q + i * K);
      check_row_scale(scale[i], i);
    }
  });
}

const char* lowp_kernel_name(bool int8) {
  const Isa isa = active_isa();
  if (isa == Isa::reference) return int8 ? "int8_reference" : "bf16_reference";
  return detail::lowp_kernels_for(isa, int8 ? 1 : 0).name;
}

}  // namespace forgeml::gemm
