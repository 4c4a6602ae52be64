// Internal to csrc/cpu/gemm: the micro-kernel contract shared by every ISA and the driver.
//
// A micro-kernel computes one MR x NR tile of C from packed panels:
//   a: op(A) rows i0..i0+MR, packed k-major: a[k * MR + i] (rows past m are zero)
//   b: op(B) columns j0..j0+NR, packed k-major: b[k * NR + j] (columns past n are zero)
//   C[i, j] (row stride ldc) = sum_k a[k*MR+i] * b[k*NR+j] + beta * C[i, j], for i < m, j < n.
// beta == 0 means C is write-only (it may hold NaN). alpha is folded into the packed A.
#pragma once
#include <cstdint>

#include "forgeml/cpu_features.h"
#include "forgeml/gemm.h"

namespace forgeml::gemm::detail {

using MicroKernel = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float beta,
                             int m, int n);
using ActivationFn = void (*)(Activation act, float* x, int64_t n);

// One ISA's kernel and the cache blocking sized for it (see registry.cpp for the numbers' origin).
struct Kernel {
  MicroKernel tile;
  int mr, nr;          // register tile
  int mc, kc, nc;      // rows of A per packed block, depth per block, columns of B per packed block
  ActivationFn act;    // vectorised elementwise activation
  const char* name;
};

const Kernel& kernel_for(Isa isa);  // isa != reference

// Per-ISA entry points (each defined in its kernel_*.cpp; absent ISAs return false).
bool kernel_avx512(Kernel& k);
bool kernel_avx2(Kernel& k);
void kernel_portable(Kernel& k);

// The scalar activation (reference.cpp), also the fallback of the SIMD ones.
void activation_scalar(Activation act, float* x, int64_t n);

}  // namespace forgeml::gemm::detail
