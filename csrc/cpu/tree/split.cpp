// best_split: the scan of split.h over dense per-feature histograms (contract in tree.h).
#include <vector>

#include "cpu/tree/criterion.h"
#include "cpu/tree/split.h"
#include "cpu/tree/tree.h"

namespace forgeml::tree {

namespace {

template <class C>
SplitResult scan_all(const C& crit, const double* hist, int d, const double* total, int S, const Limits& lim,
                      bool reference) {
  const int H = C::kClassify ? S - 2 : 3;
  std::vector<double> l(S), r(S), tmp(4 * S), hw(256 * H);
  std::vector<uint32_t> cnt(256);
  Best best;
  best.left = l.data();
  best.right = r.data();
  for (int f = 0; f < d; ++f) {  // dense (256, S) -> the kernels' compact layout
    const double* h = hist + static_cast<size_t>(f) * 256 * S;
    uint64_t occ[4] = {0, 0, 0, 0};
    for (int b = 0; b < 256; ++b) {
      const double* s = h + b * S;
      cnt[b] = static_cast<uint32_t>(s[0]);
      if (s[0] > 0) occ[b >> 6] |= uint64_t{1} << (b & 63);
      if (C::kClassify) {
        for (int k = 0; k < H; ++k) hw[b * H + k] = s[2 + k];
      } else {
        hw[b * 3] = s[1]; hw[b * 3 + 1] = s[2]; hw[b * 3 + 2] = s[3];
      }
    }
    if (reference) scan_feature(crit, hw.data(), cnt.data(), occ, total, S, lim, f, f, tmp.data(), best);
    else scan_any(crit, hw.data(), cnt.data(), occ, total, S, lim, f, f, tmp.data(), best);
  }
  return {best.feature, best.bin, best.nan_left, best.proxy};
}

}  // namespace

SplitResult best_split(const double* hist, int d, const double* total, Criterion criterion, int n_classes,
                       double min_samples_leaf, double min_weight_leaf, bool reference) {
  Limits lim{min_samples_leaf, min_weight_leaf};
  switch (criterion) {
    case Criterion::gini: return scan_all(Gini{n_classes}, hist, d, total, n_classes + 2, lim, reference);
    case Criterion::entropy: return scan_all(Entropy{n_classes}, hist, d, total, n_classes + 2, lim, reference);
    case Criterion::poisson: return scan_all(Poisson{1}, hist, d, total, 4, lim, reference);
    case Criterion::absolute_error: throw std::invalid_argument("criterion: absolute_error has no histogram scan");
    default: return scan_all(SquaredError{1}, hist, d, total, 4, lim, reference);
  }
}

}  // namespace forgeml::tree
