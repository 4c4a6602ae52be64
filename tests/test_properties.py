"""Property-based tests (hypothesis) of the public ops against NumPy float64 references.

Random shapes including 0 and 1, dtypes, byte orders, memory layouts (Fortran order, transposed
and strided views) and NaN/inf placements. Derandomized with a fixed number of examples so the
file runs the same cases every time in well under a minute."""

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from forgeml import ops  # noqa: E402

SETTINGS = settings(
    max_examples=80,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

DIMS = st.sampled_from([0, 1, 2, 3, 5, 8, 17, 33])
DTYPES = st.sampled_from(["<f4", ">f4", "<f8", ">f8", "<f2", "<i4", ">i2", "u1"])
LAYOUTS = st.sampled_from(["C", "F", "strided", "reversed"])


def _array(data, shape, *, dtype=None, layout=None, special=True):
    """A float64 reference and the same values as an array of the drawn dtype / byte order / layout."""
    dtype = np.dtype(data.draw(DTYPES) if dtype is None else dtype)
    layout = data.draw(LAYOUTS) if layout is None else layout
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if dtype.kind == "f":
        ref = rng.standard_normal(shape)
        if dtype.itemsize == 2:
            ref = ref.astype(np.float16).astype(np.float64)
    else:
        ref = rng.integers(0, 5, size=shape).astype(np.float64)
    ref = ref.astype(np.float32).astype(np.float64)  # what the kernels see
    if special and dtype.kind == "f" and ref.size and data.draw(st.booleans()):
        for _ in range(data.draw(st.integers(1, 3))):
            idx = tuple(data.draw(st.integers(0, s - 1)) for s in shape)
            ref[idx] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    if layout == "F":
        arr = np.asfortranarray(ref.astype(dtype))
    elif layout == "strided":
        big = np.zeros(tuple(2 * s for s in shape), dtype)
        view = big[tuple(slice(None, None, 2) for _ in shape)]
        view[...] = ref.astype(dtype)
        arr = view
    elif layout == "reversed":
        arr = np.ascontiguousarray(ref[tuple(slice(None, None, -1) for _ in shape)].astype(dtype))
        arr = arr[tuple(slice(None, None, -1) for _ in shape)]
    else:
        arr = ref.astype(dtype)
    return ref, arr


def _close(got, ref, scale, rtol=3e-5):
    got = np.asarray(got, np.float64)
    assert got.shape == ref.shape
    nan = np.isnan(ref)
    assert np.array_equal(np.isnan(got), nan), "NaN pattern differs"
    inf = np.isinf(ref)
    assert np.array_equal(got[inf], ref[inf])
    fin = ~(nan | inf)
    assert np.all(np.abs(got[fin] - ref[fin]) <= rtol * scale[fin] + 1e-5)


def _act(z, act):
    with np.errstate(all="ignore"):
        return {None: z, "relu": np.where(z < 0, 0.0, z), "sigmoid": 1 / (1 + np.exp(-z)), "tanh": np.tanh(z)}[act]


@SETTINGS
@given(
    st.data(),
    DIMS,
    DIMS,
    DIMS,
    st.booleans(),
    st.booleans(),
    st.sampled_from([None, "relu", "sigmoid", "tanh"]),
    st.booleans(),
)
def test_matmul(data, m, n, k, ta, tb, act, with_bias):
    a_ref, a = _array(data, (k, m) if ta else (m, k))
    b_ref, b = _array(data, (n, k) if tb else (k, n))
    bias_ref, bias = _array(data, (n,)) if with_bias else (np.zeros(n), None)
    A, B = (a_ref.T if ta else a_ref), (b_ref.T if tb else b_ref)
    with np.errstate(all="ignore"):
        z = A @ B + bias_ref
        scale = np.abs(A) @ np.abs(B) + np.abs(bias_ref) + 1
    got = ops.matmul(a, b, trans_a=ta, trans_b=tb, bias=bias, activation=act)
    assert got.dtype == np.float32
    _close(got, _act(z, act), scale)


@SETTINGS
@given(
    st.data(),
    st.sampled_from([0, 1, 2]),
    st.integers(1, 7),
    st.integers(1, 7),
    st.sampled_from([0, 1, 3, 16]),
    st.integers(1, 3),
    st.integers(1, 3),
    st.sampled_from([0, 1, 4, 17]),
    st.integers(1, 2),
    st.integers(1, 2),
    st.sampled_from(["valid", "same"]),
    st.sampled_from([None, "relu", "tanh"]),
)
def test_conv2d(data, n, h, w, c, kh, kw, o, s, d, padding, act):
    if padding == "valid" and ((kh - 1) * d + 1 > h or (kw - 1) * d + 1 > w):
        return
    x_ref, x = _array(data, (n, h, w, c))
    w_ref, wt = _array(data, (kh, kw, c, o), special=False)
    got = ops.conv2d(x, wt, strides=s, dilation=d, padding=padding, activation=act)
    oh, ow, (pt, pb, pl, pr) = ops.conv_output_shape((h, w), (kh, kw), strides=s, padding=padding, dilation=d)
    xp = np.pad(x_ref, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    xa = np.pad(np.abs(x_ref), ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    ref = np.zeros((n, oh, ow, o))
    scale = np.ones((n, oh, ow, o))
    with np.errstate(all="ignore"):
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, i * d : i * d + (oh - 1) * s + 1 : s, j * d : j * d + (ow - 1) * s + 1 : s]
                apatch = xa[:, i * d : i * d + (oh - 1) * s + 1 : s, j * d : j * d + (ow - 1) * s + 1 : s]
                ref += patch @ w_ref[i, j] if c else 0
                scale += apatch @ np.abs(w_ref[i, j]) if c else 0
        # 0 * inf inside a window is NaN in any summation order; the NumPy matmul agrees
    _close(got, _act(ref, act), scale)


@SETTINGS
@given(
    st.data(),
    st.sampled_from([0, 1, 2]),
    st.integers(1, 6),
    st.integers(1, 6),
    st.sampled_from([0, 1, 5]),
    st.integers(1, 3),
    st.integers(1, 3),
    st.sampled_from(["valid", "same"]),
    st.sampled_from(["max", "avg"]),
)
def test_pooling(data, n, h, w, c, ph, pw, padding, kind):
    if padding == "valid" and (ph > h or pw > w):
        return
    x_ref, x = _array(data, (n, h, w, c))
    fn = ops.max_pool2d if kind == "max" else ops.avg_pool2d
    got = fn(x, (ph, pw), padding=padding)
    oh, ow, (pt, pb, pl, pr) = ops.conv_output_shape((h, w), (ph, pw), strides=(ph, pw), padding=padding)
    ref = np.empty((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * ph - pt, j * pw - pl
            win = x_ref[:, max(r0, 0) : min(r0 + ph, h), max(c0, 0) : min(c0 + pw, w)]
            with np.errstate(all="ignore"):
                if kind == "max":  # NaN wins, as np.max
                    ref[:, i, j] = win.max(axis=(1, 2)) if win.size else -np.inf
                else:
                    ref[:, i, j] = win.mean(axis=(1, 2))
    with np.errstate(all="ignore"):
        scale = np.abs(np.nan_to_num(ref, nan=0, posinf=0, neginf=0)) + 1
    _close(got, ref, scale)


@SETTINGS
@given(
    st.data(),
    st.sampled_from([0, 1, 3]),
    st.sampled_from([0, 1, 4]),
    st.sampled_from([0, 1, 3]),
    st.sampled_from([1, 2, 5]),
)
def test_simple_rnn(data, n, t, f, h):
    x_ref, x = _array(data, (n, t, f), special=False)
    k_ref, k = _array(data, (f, h), dtype="<f4", special=False)
    r_ref, r = _array(data, (h, h), dtype=">f4", special=False)
    b_ref, b = _array(data, (h,), special=False)
    y, h_t = ops.simple_rnn(x, k, r * np.float32(0.3) if r.dtype.isnative else r, b)
    r_used = r_ref * 0.3 if r.dtype.isnative else r_ref
    hs = np.zeros((n, h))
    ref = np.zeros((n, t, h))
    for s in range(t):
        hs = np.tanh(x_ref[:, s] @ k_ref + hs @ r_used + b_ref)
        ref[:, s] = hs
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(h_t, hs, rtol=1e-4, atol=1e-4)


@SETTINGS
@given(
    st.data(),
    st.sampled_from([0, 1, 2, 9]),
    st.sampled_from([1, 2, 4]),
    st.sampled_from([1, 3, 7]),
    st.sampled_from([1, 2]),
)
def test_tree_forest_predict(data, n, d, depth_nodes, k):
    """A random forest of complete trees in the flat layout against a Python walk."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x_ref, X = _array(data, (n, d))
    n_trees = data.draw(st.integers(1, 3))
    nodes, values, roots = [], [], []
    for _ in range(n_trees):
        base = len(nodes)
        roots.append(base)
        for i in range(depth_nodes):
            if 2 * i + 2 < depth_nodes:
                thr = np.float32(rng.standard_normal())
                feat = int(rng.integers(d)) | (int(rng.integers(2)) << 30)
                nodes.append([feat, thr.view(np.int32), base + 2 * i + 1, base + 2 * i + 2])
            else:
                nodes.append([-1, 0, -1, -1])
            values.append(rng.standard_normal(k))
    nodes, values, roots = np.array(nodes, np.int32), np.array(values), np.array(roots, np.int64)
    got = ops.tree_forest_predict(X, nodes, values, roots)
    ref = np.zeros((n, k))
    for r in range(n):
        for root in roots:
            i = root
            while nodes[i, 0] >= 0:
                f, nan_left = nodes[i, 0] & 0x3FFFFFFF, (nodes[i, 0] >> 30) & 1
                v = np.float32(x_ref[r, f])
                left = bool(nan_left) if np.isnan(v) else v <= nodes[i, 1:2].view(np.float32)[0]
                i = nodes[i, 2] if left else nodes[i, 3]
            ref[r] += values[i]
    np.testing.assert_allclose(got, ref / n_trees, rtol=1e-12, atol=1e-12)


@SETTINGS
@given(
    st.data(),
    st.sampled_from([0, 1, 4, 13]),
    st.sampled_from([0, 1, 6]),
    st.sampled_from([0, 1, 3, 8]),
    st.sampled_from(["linear", "rbf", "poly", "sigmoid"]),
    st.sampled_from([0.01, 0.5, 1e-12, 1e12]),
)
def test_svm_kernel(data, m, n, d, kernel, gamma):
    a_ref, a = _array(data, (m, d), special=False)
    b_ref, b = _array(data, (n, d), special=False)
    s = 1 / np.sqrt(gamma)  # features on the scale gamma suits ('scale' would pick about this)
    a_ref, b_ref = a_ref * s, b_ref * s
    a = a.astype(np.float64) * s
    b = b.astype(np.float64) * s
    got = ops.svm_kernel(a, b, kernel, gamma=gamma, coef0=0.5, degree=2)
    a32, b32 = a.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64)
    dot = a32 @ b32.T
    if kernel == "linear":
        ref = dot
        scale = np.abs(a32) @ np.abs(b32).T + 1e-30
    else:
        g = gamma
        if kernel == "rbf":
            ref = np.exp(-g * ((a32[:, None, :] - b32[None]) ** 2).sum(-1))
        elif kernel == "poly":
            ref = (g * dot + 0.5) ** 2
        else:
            ref = np.tanh(g * dot + 0.5)
        scale = np.ones_like(ref) * (1 + g * (np.abs(a32) @ np.abs(b32).T)) ** 2
    assert got.shape == (m, n)
    assert np.all(np.abs(got - ref) <= 1e-4 * scale + 1e-5)


@SETTINGS
@given(st.data(), st.sampled_from([2, 3, 10, 25]), st.sampled_from([0, 1, 3]), st.booleans())
def test_svm_linear_fit_dense_equals_sparse(data, n, d, fortran):
    import scipy.sparse as sp

    x_ref, X = _array(data, (n, d), special=False, layout="F" if fortran else "C")
    y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    W_dense, _, _ = ops.svm_linear_fit(X, y[None], np.ones((1, n)), max_iter=200)
    W_sparse, _, _ = ops.svm_linear_fit(sp.csr_matrix(x_ref), y[None], np.ones((1, n)), max_iter=200)
    assert W_dense.shape == (1, d)
    np.testing.assert_allclose(W_dense, W_sparse, rtol=1e-4, atol=1e-5)
