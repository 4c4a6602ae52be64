// Checked lockstep walk of a CompactForest's stored arrays (contract in compact_rows.h).
#include "cpu/tree/compact_rows.h"

#include <algorithm>
#include <cmath>

#include "forgeml/check.h"

namespace forgeml::tree {

void check_compact_arrays(const CompactArrays& f) {
  FORGEML_CHECK_ARG(f.n_trees >= 1 && f.roots[0] == 0, "roots: expected at least one tree, the first at node 0");
  for (int64_t t = 0; t < f.n_trees; ++t) {
    const int64_t a = f.roots[t], b = t + 1 < f.n_trees ? f.roots[t + 1] : f.n_nodes;
    FORGEML_CHECK_ARG(a < b && b <= f.n_nodes && b - a < (int64_t{1} << 31), "roots: tree ", t, " spans nodes [", a,
                      ", ", b, ") of ", f.n_nodes);
  }
}

namespace {

constexpr int kLanes = 16;  // trees walked at once per row: enough loads in flight to cover a miss

[[noreturn]] void bad_node(const CompactArrays& f, int64_t tree, int64_t at, const CompactNode& nd) {
  throw std::invalid_argument(concat("nodes: node ", at, " of tree ", tree, " splits on feature ",
                                     nd.feature & 0x3fffffff, " (of ", f.n_features, ") with its right child at ",
                                     nd.right, "; the right child must lie after the next node, inside the tree"));
}

}  // namespace

void compact_predict_rows(const CompactArrays& f, const float* X, int64_t n, double* out) {
  const int64_t T = f.n_trees, d = f.n_features;
  const int k = f.k;
  for (int64_t r = 0; r < n; ++r) {
    const float* x = X + r * d;
    double* o = out + r * k;
    std::fill(o, o + k, 0.0);
    for (int64_t t0 = 0; t0 < T; t0 += kLanes) {
      const int lanes = static_cast<int>(std::min<int64_t>(kLanes, T - t0));
      int64_t base[kLanes], size[kLanes], at[kLanes];
      for (int l = 0; l < lanes; ++l) {
        base[l] = f.roots[t0 + l];
        size[l] = (t0 + l + 1 < T ? f.roots[t0 + l + 1] : f.n_nodes) - base[l];
        at[l] = 0;
      }
      for (bool moved = true; moved;) {  // every step moves a lane forward: at most size steps
        moved = false;
        for (int l = 0; l < lanes; ++l) {
          const CompactNode nd = f.nodes[base[l] + at[l]];
          if (nd.right == at[l]) continue;  // a leaf points at itself
          const int32_t feat = nd.feature & 0x3fffffff;
          if (nd.feature < 0 || feat >= d || nd.right <= at[l] + 1 || nd.right >= size[l])
            bad_node(f, t0 + l, at[l], nd);
          const float v = x[feat];
          const bool left = (v <= nd.threshold) | (std::isnan(v) & ((nd.feature >> 30) & 1));
          at[l] = left ? at[l] + 1 : nd.right;
          moved = true;
        }
      }
      for (int l = 0; l < lanes; ++l) {  // tree order, as compact_predict adds them
        const int64_t src = f.source[base[l] + at[l]];
        FORGEML_CHECK_ARG(src >= 0 && src < f.n_values, "source: entry ", base[l] + at[l], " = ", src,
                          " is outside [0, ", f.n_values, ")");
        const double* v = f.values + src * k;
        for (int j = 0; j < k; ++j) o[j] += v[j];
      }
    }
    if (T > 1)
      for (int j = 0; j < k; ++j) o[j] /= static_cast<double>(T);
  }
}

}  // namespace forgeml::tree
