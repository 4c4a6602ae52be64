"""The few-row predict path (Forest.predict_few: one C call straight from predict_proba, trees
streamed through the row walk's slots): bit for bit the batch kernel's sums at 1 and 2 threads,
for forests with fewer and more trees than the walk has slots, on fitted and memory-mapped
loaded forests; every X it does not take (dtype, shape, inf, too many rows) goes the validated way
with the same result or error as before."""

import numpy as np
import pytest

from forgeml import ops
from forgeml.ensemble import RandomForestClassifier, RandomForestRegressor, load
from forgeml.tree import DecisionTreeClassifier


def _data(rng, n, d, nan=0.15):
    X = rng.standard_normal((n, d)).astype(np.float32)
    X[rng.random((n, d)) < nan] = np.nan
    return X


def _fit(kind, trees, rng):
    X = _data(rng, 503, 9)
    signal = np.nan_to_num(X[:, 0]) * 2 + np.nan_to_num(X[:, 4])
    if kind == "regressor":
        return RandomForestRegressor(n_estimators=trees, max_features=0.7, random_state=2).fit(
            X, signal + rng.random(503)
        )
    if kind == "tree":
        return DecisionTreeClassifier(random_state=0).fit(X, (signal > 0).astype(int))
    y = np.digitize(signal, [-1.0, 0.0, 1.5]) if kind == "4 classes" else (signal > 0).astype(int)
    return RandomForestClassifier(n_estimators=trees, max_features=0.7, random_state=2).fit(X, y)


@pytest.mark.parametrize(
    "kind, trees",
    [("tree", 1), ("2 classes", 5), ("2 classes", 31), ("2 classes", 32), ("4 classes", 33), ("regressor", 70)],
)
def test_few_rows_equal_the_batch_kernel(rng, tmp_path, kind, trees):
    """Fewer trees than slots, exactly 32, one more, twice as many plus: the same bits as the batch
    kernel (1 and 2 threads) for each row count the path serves, NaN features and all-NaN rows."""
    est = _fit(kind, trees, rng)
    est.save(tmp_path / "f.fgf")
    back = load(tmp_path / "f.fgf")  # mmap
    f = est._forest
    assert f.n_trees == trees
    Xq = _data(rng, 16, 9, nan=0.3)
    Xq[5] = np.nan
    want = {t: ops.tree_compact_predict(f._compact, Xq, f.value, threads=t) for t in (1, 2)}
    assert np.array_equal(want[1], want[2])
    for n in (1, 2, 3, 7, 16):  # (over 4 rows the walk runs without the GIL)
        for forest in (f, back._forest):
            assert np.array_equal(forest.predict_few(Xq[:n]), want[1][:n]), n
    for forest in (f, back._forest):
        assert forest.predict_few(np.concatenate([Xq, Xq[:1]])) is None  # 17 rows: the batch kernel
    for n in (1, 3, 16, 17):  # through the estimators, either path
        for e in (est, back):
            pred = e.predict(Xq[:n])
            assert np.array_equal(pred, est.predict(Xq)[:n])
            if kind != "regressor":
                assert np.array_equal(e.predict_proba(Xq[:n]), want[1][:n])
    assert "_compact" not in back._forest.__dict__  # no pass over the loaded nodes on the way


def test_few_takes_any_float_ndarray_and_declines_the_rest(rng, tmp_path):
    est = _fit("2 classes", 40, rng)
    est.save(tmp_path / "f.fgf")
    back = load(tmp_path / "f.fgf")
    f = back._forest
    X = _data(rng, 40, 9, nan=0.2).astype(np.float64)
    want = est.predict_proba(X)  # the batch path
    taken = {
        "float32": X[:3].astype(np.float32),
        "float64": X[:3],
        "strided rows": X[:9:4],
        "strided columns": np.asfortranarray(X[:3]),
        "one row of a Fortran array": np.asfortranarray(X)[:1],
        "reversed": X[2::-1],
        "unaligned float32": np.frombuffer(b"\0" + X[:3].astype(np.float32).tobytes(), np.float32, 27, 1).reshape(3, 9),
    }
    for name, Xq in taken.items():
        got = f.predict_few(Xq)
        assert got is not None, name
        rows = {"strided rows": [0, 4, 8], "reversed": [2, 1, 0]}.get(name, slice(0, Xq.shape[0]))
        assert np.array_equal(got, want[rows]), name
        assert np.array_equal(back.predict_proba(Xq), want[rows]), name
    declined = {
        "big-endian": X[:2].astype(">f8"),
        "int": np.zeros((2, 9), np.int64),
        "float16": X[:2].astype(np.float16),
        "1-D": X[0],
        "3-D": X[None, :2],
        "no rows": X[:0],
        "wrong width": X[:2, :8],
        "a list": X[:2].tolist(),
        "inf": np.where(np.arange(9) == 4, np.inf, X[:2]),
        "too large for float32": np.where(np.arange(9) == 2, 1e39, X[:2]),
    }
    for name, Xq in declined.items():
        assert f.predict_few(Xq) is None, name
    assert np.array_equal(back.predict_proba(declined["big-endian"]), want[:2])
    assert np.array_equal(back.predict_proba(declined["int"]), est.predict_proba(np.zeros((2, 9))))
    assert np.array_equal(back.predict_proba(declined["a list"]), want[:2])
    for name in ("inf", "too large for float32"):
        with pytest.raises(ValueError, match="infinity or a value too large"), np.errstate(over="ignore"):
            back.predict_proba(declined[name])
    with pytest.raises(ValueError, match="9 features"):
        back.predict_proba(declined["wrong width"])
    with pytest.raises(ValueError, match="2D array"):
        back.predict_proba(declined["1-D"])
    with pytest.raises(ValueError, match="minimum of 1 is required"):
        back.predict_proba(declined["no rows"])
    sub = X[:2].view(np.ma.MaskedArray)  # an ndarray subclass: the validated way
    assert np.array_equal(back.predict_proba(sub), want[:2])


@pytest.mark.parametrize("max_depth", [2, 4, 7, None])
def test_top_blocks_walk_equals_the_batch_kernel(rng, max_depth):
    """Top blocks of 3, 6 and 9 levels (trees shallower than, as deep as and deeper than the block;
    leaves inside it), with and without each leaf's row of values in its node word, built in C++
    for a fitted forest or read as a file stores them: the batch kernel's bits for 1..40 rows."""
    X = _data(rng, 700, 9)
    y = (np.nan_to_num(X[:, 0]) + rng.standard_normal(700) > 0).astype(int) + (np.nan_to_num(X[:, 3]) > 0.5)
    for est in (
        RandomForestClassifier(n_estimators=37, max_depth=max_depth, random_state=1).fit(X, y),
        RandomForestRegressor(n_estimators=5, max_depth=max_depth, random_state=1).fit(
            X, y * 1.5 + np.nan_to_num(X[:, 1])
        ),
    ):
        f = est._forest
        nodes, source, roots = f._compact.arrays()
        for n in (1, 2, 7, 40):
            Xq = _data(rng, n, 9, nan=0.25)
            want = ops.tree_compact_predict(f._compact, Xq, f.value)
            for levels in (3, 6, 9):
                built = ops.tree_compact_rows_from(f._compact, f.value, 64, top_levels=levels)
                assert np.array_equal(built.predict(Xq), want), levels
                rows_nodes, top = ops.tree_compact_top_arrays(f._compact, levels)
                assert top.shape == (len(roots), {3: 24, 6: 208, 9: 1680}[levels])
                for kw in ({"top": top, "leaf_rows": True}, {"leaf_rows": True}, {"top": top}):
                    stored = rows_nodes if kw.get("leaf_rows") else nodes
                    got = ops.tree_compact_rows(stored, source, roots, f.value, 9, 64, **kw).predict(Xq)
                    assert np.array_equal(got, want), (levels, kw)
    with pytest.raises(ValueError, match="top"):
        ops.tree_compact_rows(nodes, source, roots, f.value, 9, 64, top=top[:, :-1].copy())
    with pytest.raises(ValueError, match="top"):
        ops.tree_compact_rows(nodes, source, roots, f.value, 9, 64, top=top.astype(np.int64))
    with pytest.raises(ValueError, match="levels"):
        ops.tree_compact_top_arrays(f._compact, 5)
