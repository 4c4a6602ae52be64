// Gate math for the reference (libm) and portable (compiler-vectorised fast math) paths, and the
// run-time choice between the ISA builds.
#include "forgeml/cpu_features.h"
#include "gates.h"

namespace forgeml::rnn {

const GateKernels& gate_kernels_reference() {
  static const GateKernels k = Rows<LibmMath>::table();
  return k;
}

const GateKernels& gate_kernels_portable() {
  static const GateKernels k = Rows<FastMath>::table();
  return k;
}

const GateKernels& gate_kernels() {
  switch (active_isa()) {
    case Isa::reference: return gate_kernels_reference();
    case Isa::portable: return gate_kernels_portable();
    case Isa::avx2: return gate_kernels_avx2();
    case Isa::avx512: return gate_kernels_avx512();
  }
  return gate_kernels_portable();
}

}  // namespace forgeml::rnn
