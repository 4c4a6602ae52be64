// Quantile binning: cut points per feature from a row sample, then uint8 codes for all rows.
// Contract in tree.h. A feature with at most max_bins - 1 distinct values gets a cut between every
// pair of neighbours (so trees can separate every value); otherwise cuts follow the quantiles of
// the sample, a heavy value keeping a bin of its own.
#include <algorithm>
#include <cmath>
#include <cstring>
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

// LSD radix sort of floats (no NaN) on their order-preserving 32-bit keys, 3 passes of 11 bits:
// a few times faster than std::sort on the 10^5-row columns binning sees.
void radix_sort(std::vector<float>& v) {
  const size_t n = v.size();
  if (n < 512) { std::sort(v.begin(), v.end()); return; }
  std::vector<uint32_t> a(n), b(n);
  for (size_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, &v[i], 4);
    a[i] = (u >> 31) ? ~u : (u | 0x80000000u);  // negatives reversed, positives above them
  }
  for (int shift = 0; shift < 32; shift += 11) {
    uint32_t count[2048] = {0};
    for (uint32_t k : a) ++count[(k >> shift) & 2047];
    uint32_t sum = 0;
    for (auto& c : count) { uint32_t t = c; c = sum; sum += t; }
    for (uint32_t k : a) b[count[(k >> shift) & 2047]++] = k;
    a.swap(b);
  }
  for (size_t i = 0; i < n; ++i) {
    uint32_t k = a[i], u = (k >> 31) ? (k & 0x7fffffffu) : ~k;
    std::memcpy(&v[i], &u, 4);
  }
}

void feature_edges(std::vector<float>& v, int value_bins, float* edges, int32_t* n_edges) {
  radix_sort(v);
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
  // Gather the sample column by column in blocks of features, reading X row-major (one pass
  // per block, so large X is streamed, never walked with a stride of d floats per value).
  constexpr int64_t kFeatBlock = 16;
  for (int64_t f0 = 0; f0 < d; f0 += kFeatBlock) {
    const int64_t f1 = std::min<int64_t>(d, f0 + kFeatBlock);
    std::vector<std::vector<float>> cols(f1 - f0);
    for (auto& c : cols) c.reserve(rows.size());
    for (int64_t r : rows) {
      const float* x = X + r * d;
      for (int64_t f = f0; f < f1; ++f)
        if (!std::isnan(x[f])) cols[f - f0].push_back(x[f]);
    }
    parallel_for(f1 - f0, 1, [&](int64_t a, int64_t b) {
      for (int64_t j = a; j < b; ++j) feature_edges(cols[j], value_bins, edges + (f0 + j) * 256, n_edges + f0 + j);
    });
  }
}

void bin_codes(const float* X, int64_t n, int d, const float* edges, const int32_t* /*n_edges: edges are +inf-padded*/,
               uint8_t* codes) {
  parallel_for(n, 4096, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = X + r * d;
      uint8_t* c = codes + r * d;
      for (int f = 0; f < d; ++f) {
        if (std::isnan(x[f])) { c[f] = kNanBin; continue; }
        // branchless search in the +inf-padded 256 cut points: code = #cuts < x
        const float* e = edges + static_cast<int64_t>(f) * 256;
        const float v = x[f];
        int i = 0;
        for (int step = 128; step >= 1; step >>= 1) i += (e[i + step - 1] < v) ? step : 0;
        c[f] = static_cast<uint8_t>(i);
      }
    }
  });
}

}  // namespace forgeml::tree
