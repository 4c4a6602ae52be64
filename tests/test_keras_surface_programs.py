"""Realistic tf.keras programs run with ``import forgeml as tf``: data made in code, trained end to
end, checked for the accuracy they should reach (and, where Keras 3 is installed, that Keras
reaches about the same on the same program)."""

import csv

import numpy as np
import pytest

import forgeml as tf
from keras_peer import real_keras

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# ---------------------------------------------------------------- text: masked BiLSTM classifier


def text_data(n, seed):
    """Token sequences of length 4..18 over a vocabulary of 40; label 1 when token 7 occurs."""
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for i in range(n):
        length = int(rng.integers(4, 19))
        s = rng.integers(8, 40, length)
        if i % 2:
            s[rng.integers(0, length)] = 7
        seqs.append(s.tolist())
        labels.append(i % 2)
    return seqs, np.array(labels, np.float32)


def text_program(keras, seqs, labels, epochs=6):
    x = keras.utils.pad_sequences(seqs, maxlen=18, padding="post")
    model = keras.Sequential(
        [
            keras.Input(shape=(18,)),
            keras.layers.Embedding(40, 16, mask_zero=True),
            keras.layers.Bidirectional(keras.layers.LSTM(12, return_sequences=True)),
            keras.layers.GlobalMaxPooling1D(),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss="binary_crossentropy",
        metrics=[
            "accuracy",
            keras.metrics.AUC(name="auc"),
            keras.metrics.Precision(name="precision"),
            keras.metrics.Recall(name="recall"),
        ],
    )
    model.fit(x[:400], labels[:400], epochs=epochs, batch_size=32, validation_split=0.1, verbose=0)
    return model.evaluate(x[400:], labels[400:], verbose=0, return_dict=True)


def test_text_classifier_with_masked_bilstm():
    tf.random.set_seed(0)
    seqs, labels = text_data(520, seed=1)
    logs = text_program(tf.keras, seqs, labels)
    assert logs["accuracy"] >= 0.9 and logs["auc"] >= 0.95, logs
    assert logs["precision"] >= 0.85 and logs["recall"] >= 0.85, logs


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*does not support masking:UserWarning")  # Keras 3 warns on its own side
def test_text_classifier_matches_keras_accuracy():
    real = real_keras()
    seqs, labels = text_data(520, seed=1)
    real.utils.set_random_seed(0)
    theirs = text_program(real, seqs, labels)
    tf.random.set_seed(0)
    ours = text_program(tf.keras, seqs, labels)
    assert ours["accuracy"] >= theirs["accuracy"] - 0.05, (ours, theirs)


# ---------------------------------------------------------------- image: augmented CNN


def image_data(n, seed):
    """16x16 grey images (0..255): a horizontal bar, a vertical bar, or a filled square, with noise."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 60, (n, 16, 16, 1)).astype(np.float32)
    y = np.arange(n) % 3
    for i in range(n):
        a, b = rng.integers(2, 12, 2)
        if y[i] == 0:
            x[i, a : a + 2, 1:15] += 180
        elif y[i] == 1:
            x[i, 1:15, b : b + 2] += 180
        else:
            x[i, a : a + 4, b : b + 4] += 180
    return np.clip(x, 0, 255), y


def image_program(keras, x, y, log_path, epochs=8):
    model = keras.Sequential(
        [
            keras.Input(shape=(16, 16, 1)),
            keras.layers.Rescaling(1.0 / 255),
            keras.layers.RandomFlip("horizontal"),
            keras.layers.Conv2D(8, 3, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.LayerNormalization(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    cbs = [
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, min_lr=1e-4),
        keras.callbacks.CSVLogger(str(log_path)),
    ]
    history = model.fit(x[:500], y[:500], epochs=epochs, batch_size=32, validation_split=0.2, callbacks=cbs, verbose=0)
    return model.evaluate(x[500:], y[500:], verbose=0, return_dict=True), history


def test_augmented_cnn_with_plateau_and_csv(tmp_path):
    tf.random.set_seed(0)
    x, y = image_data(600, seed=2)
    logs, history = image_program(tf.keras, x, y, tmp_path / "train.csv")
    assert logs["accuracy"] >= 0.9, logs
    with open(tmp_path / "train.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(history.history["loss"]) == 8
    assert {"accuracy", "loss", "val_accuracy", "val_loss", "learning_rate"} <= set(rows[0])
    lrs = [float(r["learning_rate"]) for r in rows]
    assert all(a >= b for a, b in zip(lrs, lrs[1:])) and lrs[0] == pytest.approx(3e-3)


@pytest.mark.slow
def test_augmented_cnn_matches_keras_accuracy(tmp_path):
    real = real_keras()
    x, y = image_data(600, seed=2)
    real.utils.set_random_seed(0)
    theirs, _ = image_program(real, x, y, tmp_path / "k.csv")
    tf.random.set_seed(0)
    ours, _ = image_program(tf.keras, x, y, tmp_path / "f.csv")
    assert ours["accuracy"] >= theirs["accuracy"] - 0.05, (ours, theirs)


# ---------------------------------------------------------------- generator-fed regression, tf.data


def regression_batches(seed, batch=32):
    rng = np.random.default_rng(seed)
    w = np.array([1.5, -2.0, 0.5, 3.0], np.float32)
    while True:
        x = rng.normal(size=(batch, 4)).astype(np.float32)
        y = x @ w + 0.1 * rng.standard_cauchy(batch).astype(np.float32).clip(-20, 20)  # heavy-tailed noise
        yield x, y[:, None]


def test_generator_fed_regression_with_huber_and_nadam():
    tf.random.set_seed(0)
    model = tf.keras.Sequential(
        [tf.keras.Input((4,)), tf.keras.layers.Dense(16, activation="swish"), tf.keras.layers.Dense(1)]
    )
    model.compile(
        optimizer=tf.keras.optimizers.Nadam(1e-2),
        loss=tf.keras.losses.Huber(delta=1.0),
        metrics=[tf.keras.metrics.RootMeanSquaredError(), "mae"],
    )
    history = model.fit(
        regression_batches(1),
        steps_per_epoch=40,
        epochs=8,
        verbose=0,
        validation_data=regression_batches(2),
        validation_steps=5,
    )
    assert history.history["loss"][-1] < 0.25 * history.history["loss"][0]
    x_test, y_test = next(regression_batches(3, batch=256))
    pred = model.predict(x_test, verbose=0)
    r2 = tf.keras.metrics.R2Score()
    r2.update_state(y_test, pred)
    assert r2.result() > 0.9


def test_tf_data_pipeline_program():
    tf.random.set_seed(1)
    x = tf.random.normal((400, 6))
    y = tf.cast(tf.reduce_sum(x[:, :3], axis=1) > 0, tf.int32)
    ds = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(400)
        .batch(32)
        .map(lambda a, b: (a * 2.0, b))
        .prefetch(tf.data.AUTOTUNE)
    )
    val = tf.data.Dataset.from_tensor_slices((x[:100] * 2.0, y[:100])).batch(50)
    model = tf.keras.Sequential(
        [
            tf.keras.Input((6,)),
            tf.keras.layers.Dense(16, activation="relu"),
            tf.keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(tf.keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(ds, epochs=10, validation_data=val, verbose=0)
    assert history.history["val_accuracy"][-1] >= 0.9
    assert model.evaluate(val, verbose=0)[1] == pytest.approx(history.history["val_accuracy"][-1])
    assert model.predict(val, verbose=0).shape == (100, 2)
