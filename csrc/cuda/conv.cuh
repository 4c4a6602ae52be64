// CUDA convolution and pooling, channels last: x (N, H, W, C), w (KH, KW, C, O), y (N, OH, OW, O).
// Declarations only, so binding files need no CUDA header (cudaStream_t is CUstream_st*). All
// pointers are device memory; launches go on `stream` and errors throw std::runtime_error.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

struct CUstream_st;

namespace forgeml::cuda::conv {

struct Shape {
  int64_t N, H, W, C, KH, KW, O;
  int64_t sh, sw, dh, dw, pt, pl;  // strides, dilation, top/left padding
  int64_t OH, OW;                  // output size, from make_shape
};

// Validated shape for pads (top, bottom, left, right); throws std::invalid_argument.
inline Shape make_shape(int64_t N, int64_t H, int64_t W, int64_t C, int64_t KH, int64_t KW, int64_t O, int64_t sh,
                        int64_t sw, int64_t dh, int64_t dw, int64_t pt, int64_t pb, int64_t pl, int64_t pr) {
  if (N < 0 || H < 0 || W < 0 || C < 0 || O < 0) throw std::invalid_argument("x, w: negative dimension");
  if (KH < 1 || KW < 1) throw std::invalid_argument("kernel: spatial size must be >= 1");
  if (sh < 1 || sw < 1) throw std::invalid_argument("strides: expected positive integers");
  if (dh < 1 || dw < 1) throw std::invalid_argument("dilation: expected positive integers");
  if (pt < 0 || pb < 0 || pl < 0 || pr < 0) throw std::invalid_argument("padding: expected non-negative pads");
  int64_t eh = (KH - 1) * dh + 1, ew = (KW - 1) * dw + 1;
  if (eh > H + pt + pb || ew > W + pl + pr)
    throw std::invalid_argument("kernel: dilated size (" + std::to_string(eh) + ", " + std::to_string(ew) +
                                ") is larger than the padded input (" + std::to_string(H + pt + pb) + ", " +
                                std::to_string(W + pl + pr) + ")");
  return {N, H, W, C, KH, KW, O, sh, sw, dh, dw, pt, pl, (H + pt + pb - eh) / sh + 1, (W + pl + pr - ew) / sw + 1};
}

// y = act(conv(x, w) + bias); bias may be null; act 0 none, 1 relu, 2 sigmoid, 3 tanh, 4 gelu.
void forward(const Shape& s, const float* x, const float* w, const float* bias, int act, float* y,
             CUstream_st* stream);
// dx (N, H, W, C) from dy (N, OH, OW, O).
void backward_data(const Shape& s, const float* w, const float* dy, float* dx, CUstream_st* stream);
// dw (KH, KW, C, O) and db (O,) from x and dy (overwritten; either may be null).
void backward_weight(const Shape& s, const float* x, const float* dy, float* dw, float* db, CUstream_st* stream);

// Tests: 0 (default) picks the convolution kernel by problem size, 64 forces the 64 x 64 tiles
// everywhere, 128 the large tiles wherever their channel conditions hold. Not thread-safe.
void set_tile(int tile);

// Pooling over KH x KW windows (O unused, C channels): kind 0 max, 1 average (real elements only).
void pool_forward(const Shape& s, int kind, const float* x, float* y, CUstream_st* stream);
void pool_backward(const Shape& s, int kind, const float* x, const float* dy, float* dx, CUstream_st* stream);

}  // namespace forgeml::cuda::conv
