// Checked lockstep walk of a CompactForest's stored arrays (contract in compact_rows.h).
#include "cpu/tree/compact_rows.h"

#include <algorithm>
#include <cmath>
#include <cstring>
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
  FORGEML_CHECK_ARG(f.top_levels == 0 || (f.top && (f.top_levels == 3 || f.top_levels == 6 || f.top_levels == 9)),
                    "top: expected 3, 6 or 9 levels, got ", f.top_levels);
}

namespace {

// Fills tree block blk from node `at` (from the tree's root), which sits at node j of group g,
// s levels down (see top_words).
void fill_top(const CompactArrays& f, int64_t base, int levels, int32_t* blk, int64_t g, int j, int s, int32_t at) {
  const CompactNode nd = f.nodes[base + at];
  int32_t* e = blk + 16 * g + 2 * j;
  if (nd.right == at) {  // a leaf: its row of values
    e[0] = -1 - f.source[base + at];
    return;
  }
  e[0] = nd.feature;
  std::memcpy(e + 1, &nd.threshold, 4);
  const int64_t frontier = top_words(levels) - (int64_t{1} << levels);
  int64_t last = 0, level = 1;  // first group of the last group level
  for (int l = 3; l < levels; l += 3) last += level, level *= 8;
  for (int r = 0; r < 2; ++r) {
    const int32_t child = r ? nd.right : at + 1;
    const int c = 2 * j + 1 + r;
    if (c < 7) {
      fill_top(f, base, levels, blk, g, c, s + 1, child);
    } else if (s + 1 < levels) {
      fill_top(f, base, levels, blk, 8 * g + 1 + (c - 7), 0, s + 1, child);
    } else {
      blk[frontier + (g - last) * 8 + (c - 7)] = child;
    }
  }
}

}  // namespace

std::vector<int32_t> compact_top_blocks(const CompactArrays& f, int levels) {
  const int64_t B = top_words(levels);
  std::vector<int32_t> top(f.n_trees * B, 0);
  for (int64_t t = 0; t < f.n_trees; ++t) fill_top(f, f.roots[t], levels, top.data() + t * B, 0, 0, 0, 0);
  return top;
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

[[noreturn]] void bad_top(int64_t tree, int32_t word) {
  throw std::invalid_argument(concat("top: tree ", tree, "'s top block splits on feature ", word & 0x3fffffff,
                                     " or continues at node ", word, " outside the tree"));
}

constexpr int kTopChunk = 64;  // trees whose top blocks are walked in lockstep (their misses overlap)

// The top blocks of trees [t0, t1): start[t] = the node (from the tree's root) where tree t's
// walk goes on, or -1 - its row of values when it ended at a leaf inside the block.
void walk_tops(const CompactArrays& f, const float* x, int64_t t0, int64_t t1, int64_t* start) {
  const int L = f.top_levels;
  const int64_t B = top_words(L), frontier = B - (int64_t{1} << L);
  int32_t g[kTopChunk], j[kTopChunk];
  const int n = static_cast<int>(t1 - t0);
  for (int i = 0; i < n; ++i) {
    g[i] = 0, j[i] = 0, start[t0 + i] = 0;
    __builtin_prefetch(f.top + (t0 + i) * B);
  }
  int64_t first = 0, level = 1;  // the first group of the current group level
  for (int s = 0; s < L; ++s) {
    const bool exits = s % 3 == 2, last = s + 1 == L;
    for (int i = 0; i < n; ++i) {
      if (start[t0 + i] < 0) continue;  // ended at a leaf
      const int32_t* blk = f.top + (t0 + i) * B;
      const int32_t* e = blk + 16 * g[i] + 2 * j[i];
      const int32_t word = e[0];
      if (word < 0) {
        start[t0 + i] = word;  // -1 - row
        continue;
      }
      const int32_t feat = word & 0x3fffffff;
      if (feat >= f.n_features) bad_top(t0 + i, word);
      float thr;
      std::memcpy(&thr, e + 1, 4);
      const float v = x[feat];
      const bool left = (v <= thr) | (std::isnan(v) & ((word >> 30) & 1));
      const int c = 2 * j[i] + 2 - left;
      if (!exits) {
        j[i] = c;
      } else if (!last) {
        g[i] = 8 * g[i] + 1 + (c - 7), j[i] = 0;
        __builtin_prefetch(blk + 16 * g[i]);
      } else {
        j[i] = static_cast<int32_t>((g[i] - first) * 8 + (c - 7));
        __builtin_prefetch(blk + frontier + j[i]);
      }
    }
    if (exits && !last) first += level, level *= 8;
  }
  for (int i = 0; i < n; ++i) {
    if (start[t0 + i] < 0) continue;
    const int64_t t = t0 + i, size = (t + 1 < f.n_trees ? f.roots[t + 1] : f.n_nodes) - f.roots[t];
    const int32_t at = f.top[t * B + frontier + j[i]];
    if (at < 0 || at >= size) bad_top(t, at);
    start[t] = at;
    __builtin_prefetch(f.nodes + f.roots[t] + at);
  }
}

// leaf[t] = where x's walk of tree t ends, for every tree: the node (from node 0), or -1 - its row
// of values when that is known without the source array. start: see walk_tops (null: every walk
// starts at its root). kTop: start is not null; kRows: f.leaf_rows (template arguments so that a
// forest without them walks the loop it walked before them: 12% slower warm otherwise).
template <bool kTop, bool kRows>
void walk_row(const CompactArrays& f, const float* x, const int64_t* start, int64_t* leaf) {
  const int64_t T = f.n_trees, d = f.n_features;
  int64_t base[kSlots], size[kSlots], tree[kSlots];
  int32_t at[kSlots];
  int64_t next = 0;
  auto skip = [&] {  // past the trees whose walk ended in their top block
    if constexpr (kTop)
      for (; next < T && start[next] < 0; ++next) leaf[next] = start[next];
  };
  auto take = [&](int l) {  // slot l starts the next tree (one is left: next < T after skip())
    tree[l] = next;
    base[l] = f.roots[next];
    size[l] = (next + 1 < T ? f.roots[next + 1] : f.n_nodes) - base[l];
    at[l] = kTop ? static_cast<int32_t>(start[next]) : 0;
    __builtin_prefetch(f.nodes + base[l] + at[l]);
    ++next;
    skip();
  };
  int active = 0;
  skip();
  while (active < kSlots && next < T) take(active++);
  while (active > 0) {
    for (int l = 0; l < active;) {
      const CompactNode nd = f.nodes[base[l] + at[l]];
      if (nd.right == at[l]) {  // a leaf points at itself
        if constexpr (kRows) {
          if (nd.feature < 0) bad_node(f, tree[l], at[l], nd);
          leaf[tree[l]] = -1 - int64_t{nd.feature};
          __builtin_prefetch(f.values + int64_t{nd.feature} * f.k);
        } else {
          leaf[tree[l]] = base[l] + at[l];
          __builtin_prefetch(f.source + base[l] + at[l]);
        }
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
      // every step moves forward inside the tree: it ends. A select by mask (compact.cpp's step)
      at[l] = nd.right + ((at[l] + 1 - nd.right) & -static_cast<int32_t>(left));
      __builtin_prefetch(f.nodes + base[l] + at[l]);
      ++l;
    }
  }
}

template <bool kTop, bool kRows>
void predict_rows(const CompactArrays& f, const float* X, int64_t n, int64_t* leaf, int64_t* start, double* out) {
  const int64_t T = f.n_trees, d = f.n_features;
  const int k = f.k;
  for (int64_t r = 0; r < n; ++r) {
    const float* x = X + r * d;
    if constexpr (kTop)
      for (int64_t t = 0; t < T; t += kTopChunk) walk_tops(f, x, t, std::min(T, t + kTopChunk), start);
    walk_row<kTop, kRows>(f, x, start, leaf);
    for (int64_t t = 0; t < T; ++t) {  // each leaf's row of values, fetched before the adds
      const int64_t src = (kTop || kRows) && leaf[t] < 0 ? -1 - leaf[t] : f.source[leaf[t]];
      FORGEML_CHECK_ARG(src >= 0 && src < f.n_values, "source: tree ", t, " ends at a leaf whose row of values ", src,
                        " is outside [0, ", f.n_values, ")");
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

}  // namespace

void compact_predict_rows(const CompactArrays& f, const float* X, int64_t n, double* out) {
  const int64_t T = f.n_trees;
  int64_t small[2 * 256];
  std::vector<int64_t> big(T > 256 ? 2 * T : 0);
  int64_t* leaf = T > 256 ? big.data() : small;
  int64_t* start = leaf + T;  // (walk_tops' starts, with top blocks)
  if (f.top_levels && f.leaf_rows) {
    predict_rows<true, true>(f, X, n, leaf, start, out);
  } else if (f.top_levels) {
    predict_rows<true, false>(f, X, n, leaf, start, out);
  } else if (f.leaf_rows) {
    predict_rows<false, true>(f, X, n, leaf, start, out);
  } else {
    predict_rows<false, false>(f, X, n, leaf, start, out);
  }
}

}  // namespace forgeml::tree
