// Gate math compiled with the avx512 flags (CMake gives *_avx512.cpp its ISA); see gates.h.
#include "kernels.h"
#if defined(__x86_64__)
#include "gates.h"
#endif

namespace forgeml::rnn {

bool gate_kernels_avx512(GateKernels& k) {
#if defined(__x86_64__)
  k = Rows<FastMath>::table("avx512");
  return true;
#else
  (void)k;
  return false;
#endif
}

}  // namespace forgeml::rnn
