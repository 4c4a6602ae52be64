// Internal to csrc/cpu/conv: the convolution kernels of every ISA, one table per ISA (contract
// and layouts in conv.h). conv.cpp handles empty shapes and then calls the active table, so an
// entry sees N*OH*OW > 0, O > 0 and K = KH*KW*C > 0.
//   reference: plain loops with float64 accumulation (reference.cpp), the tests' second oracle;
//   portable, avx2: im2col chunks on gemm::sgemm (conv_gemm.cpp), which dispatches on its own;
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

}  // namespace forgeml::conv
