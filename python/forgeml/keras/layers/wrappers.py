"""Bidirectional and TimeDistributed: layers that run another layer.

A wrapper owns its inner layers' Variables (``_weights`` is their concatenation, forward layer
first, as Keras orders them), so the model packs them like any other layer's; ``_inner_layers``
lets the regularizer hook find the inner layers' penalties.
"""

from __future__ import annotations

from . import masking
from .base import Layer
from .convolutional import auto_name

__all__ = ["Bidirectional", "TimeDistributed"]


class _Wrapper(Layer):
    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        for inner in getattr(self, "_inner_layers", ()):
            inner.trainable = value

    def _adopt(self):
        self._weights = [w for inner in self._inner_layers for w in inner._weights]


class Bidirectional(_Wrapper):
    """Runs `layer` forwards and a go_backwards copy of it, then merges: 'concat' (default),
    'sum', 'ave' or 'mul'. With return_sequences the backward outputs are flipped back into time
    order first (Keras). A mask on the input reaches both directions."""

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        if not isinstance(layer, Layer) or not hasattr(layer, "go_backwards"):
            raise ValueError(
                f"Please initialize `Bidirectional` layer with a recurrent `keras.layers.Layer` "
                f"instance. Received: {layer}"
            )
        if merge_mode not in ("concat", "sum", "ave", "mul"):
            if merge_mode is None:
                raise NotImplementedError(
                    "Bidirectional: merge_mode=None (two outputs) is not supported by "
                    "forgeml.keras models, which have one output"
                )
            raise ValueError(
                f"Invalid merge mode. Received: {merge_mode}. Merge mode should be one of "
                '{"sum", "mul", "ave", "concat", None}'
            )
        if getattr(layer, "return_state", False):
            raise NotImplementedError("Bidirectional: return_state=True is not supported by forgeml.keras yet")
        super().__init__(**auto_name(self, kwargs))
        if backward_layer is None:
            cfg = layer.get_config()
            cfg.pop("batch_input_shape", None)
            cfg["go_backwards"] = not layer.go_backwards
            cfg["name"] = "backward_" + layer.name
            backward_layer = type(layer).from_config(cfg)
            layer.name = "forward_" + layer.name
        self.forward_layer, self.backward_layer = layer, backward_layer
        for inner in (layer, backward_layer):  # Keras: masked steps of returned sequences are zeros
            inner.zero_output_for_mask = inner.return_sequences
        self._inner_layers = (layer, backward_layer)
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        if self._declared_input_shape is None:
            self._declared_input_shape = layer._declared_input_shape
        self._initial_weights = weights

    def build(self, input_shape):
        for inner in self._inner_layers:
            inner._build_once(input_shape, self.xp)
        self._adopt()
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def compute_output_shape(self, input_shape):
        shape = self.forward_layer.compute_output_shape(input_shape)
        if self.merge_mode == "concat":
            return (*shape[:-1], 2 * shape[-1])
        return tuple(shape)

    def forward(self, x, training=False):
        mask = masking.mask_of(x)
        yf = self.forward_layer.forward(x, training, mask=mask)
        yb = self.backward_layer.forward(x, training, mask=mask)
        if self.return_sequences:
            yb = yb[:, ::-1]
        self._yf, self._yb = yf, yb
        xp, mode = self.xp, self.merge_mode
        if mode == "concat":
            y = xp.concatenate([yf, yb], axis=-1)
        elif mode == "sum":
            y = yf + yb
        elif mode == "ave":
            y = (yf + yb) * 0.5
        else:
            y = yf * yb
        if self.return_sequences and mask is not None:
            masking.attach(y, mask)
        return y

    def backward(self, dy, need_dx=True):
        xp, mode = self.xp, self.merge_mode
        if mode == "concat":
            u = self._yf.shape[-1]
            df, db = dy[..., :u], dy[..., u:]
        elif mode == "sum":
            df = db = dy
        elif mode == "ave":
            df = db = dy * 0.5
        else:
            df, db = dy * self._yb, dy * self._yf
        if self.return_sequences:
            db = db[:, ::-1]
        dxf = self.forward_layer.backward(xp.ascontiguousarray(df), need_dx)
        dxb = self.backward_layer.backward(xp.ascontiguousarray(db), need_dx)
        return dxf + dxb if need_dx else None

    def get_config(self):
        from ..saving import serialize_layer

        return {
            **super().get_config(),
            "merge_mode": self.merge_mode,
            "layer": serialize_layer(self.forward_layer),
            "backward_layer": serialize_layer(self.backward_layer),
        }

    @classmethod
    def from_config(cls, config):
        from ..saving import deserialize_layer

        config = dict(config)
        layer = deserialize_layer(config.pop("layer"))
        backward = config.pop("backward_layer", None)
        backward = None if backward is None else deserialize_layer(backward)
        return cls(layer, backward_layer=backward, **config)


class TimeDistributed(_Wrapper):
    """Applies `layer` to every time step: (N, T, ...) runs as (N * T, ...)."""

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(
                f"Please initialize `TimeDistributed` layer with a `keras.layers.Layer` instance. Received: {layer}"
            )
        super().__init__(**auto_name(self, kwargs))
        self.layer = layer
        self._inner_layers = (layer,)

    def build(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(
                f"`TimeDistributed` Layer should be passed an `input_shape` with at least 3 dimensions, "
                f"received: {tuple(input_shape)}"
            )
        self.layer._build_once((None, *input_shape[2:]), self.xp)
        self._adopt()

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape((None, *input_shape[2:]))
        return (input_shape[0], input_shape[1], *inner[1:])

    def forward(self, x, training=False):
        n, t = x.shape[:2]
        y = self.layer.forward(self.xp.ascontiguousarray(x).reshape(n * t, *x.shape[2:]), training)
        return y.reshape(n, t, *y.shape[1:])

    def backward(self, dy, need_dx=True):
        n, t = dy.shape[:2]
        dx = self.layer.backward(self.xp.ascontiguousarray(dy).reshape(n * t, *dy.shape[2:]), need_dx)
        return None if dx is None else dx.reshape(n, t, *dx.shape[1:])

    def get_config(self):
        from ..saving import serialize_layer

        return {**super().get_config(), "layer": serialize_layer(self.layer)}

    @classmethod
    def from_config(cls, config):
        from ..saving import deserialize_layer

        config = dict(config)
        return cls(deserialize_layer(config.pop("layer")), **config)
