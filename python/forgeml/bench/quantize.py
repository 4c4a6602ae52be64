"""The quantize family: ``model.quantize("int8")`` predict against the same float32 model, on the
digits task (sklearn's 8x8 digits), batch 256, same process, interleaved. Rows: the seed MLP
(Dense 64 relu, 32 relu, 10 softmax) and the digits CNN (Conv2D 16 3x3 same relu, max pool,
Dense 10 softmax), both trained a few epochs first; each row reports both models' test accuracy.
ratio = float32 time / int8 time (> 1: the quantized model is faster). A sample is CALLS
back-to-back predict_on_batch calls with no idle pause before it (a served model's steady state:
here a lone call after a 50 ms sleep takes 0.6-0.9 ms for either model, 10-20x a warm one, which
measures the VM's idle wake-up rather than the models); the times printed are of the CALLS calls.
"""

from __future__ import annotations

import numpy as np

from .harness import repeated

CALLS = 100


def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    return train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)


def _models(keras):
    L = keras.layers
    mlp = [keras.Input((64,)), L.Dense(64, activation="relu"), L.Dense(32, activation="relu")]
    cnn = [keras.Input((8, 8, 1)), L.Conv2D(16, 3, padding="same", activation="relu"), L.MaxPooling2D(), L.Flatten()]
    return {"seed MLP 64-32-10": mlp, "digits CNN c16-pool-d10": cnn}


def cases(keras, epochs=5):
    """(name, float32 model, int8 model, x_test, y_test, x_batch) per row; both models hold the
    same trained weights, the second one quantized."""
    xtr, xte, ytr, yte = _digits()
    out = []
    for name, body in _models(keras).items():
        image = "CNN" in name
        shape = (-1, 8, 8, 1) if image else (-1, 64)
        a, b = xtr.reshape(shape), xte.reshape(shape)
        keras.utils.set_random_seed(0)
        model = keras.Sequential([*body, keras.layers.Dense(10, activation="softmax")])
        model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
        model.fit(a, ytr, epochs=epochs, batch_size=32, verbose=0)
        quant = keras.models.clone_model(model)
        quant(b[:1])  # built
        quant.set_weights(model.get_weights())
        quant.quantize("int8")
        batch = np.ascontiguousarray(np.resize(b, (256,) + b.shape[1:]))
        out.append((name, model, quant, b, yte, batch))
    return out


def run(bench):
    from forgeml import keras

    for name, fp32, int8, xte, yte, batch in cases(keras):

        def accuracy(impl, fp32=fp32, int8=int8, xte=xte, yte=yte):
            m = int8 if impl == "forgeml int8" else fp32
            return {"accuracy": float((m.predict(xte, verbose=0).argmax(1) == yte).mean())}

        def calls(model, batch=batch):
            return repeated(lambda: model.predict_on_batch(batch), CALLS)

        bench.compare(
            "quantize",
            f"{name} int8 predict, batch 256 (x{CALLS})",
            calls(int8),
            {"forgeml fp32": calls(fp32)},
            impl="forgeml int8",
            metric=accuracy,
            repeats=None if bench.quick else 15,
            pause=0.0,
        )
