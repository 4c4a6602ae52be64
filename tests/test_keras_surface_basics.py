"""Activations, losses, metrics, optimizers, schedules and callbacks of the Keras surface:
each against a NumPy float64 reference (always) and against Keras 3 on the same inputs (when
installed)."""

import csv

import numpy as np
import pytest

from forgeml import keras
from gradcheck import numeric_grad
from keras_peer import real_keras

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ACTS = [
    "elu",
    "selu",
    "swish",
    "silu",
    "leaky_relu",
    "relu6",
    "softplus",
    "softsign",
    "hard_sigmoid",
    "hard_swish",
    "mish",
    "exponential",
    "log_softmax",
]


def _z(rng, shape=(7, 9)):
    z = rng.normal(scale=2.5, size=shape)
    z[0, :5] = [-3.01, 3.02, 6.03, -0.01, 0.02]  # near the kinks, not on them
    return z


@pytest.mark.parametrize("name", ACTS)
def test_activation_backward_matches_finite_differences(name, rng):
    act = keras.activations.get(name)
    z = _z(rng)
    w = rng.normal(size=z.shape)
    y = act.forward(z.copy())
    g = act.backward(w.copy(), y, z)
    num = numeric_grad(lambda: float((act.forward(z.copy()) * w).sum()), z)
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ACTS)
def test_activation_forward_matches_keras(name, rng):
    real = real_keras()
    z = _z(rng).astype(np.float32)
    ours = keras.activations.get(name).forward(z.copy())
    theirs = np.asarray(real.activations.get(name)(z))
    np.testing.assert_allclose(ours, theirs, rtol=2e-5, atol=2e-6)


def test_unknown_activation_says_keras_text():
    with pytest.raises(ValueError, match="Could not interpret activation function identifier"):
        keras.activations.get("swishy")


# ---------------------------------------------------------------- losses


def _loss_inputs(name, rng):
    n, k = 11, 5
    if name in ("kl_divergence", "categorical_hinge", "categorical_focal_crossentropy"):
        y = rng.dirichlet(np.ones(k), n) if name == "kl_divergence" else np.eye(k)[rng.integers(0, k, n)]
        p = rng.dirichlet(np.ones(k), n)
    elif name in ("hinge", "squared_hinge", "binary_focal_crossentropy"):
        y = rng.integers(0, 2, (n, k)).astype(float)
        p = rng.uniform(0.05, 0.95, (n, k)) if name == "binary_focal_crossentropy" else rng.normal(size=(n, k))
    elif name in ("poisson", "msle"):
        y, p = rng.uniform(0.1, 3, (n, k)), rng.uniform(0.1, 3, (n, k))
    else:
        y, p = rng.normal(size=(n, k)), rng.normal(size=(n, k)) * 2
    return y, p


LOSSES = [
    "huber",
    "log_cosh",
    "kl_divergence",
    "poisson",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "mape",
    "msle",
    "cosine_similarity",
    "binary_focal_crossentropy",
    "categorical_focal_crossentropy",
]


@pytest.mark.parametrize("name", LOSSES)
def test_loss_gradient_matches_finite_differences(name, rng):
    loss = keras.losses.get(name)
    y, p = _loss_inputs(name, rng)
    sw = rng.uniform(0.5, 2, p.shape[0])
    y = loss.prepare_targets(y, p.shape).astype(np.float64)
    total, g = loss.step(y, p.copy(), sw, p.shape[0])
    num = numeric_grad(lambda: loss.step(y, p.copy(), sw, p.shape[0])[0] / p.shape[0], p)
    np.testing.assert_allclose(g, num, rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(total, float(loss.per_sample(y, p) @ sw), rtol=1e-6)


@pytest.mark.parametrize("name", LOSSES)
def test_loss_value_matches_keras(name, rng):
    real = real_keras()
    y, p = _loss_inputs(name, rng)
    y, p = y.astype(np.float32), p.astype(np.float32)
    sw = rng.uniform(0.5, 2, p.shape[0]).astype(np.float32)
    ours = keras.losses.get(name)
    theirs = getattr(real.losses, type(ours).__name__)()  # the class: Keras's get() gives functions
    np.testing.assert_allclose(float(ours(y, p, sample_weight=sw)), float(theirs(y, p, sample_weight=sw)), rtol=2e-5)


def test_focal_from_logits_and_class_balancing_match_keras(rng):
    real = real_keras()
    y = rng.integers(0, 2, (9, 3)).astype(np.float32)
    z = rng.normal(size=(9, 3)).astype(np.float32)
    kw = dict(apply_class_balancing=True, alpha=0.3, gamma=1.5, from_logits=True)
    ours = keras.losses.BinaryFocalCrossentropy(**kw)
    np.testing.assert_allclose(float(ours(y, z)), float(real.losses.BinaryFocalCrossentropy(**kw)(y, z)), rtol=2e-5)
    total, g = ours.step(y.astype(float), z.astype(float), None, 9)
    num = numeric_grad(lambda: ours.step(y.astype(float), zz, None, 9)[0] / 9, zz := z.astype(float))
    np.testing.assert_allclose(g, num, rtol=2e-4, atol=1e-7)


def test_unknown_loss_says_keras_text():
    with pytest.raises(ValueError, match="Could not interpret loss identifier"):
        keras.losses.get("hubber")


# ---------------------------------------------------------------- metrics


def _binary_scores(rng, n=300, labels=1):
    y = rng.integers(0, 2, (n, labels)).astype(np.float32)
    p = np.clip(0.35 * y + rng.uniform(0, 0.65, (n, labels)), 0, 1).astype(np.float32)
    return y, p


def _auc_reference(y, p, curve="ROC", num_thresholds=200):
    """Float64 AUC from the confusion counts at Keras's thresholds (direct p > t comparisons)."""
    eps = 1e-7
    t = np.array([-eps] + [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)] + [1 + eps])
    pred = p.reshape(-1)[None, :] > t[:, None]
    pos = y.reshape(-1)[None, :] > 0
    tp, fp = (pred & pos).sum(1), (pred & ~pos).sum(1)
    fn, tn = (~pred & pos).sum(1), (~pred & ~pos).sum(1)
    rec = tp / np.maximum(tp + fn, 1)
    if curve == "ROC":
        x, h = fp / np.maximum(fp + tn, 1), rec
    else:
        x, h = rec, np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0)
    return float(((x[:-1] - x[1:]) * (h[:-1] + h[1:]) / 2).sum())


def test_auc_matches_numpy_reference(rng):
    y, p = _binary_scores(rng)
    m = keras.metrics.AUC()
    m.update_state(y[:100], p[:100])
    m.update_state(y[100:], p[100:])
    assert abs(m.result() - _auc_reference(y, p)) < 1e-12
    m2 = keras.metrics.AUC(curve="PR", summation_method="majoring")
    m2.update_state(y, p)
    assert 0.5 < m2.result() <= 1
    m.reset_state()
    assert m.result() == 0.0


def _compare_metric(real, make, y, p, sw=None, batches=2):
    ours, theirs = make(keras), make(real)
    for part in np.array_split(np.arange(len(p)), batches):
        w = None if sw is None else sw[part]
        ours.update_state(y[part], p[part], sample_weight=w)
        theirs.update_state(y[part], p[part], sample_weight=w)
    np.testing.assert_allclose(
        np.asarray(ours.result(), np.float64), np.asarray(theirs.result(), np.float64), rtol=2e-5, atol=1e-6
    )


def test_confusion_metrics_match_keras(rng):
    real = real_keras()
    y, p = _binary_scores(rng)
    sw = rng.uniform(0.2, 2, len(p)).astype(np.float32)
    for make in (
        lambda k: k.metrics.AUC(),
        lambda k: k.metrics.AUC(curve="PR"),
        lambda k: k.metrics.AUC(num_thresholds=50, summation_method="minoring"),
        lambda k: k.metrics.Precision(),
        lambda k: k.metrics.Recall(thresholds=[0.3, 0.6]),
        lambda k: k.metrics.Precision(thresholds=0.7),
    ):
        _compare_metric(real, make, y, p, sw)
    ym, pm = _binary_scores(rng, labels=4)
    _compare_metric(real, lambda k: k.metrics.AUC(multi_label=True), ym, pm)
    _compare_metric(real, lambda k: k.metrics.AUC(multi_label=True, curve="PR"), ym, pm)
    _compare_metric(real, lambda k: k.metrics.Precision(top_k=2), ym, pm)
    _compare_metric(real, lambda k: k.metrics.Recall(class_id=1), ym, pm)


@pytest.mark.filterwarnings("ignore:Explicitly requested dtype int64")  # Keras's own casts under JAX
def test_f1_topk_rmse_r2_iou_match_keras(rng):
    real = real_keras()
    k = 4
    labels = rng.integers(0, k, 60)
    onehot = np.eye(k, dtype=np.float32)[labels]
    scores = rng.dirichlet(np.ones(k), 60).astype(np.float32)
    sw = rng.uniform(0.5, 2, 60).astype(np.float32)
    for avg in (None, "micro", "macro", "weighted"):
        _compare_metric(real, lambda m: m.metrics.F1Score(average=avg), onehot, scores, sw)
        _compare_metric(real, lambda m: m.metrics.FBetaScore(average=avg, beta=2.0, threshold=0.3), onehot, scores)
    _compare_metric(real, lambda m: m.metrics.SparseTopKCategoricalAccuracy(k=2), labels.astype(np.float32), scores, sw)
    _compare_metric(real, lambda m: m.metrics.TopKCategoricalAccuracy(k=2), onehot, scores, sw)
    reg_y, reg_p = rng.normal(size=(60, 3)).astype(np.float32), rng.normal(size=(60, 3)).astype(np.float32)
    _compare_metric(real, lambda m: m.metrics.RootMeanSquaredError(), reg_y, reg_p, sw)
    _compare_metric(real, lambda m: m.metrics.R2Score(), reg_y, reg_y + 0.3 * reg_p, sw)
    _compare_metric(real, lambda m: m.metrics.MeanAbsolutePercentageError(), reg_y, reg_p, sw)
    _compare_metric(real, lambda m: m.metrics.MeanSquaredLogarithmicError(), abs(reg_y), abs(reg_p), sw)
    _compare_metric(
        real, lambda m: m.metrics.MeanIoU(num_classes=k), labels.astype(np.int32), scores.argmax(1).astype(np.int32)
    )


def test_metric_update_state_takes_lists_and_string_names():
    m = keras.metrics.get("auc")
    m.update_state([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.3])
    assert m.result() == 1.0
    rmse = keras.metrics.RootMeanSquaredError()
    rmse.update_state([1.0, 2.0], [1.0, 4.0])
    assert abs(rmse.result() - np.sqrt(2.0)) < 1e-12
    for name in ("precision", "recall", "f1_score", "mape", "sparse_top_k_categorical_accuracy"):
        assert keras.metrics.get(name).name == name
    with pytest.raises(ValueError, match="Could not interpret metric identifier"):
        keras.metrics.get("aucc")


# ---------------------------------------------------------------- optimizers and schedules

OPTS = [
    ("Nadam", {}),
    ("Adagrad", {}),
    ("Adamax", {}),
    ("Adadelta", {"learning_rate": 1.0}),
    ("Lion", {}),
    ("Ftrl", {"l1_regularization_strength": 0.01, "l2_regularization_strength": 0.02}),
    ("Nadam", {"weight_decay": 0.01}),
]


def _run_ours(name, kw, w0, grads):
    opt = getattr(keras.optimizers, name)(**kw)
    params = w0.reshape(-1).copy()
    g = np.zeros_like(params)
    opt.build(params, g, [(0, params.size)], [(0, params.size)])
    for step in grads:
        g[...] = step.reshape(-1)
        opt.apply()
    return params.reshape(w0.shape)


@pytest.mark.parametrize("name,kw", OPTS)
def test_optimizer_matches_keras_step_by_step(name, kw, rng):
    real = real_keras()
    w0 = rng.normal(size=(5, 3)).astype(np.float32)
    grads = [rng.normal(size=w0.shape).astype(np.float32) for _ in range(6)]
    ours = _run_ours(name, kw, w0, grads)
    var = real.Variable(w0)
    opt = getattr(real.optimizers, name)(**kw)
    for g in grads:
        opt.apply_gradients([(g, var)])
    np.testing.assert_allclose(ours, np.asarray(var), rtol=1e-5, atol=1e-6)


def test_adagrad_matches_numpy_reference(rng):
    w0 = rng.normal(size=(4, 3)).astype(np.float32)
    grads = [rng.normal(size=w0.shape).astype(np.float32) for _ in range(4)]
    w, acc = w0.astype(np.float64), np.full(w0.shape, 0.1)
    for g in grads:
        acc += g.astype(np.float64) ** 2
        w -= 0.01 * g / np.sqrt(acc + 1e-7)
    np.testing.assert_allclose(_run_ours("Adagrad", {"learning_rate": 0.01}, w0, grads), w, rtol=1e-5)


def test_optimizer_strings_and_unknown_name():
    for s in ("nadam", "adagrad", "adamax", "adadelta", "lion", "ftrl"):
        assert type(keras.optimizers.get(s)).__name__.lower() == s
    with pytest.raises(ValueError, match="Could not interpret optimizer identifier"):
        keras.optimizers.get("adamm")


SCHEDULES = [
    ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=7, end_learning_rate=0.01, power=2.0)),
    ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=7, cycle=True)),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=5, t_mul=2.0, m_mul=0.8)),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=4, t_mul=1.0, alpha=0.1)),
    ("InverseTimeDecay", dict(initial_learning_rate=0.1, decay_steps=3, decay_rate=0.5, staircase=True)),
    ("PiecewiseConstantDecay", dict(boundaries=[3, 8], values=[0.1, 0.05, 0.01])),
]


@pytest.mark.parametrize("name,kw", SCHEDULES)
def test_schedule_matches_keras_step_by_step(name, kw):
    real = real_keras()
    ours = getattr(keras.optimizers.schedules, name)(**kw)
    theirs = getattr(real.optimizers.schedules, name)(**kw)
    for step in range(25):
        np.testing.assert_allclose(ours(step), float(theirs(step)), rtol=1e-5, err_msg=f"step {step}")


def test_polynomial_decay_reference():
    s = keras.optimizers.schedules.PolynomialDecay(1.0, 10, end_learning_rate=0.0, power=2.0)
    assert [round(s(t), 12) for t in (0, 5, 10, 20)] == [1.0, 0.25, 0.0, 0.0]
    back = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(s))
    assert back(5) == s(5)


# ---------------------------------------------------------------- callbacks


def _small_problem(rng, n=96):
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = (x[:, :2].sum(1) > 0).astype(np.float32)
    return x, y


def _small_model(opt="adam"):
    m = keras.Sequential(
        [keras.layers.Dense(8, activation="elu", input_shape=(6,)), keras.layers.Dense(1, activation="sigmoid")]
    )
    m.compile(optimizer=opt, loss="binary_crossentropy", metrics=["auc"])
    return m


def test_reduce_lr_on_plateau_follows_keras_rule(rng):
    x, y = _small_problem(rng)
    m = _small_model(keras.optimizers.SGD(0.8))
    # min_delta so large that nothing counts as an improvement after the first epoch
    cb = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, cooldown=1, min_delta=1e9)
    h = m.fit(x, y, epochs=8, verbose=0, callbacks=[cb], shuffle=False)
    # logged before the reduction: waits 1, 2 -> halve; a cooldown epoch resets the wait; ...
    assert h.history["learning_rate"] == [0.8, 0.8, 0.8, 0.4, 0.4, 0.2, 0.2, 0.1]
    assert float(m.optimizer.learning_rate) == 0.1


def test_csv_logger_and_backup_and_restore(tmp_path, rng):
    x, y = _small_problem(rng)
    keras.utils.set_random_seed(3)
    path = tmp_path / "log.csv"
    m = _small_model()
    m.fit(x, y, epochs=3, verbose=0, validation_split=0.25, callbacks=[keras.callbacks.CSVLogger(path)])
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert list(rows[0]) == ["epoch", "auc", "loss", "val_auc", "val_loss"]
    np.testing.assert_allclose([float(r["loss"]) for r in rows], m.history.history["loss"])

    # an uninterrupted 4-epoch run versus 2 epochs, a crash, and a resumed run
    keras.utils.set_random_seed(5)
    full = _small_model()
    w0 = full.get_weights()
    full.fit(x, y, epochs=4, verbose=0, shuffle=False)

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("interrupted")

    backup = tmp_path / "backup"
    first = _small_model()
    first.set_weights(w0)
    with pytest.raises(RuntimeError, match="interrupted"):
        first.fit(
            x, y, epochs=4, verbose=0, shuffle=False, callbacks=[keras.callbacks.BackupAndRestore(backup), Crash()]
        )
    assert (backup / "backup.npz").exists()
    resumed = _small_model()
    h = resumed.fit(x, y, epochs=4, verbose=0, shuffle=False, callbacks=[keras.callbacks.BackupAndRestore(backup)])
    assert len(h.history["loss"]) == 2  # epochs 2 and 3 only
    for a, b in zip(resumed.get_weights(), full.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not backup.exists()
