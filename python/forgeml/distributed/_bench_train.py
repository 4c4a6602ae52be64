"""The MPI step-time benchmark, run by ``forgeml.bench.dist`` as
``mpirun -n N python -m forgeml.distributed._bench_train OUT.json ROWS GLOBAL_BATCH``: a 784-256-128-10
MLP, one epoch data-parallel; rank 0 writes the step time and the all-reduce share."""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def main(out: str, rows: int, global_batch: int) -> None:
    import forgeml as tf
    from . import BroadcastGlobalVariablesCallback, DistributedOptimizer, rank, shard, size

    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 784)).astype(np.float32)
    y = rng.integers(0, 10, size=rows)
    x, y = shard(x, y)
    tf.keras.utils.set_random_seed(0)
    L = tf.keras.layers
    model = tf.keras.Sequential(
        [
            L.Input((784,)),
            L.Dense(256, activation="relu"),
            L.Dense(128, activation="relu"),
            L.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer=DistributedOptimizer(tf.keras.optimizers.SGD(0.01)), loss="sparse_categorical_crossentropy")
    cbs = [BroadcastGlobalVariablesCallback(0)]
    model.fit(
        x[: global_batch // size()],
        y[: global_batch // size()],
        batch_size=global_batch // size(),
        epochs=1,
        verbose=0,
        callbacks=cbs,
    )  # warm-up
    opt = model.optimizer
    opt.allreduce_seconds, steps0 = 0.0, opt.iterations.value
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=global_batch // size(), epochs=1, verbose=0, shuffle=False, callbacks=cbs)
    seconds = time.perf_counter() - t0
    steps = opt.iterations.value - steps0
    if rank() == 0:
        with open(out, "w") as f:
            json.dump(
                {
                    "ranks": size(),
                    "steps": steps,
                    "step_s": seconds / steps,
                    "allreduce_s": opt.allreduce_seconds / steps,
                    "params": int(model.count_params()),
                    "allreduce_bytes": int(model.count_params()) * 4,
                },
                f,
            )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
