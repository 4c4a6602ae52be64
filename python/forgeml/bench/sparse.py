"""The sparse family: inference of pruned models. Rows: a 90%-sparse Dense layer (1024 x 1024,
batch 64) on ops.sparse_matmul against the same dense kernel on forgeml's fp32 GEMM, NumPy and
scipy.sparse; a pruned MLP's predict after strip_pruning against the unpruned model; and a
quantized (int8) MLP's predict against the float32 one (weights packed once). Same process,
interleaved; ratio = peer time / forgeml time.
"""

from __future__ import annotations

import numpy as np

from forgeml import ops


def _sparse_layer_rows(bench, rng):
    for density, batch in ((0.1, 64), (0.1, 256), (0.3, 64)):
        w = rng.standard_normal((1024, 1024), dtype=np.float32)
        w[rng.random(w.shape) >= density] = 0
        x = rng.standard_normal((batch, 1024), dtype=np.float32)
        sw = ops.SparseWeights.from_dense(w)
        ref = x.astype(np.float64) @ w
        assert np.abs(ops.sparse_matmul(x, sw) - ref).max() < 1e-3
        peers = {"forgeml dense fp32": lambda: ops.matmul(x, w), "numpy dense": lambda: x @ w}
        try:
            import scipy.sparse

            wt = scipy.sparse.csr_matrix(w.T)  # (W^T x^T)^T: scipy's sparse x dense product
            peers["scipy.sparse"] = lambda: (wt @ x.T).T
        except ImportError:
            pass
        bench.compare(
            "sparse",
            f"Dense 1024x1024 {1 - density:.0%} sparse, batch {batch}",
            lambda: ops.sparse_matmul(x, sw),
            peers,
            impl="forgeml sparse",
            flops=2.0 * batch * sw.nnz,
        )


def _mlp(keras, width=1024):
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input(shape=(784,)),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


def _model_rows(bench, rng):
    from forgeml import keras
    from forgeml.keras import pruning

    x = rng.standard_normal((256, 784), dtype=np.float32)
    dense = _mlp(keras)
    pruned = _mlp(keras)
    for layer in pruned.layers:  # 90% of each kernel zeroed by magnitude, as pruning leaves it
        w, b = layer.get_weights()
        w[np.abs(w) < np.quantile(np.abs(w), 0.9)] = 0
        layer.set_weights([w, b])
    pruning.prune_low_magnitude(pruned, pruning.ConstantSparsity(0.9, 0))
    pruning.strip_pruning(pruned)
    assert all(layer._sparse is not None for layer in pruned.layers)
    bench.compare(
        "sparse",
        "MLP 784-1024-1024-10 90% pruned predict, batch 256",
        lambda: pruned.predict_on_batch(x),
        {"forgeml dense": lambda: dense.predict_on_batch(x)},
        impl="forgeml sparse",
    )
    quant = _mlp(keras, 512)
    quant.quantize("int8")
    fp32 = _mlp(keras, 512)
    bench.compare(
        "sparse",
        "MLP 784-512-512-10 int8 predict, batch 256",
        lambda: quant.predict_on_batch(x),
        {"forgeml fp32": lambda: fp32.predict_on_batch(x)},
        impl="forgeml int8",
    )


def run(bench):
    rng = np.random.default_rng(0)
    _sparse_layer_rows(bench, rng)
    _model_rows(bench, rng)
