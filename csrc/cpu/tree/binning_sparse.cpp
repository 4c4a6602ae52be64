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
  // by row: a counting sort of the kept entries on their row, columns in order (features ascend).
  // Rows go in blocks whose entries fit in cache (every column's rows of a block being one run,
  // resumed where the last block left it), so the scattered writes stay in that window.
  out.row_ptr.assign(n + 1, 0);
  for (int64_t k = 0; k < m; ++k) ++out.row_ptr[out.col_row[k] + 1];
  for (int64_t r = 0; r < n; ++r) out.row_ptr[r + 1] += out.row_ptr[r];
  out.row_feature.resize(m);
  out.row_code.resize(m);
  const int64_t per_row = std::max<int64_t>(1, m / std::max<int64_t>(n, 1));
  const int64_t block = std::max<int64_t>(64, (int64_t{512} << 10) / (5 * per_row));  // ~512 KiB of entries
  const int64_t n_blocks = (n + block - 1) / block;
  const int32_t* col_row = out.col_row.data();
  const uint8_t* col_code = out.col_code.data();
  int32_t* row_feature = out.row_feature.data();
  uint8_t* row_code = out.row_code.data();
  parallel_for(n_blocks, 4, [&](int64_t b0, int64_t b1) {
    std::vector<int64_t> at(d);  // each column's next entry
    for (int f = 0; f < d; ++f)
      at[f] = std::lower_bound(col_row + kept[f], col_row + kept[f + 1], static_cast<int32_t>(b0 * block)) - col_row;
    std::vector<int64_t> next(out.row_ptr.begin() + b0 * block, out.row_ptr.begin() + std::min(n, b1 * block));
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * block, r1 = std::min(n, r0 + block);
      int64_t* nx = next.data() - b0 * block;
      for (int f = 0; f < d; ++f) {
        int64_t k = at[f];
        for (const int64_t end = kept[f + 1]; k < end && col_row[k] < r1; ++k) {
          const int64_t to = nx[col_row[k]]++;
          row_feature[to] = f;
          row_code[to] = col_code[k];
        }
        at[f] = k;
      }
    }
  });
  return out;
}

}  // namespace forgeml::tree
