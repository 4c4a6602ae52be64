// Kernel values for the SMO solver that are exactly symmetric and agree with the diagonal:
// x_i . x_j accumulated in float64 in feature order (each float product is exact in float64, so
// K_ij and K_ji are the same sum of the same terms, bit for bit), the kernel function applied in
// float64, then rounded once to float32. Used for linear and poly kernels, whose values can be
// large: float32 GEMV rows that differ from K_ji and from the diagonal by a few ulps of
// 1e6 made the solver take steps its gradient did not follow (60x libsvm's iterations on a
// badly scaled poly kernel). rbf and sigmoid (values in [-1, 1]) keep the fast float32 rows.
#pragma once
#include <cmath>
#include <cstdint>

#include "cpu/svm/kernel.h"

namespace forgeml::svm::precise {

inline double apply(const KernelParams& p, double dot) {
  switch (p.type) {
    case KernelType::poly: {
      const double base = p.gamma * dot + p.coef0;
      double v = 1.0;
      for (int k = 0; k < p.degree; ++k) v *= base;
      return v;
    }
    case KernelType::sigmoid: return std::tanh(p.gamma * dot + p.coef0);
    default: return dot;
  }
}

inline double dot(const float* a, const float* b, int64_t d) {
  double s = 0;
  for (int64_t k = 0; k < d; ++k) s += double(a[k]) * double(b[k]);
  return s;
}

// out[j] = K(x, X_j) for the n rows stored as 16-row panels (see gemv_panels); each lane sums
// over k in order, like dot().
inline void row(const KernelParams& p, const float* P, int64_t n, int64_t d, const float* x, float* out) {
  constexpr int64_t L = 16;
  const int64_t panels = (n + L - 1) / L;
  for (int64_t b = 0; b < panels; ++b) {
    double acc[L] = {};
    const float* pp = P + b * d * L;
    for (int64_t k = 0; k < d; ++k) {
      const double xk = x[k];
      for (int64_t l = 0; l < L; ++l) acc[l] += xk * double(pp[k * L + l]);
    }
    for (int64_t l = 0; l < L && b * L + l < n; ++l) out[b * L + l] = float(apply(p, acc[l]));
  }
}

// linear and poly values are unbounded; rbf and sigmoid stay in [-1, 1] and keep the fast rows
inline bool used_for(KernelType t) { return t == KernelType::linear || t == KernelType::poly; }

}  // namespace forgeml::svm::precise
