"""forgeml.ops.matmul and the C++ SGEMM behind it, on every ISA path, against float64 NumPy."""
import numpy as np
import pytest
from scipy.special import erf

import forgeml
from forgeml import _cpu
from forgeml.ops import matmul
from forgeml.ops import gemm as gemm_mod

ACTS = {None: lambda x: x, "relu": lambda x: np.maximum(x, 0), "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
        "tanh": np.tanh, "gelu": lambda x: 0.5 * x * (1 + erf(x / np.sqrt(2)))}
# Odd shapes around the register tiles (AVX-512 14x32, AVX2 6x16, portable 4x16) and blocks.
SHAPES = [(1, 1, 1), (1, 37, 5), (37, 1, 5), (13, 31, 9), (15, 33, 17), (14, 32, 384), (7, 17, 385),
          (29, 65, 3), (5, 6, 200), (31, 95, 66), (37, 301, 45), (25, 129, 390), (3, 700, 400)]
BIG = (2100, 333, 771)  # several MC, KC and NC blocks of every kernel




@pytest.fixture
def threads():
    old = forgeml.get_num_threads()
    yield forgeml.set_num_threads
    forgeml.set_num_threads(old)


def rand(rng, *shape):
    return rng.uniform(-1, 1, shape).astype(np.float32)


def op(x, t):
    return np.swapaxes(x, -1, -2) if t else x


def check(c, a, b, ta=False, tb=False, bias=None, act=None, alpha=1.0, beta=0.0, c0=None):
    """Every element within 1e-5 * (|op(a)| @ |op(b)|)_ij + 1e-6 of float64, Frobenius < 1e-5."""
    a64, b64 = op(a.astype(np.float64), ta), op(b.astype(np.float64), tb)
    z = alpha * (a64 @ b64)
    scale = abs(alpha) * (np.abs(a64) @ np.abs(b64))
    if beta:
        z = z + beta * c0.astype(np.float64)
        scale = scale + abs(beta) * np.abs(c0)
    if bias is not None:
        z = z + bias.astype(np.float64)
        scale = scale + np.abs(bias)
    ref = ACTS[act](z)
    assert c.shape == ref.shape and c.dtype == np.float32
    err = np.abs(c - ref)
    tol = 1e-5 * scale + 1e-6
    bad = np.argwhere(err > tol)
    assert bad.size == 0, f"{len(bad)} elements off, first at {bad[0]}: {c[tuple(bad[0])]} vs {ref[tuple(bad[0])]}"
    if ref.size:
        assert np.linalg.norm(c - ref) <= 1e-5 * max(np.linalg.norm(ref), 1e-30) + 1e-6


def operands(rng, m, n, k, ta, tb, batch=()):
    a = rand(rng, *batch, *((k, m) if ta else (m, k)))
    b = rand(rng, *batch, *((n, k) if tb else (k, n)))
    return a, b


@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
def test_shapes_and_transposes(isa, ta, tb):
    rng = np.random.default_rng(1)
    for m, n, k in SHAPES:
        a, b = operands(rng, m, n, k, ta, tb)
        check(matmul(a, b, trans_a=ta, trans_b=tb), a, b, ta, tb)
        # the general Python path (taken for inputs the C++ fast path declines) agrees
        check(gemm_mod._matmul(a, b, ta, tb, None, None, None), a, b, ta, tb)


@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
def test_several_blocks(isa, ta, tb, threads):
    if isa == "reference" and (ta or tb):
        pytest.skip("the reference loops are covered on the small shapes")
    threads(1)  # one thread walks every MC block of BIG (two threads may get one block each)
    rng = np.random.default_rng(2)
    a, b = operands(rng, *BIG, ta, tb)
    bias = rand(rng, BIG[1])
    check(matmul(a, b, trans_a=ta, trans_b=tb, bias=bias, activation="tanh"), a, b, ta, tb, bias, "tanh")


@pytest.mark.parametrize("act", list(ACTS))
def test_epilogues(isa, act):
    rng = np.random.default_rng(3)
    for m, n, k in [(1, 1, 1), (13, 31, 9), (29, 65, 40), (200, 70, 385)]:
        a, b = operands(rng, m, n, k, False, True)
        a *= 3
        bias = rand(rng, n)
        check(matmul(a, b, trans_b=True, bias=bias, activation=act), a, b, False, True, bias, act)
        check(matmul(a, b, trans_b=True, activation=act), a, b, False, True, None, act)


def test_apply_activation(isa):
    # past exp's float range both ways (-104 and 88.8 are the clamps), tiny values, and +-inf
    extremes = [-1e4, -200, -104.5, -104, -90, -87.5, 87.5, 88.8, 89, 200, 1e4, 1e-30, -1e-30, np.inf, -np.inf]
    x = np.concatenate([np.linspace(-12, 12, 1001), extremes]).astype(np.float32)
    for act, code in gemm_mod.ACTIVATIONS.items():
        y = x.copy()
        _cpu.apply_activation(y, code)
        with np.errstate(over="ignore", invalid="ignore"):  # gelu(-inf) = -inf * 0: NaN, as in Keras
            want = ACTS[act](x.astype(np.float64))
        np.testing.assert_allclose(y, want, rtol=2e-6, atol=1e-6)
        nan = np.full(9, np.nan, np.float32)  # a NaN stays NaN (Keras: a NaN loss, not a silent 0)
        _cpu.apply_activation(nan, code)
        assert np.isnan(nan).all(), act


def test_alpha_beta(isa):
    rng = np.random.default_rng(4)
    for (m, n, k), ta, tb in [((13, 31, 9), False, False), ((40, 70, 400), True, True), ((1, 5, 0), False, True)]:
        a, b = operands(rng, m, n, k, ta, tb)
        c0 = rand(rng, m, n)
        c = c0.copy()
        bias = rand(rng, n)
        _cpu.sgemm(a, b, c, ta, tb, 1.5, -0.75, bias, 2)
        check(c, a, b, ta, tb, bias, "sigmoid", alpha=1.5, beta=-0.75, c0=c0)
        c = np.full((m, n), np.nan, np.float32)  # beta == 0: out is write-only
        _cpu.sgemm(a, b, c, ta, tb, -2.0, 0.0, None, 0)
        check(c, a, b, ta, tb, alpha=-2.0)


def test_custom_epilogue(isa):
    rng = np.random.default_rng(5)
    for m, n, k in [(1, 1, 1), (29, 65, 3), (300, 333, 400)]:
        a, b = operands(rng, m, n, k, False, False)
        c = np.empty((m, n), np.float32)
        counts = np.zeros((m, n), np.int32)
        _cpu._sgemm_count_epilogue(a, b, c, False, False, counts)
        assert (counts == 1).all()
        check((c - 0.5) / 2, a, b)


def test_batched(isa):
    rng = np.random.default_rng(6)
    for ta, tb in [(False, False), (True, True), (False, True)]:
        a, b = operands(rng, 13, 33, 20, ta, tb, batch=(5,))
        bias = rand(rng, 33)
        check(matmul(a, b, trans_a=ta, trans_b=tb, bias=bias, activation="relu"), a, b, ta, tb, bias, "relu")
        check(matmul(a, b[0], trans_a=ta, trans_b=tb), a, b[0][None], ta, tb)  # 2-D b broadcast
        check(matmul(a[0], b, trans_a=ta, trans_b=tb), a[0][None], b, ta, tb)  # 2-D a broadcast
        check(matmul(a[:1], b, trans_a=ta, trans_b=tb), a[:1], b, ta, tb)  # batch of one broadcast
    a, b = operands(rng, 3, 4, 5, False, False, batch=(0,))
    assert matmul(a, b).shape == (0, 3, 4)


def test_batched_many_small_threads(threads):
    rng = np.random.default_rng(7)
    a, b = operands(rng, 30, 20, 25, True, False, batch=(64,))
    threads(2)
    c2 = matmul(a, b, trans_a=True)
    threads(1)
    c1 = matmul(a, b, trans_a=True)
    check(c2, a, b, True, False)
    np.testing.assert_array_equal(c1, c2)


def test_packed_b_reuse(isa):
    rng = np.random.default_rng(8)
    for tb in (False, True):
        k, n = 400, 70
        b = rand(rng, *((n, k) if tb else (k, n)))
        pb = _cpu.PackedB(b, tb)
        assert (pb.K, pb.N) == (k, n)
        bias = rand(rng, n)
        for m, ta in [(1, False), (37, True), (1100, False)]:
            a = rand(rng, *((k, m) if ta else (m, k)))
            c0 = rand(rng, m, n)
            c = c0.copy()
            _cpu.sgemm_packed(a, pb, c, ta, 0.5, 2.0, bias, 4)
            check(c, a, b, ta, tb, bias, "gelu", alpha=0.5, beta=2.0, c0=c0)


def test_views_map_to_flags_without_copy():
    rng = np.random.default_rng(9)
    a = rand(rng, 40, 30)
    v, t = gemm_mod._view(a.T, "a", False, np)
    assert t and np.shares_memory(v, a) and v.flags.c_contiguous
    big = rand(rng, 50, 60)
    sl = big[3:40, 5:50]  # a row-strided slice is used in place
    v, t = gemm_mod._view(sl, "a", False, np)
    assert not t and np.shares_memory(v, big)
    b = rand(rng, 30, 20)
    check(matmul(a.T, b.T, trans_a=True, trans_b=True), a.T, b.T, True, True)
    check(matmul(sl, big[:45, 1:8]), sl, big[:45, 1:8])
    check(matmul(sl.T[::-1], big[:37, :9]), np.ascontiguousarray(sl.T[::-1]), big[:37, :9])


def test_conversions():
    rng = np.random.default_rng(10)
    a = rng.uniform(-1, 1, (17, 40))  # float64
    b = np.arange(-20, 20).reshape(40, 1).astype(np.int64)
    c = matmul(a, b[:, ::1], bias=[0.5])
    check(c, a.astype(np.float32), b.astype(np.float32), bias=np.float32([0.5]))
    x = rand(rng, 40, 60)[:, ::3]  # no unit stride: copied once
    check(matmul(a.astype(np.float32), x), a.astype(np.float32), np.ascontiguousarray(x))
    assert matmul([[1.0, 2.0]], [[3.0], [4.0]])[0, 0] == 11.0


def test_out():
    rng = np.random.default_rng(11)
    a, b = rand(rng, 20, 30), rand(rng, 30, 10)
    out = np.empty((20, 10), np.float32)
    assert matmul(a, b, out=out) is out
    check(out, a, b)
    outf = np.empty((10, 20), np.float32).T  # not row-major: computed then copied in
    assert matmul(a, b, out=outf) is outf
    check(outf, a, b)


@pytest.mark.parametrize("act", [None, "relu"])
def test_edge_widths_write_only_their_columns(isa, act):
    """Every N edge width of the micro-kernels and the bias / activation pass (partial-vector
    stores), into a view of a wider array: the columns past n keep their sentinel."""
    rng = np.random.default_rng(12)
    for n in range(1, 18):
        a, b, bias = rand(rng, 13, 9), rand(rng, 9, n), rand(rng, n)
        wide = np.full((13, n + 5), 7.0, np.float32)
        matmul(a, b, bias=bias, activation=act, out=wide[:, :n])
        check(wide[:, :n], a, b, bias=bias, act=act)
        assert (wide[:, n:] == 7.0).all(), f"n={n}: columns past n written"


def test_empty_dims(isa):
    rng = np.random.default_rng(12)
    bias = rand(rng, 7)
    c = matmul(np.empty((5, 0), np.float32), np.empty((0, 7), np.float32), bias=bias, activation="sigmoid")
    np.testing.assert_allclose(c, np.broadcast_to(1 / (1 + np.exp(-bias.astype(np.float64))), (5, 7)), rtol=1e-6)
    assert matmul(np.empty((0, 4), np.float32), rand(rng, 4, 7)).shape == (0, 7)
    assert matmul(rand(rng, 3, 4), np.empty((4, 0), np.float32)).shape == (3, 0)
    assert matmul(np.empty((3, 0), np.float32), np.empty((5, 3), np.float32), trans_a=True, trans_b=True).shape == (0, 5)
    assert (matmul(np.empty((3, 0), np.float32), np.empty((0, 2), np.float32)) == 0).all()


def test_bad_inputs():
    a, b = np.ones((3, 4), np.float32), np.ones((4, 5), np.float32)
    with pytest.raises(ValueError, match=r"a: expected a 2-D or 3-D"):
        matmul(np.ones(4, np.float32), b)
    with pytest.raises(ValueError, match=r"b: expected a 2-D or 3-D"):
        matmul(a, np.ones((2, 2, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"inner dimensions differ.*\(3, 4\).*\(5, 4\)"):
        matmul(a, b, trans_b=True)
    with pytest.raises(ValueError, match=r"bias: expected shape \(5,\)"):
        matmul(a, b, bias=np.ones(4, np.float32))
    with pytest.raises(ValueError, match=r"bias: expected shape"):
        matmul(a, b, bias=np.ones((1, 5), np.float32))
    with pytest.raises(ValueError, match=r"activation: expected one of"):
        matmul(a, b, activation="swish")
    with pytest.raises(ValueError, match=r"activation"):
        matmul(a, b, activation=["relu"])
    with pytest.raises(ValueError, match=r"out: expected a float32 array of shape \(3, 5\)"):
        matmul(a, b, out=np.empty((5, 3), np.float32))
    with pytest.raises(ValueError, match=r"out: expected a float32"):
        matmul(a, b, out=np.empty((3, 5), np.float64))
    with pytest.raises(ValueError, match=r"out: expected a float32 array of shape \(3, 5\), got list"):
        matmul(a, b, out=[[0.0] * 5] * 3)
    ro = np.empty((3, 5), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"out: the array is read-only"):
        matmul(a, b, out=ro)
    with pytest.raises(TypeError, match=r"a: expected a numeric array"):
        matmul(np.array([["x"]]), b)
    with pytest.raises(ValueError, match=r"b: batch size 3 differs from a's 2"):
        matmul(np.ones((2, 3, 4), np.float32), np.ones((3, 4, 5), np.float32))
    with pytest.raises(ValueError, match=r"activation: expected 0..4"):
        _cpu.sgemm(a, b, np.empty((3, 5), np.float32), False, False, 1.0, 0.0, None, 9)
    with pytest.raises(ValueError, match=r"out: expected \(3, 5\)"):
        _cpu.sgemm(a, b, np.empty((3, 6), np.float32), False, False, 1.0, 0.0, None, 0)
    with pytest.raises(ValueError, match=r"a: inner dimension 4 differs"):
        _cpu.sgemm_packed(a, _cpu.PackedB(np.ones((5, 2), np.float32)), np.empty((3, 2), np.float32),
                          False, 1.0, 0.0, None, 0)


def assert_threads_agree(threads, a, b, ta, tb, bias, activation):
    """One and two threads give bit-identical products, within float64 tolerance."""
    kw = dict(trans_a=ta, trans_b=tb, bias=bias, activation=activation)
    threads(1)
    c1 = matmul(a, b, **kw)
    threads(2)
    c2 = matmul(a, b, **kw)
    np.testing.assert_array_equal(c1, c2)
    check(c2, a, b, ta, tb, bias, activation)


def test_thread_counts_agree(threads):
    rng = np.random.default_rng(13)
    for m, n, k in [(301, 97, 200), (60, 700, 100), BIG]:
        a, b = operands(rng, m, n, k, False, True)
        bias = rand(rng, n)
        assert_threads_agree(threads, a, b, False, True, bias, "gelu")


@pytest.mark.parametrize("ta", [False, True])
def test_in_place_b_row_chunks(ta, threads):
    """A row-major B small enough to be read in place, rows split over two threads in up to 12
    chunks per thread (4099 rows: the full count; 257: a few; 30: two): bit-identical to one
    thread, and within float64 tolerance."""
    rng = np.random.default_rng(23)
    for m, n, k in [(4099, 67, 61), (257, 255, 253), (30, 900, 100)]:
        a, b = operands(rng, m, n, k, ta, False)
        bias = rand(rng, n)
        assert_threads_agree(threads, a, b, ta, False, bias, "relu")


@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
def test_b_packed_once_and_shared(ta, tb, threads):
    """B packed once per call and shared: by the row chunks of two threads (577 rows, and 200 rows,
    fewer than N, still split by rows; claimed guided, or in fixed chunks for a B over 2^21
    floats), and by one thread's row passes over more than MC rows (4101 > 4032 for AVX-512).
    Bit-identical to the per-block packing of one thread, and within float64 tolerance."""
    rng = np.random.default_rng(21)
    for m, n, k in [(577, 413, 771), (200, 701, 389), (4101, 45, 389), (300, 1100, 1950)]:
        a, b = operands(rng, m, n, k, ta, tb)
        bias = rand(rng, n)
        assert_threads_agree(threads, a, b, ta, tb, bias, "relu")


@pytest.mark.slow
def test_huge_call_in_chunks():
    """Over 4 GFLOP: rows go in chunks with a Ctrl-C check between them; sampled rows checked."""
    rng = np.random.default_rng(15)
    a, b = rand(rng, 4100, 700), rand(rng, 700, 800)
    bias = rand(rng, 800)
    c = matmul(a, b, bias=bias)
    rows = np.r_[0:5, 1000:1010, 2040:2060, 4090:4100]
    check(c[rows], a[rows], b, bias=bias)


def test_cupy_matches_numpy(cupy, copies):
    """CuPy in, CuPy out (a real GPU, or the stand-in on the emulator: see conftest.cupy)."""
    rng = np.random.default_rng(14)
    a, b = operands(rng, 70, 90, 130, True, False)
    bias = rand(rng, 90)
    da, db, dbias = cupy.asarray(a), cupy.asarray(b), cupy.asarray(bias)
    if copies is not None:
        copies.reset()
    c = matmul(da, db, trans_a=True, bias=dbias, activation="relu")
    assert isinstance(c, cupy.ndarray)
    if copies is not None:  # device in, device out: no host copy
        assert (copies.h2d, copies.d2h) == (0, 0)
    check(cupy.asnumpy(c), a, b, True, False, bias, "relu")
    out = cupy.empty((70, 90), dtype=cupy.float32)
    assert matmul(da, db, trans_a=True, out=out) is out
    check(cupy.asnumpy(out), a, b, True, False)
