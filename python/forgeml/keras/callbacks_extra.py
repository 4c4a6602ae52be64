"""ReduceLROnPlateau, CSVLogger and BackupAndRestore with Keras 3's arguments and behaviour."""

from __future__ import annotations

import csv
import os
import shutil
import warnings

import numpy as np

from .callbacks import Callback

__all__ = ["ReduceLROnPlateau", "CSVLogger", "BackupAndRestore"]


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` after `patience` epochs without an improvement of
    more than `min_delta` in `monitor`; then wait `cooldown` epochs; never below `min_lr`."""

    def __init__(
        self,
        monitor="val_loss",
        factor=0.1,
        patience=10,
        verbose=0,
        mode="auto",
        min_delta=1e-4,
        cooldown=0,
        min_lr=0.0,
        **kwargs,
    ):
        super().__init__()
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0. Received factor={factor}")
        self.monitor, self.factor, self.patience, self.verbose = monitor, float(factor), int(patience), verbose
        self.min_delta, self.cooldown, self.min_lr = float(min_delta), int(cooldown), float(min_lr)
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"Learning rate reduction mode {mode} is unknown, fallback to auto mode.", stacklevel=2)
            mode = "auto"
        # Keras's auto rule here: maximise only what names an accuracy
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode
        self._reset()

    def _reset(self):
        self.best = np.inf if self.mode == "min" else -np.inf
        self.cooldown_counter, self.wait = 0, 0

    def _improved(self, current):
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        opt = self.model.optimizer
        logs["learning_rate"] = float(opt.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"Learning rate reduction is conditioned on metric `{self.monitor}` which is not "
                f"available. Available metrics are: {','.join(logs)}.",
                stacklevel=2,
            )
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(opt.learning_rate)
                if np.float32(old) > np.float32(self.min_lr):
                    new = max(old * self.factor, self.min_lr)
                    opt.learning_rate = new
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                    self.cooldown_counter, self.wait = self.cooldown, 0


class CSVLogger(Callback):
    """One row per epoch: epoch, then the logs in sorted key order (header written once)."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.sep, self.append = os.fspath(filename), separator, bool(append)
        self.keys, self.writer, self._file = None, None, None

    def on_train_begin(self, logs=None):
        has_rows = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._header_done = has_rows
        self.keys, self.writer = None, None

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if self.keys is None:
            self.keys = sorted(logs)
        if self.writer is None:
            self.writer = csv.DictWriter(self._file, fieldnames=["epoch", *self.keys], delimiter=self.sep)
            if not self._header_done:
                self.writer.writeheader()
        row = {"epoch": epoch, **{k: logs.get(k, "NA") for k in self.keys}}
        self.writer.writerow(row)
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file, self.writer = None, None


class BackupAndRestore(Callback):
    """Saves weights, optimizer state and the epoch to `backup_dir` after every epoch; a fit
    started with a backup present restores them and resumes after the saved epoch. The backup
    is deleted when training ends normally (delete_checkpoint=True)."""

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False, delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("Empty `backup_dir` argument passed")
        if save_freq != "epoch":
            raise NotImplementedError("BackupAndRestore: only save_freq='epoch' is supported by forgeml.keras")
        self.backup_dir, self.save_freq = os.fspath(backup_dir), save_freq
        self.delete_checkpoint = bool(delete_checkpoint)
        self._path = os.path.join(self.backup_dir, "backup.npz")

    def on_train_begin(self, logs=None):
        if not os.path.exists(self._path):
            return
        with np.load(self._path, allow_pickle=False) as data:
            self.model.set_weights([data[f"w{i}"] for i in range(int(data["n_weights"]))])
            opt = self.model.optimizer
            self.model._ready()  # binds the optimizer so its slots exist
            for name, slot in getattr(opt, "slots", {}).items():
                if f"slot_{name}" in data and data[f"slot_{name}"].shape == tuple(slot.shape):
                    slot[...] = data[f"slot_{name}"]
            opt.iterations.value = int(data["iterations"])
            if "u_product" in data:
                opt._u_product = float(data["u_product"])
            self.model._initial_epoch = int(data["epoch"]) + 1

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.backup_dir, exist_ok=True)
        opt = self.model.optimizer
        arrays = {f"w{i}": w for i, w in enumerate(self.model.get_weights())}
        arrays.update({f"slot_{k}": np.asarray(v) for k, v in getattr(opt, "slots", {}).items()})
        if hasattr(opt, "_u_product"):
            arrays["u_product"] = np.float64(opt._u_product)
        tmp = self._path + ".tmp.npz"
        np.savez(tmp, n_weights=len(self.model.get_weights()), iterations=opt.iterations.value, epoch=epoch, **arrays)
        os.replace(tmp, self._path)  # a crash mid-write never leaves a half backup

    def on_train_end(self, logs=None):
        self.model._initial_epoch = None
        if self.delete_checkpoint and os.path.isdir(self.backup_dir):
            shutil.rmtree(self.backup_dir)
