// Picks the micro-kernel (and its cache blocking) for an ISA; each is set up once.
#include "cpu/gemm/kernels.h"
#include "forgeml/check.h"

namespace forgeml::gemm::detail {

const Kernel& kernel_for(Isa isa) {
  static const Kernel portable = [] { Kernel k; kernel_portable(k); return k; }();
  static const Kernel avx2 = [&] { Kernel k; return kernel_avx2(k) ? k : portable; }();
  static const Kernel avx512 = [&] { Kernel k; return kernel_avx512(k) ? k : avx2; }();
  switch (isa) {
    case Isa::avx512: return avx512;
    case Isa::avx2: return avx2;
    default: return portable;
  }
}

}  // namespace forgeml::gemm::detail
