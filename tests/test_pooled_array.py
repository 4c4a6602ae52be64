"""Large arrays of tree_grow_forest on pooled pages (bind/pooled_array.h): a freed forest's pages
go back to the pool and the next forest's fields take them, with the previous content still there.
Oracle: the same forest grown before any reuse; every field must be written over completely."""

import gc
import pickle

import numpy as np
import pytest

from forgeml import _cpu, ops


@pytest.fixture
def pool_from_1mib():
    """Arrays from 1 MiB pooled (the default; set here so that the test does not depend on it)."""
    before = _cpu.pooled_array_min_bytes(1 << 20)
    yield
    _cpu.pooled_array_min_bytes(before)


def _data(n=20_011, d=9, seed=5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    X[rng.random((n, d)) < 0.02] = np.nan
    edges, n_edges = ops.tree_bin_edges(X, max_bins=255)
    y = ((X[:, 0] > 0) ^ (rng.random(n) < 0.3)).astype(np.int32)  # noisy labels: deep trees
    return ops.tree_bin_codes(X, edges, n_edges), y, edges


def _grow(codes, y, edges, seeds, final):
    return ops.tree_grow_forest(
        codes,
        y,
        np.ones(len(y)),
        seeds,
        criterion="gini",
        n_classes=2,
        max_features=3,
        random_split=True,
        threads=2,
        edges=edges if final else None,
    )


@pytest.mark.parametrize("final", [True, False])
def test_forest_on_reused_pages_matches_first_forest(final, pool_from_1mib):
    codes, y, edges = _data()
    seeds = list(range(17))
    first = _grow(codes, y, edges, seeds, final)
    assert first["impurity"].nbytes >= 2 << 20  # large enough for the pool
    want = {k: np.array(v, copy=True) for k, v in first.items()}
    before = _cpu.pooled_array_held_bytes()
    big = sum(v.nbytes for v in first.values() if v.nbytes >= 1 << 20)
    del first
    gc.collect()
    assert _cpu.pooled_array_held_bytes() >= min(before + big, 1 << 30)
    for other in (list(range(101, 121)), [7] * 13):  # other content, sizes
        junk = _grow(codes, y, edges, other, final)
        junk["value"][:] = np.nan
        del junk
    again = _grow(codes, y, edges, seeds, final)
    assert again.keys() == want.keys()
    for key, v in want.items():
        assert again[key].dtype == v.dtype and again[key].flags.writeable, key
        np.testing.assert_array_equal(again[key], v, err_msg=key)
    back = pickle.loads(pickle.dumps(again["value"]))  # a plain copy, no tie to the pool
    del again
    np.testing.assert_array_equal(back, want["value"])


def test_min_bytes_rejects_negative():
    with pytest.raises(ValueError, match="bytes"):
        _cpu.pooled_array_min_bytes(-1)


def test_empty_and_tiny_fields_when_every_array_is_pooled():
    """min_bytes 0: the empty forest's fields stay plain arrays, a tiny one's take a page each."""
    codes, y, edges = _data(n=61, d=3)
    before = _cpu.pooled_array_min_bytes(0)
    try:
        empty = _grow(codes, y, edges, [], True)
        assert empty["feature"].shape == (0,) and empty["value"].shape == (0, 2)
        tiny = _grow(codes, y, edges, [1, 2], True)
        want = _grow(codes, y, edges, [1, 2], False)  # int32 fields; feature -1 at leaves
        np.testing.assert_array_equal(tiny["left"], want["left"])
        np.testing.assert_array_equal(tiny["feature"], np.where(want["feature"] < 0, -2, want["feature"]))
        held = _cpu.pooled_array_held_bytes()
        n_arrays = len([k for k in tiny if k not in ("offsets", "depth")])
        del tiny
        gc.collect()
        assert _cpu.pooled_array_held_bytes() >= min(held + n_arrays * 4096, 1 << 30)
    finally:
        _cpu.pooled_array_min_bytes(before)
