// Internal to csrc/cpu/dense_step: the elementwise parts of the fused Dense step and the row kernels
// forgeml.keras's layers share with it (softmax, layer normalization, row scatter-add), one table per ISA.
// elementwise_<isa>.cpp include elementwise.inc under their own flags and fill the entries; registry.cpp picks one by
// forgeml::active_isa(). The GEMMs go through gemm.h (its own dispatch).
#pragma once
#include <cstdint>

#include "cpu/dense_step/dense_step.h"
#include "forgeml/cpu_features.h"

namespace forgeml::dense::detail {

struct Kernels {
  // Softmax cross-entropy on logits z (m, c) in place: z becomes d(sum_i w_i loss_i / batch)/dz
  // (the rows may be a slice of a batch of `batch` rows).
  void (*softmax_xent)(float* z, int64_t m, int64_t c, const int64_t* y, const double* w, int64_t batch, Totals& t);
  // In place softmax of each row of z (m, c).
  void (*softmax_rows)(float* z, int64_t m, int64_t c);
  // dx = y * (dy - rowsum(dy * y)) for softmax outputs y (m, c).
  void (*softmax_rows_backward)(const float* y, const float* dy, int64_t m, int64_t c, float* dx);
  // Layer normalization of each row and its backward (dense_step.h).
  void (*layer_norm_rows)(const float* x, int64_t m, int64_t c, const float* gamma, const float* beta, float eps,
                          float* y, float* xhat, float* inv);
  void (*layer_norm_rows_backward)(const float* dy, const float* xhat, const float* inv, int64_t m, int64_t c,
                                   const float* gamma, float* dx, float* dgamma, float* dbeta);
  // target[idx[i], :] += values[i, :] in order (dense_step.h).
  void (*scatter_add_rows)(float* target, int64_t d, const int64_t* idx, int64_t n, const float* values);
  // g *= act'(h) with the derivative written in terms of the activation's output h (gemm codes).
  void (*activation_backward)(int act, const float* h, float* g, int64_t n);
  // db (n) = column sums of g (m, n).
  void (*column_sums)(const float* g, int64_t m, int64_t n, float* db);
  double (*sum_squares)(const float* g, int64_t n);
  void (*scale)(float* g, int64_t n, float f);
  void (*clip_values)(float* g, int64_t n, float c);
  // One optimizer update of params from grads (weight decay first); t is the 1-based step.
  void (*update)(const Net& net, const Optimizer& o, double lr, int64_t t);
  const char* name;
};

// The table for an ISA, each set up once (registry.cpp); active_kernels() is active_isa()'s.
const Kernels& kernels_for(Isa isa);
const Kernels& active_kernels();

// Per-ISA entries (elementwise_<isa>.cpp); an ISA this build lacks returns false. The elementwise
// code is the same plain loops in every entry, so the reference entry is the portable build (the
// GEMMs of a reference step still take gemm's reference path).
void kernels_reference(Kernels& k);
void kernels_portable(Kernels& k);
bool kernels_avx2(Kernels& k);
bool kernels_avx512(Kernels& k);

}  // namespace forgeml::dense::detail
