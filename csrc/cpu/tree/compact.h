// A forest re-laid out for prediction (built once per fitted or loaded forest, from the flat node
// array of tree.h). Each tree's nodes are stored depth-first, so the left child sits right after
// its parent and a walk is a run of mostly forward reads; a leaf points at itself and compares
// false against every x, so a walk can take a fixed number of steps with no branch per node, and
// several rows walk one tree in lockstep (independent load chains in flight at once).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "cpu/tree/compact_coded.h"

namespace forgeml::tree {

struct CompactNode {
  int32_t feature;  // split feature | nan_left << 30 (a leaf: 0)
  float threshold;  // x <= threshold goes left to the next node (a leaf: NaN, nothing goes left)
  int32_t right;    // index of the right child from the tree's root (a leaf: itself)
};

struct CompactForest {
  std::vector<CompactNode> nodes;
  std::vector<int32_t> source;  // per compact node: its index in the flat array (row of values)
  std::vector<int64_t> roots;   // per tree: its root in nodes
  std::vector<int32_t> depth;   // per tree: the longest root-to-leaf path (steps)
  int64_t n_source_nodes = 0;
  int64_t n_features = 0;
  // The coded layout (compact_coded.h) for the AVX-512 walk, built on its first call.
  const CodedForest& coded() const;
  bool coded_built() const { return coded_slot->built; }
  std::shared_ptr<CodedSlot> coded_slot = std::make_shared<CodedSlot>();
};

// Validates the flat forest (std::invalid_argument naming the first bad entry: a root, feature or
// child out of range, a child not after its parent, a node reached twice) and lays it out.
CompactForest compact_forest(const int32_t* nodes, int64_t n_nodes, const int64_t* roots, int64_t n_trees,
                             int64_t n_features);

// The layout from its own arrays (a saved file): nodes (m), source (m), roots (T, the first
// node of each tree; tree t spans up to the next root). Validated in one pass without trusting
// anything: every right child lies after its node inside its tree, every left child (the next
// node) too, features < n_features, sources < n_source_nodes; leaves are normalised and the
// depths recomputed. Throws std::invalid_argument naming the first bad entry.
CompactForest compact_forest_from_arrays(const CompactNode* nodes, int64_t m, const int32_t* source,
                                         const int64_t* roots, int64_t n_trees, int64_t n_source_nodes,
                                         int64_t n_features);

// out (n, k) = mean over trees[0..n_sel) (all trees when trees is null) of the leaf values
// (values: (n_source_nodes, k)) each row of X (n, n_features) reaches. Each row adds its trees in
// order into a float64 sum, so the result equals forest_predict's bit for bit, at any thread count.
void compact_predict(const CompactForest& f, const float* X, int64_t n, const double* values, int k,
                     const int64_t* trees, int64_t n_sel, double* out, int threads);

}  // namespace forgeml::tree
