// Decision-tree kernels: binning, split search, tree growth and prediction (CPU).
//
// Data contract shared by every kernel here:
//   X      (n, d) float32 row-major, finite or NaN
//   edges  (d, 256) float32: feature f has n_edges[f] <= 254 ascending cut points, padded with +inf
//   codes  (n, d) uint8 row-major: code = #edges < x (0..n_edges[f]); NaN -> kNanBin (255)
//   a split "x <= edges[f][bin]" is exactly "code <= bin"; bin kAllLeft means "every value goes
//   left, only NaN goes right" (its edge is +inf).
#pragma once
#include <cstdint>
#include <vector>

namespace forgeml::tree {

constexpr int kNanBin = 255;
constexpr int kAllLeft = 254;
constexpr int kMaxValueBins = 255;

// ---------------------------------------------------------------- binning
// Cut points for each feature from the rows with weight > 0 (all rows when weight is null),
// subsampled to at most `sample` rows with `seed`. Output: edges (d, 256), n_edges (d).
void bin_edges(const float* X, int64_t n, int d, const double* weight, int max_bins, int64_t sample,
               uint64_t seed, float* edges, int32_t* n_edges);
void bin_codes(const float* X, int64_t n, int d, const float* edges, const int32_t* n_edges, uint8_t* codes);
// The same on X given as CSC columns (indptr (d+1), row indices, values; canonical: no duplicate
// rows in a column): unstored entries are zeros. Equal to the dense calls on the dense matrix.
void bin_edges_csc(const int64_t* indptr, const int32_t* indices, const float* data, int64_t n, int d,
                   const double* weight, int max_bins, int64_t sample, uint64_t seed, float* edges,
                   int32_t* n_edges);
// column_major: codes (d, n), feature f's at codes + f * n (growth reads them so, Data::column_major).
void bin_codes_csc(const int64_t* indptr, const int32_t* indices, const float* data, int64_t n, int d,
                   const float* edges, bool column_major, uint8_t* codes);

// Sparse X binned without a code matrix: only the stored entries whose code differs from their
// feature's code of zero (every other cell holds that code), by column (rows ascending) and by
// row (features ascending). Growth on them costs the entries, not n * d (grow_sparse.h).
struct SparseCodes {
  const int64_t* col_ptr;      // (d + 1)
  const int32_t* col_row;      // (m)
  const uint8_t* col_code;     // (m)
  const int64_t* row_ptr;      // (n + 1)
  const int32_t* row_feature;  // (m)
  const uint8_t* row_code;     // (m)
  const uint8_t* zero_code;    // (d)
};
struct SparseCodeArrays {
  std::vector<int64_t> col_ptr, row_ptr;
  std::vector<int32_t> col_row, row_feature;
  std::vector<uint8_t> col_code, row_code, zero_code;
};
// From X as canonical CSC columns and the cut points of bin_edges_csc (binning_sparse.cpp).
SparseCodeArrays bin_sparse_codes(const int64_t* indptr, const int32_t* indices, const float* data, int64_t n, int d,
                                  const float* edges);

// ---------------------------------------------------------------- growth
enum class Criterion { gini = 0, entropy = 1, squared_error = 2, poisson = 3, absolute_error = 4 };
inline bool is_classification(Criterion c) { return c == Criterion::gini || c == Criterion::entropy; }

struct Params {
  Criterion criterion = Criterion::gini;
  int n_classes = 1;               // 1 for regression
  int max_depth = 1 << 30;
  int64_t min_samples_split = 2;
  int64_t min_samples_leaf = 1;
  double min_weight_fraction_leaf = 0;  // of the tree's total weight
  double min_impurity_decrease = 0;
  int max_features = 0;            // features drawn per node (non-constant ones counted)
  int64_t max_leaf_nodes = 0;      // > 0: best-first growth
  bool hist_subtraction = true;    // false: every node builds its histograms from its rows (tests)
  bool int_counts = true;          // integer weights (bootstrap counts): packed integer histograms
  // Monotonic constraints, one per feature (empty: none): +1 the node value (regression: the
  // mean; classification: the fraction of class 0, binary only) must not decrease along the
  // feature, -1 not increase, 0 free. Every split keeps both children inside the node's bounds,
  // a constrained one orders them, and children inherit bounds split at the children's mid value.
  std::vector<int8_t> monotonic;
  // Random splitter (extremely randomized trees): each drawn feature is split at a threshold bin
  // drawn uniformly between its smallest and largest value code in the node (scikit-learn's
  // uniform threshold, on the bin scale) instead of the best one; the best of those wins.
  bool random_split = false;
};

struct Data {
  const uint8_t* codes;
  int64_t n;
  int d;
  const int32_t* y_class;  // (n, n_outputs) class index, classification
  const double* y;         // (n, n_outputs) target, regression
  int n_outputs = 1;       // > 1: multi-output criteria (criterion.h), n_classes = most classes of any output
  bool column_major = false;  // codes (d, n): feature f's codes at codes + f * n (wide sparse X)
  // Optional, sparse X: per row r, entry_feature[entry_ptr[r] .. entry_ptr[r + 1]) lists the
  // features whose code may differ from the code of zero (X's stored entries, CSR). Small nodes
  // use it to skip features that hold only zeros there; trees are the same with or without it.
  const int64_t* entry_ptr = nullptr;
  const int32_t* entry_feature = nullptr;
  // Optional, sparse X: its codes as entries (codes is then unused and may be null; not with
  // absolute_error). Trees equal the dense ones' (exactly with packed counts, else up to rounding).
  const SparseCodes* sparse = nullptr;
  // Nonzero: every tree grown under this key has the same rows and weights (grow_forest without
  // bootstrap sets a key of its own per call), so a thread may keep its packed root rows for them.
  uint64_t same_rows = 0;
};

// One tree as flat arrays (node 0 is the root; feature -1 marks a leaf).
struct TreeOut {
  std::vector<int32_t> feature, left, right, thr_bin;
  std::vector<uint8_t> nan_left;
  std::vector<double> impurity, weighted_n, value;  // value: (nodes, n_outputs, n_classes or 1)
  std::vector<int64_t> n_samples;
  int depth = 0;
};

// weight (n): per-row weight, 0 = row not in this tree's sample. threads > 1 splits the
// feature work of large nodes; the result does not depend on it.
TreeOut grow_tree(const Data& data, const Params& p, const double* weight, uint64_t seed, int threads);

// Bootstrap draw counts (n) of n_draws rows with replacement; the same seed gives the same counts.
void bootstrap_counts(int64_t n, int64_t n_draws, uint64_t seed, int32_t* counts);

struct ForestParams {
  bool bootstrap = true;
  int64_t n_draws = 0;
  bool balanced_subsample = false;
};

// Trees in parallel (one thread each), tree t seeded by seeds[t]; its bootstrap uses seeds[t] too.
std::vector<TreeOut> grow_forest(const Data& data, const Params& p, const ForestParams& fp,
                                 const double* base_weight, const uint64_t* seeds, int n_trees, int threads);

// ---------------------------------------------------------------- prediction
// nodes (N, 4) int32 over all trees: {feature | nan_left << 30 (-1: leaf), threshold bits (float),
// left, right} with global child ids; values (N, k); roots (T).
void forest_predict(const float* X, int64_t n, int d, const int32_t* nodes, const double* values, int k,
                    const int64_t* roots, int n_trees, double* out, int threads);
void forest_apply(const float* X, int64_t n, int d, const int32_t* nodes, const int64_t* roots,
                  int n_trees, int64_t* out, int threads);

}  // namespace forgeml::tree

namespace forgeml::tree {
// The split kernel on its own (tests, and the CUDA port's oracle): hist (d, 256, S) statistics
// per bin as in criterion.h, total (S). Returns {feature, threshold bin, nan_left, proxy} of the
// best split, feature -1 when none is valid. Features are ranked in index order for ties.
// The scan is active_isa()'s entry of the split-kernel table (kernels.h): under the reference ISA
// the generic runtime-width scan, otherwise the fixed-width one growth uses.
struct SplitResult { int feature; int bin; bool nan_left; double proxy; };
SplitResult best_split(const double* hist, int d, const double* total, Criterion criterion, int n_classes,
                       double min_samples_leaf, double min_weight_leaf);
}  // namespace forgeml::tree
