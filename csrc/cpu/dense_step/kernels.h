// The elementwise parts of the fused Dense step, compiled once per ISA (elementwise_*.cpp include
// elementwise.inc under their own flags) and picked at run time by forgeml::active_isa().
#pragma once
#include <cstdint>

#include "cpu/dense_step/dense_step.h"

namespace forgeml::dense::detail {

struct Kernels {
  // Softmax cross-entropy on logits z (m, c) in place: z becomes d(sum_i w_i loss_i / m)/dz.
  void (*softmax_xent)(float* z, int64_t m, int64_t c, const int64_t* y, const double* w, Totals& t);
  // In place softmax of each row of z (m, c).
  void (*softmax_rows)(float* z, int64_t m, int64_t c);
  // g *= act'(h) with the derivative written in terms of the activation's output h (gemm codes).
  void (*activation_backward)(int act, const float* h, float* g, int64_t n);
  // db (n) = column sums of g (m, n).
  void (*column_sums)(const float* g, int64_t m, int64_t n, float* db);
  double (*sum_squares)(const float* g, int64_t n);
  void (*scale)(float* g, int64_t n, float f);
  void (*clip_values)(float* g, int64_t n, float c);
  // One optimizer update of params from grads (weight decay first); t is the 1-based step.
  void (*update)(const Net& net, const Optimizer& o, double lr, int64_t t);
};

const Kernels& kernels_portable();
const Kernels& kernels_avx2();
const Kernels& kernels_avx512();
const Kernels& active_kernels();

}  // namespace forgeml::dense::detail
