"""forgeml.ops recurrent sequences (SimpleRNN, LSTM, GRU) against float64 NumPy references written
from the Keras equations: forward outputs, analytic backward-through-time, and finite differences
of the float64 forward. Every SIMD path and several thread splits of the hidden units."""
from __future__ import annotations

import numpy as np
import pytest

import forgeml
import forgeml.ops as ops
from forgeml.ops import rnn as rnn_mod

GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}




@pytest.fixture
def parts(request, monkeypatch):
    monkeypatch.setattr(rnn_mod, "_FORCE_PARTS", request.param)
    return request.param


# ---------------------------------------------------------------- float64 references

def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


ACT = {"tanh": (np.tanh, lambda h: 1 - h * h), "sigmoid": (sigmoid, lambda h: h * (1 - h)),
       "relu": (lambda z: np.maximum(z, 0), lambda h: (h > 0).astype(h.dtype)),
       "linear": (lambda z: z, lambda h: np.ones_like(h))}


def ref_forward(cell, x, k, r, b, h0, c0=None, act="tanh"):
    """Returns y (N, T, H), h_T, c_T and the per-step history for ref_backward."""
    x, k, r, b = (np.asarray(a, np.float64) for a in (x, k, r, b))
    n, t_len, _ = x.shape
    hdim = r.shape[0]
    h = np.zeros((n, hdim)) if h0 is None else np.asarray(h0, np.float64)
    c = np.zeros((n, hdim)) if c0 is None else np.asarray(c0, np.float64)
    ys, hist = [], []
    for t in range(t_len):
        xt = x[:, t]
        if cell == "simple_rnn":
            hn = ACT[act][0](xt @ k + h @ r + b)
            hist.append((h, hn))
        elif cell == "lstm":
            z = xt @ k + h @ r + b
            i, f, g, o = (z[:, j * hdim:(j + 1) * hdim] for j in range(4))
            i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
            cn = f * c + i * g
            hn = o * np.tanh(cn)
            hist.append((h, c, i, f, g, o, cn))
            c = cn
        else:
            a = xt @ k + b[0]
            bb = h @ r + b[1]
            z = sigmoid(a[:, :hdim] + bb[:, :hdim])
            rr = sigmoid(a[:, hdim:2 * hdim] + bb[:, hdim:2 * hdim])
            ht = np.tanh(a[:, 2 * hdim:] + rr * bb[:, 2 * hdim:])
            hn = z * h + (1 - z) * ht
            hist.append((h, z, rr, ht, bb[:, 2 * hdim:]))
        h = hn
        ys.append(h)
    y = np.stack(ys, 1) if ys else np.zeros((n, 0, hdim))
    return y, h, c, hist


def ref_backward(cell, x, k, r, b, hist, dy, dh_t, dc_t=None, act="tanh"):
    """Backward through time in float64 from the equations: (dx, dk, dr, db, dh0, dc0)."""
    x, k, r = (np.asarray(a, np.float64) for a in (x, k, r))
    n, t_len, _ = x.shape
    hdim = r.shape[0]
    dx = np.zeros_like(x)
    dk, dr = np.zeros_like(k), np.zeros_like(r)
    db = np.zeros(np.shape(b))
    dh = np.zeros((n, hdim)) if dh_t is None else np.asarray(dh_t, np.float64).copy()
    dc = np.zeros((n, hdim)) if dc_t is None else np.asarray(dc_t, np.float64).copy()
    for t in reversed(range(t_len)):
        if dy is not None:
            dh = dh + dy[:, t]
        if cell == "simple_rnn":
            hp, hn = hist[t]
            dz = dh * ACT[act][1](hn)
            dx[:, t] = dz @ k.T
            dk += x[:, t].T @ dz
            dr += hp.T @ dz
            db += dz.sum(0)
            dh = dz @ r.T
        elif cell == "lstm":
            hp, cp, i, f, g, o, cn = hist[t]
            tc = np.tanh(cn)
            do = dh * tc * o * (1 - o)
            dcc = dc + dh * o * (1 - tc * tc)
            dz = np.concatenate([dcc * g * i * (1 - i), dcc * cp * f * (1 - f), dcc * i * (1 - g * g), do], 1)
            dc = dcc * f
            dx[:, t] = dz @ k.T
            dk += x[:, t].T @ dz
            dr += hp.T @ dz
            db += dz.sum(0)
            dh = dz @ r.T
        else:
            hp, z, rr, ht, bh = hist[t]
            dzp = dh * (hp - ht) * z * (1 - z)
            dah = dh * (1 - z) * (1 - ht * ht)
            drp = dah * bh * rr * (1 - rr)
            da = np.concatenate([dzp, drp, dah], 1)
            dbb = np.concatenate([dzp, drp, dah * rr], 1)
            dx[:, t] = da @ k.T
            dk += x[:, t].T @ da
            dr += hp.T @ dbb
            db[0] += da.sum(0)
            db[1] += dbb.sum(0)
            dh = dh * z + dbb @ r.T
    return dx, dk, dr, db, dh, (dc if cell == "lstm" else None)


def make(cell, n, t, f, h, seed=0, scale=1.0):
    """Random odd-sized inputs; the recurrent kernel is scaled so the dynamics are contractive."""
    rng = np.random.default_rng(seed)
    g = GATES[cell]
    x = rng.standard_normal((n, t, f)).astype(np.float32)
    k = (rng.standard_normal((f, g * h)) / np.sqrt(max(f, 1))).astype(np.float32)
    r = (scale * 0.9 * rng.standard_normal((h, g * h)) / np.sqrt(max(h, 1)) / 2).astype(np.float32)
    b = (0.3 * rng.standard_normal((2, g * h) if cell == "gru" else (g * h,))).astype(np.float32)
    h0 = (0.5 * rng.standard_normal((n, h))).astype(np.float32)
    c0 = (0.5 * rng.standard_normal((n, h))).astype(np.float32)
    return x, k, r, b, h0, c0


def run(cell, x, k, r, b, h0, c0, act="tanh", cache=False):
    if cell == "simple_rnn":
        return ops.simple_rnn(x, k, r, b, h0, activation=act, return_cache=cache)
    if cell == "lstm":
        return ops.lstm(x, k, r, b, h0, c0, return_cache=cache)
    return ops.gru(x, k, r, b, h0, return_cache=cache)


def grad(cell, cache, dy, dh_t, dc_t):
    if cell == "lstm":
        return ops.lstm_grad(cache, dy, dh_t, dc_t)
    return getattr(ops, cell + "_grad")(cache, dy, dh_t)


def assert_close(got, ref, name, tol=2e-5):
    """Every element within tol * (scale of the array + 1); and a tight Frobenius relative error."""
    got = np.asarray(got, np.float64)
    assert got.shape == ref.shape, (name, got.shape, ref.shape)
    if ref.size == 0:
        return
    scale = np.abs(ref).max() + 1.0
    err = np.abs(got - ref).max()
    assert err <= tol * scale, f"{name}: max |err| {err:.3g} > {tol:.1g} * {scale:.3g}"
    fro = np.linalg.norm(got - ref) / (np.linalg.norm(ref) + 1e-30)
    assert fro <= 10 * tol or np.linalg.norm(got - ref) <= tol, f"{name}: Frobenius rel. error {fro:.3g}"


# ---------------------------------------------------------------- forward and backward vs references

SHAPES = [(1, 1, 1, 1), (3, 7, 5, 9), (2, 1, 4, 3), (5, 11, 3, 17), (4, 6, 1, 33), (1, 9, 6, 1)]


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "N%dT%dF%dH%d" % s)
@pytest.mark.parametrize("given_state", [False, True], ids=["zero_state", "given_state"])
def test_forward_backward_match_reference(isa, cell, shape, given_state):
    n, t, f, h = shape
    x, k, r, b, h0, c0 = make(cell, *shape, seed=sum(shape))
    if not given_state:
        h0 = c0 = None
    out = run(cell, x, k, r, b, h0, c0, cache=True)
    y_ref, h_ref, c_ref, hist = ref_forward(cell, x, k, r, b, h0, c0)
    assert out[0].dtype == np.float32 and out[0].shape == (n, t, h)
    assert_close(out[0], y_ref, "y")
    assert_close(out[1], h_ref, "h_T")
    if cell == "lstm":
        assert_close(out[2], c_ref, "c_T")
    rng = np.random.default_rng(1)
    dy = rng.standard_normal((n, t, h)).astype(np.float32)
    dh_t = rng.standard_normal((n, h)).astype(np.float32)
    dc_t = rng.standard_normal((n, h)).astype(np.float32)
    g = grad(cell, out[-1], dy, dh_t, dc_t)
    ref = ref_backward(cell, x, k, r, b, hist, dy, dh_t, dc_t)
    for name, got, want in zip(g._fields, g, ref):
        if want is None:
            assert got is None
        else:
            assert_close(got, want, name, tol=5e-5)


@pytest.mark.parametrize("scale", [30.0, 300.0])
def test_lstm_saturated_gates(isa, scale):
    """Pre-activations far past where sigmoid and tanh saturate (|z| up to ~1e3): the fast gate
    math clamps before its exponentials (no inf or NaN), and saturated units match float64."""
    x, k, r, b, h0, c0 = make("lstm", 3, 6, 5, 19, seed=7)
    x = (x * scale).astype(np.float32)
    out = run("lstm", x, k, r, b, h0, c0, cache=True)
    with np.errstate(over="ignore"):  # the reference's 1 / (1 + exp(-z)) meets exp overflow: 1 / inf = 0
        y_ref, h_ref, c_ref, hist = ref_forward("lstm", x, k, r, b, h0, c0)
    assert np.isfinite(out[0]).all()
    assert_close(out[0], y_ref, "y")
    assert_close(out[2], c_ref, "c_T")
    dy = np.random.default_rng(3).standard_normal(out[0].shape).astype(np.float32)
    g = grad("lstm", out[-1], dy, None, None)
    for name, got, want in zip(g._fields, g, ref_backward("lstm", x, k, r, b, hist, dy, None, None)):
        if want is not None:
            assert_close(got, want, name, tol=5e-5)


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
@pytest.mark.parametrize("parts", [2, 3, 5], indirect=True)
def test_thread_parts_give_the_same_result(cell, parts):
    """The hidden units split into thread parts (odd, unaligned boundaries) and the gate-column
    permutation that goes with them must not change anything."""
    shape = (3, 5, 7, 19)
    x, k, r, b, h0, c0 = make(cell, *shape, seed=3)
    out = run(cell, x, k, r, b, h0, c0, cache=True)
    y_ref, h_ref, c_ref, hist = ref_forward(cell, x, k, r, b, h0, c0)
    assert_close(out[0], y_ref, "y")
    dy = np.random.default_rng(2).standard_normal(out[0].shape).astype(np.float32)
    g = grad(cell, out[-1], dy, None, None)
    ref = ref_backward(cell, x, k, r, b, hist, dy, None, None)
    for name, got, want in zip(g._fields, g, ref):
        if want is not None:
            assert_close(got, want, name, tol=5e-5)


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "relu", "linear"])
def test_simple_rnn_activations(isa, act):
    x, k, r, b, h0, _ = make("simple_rnn", 3, 6, 5, 7, seed=5)
    y, h_t, cache = ops.simple_rnn(x, k, r, b, h0, activation=act, return_cache=True)
    y_ref, h_ref, _, hist = ref_forward("simple_rnn", x, k, r, b, h0, act=act)
    assert_close(y, y_ref, "y")
    dy = np.random.default_rng(0).standard_normal(y.shape).astype(np.float32)
    g = ops.simple_rnn_grad(cache, dy)
    ref = ref_backward("simple_rnn", x, k, r, b, hist, dy, None, act=act)
    for name, got, want in zip(g._fields[:5], g[:5], ref[:5]):
        assert_close(got, want, name, tol=5e-5)


def test_long_sequence_large_units():
    """A bench-like shape (several lanes per part, two threads), contractive dynamics."""
    for cell in ("lstm", "gru", "simple_rnn"):
        x, k, r, b, h0, c0 = make(cell, 9, 40, 33, 70, seed=7)
        out = run(cell, x, k, r, b, h0, c0, cache=True)
        y_ref, _, _, hist = ref_forward(cell, x, k, r, b, h0, c0)
        assert_close(out[0], y_ref, cell + " y")
        dy = np.random.default_rng(4).standard_normal(out[0].shape).astype(np.float32)
        g = grad(cell, out[-1], dy, None, None)
        ref = ref_backward(cell, x, k, r, b, hist, dy, None, None)
        for name, got, want in zip(g._fields, g, ref):
            if want is not None:
                assert_close(got, want, f"{cell} {name}", tol=1e-4)


# ---------------------------------------------------------------- finite differences

@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_gradients_match_finite_differences(cell):
    """forgeml's gradients against central differences of the float64 forward (independent of
    ref_backward), for L = <dy, y> + <dh_T, h_T> (+ <dc_T, c_T>)."""
    n, t, f, h = 2, 3, 2, 3
    x, k, r, b, h0, c0 = make(cell, n, t, f, h, seed=11, scale=1.5)
    rng = np.random.default_rng(12)
    dy, dh_t, dc_t = rng.standard_normal((n, t, h)), rng.standard_normal((n, h)), rng.standard_normal((n, h))
    args = [x, k, r, b, h0, c0]

    def loss(vals):
        y, h_t, c_t, _ = ref_forward(cell, *vals)
        return (dy * y).sum() + (dh_t * h_t).sum() + ((dc_t * c_t).sum() if cell == "lstm" else 0.0)

    out = run(cell, *args, cache=True)
    g = grad(cell, out[-1], dy.astype(np.float32), dh_t.astype(np.float32), dc_t.astype(np.float32))
    vals64 = [np.asarray(a, np.float64) for a in args]
    for idx, got in enumerate(g):
        if got is None:
            continue
        num = np.zeros(vals64[idx].shape)
        eps = 1e-6
        for pos in np.ndindex(*num.shape):
            plus = [v.copy() for v in vals64]
            minus = [v.copy() for v in vals64]
            plus[idx][pos] += eps
            minus[idx][pos] -= eps
            num[pos] = (loss(plus) - loss(minus)) / (2 * eps)
        assert_close(got, num, g._fields[idx], tol=5e-5)


# ---------------------------------------------------------------- edge cases and errors

@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_empty_time_and_batch(cell):
    x, k, r, b, h0, c0 = make(cell, 3, 0, 4, 5)
    out = run(cell, x, k, r, b, h0, c0, cache=True)
    assert out[0].shape == (3, 0, 5)
    np.testing.assert_array_equal(out[1], h0)
    g = grad(cell, out[-1], np.zeros((3, 0, 5), np.float32), h0, c0)
    np.testing.assert_array_equal(g.dh0, h0)  # nothing in between: the gradient passes through
    assert not g.dkernel.any() and not g.drecurrent_kernel.any() and not g.dbias.any()
    x, k, r, b, h0, c0 = make(cell, 0, 4, 4, 5)
    out = run(cell, x, k, r, b, None, None, cache=True)
    assert out[0].shape == (0, 4, 5) and out[1].shape == (0, 5)
    g = grad(cell, out[-1], np.zeros((0, 4, 5), np.float32), None, None)
    assert g.dx.shape == (0, 4, 4) and not g.dkernel.any()


def test_no_dy_only_final_state_gradient():
    x, k, r, b, h0, c0 = make("lstm", 3, 4, 5, 6)
    *_, cache = ops.lstm(x, k, r, b, return_cache=True)
    _, _, _, hist = ref_forward("lstm", x, k, r, b, None, None)
    dh_t = np.ones((3, 6), np.float32)
    g = ops.lstm_grad(cache, None, dh_t)
    ref = ref_backward("lstm", x, k, r, b, hist, None, dh_t, None)
    for name, got, want in zip(g._fields, g, ref):
        assert_close(got, want, name, tol=5e-5)


def test_inputs_converted_and_not_modified():
    x, k, r, b, h0, _ = make("gru", 2, 3, 4, 5)
    x64 = np.asfortranarray(x.astype(np.float64))
    before = x64.copy()
    y, _ = ops.gru(x64, k, r, b, h0)
    np.testing.assert_array_equal(x64, before)
    y32, _ = ops.gru(x, k, r, b, h0)
    np.testing.assert_allclose(y, y32, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_bad_shapes_name_the_argument(cell):
    x, k, r, b, h0, c0 = make(cell, 2, 3, 4, 5)
    cases = {
        "x": (x[0], k, r, b, h0, c0),
        "kernel": (x, k[:-1], r, b, h0, c0),
        "recurrent_kernel": (x, k, r[:, :-1], b, h0, c0),
        "bias": (x, k, r, b[..., :-1], h0, c0),
        "h0": (x, k, r, b, h0[:1], c0),
    }
    if cell == "lstm":
        cases["c0"] = (x, k, r, b, h0, c0[:, :2])
    for name, args in cases.items():
        with pytest.raises(ValueError, match=rf"^{name}: expected"):
            run(cell, *args)
    *_, cache = run(cell, x, k, r, b, h0, c0, cache=True)
    with pytest.raises(ValueError, match="^dy: expected"):
        grad(cell, cache, np.zeros((2, 3, 4), np.float32), None, None)
    with pytest.raises(ValueError, match="^dh_T: expected"):
        grad(cell, cache, None, np.zeros((5, 2), np.float32), None)
    with pytest.raises(TypeError, match="^cache:"):
        grad(cell, (1, 2), None, None, None)


def test_gru_rejects_reset_before_bias_and_bad_activation():
    x, k, r, b, h0, _ = make("gru", 2, 3, 4, 5)
    with pytest.raises(ValueError, match="^bias: .*reset_after"):
        ops.gru(x, k, r, b[0])
    with pytest.raises(ValueError, match="^activation:"):
        ops.simple_rnn(x, k[:, :5], r[:, :5], b[0, :5], activation="softplus")
    *_, cache = ops.gru(x, k, r, b, return_cache=True)
    with pytest.raises(ValueError, match="^cache: it comes from gru"):
        ops.lstm_grad(cache, None)


@pytest.fixture
def lstm_rows(request, monkeypatch):
    monkeypatch.setattr(rnn_mod, "_FORCE_LSTM_ROWS", request.param)
    return request.param


@pytest.mark.parametrize("lstm_rows", [1, 0], indirect=True, ids=["rows", "units"])
@pytest.mark.parametrize("parts", [0, 3], indirect=True, ids=["parts_by_size", "parts3"])
@pytest.mark.parametrize("shape", [(13, 4, 5, 19), (25, 3, 150, 250), (1, 5, 0, 7), (7, 6, 9, 1), (40, 37, 6, 33)],
                         ids=lambda s: "N%dT%dF%dH%d" % s)
def test_lstm_forward_thread_ways(isa, lstm_rows, parts, shape):
    """The float32 LSTM forward on row blocks per thread (rows) or on unit parts (units): odd batch
    sizes (partial row panels), depth F+H over one KC block (400), no features, one unit, unit
    parts by size or three, steps past one chunk of the wave loop (T = 37 > 32) over four row
    panels; each against the float64 reference, and both ways, both thread counts and the
    inference path give identical bits."""
    x, k, r, b, h0, c0 = make("lstm", *shape, seed=11)
    y_ref, h_ref, c_ref, hist = ref_forward("lstm", x, k, r, b, h0, c0)
    old = forgeml.get_num_threads()
    try:
        outs = []
        for threads in (2, 1):
            forgeml.set_num_threads(threads)
            outs.append(ops.lstm(x, k, r, b, h0, c0, return_cache=True))
    finally:
        forgeml.set_num_threads(old)
    for name, got, want in zip(("y", "h_T", "c_T"), outs[0][:3], (y_ref, h_ref, c_ref)):
        assert_close(got, want, name)
    for a, c in zip(outs[0][:3], outs[1][:3]):
        np.testing.assert_array_equal(a, c)
    rnn_mod._FORCE_LSTM_ROWS = 1 - lstm_rows
    other = ops.lstm(x, k, r, b, h0, c0)
    for a, c in zip(outs[0][:3], other):
        np.testing.assert_array_equal(a, c)
    dy = np.random.default_rng(3).standard_normal(y_ref.shape).astype(np.float32)
    g = ops.lstm_grad(outs[0][-1], dy)
    ref = ref_backward("lstm", x, k, r, b, hist, dy, None, None)
    for name, got, want in zip(g._fields, g, ref):
        if want is not None:
            assert_close(got, want, name, tol=5e-5)


@pytest.mark.parametrize("lstm_rows", [0], indirect=True, ids=["units"])
@pytest.mark.parametrize("parts", [2, 3], indirect=True, ids=["parts2", "parts3"])
def test_lstm_forward_units_concurrent_calls(lstm_rows, parts, restore_threads):
    """Four Python threads run the unit-parts forward at once: one call gets the thread pool, the
    others run their tids one after another on their own thread, so a first tid must take the
    other parts' row panels itself (run_waves). All give the single call's bits."""
    import threading

    forgeml.set_num_threads(2)
    x, k, r, b, h0, c0 = make("lstm", 30, 70, 7, 40, seed=17)
    want = ops.lstm(x, k, r, b, h0, c0)
    got = [None] * 4

    def call(i):
        got[i] = ops.lstm(x, k, r, b, h0, c0)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for out in got:
        for a, c in zip(out, want):
            np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("parts", [0, 3], indirect=True, ids=["parts_by_size", "parts3"])
@pytest.mark.parametrize("shape", [(40, 17, 5, 23), (300, 3, 3, 9), (9, 1, 0, 5), (2, 130, 7, 4)],
                         ids=lambda s: "N%dT%dF%dH%d" % s)
def test_lstm_backward_blocks(isa, parts, shape):
    """The float32 LSTM backward sums the weight gradients over blocks of steps (lstm_backward.cpp):
    a partial first block (T = 17 over blocks of 7 steps at N = 40), blocks deeper than one KC
    (600 rows at N = 300), one step without features, many small blocks; against the float64
    reference, with dy, dh_T and dc_T, and the same bits on one and two threads."""
    x, k, r, b, h0, c0 = make("lstm", *shape, seed=13)
    _, _, _, hist = ref_forward("lstm", x, k, r, b, h0, c0)
    rng = np.random.default_rng(5)
    n, t, _, h = shape
    dy = rng.standard_normal((n, t, h)).astype(np.float32)
    dh_t, dc_t = (rng.standard_normal((n, h)).astype(np.float32) for _ in range(2))
    *_, cache = ops.lstm(x, k, r, b, h0, c0, return_cache=True)
    old = forgeml.get_num_threads()
    try:
        grads = []
        for threads in (2, 1):
            forgeml.set_num_threads(threads)
            grads.append(ops.lstm_grad(cache, dy, dh_t, dc_t))
    finally:
        forgeml.set_num_threads(old)
    ref = ref_backward("lstm", x, k, r, b, hist, dy, dh_t, dc_t)
    for name, got, want in zip(grads[0]._fields, grads[0], ref):
        assert_close(got, want, name, tol=5e-5)
    for a, c in zip(*grads):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("parts", [0, 3], indirect=True, ids=["parts_by_size", "parts3"])
@pytest.mark.parametrize("shape", [(13, 4, 5, 19), (25, 3, 7, 400), (29, 1, 6, 33), (1, 5, 0, 7), (7, 6, 9, 1)],
                         ids=lambda s: "N%dT%dF%dH%d" % s)
def test_gru_forward_on_micro_kernels(isa, parts, shape):
    """The float32 GRU steps on gemm's micro-kernels (gru_forward.cpp): odd batch sizes (partial
    row panels), depth H over one KC block (400), one step, no features, one unit, unit parts by
    size or three; against the float64 reference (forward and the backward that reads its gates
    and b_h), and the same bits on one and two threads."""
    x, k, r, b, h0, _ = make("gru", *shape, seed=17)
    y_ref, h_ref, _, hist = ref_forward("gru", x, k, r, b, h0)
    old = forgeml.get_num_threads()
    try:
        outs = []
        for threads in (2, 1):
            forgeml.set_num_threads(threads)
            outs.append(ops.gru(x, k, r, b, h0, return_cache=True))
    finally:
        forgeml.set_num_threads(old)
    assert_close(outs[0][0], y_ref, "y")
    assert_close(outs[0][1], h_ref, "h_T")
    for a, c in zip(outs[0][:2], outs[1][:2]):
        np.testing.assert_array_equal(a, c)
    dy = np.random.default_rng(4).standard_normal(y_ref.shape).astype(np.float32)
    g = ops.gru_grad(outs[0][-1], dy)
    ref = ref_backward("gru", x, k, r, b, hist, dy, None)
    for name, got, want in zip(g._fields, g, ref):
        if want is not None:
            assert_close(got, want, name, tol=5e-5)


def test_thread_count_does_not_change_results():
    x, k, r, b, h0, c0 = make("lstm", 6, 8, 20, 64, seed=9)
    old = forgeml.get_num_threads()
    try:
        forgeml.set_num_threads(1)
        one = ops.lstm(x, k, r, b, h0, c0)
        forgeml.set_num_threads(2)
        two = ops.lstm(x, k, r, b, h0, c0)
    finally:
        forgeml.set_num_threads(old)
    for a, c in zip(one, two):
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- Keras 3 golden values

GOLDEN = __import__("pathlib").Path(__file__).parent / "golden" / "rnn_keras.npz"


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_matches_keras_golden_values(cell):
    """Outputs and gradients of keras.layers.SimpleRNN/LSTM/GRU (Keras 3, JAX backend; written by
    tests/golden/make_rnn_golden.py) with the same weights: layouts, gate orders and reset_after."""
    d = np.load(GOLDEN)
    x, w = d["x"], [d[f"{cell}_w{i}"] for i in range(3)]
    states = [d[f"{cell}_s{i}"] for i in range(2 if cell == "lstm" else 1)]
    out = run(cell, x, *w, states[0], states[1] if cell == "lstm" else None, cache=True)
    for i in range(len(out) - 1):
        np.testing.assert_allclose(out[i], d[f"{cell}_out{i}"], rtol=1e-5, atol=2e-6, err_msg=f"output {i}")
    g = grad(cell, out[-1], d[f"{cell}_dy"], None, None)
    np.testing.assert_allclose(g.dx, d[f"{cell}_dx"], rtol=1e-4, atol=1e-5, err_msg="dx")
    for i, got in enumerate((g.dkernel, g.drecurrent_kernel, g.dbias)):
        np.testing.assert_allclose(got, d[f"{cell}_dw{i}"], rtol=1e-4, atol=1e-5, err_msg=f"weight {i}")
    for i, got in enumerate((g.dh0, g.dc0)[:len(states)]):
        np.testing.assert_allclose(got, d[f"{cell}_ds{i}"], rtol=1e-4, atol=1e-5, err_msg=f"state {i}")


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_inference_path_matches_training_path(cell):
    """Without return_cache the gates live in a reused per-thread buffer; results are identical,
    also on a second call with a smaller shape (the buffer keeps its larger size)."""
    for shape in [(4, 9, 5, 21), (2, 3, 4, 7)]:
        x, k, r, b, h0, c0 = make(cell, *shape, seed=6)
        trained = run(cell, x, k, r, b, h0, c0, cache=True)[:-1]
        inferred = run(cell, x, k, r, b, h0, c0)
        assert len(trained) == len(inferred)
        for a, c in zip(trained, inferred):
            np.testing.assert_array_equal(a, c)
        y_ref, h_ref, c_ref, _ = ref_forward(cell, x, k, r, b, h0, c0)
        assert_close(inferred[1], h_ref, "h_T")
        if cell == "lstm":
            assert_close(inferred[2], c_ref, "c_T")
