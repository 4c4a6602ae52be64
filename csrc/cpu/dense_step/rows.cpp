// Row kernels forgeml.keras's layers share with the fused Dense step (dense_step.h): the softmax's
// backward, layer normalization forward and backward and a row scatter-add, run by the active
// ISA's elementwise table.
#include "cpu/dense_step/dense_step.h"
#include "cpu/dense_step/kernels.h"
#include "forgeml/check.h"

namespace forgeml::dense {

void softmax_rows_backward(const float* y, const float* dy, int64_t m, int64_t c, float* dx) {
  FORGEML_CHECK_ARG(m >= 0 && c >= 1, "softmax_rows_backward: expected rows of at least one value");
  if (m > 0) detail::active_kernels().softmax_rows_backward(y, dy, m, c, dx);
}

void layer_norm(const float* x, int64_t m, int64_t c, const float* gamma, const float* beta, float eps, float* y,
                float* xhat, float* inv) {
  FORGEML_CHECK_ARG(m >= 0 && c >= 1, "layer_norm: expected rows of at least one value");
  if (m > 0) detail::active_kernels().layer_norm_rows(x, m, c, gamma, beta, eps, y, xhat, inv);
}

void layer_norm_backward(const float* dy, const float* xhat, const float* inv, int64_t m, int64_t c, const float* gamma,
                         float* dx, float* dgamma, float* dbeta) {
  FORGEML_CHECK_ARG(m >= 0 && c >= 1, "layer_norm_backward: expected rows of at least one value");
  detail::active_kernels().layer_norm_rows_backward(dy, xhat, inv, m, c, gamma, dx, dgamma, dbeta);
}

void scatter_add_rows(float* target, int64_t rows, int64_t d, const int64_t* idx, int64_t n, const float* values) {
  FORGEML_CHECK_ARG(rows >= 0 && d >= 0 && n >= 0, "scatter_add_rows: bad sizes");
  for (int64_t i = 0; i < n; ++i)
    FORGEML_CHECK_ARG(idx[i] >= 0 && idx[i] < rows, "indices: index ", idx[i], " is out of bounds for ", rows, " rows");
  if (d > 0) detail::active_kernels().scatter_add_rows(target, d, idx, n, values);
}

}  // namespace forgeml::dense
