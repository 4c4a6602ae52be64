// Convolution entry points: shape checks, empty shapes, then the active ISA's table (kernels.h).
#include "cpu/conv/conv.h"

#include <algorithm>
#include <vector>

#include "cpu/conv/kernels.h"
#include "forgeml/check.h"
#include "forgeml/parallel.h"

namespace forgeml::conv {

void Geom::finish() {
  FORGEML_CHECK_ARG(N >= 0 && H >= 0 && W >= 0 && C >= 0, "x: dimensions must be >= 0, got (", N, ", ", H,
                    ", ", W, ", ", C, ")");
  FORGEML_CHECK_ARG(KH >= 1 && KW >= 1, "kernel: spatial size must be >= 1, got (", KH, ", ", KW, ")");
  FORGEML_CHECK_ARG(O >= 0, "kernel: output channels must be >= 0, got ", O);
  FORGEML_CHECK_ARG(sh >= 1 && sw >= 1, "strides: expected positive integers, got (", sh, ", ", sw, ")");
  FORGEML_CHECK_ARG(dh >= 1 && dw >= 1, "dilation: expected positive integers, got (", dh, ", ", dw, ")");
  FORGEML_CHECK_ARG(pt >= 0 && pb >= 0 && pl >= 0 && pr >= 0, "padding: expected non-negative pads");
  int64_t eh = (KH - 1) * dh + 1, ew = (KW - 1) * dw + 1;
  FORGEML_CHECK_ARG(eh <= H + pt + pb && ew <= W + pl + pr, "kernel: dilated size (", eh, ", ", ew,
                    ") is larger than the padded input (", H + pt + pb, ", ", W + pl + pr, ")");
  OH = (H + pt + pb - eh) / sh + 1;
  OW = (W + pl + pr - ew) / sw + 1;
}

// ---------------------------------------------------------------- shared by the entries

// db[o] = sum over pixels of dy[., o]: per-thread partial sums in float64, then reduced.
void bias_grad(const Geom& g, const float* dy, float* db) {
  int64_t M = g.N * g.OH * g.OW;
  int T = std::max<int>(1, std::min<int64_t>(num_threads(), M / 4096 + 1));
  std::vector<double> part(T * g.O, 0.0);
  parallel_for(T, 1, [&](int64_t tb, int64_t te) {
    for (int64_t t = tb; t < te; ++t) {
      int64_t mb = M * t / T, me = M * (t + 1) / T;
      std::vector<float> acc(g.O, 0.f);
      double* p = part.data() + t * g.O;
      for (int64_t m = mb; m < me; ++m) {
        const float* d = dy + m * g.O;
        for (int64_t o = 0; o < g.O; ++o) acc[o] += d[o];
        if ((m - mb) % 256 == 255) {  // flush float partials to keep long sums accurate
          for (int64_t o = 0; o < g.O; ++o) p[o] += acc[o], acc[o] = 0.f;
        }
      }
      for (int64_t o = 0; o < g.O; ++o) p[o] += acc[o];
    }
  });
  for (int64_t o = 0; o < g.O; ++o) {
    double s = 0.0;
    for (int t = 0; t < T; ++t) s += part[t * g.O + o];
    db[o] = static_cast<float>(s);
  }
}

bool flipped_geometry(const Geom& g, Geom& f) {
  f = Geom{};
  f.N = g.N, f.H = g.OH, f.W = g.OW, f.C = g.O, f.KH = g.KH, f.KW = g.KW, f.O = g.C;
  f.dh = g.dh, f.dw = g.dw;
  f.pt = (g.KH - 1) * g.dh - g.pt, f.pl = (g.KW - 1) * g.dw - g.pl;
  f.pb = g.H - 1 + (g.KH - 1) * g.dh + 1 - g.OH - f.pt;
  f.pr = g.W - 1 + (g.KW - 1) * g.dw + 1 - g.OW - f.pl;
  if (g.sh != 1 || g.sw != 1 || f.pt < 0 || f.pl < 0 || f.pb < 0 || f.pr < 0) return false;
  f.finish();
  return true;
}

void flip_weights(const Geom& g, const float* w, float* wf) {
  for (int64_t kh = 0; kh < g.KH; ++kh)
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const float* src = w + ((g.KH - 1 - kh) * g.KW + (g.KW - 1 - kw)) * g.C * g.O;
      float* dst = wf + (kh * g.KW + kw) * g.O * g.C;
      for (int64_t c = 0; c < g.C; ++c)
        for (int64_t o = 0; o < g.O; ++o) dst[o * g.C + c] = src[c * g.O + o];
    }
}

// ---------------------------------------------------------------- dispatch

void forward(const Geom& g, const float* x, const float* w, const float* bias, gemm::Activation act, float* y) {
  ThreadCountScope threads;  // per-thread buffers and the work split see one thread count
  int64_t ysize = g.N * g.OH * g.OW * g.O;
  if (ysize == 0) return;
  if (g.K() == 0) {  // no input channels: y = act(bias)
    for (int64_t m = 0; m < ysize / g.O; ++m) {
      for (int64_t o = 0; o < g.O; ++o) y[m * g.O + o] = bias ? bias[o] : 0.f;
      gemm::apply_activation(act, y + m * g.O, g.O);
    }
    return;
  }
  active_kernels().forward(g, x, w, bias, act, y);
}

void backward(const Geom& g, const float* x, const float* w, const float* dy, float* dx, float* dw, float* db) {
  ThreadCountScope threads;  // per-thread buffers and the work split see one thread count
  const int64_t M = g.N * g.OH * g.OW, xsize = g.N * g.H * g.W * g.C, wsize = g.K() * g.O;
  if (M == 0 || g.O == 0 || g.K() == 0) {  // nothing flows back: zeros (db may still have terms)
    if (dx) std::fill(dx, dx + xsize, 0.f);
    if (dw) std::fill(dw, dw + wsize, 0.f);
    if (db) std::fill(db, db + g.O, 0.f);
    if (db && M > 0) bias_grad(g, dy, db);
    return;
  }
  active_kernels().backward(g, x, w, dy, dx, dw, db);
}

}  // namespace forgeml::conv
