// Picks the kernel SVC's table for an ISA; each is set up once. An ISA this build lacks falls back
// to the next narrower one, as gemm's registry does.
#include "cpu/svm/kernel_fn.h"
#include "cpu/svm/kernels.h"
#include "forgeml/kernel_tables.h"

namespace forgeml::svm {

void kernels_portable(Kernels& k) {
  k = {portable::kernel_fn, portable::gemv_panels, portable::update_pick_i, portable::pick_i, portable::pick_j};
}

const Kernels& kernels_for(Isa isa) {
  static const KernelTables<Kernels> tables(nullptr, kernels_portable, kernels_avx2, kernels_avx512);
  return tables[isa];
}

const Kernels& active_kernels() { return kernels_for(active_isa()); }

}  // namespace forgeml::svm
