"""Configs of the models the tape trains: functional graphs (their layers and the nodes that call
them, with tensors named by where they come from) and subclassed models (the registered class and
its ``get_config``, plus the input shapes that build it). saving.py writes and reads them; the
weights go by layer order as for every model."""

from __future__ import annotations

from .layers._calling import map_structure
from .layers.base import KerasTensor
from .registry import CUSTOM_OBJECTS as _CUSTOM_OBJECTS

__all__ = ["serialize_model", "deserialize_model", "is_model_spec"]

_MODEL_CLASSES = ("Sequential", "Functional", "Model")


def is_model_spec(spec) -> bool:
    return isinstance(spec, dict) and (spec.get("class_name") in _MODEL_CLASSES or spec.get("subclassed"))


def serialize_model(model) -> dict:
    from . import saving
    from .models import Model, Sequential

    if model._graph is not None:
        return {
            "module": "keras",
            "class_name": "Functional",
            "config": _graph_config(model),
            "registered_name": _registered(type(model)) if type(model) is not Model else None,
        }
    if type(model) is Sequential or (type(model) is Model and model._layers):
        out = {
            "module": "keras",
            "class_name": "Sequential",
            "config": saving._jsonable(model.get_config()),
            "build_config": {"input_shape": list(model.input_shape) if model.input_shape else None},
        }
        return out
    name = _registered(type(model))
    if name is None:
        raise ValueError(
            f"Cannot save subclassed model {type(model).__name__!r}: decorate the class with "
            f"@keras.saving.register_keras_serializable() (and give it get_config/from_config if "
            f"its __init__ takes arguments), or save its weights with save_weights"
        )
    cfg = model.get_config() if type(model).get_config is not Model.get_config else {"name": model.name}
    return {
        "module": "keras",
        "class_name": name,
        "subclassed": True,
        "config": saving._jsonable(cfg),
        "build_config": {"input_shape": model.__dict__.get("_build_shapes")},
    }


def _registered(cls):
    for key, value in _CUSTOM_OBJECTS.items():
        if value is cls and ">" in key:
            return key
    return None


def _graph_config(model):
    from . import saving

    graph = model._graph
    names = {}
    for i, t in enumerate(graph.inputs):
        names[id(t)] = ["input", i]
    layers, nodes = {}, []
    for k, node in enumerate(graph.nodes):
        for j, t in enumerate(node.outputs):
            names[id(t)] = ["node", k, j]
        layer = node.layer
        if layer.name not in layers:
            layers[layer.name] = (
                serialize_model(layer) if hasattr(layer, "_model_call") else saving.serialize_layer(layer)
            )

        def ref(v):
            return {"__tensor__": names[id(v)]} if isinstance(v, KerasTensor) else v

        nodes.append(
            {
                "layer": layer.name,
                "args": map_structure(ref, list(node.args)),
                "kwargs": {k2: map_structure(ref, v) for k2, v in node.kwargs.items()},
            }
        )

    def out_ref(t):
        return {"__tensor__": names[id(t)]}

    return saving._jsonable(
        {
            "name": model.name,
            "layers": layers,
            "nodes": nodes,
            "inputs": [{"shape": list(t.shape[1:]), "dtype": t.dtype, "name": t.name} for t in graph.inputs],
            "input_struct": map_structure(lambda t: {"__tensor__": names[id(t)]}, graph.input_struct),
            "outputs": map_structure(out_ref, graph.output_struct),
        }
    )


def deserialize_model(spec, custom_objects=None):
    from . import saving
    from .layers.base import Input
    from .models import Model

    cls_name = spec.get("class_name")
    if spec.get("subclassed"):
        cls = (custom_objects or {}).get(cls_name) or _CUSTOM_OBJECTS.get(cls_name)
        if cls is None:
            raise ValueError(
                f"Could not locate class {cls_name!r}: pass it in custom_objects or register it with "
                f"@keras.saving.register_keras_serializable()"
            )
        cfg = dict(spec.get("config") or {})
        try:
            model = cls.from_config(cfg) if "from_config" in cls.__dict__ else cls(**cfg)
        except TypeError:
            model = cls()
        shapes = (spec.get("build_config") or {}).get("input_shape")
        if shapes:
            model(_dummy(shapes))
            model._clear_losses()
        return model
    if cls_name == "Sequential":
        return Model.from_config(spec["config"], custom_objects)
    cfg = spec["config"]
    made = {}
    for lname, lspec in cfg["layers"].items():
        made[lname] = (
            deserialize_model(lspec, custom_objects)
            if is_model_spec(lspec)
            else saving.deserialize_layer(lspec, custom_objects)
        )
    tensors = {}
    inputs = [Input(shape=tuple(i["shape"]), dtype=i.get("dtype"), name=i.get("name")) for i in cfg["inputs"]]
    for i, t in enumerate(inputs):
        tensors[("input", i)] = t

    def resolve(v):
        if isinstance(v, dict) and "__tensor__" in v:
            return tensors[tuple(v["__tensor__"])]
        if isinstance(v, dict):
            return {k: resolve(x) for k, x in v.items()}
        if isinstance(v, list):
            return [resolve(x) for x in v]
        return v

    for k, node in enumerate(cfg["nodes"]):
        args = resolve(node["args"])
        kwargs = {kk: resolve(v) for kk, v in node["kwargs"].items()}
        out = made[node["layer"]](*args, **kwargs)
        from .layers._calling import flatten

        for j, t in enumerate(flatten(out)):
            tensors[("node", k, j)] = t
    model_cls = Model
    if spec.get("registered_name"):
        model_cls = (custom_objects or {}).get(spec["registered_name"]) or _CUSTOM_OBJECTS.get(
            spec["registered_name"], Model
        )
    return model_cls(resolve(cfg["input_struct"]), resolve(cfg["outputs"]), name=cfg.get("name"))


def _dummy(shapes):
    """Zeros for a saved input shape (a [None, d, ...] list, or a list / dict of them)."""
    import numpy as np

    if isinstance(shapes, dict):
        return {k: _dummy(v) for k, v in shapes.items()}
    if isinstance(shapes, list) and shapes and isinstance(shapes[0], (list, dict)):
        return [_dummy(s) for s in shapes]
    return np.zeros((1, *[1 if d is None else int(d) for d in shapes[1:]]), np.float32)
