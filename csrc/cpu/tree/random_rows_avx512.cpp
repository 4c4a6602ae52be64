// The packed-row kernels (random_rows.h) compiled for AVX-512 (BW for bytes): a 64-byte row is
// one register, its comparisons set mask registers.
#include "cpu/tree/random_rows.h"

#if defined(__x86_64__)
namespace forgeml::tree {
namespace {
constexpr int kRowChunk = 64;  // one ZMM register
}  // namespace
}  // namespace forgeml::tree

#include "cpu/tree/random_rows_impl.h"

namespace forgeml::tree {

bool row_kernels_avx512(RowKernels& k) {
  k = {range_rows, count_rows, partition_rows, partition_ranges_rows, "avx512"};
  return true;
}

}  // namespace forgeml::tree

#else

namespace forgeml::tree {
bool row_kernels_avx512(RowKernels&) { return false; }
}  // namespace forgeml::tree

#endif
