// Picks the split-kernel table for an ISA; each is set up once. AVX2 takes the portable table,
// AVX-512 the portable one with its own class_proxies (kernels.h says why). The compact-forest
// walk's table is compact_registry.cpp's.
#include "cpu/tree/kernels.h"
#include "forgeml/kernel_tables.h"

namespace forgeml::tree {

const SplitKernels& split_kernels_for(Isa isa) {
  static const KernelTables<SplitKernels> tables(split_kernels_reference, split_kernels_portable, nullptr,
                                                 split_kernels_avx512);
  return tables[isa];
}

const SplitKernels& split_kernels() { return split_kernels_for(active_isa()); }

}  // namespace forgeml::tree
