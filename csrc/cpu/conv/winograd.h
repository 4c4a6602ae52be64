// Winograd F(2x2, 3x3) convolution for 3x3 kernels at stride 1, dilation 1 (contract of
// conv.h's forward; x, w, y channels last). Each 2x2 output tile is 16 elementwise products in
// the transformed domain instead of 36 multiply-adds per input channel, so the channel product is
// 16 GEMMs of (tiles, C) @ (C, O) with 2.25x fewer flops than the direct convolution; the input
// and output transforms are additions over whole channel vectors. Tiles go in chunks small enough
// that a chunk's transformed input and products stay in the thread's L2 cache. The transforms
// round differently from the direct sum (errors a few float32 ulps of the larger terms).
#pragma once

#include "cpu/conv/conv.h"

namespace forgeml::conv {

// The geometries winograd_forward takes and is worth it for (enough channels to fill the GEMMs).
bool winograd_applies(const Geom& g);

// y = act(conv(x, w) + bias); requires winograd_applies(g).
void winograd_forward(const Geom& g, const float* x, const float* w, const float* bias, gemm::Activation act, float* y);

}  // namespace forgeml::conv
