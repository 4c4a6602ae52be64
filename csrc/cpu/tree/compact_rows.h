// Prediction for a few rows straight from a CompactForest's arrays as they are stored (e.g. mapped
// from a compact forest file) before anything has validated them, so that the first predict
// after loading costs what its walks cost, not a pass over the whole forest. Every step checks
// the node it reads (feature < n_features; right child ahead of the node's successor, inside its
// tree): a walk only moves forward inside its tree, and a damaged array throws
// std::invalid_argument naming the entry instead of reading outside it or looping.
#pragma once
#include <cstdint>

#include "cpu/tree/compact.h"

namespace forgeml::tree {

struct CompactArrays {
  const CompactNode* nodes;  // (n_nodes): the trees one after another, each depth-first
  int64_t n_nodes;
  const int32_t* source;  // (n_nodes): row of values of each node
  const int64_t* roots;   // (n_trees): first node of each tree; tree t ends at the next root
  int64_t n_trees;
  const double* values;  // (n_values, k)
  int64_t n_values;
  int k;
  int64_t n_features;
};

// Checks what a walk relies on that no step can check: the roots start at 0 and increase, and
// every tree has under 2^31 nodes (O(n_trees)). std::invalid_argument naming the first bad root.
void check_compact_arrays(const CompactArrays& f);

// out (n, k) = mean over all trees of the leaf values each row of X (n, n_features) reaches, on
// the calling thread. Walks several trees at once per row (independent chains of loads: on a cold
// cache their misses overlap) and adds each row's trees in tree order, so the result equals
// compact_predict's bit for bit. f must have passed check_compact_arrays.
void compact_predict_rows(const CompactArrays& f, const float* X, int64_t n, double* out);

}  // namespace forgeml::tree
