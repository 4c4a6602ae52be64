"""forgeml.ops conv2d / pooling against float64 NumPy references, finite differences and bad input.

Every case runs on each CPU path this machine has: the reference loops, im2col chunks on the shared
SGEMM (portable, AVX2) and the AVX-512 implicit GEMM."""
import numpy as np
import pytest

import forgeml
from forgeml import _cpu, ops
from conftest import isa_active





def _pads(size, k, s, d, padding):
    eff = (k - 1) * d + 1
    if padding == "same":
        out = -(-size // s)
        total = max((out - 1) * s + eff - size, 0)
        return out, total // 2, total - total // 2
    return (size - eff) // s + 1, 0, 0


def _patches(x, kh, kw, s, d, padding):
    """float64 views (N, OH, OW, KH, KW, C) of the zero-padded input."""
    n, h, w, c = x.shape
    oh, pt, pb = _pads(h, kh, s[0], d[0], padding)
    ow, pl, pr = _pads(w, kw, s[1], d[1], padding)
    xp = np.pad(x.astype(np.float64), ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    out = np.empty((n, oh, ow, kh, kw, c))
    for i in range(kh):
        for j in range(kw):
            out[:, :, :, i, j, :] = xp[:, i * d[0]:i * d[0] + (oh - 1) * s[0] + 1:s[0],
                                       j * d[1]:j * d[1] + (ow - 1) * s[1] + 1:s[1], :]
    return out, (pt, pl), xp.shape


def ref_conv(x, w, b, s, d, padding):
    p, _, _ = _patches(x, w.shape[0], w.shape[1], s, d, padding)
    y = np.einsum("nhwijc,ijco->nhwo", p, w.astype(np.float64))
    return y + (0.0 if b is None else b.astype(np.float64))


def ref_conv_grad(x, w, dy, s, d, padding):
    kh, kw = w.shape[:2]
    p, (pt, pl), padded = _patches(x, kh, kw, s, d, padding)
    dy = dy.astype(np.float64)
    dw = np.einsum("nhwijc,nhwo->ijco", p, dy)
    dp = np.einsum("nhwo,ijco->nhwijc", dy, w.astype(np.float64))
    dxp = np.zeros(padded)
    oh, ow = dy.shape[1:3]
    for i in range(kh):
        for j in range(kw):
            dxp[:, i * d[0]:i * d[0] + (oh - 1) * s[0] + 1:s[0],
                j * d[1]:j * d[1] + (ow - 1) * s[1] + 1:s[1], :] += dp[:, :, :, i, j, :]
    dx = dxp[:, pt:pt + x.shape[1], pl:pl + x.shape[2], :]
    return dx, dw, dy.sum(axis=(0, 1, 2))


def check_close(out, ref, scale, name, rtol=2e-6):
    """Every element within rtol * (|x|.|w| scale) * sqrt(terms), plus a Frobenius-norm check."""
    assert out.shape == ref.shape, (name, out.shape, ref.shape)
    assert out.dtype == np.float32
    err = np.abs(out.astype(np.float64) - ref)
    bound = rtol * scale + 1e-6
    bad = err > bound
    assert not bad.any(), f"{name}: {bad.sum()} elements off, worst {err.max():.3g} vs bound {bound.max():.3g}"
    denom = np.linalg.norm(ref) + 1e-12
    assert np.linalg.norm(out - ref) / denom < 1e-5, name


def _rand(rng, *shape):
    return rng.uniform(-1.0, 1.0, size=shape).astype(np.float32) + 0.05


CASES = [
    # N, H, W, C, KH, KW, O, strides, dilation, padding
    (2, 7, 9, 5, 3, 3, 7, 1, 1, "same"),
    (3, 11, 10, 3, 3, 3, 33, 2, 1, "same"),
    (2, 12, 13, 20, 4, 2, 17, 3, 2, "valid"),
    (2, 9, 9, 1, 3, 3, 32, 1, 1, "same"),
    (1, 8, 7, 19, 1, 1, 40, 1, 1, "valid"),
    (2, 10, 10, 19, 2, 2, 5, 1, 2, "same"),
    (3, 9, 11, 17, 4, 4, 18, 1, 1, "same"),
    (1, 13, 8, 35, 3, 5, 31, (2, 1), (1, 2), "same"),
    (2, 6, 6, 16, 3, 3, 64, 1, 1, "valid"),
    (1, 5, 5, 4, 5, 5, 3, 3, 1, "same"),
    (4, 7, 7, 33, 1, 1, 9, 2, 1, "same"),
    # 3x3 at stride 1 with >= 16 channels in and out: Winograd F(2x2, 3x3) under AVX-512 and AVX2 (odd
    # output sizes leave partial 2x2 tiles; backward-data runs it on the flipped kernel too)
    (2, 7, 9, 17, 3, 3, 19, 1, 1, "same"),
    (1, 6, 5, 16, 3, 3, 33, 1, 1, "valid"),
    (3, 4, 11, 40, 3, 3, 16, 1, 1, "same"),
    # C <= 4, O a multiple of 8, stride 1: the AVX2 direct data gradient (tiles of 8 / 6 / 4 / 3
    # pixels for C = 1 / 2 / 3 / 4, partial last tiles, dilation, even kernels)
    (2, 7, 11, 3, 3, 3, 16, 1, 1, "same"),
    (1, 9, 13, 2, 3, 5, 8, 1, (2, 1), "same"),
    (2, 8, 7, 4, 2, 4, 24, 1, 1, "valid"),
    (1, 10, 10, 1, 5, 3, 16, 1, 2, "valid"),
]


def _ids(c):
    n, h, w, ci, kh, kw, o, s, d, p = c
    return f"n{n}_{h}x{w}x{ci}_k{kh}x{kw}x{o}_s{s}_d{d}_{p}"


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_conv_forward_backward(case, isa):
    n, h, w, c, kh, kw, o, s, d, padding = case
    s2 = (s, s) if isinstance(s, int) else s
    d2 = (d, d) if isinstance(d, int) else d
    rng = np.random.default_rng(hash(case) % 2**32)
    x, k, b = _rand(rng, n, h, w, c), _rand(rng, kh, kw, c, o), _rand(rng, o)
    y = ops.conv2d(x, k, b, strides=s, padding=padding, dilation=d)
    ref = ref_conv(x, k, b, s2, d2, padding)
    scale = ref_conv(np.abs(x), np.abs(k), np.abs(b), s2, d2, padding)
    check_close(y, ref, scale, "y")

    dy = _rand(rng, *y.shape)
    dx, dw, db = ops.conv2d_grad(x, k, dy, strides=s, padding=padding, dilation=d)
    rdx, rdw, rdb = ref_conv_grad(x, k, dy, s2, d2, padding)
    sdx, sdw, sdb = ref_conv_grad(np.abs(x), np.abs(k), np.abs(dy), s2, d2, padding)
    check_close(dx, rdx, sdx, "dx")
    check_close(dw, rdw, sdw, "dw")
    check_close(db, rdb, sdb, "db")


@pytest.mark.parametrize("channels", [3, 18])  # the unrolled C = 3 kernel; Winograd (C, O >= 16)
@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh", "gelu"])
def test_conv_activation(activation, channels, isa):
    rng = np.random.default_rng(3)
    x, k, b = _rand(rng, 2, 9, 8, channels), _rand(rng, 3, 3, channels, 21), _rand(rng, 21)
    z = ref_conv(x, k, b, (1, 1), (1, 1), "same")
    from math import erf
    f = {None: lambda v: v, "relu": lambda v: np.maximum(v, 0), "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
         "tanh": np.tanh, "gelu": np.vectorize(lambda v: 0.5 * v * (1 + erf(v / np.sqrt(2))))}[activation]
    y = ops.conv2d(x, k, b, padding="same", activation=activation)
    np.testing.assert_allclose(y, f(z), rtol=1e-5, atol=1e-5)


def test_conv_finite_differences(isa):
    """The loss sum(conv(x, w) * dy) is linear in x and w: central differences are exact up to
    float32 rounding, so they check the analytic gradients independently of the reference."""
    rng = np.random.default_rng(7)
    x, k, b = _rand(rng, 2, 7, 6, 3), _rand(rng, 3, 2, 3, 5), _rand(rng, 5)
    kw = dict(strides=2, padding="same", dilation=1)
    y = ops.conv2d(x, k, b, **kw)
    dy = _rand(rng, *y.shape)
    dx, dw, db = ops.conv2d_grad(x, k, dy, **kw)

    def loss(xx, kk, bb):
        return float(np.sum(ops.conv2d(xx, kk, bb, **kw).astype(np.float64) * dy))

    eps = 1e-2
    for arr, grad in ((x, dx), (k, dw), (b, db)):
        for idx in [tuple(rng.integers(0, s) for s in arr.shape) for _ in range(6)]:
            plus, minus = arr.copy(), arr.copy()
            plus[idx] += eps
            minus[idx] -= eps
            args_p = [plus if arr is a else a for a in (x, k, b)]
            args_m = [minus if arr is a else a for a in (x, k, b)]
            fd = (loss(*args_p) - loss(*args_m)) / (2 * eps)
            assert abs(fd - grad[idx]) <= 2e-3 * (1 + abs(fd)), (idx, fd, grad[idx])


def test_conv_matches_reference_path_on_larger_input():
    """A bigger case than the float64 reference can afford everywhere: the fast path (AVX-512's
    implicit GEMM or AVX2's GEMM path; Winograd on both) against the reference path (float64
    accumulation) of the same module."""
    fast = _cpu.detected_isa()
    if fast not in ("avx2", "avx512"):
        pytest.skip("no AVX2 on this CPU")
    rng = np.random.default_rng(11)
    x, k, b = _rand(rng, 3, 23, 21, 37), _rand(rng, 3, 3, 37, 45), _rand(rng, 45)
    with isa_active(fast):
        y = ops.conv2d(x, k, b, padding="same", activation="relu")
        dy = _rand(rng, *y.shape)
        g = ops.conv2d_grad(x, k, dy, padding="same")
    with isa_active("reference"):
        y_ref = ops.conv2d(x, k, b, padding="same", activation="relu")
        g_ref = ops.conv2d_grad(x, k, dy, padding="same")
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-4)
    for a, r in zip(g, g_ref):
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=2e-3)


def test_conv_grad_without_dx_gives_the_same_dw_and_db(isa):
    """need_dx=False (a model's first layer) skips the input gradient only."""
    rng = np.random.default_rng(8)
    for c, o in ((3, 16), (17, 19)):  # the GEMM path, Winograd on AVX2
        x, k = _rand(rng, 2, 9, 8, c), _rand(rng, 3, 3, c, o)
        dy = _rand(rng, 2, 9, 8, o)
        dx, dw, db = ops.conv2d_grad(x, k, dy, padding="same")
        none, dw2, db2 = ops.conv2d_grad(x, k, dy, padding="same", need_dx=False)
        assert none is None and dx.shape == x.shape
        np.testing.assert_array_equal(dw2, dw)
        np.testing.assert_array_equal(db2, db)


def test_conv_threads_agree():
    rng = np.random.default_rng(5)
    x, k = _rand(rng, 1, 17, 15, 24), _rand(rng, 3, 3, 24, 20)
    dy = _rand(rng, 1, 17, 15, 20)
    before = forgeml.get_num_threads()
    try:
        forgeml.set_num_threads(1)
        one = (ops.conv2d(x, k, padding="same"), *ops.conv2d_grad(x, k, dy, padding="same"))
        forgeml.set_num_threads(2)
        two = (ops.conv2d(x, k, padding="same"), *ops.conv2d_grad(x, k, dy, padding="same"))
    finally:
        forgeml.set_num_threads(before)
    for a, b in zip(one, two):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def test_conv_empty_dims(isa):
    rng = np.random.default_rng(1)
    k, b = _rand(rng, 3, 3, 4, 5), _rand(rng, 5)
    y = ops.conv2d(np.zeros((0, 6, 6, 4), np.float32), k, b, padding="same")
    assert y.shape == (0, 6, 6, 5)
    # No input channels: y is the bias.
    y = ops.conv2d(_rand(rng, 2, 4, 4, 0), np.zeros((3, 3, 0, 5), np.float32), b, padding="same")
    np.testing.assert_array_equal(y, np.broadcast_to(b, (2, 4, 4, 5)))
    x = _rand(rng, 2, 4, 4, 4)
    y = ops.conv2d(x, np.zeros((3, 3, 4, 0), np.float32), padding="valid")
    assert y.shape == (2, 2, 2, 0)
    dx, dw, db = ops.conv2d_grad(x, np.zeros((3, 3, 4, 0), np.float32), np.zeros((2, 2, 2, 0), np.float32))
    assert dx.shape == x.shape and not dx.any() and dw.shape == (3, 3, 4, 0) and db.shape == (0,)


def test_conv_output_shape_same_even_kernel():
    # TensorFlow: the odd extra padding goes to the bottom/right.
    assert ops.conv_output_shape((10, 7), (4, 2), strides=(3, 2), padding="same") == (4, 4, (1, 2, 0, 1))
    assert ops.conv_output_shape((10, 7), (4, 2), padding="valid", dilation=2) == (4, 5, (0, 0, 0, 0))


def test_conv_accepts_other_dtypes_and_layouts():
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (2, 5, 6, 3))
    k = _rand(rng, 3, 3, 3, 4)
    y = ops.conv2d(np.asfortranarray(x), k, padding="same")
    np.testing.assert_allclose(y, ref_conv(x.astype(np.float32), k, None, (1, 1), (1, 1), "same"), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("call, match", [
    (lambda x, k: ops.conv2d(x, k[:, :, :2]), "input channels"),
    (lambda x, k: ops.conv2d(x[:, :2, :2], k), "larger than the input"),
    (lambda x, k: ops.conv2d(x, k, strides=0), "strides"),
    (lambda x, k: ops.conv2d(x, k, strides=(1, 2, 3)), "strides"),
    (lambda x, k: ops.conv2d(x, k, dilation=-1), "dilation"),
    (lambda x, k: ops.conv2d(x, k, padding="full"), "padding"),
    (lambda x, k: ops.conv2d(x[0], k), "x: expected a 4-D"),
    (lambda x, k: ops.conv2d(x, k[0]), "w: expected a 4-D"),
    (lambda x, k: ops.conv2d(x, k, np.ones(3, np.float32)), "bias"),
    (lambda x, k: ops.conv2d(x, k, activation="swish"), "activation"),
    (lambda x, k: ops.conv2d_grad(x, k, np.ones((2, 3, 3, 5), np.float32)), "dy: expected shape"),
    (lambda x, k: ops.max_pool2d(x, 7), "larger than the input"),
    (lambda x, k: ops.avg_pool2d(x, 2, padding="SAME!"), "padding"),
    (lambda x, k: ops.max_pool2d_grad(x, np.ones((2, 3, 2, 4), np.float32), 2), "dy: expected shape"),
])
def test_bad_input(call, match):
    rng = np.random.default_rng(0)
    x, k = _rand(rng, 2, 5, 5, 4), _rand(rng, 3, 3, 4, 6)
    with pytest.raises((ValueError, TypeError), match=match):
        call(x, k)


def test_bad_types():
    with pytest.raises(TypeError, match="strides"):
        ops.conv2d(np.ones((1, 3, 3, 1), np.float32), np.ones((1, 1, 1, 1), np.float32), strides="2")
    with pytest.raises(TypeError, match="x"):
        ops.conv2d("not an array", np.ones((1, 1, 1, 1), np.float32))


# ---------------------------------------------------------------- pooling

def ref_pool(x, kind, k, s, padding):
    n, h, w, c = x.shape
    oh, pt, _ = _pads(h, k[0], s[0], 1, padding)
    ow, pl, _ = _pads(w, k[1], s[1], 1, padding)
    y = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            h0, w0 = i * s[0] - pt, j * s[1] - pl
            win = x[:, max(h0, 0):max(h0 + k[0], 0), max(w0, 0):max(w0 + k[1], 0), :].astype(np.float64)
            y[:, i, j] = win.max(axis=(1, 2)) if kind == "max" else win.mean(axis=(1, 2))
    return y


POOLS = [((2, 2), None, "valid"), ((3, 3), (2, 2), "same"), ((2, 3), (1, 2), "same"), ((3, 2), 3, "valid"),
         ((4, 4), (3, 3), "same"), (2, None, "same")]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("pool, strides, padding", POOLS)
def test_pool_forward_backward(kind, pool, strides, padding):
    rng = np.random.default_rng(4)
    x = _rand(rng, 2, 9, 11, 19)
    k = (pool, pool) if isinstance(pool, int) else pool
    s = k if strides is None else ((strides, strides) if isinstance(strides, int) else strides)
    fwd = ops.max_pool2d if kind == "max" else ops.avg_pool2d
    grad = ops.max_pool2d_grad if kind == "max" else ops.avg_pool2d_grad
    y = fwd(x, pool, strides, padding)
    np.testing.assert_allclose(y, ref_pool(x, kind, k, s, padding), rtol=1e-6, atol=1e-6)
    dy = _rand(rng, *y.shape)
    dx = grad(x, dy, pool, strides, padding)
    # Finite differences of sum(pool(x) * dy), on a few coordinates (inputs are distinct, so max
    # is locally linear for a small step).
    eps = 1e-3
    for idx in [tuple(rng.integers(0, sz) for sz in x.shape) for _ in range(12)]:
        p, m = x.copy(), x.copy()
        p[idx] += eps
        m[idx] -= eps
        fd = (np.sum(ref_pool(p, kind, k, s, padding) * dy) - np.sum(ref_pool(m, kind, k, s, padding) * dy)) / (2 * eps)
        assert abs(fd - dx[idx]) <= 1e-3 * (1 + abs(fd)), (idx, fd, dx[idx])
    assert dx.shape == x.shape


def ref_max_pool_grad(x, dy, k, s, padding):
    """Each dy to the first maximal element of its window (row-major window order), float64."""
    n, h, w, c = x.shape
    oh, pt, _ = _pads(h, k[0], s[0], 1, padding)
    ow, pl, _ = _pads(w, k[1], s[1], 1, padding)
    dx = np.zeros(x.shape)
    for i in range(oh):
        for j in range(ow):
            h0, w0 = max(i * s[0] - pt, 0), max(j * s[1] - pl, 0)
            h1, w1 = min(i * s[0] - pt + k[0], h), min(j * s[1] - pl + k[1], w)
            win = x[:, h0:h1, w0:w1, :].reshape(n, -1, c)
            first = np.argmax(win, axis=1)  # the first maximum
            for b in range(n):
                for ch in range(c):
                    r, q = divmod(first[b, ch], w1 - w0)
                    dx[b, h0 + r, w0 + q, ch] += dy[b, i, j, ch]
    return dx


@pytest.mark.parametrize("pool, strides, padding", POOLS)
def test_max_pool_grad_routes_to_the_first_maximum_with_ties(isa, pool, strides, padding):
    rng = np.random.default_rng(5)
    x = rng.integers(-2, 3, size=(2, 9, 11, 21)).astype(np.float32)  # many ties in every window
    k = (pool, pool) if isinstance(pool, int) else pool
    s = k if strides is None else ((strides, strides) if isinstance(strides, int) else strides)
    dy = _rand(rng, *ops.max_pool2d(x, pool, strides, padding).shape)
    dx = ops.max_pool2d_grad(x, dy, pool, strides, padding)
    np.testing.assert_allclose(dx, ref_max_pool_grad(x, dy, k, s, padding), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 8, 8, 16), (3, 9, 7, 35), (5, 4, 5, 1)])
def test_max_pool_grad_routes_to_the_first_nan(isa, shape):
    """A window holding NaN sends its dy to the first NaN, as np.argmax picks it (the 2 x 2
    stride-2 path and the general one, 16-channel blocks and their tails)."""
    rng = np.random.default_rng(6)
    x = rng.integers(-2, 3, size=shape).astype(np.float32)
    x.reshape(-1)[rng.choice(x.size, x.size // 10, replace=False)] = np.nan
    for pool, strides in ((2, None), (3, 2)):
        k, s = (pool, pool), (strides or pool, strides or pool)
        dy = _rand(rng, *ops.max_pool2d(x, pool, strides, "valid").shape)
        dx = ops.max_pool2d_grad(x, dy, pool, strides, "valid")
        np.testing.assert_allclose(dx, ref_max_pool_grad(x, dy, k, s, "valid"), rtol=1e-6, atol=1e-6)


def test_avg_pool_same_divides_by_real_count():
    x = np.ones((1, 3, 3, 2), np.float32)
    y = ops.avg_pool2d(x, 2, 2, "same")  # windows at the edge hold 2 or 1 real elements
    np.testing.assert_array_equal(y, np.ones((1, 2, 2, 2), np.float32))
    dx = ops.avg_pool2d_grad(x, np.ones_like(y), 2, 2, "same")
    np.testing.assert_allclose(dx[0, :, :, 0], [[0.25, 0.25, 0.5], [0.25, 0.25, 0.5], [0.5, 0.5, 1.0]])


@pytest.mark.parametrize("shape", [(1, 8, 8, 16), (3, 9, 7, 19), (257, 4, 5, 1), (2, 6, 6, 35)])
@pytest.mark.parametrize("pool, strides, padding", [((2, 2), None, "valid"), ((2, 2), None, "same"),
                                                    ((3, 3), (2, 2), "same"), ((2, 2), (1, 1), "valid")])
def test_max_pool_forward_every_isa_exact_with_nan(isa, shape, pool, strides, padding):
    """Max pooling on every SIMD path (the 2 x 2 stride-2 fast path, the 16-channel blocks and
    their tails) is the exact maximum; a NaN in a window wins, as in NumPy."""
    rng = np.random.default_rng(11)
    x = _rand(rng, *shape)
    x.reshape(-1)[rng.choice(x.size, 5, replace=False)] = np.nan
    s = pool if strides is None else strides
    y = ops.max_pool2d(x, pool, strides, padding)
    np.testing.assert_array_equal(y, ref_pool(x, "max", pool, s, padding).astype(np.float32))
