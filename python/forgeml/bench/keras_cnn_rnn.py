"""Training-epoch time of small forgeml.keras CNN and LSTM models against the same models in a
plain PyTorch training loop (optional peer).

Both sides train the same architecture with Adam(1e-3), softmax cross-entropy, batch 32 or 64 and
a fresh shuffle per epoch, starting from the same weights; one timed call is one epoch. The digits
cases (sklearn's 8x8 digits: images for the CNN, 8 rows of 8 pixels for the LSTM) report both
sides' test accuracy after all their epochs; the larger cases use random 28x28 data (MNIST-sized)
and only time. Quick mode runs the digits cases only.

Both sides use the same thread count (OMP_NUM_THREADS, which PyTorch honours too). On a shared,
oversubscribed machine small ops that open a parallel region wait a scheduler slice for their
second thread, on both sides; ``OMP_NUM_THREADS=1 python -m forgeml bench keras_cnn_rnn`` then
gives the steadier comparison.
"""
from __future__ import annotations

import numpy as np


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    return train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)


def _cnn_layers(keras, shape, wide):
    L = keras.layers
    if not wide:
        return [keras.Input(shape), L.Conv2D(16, 3, padding="same", activation="relu"), L.MaxPooling2D(),
                L.Flatten(), L.Dense(10, activation="softmax")]
    return [keras.Input(shape), L.Conv2D(32, 3, padding="same", activation="relu"), L.MaxPooling2D(),
            L.Conv2D(64, 3, padding="same", activation="relu"), L.MaxPooling2D(), L.Flatten(),
            L.Dense(10, activation="softmax")]


def _lstm_layers(keras, shape, units):
    return [keras.Input(shape), keras.layers.LSTM(units), keras.layers.Dense(10, activation="softmax")]


def _torch_model(torch, model):
    """The Keras model as torch modules (NCHW inside; Keras weights copied into PyTorch's layouts)."""
    nn = torch.nn
    mods = []
    for layer in model.layers:
        kind = type(layer).__name__
        w = [torch.from_numpy(v.numpy().copy()) for v in layer.weights]
        if kind == "Conv2D":
            conv = nn.Conv2d(w[0].shape[2], w[0].shape[3], layer.kernel_size, padding="same")
            conv.weight.data.copy_(w[0].permute(3, 2, 0, 1))
            conv.bias.data.copy_(w[1])
            mods += [conv, nn.ReLU()]
        elif kind == "MaxPooling2D":
            mods.append(nn.MaxPool2d(layer.pool_size))
        elif kind == "Flatten":
            mods += [_NHWC(torch), nn.Flatten()]  # Keras flattens (H, W, C)
        elif kind == "Dense":
            lin = nn.Linear(*w[0].shape)
            lin.weight.data.copy_(w[0].T)
            lin.bias.data.copy_(w[1])
            mods.append(lin)  # softmax lives in the loss
        elif kind == "LSTM":
            lstm = nn.LSTM(w[0].shape[0], layer.units, batch_first=True)
            lstm.weight_ih_l0.data.copy_(w[0].T)  # same gate order i, f, g, o
            lstm.weight_hh_l0.data.copy_(w[1].T)
            lstm.bias_ih_l0.data.copy_(w[2])
            lstm.bias_hh_l0.data.zero_()
            mods.append(_LastStep(torch, lstm))
        else:
            raise TypeError(kind)
    return nn.Sequential(*mods)


def _NHWC(torch):
    class NHWC(torch.nn.Module):
        def forward(self, x):
            return x.permute(0, 2, 3, 1)
    return NHWC()


def _LastStep(torch, lstm):
    class LastStep(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = lstm

        def forward(self, x):
            return self.lstm(x)[1][0][0]
    return LastStep()


def _case(bench, torch, keras, name, layers, x, y, batch, xte=None, yte=None, image=False):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])

    def forgeml_epoch():
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)

    peers = {}
    if torch is not None:
        tmodel = _torch_model(torch, model)
        opt = torch.optim.Adam(tmodel.parameters(), lr=1e-3, eps=1e-7)  # Keras's epsilon
        loss_fn = torch.nn.CrossEntropyLoss()
        tx = torch.from_numpy(np.moveaxis(x, -1, 1).copy() if image else x)
        ty = torch.from_numpy(y.astype(np.int64))
        gen = torch.Generator().manual_seed(0)

        def torch_epoch():  # tracks loss and accuracy as fit does
            perm = torch.randperm(len(tx), generator=gen)
            hits, total = torch.zeros((), dtype=torch.int64), torch.zeros(())
            for s in range(0, len(tx), batch):
                idx = perm[s:s + batch]
                xb, yb = tx[idx], ty[idx]
                opt.zero_grad(set_to_none=True)
                out = tmodel(xb)
                loss = loss_fn(out, yb)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    hits += (out.argmax(1) == yb).sum()
                    total += loss.detach() * len(idx)
            return int(hits), float(total)
        peers["torch"] = torch_epoch

    metric = None
    if xte is not None:
        def metric(impl):
            if impl == "forgeml":
                return {"test_acc": round(float(model.evaluate(xte, yte, verbose=0)[1]), 4)}
            with torch.no_grad():
                t = torch.from_numpy(np.moveaxis(xte, -1, 1).copy() if image else xte)
                return {"test_acc": round(float((tmodel(t).argmax(1).numpy() == yte).mean()), 4)}
    bench.compare("keras2", name, forgeml_epoch, peers, metric=metric)


def run(bench) -> None:
    from forgeml import keras

    torch = _torch()
    xtr, xte, ytr, yte = _digits()
    img, img_te = xtr.reshape(-1, 8, 8, 1), xte.reshape(-1, 8, 8, 1)
    seq, seq_te = xtr.reshape(-1, 8, 8), xte.reshape(-1, 8, 8)
    _case(bench, torch, keras, "digits CNN c16-pool-d10 epoch bs32", _cnn_layers(keras, (8, 8, 1), False),
          img, ytr, 32, img_te, yte, image=True)
    _case(bench, torch, keras, "digits LSTM(32)-d10 epoch bs32", _lstm_layers(keras, (8, 8), 32),
          seq, ytr, 32, seq_te, yte)
    if bench.quick:
        return
    rng = np.random.default_rng(0)
    n = 2048
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, n)
    _case(bench, torch, keras, "28x28 CNN c32-p-c64-p-d10 N2048 bs64", _cnn_layers(keras, (28, 28, 1), True),
          x, y, 64, image=True)
    _case(bench, torch, keras, "28x28 LSTM(128)-d10 N2048 bs64", _lstm_layers(keras, (28, 28), 128),
          x.reshape(n, 28, 28), y, 64)


def gpu_check(check) -> None:
    """One SGD training step of each new layer kind with the model on the GPU (CuPy) against the
    same step on the CPU from the same weights; the timing column compares the two steps."""
    import forgeml
    from forgeml import keras
    L = keras.layers
    cp = check.cp
    cases = [
        ("step Conv2D-MaxPool-Dense N64", (8, 8, 1), lambda: [L.Conv2D(16, 3, padding="same", activation="relu"),
                                                             L.MaxPooling2D(), L.Flatten(), L.Dense(10)]),
        ("step Conv2D-AvgPool-GAP/GMP N64", (9, 9, 3), lambda: [L.Conv2D(8, 3, strides=2, activation="tanh"),
                                                               L.AveragePooling2D(2, padding="same"),
                                                               L.GlobalMaxPooling2D(), L.Dense(10)]),
        ("step LSTM(32)-Dense N64", (8, 8), lambda: [L.LSTM(32), L.Dense(10)]),
        ("step GRU(32) seq+SimpleRNN N64", (8, 8), lambda: [L.GRU(32, return_sequences=True, go_backwards=True),
                                                            L.SimpleRNN(16), L.Dense(10)]),
        ("step LSTM recurrent_dropout N64", (8, 8), lambda: [L.LSTM(32, recurrent_dropout=0.3, seed=1), L.Dense(10)]),
    ]
    rng = np.random.default_rng(0)
    for name, shape, layers in cases:
        try:
            x = rng.random((64, *shape), dtype=np.float32)
            y = rng.integers(0, 10, 64)
            keras.utils.set_random_seed(0)
            models = []
            for dev in ("cpu", "cuda"):
                with forgeml.device(dev):
                    m = keras.Sequential([keras.Input(shape), *layers()])
                m.compile(optimizer=keras.optimizers.SGD(0.1),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
                models.append(m)
            cpu, gpu = models
            w0 = cpu.get_weights()
            xg, yg = cp.asarray(x), cp.asarray(y)

            def ours():
                gpu.set_weights(w0)
                gpu.train_on_batch(xg, yg)
                return [cp.asarray(v.value) for v in gpu.weights]

            def ref():
                cpu.set_weights(w0)
                cpu.train_on_batch(x, y)
                return [cp.asarray(w) for w in cpu.get_weights()]
            check.kernel("keras2", name, ours, ref, peer="forgeml-cpu", rtol=1e-3)
        except Exception as exc:  # one broken case must not hide the others' rows
            check.rows.append(("keras2", name, False, float("nan"), float("nan"), float("nan"),
                               f"error: {type(exc).__name__}: {exc}"[:120], None))
