"""The absolute_error criterion (median leaves) in the C++ growth kernel against a float64 NumPy
brute-force reference, and against scikit-learn's DecisionTreeRegressor(criterion="absolute_error")."""

import numpy as np
import pytest
from sklearn.tree import DecisionTreeRegressor as SkTree

from forgeml import ops
from forgeml.ensemble import ExtraTreesRegressor, RandomForestRegressor
from forgeml.tree import DecisionTreeRegressor, ExtraTreeRegressor


def _weighted_median(y, w):
    """scikit-learn's rule: the smallest y whose cumulative weight exceeds half the total; the
    mid-point of the two values around it when a prefix weighs exactly half."""
    o = np.argsort(y, kind="stable")
    y, w = y[o], w[o]
    cum = np.cumsum(w)
    half = 0.5 * cum[-1]
    exact = np.flatnonzero(cum == half)
    if len(exact) and exact[0] + 1 < len(y):
        return (y[exact[0]] + y[exact[0] + 1]) / 2
    return y[np.argmax(cum > half)]


def _abs_dev(y, w):
    return float(np.sum(w * np.abs(y - _weighted_median(y, w))))


def _data(seed, n=211, d=4, max_bins=255):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] + rng.standard_t(2, size=n)
    edges, n_edges = ops.tree_bin_edges(X, max_bins=max_bins)
    return X, ops.tree_bin_codes(X, edges, n_edges), y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_median_reference_is_sklearns(seed):
    # one leaf (constant X): scikit-learn's node value is its weighted median; integer weights
    # make prefixes of exactly half the total common
    rng = np.random.default_rng(seed)
    n = 7 + 2 * seed
    y = rng.normal(size=n).round(1)
    for w in (np.ones(n), rng.integers(1, 4, size=n).astype(float), rng.random(n) + 0.1, np.r_[np.ones(n - 1), 0]):
        if seed == 0:
            y, w = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 1.0, 1.0, 1.0])  # exact half: 2.5
        sk = SkTree(criterion="absolute_error").fit(np.zeros((len(y), 1)), y, sample_weight=w)
        np.testing.assert_allclose(sk.tree_.value[0, 0, 0], _weighted_median(y[w > 0], w[w > 0]))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("weighted", [False, True])
def test_nodes_are_weighted_medians_and_root_split_is_best(seed, weighted):
    _, codes, y = _data(seed, max_bins=16)
    rng = np.random.default_rng(seed + 10)
    w = rng.integers(1, 4, size=len(y)).astype(float) if weighted else np.ones(len(y))
    g = ops.tree_grow_forest(codes, y, w, [seed], criterion="absolute_error", max_depth=4, min_samples_leaf=3)
    rows = {0: np.arange(len(y))}
    for node in range(len(g["feature"])):
        r = rows[node]
        np.testing.assert_allclose(g["value"][node, 0], _weighted_median(y[r], w[r]), rtol=0, atol=0)
        np.testing.assert_allclose(g["impurity"][node], _abs_dev(y[r], w[r]) / np.sum(w[r]), rtol=1e-12, atol=1e-14)
        assert g["weighted_n"][node] == np.sum(w[r])
        f = g["feature"][node]
        if f >= 0:
            left = codes[r, f] <= g["thr_bin"][node]
            assert left.sum() >= 3 and (~left).sum() >= 3
            rows[g["left"][node]], rows[g["right"][node]] = r[left], r[~left]
    # brute force at the root: every boundary between occupied bins of every feature
    best = np.inf
    for f in range(codes.shape[1]):
        for b in np.unique(codes[:, f])[:-1]:
            left = codes[:, f] <= b
            if left.sum() >= 3 and (~left).sum() >= 3:
                best = min(best, _abs_dev(y[left], w[left]) + _abs_dev(y[~left], w[~left]))
    children = g["left"][0], g["right"][0]
    got = sum(g["impurity"][c] * g["weighted_n"][c] for c in children)
    np.testing.assert_allclose(got, best, rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("max_depth", [1, 3, None])
def test_matches_sklearn_on_distinct_values(seed, max_depth):
    rng = np.random.default_rng(seed)
    n = 97 + 2 * seed
    X = rng.permutation(n * 3).reshape(n, 3).astype(np.float32)  # distinct values: one bin each
    y = X[:, 0] * 0.01 + rng.standard_exponential(n) ** 2
    w = rng.integers(1, 5, size=n).astype(float) if seed % 2 else None
    ours = DecisionTreeRegressor(criterion="absolute_error", max_depth=max_depth, random_state=0).fit(X, y, w)
    sk = SkTree(criterion="absolute_error", max_depth=max_depth, random_state=0).fit(X, y, w)
    # the same partition of the training rows (thresholds are bin edges: between two training
    # values they may differ from scikit-learn's mid-point, as for every criterion)
    np.testing.assert_array_equal(ours.predict(X), sk.predict(X))
    if max_depth is None:
        # deep small nodes tie often (any split of two rows loses 0): the features' random order
        # (scikit-learn's RNG, not ours) picks among equal splits, so only the leaves agree
        return
    assert ours.tree_.node_count == sk.tree_.node_count
    # same nodes (numbered in another order: both children of a split are created together)
    np.testing.assert_allclose(np.sort(ours.tree_.impurity), np.sort(sk.tree_.impurity), rtol=1e-9, atol=1e-12)


def test_forests_and_extra_trees_have_median_leaves():
    X, _, y = _data(5, n=301)
    for est in (
        RandomForestRegressor(10, criterion="absolute_error", min_samples_leaf=5, random_state=0),
        ExtraTreesRegressor(10, criterion="absolute_error", min_samples_leaf=5, random_state=0),
        ExtraTreeRegressor(criterion="absolute_error", min_samples_leaf=5, random_state=0),
    ):
        est.fit(X, y)
        trees = getattr(est, "estimators_", [est])
        for i, t in enumerate(trees[:3]):
            # a bootstrap's draw counts are the tree's row weights
            w = est._bootstrap_counts(i).astype(float) if getattr(est, "bootstrap", False) else np.ones(len(y))
            leaves = t.apply(X)
            for leaf in np.unique(leaves[w > 0]):
                r = (leaves == leaf) & (w > 0)
                assert t.tree_.value[leaf].ravel()[0] == _weighted_median(y[r], w[r])
        assert np.mean(np.abs(est.predict(X) - y)) < np.mean(np.abs(y - np.median(y)))


@pytest.mark.parametrize("seed", [0, 1])
def test_root_split_with_missing_values_is_best(seed):
    # NaN rows may go either way: brute force over both sides and "only NaN right"
    _, codes, y = _data(seed, n=157, d=3, max_bins=12)
    rng = np.random.default_rng(seed)
    codes[rng.random(codes.shape) < 0.15] = ops.NAN_BIN
    w = rng.random(len(y)) + 0.5
    g = ops.tree_grow_forest(codes, y, w, [seed], criterion="absolute_error", max_depth=1, min_samples_leaf=2)
    best = np.inf
    for f in range(codes.shape[1]):
        nan = codes[:, f] == ops.NAN_BIN
        for b in list(np.unique(codes[~nan, f])) + [254]:
            for nan_left in (False, True):
                left = (codes[:, f] <= b) & ~nan | (nan & nan_left)
                if left.sum() >= 2 and (~left).sum() >= 2:
                    best = min(best, _abs_dev(y[left], w[left]) + _abs_dev(y[~left], w[~left]))
    f, b = g["feature"][0], g["thr_bin"][0]
    nan = codes[:, f] == ops.NAN_BIN
    left = (codes[:, f] <= b) & ~nan | (nan & bool(g["nan_left"][0]))
    got = _abs_dev(y[left], w[left]) + _abs_dev(y[~left], w[~left])
    np.testing.assert_allclose(got, best, rtol=1e-12)
    children = g["left"][0], g["right"][0]
    np.testing.assert_allclose(sum(g["impurity"][c] * g["weighted_n"][c] for c in children), best, rtol=1e-12)


def test_histogram_kernels_refuse_absolute_error():
    with pytest.raises(ValueError, match="absolute_error"):
        ops.tree_best_split(np.zeros((1, 256, 4)), np.zeros(4), criterion="absolute_error")
