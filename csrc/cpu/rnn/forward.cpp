// Forward through time. Contract in rnn.h: x (N, T, F); weights permuted (layout.cpp).
// SimpleRNN, and the GRU in bf16 or on the reference ISA (float32 GRU: gru_forward.cpp, x·W fused
// into the steps on gemm's micro-kernels):
//   1. one GEMM for the input projection of every step (+ bias): into xg, or straight into y
//      for SimpleRNN;
//   2. per step and thread part k: the recurrent GEMM h_{t-1} (N, H) x R[:, part k] on R's slice
//      packed once, then the part's gates row by row while they are in cache.
// LSTM: float32 in lstm_forward.cpp (gemm's micro-kernels with the gates per row panel); the
// bf16 products (and the reference ISA) here: per step and part one GEMM z = [x_t h_{t-1}]
// (N, F+H) x [W; R][:, part k] on the stacked kernels' slice packed once, then the gates (+ b).
// No (N, T, 4H) projection goes through memory: z is the part's slice of xg when backward needs
// the gates (f.xg set), else a per-part buffer that stays in L2; and the longer depth (F+H)
// keeps the register tiles busier.
// Why LSTM/GRU gates are not in the GEMM epilogue: gemm.h calls it per micro-tile (14 x 32 on
// AVX-512), so a unit's 3-4 gates would have to be interleaved 8 units per 32 columns and the gate
// math would run on half vectors, one call per tile. The part's output (N x G*w floats, <= 64 KiB
// in the bench cases) is still in L1/L2 when the row pass reads it right after the part's GEMM.
// SimpleRNN's activation is elementwise and does run in the epilogue.
// With f.bf16 every product runs in bf16 (products.h); the packed slices are then bf16 panels.
#include <cstring>
#include <vector>

#include "forgeml/check.h"
#include "forgeml/gemm.h"
#include "gru_forward.h"
#include "kernels.h"
#include "lstm_forward.h"
#include "products.h"
#include "rnn.h"
#include "steps.h"

namespace forgeml::rnn {

namespace {

struct ActCtx {
  const GateKernels* gk;
  Act act;
};

// SimpleRNN's activation is elementwise, so it fuses into the GEMM epilogue on any block.
void act_epilogue(void* ctx, int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* c, int64_t ldc) {
  auto* a = static_cast<const ActCtx*>(ctx);
  for (int64_t i = i0; i < i1; ++i) a->gk->act_fwd(a->act, j1 - j0, c + (i - i0) * ldc);
}

// LSTM steps on the stacked kernel [W; R] (see the top of the file). f.xg may be null (inference).
void lstm_forward(const Dims& d, const Split& split, const GateKernels& gk, const float* h0, const float* c0,
                  const Forward& f) {
  const int64_t N = d.N, T = d.T, F = d.F, H = d.H, GH = d.GH(), G = d.G, K = F + H;
  const int64_t parts = static_cast<int64_t>(split.size()) - 1;
  std::vector<float> stacked(K * GH);  // rows 0..F-1: W, rows F..F+H-1: R
  std::copy(f.kernel, f.kernel + F * GH, stacked.begin());
  std::copy(f.rkernel, f.rkernel + H * GH, stacked.begin() + F * GH);
  std::vector<StepWeights> packs;
  std::vector<std::vector<float>> a(parts), z(parts);  // per part: [x_t h_{t-1}] rows, gates
  for (int64_t k = 0; k < parts; ++k) {
    int64_t u0 = split[k], w = split[k + 1] - u0;
    packs.emplace_back(f.bf16, false, K, G * w, stacked.data() + G * u0, GH);
    a[k].resize(N * K);
    if (!f.xg) z[k].resize(N * G * w);
  }
  auto step = [&](int64_t k, int64_t t) {
    const int64_t u0 = split[k], w = split[k + 1] - u0, c0k = G * u0;
    const float* hprev = t == 0 ? h0 : f.y + (t - 1) * H;
    const int64_t ldh = t == 0 ? H : T * H;
    float* ak = a[k].data();
    for (int64_t n = 0; n < N; ++n) {
      std::memcpy(ak + n * K, f.x + (n * T + t) * F, sizeof(float) * F);
      std::memcpy(ak + n * K + F, hprev + n * ldh, sizeof(float) * H);
    }
    float* zk = f.xg ? f.xg + t * GH + c0k : z[k].data();
    const int64_t ldz = f.xg ? T * GH : G * w;
    packs[k].run(N, ak, K, false, zk, ldz);
    for (int64_t n = 0; n < N; ++n) {
      const float* cprev = t == 0 ? c0 + n * H + u0 : f.aux + (n * T + t - 1) * H + u0;
      int64_t o = (n * T + t) * H + u0;
      gk.lstm_fwd(w, zk + n * ldz, f.bias + c0k, cprev, f.aux + o, f.y + o);
    }
  };
  run_steps(parts, T, false, step);
}

}  // namespace

void forward(Cell cell, Act act, const Dims& d, const Split& split, const Forward& f) {
  const int64_t N = d.N, T = d.T, F = d.F, H = d.H, GH = d.GH(), G = d.G;
  const int64_t parts = static_cast<int64_t>(split.size()) - 1;
  FORGEML_CHECK_ARG(parts >= 1 && split.front() == 0 && split.back() == H, "split: does not cover H = ", H);
  if (N == 0 || T == 0 || H == 0) return;
  const GateKernels& gk = gate_kernels();

  std::vector<float> zeros;  // default initial states
  const float* h0 = f.h0;
  const float* c0 = f.c0;
  if (!h0 || (cell == Cell::lstm && !c0)) zeros.assign(N * H, 0.0f);
  if (!h0) h0 = zeros.data();
  if (!c0) c0 = zeros.data();

  if (cell == Cell::lstm) {
    if (!lstm_forward_f32(d, split, gk, h0, c0, f)) lstm_forward(d, split, gk, h0, c0, f);
    return;
  }

  if (cell == Cell::gru && gru_forward_f32(d, split, gk, h0, f)) return;

  // 1. input projection for all steps
  float* proj = cell == Cell::simple ? f.y : f.xg;
  const int64_t ldp = cell == Cell::simple ? H : GH;
  gemm::Epilogue in_ep;
  in_ep.bias = f.bias;
  product(f.bf16, false, false, N * T, GH, F, f.x, F, f.kernel, GH, proj, ldp, in_ep);

  // 2. the recurrent kernel's part slices, packed once per sequence
  std::vector<StepWeights> packs;
  std::vector<std::vector<float>> scratch(parts);
  for (int64_t k = 0; k < parts; ++k) {
    int64_t u0 = split[k], w = split[k + 1] - u0;
    packs.emplace_back(f.bf16, false, H, G * w, f.rkernel + G * u0, GH);
    if (cell == Cell::gru) scratch[k].resize(N * G * w);
  }

  ActCtx actx{&gk, act};
  auto step = [&](int64_t k, int64_t t) {
    const int64_t u0 = split[k], w = split[k + 1] - u0, c0k = G * u0;
    const float* hprev = t == 0 ? h0 : f.y + (t - 1) * H;
    const int64_t ldh = t == 0 ? H : T * H;
    switch (cell) {
      case Cell::simple: {
        gemm::Epilogue ep;
        ep.fn = &act_epilogue;
        ep.ctx = &actx;
        packs[k].run(N, hprev, ldh, true, f.y + t * H + u0, T * H, ep);
        break;
      }
      case Cell::lstm:
        break;  // lstm_forward
      case Cell::gru: {
        float* b = scratch[k].data();
        gemm::Epilogue ep;
        ep.bias = f.bias + GH + c0k;  // recurrent bias, row 1
        packs[k].run(N, hprev, ldh, false, b, G * w, ep);
        for (int64_t n = 0; n < N; ++n) {
          const float* hp = hprev + n * ldh + u0;
          int64_t o = (n * T + t) * H + u0;
          gk.gru_fwd(w, f.xg + (n * T + t) * GH + c0k, b + n * G * w, hp, f.aux + o, f.y + o);
        }
        break;
      }
    }
  };
  run_steps(parts, T, false, step);
}

}  // namespace forgeml::rnn
