// Internal to csrc/cpu/tree: the split kernel on its own (best_split, tree.h) in one table per ISA
// (gemm's idiom). split.cpp fills the entries, registry.cpp picks active_isa()'s. The scan is
// scalar code whose speed comes from fixing the statistics width at compile time, not from SIMD:
// the reference entry is the generic runtime-width scan, the portable one the fixed-width scan
// growth uses (same bits, tests/test_tree.py), and AVX2 / AVX-512 take the portable entry.
// class_proxies and word_gini are the vector loops: the Gini proxies of all boundaries of one
// feature in growth's packed scan (grow.cpp), portable, AVX2 (split_avx2.cpp) and AVX-512
// (split_avx512.cpp) giving the same bits.
//
// CompactKernels: the batch walk behind compact_predict (compact.h), portable (8 scalar lanes in
// lockstep, compact.cpp), AVX2 and AVX-512 (8 / 16 rows per vector, gathers, compact_avx2.cpp /
// compact_avx512.cpp); all add the same leaf values in the same tree order: the same bits.
#pragma once
#include "cpu/tree/compact.h"
#include "cpu/tree/tree.h"
#include "forgeml/cpu_features.h"

namespace forgeml::tree {

struct ClassRow;  // hist_words.h

struct SplitKernels {
  // best_split's contract (tree.h).
  SplitResult (*best_split)(const double* hist, int d, const double* total, Criterion criterion, int n_classes,
                            double min_samples_leaf, double min_weight_leaf);
  // pr[j] (j < m) = Gini proxy of the split with left statistics (nl[j] rows, weight wl[j], class
  // weights cl[k * stride + j], k < K) and right = total - left (criterion.h's layout), or -inf
  // where either side breaks min_leaf / min_weight or has no weight. The sums must be integers
  // with total[1] < 2^26: every square and sum of squares is then exact, so any evaluation order
  // gives the bits of split.h's scan.
  void (*class_proxies)(const double* cl, int stride, const double* wl, const double* nl, int m, int K,
                        const double* total, double min_leaf, double min_weight, double* pr);
  // Word histograms (hist_words.h), binary Gini. compact_words: the nonzero words of one
  // feature's 256 bins, in bin order, to raw[0..u) and their bins to bins[0..u) (both with room
  // for 256 + 8), every bin of h set to zero; returns u. word_gini: raw[0..m) such words; boundary
  // j (j < m - 1) has raw[0..j] to its left. Returns the largest Gini proxy over the boundaries
  // (class_proxies' value, the same bits), its first boundary in *at and the left sums there in
  // *left; -inf when none is allowed.
  int (*compact_words)(uint64_t* h, uint64_t* raw, int* bins);
  double (*word_gini)(const uint64_t* raw, int m, const double* total, double min_leaf, double min_weight, int* at,
                      uint64_t* left);
  // hist_words.h's build_words without occupancy masks, keeping the codes, for 1 <= nf <= 8
  // features: rows[0..m)'s word increments into the histograms of f[0..nf) (pk, feature j at j *
  // kWordStride) and row i's nf codes as the bytes of keep[i] (feature j at byte j, the rest 0);
  // codes row-major (n, d).
  void (*build_words_kept)(const ClassRow* rows, int64_t m, const uint8_t* codes, int64_t d, const int* f, int nf,
                           uint64_t* pk, uint64_t* keep);
  const char* name;
};

// The table for an ISA, each set up once (registry.cpp); split_kernels() is active_isa()'s.
const SplitKernels& split_kernels_for(Isa isa);
const SplitKernels& split_kernels();

// Per-ISA entries (split.cpp): the generic scan and the fixed-width one.
void split_kernels_reference(SplitKernels& k);
void split_kernels_portable(SplitKernels& k);
bool split_kernels_avx2(SplitKernels& k);    // false where this build has no AVX2 entry
bool split_kernels_avx512(SplitKernels& k);  // false where this build has no AVX-512 entry

// The loops behind class_proxies, one per build (split.cpp, split_avx2.cpp, split_avx512.cpp).
void class_proxies_portable(const double* cl, int stride, const double* wl, const double* nl, int m, int K,
                            const double* total, double min_leaf, double min_weight, double* pr);
void class_proxies_avx2(const double* cl, int stride, const double* wl, const double* nl, int m, int K,
                        const double* total, double min_leaf, double min_weight, double* pr);
void class_proxies_avx512(const double* cl, int stride, const double* wl, const double* nl, int m, int K,
                          const double* total, double min_leaf, double min_weight, double* pr);
// build_words_kept for AVX2 (hist_words_avx2.cpp), in the AVX2 and AVX-512 tables.
void build_words_kept_avx2(const ClassRow* rows, int64_t m, const uint8_t* codes, int64_t d, const int* f, int nf,
                           uint64_t* pk, uint64_t* keep);

struct CompactKernels {
  // out rows [r0, r1) (k values each) += the leaf values, tree by tree in the order of trees[0..T)
  // (all of f's trees when trees is null), that each row of X reaches.
  void (*accumulate)(const CompactForest& f, const float* X, int64_t r0, int64_t r1, const double* values, int k,
                     const int64_t* trees, int64_t T, double* out);
  const char* name;
};

const CompactKernels& compact_kernels_for(Isa isa);
const CompactKernels& compact_kernels();  // active_isa()'s
void compact_kernels_portable(CompactKernels& k);
bool compact_kernels_avx2(CompactKernels& k);    // false where this build has no AVX2 entry
bool compact_kernels_avx512(CompactKernels& k);  // false where this build has no AVX-512 entry

}  // namespace forgeml::tree
