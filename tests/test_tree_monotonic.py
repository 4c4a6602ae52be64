"""Monotonic constraints (monotonic_cst) in the C++ growth kernel, checked against their
definition in float64 on the fitted trees' arrays."""

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression

from forgeml import ops
from forgeml.ensemble import RandomForestClassifier, RandomForestRegressor
from forgeml.tree import DecisionTreeClassifier, DecisionTreeRegressor


def _leaf_values_under(t, node, column):
    if t.children_left[node] == -1:
        return [t.value[node, 0, column]]
    return _leaf_values_under(t, t.children_left[node], column) + _leaf_values_under(t, t.children_right[node], column)


def _check_tree(t, cst, column):
    """Every split on a feature with cst = +1 (-1) has all left leaves <= (>=) all right leaves."""
    for node in np.flatnonzero(t.children_left != -1):
        c = cst[t.feature[node]]
        if c == 0:
            continue
        left = np.array(_leaf_values_under(t, t.children_left[node], column))
        right = np.array(_leaf_values_under(t, t.children_right[node], column))
        if c > 0:
            assert left.max() <= right.min() + 1e-12
        else:
            assert left.min() >= right.max() - 1e-12


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("max_leaf_nodes", [None, 37])
def test_regression_tree_is_monotonic(seed, max_leaf_nodes):
    X, y = make_regression(n_samples=301, n_features=5, n_informative=5, random_state=seed)
    X[::11, 0] = np.nan
    cst = np.array([1, -1, 0, 0, 1])
    est = DecisionTreeRegressor(monotonic_cst=cst, random_state=seed, max_leaf_nodes=max_leaf_nodes).fit(X, y)
    _check_tree(est.tree_, cst, 0)
    free = DecisionTreeRegressor(random_state=seed, max_leaf_nodes=max_leaf_nodes).fit(X, y)
    assert est.score(X, y) <= free.score(X, y) + 1e-12
    rng = np.random.default_rng(seed)
    Xt = rng.normal(size=(97, 5))
    up = Xt.copy()
    up[:, 0] += 0.7
    down = Xt.copy()
    down[:, 1] += 0.7
    assert np.all(est.predict(up) >= est.predict(Xt) - 1e-12)
    assert np.all(est.predict(down) <= est.predict(Xt) + 1e-12)


def test_binary_classifier_probability_is_monotonic():
    X, y = make_classification(n_samples=403, n_features=4, n_informative=4, n_redundant=0, random_state=3)
    cst = np.array([1, 0, -1, 0])
    est = DecisionTreeClassifier(monotonic_cst=cst, random_state=0).fit(X, y)
    _check_tree(est.tree_, cst, 1)  # constraints are on the positive class's probability
    np.testing.assert_allclose(est.tree_.value.sum(axis=2), 1.0)
    forest = RandomForestClassifier(n_estimators=5, monotonic_cst=cst, random_state=0).fit(X, y)
    for tree in forest.estimators_:
        _check_tree(tree.tree_, cst, 1)


def test_zero_constraints_give_the_unconstrained_tree():
    X, y = make_regression(n_samples=211, n_features=4, random_state=5)
    a = RandomForestRegressor(n_estimators=3, monotonic_cst=[0, 0, 0, 0], random_state=0).fit(X, y)
    b = RandomForestRegressor(n_estimators=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(a.apply(X), b.apply(X))
    np.testing.assert_allclose(a.predict(X), b.predict(X))


def test_bad_constraints_raise():
    X, y = make_classification(n_samples=50, n_features=3, n_informative=3, n_redundant=0, n_classes=3, random_state=0)
    with pytest.raises(ValueError, match="multiclass"):
        DecisionTreeClassifier(monotonic_cst=[1, 0, 0]).fit(X, y)
    with pytest.raises(ValueError, match="has shape 2"):
        DecisionTreeRegressor(monotonic_cst=[1, 0]).fit(X, y.astype(float))
    with pytest.raises(ValueError, match="-1, 0 or 1"):
        DecisionTreeRegressor(monotonic_cst=[2, 0, 0]).fit(X, y.astype(float))
    codes = np.zeros((4, 3), np.uint8)
    with pytest.raises(ValueError, match="monotonic_cst"):
        ops.tree_grow_forest(codes, np.zeros(4), np.ones(4), [0], criterion="squared_error", monotonic_cst=[1, 0])
