// Gate math compiled with the avx2 flags (CMake gives *_avx2.cpp its ISA); see gates.h.
#include "kernels.h"
#if defined(__x86_64__)
#include "gates.h"
#endif

namespace forgeml::rnn {

bool gate_kernels_avx2(GateKernels& k) {
#if defined(__x86_64__)
  k = Rows<FastMath>::table("avx2");
  return true;
#else
  (void)k;
  return false;
#endif
}

}  // namespace forgeml::rnn
