// Internal to csrc/cpu/rnn: the float32 LSTM backward on gemm's micro-kernels (lstm_backward.cpp).
#pragma once
#include "kernels.h"
#include "rnn.h"

namespace forgeml::rnn {

// backward()'s LSTM case with h0 / c0 given (zeros when the caller has none) and dL/dh_T, dL/dc_T
// already in dhn / dcn (N, H each; dL/dh_0, dL/dc_0 on return). Returns false, doing nothing,
// where it does not apply (bf16 products, the reference ISA, or no steps or units).
bool lstm_backward_f32(const Dims& d, const Split& split, const GateKernels& gk, const float* h0, const float* c0,
                       const Forward& f, const Backward& b, float* dhn, float* dcn);

}  // namespace forgeml::rnn
