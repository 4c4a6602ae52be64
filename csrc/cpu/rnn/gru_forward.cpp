// Float32 GRU recurrence straight on gemm's micro-kernels (cpu/gemm/kernels.h), without its
// driver: per step, thread part and panel of MR batch rows, h_{t-1} is packed from y (or h0),
// the micro-kernel runs over every NR-column panel of the part's packed R, the recurrent bias
// b1 is added, and the panel's gates follow while its MR x 3w block is still in L1. Through
// gemm's driver the whole N x 3w product went to a buffer in L2 before the row pass read it.
// The reset gate multiplies h_{t-1}·R_h + b1_h (reset_after), so R cannot be stacked under W as
// in the LSTM: x·W + b0 stays one GEMM over all steps, with b1's z and r blocks folded into its
// bias, so that the per-step bias pass covers only the h block.
// Each product element is the same sum for any split or thread count (same depth blocks), so
// results do not depend on them.
#include "gru_forward.h"

#include <algorithm>
#include <vector>

#include "cpu/gemm/kernels.h"
#include "panels.h"
#include "products.h"
#include "steps.h"

namespace forgeml::rnn {

namespace {

using gemm::detail::Kernel;

// Rows [0, m) (row stride lda) x depth [p0, p0 + kc) of A into one MR-row panel (k-major).
void pack_rows(const Kernel& kern, const float* A, int64_t lda, int m, int64_t p0, int64_t kc, float* dst) {
  if (kern.pack_a) return kern.pack_a(false, A, lda, 0, m, p0, kc, dst);
  for (int i = 0; i < m; ++i)
    for (int64_t k = 0; k < kc; ++k) dst[k * kern.mr + i] = A[i * lda + p0 + k];
}

}  // namespace

bool gru_forward_f32(const Dims& d, const Split& split, const GateKernels& gk, const float* h0, const Forward& f) {
  const Isa isa = active_isa();
  if (f.bf16 || isa == Isa::reference) return false;  // bf16 panels, or no micro-kernels (reference gemm)
  const Kernel& kern = gemm::detail::kernel_for(isa);
  const int64_t N = d.N, T = d.T, H = d.H, GH = d.GH(), G = d.G;
  const int64_t parts = static_cast<int64_t>(split.size()) - 1;
  const int mr = kern.mr, nr = kern.nr;
  // x·W + b0 for every step, with b1's z and r blocks folded in (they only ever add to b0's);
  // b1_h is multiplied by the reset gate, so it is added per step.
  std::vector<float> bias(f.bias, f.bias + GH);
  for (int64_t k = 0; k < parts; ++k) {
    const int64_t c0 = G * split[k], w = split[k + 1] - split[k];
    for (int64_t j = c0; j < c0 + 2 * w; ++j) bias[j] += f.bias[GH + j];
  }
  gemm::Epilogue in_ep;
  in_ep.bias = bias.data();
  product(false, false, false, N * T, GH, d.F, f.x, d.F, f.kernel, GH, f.xg, GH, in_ep);

  std::vector<Panels> packs;
  std::vector<Floats> ap, z;  // per part: the packed h rows, the panel's MR x 3w product
  for (int64_t k = 0; k < parts; ++k) {
    const int64_t c0 = G * split[k], cols = G * split[k + 1] - c0;
    packs.emplace_back(kern, false, f.rkernel, GH, H, c0, cols);
    ap.push_back(floats(mr * std::min<int64_t>(H, kern.kc)));
    z.push_back(floats(mr * cols));
  }
  auto step = [&](int64_t k, int64_t t) {
    const int64_t u0 = split[k], w = split[k + 1] - u0, c0 = G * u0, cols = G * w;
    const float* hp = t == 0 ? h0 : f.y + (t - 1) * H;
    const int64_t ldh = t == 0 ? H : T * H;
    const float* b1 = f.bias + GH + c0;  // recurrent bias, row 1
    float* zk = z[k].get();
    for (int64_t i0 = 0; i0 < N; i0 += mr) {
      const int m = static_cast<int>(std::min<int64_t>(mr, N - i0));
      for (int64_t pc = 0; pc < H; pc += kern.kc) {
        const int64_t kc = std::min<int64_t>(kern.kc, H - pc);
        pack_rows(kern, hp + i0 * ldh, ldh, m, pc, kc, ap[k].get());
        const float beta = pc == 0 ? 0.0f : 1.0f;
        for (int64_t j = 0; j < cols; j += nr) {
          const int n = static_cast<int>(std::min<int64_t>(nr, cols - j));
          kern.tile[2 * n <= nr][0][m](kc, ap[k].get(), mr, packs[k].at(pc, j, kc), nr, zk + j, cols, 1.0f, beta, m, n);
        }
      }
      kern.bias_act(b1 + 2 * w, gemm::Activation::none, zk + 2 * w, cols, m, w);  // b1_z, b1_r: in xg
      for (int i = 0; i < m; ++i) {
        const int64_t n = i0 + i, o = (n * T + t) * H + u0;
        gk.gru_fwd(w, f.xg + (n * T + t) * GH + c0, zk + i * cols, hp + n * ldh + u0, f.aux + o, f.y + o);
      }
    }
  };
  run_steps(parts, T, false, step);
  return true;
}

}  // namespace forgeml::rnn
