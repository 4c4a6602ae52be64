"""Saving tape-trained models: the optimizer's state comes back with the weights (training resumes
exactly where it stopped), and losses / metrics given as objects come back with their config
(user Loss / Metric subclasses through custom_objects or the registry, forgeml's own by name)."""

import numpy as np
import pytest

from forgeml import keras as fk


@fk.saving.register_keras_serializable(package="TapeSaving")
class Net(fk.Model):
    def __init__(self, units=6, **kw):
        super().__init__(**kw)
        self.units = units
        self.a = fk.layers.Dense(units, activation="tanh")
        self.b = fk.layers.Dense(3)

    def call(self, x):
        return self.b(self.a(x))

    def get_config(self):
        return {"units": self.units}


class ScaledMSE(fk.losses.Loss):
    def __init__(self, scale=1.0, **kw):
        super().__init__(**kw)
        self.scale = scale

    def call(self, y_true, y_pred):
        return self.scale * fk.ops.mean(fk.ops.square(y_true - y_pred), axis=-1)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


class MeanBias(fk.metrics.Metric):
    def __init__(self, offset=0.0, name="mean_bias", **kw):
        super().__init__(name=name, **kw)
        self.offset = offset

    def update_state(self, y_true, y_pred, sample_weight=None):
        self._add(np.asarray(y_pred - y_true).mean(axis=-1) + self.offset, sample_weight)

    def get_config(self):
        return {**super().get_config(), "offset": self.offset}


@pytest.fixture
def xy(rng):
    x = rng.normal(size=(32, 4)).astype(np.float32)
    return x, rng.integers(0, 3, 32)


def test_resumed_training_equals_uninterrupted(tmp_path, xy):
    x, y = xy
    fk.utils.set_random_seed(3)
    whole = Net()
    whole.compile(fk.optimizers.Adam(0.01), fk.losses.SparseCategoricalCrossentropy(from_logits=True))
    whole(x[:1])
    part = Net()
    part.compile(fk.optimizers.Adam(0.01), fk.losses.SparseCategoricalCrossentropy(from_logits=True))
    part(x[:1])
    part.set_weights(whole.get_weights())
    whole.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    part.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    part.save(tmp_path / "p.keras")
    back = fk.models.load_model(tmp_path / "p.keras")
    assert int(back.optimizer.iterations) == 8
    back.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(back.get_weights(), whole.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_loss_and_metric_objects_come_back_with_their_config(tmp_path, xy):
    x, _ = xy
    y = np.random.default_rng(1).normal(size=(32, 3)).astype(np.float32)
    model = Net()
    model.compile("sgd", ScaledMSE(scale=2.5), metrics=[MeanBias(offset=0.25), fk.metrics.RootMeanSquaredError()])
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    with pytest.raises(ValueError, match="ScaledMSE"):
        fk.models.load_model(tmp_path / "m.keras")
    back = fk.models.load_model(tmp_path / "m.keras", custom_objects={"ScaledMSE": ScaledMSE, "MeanBias": MeanBias})
    assert isinstance(back.loss, ScaledMSE) and back.loss.scale == 2.5
    np.testing.assert_allclose(back.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-6)
    names = [type(m).__name__ for m in back.metrics]
    assert "MeanBias" in names and "RootMeanSquaredError" in names
    assert [m for m in back.metrics if isinstance(m, MeanBias)][0].offset == 0.25


def test_builtin_loss_options_survive(tmp_path, xy):
    x, y = xy
    model = Net()
    model.compile("sgd", fk.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "b.keras")
    back = fk.models.load_model(tmp_path / "b.keras")
    assert back.loss.from_logits
    np.testing.assert_allclose(back.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-6)
