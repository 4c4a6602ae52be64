"""The Keras side: an optimizer that averages gradients across ranks before its update, and the
callbacks that keep the ranks in step (same initial weights, averaged metrics)."""

from __future__ import annotations

import time

import numpy as np

from ..keras import callbacks as callbacks_module
from ..keras import optimizers as optimizers_module
from . import _comm


class _AllreduceGradients:
    """Mixed in before a built-in optimizer class: ``apply`` first averages the bound gradient
    buffer across ranks (one Allreduce over the span of the trainable ranges), then runs the
    wrapped rule. Being a subclass, it also turns off the fused whole-epoch Dense path, which
    updates weights inside one kernel call with no point to all-reduce at."""

    allreduce_seconds = 0.0
    allreduce_calls = 0

    def build(self, params, grads, var_segments, ranges):
        super().build(params, grads, var_segments, ranges)
        base = type(self).__mro__[2]
        spec = self.kernel_spec() if base in optimizers_module._KERNEL_TYPES else None
        if isinstance(params, np.ndarray) and spec is not None:  # keep the wrapped rule's C++ update
            from .. import ops

            self._kernel = (
                ops.optimizer_update,
                spec[0],
                {**spec[1], "clipnorm": 0.0, "clipvalue": 0.0, "global_clipnorm": 0.0},
            )

    def apply(self):
        if self._ranges and _comm.size() > 1:
            a, b = self._ranges[0][0], self._ranges[-1][1]
            t0 = time.perf_counter()
            _comm.allreduce_mean(self._grads[a:b])
            self.allreduce_seconds += time.perf_counter() - t0
            self.allreduce_calls += 1
        super().apply()

    def apply_gradients(self, grads_and_vars):
        """The tape trainer's path (subclassed / functional models, GradientTape loops): the
        gradients are packed into one flat buffer, averaged with one Allreduce, then applied."""
        pairs = list(grads_and_vars)
        live = [i for i, (g, _) in enumerate(pairs) if g is not None]
        if live and _comm.size() > 1:
            grads = [np.asarray(pairs[i][0], dtype=np.float32) for i in live]
            flat = np.concatenate([g.ravel() for g in grads])
            t0 = time.perf_counter()
            _comm.allreduce_mean(flat)
            self.allreduce_seconds += time.perf_counter() - t0
            self.allreduce_calls += 1
            offset = 0
            for i, g in zip(live, grads):
                pairs[i] = (flat[offset : offset + g.size].reshape(g.shape), pairs[i][1])
                offset += g.size
        return super().apply_gradients(pairs)


_CLASSES: dict = {}


def DistributedOptimizer(optimizer):
    """Wrap a Keras optimizer (instance or name) so each step averages gradients over all ranks.

    The result is an instance of a subclass of the optimizer's class with the same name and
    config (so saving and ``get_config`` are unchanged). The learning rate is not scaled by the
    number of ranks; do that yourself if you want it (Horovod leaves it to the user too)."""
    opt = optimizers_module.get(optimizer)
    if isinstance(opt, _AllreduceGradients):
        return opt
    base = type(opt)
    cls = _CLASSES.get(base)
    if cls is None:
        cls = _CLASSES[base] = type(
            base.__name__, (_AllreduceGradients, base), {"__module__": __name__, "__qualname__": base.__name__}
        )
    wrapped = cls.__new__(cls)
    wrapped.__dict__.update(opt.__dict__)
    _comm.comm()  # find the world now: an uncaught exception on any rank then aborts the job
    return wrapped


class BroadcastGlobalVariablesCallback(callbacks_module.Callback):
    """At the start of training: check that every rank will run the same number of steps (else
    the all-reduces would pair up wrongly or wait forever), then copy root_rank's weights,
    optimizer slots and step counter to every rank."""

    def __init__(self, root_rank: int = 0):
        super().__init__()
        self.root_rank = int(root_rank)

    def on_train_begin(self, logs=None):
        steps = _comm.gather_ints(self.params.get("steps", 0))
        if len(set(steps)) != 1:
            raise ValueError(
                f"forgeml.distributed: ranks would run different numbers of steps per epoch {steps}; "
                "give every rank the same number of rows (forgeml.distributed.shard does)"
            )
        model = self.model
        if getattr(model, "_params", None) is not None:  # Sequential-style models: one flat buffer
            _comm.broadcast(model._params, self.root_rank)
            weights = model.non_trainable_weights
        else:  # models the tape trains keep one array per variable
            weights = model.weights
        for v in weights:
            value = getattr(v, "value", None)
            if isinstance(value, np.ndarray) and value.flags.c_contiguous:
                _comm.broadcast(value, self.root_rank)
            elif value is not None:
                buf = np.ascontiguousarray(np.asarray(value))
                _comm.broadcast(buf, self.root_rank)
                v.assign(buf)
        opt = model.optimizer
        for slot in getattr(opt, "slots", {}).values():
            _comm.broadcast(slot, self.root_rank)
        it = np.array([opt.iterations.value], dtype=np.int64)
        _comm.broadcast(it, self.root_rank)
        opt.iterations.value = int(it[0])


class MetricAverageCallback(callbacks_module.Callback):
    """At each epoch's end, replace every logged value by its mean over ranks (ranks with equal
    shards: the global mean). Put it before callbacks that read the logs (checkpoints, early
    stopping)."""

    def on_epoch_end(self, epoch, logs=None):
        if not logs or _comm.size() == 1:
            return
        keys = sorted(logs)
        seen = _comm.comm().allgather(keys)
        if any(k != keys for k in seen):
            raise ValueError(f"forgeml.distributed: ranks logged different metrics: {seen}")
        means = _comm.mean_of(np.array([float(logs[k]) for k in keys]))
        for k, v in zip(keys, means):
            logs[k] = float(v)
