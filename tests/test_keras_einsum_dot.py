"""keras.ops.einsum with '...' and implicit outputs, and the Dot layer on inputs of any rank
(Keras's batch_dot): values against NumPy float64, gradients against finite differences of the
float64 reference, and Keras 3 on the same inputs / weights where installed."""

import numpy as np
import pytest

from forgeml import keras as fk
from forgeml.keras import ops
from forgeml.keras.autodiff.tape import Tensor, backward
from keras_peer import real_keras

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SPECS = [
    ("...ij,jk->...ik", [(2, 3, 5, 4), (4, 3)]),
    ("...ij,jk", [(3, 5, 4), (4, 3)]),  # implicit output: ellipsis, then the once-used letters sorted
    ("bij,bjk", [(2, 3, 4), (2, 4, 5)]),
    ("ij...,j...->i...", [(3, 4, 5), (4, 1)]),  # the ellipsis broadcasts (5 against 1)
    ("...i,...i->...", [(2, 3, 4), (3, 4)]),
    ("ji", [(3, 5)]),
    ("ii->i", [(4, 4)]),  # repeated indices: diagonals and traces
    ("ii", [(3, 3)]),
    ("iij,jk->ik", [(3, 3, 4), (4, 2)]),
]


@pytest.mark.parametrize(("spec", "shapes"), SPECS)
def test_einsum_ellipsis_and_implicit_output(spec, shapes, rng):
    vals = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    want = np.einsum(spec, *[v.astype(np.float64) for v in vals])
    got = np.asarray(ops.einsum(spec, *vals))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    ts = [Tensor(v) for v in vals]
    y = ops.einsum(spec, *ts)
    g = rng.standard_normal(np.shape(want)).astype(np.float64)
    grads = backward(y, ts, g.astype(np.float32))
    for i, v in enumerate(vals):  # central differences of sum(einsum * g) in float64
        v64 = [w.astype(np.float64) for w in vals]
        num = np.zeros(v.shape)
        for idx in np.ndindex(v.shape):
            for sign in (1, -1):
                v64[i][idx] += sign * 1e-4
                num[idx] += sign * (np.einsum(spec, *v64) * g).sum() / 2e-4
                v64[i][idx] -= sign * 1e-4
        np.testing.assert_allclose(grads[i], num, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize(
    ("shapes", "axes"),
    [
        ([(4, 3, 5), (4, 3, 6)], 1),
        ([(4, 3, 5), (4, 6, 5)], (2, 2)),
        ([(4, 3, 5), (4, 5)], (2, 1)),
        ([(4, 2, 3, 5), (4, 5, 2)], (-1, 1)),
        ([(4, 7), (4, 7)], -1),
    ],
)
@pytest.mark.parametrize("normalize", [False, True])
def test_dot_layer_any_rank(shapes, axes, normalize, rng):
    a, b = (rng.standard_normal(s).astype(np.float32) for s in shapes)
    ours = np.asarray(fk.layers.Dot(axes=axes, normalize=normalize)([a, b]))
    ax = axes if isinstance(axes, tuple) else (axes, axes)
    a1, a2 = ax[0] % a.ndim, ax[1] % b.ndim
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if normalize:
        a64 = a64 / np.linalg.norm(a64, axis=a1, keepdims=True)
        b64 = b64 / np.linalg.norm(b64, axis=a2, keepdims=True)
    want = np.stack([np.tensordot(a64[i], b64[i], axes=(a1 - 1, a2 - 1)) for i in range(a.shape[0])])
    want = want[:, None] if want.ndim == 1 else want
    np.testing.assert_allclose(ours, want, rtol=1e-5, atol=1e-5)
    real = real_keras()
    theirs = np.asarray(real.layers.Dot(axes=axes, normalize=normalize)([a, b]))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_dot_model_trains_like_keras(rng):
    real = real_keras()
    q = rng.standard_normal((16, 5, 4)).astype(np.float32)
    k = rng.standard_normal((16, 6, 4)).astype(np.float32)
    y = rng.standard_normal((16, 5, 6)).astype(np.float32)

    def build(K):
        i1, i2 = K.Input((5, 4)), K.Input((6, 4))
        s = K.layers.Dot(axes=(2, 2))([K.layers.Dense(4)(i1), K.layers.Dense(4)(i2)])
        return K.Model([i1, i2], s)

    ours, theirs = build(fk), build(real)
    theirs.set_weights(ours.get_weights())
    ours.compile(fk.optimizers.SGD(0.05), "mse")
    theirs.compile(real.optimizers.SGD(0.05), "mse")
    ours.fit([q, k], y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    theirs.fit([q, k], y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-4, atol=1e-5)
