"""The poisson criterion in the C++ growth kernel against a float64 NumPy reference: node
impurities are half Poisson deviances, and the root split is the best one by brute force."""

import numpy as np
import pytest

from forgeml import ops
from forgeml.ensemble import RandomForestRegressor
from forgeml.tree import DecisionTreeRegressor


def _deviance(y, w):
    mu = np.sum(w * y) / np.sum(w)
    t = np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / mu), 0.0)
    return np.sum(w * (t - y + mu)) / np.sum(w)


def _data(seed, n=233, d=4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.poisson(np.exp(0.8 * X[:, 0] - 0.5 * X[:, 2])).astype(np.float64)
    edges, n_edges = ops.tree_bin_edges(X, max_bins=24)
    return X, ops.tree_bin_codes(X, edges, n_edges), y


@pytest.mark.parametrize("seed", [0, 1])
def test_poisson_impurities_and_root_split_match_numpy(seed):
    _, codes, y = _data(seed)
    w = np.random.default_rng(seed + 10).random(len(y)) + 0.5
    g = ops.tree_grow_forest(codes, y, w, [seed], criterion="poisson", max_depth=4)
    rows = {0: np.arange(len(y))}
    for node in range(len(g["feature"])):
        r = rows[node]
        np.testing.assert_allclose(g["impurity"][node], _deviance(y[r], w[r]), rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(g["value"][node, 0], np.sum(w[r] * y[r]) / np.sum(w[r]), rtol=1e-12)
        f = g["feature"][node]
        if f >= 0:
            left = codes[r, f] <= g["thr_bin"][node]
            rows[g["left"][node]], rows[g["right"][node]] = r[left], r[~left]
    # brute force over every boundary of every feature at the root: least total deviance
    best = np.inf
    for f in range(codes.shape[1]):
        for b in np.unique(codes[:, f])[:-1]:
            left = codes[:, f] <= b
            parts = [left, ~left]
            if any(np.sum(y[p]) <= 0 for p in parts):
                continue
            best = min(best, sum(_deviance(y[p], w[p]) * np.sum(w[p]) for p in parts))
    root_left = rows[g["left"][0]]
    root_right = rows[g["right"][0]]
    got = _deviance(y[root_left], w[root_left]) * np.sum(w[root_left]) + _deviance(
        y[root_right], w[root_right]
    ) * np.sum(w[root_right])
    np.testing.assert_allclose(got, best, rtol=1e-9)


def test_poisson_children_never_have_zero_sum():
    X, _, y = _data(3)
    y[X[:, 1] > 0.3] = 0.0
    est = DecisionTreeRegressor(criterion="poisson", random_state=0).fit(X, y)
    assert np.all(est.tree_.value[:, 0, 0] > 0)
    forest = RandomForestRegressor(n_estimators=4, criterion="poisson", random_state=0).fit(X, y)
    assert np.all(forest.predict(X) > 0)


def test_poisson_rejects_bad_targets():
    X = np.zeros((3, 1))
    with pytest.raises(ValueError, match="negative"):
        DecisionTreeRegressor(criterion="poisson").fit(X, [1.0, -1.0, 2.0])
    with pytest.raises(ValueError, match="not positive"):
        DecisionTreeRegressor(criterion="poisson").fit(X, [0.0, 0.0, 0.0])
