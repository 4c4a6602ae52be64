// Backward through time, mirroring forward.cpp. Contract in rnn.h.
//   1. per step (t = T-1 .. 0) and part k: dL/dh_t[:, part k] = dz_{t+1} (N, GH) x R^T on the
//      part's rows of R, packed once, then the part's gate gradients dz_t from dL/dh_t (plus dy_t)
//      — one barrier per step;
//   2. one large GEMM for dx and one for [dkernel; dbias; drecurrent_kernel] (GRU: two) over
//      all N*T rows; dbias is the column sum of dz, the product's row from a column of ones.
// The float32 LSTM takes lstm_backward.cpp's path instead where the micro-kernels apply.
// With f.bf16 the per-step and the weight-gradient products run in bf16 (products.h); dbias's
// column sums stay float32 (a float32 product of its own).
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "forgeml/check.h"
#include "forgeml/gemm.h"
#include "kernels.h"
#include "lstm_backward.h"
#include "products.h"
#include "rnn.h"
#include "steps.h"

namespace forgeml::rnn {

namespace {

// A temporary of n floats: one of this thread's kept buffers when n is at most kKeepFloats
// (fresh multi-MB buffers cost page faults comparable to the products on every call), else a
// fresh one. Contents are unspecified.
constexpr int64_t kKeepFloats = int64_t{1} << 22;  // 16 MiB each

class Temp {
 public:
  Temp(std::vector<float>& keep, int64_t n) {
    if (n > kKeepFloats) {
      own_.reset(new float[n]);
      p_ = own_.get();
      return;
    }
    if (static_cast<int64_t>(keep.size()) < n) keep.resize(n);
    p_ = keep.data();
  }
  float* get() const { return p_; }

 private:
  std::unique_ptr<float[]> own_;
  float* p_;
};

}  // namespace

void backward(Cell cell, Act act, const Dims& d, const Split& split, const Forward& f, const Backward& b) {
  const int64_t N = d.N, T = d.T, F = d.F, H = d.H, GH = d.GH(), G = d.G, NT = N * T;
  const int64_t parts = static_cast<int64_t>(split.size()) - 1;
  FORGEML_CHECK_ARG(parts >= 1 && split.front() == 0 && split.back() == H, "split: does not cover H = ", H);
  const GateKernels& gk = gate_kernels();
  const bool gru = cell == Cell::gru, lstm = cell == Cell::lstm;

  // running dL/dh and dL/dc, ending as the initial states' gradients
  std::vector<float> dhn(N * H, 0.0f), dcn(lstm ? N * H : 0, 0.0f);
  if (b.dh_T) std::copy(b.dh_T, b.dh_T + N * H, dhn.begin());
  if (lstm && b.dc_T) std::copy(b.dc_T, b.dc_T + N * H, dcn.begin());

  std::vector<float> zeros;
  const float* h0 = f.h0;
  const float* c0 = f.c0;
  if (!h0 || (lstm && !c0)) zeros.assign(N * H, 0.0f);
  if (!h0) h0 = zeros.data();
  if (!c0) c0 = zeros.data();
  if (lstm && lstm_backward_f32(d, split, gk, h0, c0, f, b, dhn.data(), dcn.data())) {
    std::copy(dhn.begin(), dhn.end(), b.dh0);
    std::copy(dcn.begin(), dcn.end(), b.dc0);
    return;
  }

  // every element is written before it is read: no zero fill (these are the big buffers)
  thread_local std::vector<float> keep_da, keep_db, keep_xh;
  Temp da_buf(keep_da, NT * GH), db_buf(keep_db, gru ? NT * GH : 0);
  float *da = da_buf.get(), *db = db_buf.get();
  float* dr = gru ? db : da;  // what multiplies R^T and h_{t-1}

  if (NT > 0 && H > 0) {
    std::vector<StepWeights> packs;  // op(B) = R[u0:u1, :]^T, (GH, w)
    for (int64_t k = 0; k < parts; ++k) {
      int64_t u0 = split[k], w = split[k + 1] - u0;
      packs.emplace_back(f.bf16, true, GH, w, f.rkernel + u0 * GH, GH);
    }
    auto gates = [&](int64_t k, int64_t t) {
      const int64_t u0 = split[k], w = split[k + 1] - u0, c0k = G * u0;
      for (int64_t n = 0; n < N; ++n) {
        const int64_t o = (n * T + t) * H + u0, og = (n * T + t) * GH + c0k;
        const float* dy = b.dy ? b.dy + o : nullptr;
        float* dh = dhn.data() + n * H + u0;
        switch (cell) {
          case Cell::simple:
            gk.act_bwd(act, w, f.y + o, dy, dh, da + og);
            break;
          case Cell::lstm: {
            const float* cprev = t == 0 ? c0 + n * H + u0 : f.aux + o - H;
            gk.lstm_bwd(w, f.xg + og, f.aux + o, cprev, dy, dh, dcn.data() + n * H + u0, da + og);
            break;
          }
          case Cell::gru: {
            const float* hprev = t == 0 ? h0 + n * H + u0 : f.y + o - H;
            gk.gru_bwd(w, f.xg + og, f.aux + o, hprev, dy, dh, da + og, db + og);
            break;
          }
        }
      }
    };
    auto recur = [&](int64_t k, int64_t t) {
      const int64_t u0 = split[k];
      // GRU's gates left dL/dh_{t-1} through the z-path in dhn: accumulate onto it.
      packs[k].run(N, dr + t * GH, T * GH, gru, dhn.data() + u0, H);
    };
    // One phase per step: part k first sends step t+1's gate gradients back through R into its
    // own units' columns of dL/dh_t, then runs its gates at t, which read only those columns; so
    // a step needs one barrier (every part's dz_{t+1} complete), not two.
    run_steps(parts, T, true, [&](int64_t k, int64_t t) {
      if (t + 1 < T) recur(k, t + 1);
      gates(k, t);
    });
    run_steps(parts, 1, false, [&](int64_t k, int64_t) { recur(k, 0); });
  }
  std::copy(dhn.begin(), dhn.end(), b.dh0);
  if (lstm) std::copy(dcn.begin(), dcn.end(), b.dc0);

  // weight gradients over all N*T rows at once, from the stacked rows [x_t 1 h_{t-1}]
  // (NT, F+1+H): SimpleRNN and LSTM multiply the same da by all of it, so one product packs da
  // once and gives dbias as its row F (no pass of its own over da); GRU takes [x_t 1] with da
  // and [1 h_{t-1}] with db.
  const int64_t K = F + 1 + H;
  Temp xh_buf(keep_xh, NT * K);
  float* xh = xh_buf.get();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t t = 0; t < T; ++t) {
      float* row = xh + (n * T + t) * K;
      const float* hp = t == 0 ? h0 + n * H : f.y + (n * T + t - 1) * H;
      std::copy(f.x + (n * T + t) * F, f.x + (n * T + t + 1) * F, row);
      row[F] = 1.0f;
      std::copy(hp, hp + H, row + F + 1);
    }
  const bool bf = f.bf16;
  product(bf, false, true, NT, F, GH, da, GH, f.kernel, GH, b.dx, F);
  std::vector<float> dw(K * GH);  // rows: dkernel (F), dbias, drkernel (H)
  if (gru) {
    std::vector<float> dwr((H + 1) * GH);  // the recurrent bias's row, drkernel
    product(bf, true, false, F + 1, GH, NT, xh, K, da, GH, dw.data(), GH);
    product(bf, true, false, H + 1, GH, NT, xh + F, K, dr, GH, dwr.data(), GH);
    std::copy(dwr.begin(), dwr.begin() + GH, b.dbias + GH);
    std::copy(dwr.begin() + GH, dwr.end(), b.drkernel);
  } else {
    product(bf, true, false, K, GH, NT, xh, K, da, GH, dw.data(), GH);
    std::copy(dw.begin() + (F + 1) * GH, dw.end(), b.drkernel);
  }
  std::copy(dw.begin(), dw.begin() + F * GH, b.dkernel);
  std::copy(dw.begin() + F * GH, dw.begin() + (F + 1) * GH, b.dbias);
  if (bf) {  // the bf16 products round da: dbias's sums stay float32 on da itself
    std::vector<float> ones(NT, 1.0f);
    product(false, false, false, 1, GH, NT, ones.data(), NT, da, GH, b.dbias, GH);
    if (gru) product(false, false, false, 1, GH, NT, ones.data(), NT, db, GH, b.dbias + GH, GH);
  }
}

}  // namespace forgeml::rnn
