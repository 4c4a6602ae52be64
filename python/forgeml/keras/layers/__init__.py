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

# the rest of the everyday surface (issue 18): sequence layers, wrappers, masks
from .masking import Masking  # noqa: E402
from .sequence import (AveragePooling1D, AvgPool1D, Conv1D, Convolution1D, Cropping1D, GlobalAveragePooling1D,  # noqa: E402
                       GlobalAvgPool1D, GlobalMaxPool1D, GlobalMaxPooling1D, MaxPool1D, MaxPooling1D, Permute,
                       RepeatVector, UpSampling1D, ZeroPadding1D)
from .wrappers import Bidirectional, TimeDistributed  # noqa: E402

__all__ += ["Masking", "Conv1D", "Convolution1D", "MaxPooling1D", "AveragePooling1D", "MaxPool1D", "AvgPool1D",
            "GlobalAveragePooling1D", "GlobalMaxPooling1D", "GlobalAvgPool1D", "GlobalMaxPool1D", "UpSampling1D",
            "ZeroPadding1D", "Cropping1D", "RepeatVector", "Permute", "Bidirectional", "TimeDistributed"]
from .activation_layers import ELU, PReLU, ReLU, LeakyReLU, Softmax  # noqa: E402
from .image import Conv2DTranspose, Convolution2DTranspose, Cropping2D, UpSampling2D, ZeroPadding2D  # noqa: E402
from .noise import (ActivityRegularization, GaussianDropout, GaussianNoise, SpatialDropout1D,  # noqa: E402
                    SpatialDropout2D)
from .normalization_extra import GroupNormalization, LayerNormalization, UnitNormalization  # noqa: E402
from .preprocessing import (CategoryEncoding, CenterCrop, Normalization, RandomFlip, RandomRotation,  # noqa: E402
                            RandomTranslation, RandomZoom, Rescaling)

__all__ += ["ELU", "PReLU", "ReLU", "LeakyReLU", "Softmax", "Conv2DTranspose", "Convolution2DTranspose",
            "Cropping2D", "UpSampling2D", "ZeroPadding2D", "ActivityRegularization", "GaussianDropout",
            "GaussianNoise", "SpatialDropout1D", "SpatialDropout2D", "GroupNormalization", "LayerNormalization",
            "UnitNormalization", "CategoryEncoding", "CenterCrop", "Normalization", "RandomFlip", "RandomRotation",
            "RandomTranslation", "RandomZoom", "Rescaling"]
from .attention import Attention, Lambda, MultiHeadAttention  # noqa: E402

__all__ += ["Attention", "Lambda", "MultiHeadAttention"]
from .lookup import IntegerLookup, StringLookup  # noqa: E402
from .text_vectorization import TextVectorization  # noqa: E402

__all__ += ["IntegerLookup", "StringLookup", "TextVectorization"]
