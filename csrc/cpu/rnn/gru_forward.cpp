// Float32 GRU forward straight on gemm's micro-kernels (cpu/gemm/kernels.h), without its
// driver: per step, thread part and panel of MR batch rows, x_t·W (+ bias) goes into the panel's
// rows of xg, h_{t-1}·R (+ b1_h) into an MR x 3w buffer, and the gates follow while both are
// still in L1/L2; the gates then overwrite xg (what backward reads). Before, x·W + b0 was one
// GEMM over all steps whose (N, T, 3H) output went through memory, and h·R went through gemm's
// driver into an N x 3w buffer in L2 before the row pass read it.
// The reset gate multiplies h_{t-1}·R_h + b1_h (reset_after), so R cannot be stacked under W as
// in the LSTM: two products per panel; b1's z and r blocks are folded into b0 (they only add),
// so only b1_h is added to h·R.
// Each product element is the same sum for any split or thread count (same depth blocks), so
// results do not depend on them.
#include "gru_forward.h"

#include <algorithm>
#include <vector>

#include "cpu/gemm/kernels.h"
#include "panels.h"
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
  const RowTiles tiles(N, mr);
  // b0 with b1's z and r blocks folded in (they only ever add to b0's); b1_h is multiplied by
  // the reset gate, so it is added to h·R_h.
  std::vector<float> bias(f.bias, f.bias + GH);
  for (int64_t k = 0; k < parts; ++k) {
    const int64_t c0 = G * split[k], w = split[k + 1] - split[k];
    for (int64_t j = c0; j < c0 + 2 * w; ++j) bias[j] += f.bias[GH + j];
  }
  const int64_t F = d.F;
  std::vector<Panels> wpacks, rpacks;
  std::vector<Floats> ap, z;  // per part: a packed panel of x or h rows, the panel's MR x 3w h·R
  for (int64_t k = 0; k < parts; ++k) {
    const int64_t c0 = G * split[k], cols = G * split[k + 1] - c0;
    wpacks.emplace_back(kern, false, f.kernel, GH, F, c0, cols);
    rpacks.emplace_back(kern, false, f.rkernel, GH, H, c0, cols);
    ap.push_back(floats(mr * std::min<int64_t>(std::max(F, H), kern.kc)));
    z.push_back(floats(mr * cols));
  }
  // out (m x cols, row stride ldo) = rows [0, m) of A (K deep, row stride lda) times p.
  auto product_rows = [&](const float* A, int64_t lda, int m, int64_t K, const Panels& p, float* ap_, float* out,
                          int64_t ldo, int64_t cols) {
    for (int64_t pc = 0; pc < K; pc += kern.kc) {
      const int64_t kc = std::min<int64_t>(kern.kc, K - pc);
      pack_rows(kern, A, lda, m, pc, kc, ap_);
      const float beta = pc == 0 ? 0.0f : 1.0f;
      for (int64_t j = 0; j < cols; j += nr) {
        const int n = static_cast<int>(std::min<int64_t>(nr, cols - j));
        kern.tile[2 * n <= nr][0][m](kc, ap_, mr, p.at(pc, j, kc), nr, out + j, ldo, 1.0f, beta, m, n);
      }
    }
  };
  auto step = [&](int64_t k, int64_t t) {
    const int64_t u0 = split[k], w = split[k + 1] - u0, c0 = G * u0, cols = G * w;
    const float* hp = t == 0 ? h0 : f.y + (t - 1) * H;
    const int64_t ldh = t == 0 ? H : T * H;
    const float* b1 = f.bias + GH + c0;  // recurrent bias, row 1
    float* zk = z[k].get();
    for (int64_t ti = 0; ti < tiles.count; ++ti) {
      const int64_t i0 = tiles.begin(ti);
      const int m = tiles.height(ti);
      float* a = f.xg + (i0 * T + t) * GH + c0;  // this panel's x_t·W + b0 (+ b1_z, b1_r)
      if (F == 0)
        for (int i = 0; i < m; ++i) std::fill(a + i * T * GH, a + i * T * GH + cols, 0.0f);
      product_rows(f.x + (i0 * T + t) * F, T * F, m, F, wpacks[k], ap[k].get(), a, T * GH, cols);
      kern.bias_act(bias.data() + c0, gemm::Activation::none, a, T * GH, m, cols);
      product_rows(hp + i0 * ldh, ldh, m, H, rpacks[k], ap[k].get(), zk, cols, cols);
      kern.bias_act(b1 + 2 * w, gemm::Activation::none, zk + 2 * w, cols, m, w);  // b1_z, b1_r: in bias
      for (int i = 0; i < m; ++i) {
        const int64_t n = i0 + i, o = (n * T + t) * H + u0;
        gk.gru_fwd(w, a + i * T * GH, zk + i * cols, hp + n * ldh + u0, f.aux + o, f.y + o);
      }
    }
  };
  run_steps(parts, T, false, step);
  return true;
}

}  // namespace forgeml::rnn
