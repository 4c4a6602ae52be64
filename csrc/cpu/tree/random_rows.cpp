// The packed-row kernels (random_rows.h) for the portable ISA, and the table per ISA.
#include "cpu/tree/random_rows.h"

namespace forgeml::tree {
namespace {
constexpr int kRowChunk = 16;  // SSE2 / NEON registers
}  // namespace
}  // namespace forgeml::tree

#include "cpu/tree/random_rows_impl.h"
#include "forgeml/kernel_tables.h"

namespace forgeml::tree {

void row_kernels_portable(RowKernels& k) {
  k = {range_rows, count_rows, count8_rows, partition_rows, partition_ranges_rows, partition_ranges_no_nan_rows,
       "portable"};
}

const RowKernels& row_kernels() {
  static const KernelTables<RowKernels> tables(nullptr, row_kernels_portable, row_kernels_avx2, row_kernels_avx512);
  return tables[active_isa()];
}

}  // namespace forgeml::tree
