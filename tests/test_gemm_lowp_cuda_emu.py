"""The CUDA bf16 and int8 GEMMs (csrc/cuda/gemm_lowp.cuh) run through the SIMT emulator, against
float64 references on the bf16-rounded / int8 inputs. Sizes span two 64 x 64 tiles in M and N
and two K steps, with odd edges; both thread orders; bf16 on both kernels (the SIMT tile and the
tensor-core one, whose mma fragments the emulator exchanges through warp shuffles). The
tensor-core path (csrc/cuda/gemm_mma.cuh: 128 x 128 tiles, 4-stage pipeline of 32 bf16 / 64 int8
depths) also on shapes past two of its tiles in M and N, K tails, and more depth steps than
pipeline stages (the ring of stages wraps)."""

from __future__ import annotations

import numpy as np
import pytest
from test_gemm_lowp import ACTS, bf16, check_bf16, int8_ref, rand_int8

_emu = pytest.importorskip("forgeml._emu", reason="forgeml was built without FORGEML_TESTING=ON")
ACT_NAMES = list(ACTS)


@pytest.fixture(params=["forward", "reversed"])
def order(request):
    _emu.set_thread_order(request.param)
    yield request.param
    _emu.set_thread_order("forward")


KERNELS = ["simt", "tensor_cores"]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_bf16(order, rng, ta, tb, kernel):
    m, n, k = 131, 70, 67
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    check_bf16(_emu.gemm_bf16(a, b, ta, tb, kernel=kernel), a, b, ta, tb)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("act", [1, 2, 4])
def test_bf16_epilogue_and_rounding(rng, act, kernel):
    a, b = rng.standard_normal((65, 33)).astype(np.float32), rng.standard_normal((33, 67)).astype(np.float32)
    bias = rng.standard_normal(67).astype(np.float32)
    out = _emu.gemm_bf16(a, b, bias=bias, activation=act, kernel=kernel)
    check_bf16(out, a, b, bias=bias, act=ACT_NAMES[act])
    plain = _emu.gemm_bf16(a, b, kernel=kernel)
    assert np.abs(plain - a.astype(np.float64) @ b).max() > 1e-4  # the inputs were rounded
    assert np.allclose(bf16(a) @ bf16(b), plain, atol=1e-4)


@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (17, 9, 15), (64, 64, 32), (3, 130, 49)])
def test_bf16_tensor_cores_match_simt_tile(rng, m, n, k):
    """Every fragment position: one nonzero product at a time would be slow, so small odd shapes
    (partial warps' rows and columns, an odd depth) against the SIMT kernel and the reference."""
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    tc, simt = _emu.gemm_bf16(a, b, kernel="tensor_cores"), _emu.gemm_bf16(a, b, kernel="simt")
    check_bf16(tc, a, b)
    np.testing.assert_allclose(tc, simt, rtol=1e-5, atol=1e-5)


def test_tensor_cores_place_each_element():
    """A and B with one nonzero each: the single product lands in exactly its output cell (a
    fragment index mixed up anywhere moves it or drops it)."""
    m, n, k = 64, 64, 32
    for i, j, d in ((0, 0, 0), (9, 7, 17), (63, 63, 31), (40, 13, 8), (21, 50, 25), (5, 33, 14)):
        a, b = np.zeros((m, k), np.float32), np.zeros((k, n), np.float32)
        a[i, d], b[d, j] = 2.0, 3.0
        expect = np.zeros((m, n), np.float32)
        expect[i, j] = 6.0
        np.testing.assert_array_equal(_emu.gemm_bf16(a, b, kernel="tensor_cores"), expect)
        qa, qb = a.astype(np.int8), b.astype(np.int8)
        ones_m, ones_n = np.ones(m, np.float32), np.ones(n, np.float32)
        np.testing.assert_array_equal(_emu.gemm_int8(qa, ones_m, qb, ones_n, kernel="tensor_cores"), expect)


def test_bf16_special_values_on_tensor_cores():
    a = np.array([[np.nan, 1.0], [np.inf, 1.0], [1.0, 1.0]], np.float32)
    b = np.ones((2, 2), np.float32)
    out = _emu.gemm_bf16(a, b, kernel="tensor_cores")
    assert np.isnan(out[0]).all() and np.isposinf(out[1]).all() and (out[2] == 2).all()
    with pytest.raises(ValueError, match="kernel"):
        _emu.gemm_bf16(a, b, kernel="wmma")


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("m,n,k", [(130, 67, 70), (1, 1, 1), (65, 129, 5), (3, 2, 33)])
def test_int8(order, rng, m, n, k, kernel):
    qa, qb = rand_int8(rng, m, k), rand_int8(rng, k, n)
    qa[0, 0] = -128  # the extremes of the range
    sa, sb = rng.uniform(0.001, 0.02, m).astype(np.float32), rng.uniform(0.001, 0.02, n).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    out = _emu.gemm_int8(qa, sa, qb, sb, bias, 1, kernel=kernel)
    np.testing.assert_allclose(out, int8_ref(qa, sa, qb, sb, bias, "relu"), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("m,n,k", [(130, 67, 70), (17, 9, 15), (64, 64, 32), (3, 2, 33)])
def test_int8_tensor_cores_equal_dp4a_kernel(rng, m, n, k):
    """Integer sums are exact: both kernels give the same bits."""
    qa, qb = rand_int8(rng, m, k), rand_int8(rng, k, n)
    qa[-1, -1], qb[0, -1] = -128, -128
    sa, sb = rng.uniform(0.001, 0.02, m).astype(np.float32), rng.uniform(0.001, 0.02, n).astype(np.float32)
    tc = _emu.gemm_int8(qa, sa, qb, sb, kernel="tensor_cores")
    np.testing.assert_array_equal(tc, _emu.gemm_int8(qa, sa, qb, sb, kernel="simt"))


# Past two 128 x 128 tiles in M and N with ragged edges; bf16 K = 173 is 6 depth steps of 32 (the
# 4-stage ring wraps) with a tail of 13.
TC_M, TC_N, TC_K = 259, 261, 173


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_bf16_tensor_cores_two_tiles_each_way(rng, ta, tb):
    a = rng.standard_normal((TC_K, TC_M) if ta else (TC_M, TC_K)).astype(np.float32)
    b = rng.standard_normal((TC_N, TC_K) if tb else (TC_K, TC_N)).astype(np.float32)
    check_bf16(_emu.gemm_bf16(a, b, ta, tb, kernel="tensor_cores"), a, b, ta, tb)


@pytest.mark.parametrize("act", [0, 1, 2, 3, 4])
def test_bf16_tensor_cores_epilogues_two_tiles(rng, act):
    """Each activation after the bias, on a shape with partial tiles on both edges and a K tail."""
    m, n, k = 135, 200, 40
    a, b = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    out = _emu.gemm_bf16(a, b, bias=bias, activation=act, kernel="tensor_cores")
    check_bf16(out, a, b, bias=bias, act=ACT_NAMES[act])


@pytest.mark.parametrize(
    "m,n,k,act", [(TC_M, TC_N, 333, 0), (129, 5, 1, 1)] + [(130, 257, 64, act) for act in range(5)]
)
def test_int8_tensor_cores_two_tiles(rng, m, n, k, act):
    """int8 K = 333: 6 depth steps of 64 (the ring wraps) and a tail of 13; K = 64: one whole step,
    with each epilogue."""
    qa, qb = rand_int8(rng, m, k), rand_int8(rng, k, n)
    qa[0, -1], qb[-1, 0] = -128, -128
    sa, sb = rng.uniform(0.001, 0.02, m).astype(np.float32), rng.uniform(0.001, 0.02, n).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    out = _emu.gemm_int8(qa, sa, qb, sb, bias, act, kernel="tensor_cores")
    np.testing.assert_allclose(out, int8_ref(qa, sa, qb, sb, bias, ACT_NAMES[act]), rtol=1e-5, atol=1e-5)
    if act == 0:  # exact sums: the same bits as the dp4a kernel
        np.testing.assert_array_equal(out, _emu.gemm_int8(qa, sa, qb, sb, bias, 0, kernel="simt"))


def test_tensor_cores_place_each_element_two_tiles():
    """One nonzero product at a time at tile, warp and fragment edges of the 128 x 128 tiling and
    in later depth steps: it lands in exactly its output cell."""
    m, n, k = 257, 258, 40
    for i, j, d in ((127, 128, 31), (128, 127, 32), (256, 257, 39)):
        a, b = np.zeros((m, k), np.float32), np.zeros((k, n), np.float32)
        a[i, d], b[d, j] = 2.0, 3.0
        expect = np.zeros((m, n), np.float32)
        expect[i, j] = 6.0
        np.testing.assert_array_equal(_emu.gemm_bf16(a, b, kernel="tensor_cores"), expect)
        qa, qb = a.astype(np.int8), b.astype(np.int8)
        ones_m, ones_n = np.ones(m, np.float32), np.ones(n, np.float32)
        np.testing.assert_array_equal(_emu.gemm_int8(qa, ones_m, qb, ones_n, kernel="tensor_cores"), expect)


def test_errors_and_empty(rng):
    a = rng.standard_normal((4, 5)).astype(np.float32)
    with pytest.raises(ValueError, match="inner dimension"):
        _emu.gemm_bf16(a, np.ones((6, 3), np.float32))
    with pytest.raises(ValueError, match="activation"):
        _emu.gemm_bf16(a, np.ones((5, 3), np.float32), activation=7)
    with pytest.raises(ValueError, match="b_scale"):
        _emu.gemm_int8(rand_int8(rng, 2, 3), np.ones(2), rand_int8(rng, 3, 4), np.ones(3))
    assert _emu.gemm_bf16(np.ones((0, 5), np.float32), np.ones((5, 3), np.float32)).shape == (0, 3)
    z = _emu.gemm_int8(rand_int8(rng, 2, 0), np.ones(2), rand_int8(rng, 0, 3), np.ones(3), np.full(3, 2.0), 0)
    np.testing.assert_array_equal(z, np.full((2, 3), 2, np.float32))


def test_ops_matmul_on_device_arrays(cupy, rng):
    """ops.matmul(precision="bf16") and ops.matmul_int8 on CuPy arrays (the emulator's stand-in, or a
    real GPU): strided rows (lda > K), a transposed b, bias and activation through the Python path."""
    from forgeml import ops

    m, n, k = 150, 140, 50
    wide = rng.standard_normal((m, k + 7)).astype(np.float32)
    a, b = wide[:, :k], rng.standard_normal((n, k)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    out = ops.matmul(
        cupy.asarray(wide)[:, :k],
        cupy.asarray(b),
        trans_b=True,
        bias=cupy.asarray(bias),
        activation="relu",
        precision="bf16",
    )
    check_bf16(cupy.asnumpy(out), a, b, tb=True, bias=bias, act="relu")
    qa, qb = rand_int8(rng, m, k), rand_int8(rng, k, n)
    sa, sb = rng.uniform(0.001, 0.02, m).astype(np.float32), rng.uniform(0.001, 0.02, n).astype(np.float32)
    c = ops.matmul_int8(*(cupy.asarray(x) for x in (qa, sa, qb, sb)), bias=cupy.asarray(bias), activation="gelu")
    np.testing.assert_allclose(cupy.asnumpy(c), int8_ref(qa, sa, qb, sb, bias, "gelu"), rtol=1e-5, atol=1e-5)
