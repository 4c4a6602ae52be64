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

__all__ = ["register_keras_serializable", "get_custom_objects", "CUSTOM_OBJECTS"]

CUSTOM_OBJECTS: dict[str, type] = {}


def register_keras_serializable(package="Custom", name=None):
    def deco(cls):
        CUSTOM_OBJECTS[f"{package}>{name or cls.__name__}"] = cls
        CUSTOM_OBJECTS[name or cls.__name__] = cls
        return cls

    return deco


def get_custom_objects():
    return CUSTOM_OBJECTS
