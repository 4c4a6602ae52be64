// Gate math for the reference (libm) and portable (compiler-vectorised fast math) entries.
#include "gates.h"

namespace forgeml::rnn {

void gate_kernels_reference(GateKernels& k) { k = Rows<LibmMath>::table("reference"); }

void gate_kernels_portable(GateKernels& k) { k = Rows<FastMath>::table("portable"); }

}  // namespace forgeml::rnn
