// Picks the split-kernel table for an ISA; each is set up once. AVX2 and AVX-512 take the portable
// table with their own class_proxies and word_gini (kernels.h says why). The compact-forest
// walk's table is compact_registry.cpp's.
#include "cpu/tree/kernels.h"
#include "forgeml/kernel_tables.h"

namespace forgeml::tree {

const SplitKernels& split_kernels_for(Isa isa) {
  static const KernelTables<SplitKernels> tables(split_kernels_reference, split_kernels_portable, split_kernels_avx2,
                                                 split_kernels_avx512);
  return tables[isa];
}

const SplitKernels& split_kernels() { return split_kernels_for(active_isa()); }

}  // namespace forgeml::tree
