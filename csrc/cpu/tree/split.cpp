// best_split: the scan of split.h over dense per-feature histograms (contract in tree.h).
#include <vector>

#include "cpu/tree/criterion.h"
#include "cpu/tree/split.h"
#include "cpu/tree/tree.h"

namespace forgeml::tree {

namespace {

template <class C>
SplitResult scan_all(const C& crit, const double* hist, int d, const double* total, int S, const Limits& lim) {
  std::vector<double> l(S), r(S), tmp(3 * S);
  Best best;
  best.left = l.data();
  best.right = r.data();
  for (int f = 0; f < d; ++f) {
    const double* h = hist + static_cast<size_t>(f) * 256 * S;
    uint64_t occ[4] = {0, 0, 0, 0};
    for (int b = 0; b < 256; ++b)
      if (h[b * S] > 0) occ[b >> 6] |= uint64_t{1} << (b & 63);
    scan_feature(crit, h, occ, total, S, lim, f, f, tmp.data(), best);
  }
  return {best.feature, best.bin, best.nan_left, best.proxy};
}

}  // namespace

SplitResult best_split(const double* hist, int d, const double* total, Criterion criterion, int n_classes,
                       double min_samples_leaf, double min_weight_leaf) {
  Limits lim{min_samples_leaf, min_weight_leaf};
  switch (criterion) {
    case Criterion::gini: return scan_all(Gini{n_classes}, hist, d, total, n_classes + 2, lim);
    case Criterion::entropy: return scan_all(Entropy{n_classes}, hist, d, total, n_classes + 2, lim);
    default: return scan_all(SquaredError{1}, hist, d, total, 4, lim);
  }
}

}  // namespace forgeml::tree
