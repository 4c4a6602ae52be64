"""Recurrent layers with return_state and initial_state inside functional graphs and on the tape
(the encoder-decoder pattern): outputs, training and save/load against Keras 3 (when installed),
and the gradient through the returned state against the same model without it."""

import numpy as np
import pytest

from forgeml import keras as fk
from keras_peer import real_keras

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def seq2seq(rng):
    return (
        rng.normal(size=(16, 5, 3)).astype(np.float32),
        rng.normal(size=(16, 4, 2)).astype(np.float32),
        rng.normal(size=(16, 4, 2)).astype(np.float32),
    )


def _encoder_decoder(K, cell="LSTM"):
    enc, dec = K.Input((5, 3)), K.Input((4, 2))
    _, *states = getattr(K.layers, cell)(6, return_state=True)(enc)
    seq = getattr(K.layers, cell)(6, return_sequences=True)(dec, initial_state=states)
    return K.Model([enc, dec], K.layers.Dense(2)(seq))


@pytest.mark.parametrize(
    "cell", ["LSTM", pytest.param("GRU", marks=pytest.mark.slow), pytest.param("SimpleRNN", marks=pytest.mark.slow)]
)
def test_encoder_decoder_matches_keras(cell, seq2seq):
    real = real_keras()
    xe, xd, y = seq2seq
    ours, theirs = _encoder_decoder(fk, cell), _encoder_decoder(real, cell)
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours.predict([xe, xd], verbose=0), theirs.predict([xe, xd], verbose=0), atol=1e-5)
    for m, K in ((ours, fk), (theirs, real)):
        m.compile(K.optimizers.SGD(0.1), "mse")
    ours.fit([xe, xd], y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    theirs.fit([xe, xd], y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-4, atol=1e-6)


def test_returned_state_gradient_equals_the_plain_output(seq2seq):
    """h from return_state is the plain LSTM output: the same loss on it gives the same gradients."""
    xe, _, _ = seq2seq
    y = np.ones((16, 6), np.float32)
    inp = fk.Input((5, 3))
    lstm = fk.layers.LSTM(6, return_state=True)
    _, h, c = lstm(inp)
    with_state = fk.Model(inp, h)
    plain = fk.Sequential([fk.Input((5, 3)), fk.layers.LSTM(6)])
    plain.set_weights(with_state.get_weights())
    grads = []
    for model in (with_state, plain):
        with fk.GradientTape() as tape:
            loss = fk.ops.mean(fk.ops.square(model(xe, training=True) - y))
        grads.append([np.asarray(g) for g in tape.gradient(loss, model.trainable_variables)])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_encoder_decoder_saves_and_loads(tmp_path, seq2seq):
    xe, xd, y = seq2seq
    model = _encoder_decoder(fk)
    model.compile("adam", "mse")
    model.fit([xe, xd], y, epochs=1, verbose=0)
    model.save(tmp_path / "s2s.keras")
    back = fk.models.load_model(tmp_path / "s2s.keras")
    np.testing.assert_allclose(back.predict([xe, xd], verbose=0), model.predict([xe, xd], verbose=0), rtol=1e-6)
    states = fk.layers.GRU(4, return_state=True)(xe)
    assert [tuple(np.shape(s)) for s in states] == [(16, 4), (16, 4)]
