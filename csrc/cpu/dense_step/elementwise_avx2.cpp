// Elementwise kernels of the fused Dense step compiled for AVX2 (this file gets its flags).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/dense_step/kernels.h"

#if defined(__x86_64__)
namespace {
#include "cpu/dense_step/elementwise.inc"
}  // namespace
#endif

namespace forgeml::dense::detail {

bool kernels_avx2(Kernels& k) {
#if defined(__x86_64__)
  k = table("avx2");
  return true;
#else
  (void)k;
  return false;
#endif
}

}  // namespace forgeml::dense::detail
