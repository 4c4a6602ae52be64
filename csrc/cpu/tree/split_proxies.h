// The Gini proxies of all boundaries of one feature (kernels.h's class_proxies), written as a
// plain loop that vectorises. Included as portable::class_proxies (baseline ISA, split.cpp), by
// split_avx2.cpp as avx2::class_proxies and by split_avx512.cpp as avx512::class_proxies. Its
// inputs are exact integers below 2^26, so the squares and their sums are exact and contracting
// them into FMAs changes no bit.
#pragma once
#include <cstdint>
#include <limits>

#ifndef FORGEML_TREE_PROXIES_NS
#define FORGEML_TREE_PROXIES_NS portable
#endif

namespace forgeml::tree {

namespace FORGEML_TREE_PROXIES_NS {

template <int K>
inline void class_proxies_k(const double* cl, int stride, const double* wl, const double* nl, int m, int K_rt,
                            const double* total, double min_leaf, double min_weight, double* pr) {
  const int nk = K > 0 ? K : K_rt;
  const double n = total[0], w = total[1];
  const double* tc = total + 2;
  constexpr double kNone = -std::numeric_limits<double>::infinity();
  for (int j = 0; j < m; ++j) {
    double sl = 0, sr = 0;
    for (int k = 0; k < nk; ++k) {
      const double a = cl[k * stride + j], b = tc[k] - a;
      sl += a * a;
      sr += b * b;
    }
    const double wlj = wl[j], wr = w - wlj, nr = n - nl[j];
    const bool ok = nl[j] >= min_leaf && nr >= min_leaf && wlj >= min_weight && wr >= min_weight && wlj > 0 && wr > 0;
    const double p = sl / wlj + sr / wr;  // the scan's pair_n: sum of squares over weight, each side
    pr[j] = ok ? p : kNone;
  }
}

inline void class_proxies(const double* cl, int stride, const double* wl, const double* nl, int m, int K,
                          const double* total, double min_leaf, double min_weight, double* pr) {
  switch (K) {
    case 2:
      return class_proxies_k<2>(cl, stride, wl, nl, m, K, total, min_leaf, min_weight, pr);
    case 3:
      return class_proxies_k<3>(cl, stride, wl, nl, m, K, total, min_leaf, min_weight, pr);
    default:
      return class_proxies_k<0>(cl, stride, wl, nl, m, K, total, min_leaf, min_weight, pr);
  }
}

}  // namespace FORGEML_TREE_PROXIES_NS

}  // namespace forgeml::tree
