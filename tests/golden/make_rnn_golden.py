"""Writes tests/golden/rnn_keras.npz: Keras 3 (JAX backend) SimpleRNN / LSTM / GRU(reset_after=True)
outputs and gradients for fixed random weights, the second implementation test_rnn.py checks against.

    pip install keras jax   # not forgeml dependencies; only to regenerate this file
    KERAS_BACKEND=jax python tests/golden/make_rnn_golden.py
"""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

N, T, F, H = 3, 7, 5, 6
LAYERS = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def main():
    rng = np.random.default_rng(2024)
    out = {}
    x = rng.standard_normal((N, T, F)).astype(np.float32)
    out["x"] = x
    for name, cls in LAYERS.items():
        layer = cls(H, return_sequences=True, return_state=True)
        layer.build((N, T, F))
        weights = [(0.4 * rng.standard_normal(w.shape)).astype(np.float32) for w in layer.get_weights()]
        layer.set_weights(weights)
        states = [(0.5 * rng.standard_normal((N, H))).astype(np.float32) for _ in range(2 if name == "lstm" else 1)]
        dy = rng.standard_normal((N, T, H)).astype(np.float32)

        nontrain = [v.value for v in layer.non_trainable_variables]  # e.g. the seed generator's state

        def loss(ws, xx, st):
            outs, _ = layer.stateless_call(ws, nontrain, xx, initial_state=list(st))
            return jnp.sum(outs[0] * dy)

        res = layer(x, initial_state=states)
        grads = jax.grad(loss, argnums=(0, 1, 2))([jnp.asarray(w) for w in weights], jnp.asarray(x),
                                                  [jnp.asarray(s) for s in states])
        for i, w in enumerate(weights):
            out[f"{name}_w{i}"] = w
            out[f"{name}_dw{i}"] = np.asarray(grads[0][i])
        for i, s in enumerate(states):
            out[f"{name}_s{i}"] = s
            out[f"{name}_ds{i}"] = np.asarray(grads[2][i])
        out[f"{name}_dy"] = dy
        out[f"{name}_dx"] = np.asarray(grads[1])
        for i, r in enumerate(res):
            out[f"{name}_out{i}"] = np.asarray(r)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rnn_keras.npz")
    np.savez_compressed(path, keras_version=keras.__version__, jax_version=jax.__version__, **out)
    print("wrote", path, "keras", keras.__version__, "jax", jax.__version__)


if __name__ == "__main__":
    main()
