// A stack of int8 Dense layers run as one call (a quantized model's predict): each layer
// quantizes its input rows with their own dynamic scales and runs gemm_int8_packed with its bias
// and activation in the epilogue, the last one optionally followed by a row softmax. Row blocks
// go through all the layers on one thread each, so the activations between layers stay in that
// thread's cache and a small batch pays one thread-pool call instead of one per layer. Every
// row's arithmetic is the one gemm_int8_packed does for it alone (int32 sums are exact), so the
// result equals the layer-by-layer calls bit for bit.
#pragma once
#include <cstdint>

#include "forgeml/gemm.h"
#include "forgeml/gemm_lowp.h"

namespace forgeml::gemm {

struct Int8Dense {
  const PackedInt8* w;   // (K, N) packed for the active ISA
  const float* w_scale;  // (N)
  const float* bias;     // (N) or null
  Activation act = Activation::none;
};

// Y (M, N of the last layer, row stride ldy) from X (M, K of the first layer, row stride ldx);
// softmax: a softmax over each output row after the last layer's epilogue. Throws
// invalid_argument when consecutive layers' sizes disagree or a kernel was packed for another ISA.
void int8_dense_chain(int64_t M, const float* X, int64_t ldx, const Int8Dense* layers, int n_layers, bool softmax,
                      float* Y, int64_t ldy, int max_threads = 0);

// A chain as the tail of another int8 call (conv2d_int8_packed): its layers, the softmax flag and
// the output, (rows, N of the last layer) with row stride ldy.
struct Int8DenseTail {
  const Int8Dense* layers = nullptr;
  int n_layers = 0;
  bool softmax = false;
  float* Y = nullptr;
  int64_t ldy = 0;
};

// Throws unless tail's layers fit together and the first takes k inputs; returns the widest
// layer's output count.
int64_t check_dense_tail(const Int8DenseTail& tail, int64_t k);

// Rows [r0, r1) of the chain on the calling thread: X points at row r0 (row stride ldx), the
// results go to tail.Y's rows r0 .. r1 - 1.
void int8_dense_tail_rows(const Int8DenseTail& tail, int64_t widest, const float* X, int64_t ldx, int64_t r0,
                          int64_t r1);

// In place softmax of each row of Y (M, N), max-shifted; the one int8_dense_chain applies.
void softmax_rows(int64_t M, int64_t N, float* Y, int64_t ldy);

}  // namespace forgeml::gemm
