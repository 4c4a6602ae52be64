"""keras.constraints: each projection against a float64 NumPy reference and Keras 3; constraints
applied after every optimizer step on the Sequential path, the tape path (subclassed / functional
models and apply_gradients) and the traced chain, matching Keras 3's weights after training; and
their configs through .keras save/load, custom Constraint subclasses included."""

import numpy as np
import pytest

from forgeml import keras as fk
from keras_peer import real_keras

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

EPS = 1e-7


def _ref(name, w, **kw):
    """float64 reference projections (Keras 3's formulas)."""
    axis = kw.get("axis", 0)
    axis = tuple(axis) if isinstance(axis, list) else axis
    norms = np.sqrt((w * w).sum(axis=axis, keepdims=True))
    if name == "MaxNorm":
        return w * np.clip(norms, 0, kw.get("max_value", 2)) / (EPS + norms)
    if name == "NonNeg":
        return np.maximum(w, 0)
    if name == "UnitNorm":
        return w / (EPS + norms)
    rate = kw.get("rate", 1.0)
    desired = rate * np.clip(norms, kw.get("min_value", 0.0), kw.get("max_value", 1.0)) + (1 - rate) * norms
    return w * desired / (EPS + norms)


CASES = [
    ("MaxNorm", {"max_value": 0.7}),
    ("MaxNorm", {"max_value": 1.3, "axis": 1}),
    ("MaxNorm", {"max_value": 0.9, "axis": [0, 1]}),
    ("NonNeg", {}),
    ("UnitNorm", {}),
    ("UnitNorm", {"axis": -1}),
    ("MinMaxNorm", {"min_value": 0.8, "max_value": 1.1, "rate": 0.6}),
    ("MinMaxNorm", {"min_value": 1.5, "max_value": 2.0, "axis": 1}),
]


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_projection_matches_reference_and_keras(name, kw, rng):
    w = rng.normal(size=(5, 7, 3)).astype(np.float32)
    ours = getattr(fk.constraints, name)(**kw)(w)
    np.testing.assert_allclose(ours, _ref(name, w.astype(np.float64), **kw), rtol=1e-5, atol=1e-6)
    real = real_keras()
    theirs = np.asarray(getattr(real.constraints, name)(**kw)(w))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_get_serialize_deserialize_like_keras():
    for name in ("max_norm", "MaxNorm", "non_neg", "NonNeg", "unit_norm", "min_max_norm", "MinMaxNorm"):
        assert isinstance(fk.constraints.get(name), fk.constraints.Constraint)
    c = fk.constraints.MinMaxNorm(0.1, 0.9, rate=0.5, axis=[0, 1])
    spec = fk.constraints.serialize(c)
    assert spec["class_name"] == "MinMaxNorm"
    back = fk.constraints.deserialize(spec)
    assert type(back) is fk.constraints.MinMaxNorm and back.get_config() == c.get_config()
    assert fk.constraints.get(None) is None
    fn = lambda w: w * 0.5  # noqa: E731  (any callable is a constraint, as in Keras)
    assert fk.constraints.get(fn) is fn
    with pytest.raises(ValueError, match="Could not interpret constraint identifier"):
        fk.constraints.get(3)
    real = real_keras()
    theirs = real.constraints.serialize(real.constraints.MinMaxNorm(0.1, 0.9, rate=0.5, axis=[0, 1]))
    assert theirs["class_name"] == spec["class_name"] and theirs["config"] == spec["config"]


def _data(rng, n=48, d=6, k=3):
    return rng.normal(size=(n, d)).astype(np.float32), rng.integers(0, k, n)


def _dense_model(K):
    return K.Sequential(
        [
            K.Input((6,)),
            K.layers.Dense(
                8,
                activation="relu",
                kernel_constraint=K.constraints.MaxNorm(0.6),
                bias_constraint=K.constraints.NonNeg(),
            ),
            K.layers.Dense(3, activation="softmax", kernel_constraint=K.constraints.UnitNorm()),
        ]
    )


def _train(model, K, x, y, **fit):
    model.compile(optimizer=K.optimizers.SGD(0.2, momentum=0.5), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0, **fit)


def test_sequential_dense_training_projects_each_step_like_keras(rng):
    x, y = _data(rng)
    ours = _dense_model(fk)
    _train(ours, fk, x, y)
    assert ours._fast is None  # the whole-epoch kernel cannot project between steps
    k1 = ours.get_weights()[0]
    assert np.linalg.norm(k1, axis=0).max() <= 0.6 + 1e-5
    assert ours.get_weights()[1].min() >= 0
    np.testing.assert_allclose(np.linalg.norm(ours.get_weights()[2], axis=0), 1, rtol=1e-5)
    real = real_keras()
    init = _dense_model(fk).get_weights()
    a, b = _dense_model(fk), _dense_model(real)
    a.set_weights(init)
    b.set_weights(init)
    _train(a, fk, x, y)
    _train(b, real, x, y)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, np.asarray(wb), rtol=1e-4, atol=1e-5)


def test_layers_carry_constraints_to_their_weights():
    L, C = fk.layers, fk.constraints
    cases = [
        (
            L.Conv1D(4, 3, kernel_constraint=C.MaxNorm(1.0, axis=[0, 1]), bias_constraint="non_neg"),
            (9, 2),
            ["kernel", "bias"],
        ),
        (L.Conv2D(4, 3, kernel_constraint="unit_norm"), (6, 6, 2), ["kernel"]),
        (L.Conv2DTranspose(3, 2, kernel_constraint="non_neg"), (4, 4, 2), ["kernel"]),
        (
            L.LSTM(4, kernel_constraint="max_norm", recurrent_constraint="unit_norm", bias_constraint="non_neg"),
            (5, 3),
            ["kernel", "recurrent_kernel", "bias"],
        ),
        (L.Embedding(10, 4, embeddings_constraint="unit_norm"), (5,), ["embeddings"]),
        (L.LayerNormalization(gamma_constraint="non_neg", beta_constraint="max_norm"), (5,), ["gamma", "beta"]),
        (L.BatchNormalization(gamma_constraint="non_neg"), (5,), ["gamma"]),
        (L.PReLU(alpha_constraint="non_neg"), (5,), ["alpha"]),
    ]
    for layer, shape, attrs in cases:
        layer._build_once((None, *shape))
        for attr in attrs:
            assert getattr(layer, attr).constraint is not None, (layer, attr)
        cfg = layer.get_config()
        clone = type(layer).from_config(cfg)
        for key in cfg:
            if key.endswith("_constraint") and cfg[key] is not None:
                assert type(getattr(clone, key)) is type(getattr(layer, key))
    mha = L.MultiHeadAttention(2, 3, kernel_constraint="max_norm", bias_constraint="non_neg")
    q = np.ones((2, 4, 5), np.float32)
    mha(q, q)
    assert all(w.constraint is not None for w in mha.weights)


class Clip(fk.constraints.Constraint):
    """A user constraint written with keras.ops: values into [-bound, bound]."""

    def __init__(self, bound=0.1):
        self.bound = bound

    def __call__(self, w):
        return fk.ops.clip(w, -self.bound, self.bound)

    def get_config(self):
        return {"bound": self.bound}


class TinyNet(fk.Model):
    def __init__(self, constraint, **kw):
        super().__init__(**kw)
        self.hidden = fk.layers.Dense(8, activation="tanh", kernel_constraint=constraint)
        self.out = fk.layers.Dense(3, activation="softmax", bias_constraint=fk.constraints.NonNeg())

    def call(self, x):
        return self.out(self.hidden(x))


def test_subclassed_model_and_traced_chain_project_after_each_step(rng):
    x, y = _data(rng)
    model = TinyNet(Clip(0.05))
    model.compile(optimizer=fk.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    assert model.__dict__.get("_chain_step")  # the traced chain ran the later steps
    assert np.abs(model.hidden.kernel.numpy()).max() <= 0.05 + 1e-7
    assert model.out.bias.numpy().min() >= 0
    eager = TinyNet(Clip(0.05))
    eager.compile(optimizer=fk.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy", run_eagerly=True)
    eager(x[:2])
    model2 = TinyNet(Clip(0.05))
    model2.compile(optimizer=fk.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    model2(x[:2])
    model2.set_weights(eager.get_weights())
    for m in (eager, model2):
        m.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(eager.get_weights(), model2.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_functional_graph_matches_keras(rng):
    real = real_keras()
    x, y = _data(rng)

    def build(K):
        inp = K.Input((6,))
        a = K.layers.Dense(5, activation="relu", kernel_constraint=K.constraints.MinMaxNorm(0.2, 0.5, rate=0.7))(inp)
        b = K.layers.Dense(5, activation="tanh", kernel_constraint=K.constraints.MaxNorm(0.4))(inp)
        h = K.layers.Concatenate()([a, b])
        out = K.layers.Dense(3, activation="softmax", kernel_constraint=K.constraints.UnitNorm())(h)
        return K.Model(inp, out)

    ours, theirs = build(fk), build(real)
    theirs.set_weights(ours.get_weights())
    _train(ours, fk, x, y)
    _train(theirs, real, x, y)
    for wa, wb in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(wa, np.asarray(wb), rtol=1e-4, atol=1e-5)


def test_apply_gradients_projects_constrained_variables(rng):
    layer = fk.layers.Dense(4, kernel_constraint=fk.constraints.UnitNorm(axis=0))
    layer(np.ones((1, 3), np.float32))
    w0 = layer.kernel.numpy()
    g = rng.normal(size=w0.shape).astype(np.float32)
    opt = fk.optimizers.SGD(0.3)
    opt.apply_gradients([(g, layer.kernel)])
    stepped = w0 - 0.3 * g
    np.testing.assert_allclose(layer.kernel.numpy(), _ref("UnitNorm", stepped.astype(np.float64)), rtol=1e-5)


def test_save_load_keeps_builtin_and_custom_constraints(tmp_path, rng):
    x, y = _data(rng)
    model = fk.Sequential(
        [
            fk.Input((6,)),
            fk.layers.Dense(4, kernel_constraint=Clip(0.2), bias_constraint=fk.constraints.MaxNorm(0.3)),
            fk.layers.Dense(3, activation="softmax"),
        ]
    )
    _train(model, fk, x, y)
    path = tmp_path / "m.keras"
    model.save(path)
    with pytest.raises(ValueError, match="Clip"):
        fk.models.load_model(path)
    back = fk.models.load_model(path, custom_objects={"Clip": Clip})
    kc = back.layers[0].kernel_constraint
    assert type(kc) is Clip and kc.bound == 0.2
    assert back.layers[0].bias_constraint.get_config() == {"max_value": 0.3, "axis": 0}
    assert back.layers[0].kernel.constraint is kc
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))
    back.fit(x, y, epochs=1, verbose=0)
    assert np.abs(back.layers[0].kernel.numpy()).max() <= 0.2 + 1e-7


def test_registered_constraint_loads_without_custom_objects(tmp_path):
    @fk.saving.register_keras_serializable(package="ConstraintTest")
    class Shrink(fk.constraints.Constraint):
        def __init__(self, factor=0.5):
            self.factor = factor

        def __call__(self, w):
            return w * self.factor

        def get_config(self):
            return {"factor": self.factor}

    model = fk.Sequential([fk.Input((3,)), fk.layers.Dense(2, kernel_constraint=Shrink(0.25))])
    model.compile(optimizer="sgd", loss="mse")
    model.save(tmp_path / "s.keras")
    back = fk.models.load_model(tmp_path / "s.keras")
    assert type(back.layers[0].kernel_constraint) is Shrink and back.layers[0].kernel_constraint.factor == 0.25


def test_config_dict_without_a_class_is_refused():
    """A damaged .keras file's constraint entry (a dict naming no class) raises ValueError, not a
    RecursionError (found by the keras-loader fuzzer)."""
    from forgeml.keras import constraints

    with pytest.raises(ValueError, match="constraint identifier"):
        constraints.get({"config": {}})
