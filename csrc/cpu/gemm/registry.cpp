// Picks the micro-kernel (and its cache blocking) for an ISA; each is set up once. An ISA this build
// lacks falls back to the next narrower one (forgeml/kernel_tables.h).
#include "cpu/gemm/kernels.h"
#include "forgeml/kernel_tables.h"

namespace forgeml::gemm::detail {

const Kernel& kernel_for(Isa isa) {
  static const KernelTables<Kernel> tables(kernel_reference, kernel_portable, kernel_avx2, kernel_avx512);
  return tables[isa];
}

}  // namespace forgeml::gemm::detail
