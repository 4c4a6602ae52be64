// Gate math compiled with the avx2 flags (CMake gives *_avx2.cpp its ISA); see gates.h.
#include "rnn.h"
#if defined(__x86_64__)
#include "gates.h"
#endif

namespace forgeml::rnn {

const GateKernels& gate_kernels_avx2() {
#if defined(__x86_64__)
  static const GateKernels k = Rows<FastMath>::table();
  return k;
#else
  return gate_kernels_portable();
#endif
}

}  // namespace forgeml::rnn
