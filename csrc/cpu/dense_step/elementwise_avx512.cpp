// Elementwise kernels of the fused Dense step compiled for AVX512 (this file gets its flags).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/dense_step/kernels.h"

#if defined(__x86_64__)
namespace {
#include "cpu/dense_step/elementwise.inc"
}  // namespace

namespace forgeml::dense::detail {
const Kernels& kernels_avx512() { return kTable; }
}  // namespace forgeml::dense::detail
#endif
