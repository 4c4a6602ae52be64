"""The CUDA tree kernels (csrc/cuda/tree.cu) under the SIMT emulator, against NumPy and the CPU
split scan."""
import numpy as np
import pytest

from forgeml import ops

_emu = pytest.importorskip("forgeml._emu", reason="forgeml was built without FORGEML_TESTING=ON")


@pytest.fixture(params=["forward", "shuffled"])
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
