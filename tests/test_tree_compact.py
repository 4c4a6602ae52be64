"""The compact prediction layout (ops.tree_compact_forest / tree_compact_predict) and the compact
forest file (est.save / forgeml.ensemble.load): same predictions as the flat kernel and as a NumPy
walk of each tree, exact round trips, and clear errors for every kind of damaged file."""

import pickle

import joblib
import numpy as np
import pytest

from forgeml import ops
from forgeml.ensemble import ExtraTreesRegressor, ForestFileError, RandomForestClassifier, load
from forgeml.tree import DecisionTreeClassifier
from forgeml.tree._format import MAGIC
from forgeml.tree._tree import TREE_FIELDS


def _data(rng, n, d, nan=0.1):
    X = rng.standard_normal((n, d)).astype(np.float32)
    X[rng.random((n, d)) < nan] = np.nan
    return X


def _numpy_walk(forest, X):
    """Mean over trees of Tree.predict, the NumPy per-tree walk (x <= threshold in float32, NaN to
    the side the split learned)."""
    return np.mean([forest.tree(t).predict(X)[:, 0] for t in range(forest.n_trees)], axis=0)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(5)
    X = _data(rng, 701, 13)
    y = (np.nan_to_num(X[:, 0]) * 2 + np.nan_to_num(X[:, 3]) > 0).astype(int) + rng.integers(0, 2, 701)
    clf = RandomForestClassifier(n_estimators=11, max_features=0.6, random_state=0).fit(X, np.array(list("abc"))[y])
    reg = ExtraTreesRegressor(n_estimators=7, random_state=1).fit(X, np.nan_to_num(X[:, 1]) + rng.random(701))
    return clf, reg


@pytest.mark.parametrize("n_rows", [1, 3, 7, 8, 9, 127, 1031])
def test_compact_predict_equals_flat_kernel_and_numpy_walk(rng, fitted, n_rows):
    Xq = _data(rng, n_rows, 13, nan=0.15)
    for est in fitted:
        f = est._forest
        flat = ops.tree_forest_predict(Xq, f.nodes, f.value, f.roots)
        for threads in (1, 2):
            got = ops.tree_compact_predict(f._compact, Xq, f.value, threads=threads)
            assert np.array_equal(got, flat)  # same sums in the same order: bit for bit
        np.testing.assert_allclose(f.predict(Xq), _numpy_walk(f, Xq), rtol=1e-12, atol=1e-15)
        sel = [4, 0, 4, 2]
        want = ops.tree_forest_predict(Xq, f.nodes, f.value, f.roots[sel])
        assert np.array_equal(f.predict(Xq, trees=sel), want)


def test_compact_forest_rejects_bad_structure(fitted):
    f = fitted[0]._forest
    nodes = f.nodes.copy()
    internal = np.flatnonzero(nodes[:, 0] >= 0)
    cases = []
    a = nodes.copy()
    a[internal[3], 2] = internal[3]  # a child that is its own parent (a loop)
    cases.append((a, f.roots, "must lie after it"))
    a = nodes.copy()
    a[internal[0], 3] = a[internal[0], 2]  # both children the same node
    cases.append((a, f.roots, "reached twice"))
    a = nodes.copy()
    a[internal[1], 0] = 13
    cases.append((a, f.roots, "feature 13"))
    cases.append((nodes, np.array([0, len(nodes)]), "outside"))
    cases.append((nodes, np.array([0, 0]), "reached twice"))
    for bad_nodes, roots, msg in cases:
        with pytest.raises(ValueError, match=msg):
            ops.tree_compact_forest(bad_nodes, roots, 13)
    c = f._compact
    with pytest.raises(ValueError, match="X: expected shape"):
        ops.tree_compact_predict(c, np.zeros((2, 12), np.float32), f.value)
    with pytest.raises(ValueError, match="values"):
        ops.tree_compact_predict(c, np.zeros((2, 13), np.float32), f.value[:-1])
    with pytest.raises(ValueError, match="trees"):
        ops.tree_compact_predict(c, np.zeros((2, 13), np.float32), f.value, trees=[f.n_trees])


def test_predict_fast_path_keeps_validation(fitted):
    clf = fitted[0]
    with pytest.raises(ValueError, match="13 features"):
        clf.predict_proba(np.zeros((1, 12)))
    with pytest.raises(ValueError, match="infinity"):
        clf.predict_proba(np.full((1, 13), np.inf))
    with np.errstate(over="ignore"), pytest.raises(ValueError, match="infinity|too large"):
        clf.predict_proba(np.full((2, 13), 1e300))  # finite in float64, infinite in float32
    X = np.asfortranarray(np.random.default_rng(0).standard_normal((5, 13)))
    assert np.array_equal(clf.predict_proba(X), clf.predict_proba(np.ascontiguousarray(X, dtype=np.float32)))
    assert np.array_equal(clf.predict_proba(X[:1]), clf.predict_proba(X)[:1])


def _tree_arrays(est):
    f = est._forest
    return {name: np.asarray(getattr(f, name)) for name in (*TREE_FIELDS, "offsets", "depth")}


@pytest.mark.parametrize("mmap", [True, False])
def test_save_load_round_trip(tmp_path, rng, fitted, mmap):
    Xq = _data(rng, 301, 13)
    tree = DecisionTreeClassifier(random_state=0).fit(Xq, np.arange(301) % 3)
    for est in (*fitted, tree):
        path = tmp_path / f"{type(est).__name__}.fgf"
        est.save(path)
        back = load(path, mmap=mmap)
        assert type(back) is type(est)
        assert back.get_params() == est.get_params()
        got, want = _tree_arrays(back), _tree_arrays(est)
        for name in want:
            assert got[name].dtype.kind == want[name].dtype.kind, name
            assert np.array_equal(got[name], want[name]), name
        assert np.array_equal(back.predict(Xq), est.predict(Xq))
        if hasattr(est, "classes_"):
            assert np.array_equal(back.classes_, est.classes_)
            assert np.array_equal(back.predict_proba(Xq), est.predict_proba(Xq))
        np.testing.assert_array_equal(back.feature_importances_, est.feature_importances_)
        again = pickle.loads(pickle.dumps(back))  # a loaded (memory-mapped) estimator pickles
        assert np.array_equal(again.predict(Xq), est.predict(Xq))
        joblib.dump(back, tmp_path / "j.joblib")
        assert np.array_equal(joblib.load(tmp_path / "j.joblib").predict(Xq), est.predict(Xq))


def test_pickle_and_joblib_round_trip(tmp_path, rng, fitted):
    Xq = _data(rng, 50, 13)
    for est in fitted:
        est.predict(Xq)  # the lazily built layouts are not pickled
        assert np.array_equal(pickle.loads(pickle.dumps(est)).predict(Xq), est.predict(Xq))
        joblib.dump(est, tmp_path / "e.joblib")
        assert np.array_equal(joblib.load(tmp_path / "e.joblib").predict(Xq), est.predict(Xq))


def test_save_refuses_what_it_cannot_store(tmp_path, fitted):
    with pytest.raises(TypeError, match="fitted forgeml"):
        from forgeml.tree import _format

        _format.save(object(), tmp_path / "x")
    est = pickle.loads(pickle.dumps(fitted[1]))
    est.oob_score = len  # a callable parameter has no flat form
    with pytest.raises(TypeError, match="oob_score"):
        est.save(tmp_path / "x")


def test_load_rejects_damaged_files(tmp_path, rng, fitted):
    path = tmp_path / "f.fgf"
    fitted[0].save(path)
    good = path.read_bytes()
    bad = tmp_path / "bad.fgf"
    Xq = _data(rng, 20, 13)

    def expect(data, msg):
        bad.write_bytes(data)
        with pytest.raises(ForestFileError, match=msg) as e:
            est = load(bad)  # the node arrays are checked when first used:
            est.predict_proba(Xq)  # the prediction layout
            est.feature_importances_  # noqa: B018 (the flat one)
        assert str(bad) in str(e.value)

    expect(b"", "shorter")
    expect(good[:20], "shorter")
    expect(b"PK" + good[2:], "magic")
    expect(good[:8] + (99).to_bytes(4, "little") + good[12:], "version 99")
    expect(good[:100], "truncated")
    expect(good[:-1], "truncated")
    header_end = 40 + int.from_bytes(good[16:24], "little")
    flip = bytearray(good)
    flip[header_end - 5] ^= 0x20
    expect(bytes(flip), "checksum")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.fgf")
    # nodes damaged in the data: a child pointing backwards is caught by the structure check
    nodes = fitted[0]._forest.nodes
    data_offset = int.from_bytes(good[24:32], "little")
    import json

    header = json.loads(good[40:header_end])
    entry = header["arrays"][header["forest"]["arrays"]["nodes"]]
    i = int(np.flatnonzero(nodes[:, 0] >= 0)[5])
    at = data_offset + entry["offset"] + i * 16 + 8
    damaged = bytearray(good)
    damaged[at : at + 4] = (0).to_bytes(4, "little")
    expect(bytes(damaged), "must lie after it")
    # the same in the saved prediction layout: the first root's right child outside its tree
    entry = header["arrays"][header["forest"]["arrays"]["compact_nodes"]]
    assert fitted[0]._forest._compact.arrays()[0][0, 2] > 1  # node 0 is a split
    at = data_offset + entry["offset"] + 8
    damaged = bytearray(good)
    damaged[at : at + 4] = (2**31 - 1).to_bytes(4, "little")
    expect(bytes(damaged), "right child")
    # random damage in the data never crashes: it loads (a wrong value) or raises ForestFileError
    for _ in range(200):
        damaged = bytearray(good)
        for pos in rng.integers(data_offset, len(good), size=3):
            damaged[pos] = int(rng.integers(0, 256))
        bad.write_bytes(bytes(damaged))
        try:
            est = load(bad)
            est.predict_proba(Xq)
            est.feature_importances_  # noqa: B018
        except ForestFileError:
            continue
    assert MAGIC == good[:8]
