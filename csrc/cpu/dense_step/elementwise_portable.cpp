// Elementwise kernels of the fused Dense step, baseline ISA; the run-time choice among ISAs.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/dense_step/kernels.h"
#include "forgeml/cpu_features.h"

namespace {
#include "cpu/dense_step/elementwise.inc"
}  // namespace

namespace forgeml::dense::detail {

const Kernels& kernels_portable() { return kTable; }

const Kernels& active_kernels() {
  switch (active_isa()) {
#if defined(__x86_64__)
    case Isa::avx512:
      return kernels_avx512();
    case Isa::avx2:
      return kernels_avx2();
#endif
    default:
      return kernels_portable();
  }
}

}  // namespace forgeml::dense::detail
