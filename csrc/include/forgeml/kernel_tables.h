// One kernel table per ISA for a CPU family, each filled once by the family's fill functions;
// an ISA the build lacks (its fill returns false, or there is none) takes the next narrower
// table, and a family without reference loops of its own uses its portable ones. An ISA above
// the CPU's (detected_isa) takes the next narrower table without calling its fill function.
#pragma once
#include "forgeml/cpu_features.h"

namespace forgeml {

template <class Table>
class KernelTables {
 public:
  KernelTables(void (*fill_reference)(Table&), void (*fill_portable)(Table&), bool (*fill_avx2)(Table&),
               bool (*fill_avx512)(Table&)) {
    fill_portable(portable_);
    if (fill_reference) fill_reference(reference_);
    else reference_ = portable_;
    // A fill function is compiled for its ISA and may itself use its instructions (an AVX-512
    // fill assembled its table with ZMM moves: SIGILL on an AVX2 CPU): called only where the CPU runs them.
    const Isa cpu = detected_isa();
    if (!fill_avx2 || cpu < Isa::avx2 || !fill_avx2(avx2_)) avx2_ = portable_;
    if (!fill_avx512 || cpu < Isa::avx512 || !fill_avx512(avx512_)) avx512_ = avx2_;
  }

  const Table& operator[](Isa isa) const {
    switch (isa) {
      case Isa::reference:
        return reference_;
      case Isa::avx2:
        return avx2_;
      case Isa::avx512:
        return avx512_;
      default:
        return portable_;
    }
  }

 private:
  Table reference_{}, portable_{}, avx2_{}, avx512_{};
};

}  // namespace forgeml
