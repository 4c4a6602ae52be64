// best_split: the scan of split.h over dense per-feature histograms (contract in tree.h), as the
// entries of the split-kernel tables (kernels.h): the generic scan (reference) and the
// fixed-width one (portable).
#include <vector>

#include "cpu/tree/criterion.h"
#include "cpu/tree/hist_words.h"
#include "cpu/tree/kernels.h"
#include "cpu/tree/split.h"
#include "cpu/tree/split_proxies.h"
#include "cpu/tree/tree.h"

namespace forgeml::tree {

namespace {

template <bool kGeneric, class C>
SplitResult scan_all(const C& crit, const double* hist, int d, const double* total, int S, const Limits& lim) {
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
    if constexpr (kGeneric) scan_feature(crit, hw.data(), cnt.data(), occ, total, S, lim, f, f, tmp.data(), best);
    else scan_any(crit, hw.data(), cnt.data(), occ, total, S, lim, f, f, tmp.data(), best);
  }
  return {best.feature, best.bin, best.nan_left, best.proxy};
}

template <bool kGeneric>
SplitResult best_split_scan(const double* hist, int d, const double* total, Criterion criterion, int n_classes,
                            double min_samples_leaf, double min_weight_leaf) {
  Limits lim{min_samples_leaf, min_weight_leaf};
  switch (criterion) {
    case Criterion::gini: return scan_all<kGeneric>(Gini{n_classes}, hist, d, total, n_classes + 2, lim);
    case Criterion::entropy: return scan_all<kGeneric>(Entropy{n_classes}, hist, d, total, n_classes + 2, lim);
    case Criterion::poisson: return scan_all<kGeneric>(Poisson{1}, hist, d, total, 4, lim);
    case Criterion::absolute_error: throw std::invalid_argument("criterion: absolute_error has no histogram scan");
    default: return scan_all<kGeneric>(SquaredError{1}, hist, d, total, 4, lim);
  }
}

// build_words' kept form (kernels.h) for nf in [NF, 8], nf known at compile time.
template <int NF = 1>
void build_words_kept_portable(const ClassRow* rows, int64_t m, const uint8_t* codes, int64_t d, const int* f, int nf,
                               uint64_t* pk, uint64_t* keep) {
  if constexpr (NF < 8)
    if (nf != NF) return build_words_kept_portable<NF + 1>(rows, m, codes, d, f, nf, pk, keep);
  build_words<false, NF, ClassRow, true>(rows, m, codes, d, f, NF, pk, nullptr, keep);
}

}  // namespace

void class_proxies_portable(const double* cl, int stride, const double* wl, const double* nl, int m, int K,
                            const double* total, double min_leaf, double min_weight, double* pr) {
  portable::class_proxies(cl, stride, wl, nl, m, K, total, min_leaf, min_weight, pr);
}

void split_kernels_reference(SplitKernels& k) {
  k = {best_split_scan<true>, class_proxies_portable, compact_words_portable, word_gini_portable,
       build_words_kept_portable<>, "reference"};
}
void split_kernels_portable(SplitKernels& k) {
  k = {best_split_scan<false>, class_proxies_portable, compact_words_portable, word_gini_portable,
       build_words_kept_portable<>, "portable"};
}

SplitResult best_split(const double* hist, int d, const double* total, Criterion criterion, int n_classes,
                       double min_samples_leaf, double min_weight_leaf) {
  return split_kernels().best_split(hist, d, total, criterion, n_classes, min_samples_leaf, min_weight_leaf);
}

}  // namespace forgeml::tree
