// Row kernels forgeml.keras's layers share with the fused Dense step (dense_step.h): layer
// normalization forward and backward, run by the active ISA's elementwise table.
#include "cpu/dense_step/dense_step.h"
#include "cpu/dense_step/kernels.h"
#include "forgeml/check.h"

namespace forgeml::dense {

void layer_norm(const float* x, int64_t m, int64_t c, const float* gamma, const float* beta, float eps, float* y,
                float* xhat, float* inv) {
  FORGEML_CHECK_ARG(m >= 0 && c >= 1, "layer_norm: expected rows of at least one value");
  if (m > 0) detail::active_kernels().layer_norm_rows(x, m, c, gamma, beta, eps, y, xhat, inv);
}

void layer_norm_backward(const float* dy, const float* xhat, const float* inv, int64_t m, int64_t c,
                         const float* gamma, float* dx, float* dgamma, float* dbeta) {
  FORGEML_CHECK_ARG(m >= 0 && c >= 1, "layer_norm_backward: expected rows of at least one value");
  detail::active_kernels().layer_norm_rows_backward(dy, xhat, inv, m, c, gamma, dx, dgamma, dbeta);
}

}  // namespace forgeml::dense
