// Internal to csrc/cpu/gemm: the int8 / bf16 driver's prepared problem and its block loop
// (lowp_driver.cpp), shared with the int8 convolution (lowp_conv.cpp), which feeds the same
// micro-kernels block by block from its own gathered operand.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "cpu/gemm/kernels.h"
#include "cpu/gemm/lowp.h"
#include "forgeml/gemm_lowp.h"

namespace forgeml::gemm {

// The packed panels and +128 corrections of a PackedInt8 (defined in lowp_driver.cpp).
struct PackedInt8Access {
  static const uint32_t* panels(const PackedInt8& B);
  static const int32_t* corr(const PackedInt8& B);
};

namespace detail {

// 64-byte aligned 32-bit words, at least 64 bytes.
struct Words {
  std::unique_ptr<uint32_t, decltype(&std::free)> p{nullptr, &std::free};
  explicit Words(size_t n);
  uint32_t* get() const { return p.get(); }
};

// The prepared operands and the output.
struct Lowp {
  const LowpKernels* kern;
  const Kernel* f32;  // its bias + activation
  int64_t M, N, Kg, npad;
  const uint32_t* a;  // M x Kg words
  const uint32_t* b;  // depth block pc, panel p at b + pc * npad + p * NR * kc
  const float* row_scale;
  const float* col_scale;
  const int32_t* corr;
  float* C;
  int64_t ldc;
  const Epilogue* ep;
};

// Rows [m0, m1) x panels [p0, p1) of C on the calling thread, the epilogue included.
void lowp_block(const Lowp& L, int64_t m0, int64_t m1, int64_t p0, int64_t p1);

// Threads worth waking for an M x N x K product.
int lowp_threads(int64_t M, int64_t N, int64_t K, int max_threads);

// The argument checks of a packed B against the active ISA.
void check_packed(const char* fn, const PackedInt8& B, const float* b_scale);

}  // namespace detail
}  // namespace forgeml::gemm
