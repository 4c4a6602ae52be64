"""The CUDA tree kernels (csrc/cuda/tree.cu) under the SIMT emulator, against NumPy and the CPU
split scan."""
import numpy as np
import pytest

from forgeml import ops

_emu = pytest.importorskip("forgeml._emu", reason="forgeml was built without FORGEML_TESTING=ON")


@pytest.fixture(params=["forward", "shuffled", "reversed"])
def order(request):
    _emu.set_thread_order(request.param, seed=3)
    yield request.param
    _emu.set_thread_order("forward")


def _node(rng, n=3001, d=5, classes=3):
    codes = rng.integers(0, 40, size=(n, d)).astype(np.uint8)
    codes[rng.random((n, d)) < 0.05] = 255
    rows = np.sort(rng.choice(n, size=n // 2 + 7, replace=False)).astype(np.int32)
    w = rng.integers(1, 4, size=n).astype(np.float64)   # integer weights: sums exact in any order
    cls = rng.integers(0, classes, size=n).astype(np.int32)
    cls[codes[:, 0] < 10] = 0                            # something worth splitting on
    y = rng.normal(size=n) + (codes[:, 1] < 20)
    return codes, rows, w, cls, y


def _numpy_hist(codes, rows, w, cls=None, y=None, H=3):
    d = codes.shape[1]
    hw = np.zeros((d, 256, H))
    cnt = np.zeros((d, 256), np.uint32)
    for f in range(d):
        b = codes[rows, f]
        np.add.at(cnt[f], b, 1)
        if cls is not None:
            np.add.at(hw[f], (b, cls[rows]), w[rows])
        else:
            np.add.at(hw[f, :, 0], b, w[rows])
            np.add.at(hw[f, :, 1], b, w[rows] * y[rows])
            np.add.at(hw[f, :, 2], b, w[rows] * y[rows] ** 2)
    return hw, cnt


def _dense(hw, cnt, classify):
    """compact (hw, cnt) -> the (d, 256, S) layout of ops.tree_best_split."""
    W = hw.sum(axis=2) if classify else hw[:, :, 0]
    rest = hw if classify else hw[:, :, 1:]
    return np.concatenate([cnt[:, :, None].astype(float), W[:, :, None], rest], axis=2)


def test_histogram_classification(rng, order):
    codes, rows, w, cls, _ = _node(rng)
    hw, cnt = _emu.tree_histogram(codes, rows, cls, w, None, 3)
    ref_hw, ref_cnt = _numpy_hist(codes, rows, w, cls=cls, H=3)
    np.testing.assert_array_equal(cnt, ref_cnt)
    np.testing.assert_array_equal(hw, ref_hw)


def test_histogram_regression(rng, order):
    codes, rows, w, _, y = _node(rng, n=1201, d=3)
    hw, cnt = _emu.tree_histogram(codes, rows, None, w, y, 3)
    ref_hw, ref_cnt = _numpy_hist(codes, rows, w, y=y, H=3)
    np.testing.assert_array_equal(cnt, ref_cnt)
    np.testing.assert_allclose(hw, ref_hw, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("criterion,crit_id", [("gini", 0), ("entropy", 1), ("squared_error", 2)])
@pytest.mark.parametrize("min_leaf", [1, 40])
def test_split_scan_matches_cpu(rng, criterion, crit_id, min_leaf):
    classify = criterion != "squared_error"
    codes, rows, w, cls, y = _node(rng, n=2001, d=6)
    hw, cnt = _numpy_hist(codes, rows, w, cls=cls if classify else None, y=y, H=3)
    dense = _dense(hw, cnt, classify)
    total = dense[0].sum(axis=0)
    proxy, bins, nan_left = _emu.tree_split_scan(hw, cnt, crit_id, total, float(min_leaf), 0.0)
    for f in range(codes.shape[1]):
        feat, b, nl, p = ops.tree_best_split(dense[f:f + 1], total, criterion=criterion, min_samples_leaf=min_leaf)
        if feat < 0:
            assert bins[f] == -1 and proxy[f] == -np.inf
            continue
        assert proxy[f] == pytest.approx(p, rel=1e-12)
        assert (bins[f], bool(nan_left[f])) == (b, nl)


def test_numpy_fallbacks_match_emulated_kernels(rng):
    codes, rows, w, cls, y = _node(rng, n=901, d=4)
    hw, cnt = ops.tree_node_histogram(codes, rows, w, y_class=cls, n_classes=3)
    ehw, ecnt = _emu.tree_histogram(codes, rows, cls, w, None, 3)
    np.testing.assert_array_equal(cnt, ecnt)
    np.testing.assert_array_equal(hw, ehw)
    total = _dense(hw, cnt, True)[0].sum(axis=0)
    for a, b in zip(ops.tree_split_scan(hw, cnt, total, criterion="gini"), _emu.tree_split_scan(hw, cnt, 0, total, 1.0, 0.0)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    rhw, rcnt = ops.tree_node_histogram(codes, rows, w, y=y)
    np.testing.assert_allclose(rhw, _emu.tree_histogram(codes, rows, None, w, y, 3)[0], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="exactly one"):
        ops.tree_node_histogram(codes, rows, w)
    with pytest.raises(ValueError, match="rows"):
        ops.tree_node_histogram(codes, np.array([0, 901], np.int32), w, y=y)


# ---------------------------------------------------------------- forgeml.ops on CuPy arrays
# (a real GPU where one is usable; the CuPy stand-in and _emu.device everywhere: see conftest.cupy)

@pytest.mark.parametrize("criterion", ["gini", "squared_error"])
def test_ops_on_cupy_match_numpy(rng, criterion, cupy, copies):
    """tree_node_histogram and tree_split_scan on CuPy arrays: CUDA kernels, CuPy results, the
    same numbers as the NumPy path; the histograms never leave the device between the two."""
    codes, rows, w, cls, y = _node(rng, n=501, d=4)
    classify = criterion != "squared_error"
    target = dict(y_class=cls, n_classes=3) if classify else dict(y=y)
    hw, cnt = ops.tree_node_histogram(codes, rows, w, **target)
    dev = {k: cupy.asarray(v) if isinstance(v, np.ndarray) else v for k, v in target.items()}
    args = [cupy.asarray(a) for a in (codes, rows, w)]
    if copies is not None:
        copies.reset()
    hw_d, cnt_d = ops.tree_node_histogram(*args, **dev)
    assert isinstance(hw_d, cupy.ndarray) and isinstance(cnt_d, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(hw_d), hw, rtol=1e-12)  # integer weights: exact sums
    np.testing.assert_array_equal(cupy.asnumpy(cnt_d), cnt)
    if classify:
        total = np.r_[rows.size, w[rows].sum(), np.bincount(cls[rows], w[rows], minlength=3)]
    else:
        total = np.r_[rows.size, w[rows].sum(), (w * y)[rows].sum(), (w * y * y)[rows].sum()]
    got = ops.tree_split_scan(hw_d, cnt_d, cupy.asarray(total), criterion=criterion, min_samples_leaf=5)
    if copies is not None:  # the histogram readbacks above are the test's own
        assert copies.h2d == 1 and copies.d2h == 2
    want = ops.tree_split_scan(hw, cnt, total, criterion=criterion, min_samples_leaf=5)
    for g in got:
        assert isinstance(g, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(got[0]), want[0], rtol=1e-9)
    np.testing.assert_array_equal(cupy.asnumpy(got[1]), want[1])
    np.testing.assert_array_equal(cupy.asnumpy(got[2]), want[2])


def test_cpu_only_tree_ops_refuse_cupy(cupy):
    with pytest.raises(RuntimeError, match="CPU only .*cupy.asnumpy"):
        ops.tree_bin_edges(cupy.asarray(np.ones((5, 2), np.float32)))


# ---------------------------------------------------------------- GPU tree growth
# The partition kernel against NumPy's stable partition, then whole trees grown by
# ops.tree_grow_forest_gpu (the kernels driven from the host, on CuPy arrays) against the CPU
# grower's trees for the same seeds and codes.

def test_partition_kernel_is_stable(rng, order):
    n, d = 1501, 3
    codes = rng.integers(0, 30, size=(n, d)).astype(np.uint8)
    codes[rng.random((n, d)) < 0.1] = 255
    rows = rng.permutation(n).astype(np.int32)[:1300]
    ranges = np.array([[0, 3], [3, 3], [10, 700], [700, 1300]], np.int64)  # < one tile, empty, > two tiles
    feature = np.array([0, 1, 2, 1], np.int32)
    thr = np.array([14, 3, 20, 0], np.int32)
    nan_left = np.array([1, 0, 0, 1], np.int32)
    out, n_left = _emu.tree_partition(codes, rows, ranges, feature, thr, nan_left)
    want = rows.copy()
    for z, (a, b) in enumerate(ranges):
        c = codes[rows[a:b], feature[z]]
        go = np.where(c == 255, bool(nan_left[z]), c <= thr[z])
        want[a:b] = np.r_[rows[a:b][go], rows[a:b][~go]]
        assert n_left[z] == go.sum()
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(out[3:10], rows[3:10])  # outside every range: untouched


@pytest.mark.parametrize("blocks", [0, 1, 2, 3, 7, 64])
def test_multi_block_partition_is_stable(rng, order, blocks):
    """partition_into (the grower's partition: out of place, several blocks per node, each placing
    its rows after those of the blocks before it) against NumPy's stable partition."""
    n, d = 3001, 3
    codes = rng.integers(0, 30, size=(n, d)).astype(np.uint8)
    codes[rng.random((n, d)) < 0.1] = 255
    rows = rng.permutation(n).astype(np.int32)[:2900]
    ranges = np.array([[0, 3], [3, 3], [10, 700], [700, 2897]], np.int64)  # < one tile, empty, several tiles
    feature = np.array([0, 1, 2, 1], np.int32)
    thr = np.array([14, 3, 20, 0], np.int32)
    nan_left = np.array([1, 0, 0, 1], np.int32)
    out, n_left, launches = _emu.tree_partition_into(codes, rows, ranges, feature, thr, nan_left, blocks)
    want = np.full_like(rows, -1)
    for z, (a, b) in enumerate(ranges):
        c = codes[rows[a:b], feature[z]]
        go = np.where(c == 255, bool(nan_left[z]), c <= thr[z])
        want[a:b] = np.r_[rows[a:b][go], rows[a:b][~go]]
        assert n_left[z] == go.sum()
    np.testing.assert_array_equal(out, want)  # outside every range: untouched (-1)
    assert launches == (1 if blocks == 1 else 2)


def test_gpu_forest_is_the_same_for_any_worker_count(rng, cupy):
    """Trees grown concurrently (one host thread and stream per worker, trees taken in any
    order) are the sequential ones and the CPU's, bootstrap draws included. Every parent here is
    small enough for split_pair (csrc/bind/tree_gpu_grower.h): batched, the pairs of all trees go
    to the batcher, one upload, launch, download and sync per batch; batch=False, one launch,
    download and sync per pair; fused=False, one upload, a memset, up to four launches, one
    download and one sync per pair."""
    from forgeml.ops import _tree_gpu

    codes, cls, _ = _binned(rng, 409, 5, 3)
    w = rng.integers(0, 3, size=len(cls)).astype(np.float64)
    seeds = np.arange(7, dtype=np.uint64) * 1000 + 3
    T = len(seeds)
    kw = dict(n_classes=3, max_features=2, bootstrap=True, max_depth=7)
    want = ops.tree_grow_forest(codes, cls, w, seeds, threads=1, **kw)
    args = cupy.asarray(codes), cupy.asarray(cls), cupy.asarray(w), seeds
    for workers, fused, batch in ((1, True, True), (3, True, True), (7, True, True), (20, True, True),
                                  (3, True, False), (3, False, True)):
        got = ops.tree_grow_forest_gpu(*args, workers=workers, fused=fused, batch=batch, **kw)
        _assert_same_trees(got, want, exact=True)
        c = _tree_gpu.last_counts
        pairs = int((want["feature"] >= 0).sum())
        assert c["pairs"] == pairs and 0 < c["leaf_pairs"] < pairs
        # nothing where both children are leaves; per tree: its rows and weights (2 uploads), the
        # root's histogram (1 upload, 1 memset, 1 launch, 2 downloads, 1 sync) and scan (1 upload,
        # 1 launch, 1 download, 1 sync)
        work = pairs - c["leaf_pairs"]
        batches, alone = c["batches"], work - c["batched"]  # alone: pairs with device work of their own
        assert c["syncs"] == alone + batches + 2 * T and c["d2h"] == alone + batches + 3 * T
        if fused and batch:
            assert c["batched"] == work and 1 <= batches <= work
            if workers == 1:
                assert batches == work  # nobody to wait for: every pair alone in its batch
        else:
            assert c["batched"] == batches == 0
        if fused:
            assert c["launches"] == alone + batches + 2 * T and c["h2d"] == 4 * T + batches and c["memsets"] == T
        else:  # launches: partition (1, or 2 for nodes over 2048 rows), histograms and scan of the children
            assert c["h2d"] == work + 4 * T
            assert c["launches"] <= 4 * work + 2 * T and c["memsets"] <= work + T
        # the workers' host seconds: every phase measured, the phases within the total
        phases = [c[k] for k in ("issue_s", "wait_s", "prepare_s")]
        assert min(phases) >= 0 and c["issue_s"] > 0 and sum(phases) <= c["grow_s"] + 1e-9
        assert c["host_s"] == pytest.approx(c["grow_s"] - sum(phases), abs=1e-9)
    with pytest.raises(ValueError, match="workers"):
        ops.tree_grow_forest_gpu(*args, workers=0, **kw)


@pytest.mark.parametrize("case", [
    dict(n=6007, classes=3, criterion="gini", bootstrap=True, max_depth=8),
    dict(n=2311, classes=2, criterion="entropy", max_features=2, min_samples_leaf=2),
    dict(n=3001, classes=12, criterion="gini", max_depth=6),  # 12 classes: split_pair does not fit, never fused
    dict(n=6007, classes=1, criterion="squared_error", bootstrap=True, max_depth=7),
])
def test_gpu_fused_pairs_match_cpu_on_both_sides_of_the_threshold(rng, cupy, case):
    """Parents over and under split_pair's 2048 rows in one tree (odd sizes, NaN codes, bootstrap,
    one searched child or two): the fused path's trees are the CPU's and the separate kernels'
    (bit for bit with integer weights; regression to rounding). Pairs that took the separate
    kernels each made one upload and one memset; fused ones none."""
    from forgeml.ops import _tree_gpu

    case = dict(case)
    n, classes = case.pop("n"), case.pop("classes")
    codes, cls, score = _binned(rng, n, 5, max(classes, 2))
    classify = case["criterion"] != "squared_error"
    target = cls if classify else score
    w = rng.integers(1, 3, size=n).astype(np.float64)  # integer: exact sums; no zeros: big roots
    seeds = np.array([4, 9], np.uint64)
    kw = dict(n_classes=classes, **case)
    want = ops.tree_grow_forest(codes, target, w, seeds, threads=1, **kw)
    args = cupy.asarray(codes), cupy.asarray(target), cupy.asarray(w), seeds
    counts = {}
    for fused in (True, False):
        got = ops.tree_grow_forest_gpu(*args, workers=2, fused=fused, batch=True, **kw)
        _assert_same_trees(got, want, exact=classify)
        counts[fused] = dict(_tree_gpu.last_counts)
    c, T = counts[True], len(seeds)
    work = c["pairs"] - c["leaf_pairs"]
    per_tree = T * (4 if case.get("bootstrap") else 3)  # uploads: rows (and weights), the root's two
    separate = c["h2d"] - per_tree - c["batches"]  # pairs that took the separate kernels
    assert separate + c["batched"] == work
    assert c["memsets"] == separate + T and c["syncs"] == separate + c["batches"] + 2 * T
    assert c["d2h"] == separate + c["batches"] + 3 * T
    assert counts[False]["h2d"] - per_tree == work and counts[False]["batches"] == 0
    split = want["feature"] >= 0
    if classes > 8:
        assert separate == work
    else:
        assert 0 < separate < work  # both paths in one fit
        assert (want["n_samples"][split] > 2048).any() and (want["n_samples"][split] <= 2048).any()


def test_gpu_trees_equal_cpu_with_multi_block_partitions(rng, cupy):
    """Nodes of thousands of rows: the partition runs on several blocks (count, then scatter) and
    the row buffers alternate by depth; the trees are still the CPU's."""
    from forgeml.ops import _tree_gpu

    codes, cls, _ = _binned(rng, 6007, 3, 2)
    w = np.ones(len(cls))
    seeds = np.array([1, 2], np.uint64)
    kw = dict(n_classes=2, max_depth=5, bootstrap=True)
    want = ops.tree_grow_forest(codes, cls, w, seeds, threads=1, **kw)
    got = ops.tree_grow_forest_gpu(cupy.asarray(codes), cupy.asarray(cls), cupy.asarray(w), seeds, workers=2, **kw)
    _assert_same_trees(got, want, exact=True)
    assert (want["n_samples"][want["feature"] >= 0] > 2048).sum() >= 4  # split nodes partitioned by several blocks
    assert _tree_gpu.last_counts["pairs"] == (want["feature"] >= 0).sum()


def test_gpu_grower_errors_in_workers_reach_the_caller(cupy):
    """A tree that cannot grow (no weight) raises in its worker thread; the caller gets it."""
    codes = cupy.asarray(np.zeros((6, 2), np.uint8))
    with pytest.raises(ValueError, match="weight"):
        ops.tree_grow_forest_gpu(codes, cupy.asarray(np.zeros(6, np.int32)), cupy.asarray(np.zeros(6)), [1, 2, 3],
                                 n_classes=2, workers=3)


@pytest.mark.parametrize("case", [
    dict(criterion="gini", classes=3, bootstrap=True, max_features=2, max_depth=7),
    dict(criterion="entropy", classes=2, max_features=3, min_samples_leaf=2, max_depth=6),
    dict(criterion="squared_error", classes=1, bootstrap=True, max_depth=5, min_samples_leaf=4),
])
def test_gpu_batched_forests_equal_cpu_for_any_worker_count(rng, cupy, case):
    """The batcher (csrc/bind/tree_gpu_batcher.h) serves the small pairs of whichever trees are
    waiting; each tree still replays the CPU's depth-first decisions, so a forest of several trees
    is the CPU's field by field for 1, 3 and 8 workers (bit for bit with integer weights;
    regression to rounding), and the unbatched path's."""
    from forgeml.ops import _tree_gpu

    case = dict(case)
    classes = case.pop("classes")
    classify = case["criterion"] != "squared_error"
    codes, cls, score = _binned(rng, 509, 5, max(classes, 2))
    target = cls if classify else score
    w = rng.integers(0 if classify else 1, 3, size=len(cls)).astype(np.float64)
    seeds = np.arange(6, dtype=np.uint64) * 7 + 1
    kw = dict(n_classes=classes, **case)
    want = ops.tree_grow_forest(codes, target, w, seeds, threads=1, **kw)
    args = cupy.asarray(codes), cupy.asarray(target), cupy.asarray(w), seeds
    for workers in (1, 3, 8):
        got = ops.tree_grow_forest_gpu(*args, workers=workers, batch=True, **kw)
        _assert_same_trees(got, want, exact=classify)
        c = _tree_gpu.last_counts
        assert c["batched"] == c["pairs"] - c["leaf_pairs"] > 0 and 1 <= c["batches"] <= c["batched"]
    alone = ops.tree_grow_forest_gpu(*args, workers=3, batch=False, **kw)
    _assert_same_trees(alone, got, exact=classify)
    assert _tree_gpu.last_counts["batches"] == 0


@pytest.mark.parametrize("workers", [1, 3, 8])
def test_gpu_batcher_failures_reach_the_caller(rng, cupy, workers):
    """A worker that fails mid-tree (while others wait in the batcher) and a batch that fails (every
    pair in it) raise in the caller instead of leaving anyone blocked; the next fit is fine."""
    codes, cls, _ = _binned(rng, 301, 3, 2)
    w = np.ones(len(cls))
    seeds = np.arange(5, dtype=np.uint64)
    kw = dict(n_classes=2, max_depth=5, bootstrap=True)
    args = cupy.asarray(codes), cupy.asarray(cls), cupy.asarray(w), seeds
    with pytest.raises(RuntimeError, match="injected worker failure"):
        ops.tree_grow_forest_gpu(*args, workers=workers, batch=True, _fail_tree=2, **kw)
    with pytest.raises(RuntimeError, match="injected batch failure"):
        ops.tree_grow_forest_gpu(*args, workers=workers, batch=True, _fail_batch=3, **kw)
    want = ops.tree_grow_forest(codes, cls, w, seeds, threads=1, **kw)
    _assert_same_trees(ops.tree_grow_forest_gpu(*args, workers=workers, batch=True, **kw), want, exact=True)


def _binned(rng, n, d, classes, nan=0.05):
    X = rng.normal(size=(n, d)).astype(np.float32)
    X[:, 1] = np.round(X[:, 1] * 2)  # few distinct values: ties between candidates
    X[rng.random((n, d)) < nan] = np.nan
    edges, n_edges = ops.tree_bin_edges(X, max_bins=32)
    codes = ops.tree_bin_codes(X, edges, n_edges)
    score = np.nan_to_num(X[:, 0]) + 0.5 * np.nan_to_num(X[:, 2]) + 0.3 * rng.normal(size=n)
    cls = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1])).astype(np.int32)
    return codes, cls, score.astype(np.float64)


_TREE_FIELDS = ("feature", "left", "right", "thr_bin", "nan_left", "n_samples", "offsets", "depth")


def _assert_same_trees(got, want, exact):
    for k in _TREE_FIELDS:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    for k in ("impurity", "weighted_n", "value"):
        if exact:
            np.testing.assert_array_equal(got[k], want[k], err_msg=k)
        else:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-9, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("case", [
    dict(criterion="gini"),
    dict(criterion="entropy", max_features=2, min_samples_leaf=3),
    dict(criterion="gini", max_features=1, bootstrap=True, max_depth=4, seeds=[5, 6]),
    dict(criterion="gini", min_impurity_decrease=0.002, min_weight_fraction_leaf=0.01, min_samples_split=9),
])
def test_gpu_trees_equal_cpu_classification(rng, cupy, order, case):
    """Integer weights: every sum is exact, so the GPU's trees are the CPU's to the bit (splits,
    node order, statistics), ties between features included (the host replays the CPU's draws)."""
    case = dict(case)
    seeds = np.asarray(case.pop("seeds", [11]), np.uint64)
    codes, cls, _ = _binned(rng, 307, 4, 3)
    w = rng.integers(0, 3, size=len(cls)).astype(np.float64)  # zeros: rows left out
    want = ops.tree_grow_forest(codes, cls, w, seeds, n_classes=3, threads=1, **case)
    got = ops.tree_grow_forest_gpu(cupy.asarray(codes), cupy.asarray(cls), cupy.asarray(w), seeds, n_classes=3,
                                   **case)
    assert len(want["feature"]) > 15  # a real tree, not a stump
    _assert_same_trees(got, want, exact=True)


def _leaf_values(t, codes):
    """Value of the leaf each row of codes reaches in tree 0 of a grown dict (binned predict)."""
    node = np.zeros(len(codes), np.int64)
    for _ in range(int(t["depth"][0])):
        f = t["feature"][node]
        inner = f >= 0
        c = codes[np.arange(len(codes)), np.maximum(f, 0)]
        left = np.where(c == 255, t["nan_left"][node] == 1, c <= t["thr_bin"][node])
        node = np.where(inner, np.where(left, t["left"][node], t["right"][node]), node)
    return t["value"][node, 0]


@pytest.mark.parametrize("case", [dict(max_depth=6, min_samples_leaf=4), dict(max_depth=5, bootstrap=True)])
def test_gpu_trees_match_cpu_regression(rng, cupy, order, case):
    """Non-integer sums are added in another order on the GPU: where no two candidates tie to the
    last bits (nodes of a few rows aside) the splits are the CPU's, statistics equal to rounding."""
    codes, _, y = _binned(rng, 251, 3, 2, nan=0.0)
    codes[:, 1] = 0  # a constant feature: never split on
    w = np.ones(len(y))
    want = ops.tree_grow_forest(codes, y, w, [3], criterion="squared_error", threads=1, **case)
    got = ops.tree_grow_forest_gpu(cupy.asarray(codes), cupy.asarray(y), cupy.asarray(w), [3],
                                   criterion="squared_error", **case)
    assert not (want["feature"] == 1).any() and len(want["feature"]) > 15
    _assert_same_trees(got, want, exact=False)


def test_gpu_full_regression_tree_predicts_as_cpu(rng, cupy):
    """Fully grown: nodes of a few rows can tie between features to the last bits, and the GPU's
    other summation order may break such a tie the other way (a different but equally good tree).
    The documented tolerance: the first levels are the CPU's and the training rows get the same
    predictions (to rounding)."""
    codes, _, y = _binned(rng, 151, 3, 2, nan=0.0)
    w = np.ones(len(y))
    want = ops.tree_grow_forest(codes, y, w, [4], criterion="squared_error", threads=1)
    got = ops.tree_grow_forest_gpu(cupy.asarray(codes), cupy.asarray(y), cupy.asarray(w), [4],
                                   criterion="squared_error")
    for k in ("feature", "thr_bin", "left", "right"):
        np.testing.assert_array_equal(got[k][:3], want[k][:3], err_msg=k)
    np.testing.assert_allclose(_leaf_values(got, codes), _leaf_values(want, codes), rtol=1e-9, atol=1e-12)


def test_gpu_grower_rejects_what_it_cannot_grow(cupy):
    codes = cupy.asarray(np.zeros((5, 2), np.uint8))
    with pytest.raises(ValueError, match="criterion"):
        ops.tree_grow_forest_gpu(codes, cupy.asarray(np.ones(5)), cupy.asarray(np.ones(5)), [1], criterion="poisson")
    with pytest.raises(ValueError, match="y"):
        ops.tree_grow_forest_gpu(codes, cupy.asarray(np.array([0, 1, 2, 0, 1])), cupy.asarray(np.ones(5)), [1],
                                 n_classes=2)


def test_estimators_fit_on_cupy_grow_the_cpus_trees(rng, cupy):
    """DecisionTree* and RandomForest* on CuPy X: binned on the host, grown on the (emulated) GPU;
    the same trees as on NumPy X; predict on CuPy X goes through a host copy."""
    from forgeml.ensemble import RandomForestClassifier, RandomForestRegressor
    from forgeml.tree import DecisionTreeClassifier

    X = rng.normal(size=(203, 4)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    Xd = cupy.asarray(X)
    a = DecisionTreeClassifier(random_state=0).fit(X, y)
    b = DecisionTreeClassifier(random_state=0).fit(Xd, cupy.asarray(y))
    for k in ("feature", "threshold", "children_left", "children_right", "value", "impurity"):
        np.testing.assert_array_equal(getattr(b.tree_, k), getattr(a.tree_, k), err_msg=k)
    np.testing.assert_array_equal(b.predict(Xd), a.predict(X))
    sw = rng.integers(0, 3, size=len(y)).astype(np.float64)
    a = DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, y, sample_weight=sw)
    b = DecisionTreeClassifier(max_depth=4, random_state=0).fit(Xd, y, sample_weight=cupy.asarray(sw))
    np.testing.assert_array_equal(b.tree_.value, a.tree_.value)
    a = RandomForestClassifier(n_estimators=3, max_depth=5, random_state=1).fit(X, y)
    b = RandomForestClassifier(n_estimators=3, max_depth=5, random_state=1).fit(Xd, y)
    np.testing.assert_array_equal(b.predict_proba(X), a.predict_proba(X))
    r = X[:, 2] * 2 + rng.normal(size=len(X))
    a = RandomForestRegressor(n_estimators=2, max_depth=4, random_state=2).fit(X, r)
    b = RandomForestRegressor(n_estimators=2, max_depth=4, random_state=2).fit(Xd, r)
    np.testing.assert_allclose(b.predict(X), a.predict(X), rtol=1e-9)


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/maps"), reason="counts /proc/self/maps")
def test_emulated_forest_fits_do_not_leak_fiber_stacks(rng):
    """Each fit's worker threads run emulated blocks on fresh OS threads; their fiber stacks must be
    unmapped when those threads exit (they once leaked ~2000 mappings a fit, until pthread_create
    failed in a long test run)."""
    import cupy_standin

    codes, cls, _ = _binned(rng, 501, 4, 2)
    w = np.ones(len(cls))
    with cupy_standin.installed() as cp:  # "cuda" work on the emulator

        def fit():
            ops.tree_grow_forest_gpu(cp.asarray(codes), cp.asarray(cls), cp.asarray(w), np.arange(4, dtype=np.uint64),
                                     n_classes=2, max_depth=4, workers=2)

        def mappings():
            with open("/proc/self/maps") as f:
                return sum(1 for _ in f)

        fit()
        before = mappings()
        for _ in range(5):
            fit()
        after = mappings()
    assert after - before < 1000, f"{after - before} new mappings after 5 fits"
