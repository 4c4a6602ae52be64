// Prediction over raw float32 rows with the flat node array of a whole forest (contract in
// tree.h). Parallel over rows; each row visits the trees in order, so sums are identical
// whatever the thread count.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "forgeml/parallel.h"
#include "cpu/tree/tree.h"

namespace forgeml::tree {

namespace {

inline int64_t leaf_of(const float* x, const int32_t* nodes, int64_t node) {
  for (;;) {
    const int32_t* nd = nodes + node * 4;
    int32_t f = nd[0];
    if (f < 0) return node;
    float v = x[f & 0x3fffffff], thr;
    std::memcpy(&thr, nd + 1, sizeof(float));
    bool left = std::isnan(v) ? ((f >> 30) & 1) : v <= thr;
    node = left ? nd[2] : nd[3];
  }
}

}  // namespace

void forest_predict(const float* X, int64_t n, int d, const int32_t* nodes, const double* values, int k,
                    const int64_t* roots, int n_trees, double* out, int threads) {
  constexpr int64_t kBlock = 512;  // rows per block: a tree's nodes stay in cache across them
  parallel_for(n, 256, [&](int64_t r0, int64_t r1) {
    std::fill(out + r0 * k, out + r1 * k, 0.0);
    for (int64_t b0 = r0; b0 < r1; b0 += kBlock) {
      int64_t b1 = std::min(r1, b0 + kBlock);
      for (int t = 0; t < n_trees; ++t)
        for (int64_t r = b0; r < b1; ++r) {
          const double* v = values + leaf_of(X + r * d, nodes, roots[t]) * k;
          double* o = out + r * k;
          for (int j = 0; j < k; ++j) o[j] += v[j];
        }
    }
    if (n_trees > 1)
      for (int64_t i = r0 * k; i < r1 * k; ++i) out[i] /= n_trees;
  }, threads);
}

void forest_apply(const float* X, int64_t n, int d, const int32_t* nodes, const int64_t* roots,
                  int n_trees, int64_t* out, int threads) {
  parallel_for(n, 256, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int t = 0; t < n_trees; ++t)
        out[r * n_trees + t] = leaf_of(X + r * d, nodes, roots[t]) - roots[t];
  }, threads);
}

}  // namespace forgeml::tree
