// Picks the gate-math table for an ISA; each is set up once. An ISA this build (or CPU build
// flags) lacks falls back to the next narrower one, as gemm's registry does.
#include "cpu/rnn/kernels.h"
#include "forgeml/kernel_tables.h"

namespace forgeml::rnn {

const GateKernels& gate_kernels_for(Isa isa) {
  static const KernelTables<GateKernels> tables(gate_kernels_reference, gate_kernels_portable, gate_kernels_avx2,
                                                gate_kernels_avx512);
  return tables[isa];
}

const GateKernels& gate_kernels() { return gate_kernels_for(active_isa()); }

}  // namespace forgeml::rnn
