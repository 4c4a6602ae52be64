// Internal to csrc/cpu/tree: the split kernel on its own (best_split, tree.h) in one table per ISA
// (gemm's idiom). split.cpp fills the entries, registry.cpp picks active_isa()'s. The scan is
// scalar code whose speed comes from fixing the statistics width at compile time, not from SIMD:
// the reference entry is the generic runtime-width scan, the portable one the fixed-width scan
// growth uses (same bits, tests/test_tree.py), and AVX2 / AVX-512 take the portable entry.
#pragma once
#include "cpu/tree/tree.h"
#include "forgeml/cpu_features.h"

namespace forgeml::tree {

struct SplitKernels {
  // best_split's contract (tree.h).
  SplitResult (*best_split)(const double* hist, int d, const double* total, Criterion criterion, int n_classes,
                            double min_samples_leaf, double min_weight_leaf);
  const char* name;
};

// The table for an ISA, each set up once (registry.cpp); split_kernels() is active_isa()'s.
const SplitKernels& split_kernels_for(Isa isa);
const SplitKernels& split_kernels();

// Per-ISA entries (split.cpp): the generic scan and the fixed-width one.
void split_kernels_reference(SplitKernels& k);
void split_kernels_portable(SplitKernels& k);

}  // namespace forgeml::tree
