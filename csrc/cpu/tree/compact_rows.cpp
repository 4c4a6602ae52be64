// Checked lockstep walk of a CompactForest's stored arrays (contract in compact_rows.h).
#include "cpu/tree/compact_rows.h"

#include <algorithm>
#include <cmath>
#include <vector>

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

// Trees walked at once per row. Each slot walks one tree; a slot whose tree reached its leaf takes
// the next tree at once, so every slot stays busy until the last trees (a lockstep group of trees
// runs to its deepest one: ~60% of its steps useful at depth ~15 of ~25). The next node of every
// slot is prefetched as soon as it is known, so on a cold cache the slots' misses overlap instead
// of each waiting behind the loads of the slots before it.
constexpr int kSlots = 32;

[[noreturn]] void bad_node(const CompactArrays& f, int64_t tree, int64_t at, const CompactNode& nd) {
  throw std::invalid_argument(concat("nodes: node ", at, " of tree ", tree, " splits on feature ",
                                     nd.feature & 0x3fffffff, " (of ", f.n_features, ") with its right child at ",
                                     nd.right, "; the right child must lie after the next node, inside the tree"));
}

// leaf[t] = the node (from node 0) where x's walk of tree t ends, for every tree.
void walk_row(const CompactArrays& f, const float* x, int64_t* leaf) {
  const int64_t T = f.n_trees, d = f.n_features;
  int64_t base[kSlots], size[kSlots], tree[kSlots];
  int32_t at[kSlots];
  int64_t next = 0;
  auto take = [&](int l) {  // slot l starts the next tree at its root
    tree[l] = next;
    base[l] = f.roots[next];
    size[l] = (next + 1 < T ? f.roots[next + 1] : f.n_nodes) - base[l];
    at[l] = 0;
    __builtin_prefetch(f.nodes + base[l]);
    ++next;
  };
  int active = 0;
  while (active < kSlots && next < T) take(active++);
  while (active > 0) {
    for (int l = 0; l < active;) {
      const CompactNode nd = f.nodes[base[l] + at[l]];
      if (nd.right == at[l]) {  // a leaf points at itself
        leaf[tree[l]] = base[l] + at[l];
        __builtin_prefetch(f.source + base[l] + at[l]);
        if (next < T) {
          take(l++);
        } else {  // no tree left: the last active slot moves here (not walked yet this pass)
          --active;
          base[l] = base[active], size[l] = size[active], tree[l] = tree[active], at[l] = at[active];
        }
        continue;
      }
      const int32_t feat = nd.feature & 0x3fffffff;
      if (nd.feature < 0 || feat >= d || nd.right <= at[l] + 1 || nd.right >= size[l]) bad_node(f, tree[l], at[l], nd);
      const float v = x[feat];
      const bool left = (v <= nd.threshold) | (std::isnan(v) & ((nd.feature >> 30) & 1));
      at[l] = left ? at[l] + 1 : nd.right;  // every step moves forward inside the tree: it ends
      __builtin_prefetch(f.nodes + base[l] + at[l]);
      ++l;
    }
  }
}

}  // namespace

void compact_predict_rows(const CompactArrays& f, const float* X, int64_t n, double* out) {
  const int64_t T = f.n_trees, d = f.n_features;
  const int k = f.k;
  int64_t small[256];
  std::vector<int64_t> big(T > 256 ? T : 0);
  int64_t* leaf = T > 256 ? big.data() : small;
  for (int64_t r = 0; r < n; ++r) {
    walk_row(f, X + r * d, leaf);
    for (int64_t t = 0; t < T; ++t) {  // each leaf's row of values, fetched before the adds
      const int64_t src = f.source[leaf[t]];
      FORGEML_CHECK_ARG(src >= 0 && src < f.n_values, "source: entry ", leaf[t], " = ", src, " is outside [0, ",
                        f.n_values, ")");
      leaf[t] = src;
      __builtin_prefetch(f.values + src * k);
    }
    double* o = out + r * k;
    std::fill(o, o + k, 0.0);
    for (int64_t t = 0; t < T; ++t) {  // tree order, as compact_predict adds them
      const double* v = f.values + leaf[t] * k;
      for (int j = 0; j < k; ++j) o[j] += v[j];
    }
    if (T > 1)
      for (int j = 0; j < k; ++j) o[j] /= static_cast<double>(T);
  }
}

}  // namespace forgeml::tree
