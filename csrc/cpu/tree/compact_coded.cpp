// The coded layout of a CompactForest and the scalar quantizer (contract in compact_coded.h).
#include "cpu/tree/compact_coded.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "cpu/tree/compact.h"

namespace forgeml::tree {
namespace {

// The number of v[0..n) (sorted) below x, without branches on the data (the thresholds of one
// feature come in no order: a branchy search mispredicts at every step).
size_t count_below(const float* v, size_t n, float x) {
  if (n == 0) return 0;
  const float* b = v;
  while (n > 1) {
    const size_t half = n / 2;
    b = b[half] < x ? b + half : b;
    n -= half;
  }
  return static_cast<size_t>(b - v) + (*b < x);
}

}  // namespace

CodedForest code_forest(const CompactForest& f) {
  CodedForest c;
  const int64_t d = f.n_features, m = static_cast<int64_t>(f.nodes.size()), T = static_cast<int64_t>(f.roots.size());
  if (d < 1 || d > 0x7fff) return c;
  // Each feature's unique thresholds: kept sorted by insertion while there are few (forgeml's are
  // bin edges: <= 255 a feature), else gathered and sorted once.
  std::vector<std::vector<float>> cuts(d);
  std::vector<uint8_t> many(d, 0);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t a = f.roots[t], b = t + 1 < T ? f.roots[t + 1] : m;
    for (int64_t i = a; i < b; ++i) {
      const CompactNode& nd = f.nodes[i];
      if (nd.right == i - a || std::isnan(nd.threshold)) continue;
      const int64_t feat = nd.feature & 0x3fffffff;
      auto& v = cuts[feat];
      if (many[feat]) {
        v.push_back(nd.threshold);
        continue;
      }
      const size_t at = count_below(v.data(), v.size(), nd.threshold);
      if (at < v.size() && v[at] == nd.threshold) continue;  // == merges -0 and +0: both compare alike
      v.insert(v.begin() + at, nd.threshold);
      many[feat] = v.size() > 256;
    }
  }
  size_t most = 0;
  for (int64_t j = 0; j < d; ++j) {
    auto& v = cuts[j];
    if (many[j]) {
      std::sort(v.begin(), v.end());
      v.erase(std::unique(v.begin(), v.end()), v.end());
    }
    most = std::max(most, v.size());
  }
  if (most > 32766) return c;
  c.code_bytes = most <= 254 ? 1 : 2;
  c.nan_code = c.code_bytes == 1 ? 0xff : 0xffff;
  while ((size_t{1} << c.search_steps) < most + 1) ++c.search_steps;  // the last entry is always +inf
  const int64_t P = int64_t{1} << c.search_steps;
  // The cut table is d rows of the longest feature's length: many features and one with many
  // thresholds would make it larger than the forest (and its int32 gather index overflow).
  if (d * P > std::max<int64_t>(int64_t{1} << 20, 2 * m)) return c;
  c.cuts.assign(d * P, std::numeric_limits<float>::infinity());
  for (int64_t j = 0; j < d; ++j) std::copy(cuts[j].begin(), cuts[j].end(), c.cuts.begin() + j * P);
  // One word per node if the fields fit: the threshold index (and -1) in 9 bits for 1-byte codes,
  // 16 for 2-byte ones, and every right child's distance from its node in what is left.
  int feature_bits = 1;
  while ((int64_t{1} << feature_bits) < d) ++feature_bits;
  const int threshold_bits = c.code_bytes == 1 ? 9 : 16, offset_bits = 31 - feature_bits - threshold_bits;
  int64_t far = 0;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = f.roots[t], a = i; i < (t + 1 < T ? f.roots[t + 1] : m); ++i)
      far = std::max(far, f.nodes[i].right - (i - a));
  const bool one_word = offset_bits > 0 && far < (int64_t{1} << offset_bits);
  if (one_word) {
    c.feature_bits = feature_bits;
    c.threshold_shift = 32 - threshold_bits;
    c.words.resize(m);
  }
  if (!one_word) c.nodes.resize(2 * m);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t a = f.roots[t], b = t + 1 < T ? f.roots[t + 1] : m;
    for (int64_t i = a; i < b; ++i) {
      const CompactNode& nd = f.nodes[i];
      uint32_t w0 = 0xffff0000u, word = ~uint32_t{0} << c.threshold_shift;  // a leaf: nothing goes left
      if (nd.right != i - a) {
        const int64_t feat = nd.feature & 0x3fffffff;
        const uint32_t nan_left = (nd.feature >> 30) & 1;
        const auto& v = cuts[feat];
        // j: the threshold's index (-1 for a NaN threshold: no number goes left). A NaN-left node
        // compares code + 1 (mod 2^bits, NaN's all-ones code becomes 0) against j + 1.
        const int32_t j =
            std::isnan(nd.threshold) ? -1 : static_cast<int32_t>(count_below(v.data(), v.size(), nd.threshold));
        const uint32_t jb = static_cast<uint32_t>(j + static_cast<int32_t>(nan_left));
        w0 = static_cast<uint32_t>(feat) | nan_left << 15 | jb << 16;
        word = static_cast<uint32_t>(feat) | nan_left << feature_bits |
               static_cast<uint32_t>(nd.right - (i - a)) << (feature_bits + 1) | jb << c.threshold_shift;
      }
      if (one_word) {
        c.words[i] = word;
      } else {
        c.nodes[2 * i] = w0;
        c.nodes[2 * i + 1] = static_cast<uint32_t>(nd.right);
      }
    }
  }
  constexpr int L = CodedForest::kTopLevels, W = CodedForest::kTopWords;
  c.top.assign(T * W, 0);
  std::vector<int32_t> level{0}, below;  // the nodes at the positions of one level
  for (int64_t t = 0; t < T; ++t) {
    const int64_t a = f.roots[t];
    int32_t* top = c.top.data() + t * W;
    level.assign(1, 0);
    for (int l = 0; l < L; ++l) {
      below.clear();
      for (size_t p = 0; p < level.size(); ++p) {
        const int32_t i = level[p];
        top[(1 << l) - 1 + p] = static_cast<int32_t>(one_word ? c.words[a + i] : c.nodes[2 * (a + i)]);
        const bool leaf = f.nodes[a + i].right == i;
        below.push_back(leaf ? i : i + 1);  // left: the next node; a leaf's children are the leaf
        below.push_back(f.nodes[a + i].right);
      }
      level.swap(below);
    }
    std::copy(level.begin(), level.end(), top + W / 2);
  }
  c.usable = true;
  return c;
}

const CodedForest& CompactForest::coded() const {
  std::call_once(coded_slot->once, [this] {
    coded_slot->value = code_forest(*this);
    coded_slot->built = true;
  });
  return coded_slot->value;
}

}  // namespace forgeml::tree
