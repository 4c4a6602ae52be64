"""The fused recurrent sequences with precision="bf16" (ops.simple_rnn / lstm / gru and their grads,
and the Keras layers under mixed_bfloat16): every matrix product on bf16-rounded operands with
float32 sums, against float64 references that round the same operands; on every ISA path and
several thread splits; the fused path against the layers' per-step loop path; training."""

from __future__ import annotations

import numpy as np
import pytest
from test_gemm_lowp import bf16
from test_rnn import ACT, make, sigmoid

import forgeml.ops as ops
from forgeml import keras
from forgeml.ops import rnn as rnn_mod


def mm_bf16(a, b):
    """The bf16 product: operands (as float32) rounded to bf16, products and sums in float64."""
    return bf16(a) @ bf16(b)


def mm_f32(a, b):
    """The float32 product's reference: the operands as they are, float64."""
    return np.asarray(a, np.float64) @ np.asarray(b, np.float64)


@pytest.fixture
def parts(request, monkeypatch):
    monkeypatch.setattr(rnn_mod, "_FORCE_PARTS", request.param)
    return request.param


# ---------------------------------------------------------------- float64 references, bf16 products


def ref_forward(cell, x, k, r, b, h0, c0=None, act="tanh", mm=mm_bf16, states=None):
    """y (N, T, H), h_T, c_T and the per-step history; every product through mm.

    states (N, T, H), the kernel's own y: step t starts from states[:, t - 1] instead of the
    reference's h_{t-1} (teacher forcing). Rounding h to bf16 amplifies float32-level differences
    (a state on the other side of a rounding boundary moves by a bf16 ulp, 2^-8), so a free
    reference drifts from any float32 implementation along a long sequence; a forced one checks
    each step's arithmetic, and its history makes the backward reference use the same states."""
    b = np.asarray(b, np.float64)
    n, t_len, _ = x.shape
    hdim = r.shape[0]
    h = np.zeros((n, hdim)) if h0 is None else np.asarray(h0, np.float64)
    c = np.zeros((n, hdim)) if c0 is None else np.asarray(c0, np.float64)
    ys, hist = [], []
    for t in range(t_len):
        if states is not None and t > 0:
            h = np.asarray(states[:, t - 1], np.float64)
        xk = mm(x[:, t], k)
        if cell == "simple_rnn":
            hn = ACT[act][0](xk + mm(h, r) + b)
            hist.append((h, hn))
        elif cell == "lstm":
            z = xk + mm(h, r) + b
            i, f, g, o = (z[:, j * hdim : (j + 1) * hdim] for j in range(4))
            i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
            cn = f * c + i * g
            hn = o * np.tanh(cn)
            hist.append((h, c, i, f, g, o, cn))
            c = cn
        else:
            a = xk + b[0]
            bb = mm(h, r) + b[1]
            z = sigmoid(a[:, :hdim] + bb[:, :hdim])
            rr = sigmoid(a[:, hdim : 2 * hdim] + bb[:, hdim : 2 * hdim])
            ht = np.tanh(a[:, 2 * hdim :] + rr * bb[:, 2 * hdim :])
            hn = z * h + (1 - z) * ht
            hist.append((h, z, rr, ht, bb[:, 2 * hdim :]))
        h = hn
        ys.append(h)
    y = np.stack(ys, 1) if ys else np.zeros((n, 0, hdim))
    return y, h, c, hist


def ref_backward(cell, x, k, r, b, hist, dy, dh_t, dc_t=None, act="tanh", mm=mm_bf16):
    """Backward through time: (dx, dk, dr, db, dh0, dc0); the products through mm (dbias's sums
    are plain, as in the kernels)."""
    n, t_len, _ = x.shape
    hdim = r.shape[0]
    dx = np.zeros(x.shape)
    dk, dr = np.zeros(k.shape), np.zeros(r.shape)
    db = np.zeros(np.shape(b))
    dh = np.zeros((n, hdim)) if dh_t is None else np.asarray(dh_t, np.float64).copy()
    dc = np.zeros((n, hdim)) if dc_t is None else np.asarray(dc_t, np.float64).copy()
    for t in reversed(range(t_len)):
        if dy is not None:
            dh = dh + dy[:, t]
        if cell == "simple_rnn":
            hp, hn = hist[t]
            da = dbb = dh * ACT[act][1](hn)
            db += da.sum(0)
            dh = mm(dbb, r.T)
        elif cell == "lstm":
            hp, cp, i, f, g, o, cn = hist[t]
            tc = np.tanh(cn)
            do = dh * tc * o * (1 - o)
            dcc = dc + dh * o * (1 - tc * tc)
            da = dbb = np.concatenate([dcc * g * i * (1 - i), dcc * cp * f * (1 - f), dcc * i * (1 - g * g), do], 1)
            dc = dcc * f
            db += da.sum(0)
            dh = mm(dbb, r.T)
        else:
            hp, z, rr, ht, bh = hist[t]
            dzp = dh * (hp - ht) * z * (1 - z)
            dah = dh * (1 - z) * (1 - ht * ht)
            drp = dah * bh * rr * (1 - rr)
            da = np.concatenate([dzp, drp, dah], 1)
            dbb = np.concatenate([dzp, drp, dah * rr], 1)
            db[0] += da.sum(0)
            db[1] += dbb.sum(0)
            dh = dh * z + mm(dbb, r.T)
        dx[:, t] = mm(da, k.T)
        dk += mm(x[:, t].T, da)
        dr += mm(hp.T, dbb)
    return dx, dk, dr, db, dh, (dc if cell == "lstm" else None)


def run(cell, x, k, r, b, h0, c0, act="tanh", precision="bf16"):
    if cell == "simple_rnn":
        return ops.simple_rnn(x, k, r, b, h0, activation=act, return_cache=True, precision=precision)
    if cell == "lstm":
        return ops.lstm(x, k, r, b, h0, c0, return_cache=True, precision=precision)
    return ops.gru(x, k, r, b, h0, return_cache=True, precision=precision)


def grad(cell, cache, dy, dh_t, dc_t, **kw):
    if cell == "lstm":
        return ops.lstm_grad(cache, dy, dh_t, dc_t, **kw)
    return getattr(ops, cell + "_grad")(cache, dy, dh_t, **kw)


def assert_close(got, ref, name, tol):
    """Every element within tol * (scale of the array + 1), and the Frobenius error within tol."""
    got = np.asarray(got, np.float64)
    assert got.shape == ref.shape, (name, got.shape, ref.shape)
    if ref.size == 0:
        return
    err = np.abs(got - ref).max()
    assert err <= tol * (np.abs(ref).max() + 1.0), f"{name}: max |err| {err:.3g}"
    fro = np.linalg.norm(got - ref) / (np.linalg.norm(ref) + 1.0)
    assert fro <= tol, f"{name}: Frobenius error {fro:.3g}"


# The forward, forced onto the kernel's own states (ref_forward), is checked to float32 summation
# error: products of bf16 operands are exact, so only the order of the float32 sums differs.
TOL_STEP = 2e-6
# The backward's bf16 operands (dz) are computed by float32 gate math in the kernel and float64 in
# the reference: an element within ~1e-7 of a bf16 rounding boundary rounds the other way (one
# bf16 ulp, up to 2^-7 of it) and the difference travels back through dL/dh. That is up to ~1e-3
# of an array's scale in these small sums; the float32 products differ from bf16 by ~2e-2.
TOL_FLIP = 3e-3

SHAPES = [
    (3, 5, 7, 9),
    (1, 1, 1, 1),
    (2, 4, 1, 3),
    (5, 3, 17, 33),
    (4, 2, 40, 70),
    (3, 2, 0, 5),
    (3, 0, 4, 5),
    (0, 3, 4, 5),
]


# ---------------------------------------------------------------- the ops against the references


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "N%dT%dF%dH%d" % s)
@pytest.mark.parametrize("given_state", [False, True], ids=["zero_state", "given_state"])
def test_bf16_matches_rounded_reference(isa, cell, shape, given_state):
    n, t, f, h = shape
    x, k, r, b, h0, c0 = make(cell, *shape, seed=sum(shape) + 11)
    if not given_state:
        h0 = c0 = None
    out = run(cell, x, k, r, b, h0, c0)
    y_ref, h_ref, c_ref, hist = ref_forward(cell, x, k, r, b, h0, c0, states=out[0])
    assert out[0].dtype == np.float32 and out[0].shape == (n, t, h)
    assert_close(out[0], y_ref, "y", TOL_STEP)
    assert_close(out[1], h_ref, "h_T", TOL_STEP)
    if cell == "lstm":
        assert_close(out[2], c_ref, "c_T", TOL_STEP)
    rng = np.random.default_rng(5)
    dy = rng.standard_normal((n, t, h)).astype(np.float32)
    dh_t = rng.standard_normal((n, h)).astype(np.float32)
    dc_t = rng.standard_normal((n, h)).astype(np.float32)
    g = grad(cell, out[-1], dy, dh_t, dc_t)
    ref = ref_backward(cell, x, k, r, b, hist, dy, dh_t, dc_t)
    for name, got, want in zip(g._fields, g, ref):
        if want is None:
            assert got is None
        else:
            assert_close(got, want, name, TOL_FLIP)


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "relu", "linear"])
def test_bf16_simple_rnn_activations(isa, act):
    x, k, r, b, h0, _ = make("simple_rnn", 3, 6, 5, 7, seed=5)
    y, h_t, cache = ops.simple_rnn(x, k, r, b, h0, activation=act, return_cache=True, precision="bf16")
    y_ref, _, _, hist = ref_forward("simple_rnn", x, k, r, b, h0, act=act, states=y)
    assert_close(y, y_ref, "y", TOL_STEP)
    dy = np.random.default_rng(0).standard_normal(y.shape).astype(np.float32)
    g = ops.simple_rnn_grad(cache, dy)
    ref = ref_backward("simple_rnn", x, k, r, b, hist, dy, None, act=act)
    for name, got, want in zip(g._fields[:5], g[:5], ref[:5]):
        assert_close(got, want, name, TOL_FLIP)


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
@pytest.mark.parametrize("parts", [2, 3, 5], indirect=True)
def test_bf16_thread_parts(isa, cell, parts):
    """Hidden units split into thread parts (odd, unaligned boundaries; each part packs its own
    bf16 slice of the recurrent kernel) give the reference's result."""
    shape = (3, 5, 7, 37)
    x, k, r, b, h0, c0 = make(cell, *shape, seed=3)
    out = run(cell, x, k, r, b, h0, c0)
    y_ref, _, _, hist = ref_forward(cell, x, k, r, b, h0, c0, states=out[0])
    assert_close(out[0], y_ref, "y", TOL_STEP)
    dy = np.random.default_rng(2).standard_normal(out[0].shape).astype(np.float32)
    g = grad(cell, out[-1], dy, None, None)
    ref = ref_backward(cell, x, k, r, b, hist, dy, None, None)
    for name, got, want in zip(g._fields, g, ref):
        if want is not None:
            assert_close(got, want, name, TOL_FLIP)


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_bf16_is_not_float32_and_precision_follows_the_cache(cell):
    """bf16 differs from float32 by rounding only; the grad runs in the forward's precision unless
    told otherwise (a float32 grad of a bf16 forward matches the float32-product reference)."""
    shape = (4, 6, 13, 11)
    x, k, r, b, h0, c0 = make(cell, *shape, seed=8)
    y32 = run(cell, x, k, r, b, h0, c0, precision=None)
    y16 = run(cell, x, k, r, b, h0, c0)
    assert 1e-5 < np.abs(y16[0] - y32[0]).max() < 3e-2
    assert y16[-1].precision == "bf16" and y32[-1].precision is None
    assert "precision='bf16'" in repr(y16[-1])
    dy = np.random.default_rng(1).standard_normal(y16[0].shape).astype(np.float32)
    g_default = grad(cell, y16[-1], dy, None, None)
    g_bf16 = grad(cell, y16[-1], dy, None, None, precision="bf16")
    for a, c in zip(g_default, g_bf16):
        if a is not None:
            np.testing.assert_array_equal(a, c)
    g_f32 = grad(cell, y16[-1], dy, None, None, precision="float32")
    assert np.abs(g_f32.dkernel - g_bf16.dkernel).max() > 1e-6
    # the float32 grad of the same forward state: products of the unrounded operands
    _, _, _, hist = ref_forward(cell, x, k, r, b, h0, c0, states=y16[0])
    ref = ref_backward(cell, x, k, r, b, hist, dy, None, None, mm=mm_f32)
    for name, got, want in zip(g_f32._fields, g_f32, ref):
        if want is not None:
            assert_close(got, want, name, 5e-5)


@pytest.mark.parametrize(
    "shape", [(3, 1, 7, 9), (5, 1, 17, 33), (13, 1, 40, 70)], ids=lambda s: "N%dF%dH%d" % (s[0], s[2], s[3])
)
def test_bf16_backward_products_on_exact_operands(isa, shape):
    """A linear SimpleRNN over one step with bf16-representable dy: dz = dy exactly, so every
    backward product (dx, dkernel, drecurrent_kernel, dh0) has the same bf16 operands in the
    kernel and the reference and must match to float32 summation error."""
    n, t, f, h = shape
    x, k, r, b, h0, _ = make("simple_rnn", *shape, seed=4)
    y, _, cache = ops.simple_rnn(x, k, r, b, h0, activation="linear", return_cache=True, precision="bf16")
    dy = bf16(np.random.default_rng(3).standard_normal((n, t, h))).astype(np.float32)
    g = ops.simple_rnn_grad(cache, dy)
    want = {
        "dx": mm_bf16(dy[:, 0], k.T)[:, None],
        "dkernel": mm_bf16(x[:, 0].T, dy[:, 0]),
        "drecurrent_kernel": mm_bf16(h0.T, dy[:, 0]),
        "dbias": dy[:, 0].sum(0, dtype=np.float64),
        "dh0": mm_bf16(dy[:, 0], r.T),
    }
    for name, ref in want.items():
        assert_close(getattr(g, name), ref, name, TOL_STEP)
    assert np.abs(g.dkernel - x[:, 0].T.astype(np.float64) @ dy[:, 0]).max() > 1e-5  # x was rounded


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize("bad", ["bfloat16", "fp16", 16, True, ["bf16"]])
def test_bad_precision_is_a_value_error_naming_it(bad):
    x, k, r, b, h0, c0 = make("lstm", 2, 3, 4, 5, seed=0)
    with pytest.raises(ValueError, match="precision"):
        ops.lstm(x, k, r, b, precision=bad)
    cache = ops.lstm(x, k, r, b, return_cache=True)[-1]
    with pytest.raises(ValueError, match="precision"):
        ops.lstm_grad(cache, None, h0, precision=bad)
    xs, ks, rs, bs, *_ = make("simple_rnn", 2, 3, 4, 5, seed=0)
    with pytest.raises(ValueError, match="precision"):
        ops.simple_rnn(xs, ks, rs, bs, precision=bad)


def test_float32_precision_is_the_default():
    for cell in ("simple_rnn", "lstm", "gru"):
        x, k, r, b, h0, c0 = make(cell, 3, 4, 5, 6, seed=1)
        a, c = run(cell, x, k, r, b, h0, c0, precision=None), run(cell, x, k, r, b, h0, c0, precision="float32")
        np.testing.assert_array_equal(a[0], c[0])


def test_cupy_input_with_bf16_is_refused(cupy):
    x, k, r, b, h0, c0 = make("gru", 2, 3, 4, 5, seed=2)
    xd, kd, rd, bd = (cupy.asarray(a) for a in (x, k, r, b))
    with pytest.raises(NotImplementedError, match="precision"):
        ops.gru(xd, kd, rd, bd, precision="bf16")
    cache = ops.gru(xd, kd, rd, bd, return_cache=True)[-1]
    with pytest.raises(NotImplementedError, match="precision"):
        ops.gru_grad(cache, None, cupy.asarray(h0), precision="bf16")


# ---------------------------------------------------------------- the Keras layers under mixed_bfloat16

LAYERS = {"SimpleRNN": "simple_rnn", "LSTM": "lstm", "GRU": "gru"}


def layer_pair(cls, shape, **kw):
    """Two mixed_bfloat16 layers with the same weights; the second forced onto the loop path."""
    n, t, f, h = shape
    x = np.random.default_rng(4).standard_normal((n, t, f)).astype(np.float32)
    fused = getattr(keras.layers, cls)(h, dtype_policy="mixed_bfloat16", **kw)
    loop = getattr(keras.layers, cls)(h, dtype_policy="mixed_bfloat16", **kw)
    fused(x)
    loop(x)
    loop.set_weights(fused.get_weights())
    loop._fast_ok = lambda: False
    return x, fused, loop


@pytest.mark.parametrize("cls", list(LAYERS))
@pytest.mark.parametrize("kw", [{}, {"return_sequences": True, "go_backwards": True}], ids=["last", "seq_back"])
def test_layer_takes_the_fused_bf16_path_and_matches_the_loop(cls, kw):
    x, fused, loop = layer_pair(cls, (3, 5, 7, 9), **kw)
    y16, yloop = fused.forward(x, True), loop.forward(x, True)
    assert fused._fast and fused._cache.precision == "bf16"
    assert not loop._fast
    assert_close(y16, np.asarray(yloop, np.float64), "y", TOL_FLIP)  # both run free: flips as in the backward
    dy = np.random.default_rng(6).standard_normal(y16.shape).astype(np.float32)
    dx16, dxloop = fused.backward(dy.copy()), loop.backward(dy.copy())
    assert_close(dx16, np.asarray(dxloop, np.float64), "dx", TOL_FLIP)
    for a, c in zip(fused.trainable_weights, loop.trainable_weights):
        assert_close(a.grad, np.asarray(c.grad, np.float64), a.name, TOL_FLIP)


def test_layer_float32_policy_stays_float32():
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    layer = keras.layers.LSTM(5, return_sequences=True)
    layer(x)
    assert layer._fast and layer._cache.precision is None


def test_layer_on_cupy_under_mixed_bf16_runs_fused_float32(cupy):
    """CuPy has no bf16 recurrent kernels: the layer takes the fused float32 op there."""
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    host = keras.layers.GRU(5, return_sequences=True)
    want = host(x)
    dev = keras.layers.GRU(5, return_sequences=True, dtype_policy="mixed_bfloat16")
    xd = cupy.asarray(x)
    dev(xd)
    dev.set_weights(host.get_weights())
    got = dev(xd)
    assert dev._fast and dev._cache.precision is None
    np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls", list(LAYERS))
def test_layer_trains_under_mixed_bf16(cls):
    """A tiny sequence regression (the sum of each sequence's first feature): the loss falls."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 6, 3)).astype(np.float32)
    y = x[:, :, :1].sum(1) / 3
    model = keras.Sequential(
        [keras.Input((6, 3)), getattr(keras.layers, cls)(8, dtype_policy="mixed_bfloat16"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="mse")
    before = float(model.evaluate(x, y, verbose=0))
    model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    after = float(model.evaluate(x, y, verbose=0))
    assert model.layers[0]._fast and model.layers[0]._cache.precision == "bf16"
    assert after < 0.5 * before, (before, after)
