"""The row kernels (forgeml.ops.rows: softmax and layer normalization, forward and backward, and
the row scatter-add) against float64 references on odd sizes, on every SIMD path: rows under 32
values (one running sum) and wider ones (8 running sums and a remainder), finite-difference
gradients, the softmax's treatment of masked (-inf, -1e9) and NaN scores, and bad input."""

import numpy as np
import pytest

from forgeml import ops

WIDTHS = [1, 5, 31, 32, 45, 70]


def _softmax64(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _layer_norm64(x, gamma, beta, eps):
    mean = x.mean(axis=-1, keepdims=True)
    inv = 1.0 / np.sqrt(((x - mean) ** 2).mean(axis=-1, keepdims=True) + eps)
    xhat = (x - mean) * inv
    return xhat * gamma + beta, xhat, inv


@pytest.mark.parametrize("c", WIDTHS)
def test_softmax_rows_matches_float64(rng, isa, c):
    x = (rng.standard_normal((3, 7, c)) * 4).astype(np.float32)
    got = ops.softmax_rows(x)
    assert got.shape == x.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, _softmax64(x.astype(np.float64)), rtol=2e-6, atol=1e-7)
    strided = x[:, ::2, ::-1]  # a non-contiguous view is copied once
    np.testing.assert_allclose(ops.softmax_rows(strided), _softmax64(strided.astype(np.float64)), rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("c", WIDTHS)
def test_softmax_rows_backward_matches_float64_and_finite_differences(rng, isa, c):
    x = (rng.standard_normal((4, c)) * 2).astype(np.float32)
    dy = rng.standard_normal((4, c)).astype(np.float32)
    y = ops.softmax_rows(x)
    got = ops.softmax_rows_backward(y, dy)
    y64 = y.astype(np.float64)
    np.testing.assert_allclose(got, y64 * (dy - (dy * y64).sum(-1, keepdims=True)), rtol=1e-5, atol=1e-7)
    x64, h = x.astype(np.float64), 1e-6
    num = np.zeros(x.shape)
    for i in np.ndindex(*x.shape):
        up, down = x64.copy(), x64.copy()
        up[i] += h
        down[i] -= h
        num[i] = ((_softmax64(up) - _softmax64(down)) * dy).sum() / (2 * h)
    np.testing.assert_allclose(got, num, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="dy"):
        ops.softmax_rows_backward(y, dy[:2])


def test_softmax_rows_leaves_its_input_and_writes_out(rng):
    x = rng.standard_normal((6, 9)).astype(np.float32)
    kept = x.copy()
    y = ops.softmax_rows(x)
    np.testing.assert_array_equal(x, kept)
    out = np.empty_like(x)
    assert ops.softmax_rows(x, out=out) is out
    np.testing.assert_array_equal(out, y)
    np.testing.assert_array_equal(x, kept)
    assert ops.softmax_rows(x, out=x) is x  # in place
    np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="out"):
        ops.softmax_rows(kept, out=np.empty((6, 8), np.float32))


def test_softmax_rows_masked_and_nan_rows(isa):
    x = np.zeros((4, 40), np.float32)
    x[0, ::3] = -np.inf
    x[1, 1::2] = -1e9
    x[2, 7] = np.nan
    x[3, :] = -1e9  # every key masked: uniform, as the float64 reference
    got = ops.softmax_rows(x)
    assert np.all(got[0, ::3] == 0) and np.all(got[1, 1::2] == 0)  # exact zeros, as libm's exp gives
    np.testing.assert_allclose(got[0], _softmax64(x[0].astype(np.float64)), rtol=2e-6)
    np.testing.assert_allclose(got[1], _softmax64(x[1].astype(np.float64)), rtol=2e-6)
    assert np.isnan(got[2]).all()
    np.testing.assert_allclose(got[3], 1 / 40, rtol=1e-6)


@pytest.mark.parametrize("affine", ["both", "gamma", "beta", "none"])
@pytest.mark.parametrize("c", WIDTHS)
def test_layer_norm_matches_float64(rng, isa, c, affine):
    x = (rng.standard_normal((5, 3, c)) * 3 + 2).astype(np.float32)
    gamma = rng.standard_normal(c).astype(np.float32) if affine in ("both", "gamma") else None
    beta = rng.standard_normal(c).astype(np.float32) if affine in ("both", "beta") else None
    y, xhat, inv = ops.layer_norm(x, gamma, beta, 1e-3)
    want_y, want_xhat, want_inv = _layer_norm64(
        x.astype(np.float64), 1.0 if gamma is None else gamma, 0.0 if beta is None else beta, 1e-3
    )
    assert y.shape == xhat.shape == x.shape and inv.shape == (5, 3, 1)
    np.testing.assert_allclose(xhat, want_xhat, rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(inv, want_inv, rtol=1e-5)
    np.testing.assert_allclose(y, want_y, rtol=1e-5, atol=5e-6)


@pytest.mark.parametrize("c", WIDTHS)
def test_layer_norm_backward_matches_float64_and_finite_differences(rng, isa, c):
    m = 9
    x = (rng.standard_normal((m, c)) * 2 - 1).astype(np.float32)
    gamma = rng.standard_normal(c).astype(np.float32)
    beta = rng.standard_normal(c).astype(np.float32)
    dy = rng.standard_normal((m, c)).astype(np.float32)
    _, xhat, inv = ops.layer_norm(x, gamma, beta, 1e-3)
    dx, dgamma, dbeta = ops.layer_norm_backward(dy, xhat, inv, gamma)

    def loss(x64, g64, b64):  # sum(dy * layer_norm(x)) in float64
        return float((dy * _layer_norm64(x64, g64, b64, 1e-3)[0]).sum())

    x64, g64, b64 = x.astype(np.float64), gamma.astype(np.float64), beta.astype(np.float64)
    h = 1e-6
    for grad, arg in ((dx, 0), (dgamma, 1), (dbeta, 2)):
        args = [x64, g64, b64]
        num = np.zeros(args[arg].shape)
        for i in np.ndindex(*args[arg].shape):
            up = [a.copy() for a in args]
            down = [a.copy() for a in args]
            up[arg][i] += h
            down[arg][i] -= h
            num[i] = (loss(*up) - loss(*down)) / (2 * h)
        np.testing.assert_allclose(grad, num, rtol=1e-4, atol=1e-4)

    dx2, dg2, db2 = ops.layer_norm_backward(dy, xhat, inv, None, need_params=False)  # no gamma: dxhat = dy
    assert dg2 is None and db2 is None
    want = inv * (dy - dy.mean(-1, keepdims=True) - xhat * (dy * xhat).mean(-1, keepdims=True))
    np.testing.assert_allclose(dx2, want, rtol=1e-5, atol=1e-5)
    none_dx, dg3, db3 = ops.layer_norm_backward(dy, xhat, inv, gamma, need_dx=False)
    assert none_dx is None
    np.testing.assert_array_equal(dg3, dgamma)
    np.testing.assert_array_equal(db3, dbeta)


def test_empty_rows(isa):
    y, xhat, inv = ops.layer_norm(np.zeros((0, 6), np.float32), np.ones(6, np.float32), None)
    assert y.shape == (0, 6) and inv.shape == (0, 1)
    dx, dgamma, dbeta = ops.layer_norm_backward(np.zeros((0, 6), np.float32), xhat, inv, np.ones(6, np.float32))
    assert dx.shape == (0, 6)
    np.testing.assert_array_equal(dgamma, 0)
    np.testing.assert_array_equal(dbeta, 0)
    assert ops.softmax_rows(np.zeros((0, 4), np.float32)).shape == (0, 4)


def test_bad_input_names_the_argument():
    x = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="gamma"):
        ops.layer_norm(x, np.ones(5, np.float32))
    with pytest.raises(ValueError, match="epsilon"):
        ops.layer_norm(x, epsilon=-1.0)
    with pytest.raises(ValueError, match="x: expected an array of at least one value"):
        ops.layer_norm(np.ones((3, 0), np.float32))
    with pytest.raises(TypeError, match="x"):
        ops.softmax_rows("scores")
    _, xhat, inv = ops.layer_norm(x)
    with pytest.raises(ValueError, match="xhat"):
        ops.layer_norm_backward(x, xhat[:2], inv)
    with pytest.raises(ValueError, match="inv"):
        ops.layer_norm_backward(x, xhat, inv[:2])


@pytest.mark.parametrize("d", [1, 7, 33])
def test_scatter_add_rows_matches_np_add_at(rng, isa, d):
    """Repeated indices accumulate in order, so the sums are np.add.at's to the bit; negative
    indices count from the end; int32 indices of any shape are flattened."""
    rows = 11
    target = rng.standard_normal((rows, d)).astype(np.float32)
    idx = rng.integers(-rows, rows, (5, 9)).astype(np.int32)
    values = rng.standard_normal((idx.size, d)).astype(np.float32)
    want = target.copy()
    np.add.at(want, idx.ravel(), values)
    got = ops.scatter_add_rows(target, idx, values)
    assert got is target
    np.testing.assert_array_equal(got, want)
    before = target.copy()
    ops.scatter_add_rows(target, np.zeros(0, np.int64), np.zeros((0, d), np.float32))
    np.testing.assert_array_equal(target, before)


def test_scatter_add_rows_bad_input_names_the_argument():
    target = np.zeros((4, 3), np.float32)
    values = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="indices: index 4 is out of bounds"):
        ops.scatter_add_rows(target, np.array([0, 4]), values)
    np.testing.assert_array_equal(target, 0)  # nothing written before the check
    with pytest.raises(ValueError, match="indices: index -1 is out of bounds"):
        ops.scatter_add_rows(target, np.array([0, -5]), values)
    with pytest.raises(TypeError, match="indices"):
        ops.scatter_add_rows(target, np.array([0.0, 1.0]), values)
    with pytest.raises(ValueError, match="values"):
        ops.scatter_add_rows(target, np.array([0, 1, 2]), values)
    with pytest.raises(ValueError, match="target"):
        ops.scatter_add_rows(np.zeros((3, 4), np.float32).T, np.array([0, 1]), values)
    with pytest.raises(TypeError, match="target"):
        ops.scatter_add_rows(np.zeros((4, 3)), np.array([0, 1]), values)
