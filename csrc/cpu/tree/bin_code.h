// The code of one value under a feature's cut points (tree.h's contract), shared by the dense and
// sparse binning kernels.
#pragma once
#include <cmath>
#include <cstdint>

#include "cpu/tree/tree.h"

namespace forgeml::tree {

// code = #cuts < v in the +inf-padded 256 cut points e (branchless binary search); NaN -> kNanBin
inline uint8_t code_of(const float* e, float v) {
  if (std::isnan(v)) return static_cast<uint8_t>(kNanBin);
  int i = 0;
  for (int step = 128; step >= 1; step >>= 1) i += (e[i + step - 1] < v) ? step : 0;
  return static_cast<uint8_t>(i);
}

// out[i * stride] = code_of(e, x[i * stride]) for i < count by AVX-512 or AVX2 compares
// (binning_avx512.cpp, binning_avx2.cpp); false when not built for it.
bool codes_avx512(const float* e, const float* x, int64_t stride, int64_t count, uint8_t* out);
bool codes_avx2(const float* e, const float* x, int64_t stride, int64_t count, uint8_t* out);

}  // namespace forgeml::tree
