"""The SIMT emulator (forgeml._emu, fiber mode) and its ThreadSanitizer executable (thread mode),
proved with the sample kernels of csrc/cuda/samples.cu."""

from __future__ import annotations

import numpy as np
import pytest
from tsan_helper import assert_clean, run_tsan

_emu = pytest.importorskip("forgeml._emu", reason="forgeml was built without FORGEML_TESTING=ON")

ORDERS = ["forward", "reversed", "shuffled"]


@pytest.fixture(params=ORDERS)
def order(request):
    _emu.set_thread_order(request.param, seed=7)
    yield request.param
    _emu.set_thread_order("forward")


def test_thread_order_setting():
    for name in ORDERS:
        _emu.set_thread_order(name)
        assert _emu.thread_order() == name
    _emu.set_thread_order("forward")
    with pytest.raises(ValueError, match="order"):
        _emu.set_thread_order("sideways")


@pytest.mark.parametrize("n, blocks, threads", [(1, 1, 32), (1001, 3, 64), (10007, 5, 96), (4099, 2, 1024)])
def test_block_reduce(order, n, blocks, threads):
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    partial, positives = _emu.block_reduce(x, blocks, threads)
    assert partial.shape == (blocks,)
    # Block b sums the grid-stride slices that start at b * threads.
    idx = np.arange(n)
    for b in range(blocks):
        own = x[(idx // threads) % blocks == b].astype(np.float64)
        assert abs(partial[b] - own.sum()) <= 1e-5 * np.abs(own).sum() + 1e-6
    assert positives == int((x > 0).sum())


@pytest.mark.parametrize("n, bins, blocks, threads", [(1, 1, 1, 32), (5001, 37, 3, 64), (20011, 300, 4, 128)])
def test_histogram(order, n, bins, blocks, threads):
    codes = np.random.default_rng(bins).integers(0, bins, size=n).astype(np.int32)
    hist = _emu.histogram(codes, bins, blocks, threads)
    np.testing.assert_array_equal(hist, np.bincount(codes, minlength=bins))


@pytest.mark.parametrize("rows, cols", [(1, 1), (45, 70), (97, 33), (0, 5)])
def test_transpose_2d_blocks(order, rows, cols):
    x = np.random.default_rng(rows).standard_normal((rows, cols)).astype(np.float32)
    np.testing.assert_array_equal(_emu.transpose(x), x.T)


def test_histogram_bad_codes():
    with pytest.raises(ValueError, match="codes"):
        _emu.histogram(np.array([0, 5], dtype=np.int32), 5, 1, 32)


def test_results_do_not_depend_on_block_threads():
    x = np.random.default_rng(3).standard_normal(3001).astype(np.float32)
    try:
        _emu.set_block_threads(1)
        serial = _emu.block_reduce(x, 4, 64)
        _emu.set_block_threads(2)
        parallel = _emu.block_reduce(x, 4, 64)
    finally:
        _emu.set_block_threads(0)
    np.testing.assert_array_equal(serial[0], parallel[0])  # one block, one OS thread: same order
    assert serial[1] == parallel[1]


@pytest.mark.parametrize("order_name", ORDERS)
def test_removed_barrier_gives_wrong_result(order_name):
    _emu.set_thread_order(order_name, seed=7)
    try:
        codes = np.random.default_rng(5).integers(0, 37, size=5001).astype(np.int32)
        ref = np.bincount(codes, minlength=37)
        np.testing.assert_array_equal(_emu.histogram(codes, 37, 3, 64), ref)
        broken = _emu.histogram(codes, 37, 3, 64, remove_barrier_for_test=True)
        assert not np.array_equal(broken, ref)
    finally:
        _emu.set_thread_order("forward")


@pytest.mark.parametrize(
    "kind, message",
    [
        (0, "divergent __syncthreads.*exited"),
        (1, "divergent __syncthreads.*line"),
        (2, "warp-synchronous call.*exited"),
        (3, "deadlock"),
    ],
)
def test_divergent_barrier_raises(order, kind, message):
    with pytest.raises(RuntimeError, match=message):
        _emu.divergent_barrier(kind)
    # The emulator is still usable afterwards.
    codes = np.arange(100, dtype=np.int32) % 7
    np.testing.assert_array_equal(_emu.histogram(codes, 7, 2, 32), np.bincount(codes))


# ---------------------------------------------------------------- thread mode under ThreadSanitizer

# Cases by family: csrc/emu/tsan_FAMILY.inc registers FAMILY_* cases, each checked against a float64
# reference inside the executable; "other" takes every remaining case (the samples, families
# without a group here). sgemm runs in test_gemm_cuda_emu.py::test_tsan_clean.
TSAN_GROUPS = {
    "other": {"reduce", "histogram", "transpose"},
    "conv": {"conv_forward", "conv_backward_data", "conv_backward_weight", "conv_large_tiles", "conv_pool_forward",
             "conv_pool_backward"},
    "rnn": {"rnn_simple", "rnn_lstm", "rnn_gru"},
    "tree": {"tree_histogram", "tree_split_scan", "tree_split_pair", "tree_batcher_groups", "tree_batcher_stress",
             "tree_grow_batched"},
    "svm": {"svm_local"},
    "lowp": {"lowp_bf16_simt", "lowp_bf16_tensor_cores", "lowp_int8_simt", "lowp_int8_tensor_cores"},
}
TSAN_ELSEWHERE = {"histogram_no_barrier", "sgemm"}


def _tsan_group(name, listed):
    family = [g for g in TSAN_GROUPS if g != "other"]
    if name != "other":
        return [c for c in listed if c.startswith(name + "_")]
    return [c for c in listed if c.split("_")[0] not in family and c not in TSAN_ELSEWHERE]


@pytest.mark.parametrize("group", list(TSAN_GROUPS))
def test_tsan_clean_on_real_kernels(group):
    cases = _tsan_group(group, run_tsan().stdout.split())
    assert TSAN_GROUPS[group] <= set(cases), cases
    assert_clean(*cases)


def test_tsan_reports_removed_barrier():
    r = run_tsan("histogram_no_barrier")
    assert "WARNING: ThreadSanitizer: data race" in r.stderr
    assert r.returncode != 0
