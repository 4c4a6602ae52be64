// The SVM kernel function loops compiled for AVX-512 (see kernel_fn.h).
#if defined(__x86_64__)
#define FORGEML_SVM_FN_NS avx512
#include "cpu/svm/kernel_fn.h"

#include <immintrin.h>

#include "cpu/svm/kernels.h"

namespace forgeml::svm {

void kernel_fn_avx512(int type, float g, float c0, int degree, float ni, const float* nj, float* r, int64_t n) {
  avx512::kernel_fn(type, g, c0, degree, ni, nj, r, n);
}

// gemv_panels with the accumulators pinned in registers (the plain loops compile to accumulators
// kept on the stack): U panels of 16 columns at a time, each panel a stream of d 64-byte loads.
template <int U>
inline void gemv_block(const float* P, int64_t d, const float* x, float* out, int64_t n_left) {
  __m512 acc[U];
  for (int u = 0; u < U; ++u) acc[u] = _mm512_setzero_ps();
  for (int64_t k = 0; k < d; ++k) {
    const __m512 xk = _mm512_set1_ps(x[k]);
    for (int u = 0; u < U; ++u) acc[u] = _mm512_fmadd_ps(xk, _mm512_loadu_ps(P + (u * d + k) * 16), acc[u]);
  }
  for (int u = 0; u < U; ++u) {
    const int64_t left = n_left - 16 * u;
    const __mmask16 live = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
    _mm512_mask_storeu_ps(out + 16 * u, live, acc[u]);
  }
}

void gemv_panels_avx512(const float* P, int64_t n, int64_t d, const float* x, float* out) {
  constexpr int U = 4;
  const int64_t panels = (n + 15) / 16;
  int64_t b = 0;
  for (; b + U <= panels; b += U) gemv_block<U>(P + b * d * 16, d, x, out + b * 16, n - b * 16);
  for (; b < panels; ++b) gemv_block<1>(P + b * d * 16, d, x, out + b * 16, n - b * 16);
}

bool kernels_avx512(Kernels& k) {
  k = {kernel_fn_avx512, gemv_panels_avx512, update_pick_i_avx512, pick_i_avx512, pick_j_avx512};
  return true;
}

}  // namespace forgeml::svm
#else
#include "cpu/svm/kernels.h"

namespace forgeml::svm {
bool kernels_avx512(Kernels&) { return false; }
}  // namespace forgeml::svm
#endif
