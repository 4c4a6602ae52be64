// Float32 LSTM forward straight on gemm's micro-kernels (cpu/gemm/kernels.h), without its
// driver: per step and panel of MR batch rows, [x_t h_{t-1}] is packed from x and y directly (no
// staging copy), the micro-kernel runs over every NR-column panel of the packed [W; R], and the
// panel's gates (+ bias) follow while its z is still in L1/L2.
//
// Two ways to share the work between threads:
//   rows:  the batch rows are independent recurrences, so each thread runs the steps for its
//          own blocks of rows: no barrier per step (threads meet every kStepChunk steps) and no
//          h_t crossing cores. Every thread reads all of [W; R] packed once per step and panel
//          of MR rows, from L2 or (H256: 1.5 MiB) from L3, which per core costs no more than the
//          units way's own slice from L2 (bench/results/rnn_profile.md); this is the way up to
//          kRowsBytes of [W; R] (H128).
//   units: the thread parts of the hidden units (rnn.h's Split), each thread with its own
//          columns' slice of [W; R]; a panel of MR rows at step t waits only for the same rows
//          at t - 1 from every part (run_waves), not for a barrier at every step.
// Each z element is the same sum either way (same depth blocks; the bias is added in the gate
// pass), so results depend neither on the way nor on the thread count or the split.
#include "lstm_forward.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <vector>

#include "cpu/gemm/kernels.h"
#include "forgeml/parallel.h"
#include "panels.h"
#include "steps.h"

namespace forgeml::rnn {

namespace {

using gemm::detail::Kernel;

// Packed [W; R] each thread reads per step. At 1.5 MiB (N32 H256, L2 1 MiB/core) the rows way's
// forward was ~2% faster than the units way, but one fwd+bwd sample read 3% slower (noisy VM,
// rnn_profile.md): kept at 640 KiB (H128) until a quiet machine decides.
constexpr int64_t kRowsBytes = 640 * 1024;
// The rows way hands out (row block, kStepChunk steps) tasks: blocks of about kBlockRows rows,
// up to kBlocksPerThread per thread, so that a thread that starts late or is parked by the OS
// (this machine is shared) leaves its blocks to the others instead of holding them up; Ctrl-C
// is checked between the step chunks.
constexpr int64_t kBlockRows = 16;
constexpr int64_t kBlocksPerThread = 2;
constexpr int64_t kStepChunk = 16;

// Rows [0, m) (row stride lda) x depth [p0, p0 + kc) of A into one MR-row panel (k-major).
void pack_panel(const Kernel& kern, const float* A, int64_t lda, int m, int64_t p0, int64_t kc, float* dst) {
  if (kern.pack_a) return kern.pack_a(false, A, lda, 0, m, p0, kc, dst);
  for (int i = 0; i < m; ++i)
    for (int64_t k = 0; k < kc; ++k) dst[k * kern.mr + i] = A[i * lda + p0 + k];
}

struct Lstm {
  const Kernel& kern;
  const GateKernels& gk;
  const Dims& d;
  const Split& split;
  const Forward& f;
  const float* h0;
  const float* c0;

  // Step t for batch rows [n0, n1) and the parts [k0, k1), whose columns p holds. ap: MR x KC
  // floats; zbuf: MR x (their columns) floats, unused when f.xg keeps the gates.
  void step(int64_t t, int64_t n0, int64_t n1, int64_t k0, int64_t k1, const Panels& p, float* ap, float* zbuf) const {
    const int64_t T = d.T, F = d.F, H = d.H, GH = d.GH(), G = d.G, K = F + H;
    const int64_t col0 = G * split[k0], cols = G * split[k1] - col0;
    const int mr = kern.mr, nr = kern.nr;
    const float* x = f.x + t * F;
    const int64_t ldx = T * F;
    const float* hp = t == 0 ? h0 : f.y + (t - 1) * H;
    const int64_t ldh = t == 0 ? H : T * H;
    const int64_t ldz = f.xg ? T * GH : cols;
    const RowTiles tiles(n1 - n0, mr);
    for (int64_t ti = 0; ti < tiles.count; ++ti) {
      const int64_t i0 = n0 + tiles.begin(ti);
      const int m = tiles.height(ti);
      float* z = f.xg ? f.xg + (i0 * T + t) * GH + col0 : zbuf;
      for (int64_t pc = 0; pc < K; pc += kern.kc) {
        const int64_t kc = std::min<int64_t>(kern.kc, K - pc);
        const int64_t kx = std::clamp<int64_t>(F - pc, 0, kc);  // depth from x_t, then from h_{t-1}
        if (kx > 0) pack_panel(kern, x + i0 * ldx, ldx, m, pc, kx, ap);
        if (kc > kx) pack_panel(kern, hp + i0 * ldh, ldh, m, pc + kx - F, kc - kx, ap + kx * mr);
        const float beta = pc == 0 ? 0.0f : 1.0f;
        for (int64_t j = 0; j < cols; j += nr) {
          const int n = static_cast<int>(std::min<int64_t>(nr, cols - j));
          kern.tile[2 * n <= nr][0][m](kc, ap, mr, p.at(pc, j, kc), nr, z + j, ldz, 1.0f, beta, m, n);
        }
      }
      for (int i = 0; i < m; ++i) {
        const int64_t n = i0 + i;
        for (int64_t k = k0; k < k1; ++k) {
          const int64_t u0 = split[k], w = split[k + 1] - u0, o = (n * T + t) * H + u0;
          const float* cprev = t == 0 ? c0 + n * H + u0 : f.aux + o - H;
          gk.lstm_fwd(w, z + i * ldz + G * u0 - col0, f.bias + G * u0, cprev, f.aux + o, f.y + o);
        }
      }
    }
  }
};

void run_rows(const Lstm& L, const float* stacked, int64_t chunks) {
  const Dims& d = L.d;
  const int64_t K = d.F + d.H, GH = d.GH(), parts = static_cast<int64_t>(L.split.size()) - 1;
  const Panels p(L.kern, false, stacked, GH, K, 0, GH);
  auto task = [&](int64_t c, int64_t s0, int64_t s1) {
    Floats ap = floats(L.kern.mr * std::min<int64_t>(K, L.kern.kc)), z = floats(L.f.xg ? 0 : L.kern.mr * GH);
    const int64_t n0 = d.N * c / chunks, n1 = d.N * (c + 1) / chunks;
    for (int64_t t = s0; t < s1; ++t) L.step(t, n0, n1, 0, parts, p, ap.get(), z.get());
  };
  for (int64_t s0 = 0; s0 < d.T; s0 += kStepChunk) {
    const int64_t s1 = std::min(d.T, s0 + kStepChunk);
    if (chunks == 1) {
      task(0, s0, s1);
    } else {
      ExceptionSlot slot;
      std::atomic<int64_t> next{0};  // a row block to whichever thread is free (a parked one holds none up)
      parallel_run(static_cast<int>(std::min<int64_t>(chunks, num_threads())), [&](int, int) {
        for (int64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < chunks;)
          slot.run([&] { task(c, s0, s1); });
      });
      slot.rethrow();
    }
    check_interrupt();
  }
}

void run_units(const Lstm& L, const float* stacked) {
  const Dims& d = L.d;
  const int64_t K = d.F + d.H, GH = d.GH(), parts = static_cast<int64_t>(L.split.size()) - 1;
  const RowTiles tiles(d.N, L.kern.mr);
  std::vector<Panels> packs;
  int64_t widest = 0;
  for (int64_t k = 0; k < parts; ++k) {
    const int64_t c0 = d.G * L.split[k], cols = d.G * L.split[k + 1] - c0;
    packs.emplace_back(L.kern, false, stacked, GH, K, c0, cols);
    widest = std::max(widest, cols);
  }
  std::vector<Floats> ap, z;  // per thread: a part's tasks may run on either
  for (int64_t i = 0, threads = std::min<int64_t>(parts, num_threads()); i < threads; ++i) {
    ap.push_back(floats(L.kern.mr * std::min<int64_t>(K, L.kern.kc)));
    z.push_back(floats(L.f.xg ? 0 : L.kern.mr * widest));
  }
  run_waves(parts, d.T, tiles.count, [&](int64_t k, int64_t t, int64_t i, int tid) {
    L.step(t, tiles.begin(i), tiles.begin(i + 1), k, k + 1, packs[k], ap[tid].get(), z[tid].get());
  });
}

}  // namespace

bool lstm_forward_f32(const Dims& d, const Split& split, const GateKernels& gk, const float* h0, const float* c0,
                      const Forward& f) {
  const Isa isa = active_isa();
  if (f.bf16 || isa == Isa::reference) return false;  // bf16 panels, or no micro-kernels (reference gemm)
  const Kernel& kern = gemm::detail::kernel_for(isa);
  const int64_t K = d.F + d.H, GH = d.GH(), parts = static_cast<int64_t>(split.size()) - 1;
  std::vector<float> stacked(K * GH);  // rows 0..F-1: W, rows F..F+H-1: R
  std::copy(f.kernel, f.kernel + d.F * GH, stacked.begin());
  std::copy(f.rkernel, f.rkernel + d.H * GH, stacked.begin() + d.F * GH);
  const Lstm L{kern, gk, d, split, f, h0, c0};
  const int64_t threads = num_threads();
  // make_split gives one part when threads do not pay at this size; then one block of rows.
  const bool rows = f.lstm_rows == 1 ||
                    (f.lstm_rows < 0 && (parts == 1 || (d.N >= threads * kBlockRows && K * GH * 4 <= kRowsBytes)));
  if (!rows) {
    run_units(L, stacked.data());
    return true;
  }
  int64_t chunks = std::clamp<int64_t>(d.N / kBlockRows, threads, kBlocksPerThread * threads);
  if (parts == 1 && f.lstm_rows != 1) chunks = 1;
  run_rows(L, stacked.data(), std::min(chunks, d.N));
  return true;
}

}  // namespace forgeml::rnn
