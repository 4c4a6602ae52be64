"""Sparse X binned as entries for tree growth (ops.tree_bin_sparse): the codes of its stored
entries, by column and by row, without an (n, d) code matrix; tree_grow_forest takes them in
place of codes and grows from them at a cost that follows the entries, not n * d."""

from __future__ import annotations

import dataclasses

import numpy as np

from .._backend import check_shape
from .._backend import cpu as _cpu


@dataclasses.dataclass(frozen=True)
class SparseCodes:
    """Binned sparse X (n, d): `arrays` are (col_ptr, col_row, col_code, row_ptr, row_feature,
    row_code, zero_code): the entries whose code differs from their feature's code of zero, by
    column (CSC, rows ascending) and by row (CSR, features ascending); every other cell of the
    matrix holds its feature's zero_code."""

    shape: tuple[int, int]
    arrays: tuple

    @property
    def nnz(self) -> int:
        return int(self.arrays[1].shape[0])

    def toarray(self) -> np.ndarray:
        """The dense (n, d) uint8 codes (tests: tree_bin_codes of the same X gives these)."""
        col_ptr, col_row, col_code, *_, zero_code = self.arrays
        codes = np.repeat(zero_code[None, :], self.shape[0], axis=0)
        cols = np.repeat(np.arange(self.shape[1]), np.diff(col_ptr))
        codes[col_row, cols] = col_code
        return codes


def tree_bin_sparse(X, edges) -> SparseCodes:
    """Codes of a scipy sparse X under the cut points of tree_bin_edges, as SparseCodes (the same
    codes as tree_bin_codes(X, ...), stored as entries)."""
    from .tree import _csc

    indptr, indices, data, n, d = _csc(X)
    check_shape(edges, "edges", (d, 256))
    arrays = _cpu.tree_bin_sparse(indptr, indices, data, n, d, np.ascontiguousarray(edges, dtype=np.float32))
    return SparseCodes((int(n), int(d)), tuple(arrays))
