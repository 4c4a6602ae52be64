"""Unknown names raise Keras's own error: ValueError("Could not interpret <kind> identifier: <name>")
from the ``get`` functions, from layer arguments and from compile, never an AttributeError or
KeyError from inside forgeml."""

import os

import numpy as np
import pytest

from forgeml import keras as fk


def _compile_and_fit(keras, optimizer="sgd", loss="mse", metrics=None):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    model.fit(np.zeros((4, 4), "float32"), np.zeros((4, 2), "float32"), verbose=0)


# (case, kind in the message, the call that must fail given a keras module)
CASES = [
    ("activations.get", "activation function", lambda k: k.activations.get("nope")),
    ("activations.get int", "activation function", lambda k: k.activations.get(5)),
    ("losses.get", "loss", lambda k: k.losses.get("nope")),
    ("losses.get int", "loss", lambda k: k.losses.get(5)),
    ("metrics.get", "metric", lambda k: k.metrics.get("nope")),
    ("optimizers.get", "optimizer", lambda k: k.optimizers.get("nope")),
    ("optimizers.get int", "optimizer", lambda k: k.optimizers.get(5)),
    ("initializers.get", "initializer", lambda k: k.initializers.get("nope")),
    ("regularizers.get", "regularizer", lambda k: k.regularizers.get("nope")),
    ("Dense activation", "activation function", lambda k: k.layers.Dense(3, activation="nope")),
    ("Dense kernel_initializer", "initializer", lambda k: k.layers.Dense(3, kernel_initializer="nope")),
    ("Dense bias_initializer", "initializer", lambda k: k.layers.Dense(3, bias_initializer="nope")),
    ("Dense kernel_regularizer", "regularizer", lambda k: k.layers.Dense(3, kernel_regularizer="nope")),
    ("constraints.get", "constraint", lambda k: k.constraints.get("nope")),
    ("Dense kernel_constraint", "constraint", lambda k: k.layers.Dense(3, kernel_constraint="nope")),
    ("Conv1D activation", "activation function", lambda k: k.layers.Conv1D(3, 3, activation="nope")),
    ("LSTM recurrent_activation", "activation function", lambda k: k.layers.LSTM(3, recurrent_activation="nope")),
    ("LSTM recurrent_initializer", "initializer", lambda k: k.layers.LSTM(3, recurrent_initializer="nope")),
    ("Activation layer", "activation function", lambda k: k.layers.Activation("nope")),
    ("Embedding initializer", "initializer", lambda k: k.layers.Embedding(3, 3, embeddings_initializer="nope")),
    (
        "MultiHeadAttention initializer",
        "initializer",
        lambda k: k.layers.MultiHeadAttention(2, 4, kernel_initializer="nope"),
    ),
    ("compile optimizer", "optimizer", lambda k: _compile_and_fit(k, optimizer="nope")),
    ("compile loss", "loss", lambda k: _compile_and_fit(k, loss="nope")),
    ("compile metrics", "metric", lambda k: _compile_and_fit(k, metrics=["nope"])),
]
IDS = [c[0] for c in CASES]


def _error(keras, call):
    with pytest.raises(Exception) as info:
        call(keras)
    return info.value


def _prefix(exc):
    """The message up to the name: 'Could not interpret <kind> identifier: '."""
    text = str(exc)
    return text[: text.index("identifier: ") + len("identifier: ")]


@pytest.mark.parametrize(("case", "kind", "call"), CASES, ids=IDS)
def test_unknown_name_raises_keras_error(case, kind, call):
    exc = _error(fk, call)
    assert type(exc) is ValueError, f"{case}: {type(exc).__name__}: {exc}"
    assert str(exc).startswith(f"Could not interpret {kind} identifier: ")


@pytest.mark.parametrize(("case", "kind", "call"), CASES, ids=IDS)
def test_unknown_name_error_names_the_input(case, kind, call):
    text = str(_error(fk, call))
    assert ("nope" if not case.endswith(" int") else "5") in text.split("identifier: ", 1)[1]


def test_known_names_still_resolve():
    # the same get functions must not reject the names Keras knows
    assert fk.activations.get("relu") is fk.activations.relu
    assert fk.losses.get("mse") is not None
    assert fk.optimizers.get("adam").__class__.__name__ == "Adam"
    assert fk.initializers.get("zeros") is not None
    assert fk.regularizers.get("l2") is not None
    assert fk.metrics.get("accuracy") is not None


@pytest.fixture(scope="module")
def real_keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras")


@pytest.mark.parametrize(("case", "kind", "call"), CASES, ids=IDS)
def test_same_exception_as_keras3(real_keras, case, kind, call):
    ours, theirs = _error(fk, call), _error(real_keras, call)
    assert type(ours) is type(theirs)
    assert _prefix(ours) == _prefix(theirs)
