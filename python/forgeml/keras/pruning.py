"""Magnitude pruning with the TensorFlow Model Optimization toolkit's names:
``prune_low_magnitude(model_or_layer, pruning_schedule)``, ``PolynomialDecay`` /
``ConstantSparsity`` schedules, the ``UpdatePruningStep`` callback and ``strip_pruning``.

Unlike tfmot, layers are not wrapped: ``prune_low_magnitude`` marks the Dense and Conv2D layers
in place (their config, weights and speed are unchanged). ``UpdatePruningStep`` counts training
steps; after each step it recomputes a layer's mask when the schedule says so (the smallest
|w| of the kernel set to zero until the scheduled fraction is) and applies the mask, so the
kernel stays that sparse through ``fit`` whatever the optimizer did. ``strip_pruning`` drops the
marks; the zeros stay in the weights, and a Dense kernel at least ``SPARSE_INFERENCE_MIN`` sparse
(on the CPU) then predicts with the sparse kernel (``ops.sparse_matmul``: only the nonzeros are
multiplied). Training the model again, or assigning its weights, returns it to the dense kernel.
"""

from __future__ import annotations

import numpy as np

from . import backend
from .callbacks import Callback

__all__ = [
    "PolynomialDecay",
    "ConstantSparsity",
    "prune_low_magnitude",
    "UpdatePruningStep",
    "strip_pruning",
    "get_sparsity",
    "PruningSchedule",
    "SPARSE_INFERENCE_MIN",
]

SPARSE_INFERENCE_MIN = 0.5  # below this the dense GEMM is as fast as the sparse kernel


class PruningSchedule:
    """``schedule(step) -> (prune_now, sparsity)``."""

    def __init__(self, begin_step=0, end_step=-1, frequency=100):
        self.begin_step, self.end_step, self.frequency = int(begin_step), int(end_step), int(frequency)
        if self.begin_step < 0 or self.frequency <= 0 or (self.end_step != -1 and self.end_step < self.begin_step):
            raise ValueError(
                f"pruning schedule: need 0 <= begin_step <= end_step (or end_step=-1) and "
                f"frequency > 0, got begin_step={begin_step}, end_step={end_step}, frequency={frequency}"
            )

    def _due(self, step):
        in_range = step >= self.begin_step and (self.end_step == -1 or step <= self.end_step)
        return in_range and ((step - self.begin_step) % self.frequency == 0 or step == self.end_step)

    def __call__(self, step):
        raise NotImplementedError


def _check_sparsity(name, value):
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name}: expected a sparsity in [0, 1), got {value}")
    return float(value)


class ConstantSparsity(PruningSchedule):
    def __init__(self, target_sparsity, begin_step, end_step=-1, frequency=100):
        super().__init__(begin_step, end_step, frequency)
        self.target_sparsity = _check_sparsity("target_sparsity", target_sparsity)

    def __call__(self, step):
        return self._due(step), self.target_sparsity


class PolynomialDecay(PruningSchedule):
    """sparsity(step) = final + (initial - final) (1 - progress)^power between begin and end step."""

    def __init__(self, initial_sparsity, final_sparsity, begin_step, end_step, power=3, frequency=100):
        super().__init__(begin_step, end_step, frequency)
        if int(end_step) < 0:
            raise ValueError("PolynomialDecay: end_step must be given (>= begin_step)")
        self.initial_sparsity = _check_sparsity("initial_sparsity", initial_sparsity)
        self.final_sparsity = _check_sparsity("final_sparsity", final_sparsity)
        self.power = float(power)

    def __call__(self, step):
        span = max(1, self.end_step - self.begin_step)
        progress = min(1.0, max(0.0, (step - self.begin_step) / span))
        s = self.final_sparsity + (self.initial_sparsity - self.final_sparsity) * (1 - progress) ** self.power
        return self._due(step), float(s)


def _prunable(layer):
    return type(layer).__name__ in ("Dense", "Conv2D", "Convolution2D") and hasattr(layer, "kernel")


class _PruneState:
    def __init__(self, schedule):
        self.schedule = schedule
        self.mask = None


def prune_low_magnitude(to_prune, pruning_schedule=None, **kwargs):
    """Mark a layer, or every Dense / Conv2D layer of a model, for magnitude pruning; returns it."""
    schedule = pruning_schedule or ConstantSparsity(0.5, 0)
    if not isinstance(schedule, PruningSchedule):
        raise TypeError(f"pruning_schedule: expected a PruningSchedule, got {type(schedule).__name__}")
    layers = getattr(to_prune, "layers", None)
    targets = [layer for layer in layers if _prunable(layer)] if layers is not None else [to_prune]
    for layer in targets:
        if not _prunable(layer):
            raise ValueError(
                f"prune_low_magnitude: layer {layer.name!r} ({type(layer).__name__}) has no kernel "
                "to prune (Dense and Conv2D do)"
            )
        layer._pruning = _PruneState(schedule)
    if not targets:
        raise ValueError("prune_low_magnitude: the model has no Dense or Conv2D layer")
    return to_prune


def _update_mask(layer, sparsity):
    w = backend.to_numpy(layer.kernel.value)
    k = int(round(sparsity * w.size))
    mask = np.ones(w.size, dtype=np.float32)
    if k > 0:
        mask[np.argpartition(np.abs(w).ravel(), k - 1)[:k]] = 0  # the k smallest magnitudes
    xp = backend.xp_of(layer.kernel.value)
    layer._pruning.mask = backend.to_xp(mask.reshape(w.shape), xp, dtype=np.float32)


def _apply(layer):
    if layer._pruning.mask is not None:
        layer.kernel.value *= layer._pruning.mask


class UpdatePruningStep(Callback):
    """Advances the pruning step each batch and keeps the marked kernels at their scheduled sparsity."""

    def __init__(self):
        super().__init__()
        self.step = 0

    def _layers(self):
        return [layer for layer in self.model.layers if getattr(layer, "_pruning", None) is not None]

    def on_train_begin(self, logs=None):
        if not self._layers():
            raise ValueError("UpdatePruningStep: the model has no layer marked by prune_low_magnitude")
        self.on_train_batch_end(-1)  # a mask due at step 0 applies before the first update

    def on_train_batch_end(self, batch, logs=None):
        for layer in self._layers():
            due, sparsity = layer._pruning.schedule(self.step)
            if due or layer._pruning.mask is None and sparsity > 0 and self.step >= layer._pruning.schedule.begin_step:
                _update_mask(layer, sparsity)
            _apply(layer)
        if batch >= 0:
            self.step += 1


def strip_pruning(model):
    """Remove the pruning marks (the zeros stay in the kernels); returns the model. Dense kernels
    at least SPARSE_INFERENCE_MIN sparse predict with the sparse kernel from then on."""
    for layer in getattr(model, "layers", [model]):
        if getattr(layer, "_pruning", None) is not None:
            _apply(layer)
            layer._pruning = None
            use_sparse_kernel(layer)
    return model


def use_sparse_kernel(layer, min_sparsity=None):
    """Predict with ``ops.sparse_matmul`` on the layer's current kernel when it is a float32 Dense
    kernel on the CPU at least ``min_sparsity`` (default SPARSE_INFERENCE_MIN) zeros. Returns
    whether it does."""
    from .. import ops
    from .layers.core import Dense

    limit = SPARSE_INFERENCE_MIN if min_sparsity is None else float(min_sparsity)
    w = layer.kernel.value if type(layer) is Dense and layer.built else None
    if type(w) is not np.ndarray or w.dtype != np.float32 or layer._quantization_mode or get_sparsity(layer) < limit:
        return False
    layer._sparse = (layer.kernel.version, ops.SparseWeights.from_dense(w))
    return True


def dense_forward_sparse(layer, x, logits=False):
    """Dense.forward in inference with the sparse kernel: bias and relu/sigmoid/tanh/gelu in its
    epilogue, other activations after it."""
    from .. import ops
    from . import activations

    lead = x.shape[:-1]
    if x.ndim != 2:
        x = x.reshape(-1, x.shape[-1])
    act = activations.linear if logits else layer.activation
    bias = layer.bias.value if layer.use_bias else None
    w = layer._sparse[1]
    if act.kernel is not None and not act.needs_input or act is activations.linear:
        y = ops.sparse_matmul(x, w, bias=bias, activation=act.kernel)
    else:
        y = act.forward(ops.sparse_matmul(x, w, bias=bias))
    return y if len(lead) == 1 else y.reshape(*lead, layer.units)


def get_sparsity(layer):
    """Fraction of exact zeros in a layer's kernel."""
    w = backend.to_numpy(layer.kernel.value)
    return float((w == 0).mean()) if w.size else 0.0
