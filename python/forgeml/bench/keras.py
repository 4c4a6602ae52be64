"""forgeml.keras vs an idiomatic PyTorch loop and Keras 3 on JAX: one training epoch of the issue's
reference model (Dense 64 relu, Dense 32 relu, Dense 10 softmax; Adam; sparse categorical
cross-entropy; accuracy tracked) on 60,000 synthetic samples (10,000 with --quick) at batch sizes
32 and 256. The metric is each implementation's accuracy on held-out data after the same number
of epochs, all starting from the same Keras-style initial weights. Peers are optional (torch; keras + jax, installed by hand) and skipped when missing.
"""
from __future__ import annotations

import os
import sys

import numpy as np

FEATURES, CLASSES = 100, 10


def teacher(n, seed):
    """A learnable task: labels from a fixed random tanh network."""
    w_rng = np.random.default_rng(1000)
    w1 = w_rng.normal(size=(FEATURES, 32)) / np.sqrt(FEATURES)
    w2 = w_rng.normal(size=(32, CLASSES))
    x = np.random.default_rng(seed).normal(size=(n, FEATURES)).astype(np.float32)
    return x, (np.tanh(x @ w1) @ w2).argmax(1).astype(np.int64)


def _forgeml(x, y, xt, yt, bs):
    import forgeml as tf
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.layers.Dense(64, activation="relu", input_shape=(FEATURES,)),
        tf.keras.layers.Dense(32, activation="relu"),
        tf.keras.layers.Dense(CLASSES, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.set_weights(initial_weights())
    return (lambda: model.fit(x, y, epochs=1, batch_size=bs, verbose=0),
            lambda: float(model.evaluate(xt, yt, verbose=0)[1]))


def initial_weights():
    """Keras-layout initial weights (glorot uniform, zero biases) every implementation starts from,
    so their accuracies compare like for like."""
    rng = np.random.default_rng(0)
    dims = [FEATURES, 64, 32, CLASSES]
    out = []
    for a, b in zip(dims[:-1], dims[1:]):
        lim = np.sqrt(6.0 / (a + b))
        out += [rng.uniform(-lim, lim, (a, b)).astype(np.float32), np.zeros(b, np.float32)]
    return out


def _torch(x, y, xt, yt, bs, threads=None):
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    default_threads = torch.get_num_threads()
    model = torch.nn.Sequential(torch.nn.Linear(FEATURES, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32),
                                torch.nn.ReLU(), torch.nn.Linear(32, CLASSES))
    with torch.no_grad():
        w = initial_weights()
        for i, layer in enumerate(m for m in model if isinstance(m, torch.nn.Linear)):
            layer.weight.copy_(torch.from_numpy(w[2 * i].T.copy()))
            layer.bias.copy_(torch.from_numpy(w[2 * i + 1]))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    X, Y = torch.from_numpy(x), torch.from_numpy(y)

    def epoch():
        if threads:
            torch.set_num_threads(threads)
        try:
            return _epoch()
        finally:
            torch.set_num_threads(default_threads)

    def _epoch():
        model.train()
        perm = torch.randperm(X.shape[0])
        hits = torch.zeros((), dtype=torch.int64)
        total = torch.zeros(())
        for i in range(0, X.shape[0], bs):
            idx = perm[i:i + bs]
            xb, yb = X[idx], Y[idx]
            opt.zero_grad(set_to_none=True)
            out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            opt.step()
            with torch.no_grad():  # the running loss and accuracy Keras reports
                total += loss.detach() * len(yb)
                hits += (out.argmax(1) == yb).sum()
        return float(total) / X.shape[0], int(hits) / X.shape[0]

    def accuracy():
        with torch.no_grad():
            return float((model(torch.from_numpy(xt)).argmax(1).numpy() == yt).mean())
    return epoch, accuracy


def _torch_best_threads(x, y, bs):
    """torch's faster thread count for this model (its default or one thread), from a short probe."""
    try:
        import torch
    except ImportError:
        return None
    import time
    best = None
    for threads in sorted({torch.get_num_threads(), 1}):
        epoch, _ = _torch(x[:2048], y[:2048], x[:1], y[:1], bs, threads=threads)
        epoch()
        t0 = time.perf_counter()
        epoch()
        dt = time.perf_counter() - t0
        if best is None or dt < best[1]:
            best = (threads, dt)
    return best[0]


def _keras_jax(x, y, xt, yt, bs):
    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
        import jax  # noqa: F401
    except ImportError:
        return None
    if keras.backend.backend() != "jax":
        return None
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(FEATURES,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(CLASSES, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.set_weights(initial_weights())
    return (lambda: model.fit(x, y, epochs=1, batch_size=bs, verbose=0),
            lambda: float(model.evaluate(xt, yt, verbose=0, batch_size=1024)[1]))


def run(bench):
    n = 10_000 if bench.quick else 60_000
    x, y = teacher(n, seed=1)
    xt, yt = teacher(10_000, seed=2)
    for bs in (32, 256):
        # torch at its faster thread count (one thread often wins for a model this small)
        threads = _torch_best_threads(x, y, bs)
        impls = {"forgeml": _forgeml(x, y, xt, yt, bs),
                 f"torch-{threads}t": _torch(x, y, xt, yt, bs, threads=threads) if threads else None,
                 "keras-jax": _keras_jax(x, y, xt, yt, bs)}
        impls = {k: v for k, v in impls.items() if v is not None}
        peers = {k: v[0] for k, v in impls.items() if k != "forgeml"}
        bench.compare("keras", f"ref MLP epoch n={n} batch={bs}", impls["forgeml"][0], peers,
                      metric=lambda name: {"test_acc": round(impls[name][1](), 4)})
        _run_subclassed(bench, x, y, xt, yt, n, bs)
    run_cnn(bench)


def _subclassed(keras, x, y, xt, yt, bs):
    """The same MLP written as a subclassed Model (trained through forgeml's tape / Keras's trainer)."""
    class MLP(keras.Model):
        def __init__(self):
            super().__init__()
            self.d1 = keras.layers.Dense(64, activation="relu")
            self.d2 = keras.layers.Dense(32, activation="relu")
            self.d3 = keras.layers.Dense(CLASSES, activation="softmax")

        def call(self, inputs, training=False):
            return self.d3(self.d2(self.d1(inputs)))

    keras.utils.set_random_seed(0)
    model = MLP()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model(x[:2])
    model.set_weights(initial_weights())
    return (lambda: model.fit(x, y, epochs=1, batch_size=bs, verbose=0),
            lambda: float(model.evaluate(xt, yt, verbose=0, batch_size=1024)[1]))


def _run_subclassed(bench, x, y, xt, yt, n, bs):
    import forgeml as tf
    impls = {"forgeml": _subclassed(tf.keras, x, y, xt, yt, bs)}
    if _keras_jax(x[:1], y[:1], xt[:1], yt[:1], bs) is not None:
        import keras
        impls["keras-jax"] = _subclassed(keras, x, y, xt, yt, bs)
    peers = {k: v[0] for k, v in impls.items() if k != "forgeml"}
    bench.compare("keras", f"subclassed MLP epoch n={n} batch={bs}", impls["forgeml"][0], peers,
                  metric=lambda name: {"test_acc": round(impls[name][1](), 4)})


def _cnn_data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 16, 16, 3)).astype(np.float32)
    y = x[:, ::4, ::4, 0].reshape(n, -1)[:, :CLASSES].argmax(1).astype(np.int64)  # a learnable label
    return x, y


def _forgeml_cnn(x, y, bs):
    import forgeml as tf
    keras = tf.keras
    keras.utils.set_random_seed(0)
    inp = keras.Input(shape=(16, 16, 3))
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inp)
    r = keras.layers.Conv2D(16, 3, padding="same")(h)
    h = keras.layers.Activation("relu")(keras.layers.Add()([h, r]))
    h = keras.layers.Flatten()(keras.layers.MaxPooling2D(2)(h))
    model = keras.Model(inp, keras.layers.Dense(CLASSES, activation="softmax")(h))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return lambda: model.fit(x, y, epochs=1, batch_size=bs, verbose=0)


def _torch_cnn(x, y, bs):
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = torch.nn.Conv2d(3, 16, 3, padding=1)
            self.c2 = torch.nn.Conv2d(16, 16, 3, padding=1)
            self.fc = torch.nn.Linear(16 * 8 * 8, CLASSES)

        def forward(self, t):
            h = torch.relu(self.c1(t))
            h = torch.relu(h + self.c2(h))
            return self.fc(torch.flatten(torch.nn.functional.max_pool2d(h, 2), 1))

    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    X, Y = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), torch.from_numpy(y)

    def epoch():
        perm = torch.randperm(X.shape[0])
        for i in range(0, X.shape[0], bs):
            idx = perm[i:i + bs]
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(X[idx]), Y[idx])
            loss.backward()
            opt.step()
    return epoch


def run_cnn(bench):
    """A small functional CNN with a residual Add (the tape path) against a PyTorch loop."""
    n = 2048 if bench.quick else 8192
    x, y = _cnn_data(n, 3)
    impls = {"forgeml": _forgeml_cnn(x, y, 64), "torch": _torch_cnn(x, y, 64)}
    peers = {k: v for k, v in impls.items() if k != "forgeml" and v is not None}
    bench.compare("keras", f"residual CNN epoch n={n} batch=64", impls["forgeml"], peers)
