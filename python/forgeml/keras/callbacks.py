"""Callbacks: History, ProgbarLogger (Keras-style progress bar), EarlyStopping, ModelCheckpoint,
LearningRateScheduler, LambdaCallback. Batch hooks are only called when some callback defines
them, so the training loop pays nothing for the usual epoch-level callbacks."""
from __future__ import annotations

import math
import os
import sys
import time

import numpy as np

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger", "EarlyStopping", "ModelCheckpoint",
           "LearningRateScheduler", "LambdaCallback", "TerminateOnNaN", "Progbar"]


class Callback:
    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): pass
    def on_train_batch_end(self, batch, logs=None): pass
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass


_BATCH_HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end",
                "on_predict_batch_begin", "on_predict_batch_end")


def _overrides(cb, name):
    return getattr(type(cb), name, None) is not getattr(Callback, name)


class CallbackList:
    def __init__(self, callbacks, model, params):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(params)
        self.wants_batches = any(cb._wants_batches() if isinstance(cb, ProgbarLogger) else
                                 any(_overrides(cb, h) or h in getattr(cb, "_instance_hooks", ())
                                     for h in _BATCH_HOOKS)
                                 for cb in self.callbacks)

        # True when the only per-batch consumer is a live progress bar (it can be fed in chunks)
        self.only_progbar = all(isinstance(cb, (ProgbarLogger, History)) for cb in self.callbacks)

    def call(self, hook, *args):
        for cb in self.callbacks:
            getattr(cb, hook)(*args)


class History(Callback):
    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


# ---------------------------------------------------------------- progress display

def _format_time(seconds, unit="step"):
    if seconds >= 1:
        return f"{seconds:.0f}s/{unit}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit}"
    return f"{seconds * 1e6:.0f}us/{unit}"


def _format_value(v):
    if isinstance(v, float) and (abs(v) >= 1e-3 or v == 0):
        return f"{v:.4f}"
    return f"{v:.4e}" if isinstance(v, float) else str(v)


class Progbar:
    """Keras's bar: ``1875/1875 ━━━━━━━━━━━━━━━━━━━━ 2s 1ms/step - accuracy: 0.8712 - loss: 0.4456``.
    Redrawn in place (at most every `interval` seconds) on a terminal; elsewhere only the final line
    is printed. verbose=2 prints one summary line."""

    def __init__(self, target, width=20, verbose=1, interval=0.05, unit_name="step", file=None):
        self.target, self.width, self.verbose, self.interval = target, width, verbose, interval
        self.unit_name = unit_name
        self.file = file or sys.stdout
        self._dynamic = hasattr(self.file, "isatty") and self.file.isatty()
        self._start = time.time()
        self._last = 0.0
        self._prev_len = 0

    def update(self, current, values_fn=None, finalize=False):
        now = time.time()
        if not finalize and (now - self._last < self.interval or not self._dynamic or self.verbose != 1):
            return
        self._last = now
        values = values_fn() if values_fn else {}
        elapsed = now - self._start
        per_unit = elapsed / current if current else 0.0
        metrics = "".join(f" - {k}: {_format_value(v)}" for k, v in sorted(values.items()))
        width = len(str(self.target)) if self.target else 1
        if self.verbose == 2:
            if finalize:
                print(f"{current:{width}d}/{self.target} - {elapsed:.0f}s - {_format_time(per_unit, self.unit_name)}"
                      f"{metrics}", file=self.file, flush=True)
            return
        done = int(self.width * current / self.target) if self.target else self.width
        if self._dynamic:
            bar = "\x1b[1m" + "━" * done + "\x1b[0m" + "\x1b[37m" + "━" * (self.width - done) + "\x1b[0m"
        else:
            bar = "━" * self.width
        if finalize:
            timing = f" {elapsed:.0f}s {_format_time(per_unit, self.unit_name)}"
        else:
            eta = per_unit * (self.target - current) if self.target else 0
            timing = f" {eta:.0f}s {_format_time(per_unit, self.unit_name)}" if eta < 60 else \
                f" {int(eta // 60)}:{int(eta % 60):02d} {_format_time(per_unit, self.unit_name)}"
        line = f"{current:{width}d}/{self.target} {bar}{timing}{metrics}"
        pad = " " * max(0, self._prev_len - len(line))
        self._prev_len = len(line)
        if self._dynamic:
            self.file.write("\r" + line + pad + ("\n" if finalize else ""))
        elif finalize:
            self.file.write(line + "\n")
        self.file.flush()


class ProgbarLogger(Callback):
    """Drives a Progbar per epoch (fit) or per run (evaluate / predict)."""

    def __init__(self, verbose=1):
        super().__init__()
        self.verbose = verbose
        self._bar = None
        self._values_fn = None

    def _wants_batches(self):
        """Only a live terminal bar needs per-batch calls."""
        return self.verbose == 1 and hasattr(sys.stdout, "isatty") and sys.stdout.isatty()

    def _new_bar(self, target):
        self._bar = Progbar(target, verbose=self.verbose)

    def on_epoch_begin(self, epoch, logs=None):
        if self.params.get("epochs", 1) and self.verbose:
            print(f"Epoch {epoch + 1}/{self.params['epochs']}", flush=True)
        self._new_bar(self.params.get("steps"))

    def on_train_batch_end(self, batch, logs=None):
        self._bar.update(batch + 1, self._values_fn)

    def on_epoch_end(self, epoch, logs=None):
        self._bar.update(self.params.get("steps"), lambda: dict(logs or {}), finalize=True)

    def on_test_begin(self, logs=None):
        if self.params.get("mode") == "evaluate":
            self._new_bar(self.params.get("steps"))

    def on_test_batch_end(self, batch, logs=None):
        if self.params.get("mode") == "evaluate":
            self._bar.update(batch + 1, self._values_fn)

    def on_test_end(self, logs=None):
        if self.params.get("mode") == "evaluate":
            self._bar.update(self.params.get("steps"), lambda: dict(logs or {}), finalize=True)

    def on_predict_begin(self, logs=None):
        self._new_bar(self.params.get("steps"))

    def on_predict_batch_end(self, batch, logs=None):
        self._bar.update(batch + 1, None)

    def on_predict_end(self, logs=None):
        self._bar.update(self.params.get("steps"), None, finalize=True)


# ---------------------------------------------------------------- monitoring callbacks

def _monitor_op(mode, monitor):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode: expected 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        mode = "max" if any(k in monitor for k in ("acc", "auc", "precision", "recall")) else "min"
    return mode


class EarlyStopping(Callback):
    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor, self.min_delta, self.patience = monitor, abs(min_delta), patience
        self.verbose, self.baseline, self.restore_best_weights = verbose, baseline, restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.mode = _monitor_op(mode, monitor)
        self.stopped_epoch = 0

    def _better(self, a, b):
        if b is None:
            return True
        return a < b - self.min_delta if self.mode == "min" else a > b + self.min_delta

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best, self.best_weights = None, None

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            import warnings
            warnings.warn(f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                          f"Available metrics are: {','.join(logs or {})}", stacklevel=2)
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
        self.wait += 1
        if self._better(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._better(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None and self.stopped_epoch > 0:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Saves the model (``.keras``) or its weights (``.weights.npz``/``.weights.h5`` name, npz content)
    after each epoch, or only when the monitored value improves. ``filepath`` may hold
    ``{epoch:02d}`` and log keys."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__()
        filepath = os.fspath(filepath)
        if save_freq != "epoch":
            raise NotImplementedError("ModelCheckpoint: only save_freq='epoch' is supported")
        if save_weights_only:
            if not filepath.endswith((".weights.h5", ".weights.npz")):
                raise ValueError("When using `save_weights_only=True` in `ModelCheckpoint`, the filepath "
                                 f"provided must end in `.weights.h5` (or `.weights.npz`). Received: filepath={filepath}")
        elif not filepath.endswith(".keras"):
            raise ValueError("The filepath provided must end in `.keras` (Keras model format). "
                             f"Received: filepath={filepath}")
        self.filepath, self.monitor, self.verbose = filepath, monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.mode = _monitor_op(mode, monitor)
        self.best = initial_value_threshold

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                import warnings
                warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=2)
                return
            better = self.best is None or (current < self.best if self.mode == "min" else current > self.best)
            if not better:
                if self.verbose:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            if self.verbose:
                prev = "inf" if self.best is None else f"{self.best:.5f}"
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {prev} to {current:.5f}, saving model to {path}")
            self.best = current
        elif self.verbose:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class LearningRateScheduler(Callback):
    """schedule(epoch, lr) -> new lr, set at the start of each epoch."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.model.optimizer
        try:
            lr = self.schedule(epoch, float(opt.learning_rate))
        except TypeError:  # a one-argument schedule
            lr = self.schedule(epoch)
        lr = float(lr)
        if not math.isfinite(lr):
            raise ValueError(f'The output of the "schedule" function should be a float. Got: {lr}')
        opt.learning_rate = lr
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class LambdaCallback(Callback):
    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        for name, fn in dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                             on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin,
                             on_train_batch_end=on_train_batch_end, **kwargs).items():
            if fn is not None:
                setattr(self, name, fn)
        # instance attributes defeat the class-level override check: record them
        self._instance_hooks = {k for k in _BATCH_HOOKS if k in self.__dict__}


class TerminateOnNaN(Callback):
    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


from .callbacks_extra import BackupAndRestore, CSVLogger, ReduceLROnPlateau  # noqa: E402

__all__ += ["ReduceLROnPlateau", "CSVLogger", "BackupAndRestore"]
