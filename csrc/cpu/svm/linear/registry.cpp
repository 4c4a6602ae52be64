// Picks the linear L1 solver's column-pass table for an ISA; each is set up once. An ISA this build lacks
// falls back to the next narrower one, as gemm's registry does.
#include "cpu/svm/linear/linear.h"
#include "forgeml/kernel_tables.h"

namespace forgeml::svm {

const L1ColumnKernels& l1_column_kernels_for(Isa isa) {
  static const KernelTables<L1ColumnKernels> tables(nullptr, l1_column_kernels_portable, l1_column_kernels_avx2,
                                                    l1_column_kernels_avx512);
  return tables[isa];
}

const L1ColumnKernels& active_l1_column_kernels() { return l1_column_kernels_for(active_isa()); }

}  // namespace forgeml::svm
