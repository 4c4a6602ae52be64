"""Finite-difference gradient checks in float64 for every forgeml.keras layer, loss and activation.

The layers run in float64 here: their matmuls go through a float64 NumPy product (the float32
kernel itself is checked by test_gemm.py), so central differences with a small step are exact
enough to compare every element tightly.
"""
import numpy as np
import pytest

from forgeml import keras
from forgeml.keras import activations, backend, losses
from gradcheck import numeric_grad as _numeric_grad

RNG = np.random.default_rng(1234)


@pytest.fixture
def f64_matmul(monkeypatch):
    def mm(a, b, *, trans_a=False, trans_b=False, bias=None, activation=None, out=None):
        assert activation is None or activation in ("relu", "sigmoid", "tanh")
        r = (a.T if trans_a else a) @ (b.T if trans_b else b)
        if bias is not None:
            r = r + bias
        if activation is not None:
            r = getattr(activations, activation).forward(r)
        if out is not None:
            out[...] = r
            return out
        return r
    monkeypatch.setattr(backend, "_matmul", mm)




def _close(analytic, numeric, what, rtol=1e-6, atol=1e-7):
    scale = np.abs(numeric).max() + 1e-12
    err = np.abs(analytic - numeric)
    assert np.all(err <= rtol * scale + atol * max(1.0, scale)), \
        f"{what}: max abs err {err.max():.3g} (scale {scale:.3g})"
    assert np.linalg.norm(analytic - numeric) <= 1e-6 * (np.linalg.norm(numeric) + 1e-12), what


def _to_f64(layer):
    for v in layer.weights:
        v.value = v.value.astype(np.float64)
        v.grad = np.zeros_like(v.value) if v.trainable else None


def _check_layer(layer, x, training=True, check_x=True, reseed=None):
    layer._build_once((None, *x.shape[1:]))
    _to_f64(layer)
    y = layer.forward(x, training)
    r = RNG.normal(size=y.shape)

    def f():
        if reseed:
            reseed()
        return float(np.sum(layer.forward(x, training) * r))

    if reseed:
        reseed()
    layer.forward(x, training)
    dx = layer.backward(r.copy(), need_dx=check_x)
    analytic = {v.name: v.grad.copy() for v in layer.weights if v.trainable}
    if check_x:
        _close(dx, _numeric_grad(f, x), f"{layer.name} dx")
    for v in layer.weights:
        if v.trainable:
            _close(analytic[v.name], _numeric_grad(f, v.value), f"{layer.name} d{v.name}")


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh", "softmax", "gelu"])
def test_dense_gradients(f64_matmul, activation):
    x = RNG.normal(size=(7, 5))
    if activation == "relu":
        x += 0.05 * np.sign(x)  # keep pre-activations away from the kink
    _check_layer(keras.layers.Dense(3, activation=activation), x)


def test_dense_on_3d_input(f64_matmul):
    _check_layer(keras.layers.Dense(4, activation="tanh"), RNG.normal(size=(3, 5, 6)))


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "softmax", "gelu", "linear"])
def test_activation_layer_gradients(activation):
    x = RNG.normal(size=(6, 9))
    x[np.abs(x) < 0.05] = 0.3
    _check_layer(keras.layers.Activation(activation), x)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "softmax", "gelu", "linear"])
def test_activation_functions(name):
    act = activations.get(name)
    z = RNG.normal(size=(5, 7)) * 3
    z[np.abs(z) < 0.05] = 0.4
    r = RNG.normal(size=z.shape)
    y = act.forward(z.copy())
    analytic = act.backward(r.copy(), y, z)
    _close(analytic, _numeric_grad(lambda: float(np.sum(act.forward(z.copy()) * r)), z), name)


def test_activation_values():
    z = np.linspace(-4, 4, 17)
    from scipy.special import erf
    np.testing.assert_allclose(activations.gelu.forward(z), 0.5 * z * (1 + erf(z / np.sqrt(2))), rtol=2e-7, atol=1e-7)
    np.testing.assert_allclose(activations.sigmoid.forward(z), 1 / (1 + np.exp(-z)), rtol=1e-12)
    s = activations.softmax.forward(np.array([[1000.0, 1001.0, -1000.0]]))
    np.testing.assert_allclose(s, [[1 / (1 + np.e), np.e / (1 + np.e), 0]], rtol=1e-12)
    from forgeml.keras.activations import _erf_np
    np.testing.assert_allclose(_erf_np(z), erf(z), atol=2e-7)


def test_flatten_reshape_gradients():
    _check_layer(keras.layers.Flatten(), RNG.normal(size=(3, 2, 5)))
    _check_layer(keras.layers.Reshape((5, -1)), RNG.normal(size=(3, 10)))


def test_dropout_gradients():
    layer = keras.layers.Dropout(0.4)
    x = RNG.normal(size=(6, 11))

    def reseed():
        layer._rng = np.random.default_rng(7)
    _check_layer(layer, x, reseed=reseed)
    reseed()
    y = layer.forward(x, True)
    kept = y != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(y[kept], x[kept] / 0.6)
    assert layer.forward(x, False) is x


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradients(training):
    layer = keras.layers.BatchNormalization()
    x = RNG.normal(size=(9, 4)) * 2 + 1
    layer._build_once((None, 4))
    layer.gamma.assign(RNG.uniform(0.5, 1.5, 4))
    layer.beta.assign(RNG.normal(size=4))
    layer.moving_mean.assign(RNG.normal(size=4))
    layer.moving_variance.assign(RNG.uniform(0.5, 2, 4))
    _check_layer(layer, x, training=training)


def test_batchnorm_statistics():
    layer = keras.layers.BatchNormalization(momentum=0.9)
    x = RNG.normal(size=(50, 3)) * 3 + 2
    y = layer(x, training=True)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(0), x.var(0) / (x.var(0) + 1e-3), rtol=1e-4)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.1 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.9 + 0.1 * x.var(0), rtol=1e-5)
    assert [w.name for w in layer.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]


def test_embedding_gradients():
    layer = keras.layers.Embedding(7, 3)
    ids = np.array([[0, 3, 3, 6], [2, 2, 5, 1]])
    layer._build_once((None, 4))
    _to_f64(layer)
    r = RNG.normal(size=(2, 4, 3))
    layer.forward(ids)
    layer.backward(r.copy(), need_dx=False)
    w = layer.embeddings.value
    num = _numeric_grad(lambda: float(np.sum(layer.forward(ids) * r)), w)
    _close(layer.embeddings.grad, num, "embedding")
    np.testing.assert_array_equal(layer.forward(ids), w[ids])


def _loss_cases():
    n, k = 6, 4
    labels = RNG.integers(0, k, n)
    onehot = np.eye(k)[labels] * 0.8 + 0.05
    probs = RNG.dirichlet(np.ones(k), n)
    logits = RNG.normal(size=(n, k)) * 2
    bin_y = RNG.integers(0, 2, (n, 2)).astype(float)
    bin_p = RNG.uniform(0.05, 0.95, (n, 2))
    reg_y, reg_p = RNG.normal(size=(n, 3)), RNG.normal(size=(n, 3))
    return [
        (losses.SparseCategoricalCrossentropy(), labels, probs * 1.3),
        (losses.SparseCategoricalCrossentropy(from_logits=True), labels, logits),
        (losses.CategoricalCrossentropy(), onehot, probs * 0.9),
        (losses.CategoricalCrossentropy(from_logits=True), onehot, logits),
        (losses.BinaryCrossentropy(), bin_y, bin_p),
        (losses.BinaryCrossentropy(from_logits=True), bin_y, RNG.normal(size=(n, 2)) * 3),
        (losses.MeanSquaredError(), reg_y, reg_p),
        (losses.MeanAbsoluteError(), reg_y, reg_p),
    ]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("case", range(8))
def test_loss_gradients(case, weighted):
    loss, y, p = _loss_cases()[case]
    n = p.shape[0]
    y = loss.prepare_targets(y, p.shape)
    if not loss.expects_int_labels:
        y = y.astype(np.float64)
    sw = RNG.uniform(0.2, 2, n) if weighted else None
    total, g = loss.step(y, p.copy(), sw, n)
    num = _numeric_grad(lambda: loss.step(y, p.copy(), sw, n)[0] / n, p)
    _close(g, num, f"{loss.name} grad")
    # the value agrees with the public call (sum_over_batch_size)
    np.testing.assert_allclose(total / n, float(loss(y, p, sw)), rtol=1e-5)


@pytest.mark.parametrize("loss, act", [(losses.SparseCategoricalCrossentropy(), activations.softmax),
                                       (losses.CategoricalCrossentropy(), activations.softmax),
                                       (losses.BinaryCrossentropy(), activations.sigmoid)])
@pytest.mark.parametrize("weighted", [False, True])
def test_fused_logit_losses(loss, act, weighted):
    n, k = 5, 3
    z = RNG.normal(size=(n, k)) * 3
    if isinstance(loss, losses.SparseCategoricalCrossentropy):
        y = RNG.integers(0, k, n)
    elif isinstance(loss, losses.CategoricalCrossentropy):
        y = np.eye(k)[RNG.integers(0, k, n)]
    else:
        y = RNG.integers(0, 2, (n, k)).astype(float)
    y = loss.prepare_targets(y, z.shape)
    if not loss.expects_int_labels:
        y = y.astype(np.float64)
    sw = RNG.uniform(0.2, 2, n) if weighted else None
    assert loss.fuses(act)
    total, probs, g = loss.step_logits(y, z.copy(), sw, n)
    np.testing.assert_allclose(probs, act.forward(z.copy()), rtol=1e-12)
    # the fused value equals the loss of the activated output (no clipping at these values)
    np.testing.assert_allclose(total, loss.step(y, act.forward(z.copy()), sw, n)[0], rtol=1e-9)
    num = _numeric_grad(lambda: loss.step_logits(y, z.copy(), sw, n)[0] / n, z)
    _close(g, num, f"fused {loss.name}")


def test_fused_softmax_is_stable():
    loss = losses.SparseCategoricalCrossentropy()
    z = np.array([[1e4, 0.0, -1e4], [0.0, 2e4, 1.0]], dtype=np.float32)
    total, probs, g = loss.step_logits(np.array([0, 0]), z, None, 2)
    assert np.isfinite(total) and np.all(np.isfinite(g))
    np.testing.assert_allclose(total, 2e4, rtol=1e-6)
