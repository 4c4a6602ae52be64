// Structure checks for the index arrays a kernel follows blindly: a CSR matrix (indptr,
// indices) and a forest's flat node array. A kernel given arrays that pass these reads only
// inside its inputs and always terminates; anything else throws std::invalid_argument
// (ValueError in Python) naming the array and the first bad entry. O(size), no allocation.
// Header-only so the sanitizer executable and the fuzz targets test the very same code.
#pragma once
#include <cstdint>

#include "forgeml/check.h"

namespace forgeml {

// A CSR matrix of n_rows x n_cols: indptr has n_rows + 1 entries, starts at 0, never decreases
// and ends at nnz <= n_data (the length of indices and data); every column index lies in
// [0, n_cols). Column order within a row is not required.
template <class Ptr, class Idx>
void check_csr(const Ptr* indptr, int64_t n_indptr, const Idx* indices, int64_t n_indices, int64_t n_data,
               int64_t n_rows, int64_t n_cols) {
  FORGEML_CHECK_ARG(n_rows >= 0 && n_cols >= 0, "X: sparse shape must be non-negative, got (", n_rows, ", ",
                    n_cols, ")");
  FORGEML_CHECK_ARG(n_indptr == n_rows + 1, "X.indptr: expected ", n_rows + 1, " entries for ", n_rows,
                    " rows, got ", n_indptr);
  FORGEML_CHECK_ARG(indptr[0] == 0, "X.indptr: must start at 0, got ", static_cast<int64_t>(indptr[0]));
  for (int64_t r = 0; r < n_rows; ++r)
    FORGEML_CHECK_ARG(indptr[r + 1] >= indptr[r], "X.indptr: must not decrease, but indptr[", r + 1, "] = ",
                      static_cast<int64_t>(indptr[r + 1]), " < indptr[", r, "] = ", static_cast<int64_t>(indptr[r]));
  const int64_t nnz = static_cast<int64_t>(indptr[n_rows]);
  FORGEML_CHECK_ARG(nnz <= n_indices && nnz <= n_data, "X.indptr: its last entry ", nnz,
                    " passes the stored entries (indices: ", n_indices, ", data: ", n_data, ")");
  for (int64_t i = 0; i < nnz; ++i)
    FORGEML_CHECK_ARG(indices[i] >= 0 && static_cast<int64_t>(indices[i]) < n_cols, "X.indices: entry ", i, " = ",
                      static_cast<int64_t>(indices[i]), " is outside [0, ", n_cols, ")");
}

// A forest's nodes (n_nodes x 4 int32: {feature | nan_left << 30, or -1 at a leaf; threshold
// bits; left; right}) and the root of each tree. Every root is a node; every split's feature
// lies in [0, n_features); every child lies after its parent and inside the array, so each
// walk from a root moves strictly forward and ends at a leaf (no cycle, no read outside).
inline void check_forest_nodes(const int32_t* nodes, int64_t n_nodes, const int64_t* roots, int64_t n_roots,
                               int64_t n_features) {
  for (int64_t t = 0; t < n_roots; ++t)
    FORGEML_CHECK_ARG(roots[t] >= 0 && roots[t] < n_nodes, "roots: entry ", t, " = ", roots[t],
                      " is outside [0, ", n_nodes, ")");
  for (int64_t i = 0; i < n_nodes; ++i) {
    const int32_t* nd = nodes + i * 4;
    if (nd[0] < 0) continue;  // a leaf
    const int64_t f = nd[0] & 0x3fffffff;
    FORGEML_CHECK_ARG(f < n_features, "nodes: node ", i, " splits on feature ", f, " but X has ", n_features,
                      " features");
    FORGEML_CHECK_ARG(nd[2] > i && nd[2] < n_nodes && nd[3] > i && nd[3] < n_nodes, "nodes: node ", i,
                      " has children (", nd[2], ", ", nd[3], "); they must lie after it, in (", i, ", ", n_nodes,
                      ")");
  }
}

}  // namespace forgeml
