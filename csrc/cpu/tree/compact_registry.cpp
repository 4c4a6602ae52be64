// Picks the compact-forest walk for an ISA (portable, or the AVX2 / AVX-512 gather walks); set up
// once. Its own file so that the prediction code links without the split kernels (the sanitizer
// build).
#include "cpu/tree/kernels.h"
#include "forgeml/kernel_tables.h"

namespace forgeml::tree {

const CompactKernels& compact_kernels_for(Isa isa) {
  static const KernelTables<CompactKernels> tables(nullptr, compact_kernels_portable, compact_kernels_avx2,
                                                   compact_kernels_avx512);
  return tables[isa];
}

const CompactKernels& compact_kernels() { return compact_kernels_for(active_isa()); }

}  // namespace forgeml::tree
