"""Grown trees' node arrays kept between forests (cpu/tree/tree_out_pool.h): the forest's copy
returns each tree's arrays to a pool (vectors emptied, pages madvised free) and the next trees are
grown into them. Oracle: the same forest grown before any reuse, field by field; a forest grown in
between on other data (more and fewer nodes per tree, other classes) must leave nothing behind."""

import numpy as np
import pytest

from forgeml import _cpu, ops


def _data(n, d, k, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    X[rng.random((n, d)) < 0.02] = np.nan
    edges, n_edges = ops.tree_bin_edges(X, max_bins=255)
    y = ((np.nan_to_num(X[:, 0]) > 0).astype(np.int32) + (rng.random(n) < 0.3) * rng.integers(0, k, n)) % k
    return ops.tree_bin_codes(X, edges, n_edges), y.astype(np.int32), edges


def _grow(codes, y, edges, k, random_split, seeds):
    return ops.tree_grow_forest(
        codes,
        y,
        np.ones(len(y)),
        seeds,
        criterion="gini",
        n_classes=k,
        max_features=3,
        random_split=random_split,
        bootstrap=not random_split,
        threads=2,
        edges=edges,
    )


def _same(a, b):
    assert set(a) == set(b)
    for key in a:
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)


@pytest.mark.parametrize("random_split", [True, False])  # packed rows (arrays reserved up front) / histograms
def test_trees_grown_into_pooled_arrays_match_fresh_ones(random_split):
    codes, y, edges = _data(6_007, 9, 2, seed=1)
    seeds = list(range(13))
    first = {key: np.array(v, copy=True) for key, v in _grow(codes, y, edges, 2, random_split, seeds).items()}
    assert _cpu.tree_out_pool_trees() >= len(seeds)  # this forest's trees went back to the pool
    big = _data(20_011, 13, 3, seed=2)  # larger trees, three classes: value rows of another width
    small = _data(301, 5, 2, seed=3)
    for other in (big, small, big):
        _grow(*other, 3 if other is big else 2, random_split, list(range(7, 30)))
    again = _grow(codes, y, edges, 2, random_split, seeds)
    _same(first, again)


def test_release_cached_memory_empties_both_pools():
    """forgeml.release_cached_memory frees what both pools hold (the forest fields' pages and the
    grown trees' arrays); the next forest is grown into fresh memory and equals the first."""
    import gc

    import forgeml

    codes, y, edges = _data(3_001, 7, 2, seed=4)
    seeds = list(range(9))
    min_bytes = _cpu.pooled_array_min_bytes(1)  # pool the small test forest's fields too
    try:
        first = {key: np.array(v, copy=True) for key, v in _grow(codes, y, edges, 2, True, seeds).items()}
        gc.collect()
        assert _cpu.tree_out_pool_trees() > 0 and _cpu.pooled_array_held_bytes() > 0
        assert forgeml.release_cached_memory() > 0
        assert _cpu.tree_out_pool_trees() == 0 and _cpu.pooled_array_held_bytes() == 0
        assert forgeml.release_cached_memory() == 0
        _same(first, _grow(codes, y, edges, 2, True, seeds))
    finally:
        _cpu.pooled_array_min_bytes(min_bytes)
