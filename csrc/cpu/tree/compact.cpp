// Layout and lockstep walk of CompactForest (contract in compact.h).
#include "cpu/tree/compact.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "cpu/tree/kernels.h"
#include "forgeml/check.h"
#include "forgeml/parallel.h"

namespace forgeml::tree {

CompactForest compact_forest(const int32_t* nodes, int64_t n_nodes, const int64_t* roots, int64_t n_trees,
                             int64_t n_features) {
  FORGEML_CHECK_ARG(n_nodes < (int64_t{1} << 31) - 1, "nodes: at most 2^31 - 2 nodes, got ", n_nodes);
  CompactForest f;
  f.n_source_nodes = n_nodes;
  f.n_features = n_features;
  f.nodes.reserve(n_nodes);
  f.source.reserve(n_nodes);
  std::vector<uint8_t> seen(n_nodes, 0);
  struct Item {
    int64_t node;
    int64_t patch;  // node (from the root) whose right child this is (-1: none)
    int32_t depth;
  };
  std::vector<Item> stack;
  for (int64_t t = 0; t < n_trees; ++t) {
    FORGEML_CHECK_ARG(roots[t] >= 0 && roots[t] < n_nodes, "roots: entry ", t, " = ", roots[t], " is outside [0, ",
                      n_nodes, ")");
    const int64_t base = static_cast<int64_t>(f.nodes.size());  // child indices are relative to the root
    f.roots.push_back(base);
    int32_t depth = 0;
    stack.push_back({roots[t], -1, 0});
    while (!stack.empty()) {
      Item it = stack.back();
      stack.pop_back();
      FORGEML_CHECK_ARG(!seen[it.node], "nodes: node ", it.node, " is reached twice (from two parents or two roots)");
      seen[it.node] = 1;
      const int32_t pos = static_cast<int32_t>(static_cast<int64_t>(f.nodes.size()) - base);
      if (it.patch >= 0) f.nodes[base + it.patch].right = pos;
      depth = std::max(depth, it.depth);
      const int32_t* nd = nodes + it.node * 4;
      f.source.push_back(static_cast<int32_t>(it.node));
      if (nd[0] < 0) {
        f.nodes.push_back({0, std::numeric_limits<float>::quiet_NaN(), pos});
        continue;
      }
      const int64_t feat = nd[0] & 0x3fffffff;
      FORGEML_CHECK_ARG(feat < n_features, "nodes: node ", it.node, " splits on feature ", feat, " but X has ",
                        n_features, " features");
      FORGEML_CHECK_ARG(nd[2] > it.node && nd[2] < n_nodes && nd[3] > it.node && nd[3] < n_nodes, "nodes: node ",
                        it.node, " has children (", nd[2], ", ", nd[3], "); they must lie after it, in (", it.node,
                        ", ", n_nodes, ")");
      float thr;
      std::memcpy(&thr, nd + 1, sizeof thr);
      f.nodes.push_back({nd[0], thr, -1});
      stack.push_back({nd[3], pos, it.depth + 1});
      stack.push_back({nd[2], -1, it.depth + 1});
    }
    f.depth.push_back(depth);
  }
  return f;
}

CompactForest compact_forest_from_arrays(const CompactNode* nodes, int64_t m, const int32_t* source,
                                         const int64_t* roots, int64_t n_trees, int64_t n_source_nodes,
                                         int64_t n_features) {
  FORGEML_CHECK_ARG(n_trees >= 1 && roots[0] == 0, "roots: expected at least one tree, the first at node 0");
  CompactForest f;
  f.n_source_nodes = n_source_nodes;
  f.n_features = n_features;
  f.nodes.assign(nodes, nodes + m);
  f.source.assign(source, source + m);
  f.roots.assign(roots, roots + n_trees);
  std::vector<int32_t> depth(m, 0);
  for (int64_t t = 0; t < n_trees; ++t) {
    const int64_t a = roots[t], b = t + 1 < n_trees ? roots[t + 1] : m;
    FORGEML_CHECK_ARG(a < b && b <= m, "roots: tree ", t, " spans nodes [", a, ", ", b, ") of ", m);
    FORGEML_CHECK_ARG(b - a < (int64_t{1} << 31), "roots: tree ", t, " has over 2^31 nodes");
    int32_t deepest = 0;
    for (int64_t i = a; i < b; ++i) {
      CompactNode& nd = f.nodes[i];
      const int64_t j = i - a;
      FORGEML_CHECK_ARG(f.source[i] >= 0 && f.source[i] < n_source_nodes, "source: entry ", i, " = ", f.source[i],
                        " is outside [0, ", n_source_nodes, ")");
      deepest = std::max(deepest, depth[i]);
      if (nd.right == j) {  // a leaf
        nd = {0, std::numeric_limits<float>::quiet_NaN(), nd.right};
        continue;
      }
      FORGEML_CHECK_ARG(nd.feature >= 0 && (nd.feature & 0x3fffffff) < n_features, "nodes: node ", i,
                        " splits on feature ", nd.feature & 0x3fffffff, " of ", n_features);
      FORGEML_CHECK_ARG(nd.right > j + 1 && nd.right < b - a, "nodes: node ", i, " has its right child at ", nd.right,
                        "; it must lie in (", j + 1, ", ", b - a, ")");
      depth[i + 1] = std::max(depth[i + 1], depth[i] + 1);
      depth[a + nd.right] = std::max(depth[a + nd.right], depth[i] + 1);
    }
    f.depth.push_back(deepest);
  }
  return f;
}

namespace {

inline int32_t step(const CompactNode* nodes, int32_t i, const float* x) {
  const CompactNode nd = nodes[i];
  const float v = x[nd.feature & 0x3fffffff];
  const bool left = (v <= nd.threshold) | (std::isnan(v) & ((nd.feature >> 30) & 1));
  // A select by mask, not `left ? i + 1 : right`: compilers made that a branch, mispredicted on
  // half the steps (9.3 vs 3.2 ns a step on an AVX2 EPYC, 1 thread).
  return nd.right + ((i + 1 - nd.right) & -static_cast<int32_t>(left));
}

// Walks rows [r0, r1) through one tree (root, depth steps) in groups of kLanes rows in lockstep
// and adds the leaf values to their output rows.
template <int kLanes>
void walk_block(const CompactForest& f, const float* X, int64_t d, int64_t r0, int64_t r1, int64_t root, int depth,
                const double* values, int k, double* out) {
  const CompactNode* nodes = f.nodes.data() + root;
  const int32_t* source = f.source.data() + root;
  int64_t r = r0;
  for (; r + kLanes <= r1; r += kLanes) {
    int32_t at[kLanes] = {};
    for (int s = 0; s < depth; ++s) {  // until every lane sits on its leaf (a leaf maps to itself)
      bool moved = false;
      for (int l = 0; l < kLanes; ++l) {
        const int32_t next = step(nodes, at[l], X + (r + l) * d);
        moved |= next != at[l];
        at[l] = next;
      }
      if (!moved) break;
    }
    for (int l = 0; l < kLanes; ++l) {
      const double* v = values + static_cast<int64_t>(source[at[l]]) * k;
      double* o = out + (r + l) * k;
      for (int j = 0; j < k; ++j) o[j] += v[j];
    }
  }
  for (; r < r1; ++r) {  // the last < kLanes rows: one at a time, stopping at the leaf
    const float* x = X + r * d;
    int32_t i = 0;
    while (nodes[i].right != i) i = step(nodes, i, x);
    const double* v = values + static_cast<int64_t>(source[i]) * k;
    double* o = out + r * k;
    for (int j = 0; j < k; ++j) o[j] += v[j];
  }
}

void accumulate_portable(const CompactForest& f, const float* X, int64_t r0, int64_t r1, const double* values, int k,
                         const int64_t* trees, int64_t T, double* out) {
  const int64_t d = f.n_features;
  // Rows per block: each tree's nodes are read once per block, so a block is large (4 MiB of X,
  // streamed from L3 while a tree's nodes stay in L2). 128-row blocks re-read every tree from DRAM
  // each 128 rows: 1.4 us a row and tree on the bench forest (50 MB of nodes), 40x the AVX-512 walk.
  const int64_t block = std::max<int64_t>(128, (int64_t{4} << 20) / (4 * std::max<int64_t>(d, 1)));
  for (int64_t b0 = r0; b0 < r1; b0 += block) {
    const int64_t b1 = std::min(r1, b0 + block);
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = trees ? trees[s] : s;
      walk_block<8>(f, X, d, b0, b1, f.roots[t], f.depth[t], values, k, out);
    }
  }
}

}  // namespace

void compact_kernels_portable(CompactKernels& k) { k = {accumulate_portable, "portable"}; }

void compact_predict(const CompactForest& f, const float* X, int64_t n, const double* values, int k,
                     const int64_t* trees, int64_t n_sel, double* out, int threads) {
  const int64_t T = trees ? n_sel : static_cast<int64_t>(f.roots.size());
  const CompactKernels& kern = compact_kernels();
  // A forest larger than a core's L2 is read again by every chunk of rows (its trees pass over each
  // chunk in turn): then each thread takes one chunk, not four (AVX-512 walk: 1.6x on a 17 MB
  // forest, tree_predict_profile.md round 3; the portable walk's row blocks likewise).
  const int nt = threads > 0 ? std::min(threads, num_threads()) : num_threads();
  const int64_t grain =
      f.nodes.size() * sizeof(CompactNode) > (size_t{1} << 20) ? std::max<int64_t>(256, n / std::max(nt, 1)) : 256;
  parallel_for(
      n, grain,
      [&](int64_t r0, int64_t r1) {
        std::fill(out + r0 * k, out + r1 * k, 0.0);
        kern.accumulate(f, X, r0, r1, values, k, trees, T, out);
        if (T > 1)
          for (int64_t i = r0 * k; i < r1 * k; ++i) out[i] /= static_cast<double>(T);
      },
      threads);
}

}  // namespace forgeml::tree
