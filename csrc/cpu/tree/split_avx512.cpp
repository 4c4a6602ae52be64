// The split kernels' AVX-512 entry: the portable table with class_proxies compiled for AVX-512
// (split_proxies.h's loop, eight boundaries per divide).
#include "cpu/tree/kernels.h"

#if defined(__x86_64__)
#define FORGEML_TREE_PROXIES_NS avx512
#include "cpu/tree/split_proxies.h"

namespace forgeml::tree {

void class_proxies_avx512(const double* cl, int stride, const double* wl, const double* nl, int m, int K,
                          const double* total, double min_leaf, double min_weight, double* pr) {
  avx512::class_proxies(cl, stride, wl, nl, m, K, total, min_leaf, min_weight, pr);
}

bool split_kernels_avx512(SplitKernels& k) {
  split_kernels_portable(k);
  k.class_proxies = class_proxies_avx512;
  k.name = "avx512";
  return true;
}

}  // namespace forgeml::tree
#else
namespace forgeml::tree {
bool split_kernels_avx512(SplitKernels&) { return false; }
}  // namespace forgeml::tree
#endif
