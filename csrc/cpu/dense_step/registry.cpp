// Picks the Dense-step elementwise table for an ISA; each is set up once. An ISA this build lacks
// falls back to the next narrower one, as gemm's registry does.
#include "cpu/dense_step/kernels.h"

namespace forgeml::dense::detail {

const Kernels& kernels_for(Isa isa) {
  static const Kernels reference = [] {
    Kernels k{};
    kernels_reference(k);
    return k;
  }();
  static const Kernels portable = [] {
    Kernels k{};
    kernels_portable(k);
    return k;
  }();
  static const Kernels avx2 = [] {
    Kernels k{};
    return kernels_avx2(k) ? k : portable;
  }();
  static const Kernels avx512 = [] {
    Kernels k{};
    return kernels_avx512(k) ? k : avx2;
  }();
  switch (isa) {
    case Isa::reference:
      return reference;
    case Isa::avx2:
      return avx2;
    case Isa::avx512:
      return avx512;
    default:
      return portable;
  }
}

const Kernels& active_kernels() { return kernels_for(active_isa()); }

}  // namespace forgeml::dense::detail
