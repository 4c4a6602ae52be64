"""The bottom of forgeml.keras: the registry of user classes saved by name
(``register_keras_serializable``). Layering, bottom-up (nothing imports upward at module level):

    registry, utils (random state), backend, autodiff
    ops, variables
    activations, initializers, losses, loss_tape, metrics, optimizers, callbacks
    layers
    functional, serialization, saving
    training, traced (the tape trainer), _fast (the fused Dense path)
    models
"""

from __future__ import annotations

import contextlib

__all__ = ["register_keras_serializable", "get_custom_objects", "CUSTOM_OBJECTS", "custom_object_scope", "lookup"]

CUSTOM_OBJECTS: dict[str, type] = {}
_SCOPES: list[dict] = []  # custom_objects of the load_model calls (and custom_object_scope blocks) in progress


def register_keras_serializable(package="Custom", name=None):
    def deco(cls):
        CUSTOM_OBJECTS[f"{package}>{name or cls.__name__}"] = cls
        CUSTOM_OBJECTS[name or cls.__name__] = cls
        return cls

    return deco


def get_custom_objects():
    return CUSTOM_OBJECTS


@contextlib.contextmanager
def custom_object_scope(*scopes):
    """Names visible to deserialization inside the block (load_model's custom_objects live here)."""
    merged = {}
    for scope in scopes:
        merged.update(scope or {})
    _SCOPES.append(merged)
    try:
        yield merged
    finally:
        _SCOPES.pop()


def lookup(*names):
    """The first of names found in the scopes in force (innermost first), then the registry."""
    for name in names:
        if not name:
            continue
        for scope in reversed(_SCOPES):
            if name in scope:
                return scope[name]
        if name in CUSTOM_OBJECTS:
            return CUSTOM_OBJECTS[name]
    return None
