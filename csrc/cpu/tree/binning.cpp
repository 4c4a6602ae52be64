// Quantile binning: cut points per feature from a row sample, then uint8 codes for all rows.
// Contract in tree.h. A feature with at most max_bins - 1 distinct values gets a cut between every
// pair of neighbours (so trees can separate every value); otherwise cuts follow the quantiles of
// the sample, a heavy value keeping a bin of its own.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "forgeml/check.h"
#include "forgeml/parallel.h"
#include "cpu/tree/rng.h"
#include "cpu/tree/tree.h"

namespace forgeml::tree {

namespace {

// Cut strictly between a < b, exactly representable in float32 (so a <= cut < b).
float midpoint(float a, float b) {
  float m = static_cast<float>(0.5 * (static_cast<double>(a) + static_cast<double>(b)));
  return (m >= b || m < a) ? a : m;
}

void feature_edges(std::vector<float>& v, int value_bins, float* edges, int32_t* n_edges) {
  std::sort(v.begin(), v.end());
  std::vector<float> uniq;
  std::vector<int64_t> before;  // rows below each distinct value
  for (size_t i = 0; i < v.size(); ++i)
    if (i == 0 || v[i] != v[i - 1]) { uniq.push_back(v[i]); before.push_back(static_cast<int64_t>(i)); }
  int ne = 0;
  const int64_t m = static_cast<int64_t>(v.size());
  for (size_t i = 0; i + 1 < uniq.size() && ne < value_bins - 1; ++i) {
    bool cut = static_cast<int64_t>(uniq.size()) <= value_bins ||
               before[i] * value_bins / m != before[i + 1] * value_bins / m;
    if (cut) edges[ne++] = midpoint(uniq[i], uniq[i + 1]);
  }
  for (int i = ne; i < 256; ++i) edges[i] = std::numeric_limits<float>::infinity();
  *n_edges = ne;
}

}  // namespace

void bin_edges(const float* X, int64_t n, int d, const double* weight, int max_bins, int64_t sample,
               uint64_t seed, float* edges, int32_t* n_edges) {
  FORGEML_CHECK_ARG(max_bins >= 2 && max_bins <= kMaxValueBins, "max_bins: expected 2..255, got ", max_bins);
  std::vector<int64_t> rows;
  rows.reserve(n);
  for (int64_t i = 0; i < n; ++i)
    if (!weight || weight[i] > 0) rows.push_back(i);
  if (sample > 0 && static_cast<int64_t>(rows.size()) > sample) {  // partial Fisher-Yates
    Rng rng(seed);
    for (int64_t i = 0; i < sample; ++i)
      std::swap(rows[i], rows[i + static_cast<int64_t>(rng.below(rows.size() - i))]);
    rows.resize(sample);
    std::sort(rows.begin(), rows.end());
  }
  const int value_bins = max_bins - 1;  // one bin is kept for NaN
  parallel_for(d, 1, [&](int64_t f0, int64_t f1) {
    std::vector<float> v;
    for (int64_t f = f0; f < f1; ++f) {
      v.clear();
      for (int64_t r : rows) {
        float x = X[r * d + f];
        if (!std::isnan(x)) v.push_back(x);
      }
      feature_edges(v, value_bins, edges + f * 256, n_edges + f);
    }
  });
}

void bin_codes(const float* X, int64_t n, int d, const float* edges, const int32_t* n_edges, uint8_t* codes) {
  parallel_for(n, 4096, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = X + r * d;
      uint8_t* c = codes + r * d;
      for (int f = 0; f < d; ++f) {
        if (std::isnan(x[f])) { c[f] = kNanBin; continue; }
        const float* e = edges + static_cast<int64_t>(f) * 256;
        c[f] = static_cast<uint8_t>(std::lower_bound(e, e + n_edges[f], x[f]) - e);
      }
    }
  });
}

}  // namespace forgeml::tree
