// 2-D convolution and pooling on the CPU, channels last (Keras layout):
//   x is (N, H, W, C), w is (KH, KW, C, O), y is (N, OH, OW, O), all row-major float32.
// Padding is explicit (top, bottom, left, right); ops/conv.py turns "same"/"valid" into pads.
// Output size: OH = (H + pt + pb - ((KH-1)*dh + 1)) / sh + 1, likewise OW.
#pragma once
#include <cstdint>

#include "forgeml/gemm.h"

namespace forgeml::conv {

struct Geom {
  int64_t N = 0, H = 0, W = 0, C = 0;  // input
  int64_t KH = 1, KW = 1, O = 0;       // kernel
  int64_t sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pt = 0, pb = 0, pl = 0, pr = 0;
  int64_t OH = 0, OW = 0;  // derived by finish()
  // Validates and derives OH/OW; throws std::invalid_argument naming the bad argument.
  void finish();
  int64_t K() const { return KH * KW * C; }
};

// y = act(conv(x, w) + bias); bias may be null.
void forward(const Geom& g, const float* x, const float* w, const float* bias, gemm::Activation act,
             float* y);
// Any of dx, dw, db may be null (not wanted).
void backward(const Geom& g, const float* x, const float* w, const float* dy, float* dx, float* dw, float* db);

// Pooling: x (N, H, W, C) -> y (N, OH, OW, C), window KH x KW (g.O, g.dh, g.dw unused).
enum class Pool { max = 0, avg = 1 };
void pool_forward(const Geom& g, Pool kind, const float* x, float* y);
// dx = d/dx of sum(pool(x) * dy); max routes each dy to the first maximal element of its window.
void pool_backward(const Geom& g, Pool kind, const float* x, const float* dy, float* dx);

}  // namespace forgeml::conv
