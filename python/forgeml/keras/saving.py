"""Saving and loading: ``.keras`` files are zips of ``config.json``, ``metadata.json`` and
``model.weights.npz`` (the weights, and the optimizer's state when compiled). Loading reads the
arrays with ``np.load(allow_pickle=False)``: nothing is ever unpickled."""
from __future__ import annotations

import datetime
import inspect
import io
import json
import os
import zipfile

import numpy as np

from . import losses as losses_module, optimizers as optimizers_module
from .registry import CUSTOM_OBJECTS, custom_object_scope, get_custom_objects, register_keras_serializable

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "serialize_layer", "deserialize_layer",
           "serialize_model", "register_keras_serializable", "get_custom_objects", "custom_object_scope"]

_CUSTOM_OBJECTS = CUSTOM_OBJECTS  # the registry lives at the bottom (registry.py)


def _jsonable(v):
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def serialize_layer(layer) -> dict:
    from .serialization import _registered
    out = {"module": "keras.layers", "class_name": type(layer).__name__, "config": _jsonable(layer.get_config())}
    registered = _registered(type(layer))
    if registered:  # "package>Name": two registered classes may share a bare name
        out["registered_name"] = registered
    return out


def deserialize_layer(spec, custom_objects=None):
    from .layers.base import LAYER_CLASSES
    from . import serialization
    if serialization.is_model_spec(spec):  # a model used as a layer
        return serialization.deserialize_model(spec, custom_objects)
    name = spec["class_name"]
    registered = spec.get("registered_name")
    cls = ((custom_objects or {}).get(name) or (registered and _CUSTOM_OBJECTS.get(registered))
           or _CUSTOM_OBJECTS.get(name) or LAYER_CLASSES.get(name))
    if cls is None:
        raise ValueError(f"Could not locate class {name!r}. Make sure custom classes are passed in "
                         f"`custom_objects` or decorated with `@keras.saving.register_keras_serializable()`")
    config = dict(spec.get("config", {}))
    if name == "InputLayer":
        return cls(shape=tuple(config["batch_shape"][1:]), name=config.get("name"))
    if "batch_input_shape" in config:
        config["batch_input_shape"] = tuple(config["batch_input_shape"])
    if "custom_objects" in inspect.signature(cls.from_config).parameters:  # Lambda looks its function up
        return cls.from_config(config, custom_objects=custom_objects)
    return cls.from_config(config)


def serialize_model(model) -> dict:
    if model._general_mode() or model._is_general_model():
        from . import serialization
        out = serialization.serialize_model(model)
        if model.compiled:
            out["compile_config"] = _jsonable(model._compile_args)
        return out
    out = {"module": "keras", "class_name": "Sequential", "config": _jsonable(model.get_config()),
           "build_config": {"input_shape": list(model.input_shape) if model.input_shape else None}}
    if model.compiled:
        out["compile_config"] = _jsonable(model._compile_args)
    return out


def _weights_npz(model, with_optimizer) -> bytes:
    arrays = {f"layers/{i}/{j}": v.numpy() for i, layer in enumerate(model.layers)
              for j, v in enumerate(layer.weights)}
    opt = model.optimizer
    tape_bound = opt is not None and opt.__dict__.get("_binding") is not None  # bound by apply_gradients
    if with_optimizer and opt is not None and opt.built and (tape_bound or not model._general_mode()):
        arrays["optimizer/iterations"] = np.asarray(opt.iterations.value, dtype=np.int64)
        for k, s in opt.slots.items():
            arrays[f"optimizer/slots/{k}"] = np.asarray(s.get() if hasattr(s, "get") else s)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _load_npz(model, data: bytes, with_optimizer):
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for i, layer in enumerate(model.layers):
        ws = []
        for j in range(len(layer.weights)):
            key = f"layers/{i}/{j}"
            if key not in arrays:
                raise ValueError(f"The saved weights do not match the model: missing {key!r} for layer {layer.name!r}")
            ws.append(arrays[key])
        layer.set_weights(ws)
    extra = [k for k in arrays if k.startswith("layers/") and int(k.split("/")[1]) >= len(model.layers)]
    if extra:
        raise ValueError(f"The saved weights have more layers than the model ({len(model.layers)})")
    opt = model.optimizer
    if with_optimizer and opt is not None and "optimizer/iterations" in arrays and model._general_mode():
        # the tape binds its optimizer on the first step (optimizers/per_variable.py): the slots wait there
        opt.iterations.value = int(arrays["optimizer/iterations"])
        opt.__dict__["_pending_slots"] = {k[len("optimizer/slots/"):]: v for k, v in arrays.items()
                                          if k.startswith("optimizer/slots/")}
    elif with_optimizer and opt is not None and "optimizer/iterations" in arrays:
        model._ready()
        for k, s in opt.slots.items():
            key = f"optimizer/slots/{k}"
            if key in arrays and arrays[key].shape == tuple(s.shape):
                s[...] = model._xp.asarray(arrays[key])
        opt.iterations.value = int(arrays["optimizer/iterations"])


def save_model(model, filepath, overwrite=True):
    filepath = os.fspath(filepath)
    if not filepath.endswith(".keras"):
        raise ValueError(f"Invalid filepath extension for saving. Please add the `.keras` extension. "
                         f"Received: filepath={filepath}")
    if os.path.exists(filepath) and not overwrite:
        raise FileExistsError(filepath)
    if not model.built:
        raise ValueError("Cannot save a model that has not been built: call fit, build or predict first")
    _write_archive(model, filepath)


def model_to_bytes(model) -> bytes:
    """The model's ``.keras`` archive in memory (what pickle and copy.deepcopy carry, as in Keras 3);
    a model not built yet has no weights file."""
    buf = io.BytesIO()
    _write_archive(model, buf)
    return buf.getvalue()


def model_from_bytes(data: bytes):
    """The model in a ``model_to_bytes`` archive (custom classes come from the registry)."""
    return _read_archive(io.BytesIO(data), "<pickled model>", None, True)


def _write_archive(model, target):
    from .. import __version__
    meta = {"keras_version": "3 (forgeml)", "forgeml_version": __version__,
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", json.dumps(serialize_model(model), indent=1))
        zf.writestr("metadata.json", json.dumps(meta))
        if model.built:
            zf.writestr("model.weights.npz", _weights_npz(model, True))


def load_model(filepath, custom_objects=None, compile=True):
    filepath = os.fspath(filepath)
    if not zipfile.is_zipfile(filepath):
        raise ValueError(f"File format not supported: filepath={filepath}. forgeml.keras loads `.keras` files "
                         "written by model.save")
    return _read_archive(filepath, filepath, custom_objects, compile)


def _read_archive(source, filepath, custom_objects, compile):
    """The model in a .keras zip (a path or a file object); filepath names it in errors."""
    from .models import Model
    try:
        with zipfile.ZipFile(source) as zf:
            config = json.loads(zf.read("config.json"))
            weights = zf.read("model.weights.npz") if "model.weights.npz" in zf.namelist() else None
    except (KeyError, zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"filepath: {filepath} is not a readable .keras file ({exc})") from None
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise ValueError(f"filepath: {filepath} has a config.json that is not a model description "
                         f"(expected a JSON object with a 'config' object, got {type(config).__name__})")
    from . import serialization
    if not serialization.is_model_spec(config):
        raise ValueError(f"Unsupported model class {config.get('class_name')!r}")
    try:
        with custom_object_scope(custom_objects):  # constraints (and the like) inside layer configs look here
            model = Model.from_config(config["config"], custom_objects) if config.get("class_name") == "Sequential" \
                else serialization.deserialize_model(config, custom_objects)
    except (KeyError, TypeError, AttributeError, IndexError, MemoryError, OverflowError) as exc:  # hostile or damaged
        raise ValueError(f"filepath: {filepath} has a config.json forgeml cannot build a model from "
                         f"({type(exc).__name__}: {exc})") from None
    if not model.built:
        shape = (config.get("build_config") or {}).get("input_shape")
        if shape:
            model.build(tuple(shape))
    if weights is None and model.built:
        raise ValueError(f"filepath: {filepath} is not a readable .keras file (no model.weights.npz)")
    cc = config.get("compile_config")
    if compile and cc and model._is_general_model():
        known = {**_CUSTOM_OBJECTS, **(custom_objects or {})}

        def find(spec):  # loss / metric objects were saved as class and config, functions by name
            if isinstance(spec, dict) and "__object__" in spec:
                return _rebuild(spec, known)
            if isinstance(spec, dict):
                return {k: find(v) for k, v in spec.items()}
            if isinstance(spec, list):
                return [find(v) for v in spec]
            return known.get(spec, spec) if isinstance(spec, str) else spec
        model.compile(optimizer=optimizers_module.deserialize(cc["optimizer"]), loss=find(cc["loss"]),
                      loss_weights=cc.get("loss_weights"), metrics=find(cc.get("metrics")) or None)
        if weights is not None:  # (None: a pickled model that was never built)
            _load_npz(model, weights, True)  # the tape trainer binds its optimizer state on the first step
        return model
    if compile and cc:
        model.compile(optimizer=optimizers_module.deserialize(cc["optimizer"]),
                      loss=losses_module.get(cc["loss"]), metrics=cc.get("metrics") or None,
                      weighted_metrics=cc.get("weighted_metrics") or None)
    try:
        if weights is not None:
            _load_npz(model, weights, compile and bool(cc))
    except (EOFError, OSError, KeyError, IndexError, TypeError, zipfile.BadZipFile) as exc:  # damaged weights
        raise ValueError(f"filepath: {filepath} has unreadable weights ({type(exc).__name__}: {exc})") from None
    return model


def _rebuild(spec, known):
    """A Loss / Metric object from its saved class name and config (user classes through
    custom_objects or the registry, forgeml's own by name)."""
    from . import metrics as metrics_module

    name = spec["class_name"]
    module = losses_module if spec["__object__"] == "loss" else metrics_module
    cls = known.get(spec.get("registered_name") or name) or known.get(name) or getattr(module, name, None)
    if cls is None and spec["__object__"] == "metric":
        cls = getattr(metrics_module._extra, name, None)
    if cls is None and spec["__object__"] == "loss":
        cls = getattr(losses_module._extra, name, None)
    if not isinstance(cls, type):
        raise ValueError(f"Could not locate class {name!r}. Make sure custom classes are passed in "
                         f"`custom_objects` or decorated with `@keras.saving.register_keras_serializable()`")
    return cls.from_config(dict(spec.get("config") or {}))


def save_weights(model, filepath, overwrite=True):
    filepath = os.fspath(filepath)
    if not filepath.endswith((".weights.h5", ".weights.npz")):
        raise ValueError("The filename must end in `.weights.h5` (or `.weights.npz`); forgeml writes NumPy's npz "
                         f"format either way. Received: filepath={filepath}")
    if os.path.exists(filepath) and not overwrite:
        raise FileExistsError(filepath)
    with open(filepath, "wb") as f:
        f.write(_weights_npz(model, False))


def load_weights(model, filepath):
    with open(os.fspath(filepath), "rb") as f:
        _load_npz(model, f.read(), False)
