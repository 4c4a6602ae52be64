// Picks the gate-math table for an ISA; each is set up once. An ISA this build (or CPU build
// flags) lacks falls back to the next narrower one, as gemm's registry does.
#include "kernels.h"

namespace forgeml::rnn {

const GateKernels& gate_kernels_for(Isa isa) {
  static const GateKernels reference = [] {
    GateKernels k{};
    gate_kernels_reference(k);
    return k;
  }();
  static const GateKernels portable = [] {
    GateKernels k{};
    gate_kernels_portable(k);
    return k;
  }();
  static const GateKernels avx2 = [] {
    GateKernels k{};
    return gate_kernels_avx2(k) ? k : portable;
  }();
  static const GateKernels avx512 = [] {
    GateKernels k{};
    return gate_kernels_avx512(k) ? k : avx2;
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

const GateKernels& gate_kernels() { return gate_kernels_for(active_isa()); }

}  // namespace forgeml::rnn
