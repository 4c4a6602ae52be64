"""The random splitter (ExtraTree*, ExtraTrees*): kernel invariants checked in NumPy on the grown
trees, determinism, and the estimators' scikit-learn behaviour."""

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression

from forgeml import ops
from forgeml.ensemble import ExtraTreesClassifier, ExtraTreesRegressor
from forgeml.tree import DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor


def _binned(seed=0, n=257, d=6):
    X, y = make_regression(n_samples=n, n_features=d, noise=1.0, random_state=seed)
    X = X.astype(np.float32)
    X[::13, 1] = np.nan
    edges, n_edges = ops.tree_bin_edges(X, max_bins=32)
    return ops.tree_bin_codes(X, edges, n_edges), y


def _node_rows(g, codes, w):
    """Rows of every node (float64 / NumPy replay of the partition)."""
    rows = {0: np.flatnonzero(w > 0)}
    for node in range(len(g["feature"])):
        f = g["feature"][node]
        if f < 0:
            continue
        r = rows[node]
        c = codes[r, f].astype(int)
        left = np.where(c == 255, bool(g["nan_left"][node]), c <= g["thr_bin"][node])
        rows[g["left"][node]], rows[g["right"][node]] = r[left], r[~left]
    return rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_split_node_statistics_match_numpy(seed):
    codes, y = _binned(seed)
    w = np.ones(len(y))
    g = ops.tree_grow_forest(codes, y, w, [seed], criterion="squared_error", random_split=True, max_depth=6)
    rows = _node_rows(g, codes, w)
    for node, r in rows.items():
        assert g["n_samples"][node] == len(r)
        np.testing.assert_allclose(g["value"][node, 0], y[r].mean(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(g["impurity"][node], y[r].var(), rtol=1e-7, atol=1e-7)
    # every split separates the node's rows (a boundary between occupied bins)
    internal = g["feature"] >= 0
    assert np.all(g["n_samples"][g["left"][internal]] > 0) and np.all(g["n_samples"][g["right"][internal]] > 0)


def test_random_split_differs_from_best_and_is_deterministic():
    codes, y = _binned(3)
    w = np.ones(len(y))
    kw = dict(criterion="squared_error", max_depth=4)
    best = ops.tree_grow_forest(codes, y, w, [5], **kw)
    rnd = ops.tree_grow_forest(codes, y, w, [5], random_split=True, **kw)
    again = ops.tree_grow_forest(codes, y, w, [5], random_split=True, threads=2, **kw)
    assert not np.array_equal(best["thr_bin"], rnd["thr_bin"])
    for k in ("feature", "thr_bin", "left", "value"):
        np.testing.assert_array_equal(rnd[k], again[k])
    # the full-histogram path (parent minus sibling) and the per-node path draw the same splits
    plain = ops.tree_grow_forest(codes, y, w, [5], random_split=True, hist_subtraction=False, **kw)
    for k in ("feature", "thr_bin", "nan_left"):
        np.testing.assert_array_equal(rnd[k], plain[k])
    np.testing.assert_allclose(rnd["value"], plain["value"], rtol=1e-12)


def test_extra_trees_forests_fit_and_match_across_n_jobs():
    X, y = make_classification(n_samples=400, n_features=8, random_state=0)
    a = ExtraTreesClassifier(n_estimators=20, random_state=0, n_jobs=1).fit(X, y)
    b = ExtraTreesClassifier(n_estimators=20, random_state=0, n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(a.apply(X), b.apply(X))
    assert a.score(X, y) > 0.95  # all rows, fully grown
    assert not a.bootstrap and a.estimators_[0].splitter == "random"
    Xr, yr = make_regression(n_samples=300, n_features=5, noise=1.0, random_state=1)
    reg = ExtraTreesRegressor(n_estimators=20, random_state=0).fit(Xr, yr)
    assert reg.score(Xr, yr) > 0.95
    single = ExtraTreeRegressor(random_state=0).fit(Xr, yr)
    best = DecisionTreeRegressor(random_state=0).fit(Xr, yr)
    assert single.get_depth() >= best.get_depth()  # random cuts need more of them
    assert ExtraTreeClassifier().max_features == "sqrt"
