"""The fused path: a model that is a plain stack of Dense layers trained with softmax + sparse
cross-entropy runs whole epochs in one forgeml.ops.dense_train_steps call (same arithmetic as the
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
    if any(len(layer.input_shape) != 2 for layer in layers):
        return None
    loss = model.loss
    if type(loss) is not losses.SparseCategoricalCrossentropy:
        return None
    last = layers[-1].activation
    if not ((last is activations.softmax and not loss.from_logits) or
            (last is activations.linear and loss.from_logits)):
        return None
    if any(layer.activation.name not in _HIDDEN for layer in layers[:-1]):
        return None
    if any(type(m) is not metrics_module.SparseCategoricalAccuracy or weighted for m, weighted in model._metrics):
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
        layers = model._layers
        dims = [layers[0].input_shape[-1]] + [layer.units for layer in layers]
        base = model._params.ctypes.data

        def offset(var):
            return (var.value.ctypes.data - base) // 4

        w_off = [offset(layer.kernel) for layer in layers]
        b_off = [offset(layer.bias) if layer.use_bias else -1 for layer in layers]
        acts = [layer.activation.name for layer in layers[:-1]] + [None]
        self.layout = ops.DenseLayout.build(dims, acts, w_off, b_off, model._params.size)

    def run(self, x, y, sw, perm, batch_size, first_step, steps):
        """Train `steps` batches; updates the model's loss and metric totals."""
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

    def logits(self, x):
        return self._ops.dense_forward(self.layout, x, self.model._params, softmax=False)

    def predict(self, x, out):
        softmax = self.model._layers[-1].activation is activations.softmax
        return self._ops.dense_forward(self.layout, x, self.model._params, softmax=softmax, out=out)
