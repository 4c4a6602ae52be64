// Picks the split-kernel table for an ISA; each is set up once. The tree family has no AVX2 or
// AVX-512 entries of its own: those ISAs take the portable table (kernels.h says why).
#include "cpu/tree/kernels.h"
#include "forgeml/kernel_tables.h"

namespace forgeml::tree {

const SplitKernels& split_kernels_for(Isa isa) {
  static const KernelTables<SplitKernels> tables(split_kernels_reference, split_kernels_portable, nullptr, nullptr);
  return tables[isa];
}

const SplitKernels& split_kernels() { return split_kernels_for(active_isa()); }

}  // namespace forgeml::tree
