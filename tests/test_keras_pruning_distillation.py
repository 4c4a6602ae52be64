"""Magnitude pruning (schedules, UpdatePruningStep, strip_pruning) and the Distiller, on the
digits task (scikit-learn's bundled data)."""

import numpy as np
import pytest

from forgeml import keras
from forgeml.keras import distillation, pruning


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    return train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)


def mlp(width=128):
    return keras.Sequential(
        [
            keras.Input(shape=(64,)),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


def compiled(model, lr=3e-3):
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_schedules():
    c = pruning.ConstantSparsity(0.8, begin_step=10, end_step=50, frequency=20)
    assert c(5) == (False, 0.8) and c(10) == (True, 0.8) and c(30) == (True, 0.8) and c(31)[0] is False
    assert c(50)[0] and not c(70)[0]
    p = pruning.PolynomialDecay(0.0, 0.9, begin_step=0, end_step=100, power=3, frequency=10)
    assert p(0) == (True, 0.0)
    assert p(50)[1] == pytest.approx(0.9 - 0.9 * 0.5**3) and p(100) == (True, pytest.approx(0.9))
    assert p(200)[1] == pytest.approx(0.9) and not p(200)[0]
    with pytest.raises(ValueError, match="sparsity"):
        pruning.ConstantSparsity(1.0, 0)
    with pytest.raises(ValueError, match="begin_step"):
        pruning.ConstantSparsity(0.5, begin_step=10, end_step=5)


def test_pruning_keeps_sparsity_through_fit_and_accuracy(digits):
    xtr, xte, ytr, yte = digits
    keras.utils.set_random_seed(0)
    dense = compiled(mlp())
    dense.fit(xtr, ytr, epochs=15, batch_size=32, verbose=0)
    acc_dense = dense.evaluate(xte, yte, verbose=0)[1]
    steps = 15 * int(np.ceil(len(xtr) / 32))
    keras.utils.set_random_seed(0)
    model = compiled(mlp())
    sched = pruning.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=steps // 2, frequency=10)
    pruning.prune_low_magnitude(model, sched)
    seen = []

    class Watch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(pruning.get_sparsity(model.layers[0]))

    model.fit(xtr, ytr, epochs=15, batch_size=32, verbose=0, callbacks=[pruning.UpdatePruningStep(), Watch()])
    assert seen == sorted(seen) and seen[-1] == pytest.approx(0.8, abs=1e-3)
    assert all(s == pytest.approx(0.8, abs=1e-3) for s in seen[8:])  # kept through the later updates
    w = model.layers[0].get_weights()[0]
    kept = np.abs(w[w != 0])
    assert kept.size and kept.min() > 0
    pruning.strip_pruning(model)
    assert model.layers[0]._pruning is None and pruning.get_sparsity(model.layers[0]) == pytest.approx(0.8, abs=1e-3)
    acc = model.evaluate(xte, yte, verbose=0)[1]
    print(f"digits MLP: dense {acc_dense:.4f}, 80% sparse {acc:.4f}")
    assert acc >= acc_dense - 0.01


def test_stripped_pruned_dense_predicts_with_the_sparse_kernel(digits):
    """strip_pruning puts a >= 50%-sparse Dense layer on ops.sparse_matmul for inference (same
    predictions as the dense kernel); training or assigning weights returns it to the dense GEMM."""
    xtr, xte, ytr, _ = digits
    keras.utils.set_random_seed(0)
    model = compiled(mlp(200))
    pruning.prune_low_magnitude(model, pruning.ConstantSparsity(0.9, 0, frequency=5))
    model.fit(xtr[:256], ytr[:256], epochs=1, batch_size=32, verbose=0, callbacks=[pruning.UpdatePruningStep()])
    dense_pred = model.predict(xte, verbose=0)
    pruning.strip_pruning(model)
    first, last = model.layers
    assert first._sparse is not None and first._sparse[1].density == pytest.approx(0.1, abs=1e-3)
    assert last._sparse is not None  # its kernel was pruned to 90% too
    sparse_pred = model.predict(xte, verbose=0)
    np.testing.assert_allclose(sparse_pred, dense_pred, rtol=1e-5, atol=1e-6)
    w = first.get_weights()
    w[0] = w[0] * 2
    first.set_weights(w)  # assign: stale, back to the dense kernel
    np.testing.assert_allclose(first(xte[:7]), np.maximum(xte[:7] @ w[0] + w[1], 0), rtol=1e-5, atol=1e-5)
    assert first._sparse is None
    assert pruning.use_sparse_kernel(first) and not pruning.use_sparse_kernel(first, min_sparsity=0.95)
    model.fit(xtr[:64], ytr[:64], epochs=1, verbose=0)  # training drops it as well
    assert first._sparse is None and last._sparse is None


def test_pruning_errors():
    with pytest.raises(ValueError, match="no Dense or Conv2D"):
        pruning.prune_low_magnitude(keras.Sequential([keras.Input(shape=(4, 4, 1)), keras.layers.Flatten()]))
    with pytest.raises(TypeError, match="PruningSchedule"):
        pruning.prune_low_magnitude(mlp(), pruning_schedule=0.5)
    model = compiled(mlp())
    with pytest.raises(ValueError, match="no layer marked"):
        model.fit(
            np.zeros((4, 64), np.float32),
            np.zeros(4, int),
            epochs=1,
            verbose=0,
            callbacks=[pruning.UpdatePruningStep()],
        )


def test_logits_distillation_gradient_matches_finite_differences(rng):
    d = distillation.LogitsDistillation(temperature=2.5)
    t = rng.standard_normal((3, 5))
    z = rng.standard_normal((3, 5))
    _, g = d.loss_and_grad(t, z)
    eps = 1e-6
    for i, j in [(0, 0), (1, 3), (2, 4)]:
        zp, zm = z.copy(), z.copy()
        zp[i, j] += eps
        zm[i, j] -= eps
        # loss_and_grad returns the batch mean; the gradient is of the mean too
        fd = (d.loss_and_grad(t, zp)[0] - d.loss_and_grad(t, zm)[0]) / (2 * eps)
        assert g[i, j] == pytest.approx(fd, rel=1e-4, abs=1e-7)
    assert d.loss_and_grad(t, t.copy())[0] == pytest.approx(0, abs=1e-9)
    with pytest.raises(ValueError, match="temperature"):
        distillation.LogitsDistillation(0)


def _train_student(mode, teacher, xs, ys, weight=0.1, temperature=4.0, seed=1, epochs=15):
    keras.utils.set_random_seed(seed)
    student = mlp(128)
    if mode == "alone":
        compiled(student, 3e-3).fit(xs, ys, epochs=epochs, batch_size=32, verbose=0)
        return student, None
    dist = distillation.Distiller(
        teacher, student, distillation.LogitsDistillation(temperature=temperature), student_loss_weight=weight
    )
    dist.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return student, dist.fit(xs, ys, epochs=epochs, batch_size=32)


@pytest.fixture(scope="module")
def teacher(digits):
    keras.utils.set_random_seed(0)
    t = compiled(mlp(256))
    t.fit(digits[0], digits[2], epochs=20, batch_size=32, verbose=0)
    return t


def test_logits_distillation_loss_matches_keras3(rng):
    """The same loss value as Keras 3's LogitsDistillation with a KLDivergence loss (KL of the
    softened softmaxes times T^2, batch mean) on the same logits. (Keras 3.15's default
    loss="kl_divergence" resolves to the plain function, which skips that branch and applies KL
    to the raw scaled logits without softmax or T^2; the instance takes the documented path.)"""
    from keras_peer import real_keras

    real = real_keras()
    t = (rng.standard_normal((13, 10)) * 4).astype(np.float32)
    s = rng.standard_normal((13, 10)).astype(np.float32)
    for temperature in (1.0, 3.0, 7.5):
        ours, _ = distillation.LogitsDistillation(temperature).loss_and_grad(t, s)
        kl = real.losses.KLDivergence()
        theirs = float(real.distillation.LogitsDistillation(temperature, loss=kl).compute_loss(t, s))
        assert ours == pytest.approx(theirs, rel=1e-4)


def test_distiller_with_student_weight_one_is_plain_training(digits, teacher):
    xs, ys = digits[0][:300], digits[2][:300]
    alone, _ = _train_student("alone", teacher, xs, ys)
    distilled, hist = _train_student("distilled", teacher, xs, ys, weight=1.0)
    for a, b in zip(alone.get_weights(), distilled.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert hist["loss"] == hist["student_loss"] and not teacher.trainable


def test_distilled_student_learns_the_teacher(digits, teacher):
    """A student half the teacher's width, trained on 300 samples: distilled at T=4, its test-set
    softmax is closer to the teacher's (KL) than the same student trained alone, at similar
    accuracy. (It does not beat the lone student's accuracy here: the teacher's outputs on
    samples it was trained on are nearly one-hot, so there is little dark knowledge to pass.
    Measured while writing these tests (3 seeds each): MLP and CNN students on 300 or all training samples, T 2
    to 10, student weight 0.1 or 0.5, distilled within -0.02..+0.01 of the lone student.)"""
    xs, ys, xte, yte = digits[0][:300], digits[2][:300], digits[1], digits[3]
    pt = teacher.predict(xte, verbose=0).astype(np.float64)
    out = {}
    for mode in ("alone", "distilled"):
        student, hist = _train_student(mode, teacher, xs, ys)
        p = student.predict(xte, verbose=0).astype(np.float64)
        kl = float((pt * (np.log(pt + 1e-12) - np.log(p + 1e-12))).sum(1).mean())
        out[mode] = (kl, float((p.argmax(1) == yte).mean()))
        if hist is not None:
            assert hist["loss"][-1] < hist["loss"][0]
    print(f"digits student (300 samples): KL to teacher / accuracy: alone {out['alone']}, distilled {out['distilled']}")
    assert out["distilled"][0] < 0.9 * out["alone"][0]
    assert out["distilled"][1] >= out["alone"][1] - 0.03


def test_distilled_student_beats_the_student_alone_with_limited_data(digits, teacher):
    """Issue 19's criterion: a student half the teacher's width (128 vs 256 units) trained with
    the Distiller beats the same student trained alone, same data and epochs. The setting: the
    teacher was trained on all 1347 training digits, the student only gets 300 of them (labels
    scarce, as when distilling onto a small labelled set), both students train 60 epochs (to
    convergence: with 15 they are still learning and the soft targets slow that down), T=4,
    student_loss_weight=0.1 (Keras 3's LogitsDistillation arithmetic, see the test above).
    Five seeds, each seed the same initial weights and batches for both students; the means
    compare. Measured while writing this: alone 0.9520, distilled 0.9627, every seed won; with
    the teacher trained on the other 1047 digits instead: 0.9520 vs 0.9760; with the teacher
    trained on the same 300 digits (a weaker teacher, 0.944), distillation loses (0.9449)."""
    xs, ys, xte, yte = digits[0][:300], digits[2][:300], digits[1], digits[3]
    acc = {"alone": [], "distilled": []}
    for seed in range(1, 6):
        for mode in acc:
            student, _ = _train_student(mode, teacher, xs, ys, seed=seed, epochs=60)
            acc[mode].append(float((student.predict(xte, verbose=0).argmax(1) == yte).mean()))
    alone, distilled = np.mean(acc["alone"]), np.mean(acc["distilled"])
    print(
        f"digits student, 300 samples, 60 epochs, 5 seeds: alone {acc['alone']} mean {alone:.4f}; "
        f"distilled {acc['distilled']} mean {distilled:.4f}"
    )
    assert distilled > alone
