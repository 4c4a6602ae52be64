// Internal to csrc/cpu/rnn: the float32 GRU recurrence on gemm's micro-kernels (gru_forward.cpp).
#pragma once
#include "kernels.h"
#include "rnn.h"

namespace forgeml::rnn {

// forward()'s float32 GRU (input projection fused into the steps), h0 given (zeros when the caller has none). Returns
// false, doing nothing, where it does not apply (bf16 products, or the reference ISA without micro-kernels).
bool gru_forward_f32(const Dims& d, const Split& split, const GateKernels& gk, const float* h0, const Forward& f);

}  // namespace forgeml::rnn
