"""keras.layers: one module per layer group; every Layer subclass registers itself by name."""
from __future__ import annotations

from .base import Input, InputLayer, KerasTensor, Layer, Variable
from .convolutional import Conv2D, Convolution2D
from .core import Activation, Dense, Embedding
from .merging import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract, add, average,
                      concatenate, dot, maximum, minimum, multiply, subtract)
from .normalization import BatchNormalization
from .pooling import (AveragePooling2D, AvgPool2D, GlobalAveragePooling2D, GlobalAvgPool2D, GlobalMaxPool2D,
                      GlobalMaxPooling2D, MaxPool2D, MaxPooling2D)
from .recurrent import GRU, LSTM, SimpleRNN
from .regularization import Dropout
from .reshaping import Flatten, Reshape

__all__ = ["Layer", "Variable", "Input", "InputLayer", "KerasTensor", "Dense", "Activation", "Embedding",
           "Flatten", "Reshape", "Dropout", "BatchNormalization", "get"]
__all__ += ["Conv2D", "Convolution2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D",
            "GlobalMaxPooling2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "GlobalMaxPool2D",
            "SimpleRNN", "LSTM", "GRU"]
__all__ += ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot", "add", "subtract",
            "multiply", "average", "maximum", "minimum", "concatenate", "dot"]


def get(class_name: str):
    from .base import LAYER_CLASSES
    try:
        return LAYER_CLASSES[class_name]
    except KeyError:
        raise ValueError(f"Unknown layer class {class_name!r}; known: {sorted(LAYER_CLASSES)}") from None
