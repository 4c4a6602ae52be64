// Internal to csrc/cpu/gemm: the micro-kernel contract shared by every ISA and the driver.
//
// A micro-kernel computes one m x n tile of C (m <= MR, n <= NR), reading op(A) and op(B) either
// from packed panels or straight from the caller's matrices:
//   op(A)(i, k) = a[k * as + i]   (column-style: packed panels, as = MR, or a transposed A, as = lda)
//              or a[i * as + k]   (row_a variant: a row-major A read in place, as = lda)
//   op(B)(k, j) = b[k * bs + j]   (packed panels, bs = NR, or a row-major B read in place, bs = ldb)
//   C[i, j] (row stride ldc) = alpha * sum_k op(A)(i, k) op(B)(k, j) + beta * C[i, j]
// Only rows i < m and columns j < n are read or written. beta == 0 means C is write-only.
#pragma once
#include <cstdint>

#include "forgeml/cpu_features.h"
#include "forgeml/gemm.h"

namespace forgeml::gemm::detail {

using MicroKernel = void (*)(int64_t kc, const float* a, int64_t as, const float* b, int64_t bs, float* c,
                             int64_t ldc, float alpha, float beta, int m, int n);
constexpr int kMaxMR = 16;
using ActivationFn = void (*)(Activation act, float* x, int64_t n);

// Packing: op(A) rows [r0, r0 + rows) (or op(B) columns) x depth [p0, p0 + kc) into panels of
// MR rows (k-major, MR floats per k) or NR columns (NR floats per k), one after another.
// A null pointer means the driver's generic loops.
using PackFn = void (*)(bool trans, const float* src, int64_t ld, int64_t r0, int64_t rows, int64_t p0,
                        int64_t kc, float* dst);

// One ISA's kernels and the cache blocking sized for it (constants at the top of kernel_*.cpp).
struct Kernel {
  // [narrow][row_a][m]: the kernel for an m-row tile; narrow: n <= NR / 2 (half the FMAs);
  // row_a: a row-major A read in place (else A column-style, see above).
  MicroKernel tile[2][2][kMaxMR + 1];
  PackFn pack_a = nullptr, pack_b = nullptr;
  int mr, nr;          // register tile
  int mc, kc, nc;      // rows of A per packed block, depth per block, columns of B per packed block
  // The driver reads a row-major B of at most in_place_b floats unpacked, and A unpacked when at
  // most in_place_a_panels NR panels of the block's columns reuse it.
  int64_t in_place_b = int64_t{1} << 17;
  int in_place_a_panels = 4;
  ActivationFn act;    // vectorised elementwise activation
  // c (m x n, row stride ldc) = act(c + bias) with bias (length n) optional.
  void (*bias_act)(const float* bias, Activation act, float* c, int64_t ldc, int64_t m, int64_t n);
  const char* name;
};

// The table for an ISA (registry.cpp). A reference-ISA sgemm runs sgemm_reference as a whole (the
// driver never blocks it), so the reference table only serves the elementwise entries.
const Kernel& kernel_for(Isa isa);

// Per-ISA entry points (each defined in its kernel_*.cpp, the reference one in reference.cpp;
// absent ISAs return false).
bool kernel_avx512(Kernel& k);
bool kernel_avx2(Kernel& k);
void kernel_portable(Kernel& k);
void kernel_reference(Kernel& k);

// The scalar activation and bias + activation (reference.cpp), also the fallback of the SIMD ones.
void activation_scalar(Activation act, float* x, int64_t n);
void bias_act_scalar(const float* bias, Activation act, float* c, int64_t ldc, int64_t m, int64_t n);
void activation_avx2(Activation act, float* x, int64_t n);
void bias_act_avx2(const float* bias, Activation act, float* c, int64_t ldc, int64_t m, int64_t n);
void activation_avx512(Activation act, float* x, int64_t n);
void bias_act_avx512(const float* bias, Activation act, float* c, int64_t ldc, int64_t m, int64_t n);

}  // namespace forgeml::gemm::detail
