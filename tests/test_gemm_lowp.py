"""The bf16 and int8 GEMMs (ops.matmul(precision="bf16"), ops.matmul_int8, ops.quantize_int8) on
every ISA path, against float64 references computed on the bf16-rounded / int8 inputs."""

import numpy as np
import pytest
from scipy.special import erf

import forgeml
from forgeml.ops import gemm_lowp, matmul, matmul_int8, quantize_int8

ACTS = {
    None: lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "gelu": lambda x: 0.5 * x * (1 + erf(x / np.sqrt(2))),
}
# Odd shapes around the tiles (AVX-512 12x32, portable 4x16), an odd depth (bf16 pairs, int8
# quads), and depths past one block (bf16 512, int8 2048 per block on AVX-512).
SHAPES = [
    (1, 1, 1),
    (1, 37, 5),
    (37, 1, 3),
    (13, 31, 9),
    (12, 32, 7),
    (25, 33, 17),
    (7, 17, 513),
    (29, 65, 3),
    (31, 95, 66),
    (50, 130, 1031),
    (3, 40, 2101),
    (14, 37, 2047),  # bf16 rows 4 KiB apart: stored with a padded stride
]


def bf16(x):
    """float32 -> nearest bf16 (ties to even), as float64: the rounding the kernels apply."""
    u = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32).astype(np.float64)


def rand(rng, *shape):
    return rng.uniform(-1, 1, shape).astype(np.float32)


def check_bf16(c, a, b, ta=False, tb=False, bias=None, act=None):
    """Every element within float32 summation error of the float64 product of the rounded inputs."""
    a64, b64 = bf16(a), bf16(b)
    a64 = a64.T if ta else a64
    b64 = b64.T if tb else b64
    z = a64 @ b64
    scale = np.abs(a64) @ np.abs(b64)
    if bias is not None:
        z, scale = z + bias, scale + np.abs(bias)
    ref = ACTS[act](z)
    assert c.shape == ref.shape and c.dtype == np.float32
    tol = 2e-6 * scale * max(1, np.sqrt(a64.shape[1])) + 1e-6
    bad = np.argwhere(np.abs(c - ref) > tol)
    assert bad.size == 0, f"{len(bad)} off, first {bad[0]}: {c[tuple(bad[0])]} vs {ref[tuple(bad[0])]}"
    if ref.size:
        assert np.linalg.norm(c - ref) <= 1e-5 * max(np.linalg.norm(ref), 1e-30) + 1e-6


@pytest.mark.parametrize("m,n,k", SHAPES)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, True)])
def test_bf16_matches_rounded_reference(isa, rng, m, n, k, ta, tb):
    a = rand(rng, *((k, m) if ta else (m, k)))
    b = rand(rng, *((n, k) if tb else (k, n)))
    check_bf16(matmul(a, b, trans_a=ta, trans_b=tb, precision="bf16"), a, b, ta, tb)


@pytest.mark.parametrize("act", list(ACTS))
def test_bf16_bias_activation_and_mixed_transposes(isa, rng, act):
    a, b, bias = rand(rng, 19, 37), rand(rng, 41, 37), rand(rng, 41)
    check_bf16(matmul(a, b, trans_b=True, bias=bias, activation=act, precision="bf16"), a, b, False, True, bias, act)
    a2 = rand(rng, 37, 19)
    check_bf16(matmul(a2, b.T, trans_a=True, precision="bf16"), a2, b.T, True, False)


def test_bf16_differs_from_fp32_by_rounding_only(rng):
    """The bf16 result is not the fp32 one (rounding happened), and is within bf16's 2^-8 of it."""
    a, b = rand(rng, 64, 300), rand(rng, 300, 48)
    lo, hi = matmul(a, b, precision="bf16"), matmul(a, b)
    scale = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
    assert np.abs(lo - hi).max() > 1e-4
    assert np.all(np.abs(lo - hi) <= 2**-7 * scale)


def test_bf16_batched_strided_and_out(rng):
    a, b = rand(rng, 3, 9, 21), rand(rng, 21, 10)
    c = matmul(a, b, precision="bf16")
    for i in range(3):
        check_bf16(c[i], a[i], b)
    out = np.empty((9, 10), np.float32)
    big = rand(rng, 9, 50)[:, 3:24]  # a strided view
    assert matmul(big, b, out=out, precision="bf16") is out
    check_bf16(out, big, b)


def test_bf16_threads_do_not_change_results(rng, restore_threads):
    a, b = rand(rng, 300, 200), rand(rng, 200, 150)
    forgeml.set_num_threads(1)
    one = matmul(a, b, precision="bf16")
    forgeml.set_num_threads(2)
    np.testing.assert_array_equal(matmul(a, b, precision="bf16"), one)


# bf16 paths by shape and thread count (lowp_run.h, bf16_strips): A converted strip by strip when
# all of packed B fits 512 KiB and the rows are split (several depth blocks of 256 pairs: K 1031,
# 900); a converted copy of A when B is larger (K 2101 x 130 columns) or when two threads split
# the panels of a short A (13 rows, 7 panels).
PATH_SHAPES = [(37, 65, 1031), (500, 33, 129), (61, 130, 2101), (13, 200, 900), (1, 256, 3), (25, 40, 64)]


@pytest.mark.parametrize("m,n,k", PATH_SHAPES)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True)])
def test_bf16_paths_and_threads(isa, rng, restore_threads, m, n, k, threads, ta, tb):
    a = rand(rng, *((k, m) if ta else (m, k)))
    b = rand(rng, *((n, k) if tb else (k, n)))
    bias = rand(rng, n)
    forgeml.set_num_threads(threads)
    c = matmul(a, b, trans_a=ta, trans_b=tb, bias=bias, activation="relu", precision="bf16")
    check_bf16(c, a, b, ta, tb, bias, "relu")
    forgeml.set_num_threads(1)
    one = matmul(a, b, trans_a=ta, trans_b=tb, bias=bias, activation="relu", precision="bf16")
    np.testing.assert_array_equal(c, one)


def test_bf16_empty_and_errors(rng):
    assert matmul(np.ones((0, 4), np.float32), np.ones((4, 3), np.float32), precision="bf16").shape == (0, 3)
    z = matmul(np.ones((2, 0), np.float32), np.ones((0, 3), np.float32), bias=np.ones(3, np.float32), precision="bf16")
    np.testing.assert_array_equal(z, np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="precision"):
        matmul(rand(rng, 2, 2), rand(rng, 2, 2), precision="fp8")
    with pytest.raises(ValueError, match="inner dimensions"):
        matmul(rand(rng, 2, 3), rand(rng, 2, 2), precision="bf16")
    with pytest.raises(ValueError, match="bias"):
        matmul(rand(rng, 2, 3), rand(rng, 3, 2), bias=np.ones(3), precision="bf16")
    with pytest.raises(ValueError, match="activation"):
        matmul(rand(rng, 2, 3), rand(rng, 3, 2), activation="swish", precision="bf16")


# ---------------------------------------------------------------- int8


def int8_ref(qa, sa, qb, sb, bias=None, act=None):
    z = (qa.astype(np.int64) @ qb.astype(np.int64)).astype(np.float64) * sa[:, None].astype(np.float64) * sb
    if bias is not None:
        z = z + bias
    return ACTS[act](z)


def rand_int8(rng, *shape):
    return rng.integers(-127, 128, shape).astype(np.int8)


@pytest.mark.parametrize("m,n,k", SHAPES)
def test_int8_matches_exact_integer_reference(isa, rng, m, n, k):
    qa, qb = rand_int8(rng, m, k), rand_int8(rng, k, n)
    sa, sb = rng.uniform(0.001, 0.02, m).astype(np.float32), rng.uniform(0.001, 0.02, n).astype(np.float32)
    c = matmul_int8(qa, sa, qb, sb)
    ref = int8_ref(qa, sa, qb, sb)
    scale = (np.abs(qa.astype(np.float64)) @ np.abs(qb.astype(np.float64))) * sa[:, None] * sb
    assert c.dtype == np.float32 and c.shape == (m, n)
    assert np.all(np.abs(c - ref) <= 1e-6 * scale + 1e-7), np.abs(c - ref).max()


def test_int8_extremes_do_not_overflow(isa):
    """-128 and 127 everywhere at a depth past one block: the int32 sums and the +128 offset hold."""
    k = 4100
    qa = np.full((13, k), -128, np.int8)
    qa[::2] = 127
    qb = np.full((k, 35), -128, np.int8)
    qb[:, 1::3] = 127
    one = np.ones(13, np.float32), np.ones(35, np.float32)
    c = matmul_int8(qa, one[0], qb, one[1])
    np.testing.assert_allclose(c, int8_ref(qa, *one[:1], qb, one[1]), rtol=1e-6)


@pytest.mark.parametrize("act", list(ACTS))
def test_int8_epilogue(isa, rng, act):
    qa, qb = rand_int8(rng, 17, 45), rand_int8(rng, 45, 33)
    sa, sb = np.full(17, 0.01, np.float32), rng.uniform(0.001, 0.01, 33).astype(np.float32)
    bias = rand(rng, 33)
    c = matmul_int8(qa, sa, qb, sb, bias=bias, activation=act)
    np.testing.assert_allclose(c, int8_ref(qa, sa, qb, sb, bias, act), rtol=1e-5, atol=1e-6)


def test_quantize_int8_rows_and_columns(isa, rng):
    x = rand(rng, 23, 41) * 3
    x[4] = 0  # an all-zero row gets scale 1
    q, s = quantize_int8(x)  # the C++ path
    amax = np.abs(x).max(axis=1)
    want_s = np.where(amax > 0, amax / np.float32(127), 1).astype(np.float32)
    np.testing.assert_array_equal(s, want_s)
    np.testing.assert_array_equal(q, np.clip(np.rint(x / want_s[:, None]), -127, 127).astype(np.int8))
    assert np.abs(q).max() == 127 and not q[4].any()
    qc, sc = quantize_int8(x, axis=0)  # per output channel of a (K, N) kernel
    assert sc.shape == (41,) and qc.dtype == np.int8
    np.testing.assert_allclose(qc * sc, x, atol=sc.max() / 2 + 1e-7)
    with pytest.raises(ValueError, match="NaN"):
        quantize_int8(np.array([[1.0, np.nan]], np.float32))
    with pytest.raises(ValueError, match="NaN"):
        quantize_int8(np.array([[1.0], [np.inf]], np.float32), axis=0)


@pytest.mark.parametrize("k", [1, 7, 8, 9, 31, 32, 33, 77, 100])
def test_quantize_int8_row_widths(isa, rng, k):
    """Each row width around the vector steps: codes are rint(x / s) with ties to even (s = 1 here,
    so x.5 values are exact ties), and NaN or infinity anywhere in a row is refused."""
    x = rng.integers(-126, 126, (5, k)).astype(np.float32) + rng.choice([0.0, 0.5, 0.25], (5, k)).astype(np.float32)
    x[:, 0] = 127  # scale 1
    q, s = quantize_int8(x)
    np.testing.assert_array_equal(s, np.ones(5, np.float32))
    np.testing.assert_array_equal(q, np.rint(x).astype(np.int8))
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[3, k - 1] = bad
        with pytest.raises(ValueError, match="NaN"):
            quantize_int8(y)


def test_quantize_int8_near_half_quotients(isa, rng):
    """Values a few ulps either side of (k + 1/2) * s for scales that 1/s does not represent:
    the codes must be those of the correctly rounded float32 quotient x / s (a quantizer that
    multiplies by 1 / s gets ~4% of them wrong)."""
    amax = rng.uniform(0.3, 900.0, 64).astype(np.float32)
    s = amax / np.float32(127)
    half = (rng.integers(-127, 127, (64, 95)) + np.float32(0.5)).astype(np.float32) * s[:, None]
    ulps, x = rng.integers(-3, 4, half.shape), half
    toward = np.where(ulps > 0, np.float32(np.inf), np.float32(-np.inf))
    for step in range(3):
        x = np.where(np.abs(ulps) > step, np.nextafter(x, toward), x)
    x = np.concatenate([x, amax[:, None]], axis=1)  # each row's maximum is its amax
    x = np.where(rng.random(x.shape) < 0.5, x, -x)
    assert x.dtype == np.float32  # the ulp steps were float32's
    q, got_s = quantize_int8(x)
    np.testing.assert_array_equal(got_s, s)
    np.testing.assert_array_equal(q, np.clip(np.rint(x / s[:, None]), -127, 127).astype(np.int8))


def test_int8_dynamic_activation_quantization(rng):
    """a_scale=None quantizes a float a per row, and the result is close to the float product."""
    x, w = rand(rng, 40, 64), rand(rng, 64, 24)
    qw, sw = quantize_int8(w, axis=0)
    c = matmul_int8(x, None, qw, sw)
    qx, sx = quantize_int8(x)
    np.testing.assert_allclose(c, int8_ref(qx, sx, qw, sw), rtol=1e-5, atol=1e-6)
    assert np.abs(c - x @ w).max() < 0.05 * np.abs(x @ w).max()


def test_int8_errors_and_empty(rng):
    qa, qb = rand_int8(rng, 3, 5), rand_int8(rng, 5, 4)
    sa, sb = np.ones(3, np.float32), np.ones(4, np.float32)
    with pytest.raises(TypeError, match="b: expected an int8"):
        matmul_int8(qa, sa, qb.astype(np.float32), sb)
    with pytest.raises(TypeError, match="a: expected int8"):
        matmul_int8(qa.astype(np.int32), sa, qb, sb)
    with pytest.raises(ValueError, match="b: expected 5 rows"):
        matmul_int8(qa, sa, rand_int8(rng, 4, 4), sb)
    with pytest.raises(ValueError, match="a_scale"):
        matmul_int8(qa, np.ones(2, np.float32), qb, sb)
    with pytest.raises(ValueError, match="b_scale"):
        matmul_int8(qa, sa, qb, np.ones(5, np.float32))
    assert matmul_int8(rand_int8(rng, 0, 5), np.ones(0, np.float32), qb, sb).shape == (0, 4)
    z = matmul_int8(rand_int8(rng, 3, 0), sa, rand_int8(rng, 0, 4), sb, bias=np.full(4, 2, np.float32))
    np.testing.assert_array_equal(z, np.full((3, 4), 2, np.float32))


def test_kernel_names():
    names = {gemm_lowp.kernel_name(False), gemm_lowp.kernel_name(True)}
    assert all(n.startswith(("bf16_", "int8_")) for n in names) and len(names) == 2


def test_bf16_rounding_of_special_values_through_an_identity_product(isa, rng):
    """With B the identity each output is one rounded A value: ties go to even, NaN and infinity
    spread through their row (times zero), huge values round to infinity as bf16 does; a denormal
    reads as itself or as zero (vdpbf16ps treats denormal operands as zero)."""
    k = 70
    a = rng.standard_normal((7, k)).astype(np.float32)
    ties = a[0].view(np.uint32)
    ties[:] = (ties & 0xFFFF0000) | 0x8000  # exactly halfway between two bf16 values
    a[1, :8] = np.array([0.0, -0.0, 3.3e38, -3.38e38, 1.1754942e-38, 2.0, -1.5, 1e-30], np.float32)
    a[2, :4] = np.array([1e-40, -1e-40, 1e-45, -3e-39], np.float32)  # denormals
    a[3, 5], a[4, 7], a[5, 1], a[6, 2] = np.nan, np.inf, -np.inf, -3.4e38  # the last rounds to -inf
    c = matmul(a, np.eye(k, dtype=np.float32), precision="bf16")
    np.testing.assert_array_equal(c[:2], bf16(a[:2]).astype(np.float32))
    want = bf16(a[2]).astype(np.float32)
    assert np.all((c[2] == want) | (c[2] == 0)), c[2, :4]
    np.testing.assert_array_equal(c[2, 4:], want[4:])
    assert not np.isfinite(c[3:]).any()


@pytest.mark.parametrize("threads", [1, 2])
def test_bf16_rounding_of_special_values_in_b(isa, rng, restore_threads, threads):
    """B's packing rounds as A's conversion does: an identity A returns each rounded B value, over
    an odd depth (the last pair's zero half), ten panels and a padded last one (300 columns, split
    over two threads), with ties, specials and denormals (itself or zero) in several panels; NaN
    and infinity spread through their column, as through A's rows."""
    forgeml.set_num_threads(threads)
    k, n = 71, 300
    b = rng.standard_normal((k, n)).astype(np.float32)
    ties = b[0].view(np.uint32)
    ties[:] = (ties & 0xFFFF0000) | 0x8000
    b[1, 40:48] = np.array([0.0, -0.0, 3.3e38, -3.38e38, 1.1754942e-38, 2.0, -1.5, 1e-30], np.float32)
    b[2, 250:254] = np.array([1e-40, -1e-40, 1e-45, -3e-39], np.float32)
    b[k - 1, 100], b[3, 43] = np.nan, -3.4e38  # the last rounds to -inf
    c = matmul(np.eye(k, dtype=np.float32), b, precision="bf16")
    want = bf16(b).astype(np.float32)
    bad = ~np.isfinite(want).all(axis=0)  # NaN / infinity spread through their column (times zero)
    assert set(np.flatnonzero(bad)) == {43, 100} and not np.isfinite(c[:, bad]).any()
    c, want = c[:, ~bad], want[:, ~bad]
    np.testing.assert_array_equal(np.delete(c, 2, axis=0), np.delete(want, 2, axis=0))
    assert np.all((c[2] == want[2]) | (c[2] == 0))
    np.testing.assert_array_equal(c[2, :240], want[2, :240])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("row", [0, 1499, 2999])
def test_int8_dynamic_rows_with_nan_raise_naming_the_row(rng, restore_threads, threads, row):
    """The rows of a float A are quantized inside the GEMM's parallel region (each thread its own
    rows, just before their tiles); a non-finite value still raises, naming its row."""
    w = rand(rng, 300, 40)
    q, s = quantize_int8(w, axis=0)
    forgeml.set_num_threads(threads)
    x = rand(rng, 3000, 300)
    x[row, 7] = np.nan
    with pytest.raises(ValueError, match=f"x: row {row} holds NaN or infinity"):
        matmul_int8(x, None, gemm_lowp.pack_int8(q), s)
