"""fit / evaluate / predict over batch streams (generators, PyDataset, forgeml.data.Dataset).

The step is the model's own (_train_step, _loss_and_pred): only where batches come from
differs from the array path. Each batch is validated like array input.
"""

from __future__ import annotations

import numpy as np

from . import callbacks as callbacks_module
from .data_adapters import StreamAdapter, is_stream

__all__ = ["fit_stream", "evaluate_stream", "predict_stream"]


def _batch(model, x, y, sw, need_y=True, class_weight=None):
    xb = model._prepare_x(x)
    n = int(xb.shape[0])
    if not need_y:
        return xb, None, None
    yb = model._prepare_y(y, n)
    swb = model._prepare_sw(sw, class_weight, y, yb, n)
    return xb, yb, swb


def _callbacks(model, callbacks, verbose, params):
    cbs = list(callbacks or [])
    if verbose:
        cbs.insert(0, callbacks_module.ProgbarLogger(verbose))
    return cbs, callbacks_module.CallbackList


def fit_stream(
    model,
    data,
    epochs,
    verbose,
    callbacks,
    validation_data,
    steps_per_epoch,
    initial_epoch,
    validation_steps,
    validation_freq,
    shuffle,
    class_weight,
):
    source = StreamAdapter(data, steps_per_epoch, shuffle)
    history = callbacks_module.History()
    cbs, cbl_type = _callbacks(model, callbacks, verbose, None)
    cbs.append(history)
    params = {"verbose": verbose, "epochs": epochs, "steps": source.num_steps(), "mode": "fit"}
    cbl = cbl_type(cbs, model, params)
    for cb in cbl.callbacks:
        if isinstance(cb, callbacks_module.ProgbarLogger):
            cb._values_fn = model._logs
    model.stop_training = False
    model.history = history
    model._initial_epoch = None
    started = False
    for epoch in range(initial_epoch, epochs):
        seen = 0
        for step, (x, y, sw) in enumerate(source.epoch()):
            xb, yb, swb = _batch(model, x, y, sw, class_weight=class_weight)
            if not started:
                model._ready()
                cbl.call("on_train_begin", None)
                started = True
                if model._initial_epoch and model._initial_epoch > epoch:  # BackupAndRestore resumed
                    break
            if step == 0:
                model._reset_metrics()
                model._sync_trainable()
                cbl.call("on_epoch_begin", epoch, None)
            if cbl.wants_batches:
                cbl.call("on_train_batch_begin", step, None)
            model._train_step(xb, yb, swb)
            seen += 1
            if cbl.wants_batches:
                cbl.call("on_train_batch_end", step, model._logs())
            if model.stop_training:
                break
        if started and model._initial_epoch and model._initial_epoch > epoch:
            continue
        if seen == 0:
            if not started:
                raise ValueError("fit: the data yielded no batches")
            break
        logs = model._logs()
        if validation_data is not None and (epoch + 1) % validation_freq == 0:
            logs.update(_validation_logs(model, validation_data, validation_steps))
        cbl.call("on_epoch_end", epoch, logs)
        if model.stop_training or source.exhausted:
            break
    if started:
        cbl.call("on_train_end", None)
    history.params, history.model = params, model
    return history


def _validation_logs(model, validation_data, steps):
    if is_stream(validation_data):
        return _evaluate_batches(model, StreamAdapter(validation_data, steps).epoch(), "val_")
    vd = tuple(validation_data)
    if len(vd) not in (2, 3):
        raise ValueError("validation_data: expected (x_val, y_val), (x_val, y_val, sample_weight_val) or a dataset")
    vx = model._prepare_x(vd[0], "validation_data x")
    n = int(vx.shape[0])
    vy = model._prepare_y(vd[1], n, "validation_data y")
    vsw = model._prepare_sw(vd[2] if len(vd) == 3 else None, None, None, vy, n)
    return model._evaluate_arrays(vx, vy, vsw, 32, "val_")


def _evaluate_batches(model, batches, prefix=""):
    model._reset_metrics()
    for x, y, sw in batches:
        xb, yb, swb = _batch(model, x, y, sw)
        model._ready()
        total, y_pred, _ = model._loss_and_pred(xb, yb, swb, False, False)
        model._update_metrics(yb, y_pred, swb, total, int(xb.shape[0]))
    return model._logs(prefix)


def evaluate_stream(model, data, steps, return_dict):
    logs = _evaluate_batches(model, StreamAdapter(data, steps).epoch())
    if return_dict:
        return logs
    values = [logs["loss"]] + [logs[m.name] for m, _ in model._metrics]
    return values[0] if len(values) == 1 else values


def predict_stream(model, data, steps):
    outs = []
    for x, _, _ in StreamAdapter(data, steps).epoch():
        xb, _, _ = _batch(model, x, None, None, need_y=False)
        outs.append(model._xp.asarray(model._forward(xb, False)).copy())
    if not outs:
        raise ValueError("predict: the data yielded no batches")
    return model._xp.concatenate(outs) if model._xp is not np else np.concatenate(outs)
