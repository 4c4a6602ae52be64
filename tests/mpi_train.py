"""Run under mpirun by tests/test_distributed.py: trains the seed MLP or the digits CNN data-parallel
and saves each rank's final weights and history. Usage: mpi_train.py KIND OUT_DIR GLOBAL_BATCH EPOCHS"""

import os
import sys
import time

import numpy as np

import forgeml as tf
import forgeml.distributed as dist


def data(kind):
    if kind == "cnn":
        from sklearn.datasets import load_digits

        d = load_digits()
        x = (d.images / 16.0).astype(np.float32)[..., None]
        return x[:1536], d.target[:1536].astype(np.int64)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2048, 20)).astype(np.float32)
    y = (x[:, :3].sum(axis=1) + 0.5 * x[:, 3] * x[:, 4] > 0).astype(np.int64) + (x[:, 5] > 1)
    return x, y


class SubclassedMLP(tf.keras.Model):
    """The same MLP as a subclassed model: fit runs the tape trainer (apply_gradients)."""

    def __init__(self):
        super().__init__()
        L = tf.keras.layers
        self.h1, self.h2 = L.Dense(64, activation="relu"), L.Dense(32, activation="tanh")
        self.out = L.Dense(3, activation="softmax")

    def call(self, x):
        return self.out(self.h2(self.h1(x)))


def model_for(kind):
    L = tf.keras.layers
    if kind == "subclassed":
        model = SubclassedMLP()
        model.build((None, 20))
        return model
    if kind == "cnn":
        layers = [
            L.Input((8, 8, 1)),
            L.Conv2D(8, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(32, activation="relu"),
            L.Dense(10, activation="softmax"),
        ]
    else:
        layers = [
            L.Input((20,)),
            L.Dense(64, activation="relu"),
            L.Dense(32, activation="tanh"),
            L.Dense(3, activation="softmax"),
        ]
    return tf.keras.Sequential(layers)


def main():
    kind, out, global_batch, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if kind.startswith("keras3_"):
        return keras3(kind.removeprefix("keras3_"), out, global_batch, epochs)
    x, y = data(kind.removeprefix("empty_rank_"))
    if kind.startswith("empty_rank_"):  # a bad setup: the last rank's own sharding left it nothing
        kind = kind.removeprefix("empty_rank_")
        x, y = (x[:0], y[:0]) if dist.rank() == dist.size() - 1 else dist.shard(x, y)
    else:
        x, y = dist.shard(x, y)
    tf.keras.utils.set_random_seed(100 + dist.rank())  # different per rank: the broadcast must fix it
    model = model_for(kind)
    model.compile(
        optimizer=dist.DistributedOptimizer(tf.keras.optimizers.Adam(3e-3)),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    t0 = time.perf_counter()
    hist = model.fit(
        x,
        y,
        batch_size=global_batch // dist.size(),
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=[dist.BroadcastGlobalVariablesCallback(0), dist.MetricAverageCallback()],
    )
    save(out, model, hist, time.perf_counter() - t0)


def keras3(kind, out, global_batch, epochs):
    """The Keras 3 spelling: no sharding or wrapping in the script, only a distribution."""
    tf.keras.distribution.set_distribution(tf.keras.distribution.DataParallel())
    x, y = data(kind)
    tf.keras.utils.set_random_seed(100 + dist.rank())
    model = model_for(kind)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    t0 = time.perf_counter()
    hist = model.fit(x, y, batch_size=global_batch, epochs=epochs, shuffle=False, verbose=1)
    save(out, model, hist, time.perf_counter() - t0)


def save(out, model, hist, seconds):
    np.savez(
        os.path.join(out, f"rank{dist.rank()}.npz"),
        *model.get_weights(),
        loss=np.array(hist.history["loss"]),
        accuracy=np.array(hist.history["accuracy"]),
        seconds=seconds,
        allreduce_seconds=getattr(model.optimizer, "allreduce_seconds", 0.0),
        steps=model.optimizer.iterations.value,
    )


if __name__ == "__main__":
    main()
