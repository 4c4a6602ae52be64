// The SVM kernel function loops compiled for AVX-512 (see kernel_fn.h).
#if defined(__x86_64__)
#define FORGEML_SVM_FN_NS avx512
#include "cpu/svm/kernel_fn.h"

namespace forgeml::svm {

void kernel_fn_avx512(int type, float g, float c0, int degree, float ni, const float* nj, float* r, int64_t n) {
  avx512::kernel_fn(type, g, c0, degree, ni, nj, r, n);
}

void gemv_panels_avx512(const float* P, int64_t n, int64_t d, const float* x, float* out) {
  avx512::gemv_panels(P, n, d, x, out);
}

}  // namespace forgeml::svm
#else
#include "cpu/svm/kernel_fn.h"

namespace forgeml::svm {

void kernel_fn_avx512(int type, float g, float c0, int degree, float ni, const float* nj, float* r, int64_t n) {
  portable::kernel_fn(type, g, c0, degree, ni, nj, r, n);
}

void gemv_panels_avx512(const float* P, int64_t n, int64_t d, const float* x, float* out) {
  portable::gemv_panels(P, n, d, x, out);
}

}  // namespace forgeml::svm
#endif
