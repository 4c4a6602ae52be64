"""The new layers of the Keras surface.

- Finite differences in float64 through every layer's hand-written backward (the conv/pool ops
  swapped for the float64 NumPy references of test_keras_conv_recurrent_layers, matmuls in float64).
- Against Keras 3 on JAX with the same weights and inputs: outputs, and the gradients of
  sum(output * r) wrt the input and every trainable weight (jax.grad of stateless_call).
"""

import numpy as np
import pytest

from forgeml import keras
from forgeml.keras import activations, backend
from forgeml.keras.layers import convolutional
from forgeml.keras.layers.masking import attach
from gradcheck import numeric_grad
from keras_peer import real_keras
from test_keras_conv_recurrent_layers import REF_OPS

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
L = keras.layers
RNG = np.random.default_rng(2024)


@pytest.fixture
def f64(monkeypatch):
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


def _close(analytic, numeric, what):
    scale = np.abs(numeric).max() + 1e-12
    err = np.abs(analytic - numeric).max()
    assert err <= 1e-6 * scale + 1e-8, f"{what}: max abs err {err:.3g} (scale {scale:.3g})"


def check_layer(layer, x, mask=None, training=True, reseed=None, weights=True):
    """dx and every weight gradient against central differences (float64)."""
    layer._build_once((None, *x.shape[1:]))
    for v in layer.weights:
        if v.trainable and weights:
            v.value = RNG.normal(size=v.shape) * 0.5
        else:
            v.value = np.asarray(v.value, np.float64)
        v.grad = np.zeros_like(v.value)

    def out():
        if reseed:
            reseed()
        if mask is not None:
            attach(x, mask)
        return layer.forward(x, training)

    r = RNG.normal(size=out().shape)

    def f():
        return float(np.sum(out() * r))

    out()
    dx = layer.backward(r.copy(), need_dx=True)
    analytic = {id(v): v.grad.copy() for v in layer.weights if v.trainable}
    if dx is not None:
        _close(dx, numeric_grad(f, x), f"{layer.name} dx")
    for v in layer.weights:
        if v.trainable:
            _close(analytic[id(v)], numeric_grad(f, v.value), f"{layer.name} d{v.name}")


def _seq_mask(n, t, rng=RNG):
    lengths = rng.integers(1, t + 1, n)
    lengths[0] = t
    return np.arange(t)[None, :] < lengths[:, None]


FD_CASES = [
    (lambda: L.Conv1D(3, 3, padding="same", activation="tanh"), (2, 7, 2), None),
    (lambda: L.Conv1D(3, 2, strides=2), (2, 7, 2), None),
    (lambda: L.Conv1D(2, 3, padding="causal", dilation_rate=2, activation="swish"), (2, 8, 3), None),
    (lambda: L.MaxPooling1D(2), (2, 7, 3), None),
    (lambda: L.AveragePooling1D(3, strides=2, padding="same"), (2, 7, 3), None),
    (lambda: L.GlobalAveragePooling1D(), (3, 5, 2), "mask"),
    (lambda: L.GlobalAveragePooling1D(keepdims=True), (3, 5, 2), None),
    (lambda: L.GlobalMaxPooling1D(), (3, 5, 2), None),
    (lambda: L.UpSampling1D(3), (2, 4, 2), None),
    (lambda: L.ZeroPadding1D((1, 2)), (2, 4, 2), None),
    (lambda: L.Cropping1D((1, 2)), (2, 6, 2), None),
    (lambda: L.RepeatVector(3), (2, 4), None),
    (lambda: L.Permute((2, 1)), (2, 4, 3), None),
    (lambda: L.LSTM(3, return_sequences=True), (3, 5, 2), "mask"),
    (lambda: L.GRU(3), (3, 5, 2), "mask"),
    (lambda: L.GRU(3, reset_after=False, go_backwards=True), (3, 5, 2), "mask"),
    (lambda: L.SimpleRNN(3, return_sequences=True, go_backwards=True), (3, 5, 2), "mask"),
    (lambda: L.Bidirectional(L.LSTM(3, return_sequences=True)), (3, 5, 2), "mask"),
    (lambda: L.Bidirectional(L.GRU(2), merge_mode="mul"), (3, 5, 2), "mask"),
    (lambda: L.Bidirectional(L.SimpleRNN(2, return_sequences=True), merge_mode="ave"), (2, 4, 3), None),
    (lambda: L.TimeDistributed(L.Dense(3, activation="elu")), (2, 4, 5), None),
    (lambda: L.LayerNormalization(), (3, 4, 5), None),
    (lambda: L.GroupNormalization(groups=2), (2, 3, 3, 4), None),
    (lambda: L.UnitNormalization(), (3, 5), None),
    (lambda: L.Conv2DTranspose(3, 3, strides=2, padding="same", activation="relu"), (2, 4, 3, 2), None),
    (lambda: L.Conv2DTranspose(2, (2, 3), strides=(2, 1)), (2, 3, 4, 2), None),
    (lambda: L.UpSampling2D((2, 3)), (2, 3, 2, 2), None),
    (lambda: L.ZeroPadding2D(((1, 0), (2, 1))), (2, 3, 2, 2), None),
    (lambda: L.Cropping2D(((1, 0), (0, 1))), (2, 4, 3, 2), None),
    (lambda: L.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.3), (3, 6), None),
    (lambda: L.LeakyReLU(), (3, 6), None),
    (lambda: L.PReLU(shared_axes=[1]), (3, 4, 5), None),
    (lambda: L.ELU(0.7), (3, 6), None),
    (lambda: L.Softmax(), (3, 6), None),
    (lambda: L.Normalization(mean=[0.5, -1.0, 2.0], variance=[2.0, 0.5, 3.0]), (4, 3), None),
    (lambda: L.Rescaling(1 / 255.0, offset=-0.5), (3, 4), None),
    (lambda: L.CenterCrop(2, 3), (2, 4, 5, 2), None),
    (lambda: L.ActivityRegularization(l1=0.01, l2=0.02), (3, 4), None),
]


@pytest.mark.parametrize("make,shape,mask", FD_CASES, ids=[f"case{i}" for i in range(len(FD_CASES))])
def test_layer_gradients_match_finite_differences(f64, make, shape, mask):
    x = RNG.normal(size=shape)
    x[np.abs(x) < 0.02] += 0.1  # keep inputs off the kinks of relu-like layers
    layer = make()
    if isinstance(layer, L.ActivityRegularization):
        layer._build_once((None, *shape[1:]))
        y = layer.forward(x)
        g = layer.backward(np.zeros_like(y))
        num = numeric_grad(lambda: (layer.forward(x), layer._activity_loss)[1], x)
        _close(g, num, "activity penalty")
        return
    check_layer(layer, x, mask=_seq_mask(*shape[:2]) if mask else None)


@pytest.mark.parametrize("cls", [L.RandomRotation, L.RandomTranslation, L.RandomZoom])
@pytest.mark.parametrize("fill_mode", ["reflect", "constant", "wrap", "nearest"])
def test_affine_augmentations_backward_is_the_transpose(cls, fill_mode):
    args = {L.RandomRotation: (0.2,), L.RandomTranslation: (0.3, 0.2), L.RandomZoom: (0.4, 0.3)}[cls]
    layer = cls(*args, fill_mode=fill_mode, seed=3)
    x = RNG.normal(size=(2, 5, 6, 2))
    layer._build_once((None, 5, 6, 2))
    y = layer.forward(x, training=True)
    r = RNG.normal(size=y.shape)
    # the sampler is linear in x: <A x, r> == <x, A^T r>
    assert abs(float(np.sum(y * r)) - float(np.sum(x * layer.backward(r.copy())))) < 1e-9
    assert layer.forward(x, training=False) is x


def test_random_flip_flips_whole_images_only_when_training():
    x = RNG.normal(size=(64, 3, 4, 1)).astype(np.float32)
    layer = L.RandomFlip("horizontal", seed=1)
    layer._build_once((None, 3, 4, 1))
    y = layer.forward(x, training=True)
    flipped = np.array([np.array_equal(y[i], x[i, :, ::-1]) for i in range(64)])
    kept = np.array([np.array_equal(y[i], x[i]) for i in range(64)])
    assert np.all(flipped | kept) and 10 < flipped.sum() < 54
    np.testing.assert_array_equal(layer.backward(y.copy()), x)  # flipping twice restores
    assert layer.forward(x, training=False) is x


def test_embedding_mask_zero_reaches_the_lstm():
    """The masked steps of a right-padded batch change nothing: same as the unpadded sequences."""
    keras.utils.set_random_seed(0)
    ids = np.array([[3, 5, 2, 0, 0], [4, 1, 7, 8, 9]])
    model = keras.Sequential([keras.Input((5,)), L.Embedding(10, 4, mask_zero=True), L.LSTM(3)])
    out = model.predict(ids, verbose=0)
    short = keras.Sequential([keras.Input((3,)), L.Embedding(10, 4), L.LSTM(3)])
    short.set_weights(model.get_weights())
    short = short.predict(ids[:1, :3], verbose=0)
    np.testing.assert_allclose(out[0], short[0], rtol=1e-5, atol=1e-6)


def test_pad_sequences_matches_keras_rules():
    seqs = [[1, 2, 3], [4], [5, 6, 7, 8, 9]]
    np.testing.assert_array_equal(keras.utils.pad_sequences(seqs, maxlen=4), [[0, 1, 2, 3], [0, 0, 0, 4], [6, 7, 8, 9]])
    np.testing.assert_array_equal(
        keras.utils.pad_sequences(seqs, maxlen=4, padding="post", truncating="post", value=-1),
        [[1, 2, 3, -1], [4, -1, -1, -1], [5, 6, 7, 8]],
    )
    assert keras.utils.pad_sequences(seqs).shape == (3, 5)
    real = real_keras()
    for kw in ({}, {"maxlen": 2}, {"padding": "post", "maxlen": 4, "truncating": "post"}):
        np.testing.assert_array_equal(keras.utils.pad_sequences(seqs, **kw), real.utils.pad_sequences(seqs, **kw))


def test_regularizers_add_penalty_and_gradient():
    """One SGD step with an L1L2 kernel penalty equals the NumPy step on loss + penalty."""
    keras.utils.set_random_seed(2)
    x = RNG.normal(size=(8, 3)).astype(np.float32)
    y = RNG.normal(size=(8, 2)).astype(np.float32)
    reg = keras.regularizers.L1L2(l1=0.01, l2=0.05)
    m = keras.Sequential([keras.Input((3,)), L.Dense(2, kernel_regularizer=reg, bias_regularizer="l2")])
    m.compile(keras.optimizers.SGD(0.1), "mse")
    w, b = (a.astype(np.float64) for a in m.get_weights())
    loss = m.train_on_batch(x, y)
    d = x @ w + b - y
    penalty = 0.01 * np.abs(w).sum() + 0.05 * (w * w).sum() + 0.01 * (b * b).sum()
    assert abs(loss - ((d * d).mean() + penalty)) < 1e-5
    gw = x.T @ (2 * d / d.size) + 0.01 * np.sign(w) + 0.1 * w
    gb = (2 * d / d.size).sum(0) + 0.02 * b
    np.testing.assert_allclose(m.get_weights()[0], w - 0.1 * gw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.get_weights()[1], b - 0.1 * gb, rtol=1e-5, atol=1e-6)


def test_orthogonal_regularizer_gradient_and_value():
    w = RNG.normal(size=(4, 3))
    for mode in ("rows", "columns"):
        reg = keras.regularizers.OrthogonalRegularizer(0.1, mode)
        _close(reg.grad(w.copy()).astype(np.float64), numeric_grad(lambda: reg(w), w), mode)
    real = real_keras()
    w32 = w.astype(np.float32)
    for mode in ("rows", "columns"):
        ours = keras.regularizers.OrthogonalRegularizer(0.1, mode)(w32)
        theirs = float(real.regularizers.OrthogonalRegularizer(0.1, mode)(real.ops.convert_to_tensor(w32)))
        assert abs(ours - theirs) < 1e-6


def test_unknown_regularizer_says_keras_text():
    with pytest.raises(ValueError, match="Could not interpret regularizer identifier"):
        keras.regularizers.get("l3")


# ---------------------------------------------------------------- against Keras 3


def _theirs_forward_and_grads(layer, x, r, mask=None, training=False):
    import jax

    tv = [v.value for v in layer.trainable_variables]
    ntv = [v.value for v in layer.non_trainable_variables]
    kw = {} if mask is None else {"mask": mask}
    if training:
        kw["training"] = True

    def f(tv, x):
        y, _ = layer.stateless_call(tv, ntv, x, **kw)
        return (y * r).sum(), y

    (_, y), (g_tv, g_x) = jax.value_and_grad(f, argnums=(0, 1), has_aux=True)(tv, x)
    return np.asarray(y), np.asarray(g_x), [np.asarray(g) for g in g_tv]


def compare(ours, theirs, x, mask=None, training=False, tol=2e-4):
    real_keras()
    x = x.astype(np.float32)
    ours._build_once((None, *x.shape[1:]))
    theirs(x) if mask is None else theirs(x, mask=mask)
    theirs.set_weights(ours.get_weights())
    xin = x.copy()
    if mask is not None:
        attach(xin, mask)
    y = ours.forward(xin, training)
    r = RNG.normal(size=y.shape).astype(np.float32)
    dx = ours.backward(r.copy(), need_dx=True)
    y_k, dx_k, g_k = _theirs_forward_and_grads(theirs, x, r, mask, training)
    np.testing.assert_allclose(y, y_k, rtol=tol, atol=tol, err_msg="outputs")
    if dx is not None:
        np.testing.assert_allclose(dx, dx_k, rtol=tol, atol=tol, err_msg="input gradient")
    ours_g = [v.grad for v in ours.trainable_weights]
    assert len(ours_g) == len(g_k)
    for a, b, v in zip(ours_g, g_k, ours.trainable_weights):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=v.path)


KERAS_CASES = [
    ("Conv1D", dict(filters=3, kernel_size=3, padding="same", activation="relu"), (2, 9, 4), False),
    ("Conv1D", dict(filters=4, kernel_size=2, strides=2, activation="swish"), (2, 9, 3), False),
    ("Conv1D", dict(filters=2, kernel_size=3, padding="causal", dilation_rate=2), (2, 9, 3), False),
    ("MaxPooling1D", dict(pool_size=3, strides=2, padding="same"), (2, 9, 3), False),
    ("AveragePooling1D", dict(pool_size=2), (2, 9, 3), False),
    ("GlobalAveragePooling1D", {}, (3, 6, 4), True),
    ("GlobalMaxPooling1D", {}, (3, 6, 4), False),
    ("UpSampling1D", dict(size=2), (2, 4, 3), False),
    ("ZeroPadding1D", dict(padding=(2, 1)), (2, 4, 3), False),
    ("Cropping1D", dict(cropping=(1, 2)), (2, 6, 3), False),
    ("RepeatVector", dict(n=3), (2, 4), False),
    ("Permute", dict(dims=(2, 1)), (2, 4, 3), False),
    ("LSTM", dict(units=4, return_sequences=True), (3, 6, 5), True),
    ("GRU", dict(units=4), (3, 6, 5), True),
    ("SimpleRNN", dict(units=3, go_backwards=True), (3, 6, 5), True),
    ("LayerNormalization", {}, (3, 4, 6), False),
    ("GroupNormalization", dict(groups=2), (2, 3, 3, 4), False),
    ("UnitNormalization", {}, (3, 5), False),
    ("Conv2DTranspose", dict(filters=3, kernel_size=3, strides=2, padding="same"), (2, 4, 5, 2), False),
    ("Conv2DTranspose", dict(filters=2, kernel_size=(3, 2), strides=(1, 2), padding="valid"), (2, 4, 5, 3), False),
    ("UpSampling2D", dict(size=(2, 3)), (2, 3, 2, 2), False),
    ("ZeroPadding2D", dict(padding=((1, 0), (2, 1))), (2, 3, 2, 2), False),
    ("Cropping2D", dict(cropping=((1, 0), (0, 1))), (2, 4, 3, 2), False),
    ("ReLU", dict(max_value=1.5, negative_slope=0.1, threshold=0.3), (3, 6), False),
    ("LeakyReLU", {}, (3, 6), False),
    ("PReLU", dict(shared_axes=[1]), (3, 4, 5), False),
    ("ELU", dict(alpha=0.7), (3, 6), False),
    ("Softmax", {}, (3, 6), False),
    ("Rescaling", dict(scale=1 / 255.0, offset=-0.5), (3, 4), False),
    ("CenterCrop", dict(height=2, width=3), (2, 4, 5, 2), False),
]


# a representative few run in the quick suite; the rest are marked slow (each JAX gradient takes seconds)
_QUICK = {0, 5, 12, 15, 18}
KERAS_PARAMS = [
    pytest.param(*c, id=f"{c[0]}{i}", marks=() if i in _QUICK else pytest.mark.slow) for i, c in enumerate(KERAS_CASES)
]


@pytest.mark.parametrize("name,kw,shape,masked", KERAS_PARAMS)
def test_layer_matches_keras(name, kw, shape, masked):
    real = real_keras()
    x = RNG.normal(size=shape)
    ours = getattr(L, name)(**kw)
    if isinstance(ours, L.PReLU):
        ours._build_once((None, *shape[1:]))
        ours.alpha.assign(RNG.uniform(0.1, 0.4, ours.alpha.shape))  # Keras initialises alpha to 0
    compare(ours, getattr(real.layers, name)(**kw), x, _seq_mask(*shape[:2]) if masked else None)


BIDI = [
    pytest.param(m, c, r, marks=() if (m, c, r) == ("concat", "LSTM", True) else pytest.mark.slow)
    for m in ("concat", "sum", "mul")
    for c, r in (("LSTM", True), ("GRU", False), ("LSTM", False))
]


@pytest.mark.parametrize("merge_mode,cell,return_sequences", BIDI)
def test_bidirectional_matches_keras(merge_mode, cell, return_sequences):
    real = real_keras()
    x = RNG.normal(size=(3, 6, 4))
    ours = L.Bidirectional(getattr(L, cell)(3, return_sequences=return_sequences), merge_mode=merge_mode)
    theirs = real.layers.Bidirectional(
        getattr(real.layers, cell)(3, return_sequences=return_sequences), merge_mode=merge_mode
    )
    compare(ours, theirs, x, _seq_mask(3, 6))
    compare(
        L.Bidirectional(getattr(L, cell)(3, return_sequences=return_sequences), merge_mode=merge_mode),
        real.layers.Bidirectional(
            getattr(real.layers, cell)(3, return_sequences=return_sequences), merge_mode=merge_mode
        ),
        x,
    )


def test_time_distributed_matches_keras():
    real = real_keras()
    compare(
        L.TimeDistributed(L.Dense(3, activation="tanh")),
        real.layers.TimeDistributed(real.layers.Dense(3, activation="tanh")),
        RNG.normal(size=(2, 5, 4)),
    )
    compare(
        L.TimeDistributed(L.Conv2D(2, 3, padding="same")),
        real.layers.TimeDistributed(real.layers.Conv2D(2, 3, padding="same")),
        RNG.normal(size=(2, 3, 5, 4, 2)),
    )


def test_fixed_rotation_translation_zoom_match_keras():
    """A one-point factor range fixes the transform, so Keras's random draw and ours agree."""
    real = real_keras()
    x = RNG.normal(size=(2, 7, 8, 3)).astype(np.float32)
    cases = [
        ("RandomRotation", dict(factor=(0.07, 0.07))),
        ("RandomRotation", dict(factor=(-0.2, -0.2), fill_mode="constant")),
        ("RandomTranslation", dict(height_factor=(0.2, 0.2), width_factor=(-0.1, -0.1), fill_mode="wrap")),
        ("RandomZoom", dict(height_factor=(0.3, 0.3), width_factor=(-0.2, -0.2), fill_mode="nearest")),
        ("RandomRotation", dict(factor=(0.1, 0.1), interpolation="nearest")),
    ]
    for name, kw in cases:
        ours = getattr(L, name)(**kw)
        ours._build_once((None, 7, 8, 3))
        y = ours.forward(x, training=True)
        y_k = np.asarray(getattr(real.layers, name)(**kw)(x, training=True))
        np.testing.assert_allclose(y, y_k, rtol=1e-4, atol=1e-4, err_msg=f"{name} {kw}")


def test_normalization_adapt_matches_keras():
    real = real_keras()
    data = RNG.normal(loc=[1.0, -2.0, 5.0], scale=[0.5, 2.0, 3.0], size=(200, 3)).astype(np.float32)
    ours, theirs = L.Normalization(), real.layers.Normalization()
    ours.adapt(data)
    theirs.adapt(data)
    x = RNG.normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(ours(x), np.asarray(theirs(x)), rtol=1e-4, atol=1e-5)
    ds = keras.utils.split_dataset(data, left_size=0.5)[0].batch(16)
    ours2 = L.Normalization()
    ours2.adapt(ds)
    np.testing.assert_allclose(ours2.mean.numpy(), data[:100].mean(0), rtol=1e-5)


def test_category_encoding_matches_keras():
    real = real_keras()
    ids = np.array([[1, 2, 2], [0, 3, 1]], np.int32)
    for mode in ("multi_hot", "count"):
        np.testing.assert_array_equal(
            L.CategoryEncoding(5, output_mode=mode)(ids),
            np.asarray(real.layers.CategoryEncoding(5, output_mode=mode)(ids)),
        )
    np.testing.assert_array_equal(
        L.CategoryEncoding(4, output_mode="one_hot")(np.array([1, 3, 0])), np.eye(4)[[1, 3, 0]]
    )


def test_text_model_sgd_step_matches_keras():
    """Embedding(mask_zero) -> Bidirectional(LSTM) -> pooling -> Dense with an L2 penalty: one SGD
    step from the same weights gives the same loss and weights as Keras."""
    real = real_keras()
    ids = keras.utils.pad_sequences(
        [RNG.integers(1, 20, RNG.integers(2, 9)) for _ in range(12)], maxlen=8, padding="post"
    )
    y = RNG.integers(0, 2, 12).astype(np.float32)

    def build(k):
        m = k.Sequential(
            [
                k.Input((8,)),
                k.layers.Embedding(20, 6, mask_zero=True),
                k.layers.Bidirectional(k.layers.LSTM(5, return_sequences=True)),
                k.layers.GlobalAveragePooling1D(),
                k.layers.Dense(1, activation="sigmoid", kernel_regularizer=k.regularizers.L2(0.01)),
            ]
        )
        m.compile(k.optimizers.SGD(0.5), "binary_crossentropy")
        return m

    ours, theirs = build(keras), build(real)
    theirs.set_weights(ours.get_weights())
    l1 = ours.train_on_batch(ids, y)
    l2 = float(theirs.train_on_batch(ids, y))
    assert abs(l1 - l2) < 1e-5
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_new_layers_round_trip_through_keras_files(tmp_path):
    keras.utils.set_random_seed(4)
    m = keras.Sequential(
        [
            keras.Input((10,)),
            L.Embedding(30, 4, mask_zero=True),
            L.Bidirectional(L.GRU(3, return_sequences=True)),
            L.Conv1D(4, 3, padding="causal"),
            L.LayerNormalization(),
            L.GlobalMaxPooling1D(),
            L.Dense(2, kernel_regularizer="l2"),
            L.LeakyReLU(),
            L.Softmax(),
        ]
    )
    x = RNG.integers(0, 30, (5, 10))
    m.compile("nadam", "sparse_categorical_crossentropy")
    path = tmp_path / "m.keras"
    m.save(path)
    back = keras.models.load_model(path)
    np.testing.assert_allclose(back.predict(x, verbose=0), m.predict(x, verbose=0), rtol=1e-6)
    assert type(back.optimizer).__name__ == "Nadam"
    assert back.layers[-3].kernel_regularizer.l2 == 0.01
