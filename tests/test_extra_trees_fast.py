"""The packed-row random splitter's shortcuts (random_rows.h): a child's code ranges taken during
its parent's partition instead of a pass of its own, kept per node until the child is searched or
found to be a leaf. Oracle: the gather path on column-major codes (no packed rows), which must give
the same trees under every growth rule that makes leaves early or leaves nodes unexpanded. Also the
Forest fields (tree/_tree.py) against their plain NumPy definition."""

import numpy as np
import pytest
from conftest import supported_isas

from forgeml import ops
from forgeml.tree._tree import TREE_FIELDS, Forest

_KEYS = ("offsets", "feature", "thr_bin", "nan_left", "left", "right", "n_samples")


def _codes(n, d, k, seed, nan=0.03):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    X[rng.random((n, d)) < nan] = np.nan
    X[:, d // 2] = 1.5  # a constant column
    X[:, 0] = np.round(X[:, 0] * 2)  # few distinct values: many constant features in small nodes
    edges, n_edges = ops.tree_bin_edges(X, max_bins=255)
    y = ((np.nan_to_num(X[:, 1]) > 0).astype(np.int32) + (rng.random(n) < 0.3) * rng.integers(0, k, n)) % k
    return ops.tree_bin_codes(X, edges, n_edges), y.astype(np.int32), edges


def _same(a, b):
    for key in _KEYS:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    np.testing.assert_allclose(a["value"], b["value"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(a["impurity"], b["impurity"], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("isa", supported_isas("portable"), indirect=True)
@pytest.mark.parametrize(
    "rules",
    [
        {},
        {"max_depth": 7},
        {"min_samples_leaf": 5},
        {"min_samples_split": 40},
        {"max_leaf_nodes": 37},  # best-first: nodes left unexpanded keep their children's ranges
        {"max_leaf_nodes": 1000, "min_samples_leaf": 2},
        {"min_impurity_decrease": 2e-4},
    ],
)
@pytest.mark.parametrize("d,k", [(9, 2), (50, 2), (77, 3), (31, 8)])  # 8: the most classes packed rows count
def test_child_ranges_from_partition_match_gather_path(isa, rules, d, k):
    codes, y, _ = _codes(3001, d, k, seed=d + k)
    w = np.ones(len(y))
    kw = dict(
        criterion="gini" if d != 77 else "entropy",
        n_classes=k,
        max_features=max(1, int(np.sqrt(d))),
        random_split=True,
        **rules,
    )
    packed = ops.tree_grow_forest(codes, y, w, [7, 8, 9], threads=2, **kw)
    gather = ops.tree_grow_forest(np.asfortranarray(codes), y, w, [7, 8, 9], **kw)
    _same(packed, gather)
    assert np.sum(packed["feature"] >= 0) > 30  # trees with many internal nodes
    if "max_leaf_nodes" in rules:
        for t in range(3):
            leaves = np.sum(packed["feature"][packed["offsets"][t] : packed["offsets"][t + 1]] < 0)
            assert leaves <= rules["max_leaf_nodes"]


@pytest.mark.parametrize("isa", supported_isas("portable"), indirect=True)
def test_packed_rows_deep_trees_reuse_thread_buffers(isa):
    """Many trees on two threads (each thread's buffers and range slots reused tree after tree,
    with trees of different sizes in between) grow the same trees as one at a time."""
    codes, y, _ = _codes(2000, 20, 2, seed=3)
    kw = dict(criterion="gini", n_classes=2, max_features=4, random_split=True)
    seeds = list(range(12))
    small, _, _ = _codes(300, 20, 2, seed=4)
    ops.tree_grow_forest(small, y[:300], np.ones(300), [1, 2, 3], threads=2, **kw)  # smaller trees first
    together = ops.tree_grow_forest(codes, y, np.ones(len(y)), seeds, threads=2, **kw)
    for t in (0, 5, 11):
        alone = ops.tree_grow_forest(np.asfortranarray(codes), y, np.ones(len(y)), [seeds[t]], **kw)
        sl = slice(together["offsets"][t], together["offsets"][t + 1])
        for key in ("feature", "thr_bin", "nan_left", "left", "right", "n_samples"):
            np.testing.assert_array_equal(together[key][sl], alone[key], err_msg=key)


def test_forest_fields_match_numpy_definition():
    codes, y, edges = _codes(1500, 12, 3, seed=5)
    g = ops.tree_grow_forest(
        codes, y, np.ones(len(y)), [1, 2], criterion="gini", n_classes=3, max_features=3, random_split=True
    )
    f = Forest(g, edges, 12)
    internal = g["feature"] >= 0
    assert internal.any() and (~internal).any()
    want_thr = np.full(len(internal), -2.0)
    want_thr[internal] = edges[g["feature"][internal], g["thr_bin"][internal]]
    assert f.feature.dtype == np.intp and f.threshold.dtype == np.float64
    np.testing.assert_array_equal(f.feature, np.where(internal, g["feature"], -2))
    np.testing.assert_array_equal(f.threshold, want_thr)
    np.testing.assert_array_equal(f.children_left, g["left"])
    np.testing.assert_array_equal(f.children_right, g["right"])
    assert f.children_left.dtype == np.intp and f.missing_go_to_left.dtype == np.uint8
    np.testing.assert_array_equal(f.missing_go_to_left, g["nan_left"])
    empty = {key: g[key][:0] for key in g}
    empty["offsets"] = np.zeros(1, np.int64)
    e = Forest(empty, edges, 12)
    assert e.threshold.shape == (0,) and e.threshold.dtype == np.float64 and e.feature.dtype == np.intp


@pytest.mark.parametrize(
    "kw",
    [
        dict(criterion="gini", n_classes=3, max_features=3, random_split=True),
        dict(criterion="entropy", n_classes=3, max_features=12),
        dict(criterion="squared_error", max_features=5, bootstrap=True, max_depth=6),
    ],
)
def test_forest_fields_written_by_the_binding_match_numpy_path(kw):
    """tree_grow_forest(edges=...) writes Forest's dtypes itself (feature / children intp, threshold
    from the edges): the same Forest as the int32 fields + thr_bin through the NumPy casts."""
    codes, y, edges = _codes(1777, 12, 3, seed=11)
    target = y if "n_classes" in kw else y.astype(np.float64) + np.arange(len(y)) % 7 * 0.25
    seeds = [3, 4, 5]
    plain = ops.tree_grow_forest(codes, target, np.ones(len(y)), seeds, threads=2, **kw)
    final = ops.tree_grow_forest(codes, target, np.ones(len(y)), seeds, threads=2, edges=edges, **kw)
    assert "thr_bin" not in final and final["feature"].dtype == np.intp and final["left"].dtype == np.intp
    a, b = Forest(plain, edges, 12), Forest(final, edges, 12)
    assert np.sum(a.feature >= 0) > 20
    for name in ("offsets", "depth", *TREE_FIELDS):
        x, z = getattr(a, name), getattr(b, name)
        assert x.dtype == z.dtype, name
        np.testing.assert_array_equal(x, z, err_msg=name)
    with pytest.raises(ValueError, match="edges"):
        ops.tree_grow_forest(codes, target, np.ones(len(y)), seeds, edges=edges[:5], **kw)


@pytest.mark.parametrize("isa", supported_isas("portable"), indirect=True)
@pytest.mark.parametrize("d,k", [(140, 11), (9, 2), (23, 7)])
def test_node_statistics_match_the_rows_reaching_each_node(isa, d, k):
    """Each node's class fractions and sample counts are those of the training rows that reach it:
    many classes and features put a node's statistics and constant-feature mask (grow.cpp's
    NodeStats / FeatureMask) past their inline sizes, few keep them inline. Up to 8 classes the
    root's statistics are integer counts (grow.cpp root_counts), beyond the weight sums."""
    from forgeml.ensemble import ExtraTreesClassifier

    rng = np.random.default_rng(d)
    X = rng.standard_normal((700, d)).astype(np.float32)
    X[:, 3] = np.round(X[:, 3])  # few values: constant in many small nodes
    y = (np.argmax(X[:, :k], axis=1) + (rng.random(700) < 0.2) * rng.integers(0, k, 700)) % k
    m = ExtraTreesClassifier(n_estimators=3, random_state=0, n_jobs=2).fit(X, y)
    onehot = np.eye(k)[y]
    for est in m.estimators_:
        t = est.tree_
        paths = t.decision_path(X)
        counts = np.asarray(paths.T @ onehot)
        assert t.node_count > 50
        np.testing.assert_array_equal(t.n_node_samples, counts.sum(axis=1))
        np.testing.assert_array_equal(t.weighted_n_node_samples, counts.sum(axis=1))
        np.testing.assert_allclose(t.value[:, 0, :], counts / counts.sum(axis=1, keepdims=True), rtol=1e-12)
        internal = t.children_left >= 0
        np.testing.assert_array_equal(
            t.n_node_samples[internal],
            t.n_node_samples[t.children_left[internal]] + t.n_node_samples[t.children_right[internal]],
        )


@pytest.mark.parametrize("isa", supported_isas("portable"), indirect=True)
@pytest.mark.parametrize("d,k", [(9, 2), (50, 2), (50, 3), (77, 3)])
@pytest.mark.parametrize("rules", [{}, {"min_samples_leaf": 3}, {"max_leaf_nodes": 50}])
def test_rows_without_nan_take_ranges_without_top(isa, d, k, rules):
    """No NaN code in any row: the partitions skip the largest code (random_rows.h's
    partition_ranges_no_nan, top = hi1 - 1); same trees as the gather path."""
    codes, y, _ = _codes(2500, d, k, seed=d * k, nan=0.0)
    assert not (codes == 255).any()
    kw = dict(criterion="gini", n_classes=k, max_features=max(1, int(np.sqrt(d))), random_split=True, **rules)
    packed = ops.tree_grow_forest(codes, y, np.ones(len(y)), [5, 6], threads=2, **kw)
    gather = ops.tree_grow_forest(np.asfortranarray(codes), y, np.ones(len(y)), [5, 6], **kw)
    _same(packed, gather)
    assert np.sum(packed["feature"] >= 0) > 30


@pytest.mark.parametrize("isa", supported_isas("portable"), indirect=True)
def test_root_rows_kept_between_trees_of_one_call_only(isa):
    """Without bootstrap a thread keeps its packed root rows for the next tree of the same call
    (grow.cpp's PackedRows::root): calls on other codes of the same shape, and bootstrap calls on
    the same codes, grow their own trees (each as grown alone on the gather path)."""
    kw = dict(criterion="gini", n_classes=2, max_features=4, random_split=True)
    a, y, _ = _codes(1500, 20, 2, seed=21)
    b, _, _ = _codes(1500, 20, 2, seed=22)
    w = np.ones(len(y))
    for codes, extra in ((a, {}), (b, {}), (a, {"bootstrap": True}), (b, {})):
        together = ops.tree_grow_forest(codes, y, w, list(range(6)), threads=2, **kw, **extra)
        for t in (0, 3, 5):
            alone = ops.tree_grow_forest(np.asfortranarray(codes), y, w, [t], **kw, **extra)
            sl = slice(together["offsets"][t], together["offsets"][t + 1])
            for key in ("feature", "thr_bin", "nan_left", "left", "right", "n_samples"):
                np.testing.assert_array_equal(together[key][sl], alone[key], err_msg=key)
