"""The CUDA convolution and pooling kernels (csrc/cuda/conv.cu) on the SIMT emulator, against the
float64 NumPy references of test_conv.py, with the threads of a block resumed in every order.
Shapes span several 64 x 64 tiles and the 16-deep K steps with odd sizes; the large-tile kernel
(conv_tile.cuh, 128 x 64 and 128 x 32 tiles, channels in multiples of 8) is forced on shapes that
span at least two of its tiles in each GEMM dimension. The GPU itself is exercised by the tests
marked gpu at the end."""
from __future__ import annotations

import math

import numpy as np
import pytest

from forgeml import ops
from test_conv import CASES, _ids, _rand, check_close, ref_conv, ref_conv_grad, ref_pool

_emu = pytest.importorskip("forgeml._emu", reason="forgeml was built without FORGEML_TESTING=ON")


@pytest.fixture(params=["forward", "reversed", "shuffled"])
def order(request):
    _emu.set_thread_order(request.param, seed=3)
    yield request.param
    _emu.set_thread_order("forward")


# C <= 4 takes backward-data's one-thread-per-pixel kernel (C = 1 and 3 in CASES; 2 and 4 with strides
# and dilation here) unless w is over 8192 floats (the last case: the GEMM).
EMU_CASES = CASES[:6] + [(1, 9, 10, 70, 1, 1, 65, 1, 1, "valid"), (1, 5, 17, 9, 3, 3, 70, (1, 2), 1, "same"),
                         (2, 8, 9, 2, 3, 2, 12, (1, 2), (2, 1), "same"), (1, 10, 7, 4, 2, 3, 9, 2, 1, "valid"),
                         (1, 4, 5, 1, 3, 3, 1000, 1, 1, "same")]


@pytest.mark.parametrize("case", EMU_CASES, ids=[_ids(c) for c in EMU_CASES])
def test_conv_emu(case, order):
    _check_conv(case)


# Channels in multiples of 8 (the large-tile kernel's condition). The first spans 3 x 3 tiles
# forward (323 pixels x 136 outputs), 3 x 2 backward-data (x 72 channels), 6 x 3 backward-weight;
# the others take the 128 x 32 tiles (32 or fewer GEMM columns) with strides, dilation and
# "valid" padding, and the last splits backward-weight's 1104 pixels over three slices.
TILE_CASES = [(1, 17, 19, 72, 3, 3, 136, 1, 1, "same"), (2, 13, 11, 16, 3, 2, 24, (2, 1), (1, 2), "same"),
              (2, 12, 13, 8, 4, 2, 40, 3, 2, "valid"), (3, 9, 10, 32, 1, 1, 64, 2, 1, "same"),
              (2, 24, 23, 8, 3, 3, 16, 1, 1, "same")]


@pytest.fixture
def large_tiles():
    _emu.conv_set_tile(128)
    yield
    _emu.conv_set_tile(0)


@pytest.mark.parametrize("case", TILE_CASES, ids=[_ids(c) for c in TILE_CASES])
def test_conv_emu_large_tiles(case, large_tiles):
    _emu.set_thread_order("shuffled", seed=5)
    try:
        _check_conv(case)
    finally:
        _emu.set_thread_order("forward")


def test_conv_emu_large_tiles_activation(large_tiles):
    rng = np.random.default_rng(4)
    x, k, b = _rand(rng, 1, 12, 13, 8), _rand(rng, 3, 3, 8, 72), _rand(rng, 72)
    y = _emu.conv2d_forward(x, k, b, (1, 1), (1, 1), (1, 1, 1, 1), 4)
    z = ref_conv(x, k, b, (1, 1), (1, 1), "same")
    gelu = 0.5 * z * (1 + np.vectorize(math.erf)(z / np.sqrt(2)))
    np.testing.assert_allclose(y, gelu, rtol=1e-5, atol=1e-5)


def test_conv_emu_bad_tile():
    with pytest.raises(ValueError, match="tile"):
        _emu.conv_set_tile(96)


def _check_conv(case):
    n, h, w, c, kh, kw, o, s, d, padding = case
    s2 = (s, s) if isinstance(s, int) else s
    d2 = (d, d) if isinstance(d, int) else d
    rng = np.random.default_rng(abs(hash(case)) % 2**32)
    x, k, b = _rand(rng, n, h, w, c), _rand(rng, kh, kw, c, o), _rand(rng, o)
    assert x.ctypes.data % 16 == 0 and k.ctypes.data % 16 == 0  # else the large tiles are skipped
    _, _, pads = ops.conv_output_shape((h, w), (kh, kw), strides=s2, padding=padding, dilation=d2)
    y = _emu.conv2d_forward(x, k, b, s2, d2, pads, 0)
    check_close(y, ref_conv(x, k, b, s2, d2, padding), ref_conv(abs(x), abs(k), abs(b), s2, d2, padding), "y")
    dy = _rand(rng, *y.shape)
    got = _emu.conv2d_backward(x, k, dy, s2, d2, pads)
    refs = ref_conv_grad(x, k, dy, s2, d2, padding)
    scales = ref_conv_grad(abs(x), abs(k), abs(dy), s2, d2, padding)
    for name, g, r, sc in zip(("dx", "dw", "db"), got, refs, scales):
        check_close(g, r, sc, name, rtol=4e-6)


@pytest.mark.parametrize("act, fn", [(1, lambda v: np.maximum(v, 0)), (3, np.tanh),
                                     (2, lambda v: 1 / (1 + np.exp(-v)))])
def test_conv_emu_activation(act, fn):
    rng = np.random.default_rng(9)
    x, k, b = _rand(rng, 1, 6, 7, 5), _rand(rng, 3, 3, 5, 9), _rand(rng, 9)
    y = _emu.conv2d_forward(x, k, b, (1, 1), (1, 1), (1, 1, 1, 1), act)
    np.testing.assert_allclose(y, fn(ref_conv(x, k, b, (1, 1), (1, 1), "same")), rtol=1e-5, atol=1e-5)


def test_conv_emu_empty():
    rng = np.random.default_rng(2)
    b = _rand(rng, 5)
    y = _emu.conv2d_forward(_rand(rng, 2, 4, 4, 0), np.zeros((3, 3, 0, 5), np.float32), b, (1, 1), (1, 1),
                            (1, 1, 1, 1), 0)
    np.testing.assert_array_equal(y, np.broadcast_to(b, (2, 4, 4, 5)))
    dx, dw, db = _emu.conv2d_backward(_rand(rng, 2, 4, 4, 3), _rand(rng, 3, 3, 3, 0),
                                      np.zeros((2, 4, 4, 0), np.float32), (1, 1), (1, 1), (1, 1, 1, 1))
    assert not dx.any() and dw.shape == (3, 3, 3, 0) and db.shape == (0,)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("pool, strides, padding", [((3, 3), (2, 2), "same"), ((2, 3), (1, 2), "same"),
                                                    ((2, 2), (2, 2), "valid"), ((4, 4), (3, 3), "same")])
@pytest.mark.parametrize("c", [7, 8])  # 8: the forward's four-channel kernel
def test_pool_emu(kind, pool, strides, padding, c, order):
    rng = np.random.default_rng(6)
    x = _rand(rng, 2, 9, 11, c)
    n, h, w, c = x.shape
    oh, pt, pb = _pad(h, pool[0], strides[0], padding)
    ow, pl, pr = _pad(w, pool[1], strides[1], padding)
    y = _emu.pool2d_forward(x, kind, pool, strides, (pt, pb, pl, pr))
    np.testing.assert_allclose(y, ref_pool(x, kind, pool, strides, padding), rtol=1e-6, atol=1e-6)
    dy = _rand(rng, *y.shape)
    dx = _emu.pool2d_backward(x, dy, kind, pool, strides, (pt, pb, pl, pr))
    grad = ops.max_pool2d_grad if kind == "max" else ops.avg_pool2d_grad
    np.testing.assert_allclose(dx, grad(x, dy, pool, strides, padding), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("c", [3, 12])
def test_pool_emu_nan(c):
    x = _rand(np.random.default_rng(8), 1, 6, 7, c)
    x[0, 2, 3, 1] = np.nan
    (_, pt, pb), (_, pl, pr) = _pad(6, 3, 2, "same"), _pad(7, 3, 2, "same")
    y = _emu.pool2d_forward(x, "max", (3, 3), (2, 2), (pt, pb, pl, pr))
    np.testing.assert_array_equal(y, ops.max_pool2d(x, 3, 2, "same"))
    assert np.isnan(y[0, :, :, 1]).sum() == 4 and not np.isnan(np.delete(y, 1, axis=3)).any()


def _pad(size, k, s, padding):
    if padding == "same":
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)
        return out, total // 2, total - total // 2
    return (size - k) // s + 1, 0, 0


def test_emu_bad_shape():
    with pytest.raises(ValueError, match="larger than the padded input"):
        _emu.conv2d_forward(np.ones((1, 2, 2, 1), np.float32), np.ones((3, 3, 1, 1), np.float32), None, (1, 1),
                            (1, 1), (0, 0, 0, 0), 0)


# ---------------------------------------------------------------- through forgeml.ops on CuPy arrays
# (a real GPU where one is usable; the CuPy stand-in and _emu.device everywhere: see conftest.cupy)

@pytest.mark.parametrize("case", CASES[:4], ids=[_ids(c) for c in CASES[:4]])
def test_conv_gpu(case, cupy, copies):
    n, h, w, c, kh, kw, o, s, d, padding = case
    rng = np.random.default_rng(1)
    x, k, b = _rand(rng, n, h, w, c), _rand(rng, kh, kw, c, o), _rand(rng, o)
    y = ops.conv2d(cupy.asarray(x), cupy.asarray(k), cupy.asarray(b), strides=s, padding=padding, dilation=d)
    np.testing.assert_allclose(cupy.asnumpy(y), ops.conv2d(x, k, b, strides=s, padding=padding, dilation=d),
                               rtol=1e-4, atol=1e-4)
    dy = _rand(rng, *y.shape)
    got = ops.conv2d_grad(cupy.asarray(x), cupy.asarray(k), cupy.asarray(dy), strides=s, padding=padding, dilation=d)
    ref = ops.conv2d_grad(x, k, dy, strides=s, padding=padding, dilation=d)
    for g, r in zip(got, ref):
        assert isinstance(g, cupy.ndarray)
        np.testing.assert_allclose(cupy.asnumpy(g), r, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_gpu(kind, cupy, copies):
    x = _rand(np.random.default_rng(2), 2, 9, 11, 7)
    fwd = ops.max_pool2d if kind == "max" else ops.avg_pool2d
    grad = ops.max_pool2d_grad if kind == "max" else ops.avg_pool2d_grad
    xd = cupy.asarray(x)
    if copies is not None:
        copies.reset()
    y = fwd(xd, 3, 2, "same")
    assert isinstance(y, cupy.ndarray)
    if copies is not None:  # the kernel reads and writes device memory: no host copy
        assert (copies.h2d, copies.d2h) == (0, 0)
    np.testing.assert_allclose(cupy.asnumpy(y), fwd(x, 3, 2, "same"), rtol=1e-6)
    dy = np.ones(y.shape, np.float32)
    np.testing.assert_allclose(cupy.asnumpy(grad(cupy.asarray(x), cupy.asarray(dy), 3, 2, "same")),
                               grad(x, dy, 3, 2, "same"), rtol=1e-5, atol=1e-6)
