// Convolution as plain loops with float64 accumulation: the reference entry (FORGEML_ISA=reference)
// and a second oracle for the tests. Contract in conv.h.
#include <vector>

#include "cpu/conv/kernels.h"
#include "forgeml/parallel.h"

namespace forgeml::conv {

namespace {

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

void backward_loops(const Geom& g, const float* x, const float* w, const float* dy, float* dx, float* dw, float* db) {
  if (db) bias_grad(g, dy, db);
  backward_reference(g, x, w, dy, dx, dw, nullptr);
}

}  // namespace

void kernels_reference(Kernels& k) { k = {&forward_reference, &backward_loops, "reference"}; }

}  // namespace forgeml::conv
