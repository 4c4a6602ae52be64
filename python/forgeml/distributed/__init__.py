"""Data-parallel Keras training over MPI, Horovod-style (``pip install 'forgeml[mpi]'``).

Launch the same script on N processes with ``mpirun -n N python train.py``; with one process
(plain ``python train.py``) it runs unchanged. In the script::

    import forgeml as tf
    import forgeml.distributed as dist

    x, y = dist.shard(x, y)                        # this rank's rows: x[rank::size]
    model.compile(optimizer=dist.DistributedOptimizer(tf.keras.optimizers.Adam(1e-3)), ...)
    model.fit(x, y, batch_size=64,                 # per rank: the global batch is 64 * size
              callbacks=[dist.BroadcastGlobalVariablesCallback(0), dist.MetricAverageCallback()],
              verbose=1 if dist.rank() == 0 else 0)

Every step the ranks' gradients are averaged with one Allreduce over the model's flat gradient
buffer, so the weights stay identical on every rank and equal (to float32 summation order) to one
process training on the global batch. An uncaught exception on any rank aborts the whole job
(MPI_Abort) instead of leaving the other ranks waiting in a collective.
"""

from __future__ import annotations

from ._comm import allreduce_mean, broadcast, comm, is_root, rank, shard, size
from ._keras import BroadcastGlobalVariablesCallback, DistributedOptimizer, MetricAverageCallback

__all__ = [
    "DistributedOptimizer",
    "BroadcastGlobalVariablesCallback",
    "MetricAverageCallback",
    "shard",
    "rank",
    "size",
    "is_root",
    "comm",
    "allreduce_mean",
    "broadcast",
]
