// Picks the kernel SVC's table for an ISA; each is set up once. An ISA this build lacks falls back
// to the next narrower one, as gemm's registry does.
#include "cpu/svm/kernel_fn.h"
#include "cpu/svm/kernels.h"

namespace forgeml::svm {

void kernels_portable(Kernels& k) {
  k = {portable::kernel_fn, portable::gemv_panels, portable::update_pick_i, portable::pick_i, portable::pick_j};
}

const Kernels& kernels_for(Isa isa) {
  static const Kernels plain = [] {
    Kernels k{};
    kernels_portable(k);
    return k;
  }();
  static const Kernels avx512 = [] {
    Kernels k{};
    return kernels_avx512(k) ? k : plain;
  }();
  return isa == Isa::avx512 ? avx512 : plain;  // reference, portable and AVX2: the plain loops
}

const Kernels& active_kernels() { return kernels_for(active_isa()); }

}  // namespace forgeml::svm
