"""The CUDA SGEMM (csrc/cuda/gemm.cuh) run through the SIMT emulator, against float64 NumPy.

Sizes are odd and span at least two block tiles in M and N and two K steps, for both tile
configurations; every transpose combination; both thread orders; strided and unaligned inputs
(the scalar-load path) as well as aligned ones (float4 loads)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erf
from tsan_helper import assert_clean

_emu = pytest.importorskip("forgeml._emu", reason="forgeml was built without FORGEML_TESTING=ON")

ACTS = {0: lambda v: v, 1: lambda v: np.maximum(v, 0), 2: lambda v: 1 / (1 + np.exp(-v)), 3: np.tanh,
        4: lambda v: 0.5 * v * (1 + erf(v / np.sqrt(2)))}
SIZES = {64: (131, 133, 19), 128: (259, 137, 21)}  # (M, N, K): >= 2 tiles of M and N, >= 2 K steps


@pytest.fixture(params=["forward", "reversed"])
def order(request):
    _emu.set_thread_order(request.param)
    yield request.param
    _emu.set_thread_order("forward")


def operands(rng, M, N, K, ta, tb):
    a = rng.standard_normal((K, M) if ta else (M, K)).astype(np.float32)
    b = rng.standard_normal((N, K) if tb else (K, N)).astype(np.float32)
    return a, b


def check(out, a, b, ta, tb, *, bias=None, act=0, alpha=1.0, beta=0.0, c=None):
    """Every element within 1e-5 of the |op(A)|·|op(B)| scale (plus the other terms), and the
    Frobenius relative error below 1e-5, against float64."""
    A = (a.T if ta else a).astype(np.float64)
    B = (b.T if tb else b).astype(np.float64)
    pre = alpha * (A @ B)
    scale = abs(alpha) * (np.abs(A) @ np.abs(B))
    if c is not None:
        pre += beta * c
        scale += abs(beta) * np.abs(c)
    if bias is not None:
        pre += bias
        scale += np.abs(bias)
    ref = ACTS[act](pre)
    assert out.shape == ref.shape and out.dtype == np.float32
    # The activations are at most 1.13-Lipschitz, and their float32 rounding adds ~1 ulp.
    tol = 1.2e-5 * scale + 1e-6 + 2.4e-7 * np.abs(ref)
    bad = np.abs(out - ref) > tol
    assert not bad.any(), f"{bad.sum()} elements off, worst at {np.unravel_index(np.argmax(np.abs(out - ref) - tol), ref.shape)}"
    if ref.size:
        assert np.linalg.norm(out - ref) <= 1e-5 * np.linalg.norm(ref) + 1e-6


@pytest.mark.parametrize("tile", [64, 128])
@pytest.mark.parametrize("ta, tb", [(False, False), (False, True), (True, False), (True, True)])
def test_transposes(order, tile, ta, tb):
    rng = np.random.default_rng(tile + 2 * ta + tb)
    M, N, K = SIZES[tile]
    a, b = operands(rng, M, N, K, ta, tb)
    check(_emu.sgemm(a, b, ta, tb, tile=tile), a, b, ta, tb)


@pytest.mark.parametrize("act", [0, 1, 2, 3, 4])
def test_epilogue(order, act):
    rng = np.random.default_rng(act)
    M, N, K = SIZES[64]
    a, b = operands(rng, M, N, K, False, True)
    bias = rng.standard_normal(N).astype(np.float32)
    c = rng.standard_normal((M, N)).astype(np.float32)
    out = _emu.sgemm(a, b, False, True, bias, act, 0.75, -0.5, c, tile=64)
    check(out, a, b, False, True, bias=bias, act=act, alpha=0.75, beta=-0.5, c=c)


@pytest.mark.parametrize("tile", [64, 128])
def test_epilogue_large_tile_and_shuffled_order(tile):
    rng = np.random.default_rng(11)
    M, N, K = SIZES[tile]
    a, b = operands(rng, M, N, K, True, False)
    bias = rng.standard_normal(N).astype(np.float32)
    c = rng.standard_normal((M, N)).astype(np.float32)
    _emu.set_thread_order("shuffled", seed=5)
    try:
        out = _emu.sgemm(a, b, True, False, bias, 4, 1.5, 0.25, c, tile=tile)
    finally:
        _emu.set_thread_order("forward")
    check(out, a, b, True, False, bias=bias, act=4, alpha=1.5, beta=0.25, c=c)


@pytest.mark.parametrize("view", ["ld_aligned", "ld_odd", "unaligned"])
def test_leading_dimensions_and_alignment(order, view):
    """ld > cols keeps the float4 path when ld % 4 == 0; an odd ld or a pointer off by one float
    takes the scalar path. Both must agree with the reference at every edge."""
    rng = np.random.default_rng(7)
    M, N, K = 67, 133, 23
    pad = {"ld_aligned": 9, "ld_odd": 6, "unaligned": 5}[view]
    off = 1 if view == "unaligned" else 0
    a_big = rng.standard_normal((M, K + pad)).astype(np.float32)
    b_big = rng.standard_normal((K, N + pad)).astype(np.float32)
    a, b = a_big[:, off:off + K], b_big[:, off:off + N]
    check(_emu.sgemm(a, b, tile=64), a, b, False, False)
    check(_emu.sgemm(b, a, True, True, tile=64), b, a, True, True)  # (a @ b).T from the same strided views


@pytest.mark.parametrize("M, N, K", [(1, 1, 1), (1, 70, 9), (70, 1, 9), (65, 66, 1), (3, 5, 200)])
def test_thin_shapes(M, N, K):
    rng = np.random.default_rng(M * N + K)
    a, b = operands(rng, M, N, K, False, False)
    bias = rng.standard_normal(N).astype(np.float32)
    check(_emu.sgemm(a, b, bias=bias, activation=3), a, b, False, False, bias=bias, act=3)


def test_empty_dims():
    rng = np.random.default_rng(0)
    assert _emu.sgemm(np.zeros((0, 5), np.float32), np.ones((5, 3), np.float32)).shape == (0, 3)
    assert _emu.sgemm(np.ones((4, 5), np.float32), np.zeros((5, 0), np.float32)).shape == (4, 0)
    # K == 0: act(beta * C + bias).
    bias = rng.standard_normal(7).astype(np.float32)
    c = rng.standard_normal((6, 7)).astype(np.float32)
    out = _emu.sgemm(np.zeros((6, 0), np.float32), np.zeros((0, 7), np.float32), bias=bias, activation=1,
                     beta=2.0, c=c)
    np.testing.assert_allclose(out, np.maximum(2.0 * c + bias, 0), rtol=1e-6, atol=1e-6)


def test_beta_zero_never_reads_c():
    rng = np.random.default_rng(1)
    a, b = operands(rng, 70, 69, 10, False, False)
    c = np.full((70, 69), np.nan, np.float32)
    check(_emu.sgemm(a, b, c=c, beta=0.0), a, b, False, False)


def test_bad_arguments():
    a, b = np.ones((4, 5), np.float32), np.ones((5, 3), np.float32)
    with pytest.raises(ValueError, match="inner dimensions"):
        _emu.sgemm(a, np.ones((6, 3), np.float32))
    with pytest.raises(ValueError, match="activation"):
        _emu.sgemm(a, b, activation=5)
    with pytest.raises(ValueError, match="bias"):
        _emu.sgemm(a, b, bias=np.ones(4, np.float32))
    with pytest.raises(ValueError, match="c: expected shape"):
        _emu.sgemm(a, b, c=np.ones((3, 4), np.float32), beta=1.0)
    with pytest.raises(ValueError, match="tile"):
        _emu.sgemm(a, b, tile=32)


def test_tsan_clean():
    assert_clean("sgemm")
