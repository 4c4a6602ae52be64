// Quantile binning: cut points per feature from a row sample, then uint8 codes for all rows.
// Contract in tree.h. A feature with at most max_bins - 1 distinct values gets a cut between every
// pair of neighbours (so trees can separate every value); otherwise cuts follow the quantiles of
// the sample, a heavy value keeping a bin of its own.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <utility>
#include <vector>

#include "forgeml/check.h"
#include "forgeml/cpu_features.h"
#include "forgeml/parallel.h"
#include "cpu/tree/bin_code.h"
#include "cpu/tree/rng.h"
#include "cpu/tree/tree.h"

namespace forgeml::tree {

namespace {

// Cut strictly between a < b, exactly representable in float32 (so a <= cut < b).
float midpoint(float a, float b) {
  float m = static_cast<float>(0.5 * (static_cast<double>(a) + static_cast<double>(b)));
  return (m >= b || m < a) ? a : m;
}

// LSD radix sort of floats (no NaN) on their order-preserving 32-bit keys, 3 passes of 11 bits,
// the three digit histograms counted in one pass with the key transform, the last pass writing the
// floats back: a few times faster than std::sort on the 10^5-row columns binning sees.
void radix_sort(std::vector<float>& v) {
  const size_t n = v.size();
  if (n < 512) { std::sort(v.begin(), v.end()); return; }
  std::unique_ptr<uint32_t[]> scratch(new uint32_t[2 * n]);  // no zero fill: every slot is written
  uint32_t *a = scratch.get(), *b = a + n;
  std::vector<uint32_t> count(3 * 2048, 0);
  uint32_t *c0 = count.data(), *c1 = c0 + 2048, *c2 = c1 + 2048;
  for (size_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, &v[i], 4);
    const uint32_t k = (u >> 31) ? ~u : (u | 0x80000000u);  // negatives reversed, positives above them
    a[i] = k;
    ++c0[k & 2047];
    ++c1[(k >> 11) & 2047];
    ++c2[k >> 22];
  }
  for (uint32_t* c : {c0, c1, c2}) {  // counts to first positions
    uint32_t sum = 0;
    for (int j = 0; j < 2048; ++j) { const uint32_t t = c[j]; c[j] = sum; sum += t; }
  }
  for (size_t i = 0; i < n; ++i) b[c0[a[i] & 2047]++] = a[i];
  for (size_t i = 0; i < n; ++i) a[c1[(b[i] >> 11) & 2047]++] = b[i];
  for (size_t i = 0; i < n; ++i) {
    const uint32_t k = a[i], u = (k >> 31) ? (k & 0x7fffffffu) : ~k;
    std::memcpy(&v[c2[k >> 22]++], &u, 4);
  }
}

// scikit-learn's FEATURE_THRESHOLD: values closer than this to their sorted neighbour are one
// value (no threshold between them; a node holding only such values is constant). float32 sums,
// as scikit-learn compares its float32 feature values.
constexpr float kFeatureThreshold = 1e-7f;

// Cut points of one feature from its sample values v plus `zeros` implicit zeros (sparse columns:
// the zeros enter as a count, never materialised). Values within kFeatureThreshold of their
// sorted neighbour are merged into one group first; cuts fall between groups. Two scans of the
// sorted values, no per-group arrays: the first counts the groups (cutting between every pair as
// long as they fit), the second, when there are more groups than bins, cuts at the quantiles.
void feature_edges(std::vector<float>& v, int64_t zeros, int value_bins, float* edges, int32_t* n_edges) {
  radix_sort(v);
  // implicit zeros go before the explicit zeros (equal values: one group either way)
  const size_t zpos = zeros > 0 ? static_cast<size_t>(std::lower_bound(v.begin(), v.end(), 0.0f) - v.begin()) : 0;
  // The groups of the sorted sequence (the zeros in place, as one value of weight `zeros`):
  // start(g, x, prev_hi, before) at group g's first value x, prev_hi the largest value of group
  // g - 1, before the values ahead of x. Returns the last group's largest value and the total.
  auto each_group = [&](auto&& start) {
    int64_t g = 0, at = 0;
    float hi = 0;
    auto visit = [&](float x, int64_t count) {
      if (g == 0 || x > hi + kFeatureThreshold) {
        start(g++, x, hi, at);
        hi = x;
      } else {
        hi = std::max(hi, x);
      }
      at += count;
    };
    for (size_t i = 0; i < zpos; ++i) visit(v[i], 1);
    if (zeros > 0) visit(0.0f, zeros);
    for (size_t i = zpos; i < v.size(); ++i) visit(v[i], 1);
    return std::pair<float, int64_t>(hi, at);
  };
  int64_t groups = 0, zg = -1, zcount = 0, before = 0;
  float lo = 0;  // the current group's first value
  auto close = [&](float hi, int64_t at) {  // the group before: the zero group is the first spanning 0
    if (zg < 0 && lo <= 0.0f && hi >= 0.0f) {
      zg = groups - 1;
      zcount = at - before;
    }
  };
  const auto [last_hi, total] = each_group([&](int64_t g, float x, float prev_hi, int64_t at) {
    if (g > 0) {
      close(prev_hi, at);
      if (g <= value_bins) edges[g - 1] = midpoint(prev_hi, x);  // while every pair gets a cut
    }
    groups = g + 1;
    lo = x;
    before = at;
  });
  if (groups > 0) close(last_hi, total);
  int ne = 0;
  if (groups <= value_bins) {
    ne = static_cast<int>(groups > 0 ? groups - 1 : 0);
  } else {
    // Quantiles of the values outside the zero group; zero (sparse data's usual value, often most
    // of the rows) gets a bin of its own, so it does not swallow the quantiles of the others.
    const int64_t m = total - zcount;
    const int64_t buckets = zg < 0 ? value_bins : value_bins - 2;
    auto bucket = [&](int64_t g, int64_t at) { return (at - (zg >= 0 && g > zg ? zcount : 0)) * buckets / m; };
    int64_t last = 0;  // group g - 1's bucket
    each_group([&](int64_t g, float x, float prev_hi, int64_t at) {
      const int64_t b = bucket(g, at);
      if (g > 0 && ne < value_bins - 1 && (g == zg || g - 1 == zg || b != last)) edges[ne++] = midpoint(prev_hi, x);
      last = b;
    });
  }
  for (int i = ne; i < 256; ++i) edges[i] = std::numeric_limits<float>::infinity();
  *n_edges = ne;
}

// Rows with weight > 0 (all when weight is null), subsampled to at most `sample` with `seed`
// (partial Fisher-Yates), ascending.
std::vector<int64_t> sample_rows(int64_t n, const double* weight, int64_t sample, uint64_t seed) {
  std::vector<int64_t> rows;
  rows.reserve(n);
  for (int64_t i = 0; i < n; ++i)
    if (!weight || weight[i] > 0) rows.push_back(i);
  if (sample > 0 && static_cast<int64_t>(rows.size()) > sample) {
    Rng rng(seed);
    for (int64_t i = 0; i < sample; ++i)
      std::swap(rows[i], rows[i + static_cast<int64_t>(rng.below(rows.size() - i))]);
    rows.resize(sample);
    std::sort(rows.begin(), rows.end());
  }
  return rows;
}

}  // namespace

void bin_edges(const float* X, int64_t n, int d, const double* weight, int max_bins, int64_t sample,
               uint64_t seed, float* edges, int32_t* n_edges) {
  FORGEML_CHECK_ARG(max_bins >= 2 && max_bins <= kMaxValueBins, "max_bins: expected 2..255, got ", max_bins);
  const std::vector<int64_t> rows = sample_rows(n, weight, sample, seed);
  const int value_bins = max_bins - 1;  // one bin is kept for NaN
  // Each thread gathers the sample of a few features at a time, reading X row-major (one pass per
  // block, so large X is streamed, never walked with a stride of d floats per value), and cuts
  // them: the gathers run in parallel too (serial, they were most of this call's wall time).
  constexpr int64_t kFeatBlock = 16;
  parallel_for(d, 1, [&](int64_t a, int64_t b) {
    for (int64_t f0 = a; f0 < b; f0 += kFeatBlock) {
      const int64_t f1 = std::min<int64_t>(b, f0 + kFeatBlock);
      std::vector<std::vector<float>> cols(f1 - f0);
      for (auto& c : cols) c.reserve(rows.size());
      for (int64_t r : rows) {
        const float* x = X + r * d;
        for (int64_t f = f0; f < f1; ++f)
          if (!std::isnan(x[f])) cols[f - f0].push_back(x[f]);
      }
      for (int64_t j = f0; j < f1; ++j) feature_edges(cols[j - f0], 0, value_bins, edges + j * 256, n_edges + j);
    }
  });
}

void bin_codes(const float* X, int64_t n, int d, const float* edges, const int32_t* /*n_edges: edges are +inf-padded*/,
               uint8_t* codes) {
  // Blocks of rows feature by feature: one feature's 1 KB of cut points stays in L1 while the
  // block's values are searched (row by row, all d tables, 50 KB at d = 50, went to L2).
  constexpr int64_t kBlock = 64;
  // two (AVX-512) or four (AVX2) vector compares a value instead of eight dependent loads
  const auto vec = active_isa() == Isa::avx512 ? codes_avx512 : active_isa() == Isa::avx2 ? codes_avx2 : nullptr;
  parallel_for(n, 4096, [&](int64_t r0, int64_t r1) {
    for (int64_t b0 = r0; b0 < r1; b0 += kBlock) {
      const int64_t b1 = std::min(r1, b0 + kBlock);
      for (int f = 0; f < d; ++f) {
        const float* e = edges + static_cast<int64_t>(f) * 256;
        if (vec && vec(e, X + b0 * d + f, d, b1 - b0, codes + b0 * d + f)) continue;
        for (int64_t r = b0; r < b1; ++r) codes[r * d + f] = code_of(e, X[r * d + f]);
      }
    }
  });
}

// ---- sparse columns (CSC): the same cut points and codes as on the dense matrix, without it

void bin_edges_csc(const int64_t* indptr, const int32_t* indices, const float* data, int64_t n, int d,
                   const double* weight, int max_bins, int64_t sample, uint64_t seed, float* edges,
                   int32_t* n_edges) {
  FORGEML_CHECK_ARG(max_bins >= 2 && max_bins <= kMaxValueBins, "max_bins: expected 2..255, got ", max_bins);
  const std::vector<int64_t> rows = sample_rows(n, weight, sample, seed);
  std::vector<uint8_t> in_sample(n, 0);
  for (int64_t r : rows) in_sample[r] = 1;
  const int64_t m = static_cast<int64_t>(rows.size());
  parallel_for(d, 16, [&](int64_t f0, int64_t f1) {
    std::vector<float> v;
    for (int64_t f = f0; f < f1; ++f) {
      v.clear();
      int64_t stored = 0;  // sampled rows with an entry (NaN included): the others are zeros
      for (int64_t k = indptr[f]; k < indptr[f + 1]; ++k) {
        if (!in_sample[indices[k]]) continue;
        ++stored;
        if (!std::isnan(data[k])) v.push_back(data[k]);
      }
      feature_edges(v, m - stored, max_bins - 1, edges + f * 256, n_edges + f);
    }
  });
}

void bin_codes_csc(const int64_t* indptr, const int32_t* indices, const float* data, int64_t n, int d,
                   const float* edges, bool column_major, uint8_t* codes) {
  std::vector<uint8_t> zero_code(d);
  for (int f = 0; f < d; ++f) zero_code[f] = code_of(edges + static_cast<int64_t>(f) * 256, 0.0f);
  if (column_major) {  // one column at a time: fill with the zero code, then the stored entries
    parallel_for(d, 16, [&](int64_t f0, int64_t f1) {
      for (int64_t f = f0; f < f1; ++f) {
        uint8_t* col = codes + f * n;
        std::memset(col, zero_code[f], static_cast<size_t>(n));
        const float* e = edges + f * 256;
        for (int64_t k = indptr[f]; k < indptr[f + 1]; ++k) col[indices[k]] = code_of(e, data[k]);
      }
    });
    return;
  }
  parallel_for(n, 1024, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) std::memcpy(codes + r * d, zero_code.data(), d);
  });
  // Stored entries column by column (threads write distinct bytes of the row-major codes).
  parallel_for(d, 16, [&](int64_t f0, int64_t f1) {
    for (int64_t f = f0; f < f1; ++f) {
      const float* e = edges + f * 256;
      for (int64_t k = indptr[f]; k < indptr[f + 1]; ++k) codes[static_cast<int64_t>(indices[k]) * d + f] = code_of(e, data[k]);
    }
  });
}

}  // namespace forgeml::tree
