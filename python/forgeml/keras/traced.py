"""A traced fast path for the tape trainer, in the spirit of jit: the first training step runs on
the tape; if its graph turns out to be a plain chain of built-in layers ending in a built-in loss
(a subclassed model whose ``call`` just applies its layers in turn), later steps run that chain
the way Sequential does -- each layer's forward, the loss fused with the output activation,
each layer's backward straight into the optimizer's flat gradient buffer, one optimizer pass.
A chain of Dense layers that the seed's fused path takes (keras/_fast.py) runs whole epochs in one
kernel call from the second epoch on. Like jit, it assumes ``call`` does the same thing on every
batch; ``compile(run_eagerly=True)`` turns it off.
"""

from __future__ import annotations

import numpy as np

from . import backend, constraints
from .autodiff.tape import Tensor, _topo
from .layers.base import Layer

__all__ = ["trace_chain", "ChainStep", "dense_plan"]


def trace_chain(model, x, loss, variables):
    """The layers of the chain from x to the loss, or None when the graph is anything else."""
    from . import losses as L

    if type(loss) is not Tensor or len(loss.parents) != 1 or not isinstance(loss.op, str):
        return None
    compiled = model._compiled_loss
    if (
        len(compiled.losses) != 1
        or not isinstance(compiled.losses[0], L.Loss)
        or compiled.weights != [1.0]
        or type(compiled.losses[0]).call is not L.Loss.call
        or loss.op != type(compiled.losses[0]).__name__
    ):
        return None
    layers, t = [], loss.parents[0]
    while type(t) is Tensor:
        layer = t.op
        if not isinstance(layer, Layer) or len(t.parents) != 1 + len(layer.trainable_weights):
            return None
        layers.append(layer)
        t = t.parents[0]
    if t is not x or not layers or len(_topo(loss)) != len(layers) + 1 + sum(len(l.trainable_weights) for l in layers):
        return None
    layers.reverse()
    owned = [w for l in layers for w in l.trainable_weights]
    if len(owned) != len(variables) or any(a is not b for a, b in zip(owned, variables)) or model.losses:
        return None
    if any(len(l.input_shape or ()) != 2 for l in layers):
        return None
    return ChainStep(model, layers, variables)


class ChainStep:
    def __init__(self, model, layers, variables):
        from .optimizers.per_variable import _flat_binding

        self.model, self.layers, self.variables = model, layers, variables
        self.loss = model._compiled_loss.losses[0]
        last = layers[-1]
        act = getattr(last, "activation", None)
        self.fused = act is not None and self.loss.fuses(act) and "logits" in last.forward.__code__.co_varnames
        params, grads = _flat_binding(model.optimizer, variables)
        self.params = params
        off = 0
        for v in variables:  # backward writes straight into the optimizer's gradient buffer
            n = int(v.value.size)
            v.grad = grads[off : off + n].reshape(v.shape)
            off += n
        self.grads = grads
        self.constrained = [v for v in variables if v.constraint is not None]

    def valid(self, x):
        from .optimizers.per_variable import _flat_binding

        binding = self.model.optimizer.__dict__.get("_binding")
        return (
            type(x) is not dict
            and hasattr(x, "shape")
            and binding is not None
            and binding[3] is self.grads
            and all(v.value is val for v, val in zip(self.variables, binding[1]))
            and _flat_binding is not None
        )

    def run(self, x, y, sw):
        model, layers = self.model, self.layers
        h = backend.to_xp(x, model._xp, dtype=np.float32)
        for layer in layers[:-1]:
            h = layer.forward(h, True)
        n = h.shape[0]
        yt = self.loss.prepare_targets(backend.to_xp(y, model._xp), (n, *layers[-1].output_shape[1:]))
        swv = None if sw is None else backend.to_xp(sw, model._xp, dtype=np.float64).reshape(-1)
        if self.fused:
            total, y_pred, g = self.loss.step_logits(yt, layers[-1].forward(h, True, logits=True), swv, n, True)
        else:
            y_pred = layers[-1].forward(h, True)
            total, g = self.loss.step(yt, y_pred, swv, n)
        for i in range(len(layers) - 1, -1, -1):
            g = layers[i].backward(g, i > 0)
        model.optimizer.apply()  # apply(), not _apply_flat(): a wrapping optimizer (MPI) hooks it
        if self.constrained:
            constraints.apply(self.constrained)
        model._loss_tracker.update_state(np.asarray([total / max(n, 1)]), sample_weight=[n])
        model._compiled_metrics.update_state(y, y_pred, sw)
        return model.get_metrics_result()


class _PlanView:
    """What _fast.plan / DensePlan read from a model, for a traced chain: its layers, the
    optimizer's flat buffers and the loss tracker's running totals."""

    def __init__(self, model, chain):
        self._layers, self._params, self._grads = chain.layers, chain.params, chain.grads
        self._xp, self.trainable = np, True
        self.loss, self.optimizer = chain.loss, model.optimizer
        self._metrics = [(m, False) for _, m in model._compiled_metrics.metrics]
        self._tracker = model._loss_tracker

    _loss_total = property(lambda self: self._tracker.total, lambda self, v: setattr(self._tracker, "total", v))
    _loss_count = property(lambda self: self._tracker.count, lambda self, v: setattr(self._tracker, "count", v))


def dense_plan(model, chain):
    """The whole-epoch fused kernel (keras/_fast.py) for a traced chain of Dense layers, or None."""
    from . import _fast

    if model._xp is not np or len(model._compiled_metrics.names) != 1 or chain.constrained:
        return None
    return _fast.plan(_PlanView(model, chain))
