// Reduced-precision GEMMs beside the float32 SGEMM (gemm.h): bf16 products with float32
// accumulation, and int8 x int8 products with int32 accumulation and a dequantizing epilogue.
//
// Shapes as in gemm.h: row-major, leading dimensions in elements.
//   gemm_bf16: op(A) (M, K) and op(B) (K, N) are float32, rounded to bfloat16 (round to nearest
//     even) once, multiplied exactly and summed in float32:
//     C = epilogue(bf16(op(A)) @ bf16(op(B))).
//   gemm_int8: A (M, K) and B (K, N) are int8, a_scale (M) and b_scale (N) float32:
//     C[i, j] = epilogue(a_scale[i] * b_scale[j] * sum_k A[i, k] B[k, j]).
//     The sum is exact in int32 within each depth block of up to 2048 (the blocks are added in
//     float32, a relative error of ~1e-7, far below the quantization error).
// C is write-only (beta = 0). The epilogue (bias, activation, family function) is gemm.h's.
// Threads: forgeml::num_threads() unless max_threads limits it. Bad sizes throw invalid_argument.
#pragma once
#include <cstdint>
#include <memory>

#include "forgeml/cpu_features.h"
#include "forgeml/gemm.h"

namespace forgeml::gemm {

void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
               const float* B, int64_t ldb, float* C, int64_t ldc, const Epilogue& epilogue = {},
               int max_threads = 0);

// A float32 op(B) (K, N) rounded to bf16 once and packed into the bf16 micro-kernel's panels (for
// the active ISA at construction; the reference ISA keeps the rounded values row-major), so
// repeated products with one B (a recurrent kernel over time steps) do not convert it again.
// Immutable; copies share.
class PackedBf16 {
 public:
  PackedBf16(bool trans_b, int64_t K, int64_t N, const float* B, int64_t ldb);
  int64_t k() const { return K_; }
  int64_t n() const { return N_; }
  Isa isa() const { return isa_; }

 private:
  struct Data;
  int64_t K_, N_;
  Isa isa_;
  std::shared_ptr<Data> data_;
  friend struct PackedBf16Access;
};

// gemm_bf16 with a packed B: C = epilogue(bf16(A) @ B), or C = epilogue(C + bf16(A) @ B) with
// accumulate (the product summed in float32 first, then added to C). A (M, K) is float32
// row-major, rounded to bf16 in the call. Throws if B was packed for another ISA than the active one.
void gemm_bf16_packed(int64_t M, const float* A, int64_t lda, const PackedBf16& B, bool accumulate, float* C,
                      int64_t ldc, const Epilogue& epilogue = {}, int max_threads = 0);

void gemm_int8(int64_t M, int64_t N, int64_t K, const int8_t* A, int64_t lda, const float* a_scale, const int8_t* B,
               int64_t ldb, const float* b_scale, float* C, int64_t ldc, const Epilogue& epilogue = {},
               int max_threads = 0);

// An int8 B (K, N) packed once into the int8 micro-kernel's panels (for the active ISA at
// construction), so a layer's weights are not re-packed on every call. Immutable; copies share.
class PackedInt8 {
 public:
  PackedInt8(int64_t K, int64_t N, const int8_t* B, int64_t ldb);
  int64_t k() const { return K_; }
  int64_t n() const { return N_; }
  Isa isa() const { return isa_; }

 private:
  struct Data;
  int64_t K_, N_;
  Isa isa_;
  std::shared_ptr<Data> data_;
  friend void gemm_int8_packed(int64_t, const int8_t*, const float*, int64_t, const float*, const PackedInt8&,
                               const float*, float*, int64_t, const Epilogue&, int);
  friend struct PackedInt8Access;
};

// gemm_int8 with a packed B. A is either int8 (A, with a_scale) or float32 (A_float, A null,
// a_scale ignored): then each row is quantized as quantize_rows_int8 does, straight into the
// packed operand. Throws if B was packed for another ISA than the active one.
void gemm_int8_packed(int64_t M, const int8_t* A, const float* A_float, int64_t lda, const float* a_scale,
                      const PackedInt8& B, const float* b_scale, float* C, int64_t ldc, const Epilogue& epilogue = {},
                      int max_threads = 0);

// The geometry of an NHWC convolution: input (n, h, w, c), kernel (kh, kw, c, filters) and the
// output (n, oh, ow, filters); pad_top / pad_left zeros before the first row / column (the rest
// of the padding is implied by oh / ow).
struct ConvGeometry {
  int64_t n, h, w, c;
  int64_t kh, kw, sh, sw, dh, dw;
  int64_t pad_top, pad_left, oh, ow;
};

// An int8 convolution: each image of X is quantized with its own dynamic scale (max |x| / 127 over
// the image, as quantize_rows_int8 does a row), its patches (kh, kw, c order, zeros where they
// cover the padding) gathered as int8 straight into the packed operand of gemm_int8_packed,
// whose B is the kernel as (kh kw c, filters):
//   Y[(n oh ow), f] = epilogue(scale[n] * b_scale[f] * (q(patch) . B[:, f])).
// X is the contiguous NHWC input, Y the contiguous (n, oh, ow, filters) output.
// With pool, a max pooling follows the epilogue inside the call (the full convolution output is
// never written out): Y is then (n, pool->oh, pool->ow, filters), exactly what pooling the
// unpooled Y gives (padded positions take no part; NaN wins as in conv::pool_forward).
struct MaxPoolGeometry {
  int64_t kh, kw, sh, sw, pad_top, pad_left, oh, ow;
};
// With tail, int8 Dense layers (gemm_lowp_chain.h) follow inside the call, each image's Y (flattened)
// one row of their input, run by the thread that computed it while it is in cache; Y is still
// written.
struct Int8DenseTail;
void conv2d_int8_packed(const ConvGeometry& g, const float* X, const PackedInt8& B, const float* b_scale, float* Y,
                        const Epilogue& epilogue = {}, int max_threads = 0, const MaxPoolGeometry* pool = nullptr,
                        const Int8DenseTail* tail = nullptr);

// Dynamic symmetric quantization of each row of X (M, K): scale[i] = max_k |X[i, k]| / 127 (1
// for an all-zero row) and Q[i, k] = round(X[i, k] / scale[i]) in [-127, 127]. Q is (M, K) dense.
void quantize_rows_int8(int64_t M, int64_t K, const float* X, int64_t ldx, int8_t* Q, float* scale);

// The name of the micro-kernel the active ISA uses ("bf16_avx512_12x32", ...).
const char* lowp_kernel_name(bool int8);

}  // namespace forgeml::gemm
