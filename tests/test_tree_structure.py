"""Tree structure API: pruning (vs scikit-learn on the same data), decision_path/apply, sparse X,
warm start, estimators_samples_, export functions."""

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.tree as sk_tree
from sklearn.datasets import make_classification, make_regression

from sklearn.tree import export_text as sk_export_text

from forgeml.ensemble import RandomForestClassifier, RandomForestRegressor
from forgeml.tree import DecisionTreeClassifier, DecisionTreeRegressor, export_graphviz, export_text


def _data(classify, n=157, d=5, seed=0):
    # rounded values: fewer distinct values than bins, so forgeml's binned trees are exact trees
    if classify:
        X, y = make_classification(n_samples=n, n_features=d, n_informative=3, random_state=seed)
    else:
        X, y = make_regression(n_samples=n, n_features=d, noise=5.0, random_state=seed)
    return np.round(X, 1).astype(np.float32), y


def _optimal_subtree_leaves(t, alpha):
    """Reference (float64, recursive): the smallest subtree minimising sum over leaves of
    R(leaf) + alpha, R = weighted_n / weighted_n(root) * impurity; returns its leaf count and
    total leaf R."""
    R = t.weighted_n_node_samples * t.impurity / t.weighted_n_node_samples[0]

    def best(node):  # (cost, leaves, leaf R)
        if t.children_left[node] == -1:
            return R[node] + alpha, 1, R[node]
        cl, cr = best(t.children_left[node]), best(t.children_right[node])
        keep = cl[0] + cr[0]
        if R[node] + alpha <= keep * (1 + 1e-12):  # ties collapse (smallest optimal subtree)
            return R[node] + alpha, 1, R[node]
        return keep, cl[1] + cr[1], cl[2] + cr[2]

    return best(0)[1:]


@pytest.mark.parametrize("classify", [True, False])
def test_pruning_path_and_pruned_trees_match_the_optimal_subtrees(classify):
    X, y = _data(classify)
    est = (DecisionTreeClassifier if classify else DecisionTreeRegressor)(random_state=0)
    full = est.fit(X, y).tree_
    path = est.cost_complexity_pruning_path(X, y)
    alphas, imps = path.ccp_alphas, path.impurities
    assert alphas[0] == 0 and np.all(np.diff(alphas) >= 0) and np.all(np.diff(imps) >= -1e-12)
    np.testing.assert_allclose(imps[0], _optimal_subtree_leaves(full, 0.0)[1], rtol=1e-12)
    for i in range(1, len(alphas)):
        # between two path alphas the optimal subtree is the pruned tree and has that impurity
        mid = (alphas[i] + alphas[i + 1]) / 2 if i + 1 < len(alphas) else alphas[i] * 1.5
        if i + 1 < len(alphas) and np.isclose(alphas[i], alphas[i + 1], rtol=1e-9):
            continue
        leaves, leaf_r = _optimal_subtree_leaves(full, mid)
        pruned = est.set_params(ccp_alpha=mid).fit(X, y)
        assert pruned.get_n_leaves() == leaves
        np.testing.assert_allclose(leaf_r, imps[i], rtol=1e-9, atol=1e-12)
    assert est.set_params(ccp_alpha=alphas[-1] * 1.01).fit(X, y).tree_.node_count == 1


def test_pruned_tree_is_subtree_with_consistent_arrays():
    X, y = _data(True, n=301, d=7, seed=3)
    full = DecisionTreeClassifier(random_state=1).fit(X, y)
    path = full.cost_complexity_pruning_path(X, y)
    small = DecisionTreeClassifier(random_state=1, ccp_alpha=path.ccp_alphas[-3]).fit(X, y)
    t = small.tree_
    assert 1 < t.node_count < full.tree_.node_count
    leaves = t.children_left == -1
    assert np.all(t.feature[leaves] == -2) and np.all(t.feature[~leaves] >= 0)
    # every internal node's samples are its children's
    internal = np.flatnonzero(~leaves)
    assert np.all(
        t.n_node_samples[internal]
        == t.n_node_samples[t.children_left[internal]] + t.n_node_samples[t.children_right[internal]]
    )
    np.testing.assert_array_equal(small.apply(X), t.apply(X))


@pytest.mark.parametrize("cls", [DecisionTreeClassifier, DecisionTreeRegressor])
def test_decision_path_ends_at_apply_leaf(cls):
    X, y = _data(cls is DecisionTreeClassifier, n=211, seed=5)
    X[::7, 2] = np.nan
    est = cls(random_state=0, max_depth=6).fit(X, y)
    path = est.decision_path(X).toarray()
    leaf = est.apply(X)
    assert path.shape == (len(X), est.tree_.node_count)
    assert np.all(path[np.arange(len(X)), leaf] == 1)
    assert np.all(path[:, 0] == 1)
    is_leaf = est.tree_.children_left == -1
    assert np.all(path[:, is_leaf].sum(axis=1) == 1)
    # each visited non-root node's parent is visited too
    parent = np.full(est.tree_.node_count, -1)
    internal = np.flatnonzero(~is_leaf)
    parent[est.tree_.children_left[internal]] = internal
    parent[est.tree_.children_right[internal]] = internal
    rows, nodes = np.nonzero(path[:, 1:])
    assert np.all(path[rows, parent[nodes + 1]] == 1)
    np.testing.assert_allclose(
        est.tree_.predict(X)[:, 0, :].squeeze(),
        est.predict_proba(X)[:, :].squeeze() if cls is DecisionTreeClassifier else est.predict(X),
    )


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_X_gives_the_dense_tree(fmt):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(173, 9)) * (rng.random((173, 9)) < 0.3)
    y = (X[:, 0] + X[:, 3] > 0).astype(int)
    d = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    s = RandomForestClassifier(n_estimators=5, random_state=0).fit(sp.coo_matrix(X).asformat(fmt), y)
    np.testing.assert_array_equal(d.apply(X), s.apply(sp.csr_matrix(X)))
    np.testing.assert_allclose(d.predict_proba(X), s.predict_proba(sp.csr_matrix(X)))


def test_sparse_y_rejected():
    with pytest.raises(ValueError, match="sparse multilabel-indicator"):
        RandomForestClassifier().fit(np.eye(3), sp.csr_matrix(np.eye(3)))


@pytest.mark.parametrize("cls", [RandomForestClassifier, RandomForestRegressor])
def test_warm_start_equals_one_fit(cls):
    X, y = _data(cls is RandomForestClassifier, n=199, seed=2)
    ws = cls(n_estimators=4, random_state=7, warm_start=True).fit(X, y)
    ws.set_params(n_estimators=9).fit(X, y)
    one = cls(n_estimators=9, random_state=7).fit(X, y)
    np.testing.assert_array_equal(ws.apply(X), one.apply(X))
    with pytest.warns(UserWarning, match="without increasing"):
        ws.fit(X, y)
    with pytest.raises(ValueError, match="must be larger or equal"):
        ws.set_params(n_estimators=3).fit(X, y)


def test_estimators_samples_are_the_bootstrap():
    X, y = _data(True, n=120)
    est = RandomForestClassifier(n_estimators=6, max_samples=0.5, random_state=0).fit(X, y)
    samples = est.estimators_samples_
    assert len(samples) == 6 and all(s.dtype == np.int32 and len(s) == 60 for s in samples)
    oob = RandomForestClassifier(n_estimators=6, max_samples=0.5, random_state=0, oob_score=True).fit(X, y)
    # rows never drawn by any tree have no OOB vote: consistent with the samples
    drawn = np.zeros(len(X), dtype=int)
    for s in samples:
        drawn += np.isin(np.arange(len(X)), s)
    assert np.all(np.isfinite(oob.oob_decision_function_))
    assert np.all(drawn <= 6)


def test_export_functions_match_sklearn_output_format():
    X, y = _data(True, n=90)
    est = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
    text = export_text(est)
    assert text == sk_export_text(_sklearn_twin(est))
    assert text.count("|--- class:") == est.get_n_leaves()
    dot = export_graphviz(est)
    assert dot.startswith("digraph Tree") and dot.count("->") == est.tree_.node_count - 1
    with pytest.raises(ValueError, match="decision_tree"):
        export_text(object())


def _sklearn_twin(est):
    """scikit-learn's tree with forgeml's fitted arrays copied in (the output reference)."""
    from sklearn.tree._tree import Tree as SkTree

    t = est.tree_
    sk = sk_tree.DecisionTreeClassifier(max_depth=2)
    sk.fit(np.zeros((2, est.n_features_in_)), est.classes_[:2])  # fitted attributes, then replaced
    sk.classes_, sk.n_classes_ = est.classes_, est.n_classes_
    tree = SkTree(est.n_features_in_, np.array([est.n_classes_], dtype=np.intp), 1)
    nodes = np.zeros(t.node_count, dtype=sk.tree_.__getstate__()["nodes"].dtype)
    for field, name in (
        ("left_child", "children_left"),
        ("right_child", "children_right"),
        *(
            (n, n)
            for n in (
                "feature",
                "threshold",
                "impurity",
                "n_node_samples",
                "weighted_n_node_samples",
                "missing_go_to_left",
            )
        ),
    ):
        nodes[field] = getattr(t, name)
    tree.__setstate__(
        {"max_depth": t.max_depth, "node_count": t.node_count, "nodes": nodes, "values": np.ascontiguousarray(t.value)}
    )
    sk.tree_ = tree
    return sk


@pytest.mark.parametrize("classify", [True, False])
@pytest.mark.parametrize("w", [0.7, 0.1, 3.3])
def test_constant_non_integer_weights_never_split_a_pure_node(classify, w):
    """With w = 0.7 the impurity of a pure node is a few ulps, not 0: such nodes are leaves with
    impurity 0, as with unit weights (they were split on before)."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    if not classify:
        y = (y % 3).astype(np.float64) * 1.7
    cls = DecisionTreeClassifier if classify else DecisionTreeRegressor
    model = cls(random_state=0).fit(X, y, sample_weight=np.full(len(y), w))
    t = model.tree_
    in_node = model.decision_path(X).toarray().astype(bool)
    for node in np.flatnonzero(t.children_left >= 0):
        assert np.unique(y[in_node[:, node]]).size > 1, f"node {node} is pure but was split"
    pure_leaves = [n for n in np.flatnonzero(t.children_left < 0) if np.unique(y[in_node[:, n]]).size == 1]
    # regression sums reach a leaf through subtractions: what is left is rounding of the root's sums
    tol = 0.0 if classify else 1e-12 * float(np.sum(y**2))
    assert pure_leaves and np.all(np.abs(t.impurity[pure_leaves]) <= tol)
