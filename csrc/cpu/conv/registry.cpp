// Picks the convolution table for an ISA; each is set up once. An ISA this build lacks falls back
// to the next narrower one, as gemm's registry does.
#include "cpu/conv/kernels.h"
#include "forgeml/kernel_tables.h"

namespace forgeml::conv {

const Kernels& kernels_for(Isa isa) {
  static const KernelTables<Kernels> tables(kernels_reference, kernels_portable, kernels_avx2, kernels_avx512);
  return tables[isa];
}

const Kernels& active_kernels() { return kernels_for(active_isa()); }

}  // namespace forgeml::conv
