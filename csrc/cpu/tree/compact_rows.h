// Prediction for a few rows straight from a CompactForest's arrays as they are stored (e.g. mapped
// from a compact forest file) before anything has validated them, so that the first predict
// after loading costs what its walks cost, not a pass over the whole forest. Every step checks
// the node it reads (feature < n_features; right child ahead of the node's successor, inside its
// tree): a walk only moves forward inside its tree, and a damaged array throws
// std::invalid_argument naming the entry instead of reading outside it or looping.
#pragma once
#include <cstdint>
#include <vector>

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
  // Optional top blocks (null: none): per tree, its first top_levels levels (3, 6 or 9) stored
  // breadth-first in groups of three levels, one 64-byte line a group (layout below), so a walk's
  // first steps read a few lines of one small block instead of lines scattered over the tree.
  const int32_t* top = nullptr;
  int top_levels = 0;
  // true: a leaf's feature word in nodes holds its row of values (the source lookup is skipped).
  bool leaf_rows = false;
};

// Top block of one tree, top_words(L) int32 words (L = top_levels, a multiple of 3):
//   groups of 16 words, numbered as an 8-ary tree (group g's children: 8g + 1 .. 8g + 8), each
//   holding a 3-level subtree breadth-first: node j (0..6, children 2j + 1 and 2j + 2; 7..14 are
//   the exits to the next group level) as {word, threshold float32 bits}, then 2 unused words;
//   word = feature | nan_left << 30 for a split, -1 - (its row of values) for a leaf (nothing
//   below a leaf is read);
//   then 2^L words: per node at depth L (in order, left first), its index from the tree's root in
//   nodes, where the walk goes on.
constexpr int64_t top_words(int levels) {
  int64_t groups = 0, level = 1;
  for (int s = 0; s < levels; s += 3) groups += level, level *= 8;
  return 16 * groups + (int64_t{1} << levels);
}

// The top blocks of a validated layout (leaves point at themselves; source maps nodes to rows of
// values): n_trees * top_words(levels) words.
std::vector<int32_t> compact_top_blocks(const CompactArrays& f, int levels);

// Checks what a walk relies on that no step can check: the roots start at 0 and increase, every
// tree has under 2^31 nodes, top_levels is 0, 3, 6 or 9 (O(n_trees)). std::invalid_argument
// naming the first bad root. (The top blocks' length is the caller's to check.)
void check_compact_arrays(const CompactArrays& f);

// out (n, k) = mean over all trees of the leaf values each row of X (n, n_features) reaches, on
// the calling thread. Walks several trees at once per row (independent chains of loads: on a cold
// cache their misses overlap) and adds each row's trees in tree order, so the result equals
// compact_predict's bit for bit. f must have passed check_compact_arrays.
void compact_predict_rows(const CompactArrays& f, const float* X, int64_t n, double* out);

}  // namespace forgeml::tree
