// Picks the CSC kernel table for an ISA; each is set up once. An ISA this build lacks falls back to
// the next narrower one (forgeml/kernel_tables.h); the reference ISA's products take the driver's
// float64 loop (csc.cpp), not a kernel of this table.
#include "cpu/sparse/kernels.h"
#include "forgeml/kernel_tables.h"

namespace forgeml::sparse::detail {

const CscKernel& csc_kernel_for(Isa isa) {
  static const KernelTables<CscKernel> tables(nullptr, csc_portable, csc_avx2, csc_avx512);
  return tables[isa];
}

}  // namespace forgeml::sparse::detail
