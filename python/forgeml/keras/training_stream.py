"""fit / evaluate / predict of tape-trained models (subclassed, functional, custom train_step) over
batch streams: Python generators, keras.utils.PyDataset / Sequence, forgeml.data Datasets. Each
batch goes through the model's own train_step / test_step / predict_step, as Keras's trainer does;
training.py holds the array loops and the helpers both share."""

from __future__ import annotations

from . import callbacks as callbacks_module, training
from .data_adapters import StreamAdapter, is_stream

__all__ = ["fit", "evaluate", "predict"]


def _data(model, x, y, sw, class_weight=None):
    xp = model._xp
    x, y = training._to_arrays(x, xp, "x"), training._to_arrays(y, xp, "y")
    sw = None if sw is None else training._to_arrays(sw, xp, "sample_weight")
    if class_weight is not None:
        sw = training.class_weight_to_sample_weight(class_weight, y, sw, xp)
    return (x,) if y is None else ((x, y) if sw is None else (x, y, sw))


def _built(model, x):
    if not model.__dict__.get("_general_built"):
        model._ensure_built_for(training._to_arrays(x, model._xp, "x"))


def fit(
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
    validation_batch_size,
):
    source = StreamAdapter(data, steps_per_epoch, shuffle)
    history = callbacks_module.History()
    cbs = list(callbacks or [])
    if verbose:
        cbs.insert(0, callbacks_module.ProgbarLogger(verbose))
    cbs.append(history)
    params = {"verbose": verbose, "epochs": epochs, "steps": source.num_steps(), "mode": "fit"}
    cbl = callbacks_module.CallbackList(cbs, model, params)
    for prog in cbl.callbacks:
        if isinstance(prog, callbacks_module.ProgbarLogger):
            prog._values_fn = lambda: training._logs(model)
    model.stop_training = False
    model.history = history
    cbl.call("on_train_begin", None)
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        cbl.call("on_epoch_begin", epoch, None)
        logs, seen = {}, 0
        for step, (x, y, sw) in enumerate(source.epoch()):
            _built(model, x)
            if cbl.wants_batches:
                cbl.call("on_train_batch_begin", step, None)
            logs = training._result_logs(model.train_step(_data(model, x, y, sw, class_weight)))
            seen += 1
            if cbl.wants_batches:
                cbl.call("on_train_batch_end", step, logs)
            if model.stop_training:
                break
        if seen == 0:
            if epoch == initial_epoch:
                raise ValueError("fit: the data yielded no batches")
            break
        logs = dict(logs)
        if validation_data is not None and (epoch + 1) % validation_freq == 0:
            vlogs = _validate(model, validation_data, validation_steps, validation_batch_size)
            logs.update({"val_" + k: v for k, v in vlogs.items()})
        cbl.call("on_epoch_end", epoch, logs)
        if model.stop_training or source.exhausted:
            break
    cbl.call("on_train_end", None)
    history.params, history.model = params, model
    return history


def _validate(model, validation_data, steps, batch_size):
    if is_stream(validation_data):
        return evaluate(model, validation_data, steps)
    vd = tuple(validation_data)
    if len(vd) not in (2, 3):
        raise ValueError("validation_data: expected (x_val, y_val), (x_val, y_val, sample_weight_val) or a dataset")
    return training.evaluate(model, vd[0], vd[1], vd[2] if len(vd) == 3 else None, batch_size or 32)


def evaluate(model, data, steps):
    model.reset_metrics()
    logs = None
    for x, y, sw in StreamAdapter(data, steps).epoch():
        _built(model, x)
        logs = training._result_logs(model.test_step(_data(model, x, y, sw)))
    if logs is None:
        raise ValueError("evaluate: the data yielded no batches")
    return logs


def predict(model, data, steps):
    parts = []
    for x, _, _ in StreamAdapter(data, steps).epoch():
        _built(model, x)
        out = model.predict_step(_data(model, x, None, None))
        parts.append(out)
    if not parts:
        raise ValueError("predict: the data yielded no batches")
    return training.concat_predictions(model, parts)
