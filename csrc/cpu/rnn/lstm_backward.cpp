// Float32 LSTM backward straight on gemm's micro-kernels (cpu/gemm/kernels.h), in one pass over
// the steps that uses each step's gate gradients dz_t (N, 4H) while they are in cache, instead
// of writing dz for all steps to memory and running the weight-gradient products over all N*T
// rows afterwards:
//   per step:          [dx_t | dL/dh_{t-1}] = dz_t [W; R]^T   (dz_t read in place, [W; R]^T
//                      packed once per call)
//   per block of steps: [dkernel; drecurrent_kernel] += [x_t h_{t-1}]^T dz_t over the block's
//                      rows (kBlockRows or more, so that the sum over them outweighs reading and
//                      writing the weight gradient), dbias += dz_t's column sums.
// Threads take the thread parts of the units (rnn.h's Split) with one barrier per step: part k
// runs step t+1's product for its units' columns of dL/dh_t (and its share of dx's columns),
// then its gates at t, which read only those columns, then at a block's last step the weight
// gradients of its own gate columns. No output's bits depend on the thread count (the split
// fixes every sum's order); the weight gradients are summed block by block (t = T-1 .. 0), so
// their bits differ from backward.cpp's single product over all rows.
#include "lstm_backward.h"

#include <algorithm>
#include <vector>

#include "cpu/gemm/kernels.h"
#include "forgeml/parallel.h"
#include "panels.h"
#include "steps.h"

namespace forgeml::rnn {

namespace {

using gemm::detail::Kernel;

constexpr int64_t kBlockRows = 256;  // rows (steps x N) per weight-gradient product

// The next step's gate inputs of one part (its rows of the activated gates, c_{t-2}, dy), pulled
// into cache a few lines at a time between the product's tiles: the rows lie a whole sequence
// apart, each too short a run for the hardware prefetcher, and fetched on demand they left the
// gate row waiting on memory (~10% of the backward).
struct Ahead {
  const float* p[3] = {};  // row 0 of each stream
  int64_t stride[3] = {}, lines[3] = {};
  int64_t rows = 0, row = 0, line = 0, per_tile = 0;

  void pump() {
    for (int64_t i = 0; i < per_tile && row < rows; ++i) {
      int64_t l = line, s = 0;
      while (l >= lines[s]) l -= lines[s++];
      __builtin_prefetch(p[s] + row * stride[s] + 16 * l, 0, 3);
      if (++line == lines[0] + lines[1] + lines[2]) line = 0, ++row;
    }
  }
};

// One product target: C (row stride ldc) over cols columns of packed op(B).
struct Target {
  const Panels* p;
  int64_t cols;
  float* c;
  int64_t ldc;
};

struct LstmBack {
  const Kernel& kern;
  const GateKernels& gk;
  const Dims& d;
  const Split& split;
  const Forward& f;
  const Backward& b;
  const float* h0;
  const float* c0;
  float* dhn;      // dL/dh_t (N, H)
  float* dcn;      // dL/dc_t (N, H)
  float* dz;       // the block's dz_t, step t in slot t % S: rows (slot, n) of ldz
  int64_t ldz, S;  // S: steps per block
  float* dw;       // [dkernel; drecurrent_kernel] (F + H, GH)
  int64_t lds;     // row stride of the staged [x_t h_{t-1}] rows

  float* slot(int64_t t) const { return dz + (t % S) * d.N * ldz; }

  // C = A (M x K, row-major in place, stride lda) op(B) for every target. Depth blocks, then
  // column panels, then row tiles: each packed panel is read once per step while A's rows
  // (dz_t, a few hundred KiB at most) come from L2.
  void product(const float* a, int64_t lda, int64_t M, int64_t K, const Target* tg, int ntg, Ahead& ah) const {
    const int nr = kern.nr;
    const RowTiles tiles(M, kern.mr);
    for (int64_t pc = 0; pc < K; pc += kern.kc) {
      const int64_t kc = std::min<int64_t>(kern.kc, K - pc);
      const float beta = pc == 0 ? 0.0f : 1.0f;
      for (int q = 0; q < ntg; ++q)
        for (int64_t j = 0; j < tg[q].cols; j += nr) {
          const int n = static_cast<int>(std::min<int64_t>(nr, tg[q].cols - j));
          for (int64_t ti = 0; ti < tiles.count; ++ti) {
            const int64_t i0 = tiles.begin(ti);
            const int m = tiles.height(ti);
            kern.tile[2 * n <= nr][1][m](kc, a + i0 * lda + pc, lda, tg[q].p->at(pc, j, kc), nr,
                                         tg[q].c + i0 * tg[q].ldc + j, tg[q].ldc, 1.0f, beta, m, n);
            ah.pump();
          }
        }
    }
  }

  // dw's columns [c0, c0 + cols) += op(A) B over K rows, op(A)(i, r) = a[r * lds + i] (the
  // staged rows) and B = dz's rows (ldz apart) in place. op(A) is packed per depth block into the
  // row tiles' panels (ap), which each column panel then reads whole lines of: read in place, a
  // tile used 6 floats of each 64-byte line of A, and this product ran at 2/3 of the forward's
  // rate. Column panels outside the row tiles, so each panel of B stays in L1 across them.
  void accumulate(const float* a, int64_t M, int64_t K, const float* bz, int64_t cols, float* c, float* ap) const {
    const int mr = kern.mr, nr = kern.nr;
    const RowTiles tiles(M, mr);
    const int64_t GH = d.GH();
    for (int64_t pc = 0; pc < K; pc += kern.kc) {
      const int64_t kc = std::min<int64_t>(kern.kc, K - pc);
      for (int64_t ti = 0; ti < tiles.count; ++ti) {
        float* dst = ap + ti * mr * kc;
        const int64_t i0 = tiles.begin(ti);
        const int m = tiles.height(ti);
        if (kern.pack_a) {
          kern.pack_a(true, a, lds, i0, m, pc, kc, dst);
          continue;
        }
        for (int64_t k = 0; k < kc; ++k)
          for (int i = 0; i < m; ++i) dst[k * mr + i] = a[(pc + k) * lds + i0 + i];
      }
      for (int64_t j = 0; j < cols; j += nr) {
        const int n = static_cast<int>(std::min<int64_t>(nr, cols - j));
        for (int64_t ti = 0; ti < tiles.count; ++ti) {
          const int m = tiles.height(ti);
          kern.tile[2 * n <= nr][0][m](kc, ap + ti * mr * kc, mr, bz + pc * ldz + j, ldz, c + tiles.begin(ti) * GH + j,
                                       GH, 1.0f, 1.0f, m, n);
        }
      }
    }
  }

  // Part k's gate inputs at step t (none for t < 0), spread over `tiles` tile calls.
  Ahead ahead(int64_t k, int64_t t, int64_t tiles) const {
    Ahead a;
    if (t < 0) return a;
    const int64_t T = d.T, H = d.H, GH = d.GH(), u0 = split[k], w = split[k + 1] - u0, lw = (w + 15) / 16;
    a.rows = d.N;
    a.p[0] = f.xg + t * GH + d.G * u0, a.stride[0] = T * GH, a.lines[0] = (d.G * w + 15) / 16;
    a.p[1] = t == 0 ? c0 + u0 : f.aux + (t - 1) * H + u0, a.stride[1] = t == 0 ? H : T * H, a.lines[1] = lw;
    if (b.dy) a.p[2] = b.dy + t * H + u0, a.stride[2] = T * H, a.lines[2] = lw;
    a.per_tile = (a.rows * (a.lines[0] + a.lines[1] + a.lines[2])) / std::max<int64_t>(tiles, 1) + 1;
    return a;
  }

  // Part k's gate gradients at t into dz_t's columns of its units, from dL/dh_t in dhn.
  void gates(int64_t k, int64_t t) const {
    const int64_t T = d.T, H = d.H, GH = d.GH(), u0 = split[k], w = split[k + 1] - u0, c0k = d.G * u0;
    float* z = slot(t);
    for (int64_t n = 0; n < d.N; ++n) {
      const int64_t o = (n * T + t) * H + u0, og = (n * T + t) * GH + c0k;
      const float* cprev = t == 0 ? c0 + n * H + u0 : f.aux + o - H;
      gk.lstm_bwd(w, f.xg + og, f.aux + o, cprev, b.dy ? b.dy + o : nullptr, dhn + n * H + u0, dcn + n * H + u0,
                  z + n * ldz + c0k);
    }
  }

  // Part k's columns of the weight gradients over the block of steps [t0, t1): its rows of
  // [x_t h_{t-1}] staged in st (the block's slots in order), then one product (its packed A in
  // ap) and the bias sums.
  void weight_grads(int64_t k, int64_t t0, int64_t t1, float* st, float* ap) const {
    const int64_t N = d.N, T = d.T, F = d.F, H = d.H, c0k = d.G * split[k], cols = d.G * split[k + 1] - c0k;
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t n = 0; n < N; ++n) {
        float* row = st + ((t % S) * N + n) * lds;
        const float* hp = t == 0 ? h0 + n * H : f.y + (n * T + t - 1) * H;
        std::copy(f.x + (n * T + t) * F, f.x + (n * T + t + 1) * F, row);
        std::copy(hp, hp + H, row + F);
      }
    const float* z = slot(t0) + c0k;  // t0 % S == 0: the block's rows start at slot 0
    const int64_t K = (t1 - t0) * N;
    accumulate(st, F + H, K, z, cols, dw + c0k, ap);
    float* db = b.dbias + c0k;
    for (int64_t r = 0; r < K; ++r) {
      const float* zr = z + r * ldz;
      for (int64_t j = 0; j < cols; ++j) db[j] += zr[j];
    }
  }
};

}  // namespace

bool lstm_backward_f32(const Dims& d, const Split& split, const GateKernels& gk, const float* h0, const float* c0,
                       const Forward& f, const Backward& b, float* dhn, float* dcn) {
  const Isa isa = active_isa();
  if (f.bf16 || isa == Isa::reference || d.N == 0 || d.T == 0 || d.H == 0) return false;
  const Kernel& kern = gemm::detail::kernel_for(isa);
  const int64_t N = d.N, T = d.T, F = d.F, H = d.H, GH = d.GH(), parts = static_cast<int64_t>(split.size()) - 1;
  // At least two slots: step t's gates write one while the other parts' products read t+1's.
  const int64_t S = std::max<int64_t>(2, (kBlockRows + N - 1) / N);
  // Rows padded by a cache line: a power-of-two stride would put a column panel's rows (dz) or a
  // row tile's columns (the staged rows) in a few L1 sets.
  const int64_t ldz = GH + 16, lds = (F + H + 15) / 16 * 16 + 16;
  Floats dz = floats(S * N * ldz), dw = floats((F + H) * GH);
  std::fill(dw.get(), dw.get() + (F + H) * GH, 0.0f);
  std::fill(b.dbias, b.dbias + GH, 0.0f);
  // part k: dL/dh's columns of its units (from R^T), dx's columns [F k / P, F (k+1) / P) (W^T),
  // and its own staging rows
  std::vector<Panels> pr, pw;
  std::vector<Floats> stage, packed;
  std::vector<int64_t> fx(parts + 1);
  for (int64_t k = 0; k <= parts; ++k) fx[k] = F * k / parts;
  for (int64_t k = 0; k < parts; ++k) {
    pr.emplace_back(kern, true, f.rkernel, GH, GH, split[k], split[k + 1] - split[k]);
    pw.emplace_back(kern, true, f.kernel, GH, GH, fx[k], fx[k + 1] - fx[k]);
    stage.push_back(floats(S * N * lds));
    packed.push_back(floats(RowTiles(F + H, kern.mr).count * kern.mr * std::min<int64_t>(kern.kc, S * N)));
  }
  const LstmBack L{kern, gk, d, split, f, b, h0, c0, dhn, dcn, dz.get(), ldz, S, dw.get(), lds};
  // step s's product: dL/dh_{s-1} (into dhn) and dx_s, from dz_s
  auto back = [&](int64_t k, int64_t s, Ahead& ah) {
    const Target tg[2] = {{&pr[k], split[k + 1] - split[k], dhn + split[k], H},
                          {&pw[k], fx[k + 1] - fx[k], b.dx + s * F + fx[k], T * F}};
    L.product(L.slot(s), ldz, N, GH, tg, fx[k + 1] > fx[k] ? 2 : 1, ah);
  };
  const int64_t row_tiles = RowTiles(N, kern.mr).count, depth_blocks = (GH + kern.kc - 1) / kern.kc;
  auto tiles = [&](int64_t k) {  // a part's tile calls in one step's product
    const int64_t w = split[k + 1] - split[k], nx = fx[k + 1] - fx[k];
    return row_tiles * depth_blocks * ((w + kern.nr - 1) / kern.nr + (nx + kern.nr - 1) / kern.nr);
  };
  run_steps(parts, T, true, [&](int64_t k, int64_t t) {
    Ahead ah = L.ahead(k, t - 1, tiles(k));
    if (t + 1 < T) back(k, t + 1, ah);
    L.gates(k, t);
    if (t % S == 0) L.weight_grads(k, t, std::min(T, t + S), stage[k].get(), packed[k].get());
  });
  run_steps(parts, 1, false, [&](int64_t k, int64_t) {
    Ahead none;
    back(k, 0, none);
  });
  std::copy(dw.get(), dw.get() + F * GH, b.dkernel);
  std::copy(dw.get() + F * GH, dw.get() + (F + H) * GH, b.drkernel);
  return true;
}

}  // namespace forgeml::rnn
