// Sparse X to SparseCodes (tree.h): each stored entry's code, the entries holding their feature's
// code of zero dropped (they bin as the unstored zeros do), then the same entries by row.
#include <algorithm>
#include <vector>

#include "cpu/tree/bin_code.h"
#include "cpu/tree/tree.h"
#include "forgeml/parallel.h"

namespace forgeml::tree {

SparseCodeArrays bin_sparse_codes(const int64_t* indptr, const int32_t* indices, const float* data, int64_t n, int d,
                                  const float* edges) {
  SparseCodeArrays out;
  out.zero_code.resize(d);
  std::vector<uint8_t> code(static_cast<size_t>(indptr[d]));
  std::vector<int64_t> kept(d + 1, 0);
  parallel_for(d, 16, [&](int64_t f0, int64_t f1) {
    for (int64_t f = f0; f < f1; ++f) {
      const float* e = edges + f * 256;
      const uint8_t zc = code_of(e, 0.0f);
      out.zero_code[f] = zc;
      int64_t m = 0;
      for (int64_t k = indptr[f]; k < indptr[f + 1]; ++k) {
        code[k] = code_of(e, data[k]);
        m += code[k] != zc;
      }
      kept[f + 1] = m;
    }
  });
  for (int f = 0; f < d; ++f) kept[f + 1] += kept[f];
  const int64_t m = kept[d];
  out.col_ptr = kept;
  out.col_row.resize(m);
  out.col_code.resize(m);
  parallel_for(d, 16, [&](int64_t f0, int64_t f1) {
    for (int64_t f = f0; f < f1; ++f) {
      int64_t at = kept[f];
      for (int64_t k = indptr[f]; k < indptr[f + 1]; ++k) {
        if (code[k] == out.zero_code[f]) continue;
        out.col_row[at] = indices[k];
        out.col_code[at++] = code[k];
      }
    }
  });
  // by row: a counting sort of the kept entries on their row, columns in order (features ascend);
  // threads take ranges of rows, each column's rows of a range being one run (rows ascend)
  out.row_ptr.assign(n + 1, 0);
  for (int64_t k = 0; k < m; ++k) ++out.row_ptr[out.col_row[k] + 1];
  for (int64_t r = 0; r < n; ++r) out.row_ptr[r + 1] += out.row_ptr[r];
  std::vector<int64_t> next(out.row_ptr.begin(), out.row_ptr.end() - 1);
  out.row_feature.resize(m);
  out.row_code.resize(m);
  parallel_for(n, 4096, [&](int64_t r0, int64_t r1) {
    for (int f = 0; f < d; ++f) {
      const int32_t* lo = out.col_row.data() + out.col_ptr[f];
      const int32_t* hi = out.col_row.data() + out.col_ptr[f + 1];
      for (const int32_t* at = std::lower_bound(lo, hi, static_cast<int32_t>(r0)); at != hi && *at < r1; ++at) {
        const int64_t k = at - out.col_row.data(), to = next[*at]++;
        out.row_feature[to] = f;
        out.row_code[to] = out.col_code[k];
      }
    }
  });
  return out;
}

}  // namespace forgeml::tree
