"""Sparse X in trees and forests: binning straight from the sparse columns gives the same cut
points, codes and trees as the dense matrix; CSR prediction by row blocks; scikit-learn's
FEATURE_THRESHOLD (values within 1e-7 are one value) and zero's own bin in quantile binning."""

import numpy as np
import pytest
import scipy.sparse as sp

from forgeml import ops
from forgeml.ensemble import ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor
from forgeml.ops import tree as tree_ops
from forgeml.tree import DecisionTreeClassifier, DecisionTreeRegressor
from forgeml.tree._tree import TREE_FIELDS as FIELDS  # the tree_ arrays compared


def sparse_data(n, d, density, seed, *, negative=True, nan=False, zero_cols=(), explicit_zeros=0):
    """Dense float32 X with mostly zeros and its CSR form (with explicit zeros stored, if asked)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    if not negative:
        X = np.abs(X)
    X[rng.random((n, d)) >= density] = 0
    if nan:
        X[rng.random((n, d)) < 0.03] = np.nan
    for c in zero_cols:
        X[:, c] = 0
    S = sp.csr_matrix(X)
    if explicit_zeros:
        coo = S.tocoo()
        r = rng.integers(0, n, explicit_zeros)
        c = rng.integers(0, d, explicit_zeros)
        keep = X[r, c] == 0
        rows = np.concatenate([coo.row, r[keep]])
        cols = np.concatenate([coo.col, c[keep]])
        vals = np.concatenate([coo.data, np.zeros(keep.sum(), np.float32)])
        S = sp.csr_matrix((vals, (rows, cols)), shape=(n, d))  # zeros stay stored entries
        assert S.nnz > np.count_nonzero(np.nan_to_num(X, nan=1.0))
    return X, S


def assert_same_forest(a, b):
    fa, fb = a._forest, b._forest
    assert np.array_equal(fa.offsets, fb.offsets)
    for name in FIELDS:
        assert np.array_equal(getattr(fa, name), getattr(fb, name)), name


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("shape", [(1, 1), (7, 1), (1, 9), (37, 13), (203, 61)])
def test_bin_edges_and_codes_equal_dense(fmt, shape):
    X, S = sparse_data(*shape, density=0.3, seed=shape[0] * 100 + shape[1], nan=True, zero_cols=(0,), explicit_zeros=5)
    S = S.asformat(fmt)
    e_d, n_d = ops.tree_bin_edges(X, max_bins=255)
    e_s, n_s = ops.tree_bin_edges(S, max_bins=255)
    assert np.array_equal(n_d, n_s)
    assert np.array_equal(e_d, e_s)
    assert np.array_equal(ops.tree_bin_codes(X, e_d, n_d), ops.tree_bin_codes(S, e_s, n_s))


@pytest.mark.parametrize("max_bins", [2, 3, 17, 255])
def test_quantile_binning_equal_dense_with_sample_and_weight(max_bins):
    # more distinct values than bins (quantile mode), a row sample smaller than n, zero weights
    X, S = sparse_data(3001, 7, density=0.4, seed=max_bins, nan=True, explicit_zeros=50)
    w = np.random.default_rng(1).integers(0, 3, 3001).astype(np.float64)
    kw = dict(max_bins=max_bins, weight=w, sample=1000, seed=11)
    e_d, n_d = ops.tree_bin_edges(X, **kw)
    e_s, n_s = ops.tree_bin_edges(S.tocsc(), **kw)
    assert np.array_equal(n_d, n_s) and np.array_equal(e_d, e_s)
    assert (n_d <= max_bins - 1).all()
    codes = ops.tree_bin_codes(S, e_s, n_s)
    assert np.array_equal(codes, ops.tree_bin_codes(X, e_d, n_d))
    # the codes follow the contract: code = #cuts < x, NaN -> 255
    ref = np.where(np.isnan(X), 255, (e_d[None, :, :] < np.nan_to_num(X)[:, :, None]).sum(axis=2))
    assert np.array_equal(codes, ref)


def test_zero_keeps_its_own_bin_in_quantile_mode():
    rng = np.random.default_rng(0)
    n = 100_000
    col = np.zeros(n, np.float32)
    nz = rng.choice(n, 2000, replace=False)
    col[nz] = rng.standard_normal(2000).astype(np.float32)  # 98% zeros, ~1000 values each side
    X = col[:, None]
    edges, n_edges = ops.tree_bin_edges(sp.csc_matrix(X), sample=0)
    e = edges[0, : n_edges[0]]
    below, above = e[e < 0], e[e >= 0]
    assert len(below) and len(above)
    neg, pos = np.sort(col[col < 0]), np.sort(col[col > 0])
    assert below[-1] >= neg[-1] and above[0] < pos[0]  # cuts right next to zero on both sides
    assert n_edges[0] > 200  # the non-zero values share the other bins (not crowded into a few)
    e_d, n_d = ops.tree_bin_edges(X, sample=0)
    assert np.array_equal(e_d, edges) and np.array_equal(n_d, n_edges)


def test_values_within_feature_threshold_share_a_bin():
    X = np.array([[0.0], [5e-8], [1e-7], [1.0], [1.0 + 5e-8], [2.0]], dtype=np.float32)
    edges, n_edges = ops.tree_bin_edges(X)
    # groups {0, 5e-8, 1e-7} (chained gaps <= 1e-7), {1, 1 + 5e-8 (== 1 in float32)}, {2}
    assert n_edges[0] == 2
    assert 1e-7 <= edges[0, 0] < 1.0 and 1.0 <= edges[0, 1] < 2.0


@pytest.mark.parametrize("Tree", [DecisionTreeClassifier, DecisionTreeRegressor])
@pytest.mark.parametrize("splitter", ["best", "random"])
def test_almost_constant_feature_not_split(Tree, splitter):
    rng = np.random.default_rng(0)
    X = rng.random((40, 3))
    X[:, 0] *= 1e-7  # range 1e-7: constant for scikit-learn
    y = rng.integers(0, 2, 40)
    est = Tree(random_state=0, splitter=splitter).fit(X, y)
    assert est.feature_importances_[0] == 0
    assert (est.tree_.feature != 0).all()
    assert est.feature_importances_[1:].sum() > 0


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize(
    "make",
    [
        lambda: DecisionTreeClassifier(random_state=0),
        lambda: DecisionTreeRegressor(random_state=0, max_depth=6),
        lambda: DecisionTreeClassifier(random_state=0, splitter="random", max_features=3),
        lambda: RandomForestClassifier(n_estimators=6, random_state=1, max_features=0.5),
        lambda: RandomForestRegressor(n_estimators=4, random_state=2, min_samples_leaf=3),
        lambda: ExtraTreesClassifier(n_estimators=5, random_state=3),
        lambda: ExtraTreesRegressor(n_estimators=5, random_state=4, max_leaf_nodes=9),
    ],
)
def test_sparse_fit_equals_dense_fit(fmt, make):
    X, S = sparse_data(301, 23, density=0.15, seed=7, zero_cols=(3, 22), explicit_zeros=40)
    rng = np.random.default_rng(3)
    est = make()
    if "Classifier" in type(est).__name__:
        y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) + 0.3 * rng.standard_normal(301) > 0).astype(int)
        y[::7] = 2
    else:  # integer targets: every sum is exact, so the zero bins by subtraction are the dense sums
        y = np.round(4 * (np.nan_to_num(X[:, 0]) * 2 - np.nan_to_num(X[:, 5]) + 0.1 * rng.standard_normal(301)))
    dense = make().fit(X, y)
    sparse = make().fit(S.asformat(fmt), y)
    assert_same_forest(dense, sparse)
    Xt, St = sparse_data(57, 23, density=0.15, seed=8)
    for pred in ("predict", "apply") + (("predict_proba",) if hasattr(dense, "predict_proba") else ()):
        assert np.array_equal(getattr(dense, pred)(Xt), getattr(sparse, pred)(St.asformat(fmt))), pred


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_x_with_nan_is_refused_as_scikit_learn_does(fmt):
    # the binning kernels take NaN in sparse columns (tests above), the estimators follow
    # scikit-learn: missing values in dense X only
    X, S = sparse_data(40, 5, density=0.5, seed=2, nan=True)
    assert np.isnan(S.data).any()
    y = np.arange(40) % 2
    with pytest.raises(ValueError, match="Input X contains NaN"):
        DecisionTreeClassifier().fit(S.asformat(fmt), y)
    fitted = DecisionTreeClassifier().fit(np.nan_to_num(X), y)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        fitted.predict(S.asformat(fmt))


def test_sparse_fit_with_sample_weight_and_subsampled_binning(monkeypatch):
    from forgeml.tree import _fit

    monkeypatch.setattr(_fit, "BIN_SAMPLE", 500)  # cut points from a row sample
    X, S = sparse_data(1500, 9, density=0.5, seed=5, negative=True)
    rng = np.random.default_rng(6)
    y = rng.integers(0, 3, 1500)
    sw = rng.integers(0, 4, 1500).astype(float)
    a = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y, sample_weight=sw)
    b = RandomForestClassifier(n_estimators=3, random_state=0).fit(S, y, sample_weight=sw)
    assert_same_forest(a, b)


def test_all_zero_sparse_matrix():
    S = sp.csr_matrix((20, 6), dtype=np.float64)
    y = np.arange(20) % 2
    est = DecisionTreeClassifier(random_state=0).fit(S, y)
    assert est.tree_.node_count == 1
    assert np.array_equal(est.predict(S), np.zeros(20, int))


def test_duplicate_entries_are_summed():
    rows, cols = np.array([0, 0, 1, 2, 2]), np.array([1, 1, 0, 2, 2])
    vals = np.array([1.0, 2.0, -1.0, 4.0, -4.0])
    S = sp.coo_matrix((vals, (rows, cols)), shape=(4, 3))
    X = S.toarray().astype(np.float32)
    e_d, n_d = ops.tree_bin_edges(X)
    e_s, n_s = ops.tree_bin_edges(S)
    assert np.array_equal(e_d, e_s) and np.array_equal(n_d, n_s)
    assert np.array_equal(ops.tree_bin_codes(X, e_d, n_d), ops.tree_bin_codes(S, e_s, n_s))


def test_predict_by_row_blocks(monkeypatch):
    X, S = sparse_data(400, 30, density=0.2, seed=9)
    y = (X[:, 0] > 0).astype(int)
    est = RandomForestClassifier(n_estimators=4, random_state=0).fit(S, y)
    whole = est.predict_proba(S)
    monkeypatch.setattr(tree_ops, "SPARSE_BLOCK_BYTES", 4 * 30 * 7)  # 7 rows a block
    assert np.array_equal(est.predict_proba(S), whole)
    assert np.array_equal(est.apply(S.tocsc()), est.apply(X))
    assert np.array_equal(whole, est.predict_proba(X))


def test_sparse_infinite_value_raises():
    S = sp.csr_matrix(np.array([[0.0, np.inf], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="[Ii]nf"):
        DecisionTreeClassifier().fit(S, [0, 1])
    with pytest.raises(ValueError, match="X"):
        ops.tree_bin_edges(S)


def test_sparse_wrong_n_features_at_predict():
    X, S = sparse_data(50, 5, density=0.5, seed=1)
    est = DecisionTreeRegressor(random_state=0).fit(S, X[:, 0])
    with pytest.raises(ValueError, match="features"):
        est.predict(sp.csr_matrix(np.zeros((3, 4))))


@pytest.mark.parametrize("criterion", ["gini", "entropy", "squared_error"])
@pytest.mark.parametrize("random_split", [False, True])
def test_column_major_codes_and_entry_index_grow_the_same_trees(criterion, random_split):
    # wide and very sparse: most small nodes take the stored-entries path
    X, S = sparse_data(700, 301, density=0.02, seed=4, nan=True, explicit_zeros=30)
    rng = np.random.default_rng(2)
    classify = criterion != "squared_error"
    y = rng.integers(0, 3, 700) if classify else rng.standard_normal(700)
    edges, n_edges = ops.tree_bin_edges(S)
    rows = ops.tree_bin_codes(X, edges, n_edges)
    cols = ops.tree_bin_codes(S, edges, n_edges, order="F")
    assert cols.flags.f_contiguous and np.array_equal(rows, cols)
    kw = dict(criterion=criterion, n_classes=3, max_features=17, bootstrap=True, random_split=random_split)
    seeds = np.arange(3, dtype=np.uint64)
    w = rng.integers(0, 3, 700).astype(float)
    a = ops.tree_grow_forest(rows, y, w, seeds, **kw)
    b = ops.tree_grow_forest(cols, y, w, seeds, sparse_entries=S, **kw)
    assert len(a["feature"]) > 20
    for name in a:
        assert np.array_equal(a[name], b[name]), name


# ---- growth from the binned entries alone (ops.tree_bin_sparse, grow_sparse.h)


@pytest.mark.parametrize("shape", [(1, 1), (9, 1), (1, 7), (37, 13), (203, 61)])
def test_bin_sparse_gives_the_dense_codes(shape):
    X, S = sparse_data(*shape, density=0.3, seed=shape[0] + 7 * shape[1], nan=True, zero_cols=(0,), explicit_zeros=5)
    edges, n_edges = ops.tree_bin_edges(S)
    sc = ops.tree_bin_sparse(S.tocsc(), edges)
    assert sc.shape == shape
    assert np.array_equal(sc.toarray(), ops.tree_bin_codes(X, edges, n_edges))
    col_ptr, col_row, col_code, row_ptr, row_feature, row_code, zero_code = sc.arrays
    assert (col_code != zero_code[np.repeat(np.arange(shape[1]), np.diff(col_ptr))]).all()  # zero codes dropped
    assert sc.nnz <= S.nnz and col_ptr[1] == 0  # the all-zero column holds no entry
    assert np.array_equal(np.diff(row_ptr), np.bincount(col_row, minlength=shape[0]))
    for r in range(shape[0]):  # rows list their features ascending, with the same codes
        f = row_feature[row_ptr[r] : row_ptr[r + 1]]
        assert (np.diff(f) > 0).all()
        assert np.array_equal(row_code[row_ptr[r] : row_ptr[r + 1]], sc.toarray()[r, f])


def test_bin_sparse_rows_over_many_blocks_and_threads():
    # the by-row arrays are built in blocks of rows, split over threads: the CSR of the codes either way
    import forgeml

    rng = np.random.default_rng(5)
    n, d = 20011, 37
    S = sp.random(n, d, density=0.3, format="csc", dtype=np.float32, random_state=rng)
    edges, _ = ops.tree_bin_edges(S)
    old = forgeml.get_num_threads()
    try:
        got = []
        for t in (1, 2):
            forgeml.set_num_threads(t)
            got.append(ops.tree_bin_sparse(S, edges).arrays)
    finally:
        forgeml.set_num_threads(old)
    for a, b in zip(*got):
        assert np.array_equal(a, b)
    col_ptr, col_row, col_code, row_ptr, row_feature, row_code, _ = got[0]
    C = sp.csc_matrix((col_code.astype(np.int32), col_row, col_ptr), shape=(n, d)).tocsr()
    C.sort_indices()
    assert np.array_equal(C.indptr, row_ptr) and np.array_equal(C.indices, row_feature)
    assert np.array_equal(C.data, row_code)


GROW_CASES = [
    dict(criterion="gini", max_features=17, bootstrap=True),  # packed counts: both entry paths
    dict(criterion="entropy", max_features=300, min_samples_leaf=3),
    dict(criterion="gini", max_features=40, random_split=True, bootstrap=True),
    dict(criterion="gini", max_features=25, max_leaf_nodes=30),
    dict(criterion="gini", max_features=9, max_depth=5, monotonic=True),
    dict(criterion="squared_error", max_features=60, bootstrap=True),
    dict(criterion="poisson", max_features=301, min_samples_split=6),
    dict(criterion="squared_error", max_features=20, random_split=True, outputs=2),
    dict(criterion="gini", max_features=30, outputs=3),
]


@pytest.mark.parametrize("case", range(len(GROW_CASES)))
def test_sparse_codes_grow_the_dense_trees(case):
    # Integer weights and targets: every histogram sum is exact, so the zero bins found as the node
    # total minus the entries are the dense sums and the trees are the same, bit for bit.
    kw = dict(GROW_CASES[case])
    outputs = kw.pop("outputs", 1)
    n, d = 703, 301  # wide and sparse, odd sizes; all-zero columns and explicit zeros stored
    X, S = sparse_data(
        n, d, density=0.02, seed=case, negative=case % 2 == 0, zero_cols=(0, 150, 300), explicit_zeros=40
    )
    rng = np.random.default_rng(case)
    classify = kw["criterion"] in ("gini", "entropy")
    shape = (n, outputs) if outputs > 1 else (n,)
    n_classes = 3
    if kw.pop("monotonic", False):  # binary classification only
        n_classes, kw["monotonic_cst"] = 2, rng.integers(-1, 2, d)
    y = rng.integers(0, n_classes, shape) if classify else rng.integers(0, 9, shape)
    edges, n_edges = ops.tree_bin_edges(S)
    dense = ops.tree_bin_codes(X, edges, n_edges)
    sc = ops.tree_bin_sparse(S, edges)
    w = rng.integers(0, 3, n).astype(float)
    seeds = np.arange(3, dtype=np.uint64) + 11 * case
    a = ops.tree_grow_forest(dense, y, w, seeds, n_classes=n_classes, **kw)
    b = ops.tree_grow_forest(sc, y, w, seeds, n_classes=n_classes, **kw)
    assert len(a["feature"]) > 15
    for name in a:
        if kw["criterion"] == "poisson" and a[name].dtype == np.float64:  # y ln y: not integer sums
            np.testing.assert_allclose(a[name], b[name], rtol=1e-9, atol=1e-10, err_msg=name)
        else:
            assert np.array_equal(a[name], b[name]), name


@pytest.mark.parametrize("random_split", [False, True])
@pytest.mark.parametrize("max_features", [3, 40, 150])
def test_sparse_codes_grow_the_dense_trees_when_few_columns_hold_the_entries(random_split, max_features):
    # Small nodes draw their features ahead in batches sized as if the entries were spread evenly
    # over the columns; here a few columns hold most of them, so batches run short and the search
    # draws again, and the random streams are set back after an overdraw: the trees stay the dense ones.
    n, d = 1211, 611
    rng = np.random.default_rng(max_features)
    density = np.full(d, 0.003)
    density[rng.choice(d, 5, replace=False)] = 0.8
    X = np.where(rng.random((n, d)) < density, rng.integers(1, 40, (n, d)), 0).astype(np.float32)
    S = sp.csr_matrix(X)
    y = rng.integers(0, 3, n)
    edges, n_edges = ops.tree_bin_edges(S)
    kw = dict(criterion="gini", n_classes=3, max_features=max_features, bootstrap=True, random_split=random_split)
    seeds = np.arange(4, dtype=np.uint64)
    w = np.ones(n)
    a = ops.tree_grow_forest(ops.tree_bin_codes(X, edges, n_edges), y, w, seeds, **kw)
    b = ops.tree_grow_forest(ops.tree_bin_sparse(S, edges), y, w, seeds, **kw)
    assert len(a["feature"]) > 100
    for name in a:
        assert np.array_equal(a[name], b[name]), name


@pytest.mark.parametrize("Forest", [RandomForestRegressor, RandomForestClassifier])
def test_sparse_fit_with_real_weights_is_as_accurate_as_dense(Forest):
    # Real-valued weights and targets: the zero bins by subtraction round differently in the last
    # bits, so near-ties may break otherwise; the forests stay as accurate.
    X, S = sparse_data(1201, 57, density=0.1, seed=3)
    rng = np.random.default_rng(4)
    signal = X[:, 0] * 2 - X[:, 5] + X[:, 9] * X[:, 11] + 0.1 * rng.standard_normal(1201)
    y = signal if Forest is RandomForestRegressor else (signal > 0).astype(int)
    sw = rng.random(1201) + 0.5
    tr, te = slice(0, 900), slice(900, None)
    dense = Forest(n_estimators=8, random_state=0).fit(X[tr], y[tr], sample_weight=sw[tr])
    sparse = Forest(n_estimators=8, random_state=0).fit(S[tr], y[tr], sample_weight=sw[tr])
    fd, fs = dense._forest, sparse._forest
    rd, rs = fd.offsets[:-1], fs.offsets[:-1]
    assert np.array_equal(fd.feature[rd], fs.feature[rs])  # no near-tie at the roots
    np.testing.assert_allclose(fd.impurity[rd], fs.impurity[rs], rtol=1e-12)
    np.testing.assert_allclose(fd.threshold[rd], fs.threshold[rs])
    sd, ss = dense.score(X[te], y[te]), sparse.score(S[te], y[te])
    assert sd > 0.5 and abs(sd - ss) < 0.03


def test_sparse_absolute_error_fits_from_the_codes():
    X, S = sparse_data(200, 15, density=0.2, seed=6)
    y = np.round(X[:, 1] * 3 + X[:, 2])
    dense = RandomForestRegressor(n_estimators=3, criterion="absolute_error", random_state=0).fit(X, y)
    sparse = RandomForestRegressor(n_estimators=3, criterion="absolute_error", random_state=0).fit(S, y)
    assert_same_forest(dense, sparse)
    edges, _ = ops.tree_bin_edges(S)
    with pytest.raises(ValueError, match="absolute_error"):
        ops.tree_grow_forest(ops.tree_bin_sparse(S, edges), y, np.ones(200), [0], criterion="absolute_error")


def test_sparse_codes_arrays_are_checked():
    X, S = sparse_data(30, 6, density=0.4, seed=1)
    edges, _ = ops.tree_bin_edges(S)
    sc = ops.tree_bin_sparse(S, edges)
    y = np.arange(30) % 2
    bad = list(sc.arrays)
    bad[1] = bad[1].astype(np.int64)  # row ids of the wrong dtype
    with pytest.raises(ValueError, match="col_row"):
        ops.tree_grow_forest(tree_ops.SparseCodes(sc.shape, tuple(bad)), y, np.ones(30), [0], n_classes=2)
    bad = list(sc.arrays)
    bad[4] = bad[4].copy()
    bad[4][0] = 6  # feature index out of range
    with pytest.raises(ValueError, match="out of range"):
        ops.tree_grow_forest(tree_ops.SparseCodes(sc.shape, tuple(bad)), y, np.ones(30), [0], n_classes=2)
    with pytest.raises(ValueError, match="edges"):
        ops.tree_bin_sparse(S, edges[:3])
