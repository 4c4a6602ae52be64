"""ops.sparse_matmul: act(x @ w + bias) with a column-compressed sparse w, on every ISA path,
against a float64 reference on odd sizes; SparseWeights round trips; bad input raises."""

import numpy as np
import pytest
from scipy.special import erf

from forgeml import ops
from forgeml.ops import SparseWeights, sparse_matmul

ACTS = {
    None: lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "gelu": lambda x: 0.5 * x * (1 + erf(x / np.sqrt(2))),
}
# Rows around the blocks (portable 16, AVX2 32, AVX-512 64), depths past one depth slice (1024
# to 4096 rows), columns around the 32-column chunks.
SHAPES = [(1, 1, 1), (1, 7, 3), (17, 33, 31), (65, 129, 33), (3, 1025, 70), (130, 300, 5), (33, 4100, 37)]


def sparse(rng, k, n, density):
    w = rng.standard_normal((k, n)).astype(np.float32)
    w[rng.random((k, n)) >= density] = 0
    return w


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("density", [0.0, 0.1, 0.6])
def test_matches_float64_reference(isa, rng, m, k, n, density):
    w = sparse(rng, k, n, density)
    x = rng.standard_normal((m, k)).astype(np.float32)
    y = sparse_matmul(x, SparseWeights.from_dense(w))
    ref = x.astype(np.float64) @ w
    tol = 1e-6 * (np.abs(x).astype(np.float64) @ np.abs(w)) + 1e-7
    assert y.shape == (m, n) and y.dtype == np.float32
    assert np.all(np.abs(y - ref) <= tol), np.abs(y - ref).max()


@pytest.mark.parametrize("act", list(ACTS))
def test_bias_and_activation_epilogue(isa, rng, act):
    w, bias = sparse(rng, 77, 45, 0.2), rng.standard_normal(45).astype(np.float32)
    x = rng.standard_normal((70, 77)).astype(np.float32)
    out = np.full((70, 45), np.nan, np.float32)
    y = sparse_matmul(x, SparseWeights.from_dense(w), bias=bias, activation=act, out=out)
    assert y is out
    np.testing.assert_allclose(y, ACTS[act](x.astype(np.float64) @ w + bias), rtol=1e-5, atol=1e-5)


def test_strided_rows_and_threads(rng, restore_threads):
    import forgeml

    w = sparse(rng, 200, 300, 0.1)
    x = rng.standard_normal((150, 400)).astype(np.float32)[:, ::2]  # copied once to unit stride
    sw = SparseWeights.from_dense(w)
    forgeml.set_num_threads(1)
    one = sparse_matmul(x, sw)
    forgeml.set_num_threads(2)
    np.testing.assert_array_equal(sparse_matmul(x, sw), one)  # each output summed by one thread
    np.testing.assert_allclose(one, x.astype(np.float64) @ w, rtol=1e-5, atol=1e-5)


def test_sparse_weights_layout(rng):
    w = sparse(rng, 9, 6, 0.4)
    w[:, 2] = 0  # an empty column
    sw = SparseWeights.from_dense(w)
    assert sw.shape == (9, 6) and sw.nnz == np.count_nonzero(w)
    assert sw.density == pytest.approx(np.count_nonzero(w) / w.size)
    np.testing.assert_array_equal(sw.to_dense(), w)
    scipy_sparse = pytest.importorskip("scipy.sparse")
    csc = scipy_sparse.csc_matrix(w)
    np.testing.assert_array_equal(sw.indptr, csc.indptr)
    np.testing.assert_array_equal(sw.indices, csc.indices)
    np.testing.assert_array_equal(sw.values, csc.data)


def test_errors_and_empty(rng):
    sw = SparseWeights.from_dense(sparse(rng, 5, 4, 0.5))
    with pytest.raises(TypeError, match="w: expected SparseWeights"):
        sparse_matmul(np.ones((2, 5), np.float32), np.ones((5, 4), np.float32))
    with pytest.raises(ValueError, match="x: expected 5 columns"):
        sparse_matmul(np.ones((2, 6), np.float32), sw)
    with pytest.raises(ValueError, match="bias"):
        sparse_matmul(np.ones((2, 5), np.float32), sw, bias=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="activation"):
        sparse_matmul(np.ones((2, 5), np.float32), sw, activation="swish")
    with pytest.raises(ValueError, match="out"):
        sparse_matmul(np.ones((2, 5), np.float32), sw, out=np.empty((2, 5), np.float32))
    with pytest.raises(ValueError, match="indices: row indices"):
        SparseWeights([0, 1], [5], [1.0], (5, 1))
    with pytest.raises(ValueError, match="indptr"):
        SparseWeights([0, 2, 1], [0, 1], [1.0, 2.0], (5, 2))
    bad = SparseWeights([0, 2], [3, 1], [1.0, 2.0], (5, 1))  # rows not ascending: the kernel refuses
    with pytest.raises(ValueError, match="ascending"):
        sparse_matmul(np.ones((2, 5), np.float32), bad)
    assert sparse_matmul(np.ones((0, 5), np.float32), sw).shape == (0, 4)
    z = sparse_matmul(
        np.ones((3, 5), np.float32),
        SparseWeights.from_dense(np.zeros((5, 4), np.float32)),
        bias=np.full(4, 2, np.float32),
    )
    np.testing.assert_array_equal(z, np.full((3, 4), 2, np.float32))
    assert ops.sparse.kernel_name().startswith("csc_")


@pytest.mark.parametrize(
    "col,at,value,message",
    [
        (1, 0, -1, "outside"),  # a column's first row below 0
        (2, -1, 40, "outside"),  # its last row past K
        (2, 1, 40, "outside"),  # a middle row past K (the column no longer ascends)
        (3, 1, None, "ascending"),  # a row repeated
        (3, 2, 0, "ascending"),  # a row out of order
    ],
)
def test_kernel_checks_indices_changed_after_construction(rng, col, at, value, message):
    """SparseWeights checks its rows when built, but its arrays stay writable: the kernel checks
    them again on every call and names the bad entry, never reading outside x."""
    w = rng.standard_normal((40, 5)).astype(np.float32)
    sw = SparseWeights.from_dense(w)
    p = sw.indptr[col] + (at if at >= 0 else sw.indptr[col + 1] - sw.indptr[col] + at)
    sw.indices[p] = sw.indices[p - 1] if value is None else value
    with pytest.raises(ValueError, match=message):
        sparse_matmul(np.ones((3, 40), np.float32), sw)
