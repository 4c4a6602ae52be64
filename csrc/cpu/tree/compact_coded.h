// A second, smaller in-memory layout of a CompactForest for the AVX-512 walk, derived on first use
// (the 12-byte CompactNode stays the file format). X is quantized once per batch into exact codes
// against the forest's sorted unique thresholds of each feature: code(x) = #{thresholds < x}, so
// x <= t_j <=> code(x) <= j, and a node keeps its threshold's index j instead of the float. A node
// is then two 32-bit words, and a level of a walk gathers two node words and one code instead of
// three node words and one float. Same left/right choices as the float walk, so the same leaves
// and the same bits.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

namespace forgeml::tree {

struct CompactForest;

struct CodedForest {
  bool usable = false;       // false (walk floats): over 32766 thresholds a feature, over 32767 features,
                             // or a cut table larger than the forest
  int code_bytes = 1;        // 1 (every feature <= 254 thresholds) or 2 (<= 32766)
  uint32_t nan_code = 0xff;  // the code of NaN: all ones of code_bytes
  int search_steps = 0;      // log2 of the cut table's row length
  // Per node, 2 words: feature | nan_left << 15 | (j + nan_left) << 16 (signed; a leaf: -1 << 16,
  // nothing goes left), then the right child (from the tree's root; a leaf: itself). Empty when
  // words is used.
  std::vector<uint32_t> nodes;
  // One word per node where it fits (else empty), so a level gathers one node word and one code:
  // feature | nan_left << feature_bits | (right child - node) << (feature_bits + 1) | (j +
  // nan_left) << threshold_shift (signed; a leaf: offset 0, threshold -1).
  std::vector<uint32_t> words;
  int feature_bits = 15, threshold_shift = 16;  // the node words' fields (both layouts)
  // Per tree, its top kTopLevels levels as a complete breadth-first table (a walk's first levels
  // then permute registers instead of gathering nodes): kTopWords words, first the node words
  // (words' format if words is used, else the first word of nodes) of
  // positions 0 .. 2^kTopLevels - 2 (level l starts at 2^l - 1; below a leaf, the leaf again),
  // then one unused word, then the node (from the root) at each position of level kTopLevels.
  static constexpr int kTopLevels = 5;
  static constexpr int kTopWords = 2 << kTopLevels;
  std::vector<int32_t> top;
  // (n_features, 2^search_steps): each feature's sorted unique thresholds, padded with +inf.
  std::vector<float> cuts;
};

// Builds the coded layout of f (usable = false when it does not fit).
CodedForest code_forest(const CompactForest& f);

// The coded layout of f, built once (thread-safe) the first time a walk asks for it.
struct CodedSlot {
  std::once_flag once;
  std::atomic<bool> built{false};
  CodedForest value;
};

}  // namespace forgeml::tree
