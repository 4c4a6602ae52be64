"""pickle and copy.deepcopy of Keras models carry the .keras archive (as Keras 3 does): the copy
predicts the same, resumes training with the optimizer's state, and shares nothing with the
original."""

import copy
import pickle

import numpy as np
import pytest

from forgeml import keras


@keras.saving.register_keras_serializable(package="test_pickle")
class TwoLayer(keras.Model):
    def __init__(self, units=5, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = keras.layers.Dense(units, activation="tanh")
        self.head = keras.layers.Dense(3, activation="softmax")

    def call(self, x):
        return self.head(self.hidden(x))

    def get_config(self):
        return {"units": self.units, "name": self.name}


def _model(kind):
    layers = keras.layers
    if kind == "sequential":
        return keras.Sequential(
            [keras.Input((7,)), layers.Dense(9, activation="relu"), layers.Dense(3, activation="softmax")]
        )
    if kind == "functional":
        a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
        h = layers.Dense(6, activation="relu")(layers.concatenate([a, b]))
        return keras.Model([a, b], layers.Dense(3, activation="softmax")(h))
    return TwoLayer(5)


def _data(kind, n=61):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, 7)).astype(np.float32)
    y = rng.integers(0, 3, n)
    return ([x[:, :4], x[:, 4:]] if kind == "functional" else x), y


@pytest.mark.parametrize("kind", ["sequential", "functional", "subclassed"])
def test_pickled_model_predicts_and_resumes_training_as_the_original(kind):
    keras.utils.set_random_seed(0)
    model = _model(kind)
    x, y = _data(kind)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    clone = pickle.loads(pickle.dumps(model))
    assert type(clone) is type(model)
    np.testing.assert_array_equal(clone.predict(x, verbose=0), model.predict(x, verbose=0))
    # Adam's moments and step count came along: one more epoch moves both models alike
    h1 = model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0).history["loss"]
    h2 = clone.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(h2, h1, rtol=1e-6)
    for a, b in zip(model.get_weights(), clone.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)


def test_deepcopy_shares_no_weights():
    keras.utils.set_random_seed(1)
    model = _model("sequential")
    x, _ = _data("sequential")
    before = model.predict(x, verbose=0)
    twin = copy.deepcopy(model)
    twin.set_weights([np.zeros_like(w) for w in twin.get_weights()])
    np.testing.assert_array_equal(model.predict(x, verbose=0), before)
    np.testing.assert_allclose(twin.predict(x, verbose=0), 1 / 3, rtol=1e-6)


def test_unbuilt_model_pickles_and_builds_later():
    model = keras.Sequential([keras.layers.Dense(4), keras.layers.Dense(2)])
    clone = pickle.loads(pickle.dumps(model))
    assert not clone.built and len(clone.layers) == 2
    assert clone.predict(np.ones((3, 5), np.float32), verbose=0).shape == (3, 2)


def test_keras_file_without_weights_is_refused(tmp_path):
    import zipfile

    model = _model("sequential")
    path = tmp_path / "m.keras"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        parts = {n: zf.read(n) for n in zf.namelist() if n != "model.weights.npz"}
    broken = tmp_path / "broken.keras"
    with zipfile.ZipFile(broken, "w") as zf:
        for n, data in parts.items():
            zf.writestr(n, data)
    with pytest.raises(ValueError, match="model.weights.npz"):
        keras.models.load_model(broken)
