"""Keras 3's ``keras.distribution`` API for data parallelism over MPI (forgeml.distributed).

    keras.distribution.set_distribution(keras.distribution.DataParallel())
    ...
    model.fit(x, y, batch_size=256)     # run as: mpirun -n N python train.py

With a DataParallel distribution set, ``fit`` gives each rank its shard of every global batch
(``batch_size`` is the global batch, split evenly over the ranks), averages gradients across
ranks every step, starts from rank 0's weights and averages the logged metrics, so every
callback sees the same values on every rank; progress bars and ModelCheckpoint run on rank 0
only. With one process (plain ``python train.py``) nothing changes."""

from __future__ import annotations

__all__ = ["DataParallel", "set_distribution", "distribution", "list_devices"]

_current = None


class DataParallel:
    """Replicate the model on every MPI rank and split each batch over the ranks."""

    def __init__(self, device_mesh=None, devices=None, auto_shard_dataset=True):
        if device_mesh is not None:
            raise NotImplementedError("DataParallel: device meshes are not supported; the ranks are the devices")
        self.auto_shard_dataset = auto_shard_dataset

    def _prepare_fit(self, model, x, y, sample_weight, batch_size, callbacks, verbose):
        from .. import distributed as dist
        from .callbacks import ModelCheckpoint

        n = dist.size()
        if n == 1:
            return x, y, sample_weight, batch_size, callbacks, verbose
        if batch_size % n:
            raise ValueError(f"batch_size: the global batch {batch_size} does not split evenly over {n} ranks")
        if self.auto_shard_dataset:
            arrays = [a for a in (x, y, sample_weight) if a is not None]
            sharded = dist.shard(*arrays)
            sharded = list(sharded) if len(arrays) > 1 else [sharded]
            x, y, sample_weight = (sharded.pop(0) if a is not None else None for a in (x, y, sample_weight))
        model.optimizer = dist.DistributedOptimizer(model.optimizer)
        root = dist.is_root()
        user = [cb for cb in (callbacks or []) if root or not isinstance(cb, ModelCheckpoint)]
        callbacks = [dist.BroadcastGlobalVariablesCallback(0), dist.MetricAverageCallback(), *user]
        return x, y, sample_weight, batch_size // n, callbacks, verbose if root else 0


def set_distribution(value):
    """Set (or with None, clear) the distribution that ``fit`` uses."""
    global _current
    if value is not None and not isinstance(value, DataParallel):
        raise ValueError(f"set_distribution: expected a DataParallel or None, got {type(value).__name__}")
    _current = value


def distribution():
    return _current


def list_devices(device_type=None):
    """One entry per MPI rank (forgeml runs one device per process)."""
    from .. import distributed as dist

    kind = (device_type or "cpu").lower()
    return [f"{kind}:{r}" for r in range(dist.size())]
