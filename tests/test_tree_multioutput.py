"""Multi-output y (n, k) for forgeml's trees and forests: the k-output criteria against a brute-force
float64 reference, whole trees against scikit-learn where the splits are unambiguous, and the
scikit-learn API shapes (classes_, predict_proba lists, tree_.value, oob attributes)."""

import warnings

import numpy as np
import pytest
import sklearn.ensemble as ske
import sklearn.tree as skt
from sklearn.exceptions import DataConversionWarning

import forgeml.ensemble as fe
import forgeml.tree as ft


def _xlogx(x):
    return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0)), 0.0)


def _node_cost(Y, w, criterion, n_classes):
    """W * impurity of one node, impurity the mean over outputs (scikit-learn's multi-output rule)."""
    W = w.sum()
    total = 0.0
    for o in range(Y.shape[1]):
        y = Y[:, o]
        if criterion in ("gini", "entropy"):
            p = np.array([w[y == c].sum() for c in range(n_classes[o])]) / W
            total += W * (1 - np.sum(p**2) if criterion == "gini" else -np.sum(_xlogx(p)) / np.log(2))
        elif criterion == "squared_error":
            m = np.sum(w * y) / W
            total += np.sum(w * (y - m) ** 2)
        else:  # poisson: half deviance of the mean
            m = np.sum(w * y) / W
            total += np.sum(w * (_xlogx(y) - y * np.log(m)))
    return total / Y.shape[1]


def _brute_force_root(X, Y, w, criterion, n_classes):
    """Best root split over every feature and every boundary between distinct values, float64."""
    best = (np.inf, None)
    for f in range(X.shape[1]):
        vals = np.unique(X[:, f])
        for a, b in zip(vals[:-1], vals[1:]):
            left = X[:, f] <= (a + b) / 2
            if criterion == "poisson" and (min(Y[left].sum(0).min(), Y[~left].sum(0).min()) <= 0):
                continue
            c = _node_cost(Y[left], w[left], criterion, n_classes) + _node_cost(
                Y[~left], w[~left], criterion, n_classes
            )
            if c < best[0] - 1e-9 * abs(best[0] if np.isfinite(best[0]) else 1.0):
                best = (c, (f, a, b))
    return best


@pytest.mark.parametrize("criterion", ["gini", "entropy", "squared_error", "poisson"])
@pytest.mark.parametrize("n,d,k", [(53, 3, 2), (101, 4, 3)])
def test_root_split_matches_brute_force(criterion, n, d, k):
    rng = np.random.default_rng(n * 7 + k)
    X = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.uniform(0.5, 2.0, size=n)
    classify = criterion in ("gini", "entropy")
    if classify:
        n_classes = [2 + o for o in range(k)]
        Y = np.stack([rng.integers(0, n_classes[o], n) for o in range(k)], axis=1)
        est = ft.DecisionTreeClassifier(criterion=criterion, max_depth=1)
    else:
        n_classes = None
        Y = rng.poisson(2.0, size=(n, k)).astype(np.float64) + (criterion == "squared_error") * rng.normal(size=(n, k))
        est = ft.DecisionTreeRegressor(criterion=criterion, max_depth=1)
    est.fit(X, Y, sample_weight=w)
    tr = est.tree_
    cost, (f, a, b) = _brute_force_root(X.astype(np.float64), Y, w, criterion, n_classes)
    assert tr.feature[0] == f
    assert a <= tr.threshold[0] < b
    W = w.sum()
    np.testing.assert_allclose(tr.impurity[0], _node_cost(Y, w, criterion, n_classes) / W, rtol=1e-9, atol=1e-12)
    l, r = tr.children_left[0], tr.children_right[0]
    child = tr.weighted_n_node_samples[l] * tr.impurity[l] + tr.weighted_n_node_samples[r] * tr.impurity[r]
    np.testing.assert_allclose(child, cost, rtol=1e-9, atol=1e-12)
    left = X[:, f] <= tr.threshold[0]
    if classify:
        assert tr.value.shape == (3, k, max(n_classes))
        for o in range(k):
            p = np.array([w[left & (Y[:, o] == c)].sum() for c in range(max(n_classes))]) / w[left].sum()
            np.testing.assert_allclose(tr.value[l, o], p, rtol=1e-12)
    else:
        assert tr.value.shape == (3, k, 1)
        np.testing.assert_allclose(tr.value[l, :, 0], np.average(Y[left], axis=0, weights=w[left]), rtol=1e-12)


def _separable(n, k, seed, classify):
    """Integer features with few values; output o is a function of features o and o + 1 only."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 6, size=(n, k + 2)).astype(np.float64)
    cols = [(X[:, o] >= 3).astype(int) + 2 * (X[:, o + 1] >= 2) for o in range(k)]
    Y = np.stack(cols, axis=1)
    if classify:
        return X, np.array(["a", "b", "c", "d"])[Y]
    return X, Y * 1.5 + np.arange(k)


@pytest.mark.parametrize("k", [2, 3])
def test_tree_classifier_matches_sklearn(k):
    X, Y = _separable(301, k, k, classify=True)
    ours = ft.DecisionTreeClassifier(random_state=0).fit(X, Y)
    ref = skt.DecisionTreeClassifier(random_state=0).fit(X, Y)
    assert ours.n_outputs_ == ref.n_outputs_ == k
    for a, b in zip(ours.classes_, ref.classes_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ours.n_classes_, ref.n_classes_)
    Xt, _ = _separable(97, k, 100 + k, classify=True)
    np.testing.assert_array_equal(ours.predict(Xt), ref.predict(Xt))
    po, pr = ours.predict_proba(Xt), ref.predict_proba(Xt)
    assert isinstance(po, list) and len(po) == k
    for a, b in zip(po, pr):
        np.testing.assert_allclose(a, b)
    lo = ours.predict_log_proba(Xt)
    np.testing.assert_allclose(np.exp(lo[1]), po[1])
    assert ours.tree_.value.shape[1:] == ref.tree_.value.shape[1:]
    np.testing.assert_allclose(ours.tree_.impurity[0], ref.tree_.impurity[0])
    # equal-gain splits may come in another order (other importances), never on the unused feature
    assert ours.feature_importances_.sum() == pytest.approx(1.0) and ours.feature_importances_[-1] == 0
    assert ours.get_n_leaves() == ref.get_n_leaves()
    assert ours.apply(Xt).shape == (97,)
    assert ours.decision_path(Xt).shape == (97, ours.tree_.node_count)


@pytest.mark.parametrize("criterion", ["squared_error", "poisson"])
def test_tree_regressor_matches_sklearn(criterion):
    X, Y = _separable(257, 3, 7, classify=False)
    ours = ft.DecisionTreeRegressor(criterion=criterion, random_state=0).fit(X, Y)
    ref = skt.DecisionTreeRegressor(criterion=criterion, random_state=0).fit(X, Y)
    Xt = X[::3]  # seen cells: where the splits fall between them does not matter
    assert ours.predict(Xt).shape == (86, 3)
    np.testing.assert_allclose(ours.predict(Xt), ref.predict(Xt))
    assert ours.tree_.value.shape[1:] == (3, 1)
    np.testing.assert_allclose(ours.tree_.impurity[0], ref.tree_.impurity[0], rtol=1e-12)
    assert ours.feature_importances_.sum() == pytest.approx(1.0)  # split order among near-ties differs
    assert ours.score(Xt, ref.predict(Xt)) == pytest.approx(1.0)


def test_column_y_is_single_output():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(83, 4))
    y = (X[:, 0] + 0.3 * rng.normal(size=83) > 0).astype(int)
    a = ft.DecisionTreeClassifier(random_state=1).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataConversionWarning)  # trees take a column y silently (as sklearn)
        b = ft.DecisionTreeClassifier(random_state=1).fit(X, y[:, None])
    assert b.n_outputs_ == 1
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_array_equal(a.tree_.value, b.tree_.value)
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        f = fe.RandomForestRegressor(n_estimators=5, random_state=0).fit(X, y[:, None].astype(float))
    g = fe.RandomForestRegressor(n_estimators=5, random_state=0).fit(X, y.astype(float))
    assert f.predict(X).shape == (83,)
    np.testing.assert_array_equal(f.predict(X), g.predict(X))


@pytest.mark.parametrize("cls", [fe.RandomForestClassifier, fe.ExtraTreesClassifier])
def test_forest_classifier(cls):
    X, Y = _separable(301, 2, 11, classify=True)
    Yb = (Y == "a").astype(int)  # multilabel-indicator: OOB is defined for it
    est = cls(n_estimators=40, bootstrap=True, oob_score=True, random_state=0).fit(X, Yb)
    ref = getattr(ske, cls.__name__)(n_estimators=40, bootstrap=True, random_state=0).fit(X, Yb)
    assert est.predict(X).shape == (301, 2)
    assert np.mean(est.predict(X) == Yb) > 0.95
    assert np.mean(est.predict(X) == ref.predict(X)) > 0.95
    assert est.oob_decision_function_.shape == (301, 2, 2)
    assert 0.8 < est.oob_score_ <= 1.0
    proba = est.predict_proba(X)
    assert len(proba) == 2 and proba[0].shape == (301, 2)
    np.testing.assert_allclose(proba[1].sum(axis=1), 1.0)
    assert est.feature_importances_.sum() == pytest.approx(1.0)
    assert est.apply(X).shape == (301, 40)
    assert est.estimators_[0].n_outputs_ == 2
    np.testing.assert_array_equal(est.estimators_[0].tree_.value.shape[1:], (2, 2))
    est = cls(n_estimators=5, oob_score=True, bootstrap=True, random_state=0)
    with pytest.raises(ValueError, match="multiclass-multioutput"):
        est.fit(X, Y)


@pytest.mark.parametrize("cls", [fe.RandomForestRegressor, fe.ExtraTreesRegressor])
def test_forest_regressor(cls):
    X, Y = _separable(301, 3, 12, classify=False)
    est = cls(n_estimators=20, bootstrap=True, oob_score=True, random_state=0).fit(X, Y)
    assert est.predict(X).shape == (301, 3)
    assert est.oob_prediction_.shape == (301, 3)
    assert est.oob_score_ > 0.9
    assert est.score(X, Y) > 0.95


def test_class_weight_per_output():
    X, Y = _separable(201, 2, 13, classify=True)
    cw = [{"a": 3.0, "b": 1.0, "c": 1.0, "d": 2.0}, {"a": 1.0, "b": 5.0, "c": 1.0, "d": 1.0}]
    a = ft.DecisionTreeClassifier(class_weight=cw, max_depth=3, random_state=0).fit(X, Y)
    sw = np.array([cw[0][u] * cw[1][v] for u, v in Y])
    b = ft.DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, Y, sample_weight=sw)
    np.testing.assert_array_equal(a.tree_.value, b.tree_.value)
    with pytest.raises(ValueError):
        ft.DecisionTreeClassifier(class_weight=cw[0]).fit(X, Y)
    f = fe.RandomForestClassifier(n_estimators=5, class_weight="balanced_subsample", random_state=0).fit(X, Y)
    assert f.predict(X).shape == (201, 2)


def test_monotonic_refuses_multi_output():
    X, Y = _separable(50, 2, 14, classify=False)
    with pytest.raises(ValueError, match="multiple outputs"):
        ft.DecisionTreeRegressor(monotonic_cst=[1, 0, 0, 0]).fit(X, Y)
