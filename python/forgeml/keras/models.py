"""Model and Sequential: building, compile, fit / evaluate / predict, weights, summary, saving.

A model is a chain of layers. ``build`` creates the weights and packs every trainable weight into
one flat float32 buffer (and their gradients into another), so the optimizer updates them in a few
whole-array passes. One training step is: each layer's ``forward`` (the matmuls with fused bias and
activation), the loss (softmax/sigmoid fused with cross-entropy when the output activation allows),
each layer's ``backward`` down to the first trainable layer, one optimizer ``apply``. Data is
converted and validated once per fit; the step itself does no validation.
"""
from __future__ import annotations

import json
import math

import numpy as np

from . import backend, callbacks as callbacks_module, losses as losses_module, metrics as metrics_module
from . import _fast, data_adapters, optimizers as optimizers_module, regularizers, trainer_stream, training, utils
from . import quantization, training_stream
from . import constraints as constraints_module, distribution as distribution_module, loss_mask
from .autodiff import tape as _tape
from .layers import _calling, masking
from .layers.base import InputLayer, KerasTensor, Layer, unique_name

__all__ = ["Model", "Sequential", "load_model", "clone_model", "model_from_json"]


def _n_samples(a):
    return int(a.shape[0])


class Model:
    """A chain of layers: ``Model(inputs, outputs)`` for a functional chain built from
    ``keras.Input``; ``Sequential`` for a list of layers."""

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True, **kwargs):
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}")
        self.__dict__.setdefault("_tracked", [])
        self._graph = None
        self._general_spec = None
        self._compiled_loss = self._compiled_metrics = None
        self._loss_tracker = metrics_module.Mean(name="loss")
        self.name = name or unique_name(_prefix(type(self)))
        self.trainable = bool(trainable)
        self._layers: list[Layer] = []
        self._input_shape = None  # features shape, no batch dim
        self.built = False
        self._xp = np
        self.device = "cpu"
        self.optimizer = None
        self.loss = None
        self.compiled = False
        self._metrics = []
        self.stop_training = False
        self.history = None
        self._trainable_sig = None
        self._params = self._grads = None
        self._fast = None
        if inputs is not None or outputs is not None:
            self._init_functional(inputs, outputs)

    def __setattr__(self, name, value):
        # layers (and models) assigned as attributes of a subclassed model are its layers, as in Keras
        if not name.startswith("_") and name not in ("optimizer", "loss", "history") and \
                isinstance(value, (Layer, Model, list, tuple)):
            tracked = self.__dict__.setdefault("_tracked", [])
            for item in (value if isinstance(value, (list, tuple)) else [value]):
                if isinstance(item, (Layer, Model)) and item is not self and all(item is not t for t in tracked):
                    tracked.append(item)
        object.__setattr__(self, name, value)

    def _init_functional(self, inputs, outputs):
        if not _is_chain(inputs, outputs):
            from .functional import Graph
            self._graph = Graph(inputs, outputs)
            self._input_shape = tuple(self._graph.inputs[0].shape[1:])
            self.built = True
            return
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != 1:
                raise NotImplementedError("forgeml.keras models have one input")
            inputs = inputs[0]
        if isinstance(outputs, (list, tuple)):
            if len(outputs) != 1:
                raise NotImplementedError("forgeml.keras models have one output")
            outputs = outputs[0]
        if not isinstance(inputs, KerasTensor) or not isinstance(outputs, KerasTensor):
            raise TypeError("Model(inputs, outputs): expected keras.Input(...) and the tensor a chain of layers "
                            "returned for it")
        chain, t = [], outputs
        while t is not None and t is not inputs:
            if t.source is None:
                raise ValueError("Model(inputs, outputs): outputs are not computed from inputs")
            chain.append(t.source)
            t = t.parent
        if t is None:
            raise ValueError("Model(inputs, outputs): outputs are not computed from inputs")
        self._layers = chain[::-1]
        self._input_shape = tuple(inputs.shape[1:])
        self.build((None, *self._input_shape))

    # ---------------------------------------------------------------- structure
    @property
    def layers(self) -> list[Layer]:
        return list(self._all_layers())

    def _all_layers(self):
        if self._graph is not None:
            return self._graph.layers
        return self._layers if self._layers else self.__dict__.get("_tracked", [])

    def get_layer(self, name=None, index=None):
        layers = self._all_layers()
        if index is not None:
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: {[l.name for l in layers]}.")

    @property
    def input_shape(self):
        return None if self._input_shape is None else (None, *self._input_shape)

    @property
    def output_shape(self):
        return self._layers[-1].output_shape if self.built and self._layers else None

    @property
    def weights(self):
        return _unique([w for layer in self._all_layers() for w in layer.weights])

    variables = weights

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        return _unique([w for layer in self._all_layers() for w in layer.trainable_weights])

    trainable_variables = trainable_weights

    @property
    def non_trainable_weights(self):
        if not self.trainable:
            return self.weights
        train = self.trainable_weights
        return [w for w in self.weights if all(w is not t for t in train)]

    non_trainable_variables = non_trainable_weights

    def count_params(self) -> int:
        return int(sum(int(np.prod(w.shape)) for w in self.weights))

    def get_weights(self) -> list:
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights) -> None:
        weights = list(weights)
        mine = self.weights
        if len(weights) != len(mine):
            raise ValueError(f"You called `set_weights(weights)` on model {self.name!r} with a weight list of length "
                             f"{len(weights)}, but the model was expecting {len(mine)} weights.")
        for var, w in zip(mine, weights):
            if tuple(np.shape(w)) != var.shape:
                raise ValueError(f"Weight {var.path!r}: expected shape {var.shape}, got {tuple(np.shape(w))}")
        for var, w in zip(mine, weights):
            var.assign(w)

    # ---------------------------------------------------------------- building
    def build(self, input_shape=None):
        """input_shape includes the batch dimension, e.g. (None, 100)."""
        if self._is_general_model():
            return self._build_general(input_shape)
        if input_shape is not None:
            self._input_shape = tuple(input_shape)[1:]
        if self._input_shape is None:
            raise ValueError(f"Model {self.name!r} cannot be built without an input shape: give the first layer "
                             "input_shape=..., start with keras.Input(shape=...), or call fit/predict on data")
        if not self._layers:
            raise ValueError(f"Model {self.name!r} has no layers")
        if not self.built:
            self.device = backend._device.current_device()
            self._xp = backend.xp_for_device(self.device)
        shape = (None, *self._input_shape)
        for layer in self._layers:
            if layer.built and layer.xp is not self._xp:
                raise ValueError(f"Layer {layer.name!r} lives on another device than model {self.name!r}")
            shape = layer._build_once(shape, self._xp)
        self._pack()
        self.built = True

    def _ensure_built(self, x):
        if self.built:
            return
        if self._input_shape is None:
            self._input_shape = tuple(x.shape[1:])
        dev = backend.device_of_input(x)
        with backend._device.device(dev):
            self.build()

    def _pack(self):
        """Every trainable weight becomes a view into one flat buffer; gradients likewise."""
        xp = self._xp
        tvars, owners = [], []
        for i, layer in enumerate(self._layers):
            for v in layer._weights:
                if v.trainable:
                    tvars.append(v)
                    owners.append(i)
        total = sum(int(v.value.size) for v in tvars)
        params = xp.empty(total, dtype=np.float32)
        grads = xp.zeros(total, dtype=np.float32)
        segments, off = [], 0
        for v in tvars:
            n = int(v.value.size)
            params[off:off + n] = v.value.reshape(-1)
            v.value = params[off:off + n].reshape(v.value.shape)
            v.grad = grads[off:off + n].reshape(v.value.shape)
            segments.append((off, off + n))
            off += n
        self._params, self._grads = params, grads
        self._segments, self._segment_owner = segments, owners
        self._trainable_sig = None
        self._fast = None
        if self.optimizer is not None:
            self.optimizer._params = None  # new layout: fresh slots

    def _sync_trainable(self):
        """Recompute which flat ranges the optimizer updates and how far backward must go, when a
        layer's (or the model's) trainable flag changed."""
        sig = (self.trainable, *(layer.trainable for layer in self._layers))
        if sig == self._trainable_sig:
            return
        self._trainable_sig = sig
        live = [seg for seg, owner in zip(self._segments, self._segment_owner)
                if self.trainable and self._layers[owner].trainable]
        ranges = []
        for a, b in live:
            if ranges and ranges[-1][1] == a:
                ranges[-1] = (ranges[-1][0], b)
            else:
                ranges.append((a, b))
        owners = [o for seg, o in zip(self._segments, self._segment_owner)
                  if self.trainable and self._layers[o].trainable]
        self._first_trainable = min(owners) if owners else len(self._layers)
        self._ranges, self._live_segments = ranges, live
        if self.optimizer is not None:
            if self.optimizer._params is None:
                self.optimizer.build(self._params, self._grads, live, ranges)
            else:
                self.optimizer.set_ranges(live, ranges)

    # ---------------------------------------------------------------- compile
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True):
        self.optimizer = optimizers_module.get(optimizer)
        if loss is None:
            raise ValueError("compile: a loss is required (e.g. loss='sparse_categorical_crossentropy')")
        self._general_spec = None
        if self._is_general_model() or _needs_tape(loss, loss_weights, metrics, weighted_metrics):
            return self._compile_general(loss, loss_weights, metrics, weighted_metrics, run_eagerly)
        if isinstance(loss, (list, tuple, dict)):
            raise NotImplementedError("forgeml.keras models have one output: pass a single loss")
        self.loss = losses_module.get(loss)
        if isinstance(metrics, dict) or isinstance(weighted_metrics, dict):
            raise NotImplementedError("forgeml.keras models have one output: pass metrics as a list")
        self._metric_specs = [(m, False) for m in (metrics or [])] + [(m, True) for m in (weighted_metrics or [])]
        self._metrics = None  # resolved once the output shape is known
        self.compiled = True
        self._compile_args = {"optimizer": optimizers_module.serialize(self.optimizer),
                              "loss": losses_module.serialize(self.loss),
                              "metrics": [m if isinstance(m, str) else getattr(m, "name", str(m)) for m in metrics or []],
                              "weighted_metrics": [m if isinstance(m, str) else getattr(m, "name", str(m))
                                                   for m in weighted_metrics or []]}
        if self.built:
            self._trainable_sig = None

    def _assert_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(f"You must call `compile()` before using the model (in `{what}`).")

    def _ready(self):
        """Resolve metrics, the loss fusion and the optimizer binding once the model is built."""
        if self._metrics is None:
            self._metrics = [(metrics_module.resolve(m, self.loss, self.output_shape), w)
                             for m, w in self._metric_specs]
            last = self._layers[-1]
            act = getattr(last, "activation", None)
            self._fused = act is not None and self.loss.fuses(act) and hasattr(last, "forward") and \
                "logits" in last.forward.__code__.co_varnames
        self._sync_trainable()
        self._reg_layers = [layer for layer in self._layers if regularizers.has_penalties([layer])]
        # constrained weights are projected after every step: the whole-epoch kernel cannot stop for it
        self._constrained = [v for v in self.trainable_weights if v.constraint is not None]
        self._fast = None if self._reg_layers or self._constrained else _fast.plan(self)

    @property
    def metrics_names(self):
        if not self.compiled:
            return []
        names = ["loss"]
        if self._metrics is not None:
            names += [m.name for m, _ in self._metrics]
        else:
            names += [m if isinstance(m, str) else getattr(m, "name", str(m)) for m, _ in self._metric_specs]
        return names

    @property
    def metrics(self):
        if self._general_mode():
            per_output = [t for t in self._compiled_loss.trackers if t is not None] \
                if self._compiled_loss is not None else []
            return [self._loss_tracker] + per_output + ([m for _, m in self._compiled_metrics.metrics]
                                                        if self._compiled_metrics is not None else [])
        return [m for m, _ in (self._metrics or [])]

    # ---------------------------------------------------------------- data
    def _prepare_x(self, x, name="x"):
        if type(x) is np.ndarray and self.built and self._xp is np and x.ndim > 1 and x.flags.c_contiguous \
                and x.dtype.kind in "fiub" and self._layers and x.dtype == self._layers[0]._input_dtype(x):
            self._check_features(x)  # already what the checks below would make of it: predict's common case
            return x
        if isinstance(x, (list, tuple)) and len(x) == 1 and hasattr(x[0], "shape"):
            x = x[0]
        if x is None:
            raise ValueError(f"{name}: expected an array of inputs, got None")
        if isinstance(x, dict) or (isinstance(x, (list, tuple)) and x and hasattr(x[0], "shape")
                                   and len(x) > 1 and np.ndim(x[0]) > 1):
            raise NotImplementedError(f"{name}: forgeml.keras models take a single input array")
        xp = backend.xp_of(x) if hasattr(x, "shape") else np
        first = self._layers[0] if self._layers else None
        try:
            arr = xp.asarray(x)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name}: expected an array, got {type(x).__name__} ({exc})") from None
        if arr.dtype.kind not in "fiub":
            raise TypeError(f"{name}: expected numeric data, got dtype {arr.dtype}")
        if arr.ndim == 0:
            raise ValueError(f"{name}: expected a batch of samples (at least 1-D), got a scalar")
        dtype = first._input_dtype(arr) if first is not None else np.float32
        if arr.ndim == 1 and self._input_shape is not None and len(self._input_shape) == 1 and dtype != np.int64:
            arr = arr.reshape(-1, 1)  # Keras accepts (n,) for a single feature
        self._ensure_built(arr)
        arr = backend.to_xp(arr, self._xp, dtype=dtype)
        self._check_features(arr)
        return arr

    def _check_features(self, x):
        want = self._input_shape
        got = tuple(x.shape[1:])
        if len(want) != len(got) or any(w is not None and w != g for w, g in zip(want, got)):
            first = self._layers[0]
            if len(want) == len(got):
                ax = next(i for i, (w, g) in enumerate(zip(want, got)) if w is not None and w != g)
                raise ValueError(f'Input 0 of layer "{first.name}" is incompatible with the layer: expected axis '
                                 f"{ax - len(want)} of input shape to have value {want[ax]}, but received input "
                                 f"with shape {tuple(x.shape)}")
            raise ValueError(f'Input 0 of layer "{first.name}" is incompatible with the layer: expected shape='
                             f"{(None, *want)}, found shape={tuple(x.shape)}")

    def _prepare_y(self, y, n, name="y"):
        if y is None:
            raise ValueError(f"{name}: the model needs targets (y) to compute its loss")
        y = backend.to_xp(y, self._xp) if hasattr(y, "shape") else self._xp.asarray(np.asarray(y))
        if y.shape[0] != n:
            raise ValueError(f"Data cardinality is ambiguous. Make sure all arrays contain the same number of "
                             f"samples. 'x' sizes: {n}, 'y' sizes: {y.shape[0]}")
        return self.loss.prepare_targets(y, (n, *self.output_shape[1:]))

    def _prepare_sw(self, sample_weight, class_weight, y_raw, y, n):
        sw = None
        if sample_weight is not None:
            sw = backend.to_xp(sample_weight, self._xp, dtype=np.float64).reshape(-1)
            if sw.shape[0] != n:
                raise ValueError(f"sample_weight: expected {n} weights (one per sample), got {sw.shape[0]}")
        if class_weight is not None:
            labels = y if y.ndim == 1 and y.dtype.kind in "iu" else None
            if labels is None:
                yy = y.reshape(n, -1)
                labels = (yy.argmax(axis=1) if yy.shape[1] > 1 else (yy[:, 0] > 0.5)).astype(np.int64)
            cw = np.ones(int(backend.to_numpy(labels).max()) + 1 if n else 1)
            for k, v in class_weight.items():
                if int(k) < cw.size:
                    cw[int(k)] = float(v)
            w = self._xp.asarray(cw)[labels]
            sw = w if sw is None else sw * w
        return sw

    # ---------------------------------------------------------------- the step
    def _forward(self, x, training):
        if not training and self._layers and getattr(self._layers[0], "_quantization_mode", None):  # int8 Dense: one call
            y = quantization.dense_chain(self, x)
            if y is not None:
                return y
        if not training and self.__dict__.get("_int8_fusion"):  # model.quantize: conv + pool pairs
            return quantization.forward_fused(self, x)
        for layer in self._layers:
            x = layer.forward(x, training)
        return x

    def _loss_and_pred(self, x, y, sw, training, want_grad):
        """Forward through the layers; (loss sum, predictions, gradient wrt the last layer's output
        — or its pre-activation when fused)."""
        layers = self._layers
        for layer in layers[:-1]:
            x = layer.forward(x, training)
        n = x.shape[0]
        out = layers[-1].forward(x, training, logits=True) if self._fused else layers[-1].forward(x, training)
        rows = loss_mask.masked_rows(y, out, sw, masking.mask_of(out), True)
        if rows is not None:  # a sequence mask: one row per (sample, step), Keras's weighting (loss_mask.py)
            total, y_pred, g = self._masked_loss(rows, out, want_grad)
        elif self._fused:
            total, y_pred, g = self.loss.step_logits(y, out, sw, n, want_grad)
        else:
            y_pred = out
            if want_grad:
                total, g = self.loss.step(y, y_pred, sw, n)
            else:
                total, g = float(self.loss(y, y_pred, sw)) * n, None
        if self._reg_layers:  # the loss Keras reports includes the weight penalties
            total += regularizers.penalty_total(self._reg_layers) * n
        return total, y_pred, g

    def _masked_loss(self, rows, out, want_grad):
        """(loss sum over samples, predictions, gradient) for a masked output, from its rows."""
        n2 = rows.n * rows.steps
        if self._fused:
            total, p2, g = self.loss.step_logits(rows.y, rows.y_pred, rows.weights, n2, want_grad)
            y_pred = masking.attach(p2.reshape(out.shape), masking.mask_of(out))  # metrics read the mask
        elif want_grad:
            (total, g), y_pred = self.loss.step(rows.y, rows.y_pred, rows.weights, n2), out
        else:
            total, g, y_pred = float(self.loss(rows.y, rows.y_pred, rows.weights)) * n2, None, out
        return total / rows.steps, y_pred, None if g is None else g.reshape(out.shape)

    def _train_step(self, x, y, sw):
        if self._fast is not None and self._fast.run(x, y, sw, None, x.shape[0], 0, 1):
            return
        total, y_pred, g = self._loss_and_pred(x, y, sw, True, True)
        layers, stop = self._layers, self._first_trainable
        for i in range(len(layers) - 1, stop - 1, -1):
            g = layers[i].backward(g, i > stop)
        if stop < len(layers):
            if self._reg_layers:
                regularizers.add_penalties(self._reg_layers)
            self.optimizer.apply()
            if self._constrained:
                constraints_module.apply(self._constrained)
        self._update_metrics(y, y_pred, sw, total, x.shape[0])

    def _update_metrics(self, y, y_pred, sw, total, n):
        self._loss_total += total
        self._loss_count += n
        mask = masking.mask_of(y_pred)
        for m, weighted in self._metrics:
            rows = loss_mask.masked_rows(y, y_pred, sw if weighted else None, mask, False) \
                if mask is not None and metrics_module.averages_steps(m) else None
            if rows is not None:  # mean metrics count the real steps only, as Keras's do
                m.update_state(rows.y, rows.y_pred, rows.weights)
            else:
                m.update_state(y, y_pred, sw if weighted else None)

    def _reset_metrics(self):
        if self._general_mode():
            for m in self.metrics:
                m.reset_state()
            return
        self._loss_total, self._loss_count = 0.0, 0
        for m, _ in self._metrics or []:
            m.reset_state()

    reset_metrics = _reset_metrics

    def _logs(self, prefix=""):
        logs = {prefix + "loss": self._loss_total / self._loss_count if self._loss_count else 0.0}
        for m, _ in self._metrics:
            logs[prefix + m.name] = float(m.result())
        return logs

    # ---------------------------------------------------------------- fit
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None, sample_weight=None,
            initial_epoch=0, steps_per_epoch=None, validation_steps=None, validation_batch_size=None,
            validation_freq=1):
        self._assert_compiled("fit")
        self._assert_not_quantized("fit")
        batch_size = _check_batch_size(batch_size)
        verbose = 1 if verbose == "auto" else int(verbose)
        if distribution_module.distribution() is not None:  # data parallel over MPI ranks
            x, y, sample_weight, batch_size, callbacks, verbose = distribution_module.distribution()._prepare_fit(
                self, x, y, sample_weight, batch_size, callbacks, verbose)
        if self._general_mode() and data_adapters.is_stream(x):  # generators, PyDataset, Dataset on the tape
            return training_stream.fit(self, x, epochs, verbose, callbacks, validation_data, steps_per_epoch,
                                       initial_epoch, validation_steps, validation_freq, shuffle, class_weight,
                                       validation_batch_size)
        if self._general_mode():
            self._ensure_built_for(x)
            return training.fit(self, x, y, batch_size, epochs, verbose, callbacks, validation_split,
                                validation_data, shuffle, sample_weight, initial_epoch, steps_per_epoch,
                                validation_batch_size, validation_freq, class_weight)
        if data_adapters.is_stream(x):  # generators, PyDataset, forgeml.data.Dataset
            return trainer_stream.fit_stream(self, x, epochs, verbose, callbacks, validation_data, steps_per_epoch,
                                             initial_epoch, validation_steps, validation_freq, shuffle, class_weight)
        x = self._prepare_x(x)
        n_all = _n_samples(x)
        y_all = self._prepare_y(y, n_all)
        sw_all = self._prepare_sw(sample_weight, class_weight, y, y_all, n_all)
        self._ready()
        if validation_data is None and validation_split:
            if not 0 < validation_split < 1:
                raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
            cut = int(n_all * (1 - validation_split))
            val = (x[cut:], y_all[cut:], None if sw_all is None else sw_all[cut:])
            x, y_all, sw_all = x[:cut], y_all[:cut], None if sw_all is None else sw_all[:cut]
        elif validation_data is not None:
            vd = tuple(validation_data)
            if len(vd) not in (2, 3):
                raise ValueError("validation_data: expected (x_val, y_val) or (x_val, y_val, sample_weight_val)")
            vx = self._prepare_x(vd[0], "validation_data x")
            vy = self._prepare_y(vd[1], _n_samples(vx), "validation_data y")
            vsw = self._prepare_sw(vd[2] if len(vd) == 3 else None, None, None, vy, _n_samples(vx))
            val = (vx, vy, vsw)
        else:
            val = None
        n = _n_samples(x)
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
        cbl = callbacks_module.CallbackList(cbs, self, params)
        self.stop_training = False
        self.history = history
        self._initial_epoch = None
        cbl.call("on_train_begin", None)
        initial_epoch = self._initial_epoch or initial_epoch  # BackupAndRestore resumes here
        xp = self._xp
        rng = utils.global_rng()
        for epoch in range(initial_epoch, epochs):
            self._reset_metrics()
            self._sync_trainable()
            cbl.call("on_epoch_begin", epoch, None)
            perm = rng.permutation(n) if shuffle and n > 1 else None
            fast = self._fast is not None and self._fast.labels(y_all) is not None
            if fast and not cbl.wants_batches:  # the whole epoch in one kernel call
                self._fast.run(x, y_all, sw_all, perm, batch_size, 0, steps)
            elif fast and cbl.only_progbar:  # a live bar: chunks of steps between redraws
                for prog in cbl.callbacks:
                    if isinstance(prog, callbacks_module.ProgbarLogger):
                        prog._values_fn = self._logs
                for a in range(0, steps, 32):
                    b = min(steps, a + 32)
                    self._fast.run(x, y_all, sw_all, perm, batch_size, a, b - a)
                    cbl.call("on_train_batch_end", b - 1, None)
            else:
                if perm is not None:
                    perm = perm if xp is np else xp.asarray(perm)
                    xs, ys = x[perm], y_all[perm]
                    sws = None if sw_all is None else sw_all[perm]
                else:
                    xs, ys, sws = x, y_all, sw_all
                self._train_epoch(xs, ys, sws, batch_size, steps, cbl)
            logs = self._logs()
            if val is not None and (epoch + 1) % validation_freq == 0:
                logs.update(self._evaluate_arrays(*val, validation_batch_size or batch_size, "val_"))
            cbl.call("on_epoch_end", epoch, logs)
            if self.stop_training:
                break
        cbl.call("on_train_end", None)
        history.params = params
        history.model = self
        return history

    def _train_epoch(self, xs, ys, sws, bs, steps, cbl):
        n = xs.shape[0]
        step_fn = self._train_step
        if not cbl.wants_batches:
            for s in range(steps):
                a = s * bs
                b = a + bs if a + bs < n else n
                step_fn(xs[a:b], ys[a:b], None if sws is None else sws[a:b])
            return
        for prog in cbl.callbacks:
            if isinstance(prog, callbacks_module.ProgbarLogger):
                prog._values_fn = self._logs
        for s in range(steps):
            a = s * bs
            b = min(a + bs, n)
            cbl.call("on_train_batch_begin", s, None)
            step_fn(xs[a:b], ys[a:b], None if sws is None else sws[a:b])
            cbl.call("on_train_batch_end", s, self._logs())
            if self.stop_training:
                break

    # ---------------------------------------------------------------- evaluate / predict
    def _evaluate_arrays(self, x, y, sw, batch_size, prefix="", cbl=None):
        self._reset_metrics()
        n = _n_samples(x)
        if self._fast is not None and cbl is None and n:  # all rows through the fused forward at once
            total, y_pred, _ = self.loss.step_logits(y, self._fast.logits(x), sw, n, False)
            self._update_metrics(y, y_pred, sw, total, n)
            return self._logs(prefix)
        for s in range(math.ceil(n / batch_size)):
            a, b = s * batch_size, min((s + 1) * batch_size, n)
            if cbl is not None:
                cbl.call("on_test_batch_begin", s, None)
            swb = None if sw is None else sw[a:b]
            total, y_pred, _ = self._loss_and_pred(x[a:b], y[a:b], swb, False, False)
            self._update_metrics(y[a:b], y_pred, swb, total, b - a)
            if cbl is not None:
                cbl.call("on_test_batch_end", s, self._logs())
        return self._logs(prefix)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        self._assert_compiled("evaluate")
        batch_size = _check_batch_size(batch_size)
        verbose = 1 if verbose == "auto" else int(verbose)
        if self._general_mode():
            if data_adapters.is_stream(x):
                logs = training_stream.evaluate(self, x, steps)
            else:
                self._ensure_built_for(x)
                logs = training.evaluate(self, x, y, sample_weight, batch_size)
            if return_dict:
                return logs
            values = list(logs.values())
            return values[0] if len(values) == 1 else values
        if data_adapters.is_stream(x):
            return trainer_stream.evaluate_stream(self, x, steps, return_dict)
        x = self._prepare_x(x)
        n = _n_samples(x)
        y = self._prepare_y(y, n)
        sw = self._prepare_sw(sample_weight, None, None, y, n)
        self._ready()
        nsteps = math.ceil(n / batch_size)
        if steps is not None:
            n = min(n, int(steps) * batch_size)
            x, y, sw = x[:n], y[:n], None if sw is None else sw[:n]
            nsteps = math.ceil(n / batch_size)
        cbs = list(callbacks or [])
        if verbose:
            cbs.insert(0, callbacks_module.ProgbarLogger(verbose))
        cbl = callbacks_module.CallbackList(cbs, self, {"verbose": verbose, "steps": nsteps, "mode": "evaluate"})
        for cb in cbl.callbacks:
            if isinstance(cb, callbacks_module.ProgbarLogger):
                cb._values_fn = self._logs
        cbl.call("on_test_begin", None)
        logs = self._evaluate_arrays(x, y, sw, batch_size, "", cbl if cbl.wants_batches else None)
        cbl.call("on_test_end", logs)
        if return_dict:
            return logs
        values = [logs["loss"]] + [logs[m.name] for m, _ in self._metrics]
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        batch_size = _check_batch_size(batch_size)
        verbose = 1 if verbose == "auto" else int(verbose)
        if self._general_mode() or self._is_general_model():  # compiled or not, a graph runs on the tape
            if data_adapters.is_stream(x):
                return training_stream.predict(self, x, steps)
            self._ensure_built_for(x)
            return training.predict(self, x, batch_size)
        if data_adapters.is_stream(x):
            return trainer_stream.predict_stream(self, x, steps)
        x = self._prepare_x(x)
        n = _n_samples(x)
        if steps is not None:
            n = min(n, int(steps) * batch_size)
        out = self._xp.empty((n, *self.output_shape[1:]), dtype=np.float32)
        nsteps = math.ceil(n / batch_size)
        # the layer-by-layer forward, as in model(x): compiled or not, reloaded or not, the same bits
        cbs = list(callbacks or [])
        if verbose:
            cbs.insert(0, callbacks_module.ProgbarLogger(verbose))
        cbl = callbacks_module.CallbackList(cbs, self, {"verbose": verbose, "steps": nsteps, "mode": "predict"})
        cbl.call("on_predict_begin", None)
        for s in range(nsteps):
            a, b = s * batch_size, min((s + 1) * batch_size, n)
            out[a:b] = self._forward(x[a:b], False)
            if cbl.wants_batches:
                cbl.call("on_predict_batch_end", s, None)
        cbl.call("on_predict_end", None)
        return out

    def __call__(self, *args, **kwargs):
        return _calling.call_layer(self, args, kwargs)

    def _model_call(self, inputs, *rest, training=None, mask=None, **kwargs):
        """An eager call (layers/_calling routes symbolic calls to a graph node)."""
        if rest:
            training = rest[0]
        general = self._general_mode() or self._is_general_model()
        if not general and not _tape.recording() and not isinstance(inputs, (list, tuple, dict)) \
                and type(inputs) is not _tape.Tensor and not _tape.is_tensor(_tape.lift(inputs)):
            x = self._prepare_x(inputs)
            return self._forward(x, bool(training)).copy()
        inputs = _calling.map_structure(_floatx, inputs)
        self._ensure_built_for(inputs)
        self._clear_losses()
        if type(self).call is Model.call:
            return self.call(inputs, training=bool(training))
        with _tape.layer_scope(self):
            return self.call(inputs, **_calling.call_kwargs(self.call, {"training": bool(training), **kwargs}))

    def call(self, inputs, training=None, mask=None):
        """A functional graph replays its nodes; a chain calls its layers in turn. Subclassed models
        override this."""
        if self._graph is not None:
            return self._graph.run(inputs, training)
        if not self._layers:
            raise NotImplementedError(f"Model {self.name!r} has no layers: a subclassed model must define call()")
        x = inputs
        for layer in self._layers:
            x = layer(x, training=training)
        return x

    def predict_on_batch(self, x):
        return self(x, training=False)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        self._assert_compiled("train_on_batch")
        self._assert_not_quantized("train_on_batch")
        if self._general_mode():
            self._ensure_built_for(x)
            xp = self._xp
            data = (training._to_arrays(x, xp, "x"), training._to_arrays(y, xp, "y"))
            if sample_weight is not None:
                data += (training._to_arrays(sample_weight, xp, "sample_weight"),)
            logs = training._result_logs(self.train_step(data))
            return logs if return_dict else (list(logs.values())[0] if len(logs) == 1 else list(logs.values()))
        x = self._prepare_x(x)
        n = _n_samples(x)
        yy = self._prepare_y(y, n)
        sw = self._prepare_sw(sample_weight, class_weight, y, yy, n)
        self._ready()
        if not hasattr(self, "_loss_total"):
            self._reset_metrics()
        self._train_step(x, yy, sw)
        return self._batch_result(return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        self._assert_compiled("test_on_batch")
        x = self._prepare_x(x)
        n = _n_samples(x)
        yy = self._prepare_y(y, n)
        sw = self._prepare_sw(sample_weight, None, y, yy, n)
        self._ready()
        self._reset_metrics()
        total, y_pred, _ = self._loss_and_pred(x, yy, sw, False, False)
        self._update_metrics(yy, y_pred, sw, total, n)
        return self._batch_result(return_dict)

    def _batch_result(self, return_dict):
        logs = self._logs()
        if return_dict:
            return logs
        values = [logs["loss"]] + [logs[m.name] for m, _ in self._metrics]
        return values[0] if len(values) == 1 else values

    # ---------------------------------------------------------------- the tape path (training.py)
    def _is_general_model(self) -> bool:
        """True when the layer-by-layer chain cannot run this model: a graph, a subclassed model,
        a custom or nested layer, or an overridden step."""
        cls = type(self)
        if self._graph is not None or cls.call is not Model.call or cls.train_step is not Model.train_step \
                or cls.test_step is not Model.test_step or cls.predict_step is not Model.predict_step:
            return True
        layers = tuple(self._layers)
        memo = self.__dict__.get("_general_memo")  # per call of predict_on_batch: ~1.5 us for 3 layers
        if memo is None or memo[0] != layers:
            memo = self._general_memo = (layers, any(
                not isinstance(layer, Layer) or not _calling.is_builtin(layer) or layer._takes_strings for layer in layers))
        return memo[1]

    def _general_mode(self) -> bool:
        return self._general_spec is not None

    def _compile_general(self, loss, loss_weights, metrics, weighted_metrics, run_eagerly=False):
        self._general_spec = (loss, loss_weights, metrics, weighted_metrics)
        self.__dict__["_run_eagerly"] = bool(run_eagerly)
        self.__dict__["_chain_step"] = None
        self._compiled_loss = self._compiled_metrics = None
        self.loss = loss
        self.compiled = True
        self._metrics = []
        self._compile_args = {"optimizer": optimizers_module.serialize(self.optimizer),
                              "loss": _spec_name(loss), "loss_weights": loss_weights,
                              "metrics": _spec_name(metrics)}

    def _output_names_for(self, y_pred):
        if self._graph is not None:
            return self._graph.output_names
        if isinstance(y_pred, dict):
            return list(y_pred)
        if isinstance(y_pred, (list, tuple)):
            return [f"output_{i}" for i in range(len(y_pred))]
        return ["output_0"]

    def _ensure_compiled_losses(self, y_pred):
        if self._compiled_loss is None:
            loss, loss_weights, metrics, weighted = self._general_spec
            names = self._output_names_for(y_pred)
            self._compiled_loss = training.CompiledLoss(loss, loss_weights, names)
            specs = metrics
            if weighted:
                specs = list(metrics or []) + list(weighted) if not isinstance(metrics, dict) else metrics
            self._compiled_metrics = training.CompiledMetrics(specs, names, self._compiled_loss.losses)

    @property
    def compiled_loss(self):
        return lambda y, y_pred, sample_weight=None, regularization_losses=None: self.compute_loss(
            y=y, y_pred=y_pred, sample_weight=sample_weight)

    @property
    def compiled_metrics(self):
        outer = self

        class _Metrics:
            def update_state(self, y, y_pred, sample_weight=None):
                outer._ensure_compiled_losses(y_pred)
                outer._compiled_metrics.update_state(y, y_pred, sample_weight)
        return _Metrics()

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled loss(es) plus what layers passed to add_loss during the forward pass."""
        if self._general_spec is None:
            raise RuntimeError("compute_loss: compile() the model first")
        self._ensure_compiled_losses(y_pred)
        total = self._compiled_loss(y, y_pred, sample_weight, regularization_losses=self.losses)
        n = next((int(_tape.value_of(p).shape[0]) for p in _calling.flatten(y_pred)
                  if hasattr(_tape.value_of(p), "shape") and _tape.value_of(p).ndim), 1)
        self._loss_tracker.update_state(np.asarray(float(_tape.value_of(total)))[None], sample_weight=[n])
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        self._ensure_compiled_losses(y_pred)
        self._compiled_metrics.update_state(y, y_pred, sample_weight)
        return self.get_metrics_result()

    def get_metrics_result(self):
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        return training.default_train_step(self, data)

    def test_step(self, data):
        x, y, sw = training.unpack_x_y_sample_weight(data)
        y_pred = self(x, training=False)
        self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sw, training=False)
        return self.compute_metrics(x, y, y_pred, sw)

    def predict_step(self, data):
        x, _, _ = training.unpack_x_y_sample_weight(data)
        return self(x, training=False)

    @property
    def losses(self):
        out = []
        for layer in self._all_layers():
            out += getattr(layer, "losses", [])
        return out + list(self.__dict__.get("_own_losses", []))

    def add_loss(self, loss):
        self.__dict__.setdefault("_own_losses", []).append(loss)

    def _clear_losses(self):
        self.__dict__["_own_losses"] = []
        for layer in self._all_layers():
            if hasattr(layer, "_clear_losses"):
                layer._clear_losses()

    def _ensure_built_for(self, x):
        """Device and weights of a general model, from its first batch."""
        if self.built and self._graph is None and not self.__dict__.get("_general_built"):
            pass
        if self.__dict__.get("_general_built"):
            return
        self.__dict__["_build_shapes"] = _calling.map_structure(
            lambda a: [None, *np.shape(_tape.value_of(a))[1:]], x)
        first = next((a for a in _calling.flatten(x) if hasattr(_tape.value_of(a), "shape")), None)
        if first is not None:
            self.device = backend.device_of_input(_tape.value_of(first))
            self._xp = backend.xp_for_device(self.device)
        self.__dict__["_general_built"] = True
        self.built = True

    def _build_general(self, input_shape):
        if input_shape is None and self._graph is None and self._input_shape is not None:
            input_shape = (None, *self._input_shape)
        if input_shape is None:
            if self._graph is not None or isinstance(self, Sequential):
                return
            raise ValueError(f"Model {self.name!r}: build() needs an input shape")
        shapes = input_shape if isinstance(input_shape, (list, dict)) else [input_shape]
        dummies = [np.zeros((1, *[1 if d is None else int(d) for d in tuple(sh)[1:]]), np.float32) for sh in shapes]
        self._model_call(dummies if isinstance(input_shape, list) else dummies[0], training=False)
        self._clear_losses()

    @property
    def inputs(self):
        return list(self._graph.inputs) if self._graph is not None else None

    @property
    def outputs(self):
        return list(self._graph.outputs) if self._graph is not None else None

    @property
    def input(self):
        if self._graph is None:
            raise AttributeError(f"Model {self.name!r} has no symbolic input (it is not a functional model)")
        g = self._graph.input_struct
        return g

    @property
    def output(self):
        if self._graph is None:
            raise AttributeError(f"Model {self.name!r} has no symbolic output (it is not a functional model)")
        return self._graph.output_struct

    @property
    def output_names(self):
        return self._graph.output_names if self._graph is not None else None

    # ---------------------------------------------------------------- summary, config, saving
    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False, show_trainable=False,
                layer_range=None):
        from .summary import format_summary
        text = format_summary(self, show_trainable)
        (print_fn or print)(text)

    def get_config(self):
        from . import saving
        layers = []
        if self._input_shape is not None:
            layers.append(saving.serialize_layer(InputLayer(shape=self._input_shape, name=f"{self.name}_input")))
        layers += [saving.serialize_layer(layer) for layer in self._layers]
        return {"name": self.name, "trainable": self.trainable, "layers": layers}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from . import saving
        model = Sequential(name=config.get("name"), trainable=config.get("trainable", True))
        for spec in config["layers"]:
            layer = saving.deserialize_layer(spec, custom_objects)
            model.add(layer)
        return model

    def save(self, filepath, overwrite=True, zipped=None, **kwargs):
        from . import saving
        saving.save_model(self, filepath, overwrite=overwrite)

    def __reduce__(self):
        """pickle and copy.deepcopy carry the model's .keras archive (architecture, weights, compile
        and optimizer state), as Keras 3 does: the live model holds modules and kernels' handles."""
        from . import saving
        return saving.model_from_bytes, (saving.model_to_bytes(self),)

    def save_weights(self, filepath, overwrite=True):
        from . import saving
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, skip_mismatch=False):
        from . import saving
        saving.load_weights(self, filepath)

    def to_json(self, **kwargs):
        import json
        from . import saving
        return json.dumps(saving.serialize_model(self), **kwargs)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"

    # ---------------------------------------------------------------- compression and deployment
    # (quantization.py, export/onnx.py)
    def quantize(self, mode, **kwargs):
        """Post-training quantization of the Dense layers: ``model.quantize("int8")``."""
        from .quantization import quantize_model
        quantize_model(self, mode)

    def _assert_not_quantized(self, what):
        """Called as training starts: also drops the sparse inference kernels of stripped pruned
        layers (pruning.py), whose weights training is about to change."""
        from .quantization import is_quantized
        for layer in getattr(self, "_layers", ()):
            if getattr(layer, "_sparse", None) is not None:
                layer._sparse = None
        if self.built and is_quantized(self):
            raise ValueError(f"Model {self.name!r} is quantized to int8 and cannot be trained (in `{what}`): "
                             "quantize after training, or rebuild the float model to train it")

    def export(self, filepath, format="onnx", verbose=True, **kwargs):
        """``model.export(path, format="onnx")``: an ONNX file, checked in ONNX Runtime before returning."""
        if format != "onnx":
            raise ValueError(f"format: forgeml exports 'onnx' only, got {format!r}")
        from .export.onnx import export_onnx
        return export_onnx(self, filepath, **kwargs)


class Sequential(Model):
    """A linear stack of layers: ``Sequential([Dense(64, activation='relu', input_shape=(100,)), ...])``."""

    def __init__(self, layers=None, trainable=True, name=None):
        super().__init__(name=name, trainable=trainable)
        for layer in layers or []:
            self.add(layer, rebuild=False)
        if self._input_shape is not None and self._layers:
            self.build()

    def add(self, layer, rebuild=True):
        if isinstance(layer, KerasTensor):
            if self._layers:
                raise ValueError("keras.Input can only start a Sequential model")
            self._input_shape = tuple(layer.shape[1:])
            return
        if isinstance(layer, InputLayer):
            if self._layers:
                raise ValueError("An InputLayer can only start a Sequential model")
            self._input_shape = layer._declared_input_shape
            return
        if not isinstance(layer, (Layer, Model)):
            raise ValueError(f"Only instances of `keras.Layer` can be added to a Sequential model. "
                             f"Received: {layer!r} (of type {type(layer).__name__})")
        if any(layer.name == other.name for other in self._layers):
            raise ValueError(f"All layers added to a Sequential model should have unique names. Name "
                             f"{layer.name!r} is already the name of a layer in this model.")
        if not self._layers and self._input_shape is None and isinstance(layer, Model) and layer.inputs:
            self._input_shape = tuple(layer.inputs[0].shape[1:])
        if not self._layers and self._input_shape is None and getattr(layer, "_declared_input_shape", None):
            self._input_shape = layer._declared_input_shape
        self._layers.append(layer)
        self.built = False
        self._fast = None
        self._metrics = None if self.compiled else self._metrics
        if rebuild and self._input_shape is not None:
            self.build()

    def pop(self, rebuild=True):
        if not self._layers:
            raise TypeError("There are no layers in the model.")
        layer = self._layers.pop()
        self.built = False
        self._fast = None
        if self.compiled:
            self._metrics = None
        if rebuild and self._layers and self._input_shape is not None:
            self.build()
        return layer


def _check_batch_size(batch_size):
    if batch_size is None:
        return 32
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    return int(batch_size)


def _prefix(cls):
    return "sequential" if cls is Sequential else "functional"


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    from . import saving
    return saving.load_model(filepath, custom_objects=custom_objects, compile=compile)


def clone_model(model, input_tensors=None, clone_function=None):
    """Same architecture, freshly initialised weights."""
    return Model.from_config(model.get_config())


def model_from_json(json_string, custom_objects=None):
    import json
    spec = json.loads(json_string)
    return Model.from_config(spec.get("config", spec), custom_objects)


def _unique(items):
    out, seen = [], set()
    for w in items:
        if id(w) not in seen:
            seen.add(id(w))
            out.append(w)
    return out


def _floatx(a):
    """Inputs to a model call: float64 arrays become float32 (Keras's floatx); the rest unchanged."""
    if hasattr(a, "dtype") and type(a) is not _tape.Tensor and not getattr(a, "_is_variable", False) \
            and a.dtype == np.float64:
        return a.astype(np.float32)
    return a


def _is_chain(inputs, outputs):
    """A single input, a single output and one built-in single-input layer after another: the
    layer-by-layer path (and its fused fast path) runs it."""
    ins = inputs if not isinstance(inputs, (list, tuple)) else (inputs[0] if len(inputs) == 1 else None)
    outs = outputs if not isinstance(outputs, (list, tuple)) else (outputs[0] if len(outputs) == 1 else None)
    if not isinstance(ins, KerasTensor) or not isinstance(outs, KerasTensor):
        return False
    t = outs
    while t is not None and t is not ins:
        node = t._node
        if node is None or not isinstance(node.layer, Layer) or not _calling.is_builtin(node.layer) \
                or node.layer._takes_strings or len(node.inputs) != 1 or len(node.outputs) != 1 \
                or node.kwargs.get("training") is not None:
            return False
        t = t.parent
    return t is ins


def _needs_tape(loss, loss_weights, metrics, weighted_metrics):
    from . import losses as L, metrics as M
    if isinstance(loss, (list, tuple, dict)) or loss_weights is not None:
        return True
    if isinstance(loss, L.Loss):
        if type(loss).call is not L.Loss.call or type(loss).__module__ not in (L.__name__, L._extra.__name__):
            return True
    elif not isinstance(loss, str) and loss not in L._FN_TO_CLASS:
        return True
    for ms in (metrics, weighted_metrics):
        if isinstance(ms, dict):
            return True
        for m in ms or []:
            builtin = isinstance(m, M.Metric) and type(m).__module__ in (M.__name__, M._extra.__name__)
            if not isinstance(m, (str, type)) and not builtin:
                return True
    return False


def _spec_name(spec):
    if isinstance(spec, dict):
        return {k: _spec_name(v) for k, v in spec.items()}
    if isinstance(spec, (list, tuple)):
        return [_spec_name(v) for v in spec]
    if spec is None or isinstance(spec, str):
        return spec
    if isinstance(spec, (losses_module.Loss, metrics_module.Metric)):  # its class and config (saving.py)
        from . import saving, serialization

        try:
            config = saving._jsonable(spec.get_config())
            json.dumps(config)
        except (NotImplementedError, TypeError, ValueError):
            config = None  # not JSON: saved by name as before
        if config is not None:
            return {"__object__": "loss" if isinstance(spec, losses_module.Loss) else "metric",
                    "class_name": type(spec).__name__, "registered_name": serialization._registered(type(spec)),
                    "config": config}
    return getattr(spec, "name", getattr(spec, "__name__", type(spec).__name__))
