"""Sequence masks reach losses and metrics as in Keras 3: with Embedding(mask_zero=True) or Masking
upstream, a loss is sum(loss * sample_weight * mask) / (real steps) and mean metrics average over
the real steps. Checked against a float64 NumPy reference (always) and Keras 3 on the same weights
(when installed): evaluate values, and weights after training on the Sequential path and the tape
(functional) path."""

import numpy as np
import pytest

from forgeml import keras as fk
from keras_peer import real_keras

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

N, T, V, C = 24, 7, 12, 4


@pytest.fixture
def seqs(rng):
    x = rng.integers(1, V, (N, T))
    for i in range(N):
        x[i, rng.integers(2, T) :] = 0  # padded tails
    return x, rng.integers(0, C, (N, T)), rng.normal(size=(N, T, 2)).astype(np.float32)


def _tagger(K, softmax=True):
    return K.Sequential(
        [
            K.Input((T,)),
            K.layers.Embedding(V, 5, mask_zero=True),
            K.layers.SimpleRNN(6, return_sequences=True),
            K.layers.Dense(C, activation="softmax" if softmax else None),
        ]
    )


def _reference(model, x, y, sw=None):
    """float64 masked sparse cross-entropy (sample-weighted) and accuracy (compile's `metrics` are
    unweighted in Keras 3) from the model's own predictions."""
    p = model.predict(x, verbose=0).astype(np.float64)
    m = (x != 0).astype(np.float64)
    w = m if sw is None else m * sw[:, None]
    ce = -np.log(np.take_along_axis(p, y[..., None], -1)[..., 0])
    acc = (p.argmax(-1) == y).astype(np.float64)
    return (ce * w).sum() / m.sum(), (acc * m).sum() / m.sum()


def test_sequential_masked_loss_and_accuracy_match_reference(seqs, rng):
    x, y, _ = seqs
    model = _tagger(fk)
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    sw = rng.uniform(0.5, 2.0, N)
    for weights in (None, sw):
        loss, acc = model.evaluate(x, y, sample_weight=weights, verbose=0)
        ref_loss, ref_acc = _reference(model, x, y, weights)
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
        np.testing.assert_allclose(acc, ref_acc, rtol=1e-6)
    unmasked = -np.log(np.take_along_axis(model.predict(x, verbose=0), y[..., None], -1)).mean()
    assert not np.isclose(unmasked, model.evaluate(x, y, verbose=0)[0], rtol=1e-5)  # padded steps are left out


@pytest.mark.parametrize("softmax", [True, False])
def test_sequential_training_matches_keras(seqs, softmax):
    real = real_keras()
    x, y, _ = seqs
    ours, theirs = _tagger(fk, softmax), _tagger(real, softmax)
    theirs.set_weights(ours.get_weights())
    for m, K in ((ours, fk), (theirs, real)):
        loss = K.losses.SparseCategoricalCrossentropy(from_logits=not softmax)
        m.compile(K.optimizers.SGD(0.1), loss, metrics=["accuracy"])
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), theirs.evaluate(x, y, verbose=0), rtol=1e-5)
    ours.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    theirs.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-4, atol=1e-6)


def _two_heads(K):
    i = K.Input((T,))
    h = K.layers.SimpleRNN(6, return_sequences=True)(K.layers.Embedding(V, 5, mask_zero=True)(i))
    return K.Model(i, [K.layers.Dense(C, activation="softmax", name="tags")(h), K.layers.Dense(2, name="reg")(h)])


def test_functional_masked_losses_and_metrics_match_keras(seqs):
    real = real_keras()
    x, y, y2 = seqs
    ours, theirs = _two_heads(fk), _two_heads(real)
    theirs.set_weights(ours.get_weights())
    for m, K in ((ours, fk), (theirs, real)):
        m.compile(K.optimizers.SGD(0.1), ["sparse_categorical_crossentropy", "mse"], metrics=[["accuracy"], ["mae"]])
    a = ours.evaluate(x, [y, y2], verbose=0, return_dict=True)
    b = theirs.evaluate(x, [y, y2], verbose=0, return_dict=True)
    assert {"loss", "tags_accuracy", "reg_mae"} <= set(a)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, err_msg=key)
    ours.fit(x, [y, y2], batch_size=8, epochs=2, shuffle=False, verbose=0)
    theirs.fit(x, [y, y2], batch_size=8, epochs=2, shuffle=False, verbose=0)
    for wa, wb in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(wa, np.asarray(wb), rtol=1e-4, atol=1e-6)


def test_masking_layer_and_loss_function_on_the_tape(rng):
    """Masking(0.0) upstream; a plain loss function (per-step values) is reduced with the mask."""
    x = rng.normal(size=(10, 6, 3)).astype(np.float32)
    x[:, 4:] = 0.0
    y = rng.normal(size=(10, 6, 2)).astype(np.float32)

    def sq(y_true, y_pred):
        return fk.ops.mean(fk.ops.square(y_true - y_pred), axis=-1)

    i = fk.Input((6, 3))
    out = fk.layers.Dense(2)(fk.layers.LSTM(4, return_sequences=True)(fk.layers.Masking(0.0)(i)))
    model = fk.Model(i, out)
    model.compile("sgd", sq)
    p = model.predict(x, verbose=0).astype(np.float64)
    ref = ((p - y) ** 2).mean(-1)[:, :4].mean()
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), ref, rtol=1e-5)


def test_each_output_loss_is_reported_unweighted(seqs):
    x, y, y2 = seqs
    model = _two_heads(fk)
    model.compile("sgd", ["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.5])
    logs = model.evaluate(x, [y, y2], verbose=0, return_dict=True)
    assert list(logs) == ["loss", "tags_loss", "reg_loss"]
    np.testing.assert_allclose(logs["loss"], logs["tags_loss"] + 0.5 * logs["reg_loss"], rtol=1e-5)
    hist = model.fit(x, [y, y2], epochs=1, verbose=0)
    assert set(hist.history) == {"loss", "tags_loss", "reg_loss"}
