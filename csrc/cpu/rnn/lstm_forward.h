// Internal to csrc/cpu/rnn: the float32 LSTM forward on gemm's micro-kernels (lstm_forward.cpp).
#pragma once
#include "kernels.h"
#include "rnn.h"

namespace forgeml::rnn {

// forward()'s LSTM case with h0 / c0 given (zeros when the caller has none). Returns false, doing
// nothing, where it does not apply (bf16 products, or the reference ISA without micro-kernels).
bool lstm_forward_f32(const Dims& d, const Split& split, const GateKernels& gk, const float* h0, const float* c0,
                      const Forward& f);

}  // namespace forgeml::rnn
