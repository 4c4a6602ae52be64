// The kernel function on one row of dot products, r[j] = k(r[j]) for j < n, written as plain
// loops that vectorise. Included as portable::kernel_fn (baseline ISA), by kernel_avx2.cpp as
// avx2::kernel_fn and by kernel_avx512.cpp as avx512::kernel_fn; kernels.h's table holds one per ISA.
//   type: 0 linear, 1 poly, 2 rbf (needs |x_i|^2 = ni and |x_j|^2 = nj[j]), 3 sigmoid.
#pragma once
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

#ifndef FORGEML_SVM_FN_NS
#define FORGEML_SVM_FN_NS portable
#endif

namespace forgeml::svm {

namespace FORGEML_SVM_FN_NS {

// exp(x) for x <= 0: x = n ln2 + r with |r| <= ln2 / 2, exp(r) by a degree-6 Taylor polynomial
// (relative error below 2e-7), 2^n through the exponent bits; underflows to 0 below -87.
inline float exp_nonpos(float x) {
  x = std::max(x, -87.0f);
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (x * 1.44269504088896341f + shifter) - shifter;
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
  float p = 1.f / 720;
  p = p * r + 1.f / 120;
  p = p * r + 1.f / 24;
  p = p * r + 1.f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  const int32_t bits = (int32_t(n) + 127) << 23;
  return p * std::bit_cast<float>(bits);
}

inline void kernel_fn(int type, float g, float c0, int degree, float ni, const float* nj, float* r, int64_t n) {
  switch (type) {
    case 2:
      for (int64_t j = 0; j < n; ++j) r[j] = exp_nonpos(-g * std::max(0.f, ni + nj[j] - 2.f * r[j]));
      break;
    case 1: {
      constexpr int64_t kChunk = 256;  // integer power by repeated products, chunk by chunk
      float base[kChunk];
      for (int64_t j0 = 0; j0 < n; j0 += kChunk) {
        const int64_t m = std::min(kChunk, n - j0);
        float* x = r + j0;
        for (int64_t j = 0; j < m; ++j) base[j] = g * x[j] + c0, x[j] = 1.f;
        for (int k = 0; k < degree; ++k)
          for (int64_t j = 0; j < m; ++j) x[j] *= base[j];
      }
      break;
    }
    case 3:
      for (int64_t j = 0; j < n; ++j) r[j] = std::tanh(g * r[j] + c0);
      break;
    default:
      break;
  }
}

// One kernel row's dot products, out[j] = x . X_j for j < n, with X stored as panels of 16 rows:
// P[(b * d + k) * 16 + l] = X[16 b + l][k] (zero rows pad the last panel). A GEMV streams X once,
// so it runs at memory speed; a GEMM micro-kernel would pad the single row to its full height.
inline void gemv_panels(const float* P, int64_t n, int64_t d, const float* x, float* out) {
  constexpr int64_t L = 16, U = 4;
  const int64_t panels = (n + L - 1) / L;
  int64_t b = 0;
  for (; b + U <= panels; b += U) {
    float acc[U][L] = {};
    const float* p = P + b * d * L;
    for (int64_t k = 0; k < d; ++k) {
      const float xk = x[k];
      for (int64_t u = 0; u < U; ++u)
        for (int64_t l = 0; l < L; ++l) acc[u][l] += xk * p[(u * d + k) * L + l];
    }
    for (int64_t u = 0; u < U; ++u)
      for (int64_t l = 0; l < L; ++l)
        if ((b + u) * L + l < n) out[(b + u) * L + l] = acc[u][l];
  }
  for (; b < panels; ++b) {
    float acc[L] = {};
    const float* p = P + b * d * L;
    for (int64_t k = 0; k < d; ++k)
      for (int64_t l = 0; l < L; ++l) acc[l] += x[k] * p[k * L + l];
    for (int64_t l = 0; l < L && b * L + l < n; ++l) out[b * L + l] = acc[l];
  }
}

}  // namespace FORGEML_SVM_FN_NS

}  // namespace forgeml::svm
