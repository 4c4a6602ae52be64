// CUDA recurrent sequences (Keras 3 semantics and layouts, see csrc/cpu/rnn/rnn.h), on device memory.
// x (N, T, F); kernel (F, G*H); recurrent_kernel (H, G*H); bias (G*H) or GRU (2, G*H); gate blocks
// in Keras order (LSTM i f c o, GRU z r h). cell: 0 SimpleRNN, 1 LSTM, 2 GRU; act (SimpleRNN):
// 0 tanh, 1 sigmoid, 2 relu, 3 linear. Plain C++ (the binding files include only this).
#pragma once
#include <cstdint>

struct CUstream_st;

namespace forgeml::cuda::rnn {

struct Forward {
  int cell, act;
  int64_t N, T, F, H;
  const float *x, *kernel, *rkernel, *bias, *h0, *c0;  // h0, c0 (N, H) required (zeros by default)
  float* y;        // (N, T, H)
  float* xg;       // (N, T, G*H): activated gates afterwards (LSTM i f g o; GRU z r h~); unused SimpleRNN
  float* aux;      // (N, T, H): LSTM c_t, GRU b_h
  float* scratch;  // (N, G*H): GRU's recurrent product per step
};
void forward(const Forward& f, CUstream_st* stream);

struct Backward {
  const float *dy, *dh_T, *dc_T;  // nullable
  float *dx, *dkernel, *drkernel, *dbias;  // Keras layouts
  float *dh0, *dc0;               // (N, H); dc0 LSTM only; they also hold the running dL/dh, dL/dc
  float *da, *db, *hprev;         // scratch: (N, T, G*H), GRU (N, T, G*H), (N, T, H)
};
void backward(const Forward& f, const Backward& b, CUstream_st* stream);

}  // namespace forgeml::cuda::rnn
