"""The random splitter (ExtraTree*, ExtraTrees*): kernel invariants checked in NumPy on the grown
trees, determinism, and the estimators' scikit-learn behaviour."""

import numpy as np
import pytest
from conftest import supported_isas
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


def _class_data(seed, n=311, d=7, k=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    X[rng.random((n, d)) < 0.08] = np.nan
    X[:, 2] = np.round(X[:, 2])  # few distinct values: gaps between occupied bins
    X[:, 4] = 1.0  # constant
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) > 0).astype(np.int32) + (rng.random(n) < 0.2)
    edges, n_edges = ops.tree_bin_edges(X, max_bins=40)
    return ops.tree_bin_codes(X, edges, n_edges), np.minimum(y, k - 1).astype(np.int32)


@pytest.mark.parametrize("criterion", ["gini", "entropy", "squared_error", "poisson"])
@pytest.mark.parametrize("weights", ["unit", "counts", "fractional"])
def test_random_split_rows_match_histogram_path(criterion, weights):
    """The row-pass random splitter (default) against column-major codes (same trees), and against
    the per-node histogram path (hist_subtraction=False): the same trees where the statistics are
    integers (classification with integer weights; elsewhere the two sum in different orders and
    splits that tie exactly in small nodes go either way), else the same node statistics, checked
    in NumPy on each tree's own partition."""
    codes, yc = _class_data(4)
    rng = np.random.default_rng(5)
    w = {
        "unit": np.ones(len(yc)),
        "counts": rng.integers(0, 4, len(yc)).astype(np.float64),
        "fractional": rng.uniform(0.1, 2.0, len(yc)),
    }[weights]
    classify = criterion in ("gini", "entropy")
    y = yc if classify else (yc * 1.5 + rng.random(len(yc))).astype(np.float64)
    kw = dict(criterion=criterion, n_classes=3 if classify else 1, max_features=3, random_split=True)
    rows = ops.tree_grow_forest(codes, y, w, [11], **kw)
    hist = ops.tree_grow_forest(codes, y, w, [11], hist_subtraction=False, **kw)
    cols = ops.tree_grow_forest(np.asfortranarray(codes), y, w, [11], **kw)
    exact = [cols, hist] if classify and weights != "fractional" else [cols]
    for other in exact:
        for key in ("offsets", "feature", "thr_bin", "nan_left", "left", "right", "n_samples"):
            np.testing.assert_array_equal(rows[key], other[key], err_msg=key)
        np.testing.assert_allclose(rows["value"], other["value"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(rows["impurity"], other["impurity"], rtol=1e-7, atol=1e-9)
    for g in (rows, hist):
        assert not np.any(g["feature"] == 4)  # the constant feature is never split on
        for node, r in _node_rows(g, codes, w).items():
            assert g["n_samples"][node] == len(r) and len(r) > 0
            wr = w[r]
            np.testing.assert_allclose(g["weighted_n"][node], wr.sum(), rtol=1e-12)
            if classify:
                frac = np.bincount(y[r], weights=wr, minlength=3) / wr.sum()
                np.testing.assert_allclose(g["value"][node], frac, rtol=1e-9, atol=1e-12)
            else:
                np.testing.assert_allclose(g["value"][node, 0], np.average(y[r], weights=wr), rtol=1e-9)


@pytest.mark.parametrize("isa", supported_isas("portable"), indirect=True)
@pytest.mark.parametrize("d", [1, 15, 16, 31, 50, 63, 64, 100, 127, 128])
@pytest.mark.parametrize("k", [2, 3, 8])
@pytest.mark.parametrize("nan", [True, False])
def test_packed_rows_match_gather_path(isa, d, k, nan):
    """Classification with unit weights on row-major codes of < 128 features runs on packed rows
    (random_rows.h, one row width per d: 16 .. 128 bytes, the class byte after the codes); the
    gather path on column-major codes is its oracle: the same trees. Odd row counts above 255
    carry the byte counters over (nodes up to 255 rows count in bytes), NaN codes take the NaN
    pass, a constant column is skipped; without NaN, leaves of at least 1-3 rows and, for 3
    classes, the entropy criterion."""
    rng = np.random.default_rng(d * 10 + k)
    n = 1031
    X = rng.standard_normal((n, d)).astype(np.float32)
    if nan:
        X[rng.random((n, d)) < 0.05] = np.nan
    if d > 2:
        X[:, d // 2] = 3.0  # constant
        X[:, 1] = np.round(X[:, 1])  # few distinct values
    edges, n_edges = ops.tree_bin_edges(X, max_bins=255 if d % 2 else 17)
    codes = ops.tree_bin_codes(X, edges, n_edges)
    y = ((np.nan_to_num(X[:, 0]) > 0).astype(np.int32) + rng.integers(0, k, n)) % k
    y = y.astype(np.int32)
    w = np.ones(n)
    kw = dict(
        criterion="entropy" if k == 3 and not nan else "gini",
        n_classes=k,
        max_features=max(1, int(np.sqrt(d))),
        random_split=True,
        min_samples_leaf=1 if nan else 1 + d % 3,
    )
    packed = ops.tree_grow_forest(codes, y, w, [3, 4], threads=2, **kw)
    gather = ops.tree_grow_forest(np.asfortranarray(codes), y, w, [3, 4], **kw)
    for key in ("offsets", "feature", "thr_bin", "nan_left", "left", "right", "n_samples"):
        np.testing.assert_array_equal(packed[key], gather[key], err_msg=key)
    np.testing.assert_allclose(packed["value"], gather["value"], rtol=1e-12, atol=0)
    assert len(packed["feature"]) > 100  # deep trees: many nodes of every size
    for t in range(2):  # node statistics against the rows each node holds
        sl = slice(packed["offsets"][t], packed["offsets"][t + 1])
        g = {key: packed[key][sl] for key in ("feature", "thr_bin", "nan_left", "left", "right")}
        for node, r in _node_rows(g, codes, w).items():
            assert packed["n_samples"][sl][node] == len(r)
            np.testing.assert_allclose(packed["value"][sl][node] * len(r), np.bincount(y[r], minlength=k), rtol=1e-12)


def test_random_threshold_uniform_over_the_node_bin_range():
    """scikit-learn draws the threshold uniformly between the node's minimum and maximum: on the
    bin scale a gap between occupied bins is drawn in proportion to its width."""
    codes = np.repeat(np.array([[0], [1], [9]], dtype=np.uint8), 20, axis=0)  # occupied bins 0, 1, 9
    y = np.arange(len(codes), dtype=np.float64)
    w = np.ones(len(y))
    kw = dict(criterion="squared_error", random_split=True, max_depth=1)
    thr = np.array([ops.tree_grow_forest(codes, y, w, [s], **kw)["thr_bin"][0] for s in range(400)])
    assert thr.min() >= 0 and thr.max() <= 8
    assert set(thr.tolist()) == set(range(9))  # every bin of the range is drawn
    upper = np.mean(thr >= 1)  # the gap between bins 1 and 9: 8 of the 9 bins
    assert 0.8 < upper < 0.95
