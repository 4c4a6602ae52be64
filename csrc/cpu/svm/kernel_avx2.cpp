// The SVM kernel function loops compiled for AVX2 + FMA (see kernel_fn.h), and the panel GEMV
// with its accumulators in YMM registers: a 16-row panel is two 8-float vectors.
#if defined(__x86_64__)
#define FORGEML_SVM_FN_NS avx2
#include <immintrin.h>

#include "cpu/svm/kernel_fn.h"
#include "cpu/svm/kernels.h"

namespace forgeml::svm {

void kernel_fn_avx2(int type, float g, float c0, int degree, float ni, const float* nj, float* r, int64_t n) {
  avx2::kernel_fn(type, g, c0, degree, ni, nj, r, n);
}

namespace {

// U panels of 16 rows: 2U accumulators and one broadcast, within the 16 YMM registers for U <= 4.
template <int U>
inline void gemv_block(const float* P, int64_t d, const float* x, float* out, int64_t n_left) {
  __m256 acc[2 * U];
  for (int u = 0; u < 2 * U; ++u) acc[u] = _mm256_setzero_ps();
  for (int64_t k = 0; k < d; ++k) {
    const __m256 xk = _mm256_broadcast_ss(x + k);
    for (int u = 0; u < U; ++u) {
      const float* p = P + (u * d + k) * 16;
      acc[2 * u] = _mm256_fmadd_ps(xk, _mm256_loadu_ps(p), acc[2 * u]);
      acc[2 * u + 1] = _mm256_fmadd_ps(xk, _mm256_loadu_ps(p + 8), acc[2 * u + 1]);
    }
  }
  for (int u = 0; u < U; ++u) {
    const int64_t left = n_left - 16 * u;
    if (left >= 16) {
      _mm256_storeu_ps(out + 16 * u, acc[2 * u]);
      _mm256_storeu_ps(out + 16 * u + 8, acc[2 * u + 1]);
    } else {  // the last panel: only its live rows
      alignas(32) float tmp[16];
      _mm256_store_ps(tmp, acc[2 * u]);
      _mm256_store_ps(tmp + 8, acc[2 * u + 1]);
      for (int64_t l = 0; l < left; ++l) out[16 * u + l] = tmp[l];
    }
  }
}

}  // namespace

void gemv_panels_avx2(const float* P, int64_t n, int64_t d, const float* x, float* out) {
  constexpr int U = 4;
  const int64_t panels = (n + 15) / 16;
  int64_t b = 0;
  for (; b + U <= panels; b += U) gemv_block<U>(P + b * d * 16, d, x, out + b * 16, n - b * 16);
  for (; b < panels; ++b) gemv_block<1>(P + b * d * 16, d, x, out + b * 16, n - b * 16);
}

bool kernels_avx2(Kernels& k) {
  k = {kernel_fn_avx2, gemv_panels_avx2, update_pick_i_avx2, pick_i_avx2, pick_j_avx2};
  return true;
}

}  // namespace forgeml::svm
#else
#include "cpu/svm/kernels.h"

namespace forgeml::svm {
bool kernels_avx2(Kernels&) { return false; }
}  // namespace forgeml::svm
#endif
