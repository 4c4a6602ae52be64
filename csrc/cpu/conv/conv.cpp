// Convolution entry points: shape checks, ISA dispatch, and the plain reference loops.
#include "cpu/conv/conv.h"

#include <algorithm>
#include <vector>

#include "forgeml/check.h"
#include "forgeml/cpu_features.h"
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

// ---------------------------------------------------------------- reference loops

void forward_reference(const Geom& g, const float* x, const float* w, const float* bias, gemm::Activation act,
                       float* y) {
  parallel_for(g.N * g.OH, 1, [&](int64_t b, int64_t e) {
    std::vector<double> acc(g.O);
    for (int64_t row = b; row < e; ++row) {
      int64_t n = row / g.OH, oh = row % g.OH;
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        for (int64_t o = 0; o < g.O; ++o) acc[o] = bias ? bias[o] : 0.0;
        for (int64_t kh = 0; kh < g.KH; ++kh) {
          int64_t ih = oh * g.sh + kh * g.dh - g.pt;
          if (ih < 0 || ih >= g.H) continue;
          for (int64_t kw = 0; kw < g.KW; ++kw) {
            int64_t iw = ow * g.sw + kw * g.dw - g.pl;
            if (iw < 0 || iw >= g.W) continue;
            const float* xp = x + ((n * g.H + ih) * g.W + iw) * g.C;
            const float* wp = w + (kh * g.KW + kw) * g.C * g.O;
            for (int64_t c = 0; c < g.C; ++c)
              for (int64_t o = 0; o < g.O; ++o) acc[o] += double(xp[c]) * wp[c * g.O + o];
          }
        }
        float* yp = y + ((n * g.OH + oh) * g.OW + ow) * g.O;
        for (int64_t o = 0; o < g.O; ++o) yp[o] = static_cast<float>(acc[o]);
        gemm::apply_activation(act, yp, g.O);
      }
    }
  });
}

void backward_reference(const Geom& g, const float* x, const float* w, const float* dy, float* dx, float* dw,
                        float* db) {
  std::vector<double> gx(dx ? g.N * g.H * g.W * g.C : 0), gw(dw ? g.K() * g.O : 0), gb(db ? g.O : 0);
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const float* d = dy + ((n * g.OH + oh) * g.OW + ow) * g.O;
        if (db)
          for (int64_t o = 0; o < g.O; ++o) gb[o] += d[o];
        for (int64_t kh = 0; kh < g.KH; ++kh) {
          int64_t ih = oh * g.sh + kh * g.dh - g.pt;
          if (ih < 0 || ih >= g.H) continue;
          for (int64_t kw = 0; kw < g.KW; ++kw) {
            int64_t iw = ow * g.sw + kw * g.dw - g.pl;
            if (iw < 0 || iw >= g.W) continue;
            int64_t xo = ((n * g.H + ih) * g.W + iw) * g.C, wo = (kh * g.KW + kw) * g.C * g.O;
            for (int64_t c = 0; c < g.C; ++c)
              for (int64_t o = 0; o < g.O; ++o) {
                if (dx) gx[xo + c] += double(d[o]) * w[wo + c * g.O + o];
                if (dw) gw[wo + c * g.O + o] += double(d[o]) * x[xo + c];
              }
          }
        }
      }
  for (size_t i = 0; i < gx.size(); ++i) dx[i] = static_cast<float>(gx[i]);
  for (size_t i = 0; i < gw.size(); ++i) dw[i] = static_cast<float>(gw[i]);
  for (size_t i = 0; i < gb.size(); ++i) db[i] = static_cast<float>(gb[i]);
}

// ---------------------------------------------------------------- dispatch

namespace {

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

bool use_avx512() {
#if defined(__x86_64__)
  return active_isa() == Isa::avx512;
#else
  return false;
#endif
}

}  // namespace

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
#if defined(__x86_64__)
  if (use_avx512()) return forward_avx512(g, x, w, bias, act, y);
#endif
  if (active_isa() == Isa::reference) return forward_reference(g, x, w, bias, act, y);
  forward_gemm(g, x, w, bias, act, y);
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
#if defined(__x86_64__)
  if (use_avx512()) {  // these write every element of dx, dw and db
    if (dx) backward_data_avx512(g, w, dy, dx);
    check_interrupt();
    if (dw) backward_weight_avx512(g, x, dy, dw, db);
    else if (db) bias_grad(g, dy, db);
    return;
  }
#endif
  if (db) bias_grad(g, dy, db);
  if (dx) std::fill(dx, dx + xsize, 0.f);
  if (dw) std::fill(dw, dw + wsize, 0.f);
  if (active_isa() == Isa::reference) return backward_reference(g, x, w, dy, dx, dw, nullptr);
  backward_gemm(g, x, w, dy, dx, dw);
}

}  // namespace forgeml::conv
