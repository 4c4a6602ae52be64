"""MultiHeadAttention, Attention and Lambda (built on keras.ops and the tape): against a NumPy
float64 reference and, when installed, Keras 3 (outputs and one SGD step from the same weights)."""

import numpy as np
import pytest

from forgeml import keras
from forgeml.keras import ops
from keras_peer import real_keras

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
L = keras.layers
RNG = np.random.default_rng(11)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def mha_reference(q_in, v_in, w, heads, key_dim, causal=False):
    qk, qb, kk, kb, vk, vb, ok, ob = (np.asarray(a, np.float64) for a in w)
    q = (np.einsum("btd,dhk->bthk", q_in, qk) + qb) / np.sqrt(key_dim)
    k = np.einsum("btd,dhk->bthk", v_in, kk) + kb
    v = np.einsum("btd,dhk->bthk", v_in, vk) + vb
    s = np.einsum("bthk,bshk->bhts", q, k)
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -1e9)
    return np.einsum("bthk,hkd->btd", np.einsum("bhts,bshk->bthk", _softmax(s), v), ok) + ob


@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_attention_matches_numpy(causal):
    q = RNG.normal(size=(2, 5, 6)).astype(np.float32)
    v = RNG.normal(size=(2, 7 if not causal else 5, 6)).astype(np.float32)
    layer = L.MultiHeadAttention(num_heads=3, key_dim=4)
    out = np.asarray(layer(q, v, use_causal_mask=causal))
    assert [tuple(w.shape) for w in layer.get_weights()] == [(6, 3, 4), (3, 4)] * 3 + [(3, 4, 6), (6,)]
    np.testing.assert_allclose(out, mha_reference(q, v, layer.get_weights(), 3, 4, causal), rtol=1e-4, atol=1e-5)


def _block(k, heads=2, key_dim=4):
    x = k.Input(shape=(6, 8))
    h = k.layers.MultiHeadAttention(num_heads=heads, key_dim=key_dim)(x, x)
    h = k.layers.LayerNormalization()(k.layers.Add()([x, h]))
    o = k.layers.Dense(3, activation="softmax")(k.layers.GlobalAveragePooling1D()(h))
    m = k.Model(x, o)
    m.compile(k.optimizers.SGD(0.2), "sparse_categorical_crossentropy")
    return m


def test_transformer_block_sgd_step_matches_keras():
    real = real_keras()
    x = RNG.normal(size=(8, 6, 8)).astype(np.float32)
    y = RNG.integers(0, 3, 8)
    ours, theirs = _block(keras), _block(real)
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in theirs.get_weights()]
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
    l1, l2 = ours.train_on_batch(x, y), float(theirs.train_on_batch(x, y))
    assert abs(l1 - l2) < 1e-5
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_attention_layer_matches_keras():
    real = real_keras()
    q = RNG.normal(size=(2, 4, 3)).astype(np.float32)
    v = RNG.normal(size=(2, 5, 3)).astype(np.float32)
    ref = _softmax(np.einsum("btd,bsd->bts", q, v)) @ v
    np.testing.assert_allclose(np.asarray(L.Attention()([q, v])), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(L.Attention()([q, v])), np.asarray(real.layers.Attention()([q, v])), rtol=1e-5, atol=1e-6
    )


def test_lambda_trains_through_the_tape(tmp_path):
    keras.utils.set_random_seed(1)
    x = RNG.normal(size=(64, 4)).astype(np.float32)
    y = (x**2).sum(1, keepdims=True)

    def square(t):
        return ops.square(t)

    m = keras.Sequential([keras.Input((4,)), L.Lambda(square), L.Dense(1)])
    m.compile(keras.optimizers.SGD(0.05), "mse")
    h = m.fit(x, y, epochs=30, verbose=0)
    assert h.history["loss"][-1] < 0.05 * h.history["loss"][0]
    np.testing.assert_allclose(m.layers[0](x), x**2, rtol=1e-6)
    m.save(tmp_path / "m.keras")
    with pytest.raises(ValueError, match="never loads code"):
        keras.models.load_model(tmp_path / "m.keras")
    back = keras.models.load_model(tmp_path / "m.keras", custom_objects={"square": square})
    np.testing.assert_allclose(back.predict(x, verbose=0), m.predict(x, verbose=0), rtol=1e-6)
