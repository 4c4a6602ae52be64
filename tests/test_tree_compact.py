"""The compact prediction layout (ops.tree_compact_forest / tree_compact_predict) and the compact
forest file (est.save / forgeml.ensemble.load): same predictions as the flat kernel and as a NumPy
walk of each tree, exact round trips, and clear errors for every kind of damaged file."""

import itertools
import os
import pathlib
import pickle
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest

from forgeml import ops
from forgeml.ensemble import (
    ExtraTreesRegressor,
    ForestFileError,
    RandomForestClassifier,
    RandomForestRegressor,
    load,
)
from forgeml.tree import DecisionTreeClassifier, DecisionTreeRegressor, _format
from forgeml.tree._format import MAGIC
from forgeml.tree._tree import TREE_FIELDS

from conftest import isa_active, supported_isas


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


@pytest.mark.parametrize("n_rows", [1, 3, 7, 8, 9, 16, 17, 127, 1031])
def test_compact_predict_equals_flat_kernel_and_numpy_walk(rng, fitted, n_rows, isa):
    Xq = _data(rng, n_rows, 13, nan=0.15)
    for est in fitted:
        f = est._forest
        flat = ops.tree_forest_predict(Xq, f.nodes, f.value, f.roots)
        for threads in (1, 2):
            got = ops.tree_compact_predict(f._compact, Xq, f.value, threads=threads)
            assert np.array_equal(got, flat)  # same sums in the same order: bit for bit
        assert np.array_equal(f.predict(Xq), flat)  # a few rows: the row walk, the same sums
        assert np.array_equal(ops.tree_compact_predict_rows(f._compact, Xq, f.value), flat)
        np.testing.assert_allclose(f.predict(Xq), _numpy_walk(f, Xq), rtol=1e-12, atol=1e-15)
        sel = [4, 0, 4, 2]
        want = ops.tree_forest_predict(Xq, f.nodes, f.value, f.roots[sel])
        assert np.array_equal(f.predict(Xq, trees=sel), want)


@pytest.mark.parametrize("vector_isa", supported_isas("avx2"))
def test_vector_walk_equals_portable_walk(rng, vector_isa):
    """The AVX2 / AVX-512 gather walks (8 / 16 rows a vector, several vectors in lockstep) against
    the portable scalar walk: bit for bit at every tail length (rows past the last one must add
    nothing), NaN to both sides, 1, 2 and 5 outputs, a tree selection, 1 and 2 threads, and a
    forest over 1 MiB (one chunk of rows per thread) so both ways of splitting the rows are
    covered."""
    X = _data(rng, 3000, 9, nan=0.15)
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 4]) > 0).astype(int) + rng.integers(0, 4, 3000)
    ests = [
        RandomForestClassifier(n_estimators=4, random_state=0).fit(X[:500], y[:500] % 2),
        RandomForestClassifier(n_estimators=5, max_features=0.5, random_state=1).fit(X[:700], y[:700]),
        RandomForestRegressor(n_estimators=30, random_state=2).fit(X, np.nan_to_num(X[:, 2]) + rng.random(3000)),
    ]
    assert len(ests[2]._forest._compact.arrays()[0]) * 12 > 1 << 20  # the one-chunk-per-thread split
    for est, n_list in itertools.product(ests, [(1, 7, 9, 15, 16, 17, 31, 32, 33, 47, 300, 1043), (65, 71, 105, 300)]):
        f = est._forest
        if len(n_list) == 2:  # again with the coded layout built (small chunks take it only then)
            assert f._compact.coded_layout == ("one word", 1)
        for n in n_list:
            Xq = _data(rng, n, 9, nan=0.2)
            Xq[0] = np.nan
            for trees in (None, [2, 0, 2, 1]):
                sel = None if trees is None else np.array(trees)
                for threads in (1, 2):
                    with isa_active("portable"):
                        want = ops.tree_compact_predict(f._compact, Xq, f.value, trees=sel, threads=threads)
                    with isa_active(vector_isa):
                        got = ops.tree_compact_predict(f._compact, Xq, f.value, trees=sel, threads=threads)
                    assert np.array_equal(got, want), (n, trees, threads)
        with isa_active(vector_isa):  # 1043 rows: the batch kernel
            np.testing.assert_allclose(f.predict(Xq), _numpy_walk(f, Xq), rtol=1e-12, atol=1e-15)


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
    with pytest.raises(ValueError, match="X: expected shape"):
        ops.tree_compact_predict_rows(c, np.zeros((2, 12), np.float32), f.value)
    with pytest.raises(ValueError, match="values"):
        ops.tree_compact_predict_rows(c, np.zeros((2, 13), np.float32), f.value[:-1])


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


def _assert_same_tree(got, want):
    for name in ("node_count", "n_features", "max_depth", "n_outputs", "max_n_classes", "n_leaves"):
        assert getattr(got, name) == getattr(want, name), name
    for name in (*TREE_FIELDS, "n_classes"):
        a, b = np.asarray(getattr(got, name)), np.asarray(getattr(want, name))
        assert a.dtype == b.dtype and np.array_equal(a, b), name


def _assert_same_estimator(back, est, Xq):
    """Everything a user reads from a forest or tree: bit for bit."""
    assert type(back) is type(est)
    assert back.get_params() == est.get_params()
    got, want = _tree_arrays(back), _tree_arrays(est)
    for name in want:
        assert got[name].dtype == want[name].dtype, name
        assert np.array_equal(got[name], want[name]), name
    for rows in (Xq[:1], Xq[:3], Xq[:16], Xq[:17], Xq):  # the few-row path from the file and the batch path
        assert np.array_equal(back.predict(rows), est.predict(rows))
        if hasattr(est, "classes_"):
            got, want = back.predict_proba(rows), est.predict_proba(rows)
            assert all(map(np.array_equal, got, want)) if isinstance(want, list) else np.array_equal(got, want)
    if hasattr(est, "classes_"):
        assert all(map(np.array_equal, back.classes_, est.classes_))
    assert np.array_equal(back.apply(Xq), est.apply(Xq))
    p_got, p_want = back.decision_path(Xq), est.decision_path(Xq)
    if isinstance(p_want, tuple):
        assert np.array_equal(p_got[1], p_want[1])
        p_got, p_want = p_got[0], p_want[0]
    assert (p_got != p_want).nnz == 0 and p_got.shape == p_want.shape
    np.testing.assert_array_equal(back.feature_importances_, est.feature_importances_)
    trees = [(back.tree_, est.tree_)] if hasattr(est, "tree_") else []
    trees += [(b.tree_, e.tree_) for b, e in zip(back.estimators_, est.estimators_)] if hasattr(est, "_seeds") else []
    for a, b in trees:
        _assert_same_tree(a, b)
    assert "_compact" in back._forest.__dict__  # validated by now: one row walks it
    assert np.array_equal(back.predict(Xq[:1]), est.predict(Xq[:1]))


@pytest.mark.parametrize("mmap", [True, False])
def test_save_load_round_trip(tmp_path, rng, fitted, mmap):
    Xq = _data(rng, 301, 13)
    y3 = np.arange(301) % 3
    more = (
        DecisionTreeClassifier(random_state=0).fit(Xq, y3),
        DecisionTreeRegressor(random_state=0, ccp_alpha=0.01).fit(Xq, np.nan_to_num(Xq[:, 2])),
        RandomForestClassifier(n_estimators=25, random_state=2, class_weight="balanced", oob_score=True).fit(Xq, y3),
        RandomForestRegressor(n_estimators=4, random_state=3, max_depth=6).fit(Xq, rng.random((301, 2))),
        RandomForestClassifier(n_estimators=3, random_state=4, ccp_alpha=0.005).fit(Xq, np.c_[y3, y3 % 2]),
    )
    for est in (*fitted, *more):
        path = tmp_path / f"{type(est).__name__}.fgf"
        est.save(path)
        back = load(path, mmap=mmap)
        _assert_same_estimator(back, est, Xq)
        assert np.array_equal(back._forest.nodes, est._forest.nodes)  # the flat layout, rebuilt from the file
        if hasattr(est, "oob_score_"):
            assert back.oob_score_ == est.oob_score_
            assert np.array_equal(back.oob_decision_function_, est.oob_decision_function_)
        again = pickle.loads(pickle.dumps(back))  # a loaded (memory-mapped) estimator pickles
        assert np.array_equal(again.predict(Xq), est.predict(Xq))
        joblib.dump(back, tmp_path / "j.joblib")
        assert np.array_equal(joblib.load(tmp_path / "j.joblib").predict(Xq), est.predict(Xq))
        back.save(tmp_path / "again.fgf")  # a loaded estimator saves the same file
        assert (tmp_path / "again.fgf").read_bytes() == path.read_bytes()


def test_few_row_path_equals_compact_kernel(rng, fitted, tmp_path):
    """The checked walk over the file's arrays: bit for bit the compact kernel's sums, at every
    row count it serves, NaN included; no pass over the nodes first."""
    for i, est in enumerate(fitted):
        est.save(tmp_path / f"{i}.fgf")
        back = load(tmp_path / f"{i}.fgf")
        f = est._forest
        for n in (1, 2, 5, 16, 40):
            Xq = _data(rng, n, 13, nan=0.3)
            got = back._forest._rows.predict(Xq)
            assert np.array_equal(got, ops.tree_compact_predict(f._compact, Xq, f.value))
        assert "_compact" not in back._forest.__dict__ and "nodes" not in back._forest.__dict__
    with pytest.raises(ValueError, match="X: expected shape"):
        back._forest._rows.predict(np.zeros((1, 12), np.float32))


def _predicts_as_saved(est, want):
    """est, loaded from a golden file, predicts what the forest that saved it did (want): each row
    alone through the few-row walk, then the batch kernel, apply, importances, the tree arrays."""
    X = want["X"]
    for i in range(len(X)):
        assert np.array_equal(est.predict_proba(X[i : i + 1]), want["proba"][i : i + 1])
    assert np.array_equal(est.predict_proba(X), want["proba"])
    assert np.array_equal(est.apply(X), want["apply"])
    np.testing.assert_array_equal(est.feature_importances_, want["importances"])
    for name in ("feature", "threshold", "children_left", "children_right", "value"):
        assert np.array_equal(getattr(est._forest, name), want[name]), name
    assert list(est.classes_) == ["ant", "bee", "cat"]


def test_version_1_files_still_load():
    """A file saved in format version 1 (tests/golden/make_forest_golden.py 1) loads and predicts
    as the forest that saved it did."""
    golden = pathlib.Path(__file__).parent / "golden"
    want = np.load(golden / "forest_v1.npz")
    for mmap in (True, False):
        _predicts_as_saved(load(golden / "forest_v1.fgf", mmap=mmap), want)


def test_version_2_files_still_load(tmp_path):
    """A file saved in format version 2 (tests/golden/make_forest_golden.py 2; no top blocks, the
    one-row walk starts at each root) loads and predicts as the forest that saved it did, its damage
    is caught by the one-row walk, and saved again it is a version 3 file predicting the same."""
    golden = pathlib.Path(__file__).parent / "golden"
    want = np.load(golden / "forest_v2.npz")
    X = want["X"]
    for mmap in (True, False):
        est = load(golden / "forest_v2.fgf", mmap=mmap)
        assert "_saved_top" not in est._forest.__dict__
        _predicts_as_saved(est, want)
    est.save(tmp_path / "v3.fgf")
    again = load(tmp_path / "v3.fgf")
    assert again._forest._saved_top.shape == (4, 208)
    for i in range(len(X)):
        assert np.array_equal(again.predict_proba(X[i : i + 1]), want["proba"][i : i + 1])
    data = (golden / "forest_v2.fgf").read_bytes()
    data_offset, table, _ = _layout(data)
    out = bytearray(data)
    out[data_offset : data_offset + 4] = (13).to_bytes(4, "little")  # the first root splits on a feature X lacks
    (tmp_path / "bad.fgf").write_bytes(bytes(out))
    with pytest.raises(ForestFileError, match="feature 13"):
        load(tmp_path / "bad.fgf").predict_proba(X[:1])


def test_pickle_and_joblib_round_trip(tmp_path, rng, fitted):
    Xq = _data(rng, 50, 13)
    for est in fitted:
        est.predict(Xq)  # the lazily built layouts are not pickled
        assert np.array_equal(pickle.loads(pickle.dumps(est)).predict(Xq), est.predict(Xq))
        joblib.dump(est, tmp_path / "e.joblib")
        assert np.array_equal(joblib.load(tmp_path / "e.joblib").predict(Xq), est.predict(Xq))


def test_save_refuses_what_it_cannot_store(tmp_path, fitted):
    with pytest.raises(TypeError, match="fitted forgeml"):
        _format.save(object(), tmp_path / "x")
    est = pickle.loads(pickle.dumps(fitted[1]))
    est.oob_score = len  # a callable parameter has no flat form
    with pytest.raises(TypeError, match="oob_score"):
        est.save(tmp_path / "x")
    assert os.listdir(tmp_path) == []


def test_save_writes_the_walk_arrays_first_and_either_order_loads(tmp_path, rng, fitted, monkeypatch):
    """save puts compact_top, compact_nodes and value first in the data (one writev: huge pages for
    what a few-row walk reads); a file with the arrays in table order (earlier saves) loads the same,
    mapped and read; short writes and a system without writev give the same bytes."""
    Xq = _data(rng, 9, 13, nan=0.2)
    est = fitted[0]
    new, old = tmp_path / "new.fgf", tmp_path / "old.fgf"
    est.save(new)
    data = new.read_bytes()
    n_arrays, entry = _format._FIXED.unpack_from(data, 0)[11], _format._ENTRY
    offsets = [entry.unpack_from(data, _format._FIXED.size + entry.size * i)[1] for i in range(n_arrays)]
    first = sorted(range(n_arrays), key=offsets.__getitem__)[:3]
    assert first == [10, 0, 5] and offsets[10] == 0  # compact_top, compact_nodes, value
    monkeypatch.setattr(_format, "_WALK_FIRST", ())
    est.save(old)
    monkeypatch.undo()
    assert old.read_bytes() != data and len(old.read_bytes()) == len(data)
    for path in (new, old):
        for mmap in (True, False):
            back = load(path, mmap=mmap)
            assert np.array_equal(back.predict_proba(Xq[:1]), est.predict_proba(Xq[:1]))
            assert np.array_equal(back.predict_proba(Xq), est.predict_proba(Xq))
            assert np.array_equal(back._forest.nodes, est._forest.nodes)
    writev = os.writev

    def short_writev(fd, parts):  # at most 1000 bytes a call, split inside a part
        head, n = [], 0
        for p in parts:
            head.append(memoryview(p)[: 1000 - n])
            n += len(head[-1])
            if n == 1000:
                break
        return writev(fd, head)

    monkeypatch.setattr(os, "writev", short_writev)
    est.save(tmp_path / "short.fgf")
    monkeypatch.delattr(os, "writev")
    est.save(tmp_path / "plain.fgf")
    assert (tmp_path / "short.fgf").read_bytes() == data == (tmp_path / "plain.fgf").read_bytes()


def _vm_flags(path) -> list:
    """The VmFlags of each mapping of `path` in this process (Linux /proc/self/smaps)."""
    flags, mine = [], False
    with open("/proc/self/smaps") as fh:
        lines = fh.read().splitlines()
    for line in lines:
        f = line.split()
        if not f[0].endswith(":"):  # a mapping's first line: address range, ..., its file if any
            mine = f[-1] == str(path)
        elif mine and f[0] == "VmFlags:":
            flags.append(f[1:])
    return flags


@pytest.mark.skipif(
    not os.path.exists("/proc/self/smaps") or not os.path.exists("/sys/kernel/mm/transparent_hugepage"),
    reason="needs Linux's /proc/self/smaps and transparent huge pages in the kernel",
)
def test_first_few_row_call_asks_for_huge_pages(tmp_path, rng):
    """A loaded file of at least 2 MiB gets madvise(MADV_HUGEPAGE) (VmFlags "hg") when its few-row
    predictor is first built, not at load; a smaller file, a read file and other objects get nothing."""
    X = _data(rng, 4000, 13, nan=0)
    big = RandomForestRegressor(n_estimators=12, random_state=0).fit(X, X[:, 0] + rng.random(4000))
    path = tmp_path / "big.fgf"
    big.save(path)
    assert path.stat().st_size >= 2 << 20
    back = load(path)
    assert _vm_flags(path) and all("hg" not in f for f in _vm_flags(path))
    assert np.array_equal(back.predict(X[:1]), big.predict(X[:1]))
    assert all("hg" in f for f in _vm_flags(path))
    small = tmp_path / "small.fgf"
    RandomForestRegressor(n_estimators=2, max_depth=3, random_state=0).fit(X, X[:, 0]).save(small)
    s = load(small)
    s.predict(X[:1])
    assert _vm_flags(small) and all("hg" not in f for f in _vm_flags(small))
    assert load(path, mmap=False).predict(X[:1]) == back.predict(X[:1])
    for other in (np.zeros(3), X, "x", None):
        assert ops.tree_file_hugepages(other) is None


def test_failed_save_leaves_no_partial_file(tmp_path, rng, fitted, monkeypatch):
    """A save that fails part way removes its temporary file and leaves what `path` held."""
    path = tmp_path / "f.fgf"
    fitted[1].save(path)
    old = path.read_bytes()

    def write_half(fh, header, data_offset, arrays):
        fh.write(header)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_format, "_write", write_half)
    with pytest.raises(OSError, match="No space"):
        fitted[0].save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["f.fgf"] and path.read_bytes() == old
    taken = tmp_path / "dir.fgf"  # the rename fails: a non-empty directory has the name
    taken.mkdir()
    (taken / "x").write_bytes(b"x")
    with pytest.raises(OSError):
        fitted[0].save(taken)
    assert sorted(os.listdir(tmp_path)) == ["dir.fgf", "f.fgf"]
    Xq = _data(rng, 9, 13)
    assert np.array_equal(load(path).predict(Xq), fitted[1].predict(Xq))  # the old file, intact


def test_saving_over_a_mapped_file_keeps_the_mapped_forest(tmp_path, rng, fitted):
    """save renames a new file over the path: an estimator mapping the old one keeps predicting it."""
    path = tmp_path / "f.fgf"
    fitted[0].save(path)
    mapped = load(path)
    Xq = _data(rng, 30, 13)
    fitted[1].save(path)
    assert np.array_equal(mapped.predict_proba(Xq[:1]), fitted[0].predict_proba(Xq[:1]))
    assert np.array_equal(mapped.predict_proba(Xq), fitted[0].predict_proba(Xq))
    assert np.array_equal(load(path).predict(Xq), fitted[1].predict(Xq))


def _layout(data: bytes):
    """(data offset, [(dtype, offset, nbytes)]) of a version 2 or 3 file, and where its attributes end."""
    fixed = _format._FIXED.unpack_from(data, 0)
    data_offset, n_arrays, n_text = fixed[3], fixed[11], fixed[12]
    table = [
        (dt.rstrip(b"\0").decode(), off, nb)
        for dt, off, nb in _format._ENTRY.iter_unpack(data[80 : 80 + 24 * n_arrays])
    ]
    return data_offset, table, 80 + 24 * n_arrays + n_text


def test_load_rejects_damaged_files(tmp_path, rng, fitted):
    path = tmp_path / "f.fgf"
    fitted[0].save(path)
    good = path.read_bytes()
    bad = tmp_path / "bad.fgf"
    Xq = _data(rng, 20, 13)

    def use(est):  # every reader of the node arrays: the few-row path, the batch kernel, the flat ones
        est.predict_proba(Xq[:1])
        est.predict_proba(Xq)
        est.feature_importances_  # noqa: B018
        est.apply(Xq)

    def expect(data, msg, first_row=False):
        bad.write_bytes(data)
        with pytest.raises(ForestFileError, match=msg) as e:
            est = load(bad)
            if first_row:  # damage the one-row walk meets: caught by it
                est.predict_proba(Xq[:1])
            else:
                use(est)
        assert str(bad) in str(e.value)

    data_offset, table, header_end = _layout(good)
    expect(b"", "shorter")
    expect(good[:20], "shorter")
    expect(good[:60], "shorter than the 80-byte")
    expect(b"PK" + good[2:], "magic")
    expect(good[:8] + (99).to_bytes(4, "little") + good[12:], "version 99.*upgrade")
    expect(good[:100], "truncated")
    expect(good[:-1], "truncated")
    for at in (20, 33, 50, 90, header_end - 5):  # any header byte: the checksum
        flip = bytearray(good)
        flip[at] ^= 0x20
        expect(bytes(flip), "checksum")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.fgf")

    def damaged(array: int, index: int, value: int, nbytes: int = 4) -> bytes:
        at = data_offset + table[array][1] + index
        out = bytearray(good)
        out[at : at + nbytes] = value.to_bytes(nbytes, "little", signed=True)
        return bytes(out)

    cnodes = fitted[0]._forest._compact.arrays()[0]
    assert cnodes[0, 2] > 1  # node 0 is a split
    expect(damaged(0, 8, 2**31 - 1), "right child")  # the first root's right child outside its tree
    expect(damaged(0, 8, 1), "right child")  # ... at the root's left child
    expect(damaged(0, 0, 13), "feature 13")  # the root splits on a feature X lacks
    expect(damaged(0, 0, -5), "feature")
    # the one-row walk reads each tree's top block first (version 3): damage there is caught by it
    top = fitted[0]._forest._saved_top if "_saved_top" in fitted[0]._forest.__dict__ else load(path)._forest._saved_top
    assert top.shape[1] == 208 and top[0, 0] >= 0  # 6 levels; the first root splits
    expect(damaged(10, 0, 13), "feature 13", first_row=True)
    expect(damaged(10, 0, -(2**31) + 5), "source", first_row=True)  # a leaf whose row of values is far outside
    words = np.frombuffer(good, "<i4", top.size, data_offset + table[10][1]).reshape(top.shape).copy()
    words[:, -64:] = 10**6  # every frontier entry outside its tree: the walk meets one
    expect(
        good[: data_offset + table[10][1]] + words.tobytes() + good[data_offset + table[10][1] + top.nbytes :],
        "top",
        first_row=True,
    )
    _, _, croots = fitted[0]._forest._compact.arrays()
    sizes = np.diff(np.append(croots, len(cnodes)))
    leaves = np.flatnonzero(cnodes[:, 2] == np.arange(len(cnodes)) - np.repeat(croots, sizes))
    words = np.frombuffer(good, "<i4", cnodes.size, data_offset).reshape(cnodes.shape).copy()
    words[leaves, 0] = -3  # every leaf's row of values negative: the walk meets one below the top
    expect(good[:data_offset] + words.tobytes() + good[data_offset + cnodes.nbytes :], "node", first_row=True)
    leaf = int(leaves[0])  # a leaf of the first tree
    expect(damaged(1, 4 * leaf, 10**6), "source")  # its node id outside the forest
    expect(damaged(1, 4 * leaf, 0), "compact_source")  # a node id twice
    expect(damaged(2, 8, 0, 8), "roots")  # compact_roots: two trees at node 0
    expect(damaged(3, 8, 10**9, 8), "offsets")
    # random damage in the data never crashes: it loads (a wrong value) or raises ForestFileError
    for _ in range(200):
        out = bytearray(good)
        for pos in rng.integers(data_offset, len(good), size=3):
            out[pos] = int(rng.integers(0, 256))
        bad.write_bytes(bytes(out))
        try:
            with warnings.catch_warnings():  # garbage numbers may warn in NumPy (a wrong value)
                warnings.simplefilter("ignore", RuntimeWarning)
                use(load(bad))
        except ForestFileError:
            continue
    assert MAGIC == good[:8]


def test_many_processes_map_one_file(tmp_path, rng, fitted):
    """mmap=True in several processes at once: each maps the same file and predicts as the saver."""
    path = tmp_path / "f.fgf"
    fitted[0].save(path)
    Xq = _data(rng, 40, 13)
    np.save(tmp_path / "X.npy", Xq)
    code = (
        "import sys, numpy as np; from forgeml.ensemble import load; e = load(sys.argv[1]); X = np.load(sys.argv[2]);"
        "np.save(sys.argv[3], np.concatenate([e.predict_proba(X[:1]), e.predict_proba(X)]))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(pathlib.Path(_format.__file__).parents[2])] + sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(path), str(tmp_path / "X.npy"), str(tmp_path / f"{i}.npy")], env=env
        )
        for i in range(3)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    want = np.concatenate([fitted[0].predict_proba(Xq[:1]), fitted[0].predict_proba(Xq)])
    for i in range(3):
        assert np.array_equal(np.load(tmp_path / f"{i}.npy"), want)


def test_few_row_inputs_equal_the_batch(rng, tmp_path):
    """Every few-row input route (one row, a few, float32 / float64, strided views, NaN rows, a
    DataFrame) on a fitted and (no feature names) on freshly loaded forests gives the rows of one large batch, bit
    for bit; bad input still raises scikit-learn's errors."""
    pd = pytest.importorskip("pandas")
    X = _data(rng, 400, 13, nan=0.2)
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 5]) > 0).astype(int)
    cols = [f"f{j}" for j in range(13)]
    clf = RandomForestClassifier(n_estimators=9, random_state=3).fit(pd.DataFrame(X, columns=cols), y)
    Xq = _data(rng, 96, 13, nan=0.3).astype(np.float64)
    Xq[3] = np.nan  # a row of NaN only
    want = clf.predict_proba(pd.DataFrame(Xq, columns=cols))  # the batch path (96 rows, threads)
    for est in (clf,):  # (feature names can't be stored in a compact forest file)
        for rows in (slice(0, 1), slice(3, 4), slice(5, 8), slice(10, 41), slice(0, 96, 7)):
            for dtype in (np.float32, np.float64):
                got = est.predict_proba(pd.DataFrame(Xq[rows].astype(dtype), columns=cols))
                assert np.array_equal(got, want[rows]), (rows, dtype)
        with pytest.warns(UserWarning, match="feature names"):  # fitted with names, given an ndarray
            assert np.array_equal(est.predict_proba(Xq[:1]), want[:1])
        with pytest.raises(ValueError, match="feature names"):
            est.predict_proba(pd.DataFrame(Xq[:1], columns=cols[::-1]))
        with pytest.raises(ValueError, match="feature names"):  # scikit-learn checks the names first
            est.predict_proba(pd.DataFrame(Xq[:1, :12], columns=cols[:12]))
    plain = RandomForestClassifier(n_estimators=9, random_state=3).fit(X, y)
    want = plain.predict_proba(Xq)
    plain.save(tmp_path / "p.fgf")
    for est in (plain, load(tmp_path / "p.fgf"), load(tmp_path / "p.fgf")):
        for rows in (slice(0, 1), slice(3, 4), slice(5, 8), slice(0, 96, 7)):
            for dtype in (np.float32, np.float64):
                got = est.predict_proba(Xq[rows].astype(dtype))
                assert np.array_equal(got, want[rows]), (rows, dtype)
        assert np.array_equal(est.predict_proba(Xq[::5, :]), want[::5])  # strided view, no copy by the caller
        assert np.array_equal(est.predict_proba(np.asfortranarray(Xq[:2])), want[:2])
        assert np.array_equal(est.predict_proba(Xq[7].reshape(1, -1).tolist()), want[7:8])  # a list
        with pytest.raises(ValueError, match="13 features"):
            est.predict_proba(np.zeros((1, 14)))
        with pytest.raises(ValueError, match="infinity"):
            est.predict_proba(np.full((1, 13), -np.inf, dtype=np.float32))


def _random_forest_nodes(rng, sizes, d, pool, nan_threshold=0.05):
    """A flat forest (nodes (N, 4), roots) of random trees: tree t splits a random leaf sizes[t] times
    on features < d (d < 0: only feature 0 of -d), thresholds drawn from pool (a few NaN
    thresholds), NaN going left at random."""
    rows, roots = [], []
    for n_internal in sizes:
        base = len(rows)
        roots.append(base)
        tree = [[-1, 0, -1, -1]]
        leaves = [0]
        for _ in range(n_internal):
            i = leaves.pop(int(rng.integers(len(leaves))))
            thr = np.float32(np.nan) if rng.random() < nan_threshold else np.float32(rng.choice(pool))
            feat = int(rng.integers(max(d, 1))) | (int(rng.integers(2)) << 30)
            left = len(tree)
            tree += [[-1, 0, -1, -1], [-1, 0, -1, -1]]
            tree[i] = [feat, int(thr.view(np.int32)), base + left, base + left + 1]
            leaves += [left, left + 1]
        rows += tree
    return np.array(rows, dtype=np.int32), np.array(roots, dtype=np.int64)


@pytest.mark.parametrize("vector_isa", supported_isas("avx2"))
@pytest.mark.parametrize(
    "n_pool, sizes, d, want",
    [
        (40, [0, 3, 60, 400, 5], 9, ("one word", 1)),  # a lone leaf, trees shallower than the top table
        (254, [300] * 6, 9, ("one word", 1)),
        (3000, [900, 40, 3000], 9, ("two words", 2)),  # > 254 thresholds: 2-byte codes, offsets too far
        (10**6, [50000, 7], 1, ("floats", 1)),  # > 32766 thresholds of a feature: the float walk
        (3000, [2500], -2000, ("floats", 2)),  # a cut table (2000 x 4096) larger than the forest
    ],
)
def test_coded_walk_equals_float_walks(rng, n_pool, sizes, d, want, vector_isa):
    """The AVX2 / AVX-512 walks over quantized X (exact threshold codes; one- or two-word nodes; the top
    levels from a breadth-first table) against the portable walk and the flat kernel, bit for bit:
    values equal to thresholds, -0.0 / +0.0, +-inf thresholds, NaN thresholds and NaN rows both
    ways, 1, 2 and 5 outputs, tails, a tree selection, 1 and 2 threads."""
    pool = rng.standard_normal(n_pool).astype(np.float32)
    pool[:4] = [0.0, -0.0, np.inf, -np.inf]
    nodes, roots = _random_forest_nodes(rng, sizes, d, pool)
    d = abs(d)
    compact = ops.tree_compact_forest(nodes, roots, d)
    assert compact.coded_layout == want
    for k in (1, 2, 5):
        values = rng.standard_normal((len(nodes), k))
        for n in (1, 63, 64, 65, 97, 1043):
            X = rng.choice(pool, (n, d)) + np.where(rng.random((n, d)) < 0.5, 0, rng.standard_normal((n, d)))
            X = X.astype(np.float32)
            X[rng.random((n, d)) < 0.15] = np.nan
            X[rng.random((n, d)) < 0.05] = -0.0
            for trees in (None, [len(sizes) - 1, 0, 0]):
                sel = None if trees is None else np.array(trees)
                flat = ops.tree_forest_predict(X, nodes, values, roots if sel is None else roots[sel])
                for threads in (1, 2):
                    with isa_active("portable"):
                        assert np.array_equal(
                            ops.tree_compact_predict(compact, X, values, trees=sel, threads=threads), flat
                        )
                    with isa_active(vector_isa):
                        got = ops.tree_compact_predict(compact, X, values, trees=sel, threads=threads)
                    assert np.array_equal(got, flat), (k, n, trees, threads)


def _recrc(buf: bytearray) -> None:
    """Sets the header CRC of a (changed) file's bytes as save writes it, where its header fits."""
    import zlib

    A, J = _format._FIXED.unpack_from(buf, 0)[11:13]
    end = 80 + 24 * A + J
    if end <= len(buf):
        buf[12:16] = zlib.crc32(bytes(buf[16:end])).to_bytes(4, "little")


def test_file_load_takes_a_file_exactly_when_the_checks_pass(tmp_path, fitted):
    """ops.tree_file_load's checks in C (the header, CRC and forest table) against load's Python
    checks (_format._checked, which names what failed): every byte of the fixed fields and the
    table changed to 4 values, the CRC set again so the other checks are reached. Each file either
    passes both, with the same views, table and attribute text, or is handed to the Python checks
    (tree_file_map's result). Then a version 2 file and extra attribute arrays (2-D, 0-d, bool,
    unicode) load the same through both paths."""
    est = fitted[0]
    path = tmp_path / "f.fgf"
    est.save(path)
    good = bytearray(path.read_bytes())
    A = _format._FIXED.unpack_from(good, 0)[11]

    def both(p):
        fast = ops.tree_file_load(str(p))
        try:
            slow = _format._checked(str(p), *ops.tree_file_map(str(p)))
        except _format.ForestFileError:
            slow = None
        if slow is None:
            assert len(fast) == 2 and fast[0].readonly  # tree_file_map's (memoryview, header)
            return None
        assert len(fast) == 9 and fast[1:7] == slow[1:7]
        for a, b in zip(fast[8], slow[8], strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b) and not a.flags.writeable
        for e, f in zip(fast[7], slow[7], strict=True):
            if e is None or type(e) is tuple:
                assert e is None or e == tuple(f)
            else:  # an attribute array viewed in C: its bytes, 1-D
                assert e.ndim == 1 and bytes(e.tobytes()) == bytes(fast[0][slow[4] + f[1] : slow[4] + f[1] + f[2]])
        return fast

    assert both(path) is not None
    n_passed = 0
    for at in range(0, 80 + 24 * A):
        if 12 <= at < 16:
            continue
        for value in {0, 255, good[at] ^ 1, (good[at] + 64) & 255}:
            bad = bytearray(good)
            bad[at] = value
            _recrc(bad)
            p = tmp_path / "bad.fgf"
            p.write_bytes(bad)
            n_passed += both(p) is not None
    assert 0 < n_passed  # (a change to padding or an unused attribute entry passes both)

    est2 = RandomForestClassifier(n_estimators=3, random_state=0).fit(*_xy(np.random.default_rng(1)))
    est2.extra_ = np.arange(6.0).reshape(2, 3)
    est2.zero_d_ = np.array(7, dtype=np.int16)
    est2.flags_ = np.array([True, False, True])
    est2.names_ = np.array(["a", "bcd"])
    est2.save(path)
    got = _format.load(path)
    ref = _format.load(path, mmap=False)
    for name in ("extra_", "zero_d_", "flags_", "names_", "classes_", "_seeds"):
        a, b = getattr(got, name), getattr(ref, name)
        assert a.dtype == b.dtype == getattr(est2, name).dtype and a.shape == b.shape == getattr(est2, name).shape
        assert np.array_equal(a, b) and np.array_equal(a, getattr(est2, name))
    assert type(ops.tree_file_load(str(path))[7][-1]) is tuple  # the unicode array: checked and viewed in Python


def _xy(rng):
    X = rng.normal(size=(200, 5))
    return X, (X[:, 0] > 0).astype(int)


def test_file_map_reads_the_fixed_header(tmp_path, fitted):
    """ops.tree_file_map: the fields struct unpacks and zlib's CRC-32 of the rest of the header, None
    where the file is too short for them; OSError as open raises it."""
    import zlib

    path = tmp_path / "f.fgf"
    fitted[0].save(path)
    good = path.read_bytes()
    view, fixed = ops.tree_file_map(path)
    assert bytes(view) == good and view.readonly
    end = 80 + 24 * fixed[11] + fixed[12]
    assert fixed == (*_format._FIXED.unpack_from(good, 0), zlib.crc32(good[16:end]))
    for size, want in ((0, None), (79, None), (80, "fields"), (end - 1, "fields"), (end, "crc")):
        (tmp_path / "cut.fgf").write_bytes(good[:size])
        view, got = ops.tree_file_map(str(tmp_path / "cut.fgf"))
        assert len(view) == size
        assert (got is None) == (want is None)
        if want is not None:
            assert got[:13] == _format._FIXED.unpack_from(good, 0)
            assert got[13] == (zlib.crc32(good[16:end]) if want == "crc" else None)
    with pytest.raises(FileNotFoundError):
        ops.tree_file_map(tmp_path / "missing.fgf")
    with pytest.raises(OSError):  # a directory cannot be mapped
        ops.tree_file_map(tmp_path)
