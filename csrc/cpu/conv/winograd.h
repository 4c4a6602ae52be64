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

// 2x2 output tiles, th down and tw across an image; tile t is image t / (th tw), row
// (t % (th tw)) / tw, column t % tw.
struct WinogradTiles {
  int64_t th, tw;
};
// An ISA's transforms: V[e] (m, C) = B^T d B of tiles [t0, t0 + m) (zeros: C zeros, for the
// input's outside), and y from the channel products M[e] (m, O) with bias and activation.
using WinogradInput = void (*)(const Geom& g, const WinogradTiles& tl, const float* x, int64_t t0, int64_t m,
                               const float* zeros, float* v);
using WinogradOutput = void (*)(const Geom& g, const WinogradTiles& tl, const float* mp, int64_t t0, int64_t m,
                                const float* bias, gemm::Activation act, float* y);
// d[i][j] = the input pixel at row i, column j of tile t's 4x4 patch, or zeros outside the image
// (winograd.cpp).
void winograd_patch(const Geom& g, const WinogradTiles& tl, const float* x, int64_t t, const float* zeros,
                    const float* (&d)[4][4]);
// off[p] = where output pixel p (row-major in the 2x2) of tile t starts in y (N, OH, OW, O), or
// -1 past the output's edge (winograd.cpp).
void winograd_outputs(const Geom& g, const WinogradTiles& tl, int64_t t, int64_t (&off)[4]);
// The forward with an ISA's transforms (winograd.cpp): weights transformed and packed once, tiles
// in chunks of chunk_tiles (a chunk's V and M stay in the thread's L2) over the thread pool.
void winograd_run(const Geom& g, const float* x, const float* w, const float* bias, gemm::Activation act, float* y,
                  int64_t chunk_tiles, WinogradInput input, WinogradOutput output);

// y = act(conv(x, w) + bias); requires winograd_applies(g). The AVX-512 and the AVX2 transforms.
void winograd_forward(const Geom& g, const float* x, const float* w, const float* bias, gemm::Activation act, float* y);
void winograd_forward_avx2(const Geom& g, const float* x, const float* w, const float* bias, gemm::Activation act,
                           float* y);

// dw (3, 3, C, O) = d/dw of sum(conv(x, w) . dy), with AVX2 transforms; requires winograd_applies(g).
void winograd_weight_grad_avx2(const Geom& g, const float* x, const float* dy, float* dw);

// u[e] (C, O) for e = 4 i + j: the transformed weights U = G w G^T of w (3, 3, C, O); u holds
// 16 C O floats (winograd.cpp).
void winograd_weights(const Geom& g, const float* w, float* u);

}  // namespace forgeml::conv
