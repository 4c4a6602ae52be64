// Internal to csrc/cpu/sparse: the kernel contract of dense_x_csc (forgeml/sparse.h), one table per
// ISA (csc_<isa>.cpp fill them, registry.cpp picks active_isa()'s).
//
// The driver transposes a block of MB rows of X into xt (K x MB: row k holds X[r0 + b, k] for
// b < MB, zero past M), and a kernel call handles `cols` columns and the rows below k1:
//   yt[c * MB + b] (+)= sum over p in [cur[c], end[c]) with idx[p] < k1 of val[p] * xt[idx[p] * MB + b]
// (+= when accumulate), leaving cur[c] at the first nonzero not taken. Rows ascend within a
// column, so the driver can walk the depth in slices of xt that stay in cache, and each
// nonzero costs MB / lanes vector FMAs over contiguous memory.
#pragma once
#include <cstdint>

#include "forgeml/cpu_features.h"

namespace forgeml::sparse::detail {

using CscPanel = void (*)(int64_t cols, int64_t* cur, const int64_t* end, int32_t k1, const int32_t* idx,
                          const float* val, const float* xt, float* yt, bool accumulate);

struct CscKernel {
  CscPanel panel;
  int mb;  // rows of X per block
  const char* name;
};

bool csc_avx512(CscKernel& k);
bool csc_avx2(CscKernel& k);
void csc_portable(CscKernel& k);

// The table for an ISA, each set up once (registry.cpp). A reference-ISA product runs the driver's
// float64 loop as a whole, so the reference table (the portable one) serves only the kernel's name.
const CscKernel& csc_kernel_for(Isa isa);

}  // namespace forgeml::sparse::detail
