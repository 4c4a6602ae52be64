// Picks the linear L1 solver's column-pass table for an ISA; each is set up once. An ISA this build lacks
// falls back to the next narrower one, as gemm's registry does.
#include "cpu/svm/linear/linear.h"

namespace forgeml::svm {

const L1ColumnKernels& l1_column_kernels_for(Isa isa) {
  static const L1ColumnKernels portable = [] {
    L1ColumnKernels k{};
    l1_column_kernels_portable(k);
    return k;
  }();
  static const L1ColumnKernels avx2 = [] {
    L1ColumnKernels k{};
    return l1_column_kernels_avx2(k) ? k : portable;
  }();
  static const L1ColumnKernels avx512 = [] {
    L1ColumnKernels k{};
    return l1_column_kernels_avx512(k) ? k : avx2;
  }();
  switch (isa) {
    case Isa::avx2:
      return avx2;
    case Isa::avx512:
      return avx512;
    default:
      return portable;  // reference and portable: the plain loops
  }
}

const L1ColumnKernels& active_l1_column_kernels() { return l1_column_kernels_for(active_isa()); }

}  // namespace forgeml::svm
