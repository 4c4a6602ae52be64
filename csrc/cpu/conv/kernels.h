// Internal to csrc/cpu/conv: the convolution kernels of every ISA, one table per ISA (contract
// and layouts in conv.h). conv.cpp handles empty shapes and then calls the active table, so an
// entry sees N*OH*OW > 0, O > 0 and K = KH*KW*C > 0.
//   reference: plain loops with float64 accumulation (reference.cpp), the tests' second oracle;
//   portable, avx2: im2col chunks on gemm::sgemm (conv_gemm.cpp), which dispatches on its own;
//     avx2 runs 3x3 stride-1 convolutions through Winograd (winograd_avx2.cpp) and inputs with
//     few channels through direct kernels (direct_avx2.cpp, direct_dx_avx2.cpp);
//   avx512: implicit GEMM (conv_avx512.cpp).
#pragma once
#include <cstdint>

#include "cpu/conv/conv.h"
#include "forgeml/cpu_features.h"

namespace forgeml::conv {

struct Kernels {
  // y = act(conv(x, w) + bias); bias may be null.
  void (*forward)(const Geom& g, const float* x, const float* w, const float* bias, gemm::Activation act, float* y);
  // Writes every element of each of dx, dw, db that is not null.
  void (*backward)(const Geom& g, const float* x, const float* w, const float* dy, float* dx, float* dw, float* db);
  const char* name;
};

// The table for an ISA, each set up once (registry.cpp); active_kernels() is active_isa()'s.
const Kernels& kernels_for(Isa isa);
const Kernels& active_kernels();

// Per-ISA entries; an ISA this build lacks returns false.
void kernels_reference(Kernels& k);
void kernels_portable(Kernels& k);
bool kernels_avx2(Kernels& k);
bool kernels_avx512(Kernels& k);

// db[o] = sum over pixels of dy[., o] (conv.cpp), shared by the entries.
void bias_grad(const Geom& g, const float* dy, float* db);

// The AVX2 direct convolution for inputs with few channels (direct_avx2.cpp): where it applies,
// y = act(conv(x, w) + bias), and the weight gradient.
bool direct_avx2_applies(const Geom& g);
void direct_forward_avx2(const Geom& g, const float* x, const float* w, const float* bias, gemm::Activation act,
                         float* y);
// dw = d/dw of sum(conv(x, w) . dy), written whole; where direct_avx2_applies.
void direct_weight_grad_avx2(const Geom& g, const float* x, const float* dy, float* dw);
// The AVX2 direct data gradient for inputs with few channels at stride 1 (direct_dx_avx2.cpp):
// dx = d/dx of sum(conv(x, w) . dy), written whole; where direct_data_grad_avx2_applies.
bool direct_data_grad_avx2_applies(const Geom& g);
void direct_data_grad_avx2(const Geom& g, const float* w, const float* dy, float* dx);

// Backward-data at stride 1 as a forward (conv.cpp): dx = conv(dy, flipped w) in the geometry f
// whose pads make the output H x W. False where it does not apply (strides, or a pad below zero).
bool flipped_geometry(const Geom& g, Geom& f);
// wf[kh, kw, o, c] = w[KH-1-kh, KW-1-kw, c, o]: the flipped kernel, (KH, KW, O, C).
void flip_weights(const Geom& g, const float* w, float* wf);

}  // namespace forgeml::conv
