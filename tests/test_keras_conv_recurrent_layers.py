"""forgeml.keras part 2: Conv2D, the pooling layers, SimpleRNN, LSTM and GRU.

- Finite-difference gradients in float64 through every layer's backward. Conv2D and the windowed
  pools run there on float64 NumPy references of the convolution ops (swapped in below and checked
  against the float32 kernels here); the recurrent layers run their one-step-cell loop, which
  float64 input selects. The fused recurrent fast path is then checked against that loop.
- One SGD step of a small model per layer kind against a hand-derived NumPy reference (float64,
  softmax cross-entropy gradient by hand) and against PyTorch autograd when torch is importable.
- scikit-learn digits: CNN >= 0.95, LSTM and GRU >= 0.90 test accuracy; save/load; summary; errors.
"""
import copy
import types

import numpy as np
import pytest

from forgeml import keras, ops
from forgeml.keras import activations, backend
from forgeml.keras.layers import convolutional
from gradcheck import numeric_grad as _numeric_grad

RNG = np.random.default_rng(4321)
L = keras.layers


# ---------------------------------------------------------------- float64 references of the conv ops
def _pair(v):
    return (v, v) if np.isscalar(v) else tuple(v)


def _pads(size, k, s, d, padding):
    eff = (k - 1) * d + 1
    if padding == "same":
        out = -(-size // s)
        tot = max((out - 1) * s + eff - size, 0)
        return out, tot // 2, tot - tot // 2
    return (size - eff) // s + 1, 0, 0


def _windows(x, k, s, d, padding, fill=0.0):
    """Padded x and, per window offset (i, j), the strided slice that feeds every output."""
    n, h, w, c = x.shape
    oh, pt, pb = _pads(h, k[0], s[0], d[0], padding)
    ow, pl, pr = _pads(w, k[1], s[1], d[1], padding)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    sls = [(i, j, (slice(None), slice(i * d[0], i * d[0] + s[0] * (oh - 1) + 1, s[0]),
                   slice(j * d[1], j * d[1] + s[1] * (ow - 1) + 1, s[1]), slice(None)))
           for i in range(k[0]) for j in range(k[1])]
    return xp, sls, (pt, pl), (oh, ow)


def ref_conv2d(x, w, bias=None, *, strides=1, padding="valid", dilation=1, activation=None):
    xp, sls, _, (oh, ow) = _windows(x, w.shape[:2], _pair(strides), _pair(dilation), padding)
    y = np.zeros((x.shape[0], oh, ow, w.shape[3]))
    for i, j, sl in sls:
        y += xp[sl] @ w[i, j]
    if bias is not None:
        y += bias
    return y if activation is None else activations.get(activation).forward(y)


def ref_conv2d_grad(x, w, dy, *, strides=1, padding="valid", dilation=1, need_dx=True):
    xp, sls, (pt, pl), _ = _windows(x, w.shape[:2], _pair(strides), _pair(dilation), padding)
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i, j, sl in sls:
        dw[i, j] = np.einsum("nhwc,nhwo->co", xp[sl], dy)
        dxp[sl] += dy @ w[i, j].T
    dx = dxp[:, pt:pt + x.shape[1], pl:pl + x.shape[2]] if need_dx else None
    return dx, dw, dy.sum(axis=(0, 1, 2))


def _ref_pool(kind, x, pool_size, strides, padding, dy=None):
    k = _pair(pool_size)
    s = k if strides is None else _pair(strides)
    if kind == "max":
        xp, sls, (pt, pl), _ = _windows(x, k, s, (1, 1), padding, -np.inf)
        best = np.full(xp[sls[0][2]].shape, -np.inf)
        idx = np.zeros(best.shape, int)
        for t, (_, _, sl) in enumerate(sls):
            upd = xp[sl] > best
            best, idx = np.where(upd, xp[sl], best), np.where(upd, t, idx)
        if dy is None:
            return best
        dxp = np.zeros_like(xp)
        for t, (_, _, sl) in enumerate(sls):
            dxp[sl] += dy * (idx == t)
    else:
        xp, sls, (pt, pl), _ = _windows(x, k, s, (1, 1), padding)
        ones, _, _, _ = _windows(np.ones_like(x), k, s, (1, 1), padding)
        total = sum(xp[sl] for _, _, sl in sls)
        count = sum(ones[sl] for _, _, sl in sls)
        if dy is None:
            return total / count
        dxp = np.zeros_like(xp)
        for _, _, sl in sls:
            dxp[sl] += dy / count
    return dxp[:, pt:pt + x.shape[1], pl:pl + x.shape[2]]


REF_OPS = types.SimpleNamespace(
    conv2d=ref_conv2d, conv2d_grad=ref_conv2d_grad,
    max_pool2d=lambda x, p, s=None, pad="valid": _ref_pool("max", x, p, s, pad),
    avg_pool2d=lambda x, p, s=None, pad="valid": _ref_pool("avg", x, p, s, pad),
    max_pool2d_grad=lambda x, dy, p, s=None, pad="valid": _ref_pool("max", x, p, s, pad, dy),
    avg_pool2d_grad=lambda x, dy, p, s=None, pad="valid": _ref_pool("avg", x, p, s, pad, dy))


@pytest.fixture
def f64(monkeypatch):
    """Conv/pool ops and matmuls in float64 NumPy, so finite differences are exact enough."""
    monkeypatch.setattr(convolutional, "_ops", REF_OPS)

    def mm(a, b, *, trans_a=False, trans_b=False, bias=None, activation=None, out=None):
        r = (a.T if trans_a else a) @ (b.T if trans_b else b)
        r = r if bias is None else r + bias
        r = r if activation is None else activations.get(activation).forward(r)
        if out is not None:
            out[...] = r
            return out
        return r
    monkeypatch.setattr(backend, "_matmul", mm)


CONV_CASES = [
    dict(kernel_size=3, padding="same"),
    dict(kernel_size=(3, 2), strides=2, padding="valid"),
    dict(kernel_size=(2, 3), strides=(2, 1), padding="same"),
    dict(kernel_size=3, dilation_rate=2, padding="same"),
    dict(kernel_size=(3, 2), dilation_rate=(1, 2), padding="valid"),
]
POOL_CASES = [dict(pool_size=2), dict(pool_size=(3, 2), strides=(2, 1), padding="same"),
              dict(pool_size=3, strides=2, padding="valid"), dict(pool_size=(2, 3), strides=1, padding="same")]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_references_match_kernels(case):
    """The float64 references used below agree with forgeml's float32 kernels."""
    x = RNG.normal(size=(2, 7, 6, 3)).astype(np.float32)
    w = RNG.normal(size=(*_pair(case["kernel_size"]), 3, 4)).astype(np.float32)
    b = RNG.normal(size=4).astype(np.float32)
    kw = dict(strides=case.get("strides", 1), padding=case["padding"], dilation=case.get("dilation_rate", 1))
    y = ops.conv2d(x, w, b, activation="relu", **kw)
    np.testing.assert_allclose(y, ref_conv2d(x, w, b, activation="relu", **kw), rtol=1e-4, atol=1e-4)
    dy = RNG.normal(size=y.shape).astype(np.float32)
    for got, want in zip(ops.conv2d_grad(x, w, dy, **kw), ref_conv2d_grad(x, w, dy, **kw)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_references_match_kernels(kind, case):
    x = RNG.normal(size=(2, 7, 6, 3)).astype(np.float32)
    args = (case["pool_size"], case.get("strides"), case.get("padding", "valid"))
    y = getattr(ops, f"{kind}_pool2d")(x, *args)
    np.testing.assert_allclose(y, getattr(REF_OPS, f"{kind}_pool2d")(x, *args), rtol=1e-5, atol=1e-6)
    dy = RNG.normal(size=y.shape).astype(np.float32)
    np.testing.assert_allclose(getattr(ops, f"{kind}_pool2d_grad")(x, dy, *args),
                               getattr(REF_OPS, f"{kind}_pool2d_grad")(x, dy, *args), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- finite differences


def _close(analytic, numeric, what, rtol=1e-6):
    scale = np.abs(numeric).max() + 1e-12
    err = np.abs(analytic - numeric)
    assert np.all(err <= rtol * scale + 1e-7 * max(1.0, scale)), \
        f"{what}: max abs err {err.max():.3g} (scale {scale:.3g})"
    assert np.linalg.norm(analytic - numeric) <= 1e-6 * (np.linalg.norm(numeric) + 1e-12), what


def _as_list(y):
    return list(y) if isinstance(y, list) else [y]


def _randomize(layer, scale=0.5):
    for v in layer.weights:
        v.value = RNG.normal(size=v.shape) * scale
        v.grad = np.zeros_like(v.value)


def check_layer(layer, x, training=True, reseed=None):
    """Every element of dx and of each weight gradient against central differences."""
    layer._build_once((None, *x.shape[1:]))
    _randomize(layer)

    def out():
        if reseed:
            reseed()
        return _as_list(layer.forward(x, training))

    rs = [RNG.normal(size=y.shape) for y in out()]

    def f():
        return sum(float(np.sum(y * r)) for y, r in zip(out(), rs))

    out()
    grads = [r.copy() for r in rs]
    dx = layer.backward(grads if len(grads) > 1 else grads[0], need_dx=True)
    analytic = {v.name: v.grad.copy() for v in layer.weights}
    _close(dx, _numeric_grad(f, x), f"{layer.name} dx")
    for v in layer.weights:
        _close(analytic[v.name], _numeric_grad(f, v.value), f"{layer.name} d{v.name}")
    return layer


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("activation", [None, "relu", "tanh", "gelu"])
def test_conv2d_gradients(f64, case, activation):
    x = RNG.normal(size=(2, 6, 5, 2))
    check_layer(L.Conv2D(3, activation=activation, **case), x)


def test_conv2d_without_bias_gradients(f64):
    layer = check_layer(L.Conv2D(2, 2, use_bias=False, activation="sigmoid"), RNG.normal(size=(2, 4, 5, 3)))
    assert [w.name for w in layer.weights] == ["kernel"]


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("cls", [L.MaxPooling2D, L.AveragePooling2D])
def test_pooling_gradients(f64, cls, case):
    check_layer(cls(**case), RNG.normal(size=(2, 7, 6, 3)))


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("cls", [L.GlobalAveragePooling2D, L.GlobalMaxPooling2D])
def test_global_pooling_gradients(cls, keepdims):
    layer = check_layer(cls(keepdims=keepdims), RNG.normal(size=(3, 4, 5, 2)))
    assert layer.output_shape == ((None, 1, 1, 2) if keepdims else (None, 2))


def test_global_max_pooling_splits_ties():
    layer = L.GlobalMaxPooling2D()
    x = np.zeros((1, 2, 2, 1), np.float32)
    x[0, 0, 1, 0] = x[0, 1, 0, 0] = 1.0
    np.testing.assert_array_equal(layer(x), [[1.0]])
    dx = layer.backward(np.array([[4.0]], np.float32))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 2], [2, 0]])


RNN_CASES = [
    (L.SimpleRNN, {}),
    (L.SimpleRNN, dict(activation="relu", return_sequences=True, go_backwards=True)),
    (L.SimpleRNN, dict(return_state=True, use_bias=False)),
    (L.LSTM, {}),
    (L.LSTM, dict(return_sequences=True, go_backwards=True)),
    (L.LSTM, dict(return_state=True, return_sequences=True)),
    (L.LSTM, dict(activation="relu", recurrent_activation="tanh", use_bias=False)),
    (L.GRU, {}),
    (L.GRU, dict(return_sequences=True, go_backwards=True, return_state=True)),
    (L.GRU, dict(reset_after=False)),
    (L.GRU, dict(reset_after=False, return_sequences=True, use_bias=False, activation="sigmoid")),
]


@pytest.mark.parametrize("cls,kw", RNN_CASES)
def test_recurrent_gradients(cls, kw):
    check_layer(cls(4, **kw), RNG.normal(size=(2, 4, 3)))


@pytest.mark.parametrize("cls", [L.SimpleRNN, L.LSTM, L.GRU, lambda *a, **k: L.GRU(*a, reset_after=False, **k)])
def test_recurrent_dropout_gradients(cls):
    """Both masks are constant within a batch, so the step is a smooth function of the weights."""
    layer = cls(4, dropout=0.3, recurrent_dropout=0.4, return_sequences=True)

    def reseed():
        layer._rng = np.random.default_rng(11)
    check_layer(layer, RNG.normal(size=(3, 4, 3)), reseed=reseed)
    reseed()
    layer.forward(RNG.normal(size=(3, 4, 3)), True)
    for mask, rate in ((layer._dmask, 0.3), (layer._rmask, 0.4)):
        kept = mask != 0
        assert 0 < kept.mean() < 1
        np.testing.assert_allclose(mask[kept], 1 / (1 - rate))


def test_recurrent_dropout_hits_only_the_recurrent_product():
    """GRU: the mask multiplies h_{t-1} where it meets the recurrent kernel; z·h_{t-1} keeps it whole."""
    layer = L.GRU(3, recurrent_dropout=0.5, seed=2)
    x, h0 = RNG.normal(size=(4, 1, 2)), RNG.normal(size=(4, 3))
    layer._build_once((None, 1, 2))
    _randomize(layer)
    y = layer.forward(x, True, initial_state=[h0])
    m = layer._rmask
    assert 0 < (m != 0).mean() < 1
    k, u, b = (v.value for v in layer.weights)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    a, r_in = x[:, 0] @ k + b[0], (h0 * m) @ u + b[1]
    z, r = sig(a[:, :3] + r_in[:, :3]), sig(a[:, 3:6] + r_in[:, 3:6])
    want = z * h0 + (1 - z) * np.tanh(a[:, 6:] + r * r_in[:, 6:])
    np.testing.assert_allclose(y, want, rtol=1e-12)


@pytest.mark.parametrize("cls,kw", RNN_CASES)
def test_fast_path_matches_loop(cls, kw):
    """The fused float32 sequence ops against the (finite-difference-checked) float64 loop."""
    layer = cls(5, **kw)
    x = RNG.normal(size=(3, 6, 4)).astype(np.float32)
    layer._build_once((None, 6, 4))
    for v in layer.weights:
        v.assign(RNG.normal(size=v.shape) * 0.5)
    y = _as_list(layer.forward(x, True))
    rs = [RNG.normal(size=a.shape).astype(np.float32) for a in y]
    grads = [r.copy() for r in rs]
    dx = layer.backward(grads if len(grads) > 1 else grads[0])
    fast = layer._fast
    got = [*y, dx, *(v.grad.copy() for v in layer.weights)]
    got = [a.copy() for a in got]
    for v in layer.weights:
        v.value = v.value.astype(np.float64)
        v.grad = np.zeros_like(v.value)
    y64 = _as_list(layer.forward(x.astype(np.float64), True))
    grads = [r.astype(np.float64) for r in rs]
    dx64 = layer.backward(grads if len(grads) > 1 else grads[0])
    assert not layer._fast
    want = [*y64, dx64, *(v.grad for v in layer.weights)]
    default_acts = kw.get("activation", "tanh") in ("tanh", "relu") and "recurrent_activation" not in kw
    assert fast == (default_acts and kw.get("reset_after", True))
    for g, w in zip(got, want):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=2e-5 * max(1.0, np.abs(w).max()))


def test_input_dropout_keeps_the_fast_path():
    layer = L.LSTM(3, dropout=0.5, seed=3, return_sequences=True)
    x = RNG.normal(size=(4, 5, 6)).astype(np.float32)
    y = layer(x, training=True)
    assert layer._fast and layer._dmask.shape == (4, 6)
    # one mask per batch, shared by every step: a dropped feature is dropped at all steps
    ref = layer.forward(x * layer._dmask[:, None, :] * 1.0, False)
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)
    assert not np.allclose(layer(x, training=False), y)
    layer2 = L.GRU(3, recurrent_dropout=0.3)
    layer2(x, training=True)
    assert not layer2._fast
    layer2(x, training=False)
    assert layer2._fast


def test_initial_state_and_return_state():
    layer = L.LSTM(3, return_state=True)
    x = RNG.normal(size=(2, 4, 5)).astype(np.float32)
    out, h, c = layer(x)
    np.testing.assert_array_equal(out, h)
    assert h.shape == c.shape == (2, 3)
    h0, c0 = RNG.normal(size=(2, 3)), RNG.normal(size=(2, 3))
    out2, h2, _ = layer(x, initial_state=[h0, c0])
    assert not np.allclose(out2, out)
    y, *_ = ops.lstm(x, layer.kernel.value, layer.recurrent_kernel.value, layer.bias.value,
                     h0.astype(np.float32), c0.astype(np.float32))
    np.testing.assert_allclose(out2, y[:, -1], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="initial state"):
        layer(x, initial_state=[h0])


@pytest.mark.parametrize("cls", [L.SimpleRNN, L.LSTM, L.GRU])
def test_initial_state_gradients(cls):
    """initial_state_grads: finite differences on the float64 loop, then the fused path agrees."""
    layer = cls(3, return_sequences=True, go_backwards=True)
    x = RNG.normal(size=(2, 4, 3))
    layer._build_once((None, 4, 3))
    _randomize(layer)
    states = [RNG.normal(size=(2, 3)) for _ in range(layer._n_states)]
    r = RNG.normal(size=(2, 4, 3))
    layer.forward(x, True, initial_state=states)
    layer.backward(r.copy())
    got = [g.copy() for g in layer.initial_state_grads]
    for s, g in zip(states, got):
        num = _numeric_grad(lambda: float(np.sum(layer.forward(x, True, initial_state=states) * r)), s)
        _close(g, num, f"{layer.name} initial state")
    for v in layer.weights:
        v.value = v.value.astype(np.float32)
        v.grad = np.zeros_like(v.value)
    layer.forward(x.astype(np.float32), True, initial_state=states)
    assert layer._fast
    layer.backward(r.astype(np.float32))
    for g, want in zip(layer.initial_state_grads, got):
        np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- weights: layouts and initialisers
def test_keras_weight_layouts_and_initializers():
    keras.utils.set_random_seed(5)
    lstm, gru, rnn = L.LSTM(8), L.GRU(6), L.SimpleRNN(7)
    for layer in (lstm, gru, rnn):
        layer._build_once((None, 3, 4))
    assert [(w.name, w.shape) for w in lstm.weights] == [("kernel", (4, 32)), ("recurrent_kernel", (8, 32)),
                                                          ("bias", (32,))]
    assert [w.shape for w in gru.weights] == [(4, 18), (6, 18), (2, 18)]
    assert [w.shape for w in rnn.weights] == [(4, 7), (7, 7), (7,)]
    assert L.GRU(6, reset_after=False)._bias_shape() == (18,)
    np.testing.assert_array_equal(lstm.bias.numpy(), np.r_[np.zeros(8), np.ones(8), np.zeros(16)])
    assert not L.LSTM(8, unit_forget_bias=False).get_config()["unit_forget_bias"]
    for layer in (lstm, gru, rnn):
        u = layer.recurrent_kernel.numpy().astype(np.float64)
        np.testing.assert_allclose(u @ u.T, np.eye(u.shape[0]), atol=1e-5)  # orthogonal rows
        k = layer.kernel.numpy()
        limit = np.sqrt(6 / sum(k.shape))
        assert np.abs(k).max() <= limit and np.abs(k).max() > 0.8 * limit  # glorot_uniform
    conv = L.Conv2D(5, (3, 2))
    conv._build_once((None, 6, 6, 4))
    assert conv.kernel.shape == (3, 2, 4, 5) and conv.bias.shape == (5,)
    limit = np.sqrt(6 / (3 * 2 * 4 + 3 * 2 * 5))
    assert np.abs(conv.kernel.numpy()).max() <= limit
    np.testing.assert_array_equal(conv.bias.numpy(), 0)


# ---------------------------------------------------------------- one SGD step against references
def _cnn_models():
    return {
        "conv_max": lambda: [keras.Input((7, 6, 2)), L.Conv2D(4, 3, padding="same", activation="relu"),
                             L.MaxPooling2D(), L.Flatten(), L.Dense(3, activation="softmax")],
        "conv_avg_gap": lambda: [keras.Input((9, 9, 2)), L.Conv2D(3, (3, 2), strides=2, activation="tanh"),
                                 L.AveragePooling2D(2), L.GlobalAveragePooling2D(), L.Dense(3, activation="softmax")],
        "conv_dilated_gmp": lambda: [keras.Input((9, 8, 2)), L.Conv2D(4, 3, dilation_rate=2, activation="sigmoid"),
                                     L.GlobalMaxPooling2D(), L.Dense(3, activation="softmax")],
        "simple_rnn": lambda: [keras.Input((5, 3)), L.SimpleRNN(4, return_sequences=True), L.SimpleRNN(3),
                               L.Dense(3, activation="softmax")],
        "lstm": lambda: [keras.Input((5, 3)), L.LSTM(4, return_sequences=True), L.LSTM(3, go_backwards=True),
                         L.Dense(3, activation="softmax")],
        "gru": lambda: [keras.Input((5, 3)), L.GRU(4, return_sequences=True, go_backwards=True), L.GRU(3),
                        L.Dense(3, activation="softmax")],
    }


def _numpy_sgd_step(model, x, y, lr, monkeypatch):
    """The same layers in float64 with the softmax cross-entropy gradient written out by hand."""
    monkeypatch.setattr(convolutional, "_ops", REF_OPS)
    monkeypatch.setattr(backend, "_matmul", lambda a, b, *, trans_a=False, trans_b=False, bias=None,
                        activation=None, out=None: _mm64(a, b, trans_a, trans_b, bias, out))
    layers = [copy.copy(layer) for layer in model.layers]
    for layer, orig in zip(layers, model.layers):
        layer._bufs = {}
        layer._weights = [copy.copy(v) for v in orig.weights]
        for v in layer._weights:
            v.value = v.numpy().astype(np.float64)
            v.grad = np.zeros_like(v.value)
        for attr in ("kernel", "recurrent_kernel", "bias"):
            if getattr(orig, attr, None) is not None:
                setattr(layer, attr, layer._weights[[w.name for w in orig.weights].index(attr)])
    h = x.astype(np.float64)
    for layer in layers[:-1]:
        h = layer.forward(h, True)
    z = layers[-1].forward(h, True, logits=True)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    g = (p - np.eye(p.shape[1])[y]) / len(y)  # d mean(-log p_y) / dz
    for layer in layers[::-1]:
        g = layer.backward(g, True)
    return [v.value - lr * v.grad for layer in layers for v in layer.weights]


def _mm64(a, b, ta, tb, bias, out):
    r = (a.T if ta else a) @ (b.T if tb else b)
    r = r if bias is None else r + bias
    if out is not None and out.dtype == r.dtype:
        out[...] = r
        return out
    return r


def _torch_sgd_step(model, x, y, lr):
    torch = pytest.importorskip("torch", exc_type=ImportError)
    t = lambda a: torch.tensor(np.asarray(a, np.float64), requires_grad=True)  # noqa: E731
    params, fns = [], []
    for layer in model.layers:
        w = [t(v.numpy()) for v in layer.weights]
        params.append(w)
        fns.append(_torch_layer(torch, layer, w))
    h = torch.tensor(x, dtype=torch.float64)
    for f in fns[:-1]:
        h = f(h)
    logits = h @ params[-1][0] + params[-1][1]
    torch.nn.functional.cross_entropy(logits, torch.tensor(y)).backward()
    return [(p - lr * p.grad).detach().numpy() for ps in params for p in ps]


def _torch_layer(torch, layer, w):
    """A PyTorch function of the Keras weights (converted to PyTorch's layouts inside the graph)."""
    F = torch.nn.functional
    name = type(layer).__name__
    if name == "Conv2D":
        act = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}[layer.activation.name]
        pad = "same" if layer.padding == "same" else 0
        return lambda h: act(F.conv2d(h.permute(0, 3, 1, 2), w[0].permute(3, 2, 0, 1), w[1], stride=layer.strides,
                                      padding=pad, dilation=layer.dilation_rate).permute(0, 2, 3, 1))
    if name in ("MaxPooling2D", "AveragePooling2D"):
        pool = F.max_pool2d if name == "MaxPooling2D" else F.avg_pool2d
        return lambda h: pool(h.permute(0, 3, 1, 2), layer.pool_size, layer.strides).permute(0, 2, 3, 1)
    if name == "Flatten":
        return lambda h: h.reshape(h.shape[0], -1)
    if name == "GlobalAveragePooling2D":
        return lambda h: h.mean(dim=(1, 2))
    if name == "GlobalMaxPooling2D":
        return lambda h: h.amax(dim=(1, 2))
    hdim = layer.units

    def run(h):
        k, u, b = w
        seq = h.flip(1) if layer.go_backwards else h
        state = torch.zeros(h.shape[0], hdim, dtype=h.dtype)
        carry = torch.zeros_like(state)
        outs = []
        for i in range(seq.shape[1]):
            xt = seq[:, i]
            if name == "SimpleRNN":
                state = torch.tanh(xt @ k + state @ u + b)
            elif name == "LSTM":  # torch.nn.LSTM's gate order is Keras's: i, f, g(c), o
                zi, zf, zc, zo = (xt @ k + state @ u + b).split(hdim, dim=1)
                carry = torch.sigmoid(zf) * carry + torch.sigmoid(zi) * torch.tanh(zc)
                state = torch.sigmoid(zo) * torch.tanh(carry)
            else:  # GRU, reset_after: torch.nn.GRU's cell with Keras's z, r, h order
                az, ar, ah = (xt @ k + b[0]).split(hdim, dim=1)
                bz, br, bh = (state @ u + b[1]).split(hdim, dim=1)
                z, r = torch.sigmoid(az + bz), torch.sigmoid(ar + br)
                state = z * state + (1 - z) * torch.tanh(ah + r * bh)
            outs.append(state)
        return torch.stack(outs, 1) if layer.return_sequences else state
    return run


@pytest.mark.parametrize("reference", ["numpy", "torch"])
@pytest.mark.parametrize("kind", list(_cnn_models()))
def test_one_sgd_step_matches_reference(kind, reference, monkeypatch):
    keras.utils.set_random_seed(17)
    model = keras.Sequential(_cnn_models()[kind]())
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    for v in model.weights:  # non-zero biases and a sizeable step
        v.assign(v.numpy() + RNG.normal(size=v.shape) * 0.2)
    x = RNG.normal(size=(6, *model.input_shape[1:])).astype(np.float32)
    y = RNG.integers(0, 3, 6)
    if reference == "torch":
        want = _torch_sgd_step(model, x, y, 0.5)
    else:
        want = _numpy_sgd_step(model, x, y, 0.5, monkeypatch)
        monkeypatch.undo()
    before = model.get_weights()
    model.train_on_batch(x, y)
    got = model.get_weights()
    for g, w, b in zip(got, want, before):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
        assert not np.allclose(g, b)  # the step moved every weight


# ---------------------------------------------------------------- digits
def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    return train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)


def _digits_accuracy(layers, shape, epochs):
    xtr, xte, ytr, yte = _digits()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape), *layers])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(xtr.reshape(-1, *shape), ytr, epochs=epochs, batch_size=32, verbose=0)
    return model.evaluate(xte.reshape(-1, *shape), yte, verbose=0)[1]


def test_digits_cnn():
    acc = _digits_accuracy([L.Conv2D(16, 3, padding="same", activation="relu"), L.MaxPooling2D(), L.Flatten(),
                            L.Dense(10, activation="softmax")], (8, 8, 1), 6)
    print(f"digits CNN test accuracy {acc:.4f}")
    assert acc >= 0.95


@pytest.mark.parametrize("cls", [L.LSTM, L.GRU])
def test_digits_rnn(cls):
    acc = _digits_accuracy([cls(32), L.Dense(10, activation="softmax")], (8, 8), 12)
    print(f"digits {cls.__name__}(32) test accuracy {acc:.4f}")
    assert acc >= 0.90


# ---------------------------------------------------------------- save / load, summary, errors
def _saved_models():
    return [
        keras.Sequential([keras.Input((9, 9, 2)), L.Conv2D(4, 3, padding="same", activation="relu"),
                          L.MaxPooling2D(2, strides=1, padding="same"), L.AveragePooling2D(2),
                          L.Conv2D(3, 1, dilation_rate=1, use_bias=False), L.GlobalAveragePooling2D(keepdims=True),
                          L.Flatten(), L.Dense(3, activation="softmax")]),
        keras.Sequential([keras.Input((7, 6, 3)), L.Conv2D(5, (2, 3), strides=(2, 1), activation="gelu"),
                          L.GlobalMaxPooling2D(), L.Dense(2)]),
        keras.Sequential([keras.Input((6, 4)), L.SimpleRNN(4, return_sequences=True, activation="relu"),
                          L.LSTM(5, return_sequences=True, go_backwards=True, unit_forget_bias=False,
                                 dropout=0.1, recurrent_dropout=0.2),
                          L.GRU(3, reset_after=False, return_sequences=True), L.GRU(3), L.Dense(2)]),
    ]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_save_load_round_trip(tmp_path, index):
    keras.utils.set_random_seed(3)
    model = _saved_models()[index]
    model.compile(optimizer="adam", loss="mse")
    x = RNG.normal(size=(5, *model.input_shape[1:])).astype(np.float32)
    model.fit(x, RNG.normal(size=(5, model.output_shape[-1])), epochs=2, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [type(a) for a in loaded.layers] == [type(b) for b in model.layers]
    for a, b in zip(loaded.layers, model.layers):
        assert a.get_config() == b.get_config()
    loaded.fit(x, RNG.normal(size=(5, model.output_shape[-1])), epochs=1, verbose=0)  # still trains


def test_summary_shows_the_new_layers():
    lines = []
    for model in _saved_models():
        model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    for needle in ("(Conv2D)", "(MaxPooling2D)", "(AveragePooling2D)", "(GlobalAveragePooling2D)",
                   "(GlobalMaxPooling2D)", "(SimpleRNN)", "(LSTM)", "(GRU)", "(None, 9, 9, 4)", "(None, 6, 5)"):
        assert needle in text, needle
    # Keras's parameter counts
    cnn, _, rnn = _saved_models()
    assert cnn.layers[0].count_params() == 3 * 3 * 2 * 4 + 4
    assert [layer.count_params() for layer in rnn.layers[:4]] == [
        4 * 4 + 4 * 4 + 4, 4 * (4 * 5 + 5 * 5 + 5), 3 * (5 * 3 + 3 * 3 + 3), 3 * (3 * 3 + 3 * 3 + 2 * 3)]


def test_layer_errors():
    with pytest.raises(ValueError, match="filters"):
        L.Conv2D(0, 3)
    with pytest.raises(ValueError, match="padding"):
        L.Conv2D(2, 3, padding="causal")
    with pytest.raises(ValueError, match="kernel_size"):
        L.Conv2D(2, (3, 3, 3))
    with pytest.raises(NotImplementedError, match="channels_last"):
        L.Conv2D(2, 3, data_format="channels_first")
    with pytest.raises(ValueError, match="dilation_rate"):
        L.Conv2D(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="larger than the input"):
        keras.Sequential([keras.Input((2, 2, 1)), L.Conv2D(2, 3)])
    with pytest.raises(ValueError, match="larger than the input"):
        keras.Sequential([keras.Input((2, 5, 1)), L.MaxPooling2D(3)])
    with pytest.raises(ValueError, match="timesteps"):
        keras.Sequential([keras.Input((5,)), L.LSTM(3)])
    with pytest.raises(ValueError, match="height, width"):
        keras.Sequential([keras.Input((5, 4)), L.Conv2D(3, 2)])
    with pytest.raises(ValueError, match="units"):
        L.GRU(0)
    with pytest.raises(ValueError, match="recurrent_dropout"):
        L.LSTM(3, recurrent_dropout=1.5)
    with pytest.raises(NotImplementedError, match="stateful"):
        L.SimpleRNN(3, stateful=True)
    with pytest.raises(ValueError, match="Could not interpret constraint identifier"):
        L.Conv2D(2, 3, kernel_constraint="nope")
    with pytest.raises(ValueError, match="initial state"):
        L.LSTM(3)(np.zeros((2, 5, 4), np.float32), initial_state=[np.zeros((2, 3), np.float32)])


def _fit_weights(layers, shape, threads):
    import forgeml
    forgeml.set_num_threads(threads)
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input(shape), *layers()])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((150, *shape), dtype=np.float32)
    model.fit(x, np.random.default_rng(1).integers(0, 10, 150), epochs=1, batch_size=32, verbose=0)
    return model.get_weights()


def test_same_seed_same_weights(restore_threads):
    """Same seed, same result; the recurrent models also whatever the thread count. (The CNN is
    only checked at a fixed thread count: conv2d_grad's dw sums in a thread-dependent order.)"""
    rnn = lambda: [L.LSTM(12, return_sequences=True, dropout=0.2), L.GRU(8),  # noqa: E731
                   L.Dense(10, activation="softmax")]
    cnn = lambda: [L.Conv2D(4, 3, padding="same", activation="relu"), L.MaxPooling2D(),  # noqa: E731
                   L.GlobalAveragePooling2D(), L.Dense(10, activation="softmax")]
    for a, b in zip(_fit_weights(rnn, (5, 4), 1), _fit_weights(rnn, (5, 4), 2)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(_fit_weights(cnn, (6, 6, 2), 2), _fit_weights(cnn, (6, 6, 2), 2)):
        np.testing.assert_array_equal(a, b)
