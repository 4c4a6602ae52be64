// Sparse X's binned entries (tree.h's SparseCodes) between Python and the tree kernels.
#pragma once
#include <pybind11/pybind11.h>

#include <cstdint>

#include "cpu/tree/tree.h"

namespace forgeml::bind {

// The seven arrays of ops.tree_bin_sparse (col_ptr, col_row, col_code, row_ptr, row_feature,
// row_code, zero_code), checked against n rows and d features; they must outlive the result.
forgeml::tree::SparseCodes tree_sparse_codes(const pybind11::tuple& arrays, int64_t n, int d);

}  // namespace forgeml::bind
