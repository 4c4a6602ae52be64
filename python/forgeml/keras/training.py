"""The trainer for models the layer-by-layer path does not cover: subclassed models, functional
graphs with several inputs/outputs or merges, custom layers, losses and metrics, and
``train_step`` overrides. One step is Keras's: a GradientTape around the forward and the loss,
``tape.gradient`` and ``optimizer.apply_gradients`` (models.py keeps the structure; this file the
loops).
"""

from __future__ import annotations

import math

import numpy as np

from . import backend, callbacks as callbacks_module, loss_mask, losses as losses_module, metrics as metrics_module
from . import utils
from .autodiff import tape as _tape
from .autodiff.tape import GradientTape
from .layers import masking
from .layers._calling import flatten, map_structure
from .loss_tape import _as_target, apply_loss
from .ops import numpy as knp

__all__ = ["CompiledLoss", "CompiledMetrics", "fit", "evaluate", "predict", "unpack_x_y_sample_weight"]


def unpack_x_y_sample_weight(data):
    if isinstance(data, tuple):
        if len(data) == 1:
            return data[0], None, None
        if len(data) == 2:
            return data[0], data[1], None
        if len(data) == 3:
            return data
    return data, None, None


# ---------------------------------------------------------------- losses per output
def _per_output(spec, names, what):
    """A compile() argument as one entry per output (None where an output has none)."""
    if isinstance(spec, dict):
        unknown = [k for k in spec if k not in names]
        if unknown:
            raise ValueError(f"compile: {what} keys {unknown} are not output names; the model's outputs are {names}")
        return [spec.get(n) for n in names]
    if isinstance(spec, (list, tuple)):
        if what == "metrics" and len(names) == 1 and not (len(spec) == 1 and isinstance(spec[0], (list, tuple))):
            return [list(spec)]  # one output: every metric is its metric, as in Keras
        if len(spec) != len(names):
            raise ValueError(
                f"compile: {what} has {len(spec)} entries but the model has {len(names)} outputs ({names})"
            )
        return list(spec)
    return (
        [spec] * len(names)
        if what == "metrics"
        else ([spec] + [None] * (len(names) - 1) if len(names) > 1 and spec is None else [spec] * len(names))
    )


def _loss_object(spec):
    if spec is None:
        return None
    if isinstance(spec, (str, dict)) or spec in losses_module._FN_TO_CLASS:
        return losses_module.get(spec)
    if isinstance(spec, losses_module.Loss) or callable(spec):
        return spec
    raise ValueError(f"Could not interpret loss identifier: {spec!r}")


class CompiledLoss:
    """compile()'s loss / loss_weights resolved against the model's outputs."""

    def __init__(self, loss, loss_weights, output_names):
        self.names = list(output_names)
        self.losses = [_loss_object(s) for s in _per_output(loss, self.names, "loss")]
        if all(lo is None for lo in self.losses):
            raise ValueError("compile: a loss is required (e.g. loss='sparse_categorical_crossentropy')")
        w = _per_output(loss_weights, self.names, "loss_weights") if loss_weights is not None else None
        self.weights = [1.0 if x is None else float(x) for x in w] if w is not None else [1.0] * len(self.names)
        # with several losses Keras also reports each one, unweighted, as "<output>_loss"
        several = sum(lo is not None for lo in self.losses) > 1
        self.trackers = [
            metrics_module.Mean(name=f"{n}_loss") if several and lo is not None else None
            for n, lo in zip(self.names, self.losses)
        ]

    def __call__(self, y_true, y_pred, sample_weight=None, regularization_losses=None):
        ys = _outputs_list(y_true, self.names, "y")
        ps = _outputs_list(y_pred, self.names, "y_pred")
        total = None
        for loss, w, y, p, tracker in zip(self.losses, self.weights, ys, ps, self.trackers):
            if loss is None:
                continue
            if y is None:
                raise ValueError("fit: targets are missing for an output that has a loss")
            term = apply_loss(loss, y, p, sample_weight, masking.mask_of(_tape.value_of(p)))
            if tracker is not None:
                batch = int(np.shape(_tape.value_of(p))[0]) if np.ndim(_tape.value_of(p)) else 1
                tracker.update_state(np.asarray([float(_tape.value_of(term))]), sample_weight=[batch])
            term = term if w == 1.0 else knp.multiply(term, w)
            total = term if total is None else knp.add(total, term)
        for extra in regularization_losses or ():
            total = knp.add(total, extra)
        return total


def _outputs_list(values, names, what):
    if isinstance(values, dict):
        return [values.get(n) for n in names]
    if isinstance(values, (list, tuple)):
        if len(values) != len(names):
            raise ValueError(f"{what}: expected {len(names)} arrays (one per output {names}), got {len(values)}")
        return list(values)
    if len(names) != 1:
        raise ValueError(f"{what}: the model has {len(names)} outputs {names}; pass a list or a dict")
    return [values]


class _FnMetric(metrics_module.Metric):
    """A metric from a function (y_true, y_pred) -> per-sample values: their running mean."""

    def __init__(self, fn, name=None):
        self.fn = fn
        super().__init__(name=name or getattr(fn, "__name__", "metric"))

    def update_state(self, y_true, y_pred, sample_weight=None):
        v = _tape.value_of(self.fn(y_true, y_pred))
        self._add(backend.xp_of(v).asarray(v, dtype=np.float64).reshape(-1), sample_weight)


class CompiledMetrics:
    def __init__(self, metrics, output_names, losses):
        self.names = list(output_names)
        per = _per_output(metrics, self.names, "metrics") if metrics is not None else [None] * len(self.names)
        self.metrics = []  # (output index, metric)
        for i, spec in enumerate(per):
            for m in [] if spec is None else spec if isinstance(spec, (list, tuple)) else [spec]:
                obj = self._resolve(m, losses[i])
                if len(self.names) > 1 and isinstance(m, str):
                    obj.name = f"{self.names[i]}_{obj.name}"
                self.metrics.append((i, obj))

    @staticmethod
    def _resolve(m, loss):
        if isinstance(m, metrics_module.Metric) or isinstance(m, str) or isinstance(m, type):
            return metrics_module.resolve(m, loss if isinstance(loss, losses_module.Loss) else None, None)
        if callable(m):
            return _FnMetric(m)
        raise ValueError(f"Could not interpret metric identifier: {m!r}")

    def update_state(self, y_true, y_pred, sample_weight=None):
        ys = _outputs_list(y_true, self.names, "y")
        ps = _outputs_list(y_pred, self.names, "y_pred")
        for i, m in self.metrics:
            if ys[i] is None:
                continue
            p = _tape.value_of(ps[i])
            y = _as_target(ys[i], p)
            mask = masking.mask_of(p)
            rows = None
            if mask is not None and metrics_module.averages_steps(m):
                rows = loss_mask.masked_rows(y, p, sample_weight, mask, False)
            if rows is not None:  # mean metrics count the real steps only (loss_mask.py)
                m.update_state(rows.y, rows.y_pred, rows.weights)
            else:
                m.update_state(y, p, sample_weight)

    def reset_state(self):
        for _, m in self.metrics:
            m.reset_state()


# ---------------------------------------------------------------- data
def _to_arrays(x, xp, what):
    def conv(a):
        if a is None:
            return None
        a = _tape.value_of(a)
        if isinstance(a, np.ndarray) and a.dtype.kind in "USO":
            return a  # strings for a text layer (layers/lookup.py): they stay on the host
        arr = backend.to_xp(a, xp) if hasattr(a, "shape") else xp.asarray(np.asarray(a))
        if arr.dtype.kind not in "fiub":
            raise TypeError(f"{what}: expected numeric data, got dtype {arr.dtype}")
        return arr.astype(np.float32) if arr.dtype.kind == "f" and arr.dtype != np.float32 else arr

    return map_structure(conv, x)


def _n_rows(x, what):
    sizes = {int(a.shape[0]) for a in flatten(x) if a is not None}
    if len(sizes) > 1:
        raise ValueError(
            f"Data cardinality is ambiguous: {what} arrays have different numbers of samples {sorted(sizes)}"
        )
    return sizes.pop() if sizes else 0


def _take(x, idx):
    return map_structure(lambda a: None if a is None else a[idx], x)


def _batches(n, batch_size, perm):
    for s in range(math.ceil(n / batch_size)):
        a, b = s * batch_size, min((s + 1) * batch_size, n)
        yield s, (slice(a, b) if perm is None else perm[a:b])


def _logs(model):
    return {m.name: float(_tape.value_of(m.result())) for m in model.metrics}


def _result_logs(result):
    return {k: float(_tape.value_of(v)) for k, v in dict(result).items()}


def fit(
    model,
    x,
    y,
    batch_size,
    epochs,
    verbose,
    callbacks,
    validation_split,
    validation_data,
    shuffle,
    sample_weight,
    initial_epoch,
    steps_per_epoch,
    validation_batch_size,
    validation_freq,
    class_weight,
):
    xp = model._xp
    x, y = _to_arrays(x, xp, "x"), _to_arrays(y, xp, "y")
    sw = None if sample_weight is None else _to_arrays(sample_weight, xp, "sample_weight")
    if class_weight is not None:
        sw = class_weight_to_sample_weight(class_weight, y, sw, xp)
    n_all = _n_rows([x, y, sw], "x/y")
    val = None
    if validation_data is None and validation_split:
        cut = int(n_all * (1 - validation_split))
        val = (_take(x, slice(cut, None)), _take(y, slice(cut, None)), None if sw is None else sw[cut:])
        x, y, sw = _take(x, slice(0, cut)), _take(y, slice(0, cut)), None if sw is None else sw[:cut]
    elif validation_data is not None:
        vd = tuple(validation_data)
        val = (
            _to_arrays(vd[0], xp, "validation x"),
            _to_arrays(vd[1], xp, "validation y"),
            _to_arrays(vd[2], xp, "validation sample_weight") if len(vd) == 3 else None,
        )
    n = _n_rows([x, y, sw], "x/y")
    if n == 0:
        raise ValueError("fit: the training data is empty")
    steps = math.ceil(n / batch_size)
    if steps_per_epoch is not None:
        steps = min(steps, int(steps_per_epoch))
    history = callbacks_module.History()
    cbs = list(callbacks or [])
    if verbose:
        cbs.insert(0, callbacks_module.ProgbarLogger(verbose))
    cbs.append(history)
    params = {"verbose": verbose, "epochs": epochs, "steps": steps, "mode": "fit"}
    cbl = callbacks_module.CallbackList(cbs, model, params)
    for prog in cbl.callbacks:
        if isinstance(prog, callbacks_module.ProgbarLogger):
            prog._values_fn = lambda: _logs(model)
    model.stop_training = False
    model.history = history
    rng = utils.global_rng()
    cbl.call("on_train_begin", None)
    logs = {}
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        cbl.call("on_epoch_begin", epoch, None)
        perm = rng.permutation(n) if shuffle and n > 1 else None
        if perm is not None and xp is not np:
            perm = xp.asarray(perm)
        if _fused_epoch(model, x, y, sw, perm, batch_size, steps, cbl):
            logs = _result_logs(model.get_metrics_result())
            logs = _end_epoch(model, logs, val, epoch, validation_freq, validation_batch_size or batch_size, cbl)
            if model.stop_training:
                break
            continue
        xe, ye, swe = (x, y, sw) if perm is None else (_take(x, perm), _take(y, perm), None if sw is None else sw[perm])
        for s, idx in _batches(n, batch_size, None):  # shuffled once per epoch, then sliced
            if s >= steps:
                break
            if cbl.wants_batches:
                cbl.call("on_train_batch_begin", s, None)
            data = (_take(xe, idx), _take(ye, idx)) if sw is None else (_take(xe, idx), _take(ye, idx), swe[idx])
            logs = _result_logs(model.train_step(data))
            if cbl.wants_batches:
                cbl.call("on_train_batch_end", s, logs)
            if model.stop_training:
                break
        logs = _end_epoch(model, logs, val, epoch, validation_freq, validation_batch_size or batch_size, cbl)
        if model.stop_training:
            break
    cbl.call("on_train_end", None)
    history.params = params
    history.model = model
    return history


def _end_epoch(model, logs, val, epoch, validation_freq, batch_size, cbl):
    logs = dict(logs)
    if val is not None and (epoch + 1) % validation_freq == 0:
        vlogs = evaluate(model, *val, batch_size, reset=True)
        logs.update({"val_" + k: v for k, v in vlogs.items()})
    cbl.call("on_epoch_end", epoch, logs)
    return logs


def _fused_epoch(model, x, y, sw, perm, batch_size, steps, cbl):
    """A traced chain of Dense layers runs the whole epoch in one kernel call (keras/traced.py)."""
    chain = model.__dict__.get("_chain_step")
    if not chain or cbl.wants_batches or not chain.valid(x):
        return False
    plan = chain.__dict__.get("plan", 0)
    if plan == 0:
        from .traced import dense_plan

        plan = chain.__dict__["plan"] = dense_plan(model, chain)
    if plan is None or plan.labels(y) is None:
        return False
    return bool(plan.run(x, y, sw, None if perm is None else np.asarray(perm), batch_size, 0, steps))


def evaluate(model, x, y, sw, batch_size, reset=True):
    xp = model._xp
    x, y = _to_arrays(x, xp, "x"), _to_arrays(y, xp, "y")
    sw = None if sw is None else _to_arrays(sw, xp, "sample_weight")
    n = _n_rows([x, y, sw], "x/y")
    if reset:
        model.reset_metrics()
    logs = {}
    for _, idx in _batches(n, batch_size, None):
        data = (_take(x, idx), _take(y, idx)) if sw is None else (_take(x, idx), _take(y, idx), sw[idx])
        logs = _result_logs(model.test_step(data))
    return logs


def predict(model, x, batch_size):
    xp = model._xp
    x = _to_arrays(x, xp, "x")
    n = _n_rows(x, "x")
    parts = []
    for _, idx in _batches(n, batch_size, None):
        out = model.predict_step(_take(x, idx))
        parts.append(map_structure(lambda t: backend.to_xp(_tape.value_of(t), xp), out))
    if not parts:
        raise ValueError("predict: the input is empty")
    return concat_predictions(model, parts)


def concat_predictions(model, parts):
    """predict_step outputs of consecutive batches joined along the batch axis."""
    xp = model._xp
    parts = [map_structure(lambda t: backend.to_xp(_tape.value_of(t), xp), p) for p in parts]
    first = parts[0]
    if isinstance(first, dict):
        return {k: xp.concatenate([p[k] for p in parts]) for k in first}
    if isinstance(first, (list, tuple)):
        return [xp.concatenate([p[i] for p in parts]) for i in range(len(first))]
    return xp.concatenate(parts)


def class_weight_to_sample_weight(class_weight, y, sw, xp):
    """Keras's class_weight: each sample weighted by its class's weight (classes from integer
    labels, the argmax of one-hot rows, or rounded binary targets; absent classes weigh 1), times
    any sample_weight. Single-output models only, as in Keras."""
    if not isinstance(class_weight, dict):
        raise ValueError(f"class_weight: expected a dict {{class index: weight}}, got {type(class_weight).__name__}")
    if isinstance(y, dict) or (isinstance(y, (list, tuple)) and len(y) != 1):
        raise ValueError("`class_weight` is only supported for Models with a single output.")
    if isinstance(y, (list, tuple)):
        y = y[0]
    yv = backend.to_numpy(_tape.value_of(y))
    if yv.ndim > 1 and yv.shape[-1] != 1:
        labels = yv.reshape(yv.shape[0], -1).argmax(axis=1)
    else:
        labels = np.round(yv.reshape(yv.shape[0])).astype(np.int64)
    table = np.ones(max(int(labels.max(initial=0)), max(int(k) for k in class_weight)) + 1)
    for k, v in class_weight.items():
        table[int(k)] = float(v)
    w = xp.asarray(table[labels].astype(np.float32))
    return w if sw is None else backend.to_xp(_tape.value_of(sw), xp, dtype=np.float32).reshape(-1) * w


def default_train_step(model, data):
    x, y, sw = unpack_x_y_sample_weight(data)
    chain = model.__dict__.get("_chain_step")
    if chain and chain.valid(x):
        return chain.run(x, y, sw)
    with GradientTape() as tape:
        y_pred = model(x, training=True)
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sw)
    _check_scalar(loss)
    variables = model.trainable_variables
    grads = tape.gradient(loss, variables)
    _tape.warn_missing(variables, grads)
    model.optimizer.apply_gradients(zip(grads, variables))
    if (
        chain is None
        and not model.__dict__.get("_run_eagerly")
        and type(model).train_step.__qualname__ == "Model.train_step"
    ):  # not under a user's override
        from .traced import trace_chain

        model.__dict__["_chain_step"] = trace_chain(model, x, loss, variables) or False
    return model.compute_metrics(x, y, y_pred, sw)


def _check_scalar(loss):
    v = _tape.value_of(loss)
    if np.ndim(v) != 0:
        raise ValueError(
            f"The loss must be a scalar, got shape {tuple(np.shape(v))}: reduce it (e.g. "
            f"keras.ops.mean) before taking gradients"
        )
