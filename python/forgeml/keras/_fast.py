"""The fused path: a model that is a plain stack of Dense layers trained with softmax + sparse
cross-entropy (or categorical cross-entropy on one-hot targets) runs whole epochs in one forgeml.ops.dense_train_steps call (same arithmetic as the
layer-by-layer path, which stays the reference and handles everything else). ``plan(model)``
says whether a model qualifies; anything it does not recognise falls back."""
from __future__ import annotations

import numpy as np

from . import activations, losses, metrics as metrics_module, optimizers
from .layers.core import Dense

__all__ = ["plan", "DensePlan", "ENABLED"]

ENABLED = True  # tests switch it off to compare against the layer-by-layer path

_HIDDEN = ("linear", "relu", "sigmoid", "tanh")


def _optimizer_spec(opt):
    """(kind, hyper) for the optimizers the fused step implements, else None."""
    if type(opt) not in (optimizers.SGD, optimizers.Adam, optimizers.AdamW, optimizers.RMSprop):
        return None  # a user subclass may change the update rule
    return opt.kernel_spec()


def plan(model):
    if not ENABLED or model._xp is not np or not model.trainable:
        return None
    layers = model._layers
    if not layers or any(type(layer) is not Dense or not layer.trainable for layer in layers):
        return None
    if any(layer.dtype_policy.matmul_precision or layer._quantization_mode for layer in layers):
        return None  # bf16 / int8 layers (mixed_precision.py, quantization.py) take the layer path
    if any(len(layer.input_shape) != 2 for layer in layers):
        return None
    loss = model.loss
    sparse = type(loss) is losses.SparseCategoricalCrossentropy
    onehot = type(loss) is losses.CategoricalCrossentropy and not loss.label_smoothing
    if not (sparse or onehot):
        return None
    last = layers[-1].activation
    if not ((last is activations.softmax and not loss.from_logits) or
            (last is activations.linear and loss.from_logits)):
        return None
    if any(layer.activation.name not in _HIDDEN for layer in layers[:-1]):
        return None
    accuracy = metrics_module.SparseCategoricalAccuracy if sparse else metrics_module.CategoricalAccuracy
    if any(type(m) is not accuracy or weighted for m, weighted in model._metrics):
        return None
    spec = _optimizer_spec(model.optimizer)
    if spec is None:
        return None
    return DensePlan(model, spec)


class DensePlan:
    def __init__(self, model, spec):
        from .. import ops
        self._ops = ops
        self.model = model
        self.kind, self.hyper = spec
        self._onehot_cache = None
        layers = model._layers
        dims = [layers[0].input_shape[-1]] + [layer.units for layer in layers]
        base = model._params.ctypes.data

        def offset(var):
            return (var.value.ctypes.data - base) // 4

        w_off = [offset(layer.kernel) for layer in layers]
        b_off = [offset(layer.bias) if layer.use_bias else -1 for layer in layers]
        acts = [layer.activation.name for layer in layers[:-1]] + [None]
        self.layout = ops.DenseLayout.build(dims, acts, w_off, b_off, model._params.size)

    def labels(self, y):
        """Class ids for y: integer labels as they are; one-hot rows (categorical cross-entropy)
        as their argmax, or None when some row is not exactly one-hot (then the layer path runs)."""
        if y.ndim == 1:
            return y
        if self._onehot_cache is not None and self._onehot_cache[0] is y:
            return self._onehot_cache[1]
        lab = y.argmax(axis=1)
        exact = bool(np.all((y == 0) | (y == 1))) and bool(np.all(y.sum(axis=1) == 1))
        out = lab if exact else None
        self._onehot_cache = (y, out)
        return out

    def run(self, x, y, sw, perm, batch_size, first_step, steps):
        """Train `steps` batches, updating the model's loss and metric totals; False (nothing done)
        when the targets do not suit the fused step."""
        y = self.labels(y)
        if y is None:
            return False
        model, opt = self.model, self.model.optimizer
        t0 = opt.iterations.value
        lr = opt._lr
        lrs = [float(lr(t0 + s)) for s in range(steps)] if callable(lr) else lr
        loss, hits, count = self._ops.dense_train_steps(
            self.layout, x, y, model._params, model._grads, optimizer=self.kind, hyper=self.hyper,
            slots=opt.slots, lrs=lrs, t0=t0, batch_size=batch_size, first_step=first_step, steps=steps,
            perm=perm, sample_weight=sw)
        opt.iterations.value = t0 + steps
        model._loss_total += loss
        model._loss_count += count
        for m, _ in model._metrics:
            m.total += hits
            m.count += count
        return True

    def logits(self, x):
        return self._ops.dense_forward(self.layout, x, self.model._params, softmax=False)

    def predict(self, x, out):
        softmax = self.model._layers[-1].activation is activations.softmax
        return self._ops.dense_forward(self.layout, x, self.model._params, softmax=softmax, out=out)
