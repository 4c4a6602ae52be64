"""keras.mixed_precision: dtype policies (Keras 3 names).

A policy says which dtype a layer keeps its weights in (``variable_dtype``) and which it computes
in (``compute_dtype``). forgeml keeps float32 master weights always and supports:

- ``"float32"``: everything in float32 (the default);
- ``"mixed_bfloat16"``: Dense products (forward and both backward products) run on the bf16
  GEMM (``forgeml.ops.matmul(..., precision="bf16")``: operands rounded to bfloat16, sums in
  float32); Conv2D's forward product and kernel gradient run as im2col patches on the same bf16
  GEMM (its input gradient stays the float32 convolution kernel); SimpleRNN, LSTM and GRU run
  their input projection, recurrent product and the gradients' products on bf16 operands with
  float32 sums (the fused sequence kernels with ``precision="bf16"``, or the per-step loop path
  where the layer's options need it); activations, gate math, states, losses, optimizer updates
  and the weights stay float32.

``set_global_policy("mixed_bfloat16")`` applies to layers created afterwards; a layer takes its own
with ``dtype="mixed_bfloat16"`` or ``dtype_policy=...``. Outputs stay float32 NumPy arrays
(Keras 3 returns bfloat16 tensors under this policy; variables are float32 in both). Layers without a bf16 path compute in float32 under either policy;
``layer.dtype_policy`` still reports the requested one, and ``bf16_layers(model)`` lists the layers whose products run in bf16.
"""

from __future__ import annotations

__all__ = ["DTypePolicy", "Policy", "set_global_policy", "global_policy", "get", "bf16_layers"]

_COMPUTE = {"float32": "float32", "mixed_bfloat16": "bfloat16"}


class DTypePolicy:
    """``DTypePolicy("mixed_bfloat16")``: variable_dtype float32, compute_dtype bfloat16."""

    def __init__(self, name="float32"):
        if isinstance(name, DTypePolicy):
            name = name.name
        if name not in _COMPUTE:
            hint = (
                " (forgeml keeps float32 master weights: use 'mixed_bfloat16')"
                if name in ("bfloat16", "float16", "mixed_float16")
                else ""
            )
            raise ValueError(f"dtype_policy: expected one of {sorted(_COMPUTE)}, got {name!r}{hint}")
        self._name = name

    @property
    def name(self):
        return self._name

    @property
    def compute_dtype(self):
        return _COMPUTE[self._name]

    @property
    def variable_dtype(self):
        return "float32"

    @property
    def matmul_precision(self):
        """What layers pass to ``ops.matmul(precision=...)``: None or "bf16"."""
        return "bf16" if self._name == "mixed_bfloat16" else None

    def get_config(self):
        return {"name": self._name}

    def __eq__(self, other):
        return isinstance(other, DTypePolicy) and other._name == self._name

    def __hash__(self):
        return hash(self._name)

    def __repr__(self):
        return f'<DTypePolicy "{self._name}">'


Policy = DTypePolicy  # the TF2 name
_GLOBAL = DTypePolicy("float32")


def get(value):
    """A DTypePolicy from a policy, a name, a config dict or None (the global policy)."""
    if value is None:
        return _GLOBAL
    if isinstance(value, DTypePolicy):
        return value
    if isinstance(value, dict):
        value = value.get("config", value).get("name")
    if isinstance(value, str):
        return DTypePolicy(value)
    raise TypeError(f"dtype_policy: expected a DTypePolicy or a policy name, got {type(value).__name__}")


def set_global_policy(policy):
    """The policy new layers take when they are not given one (None resets to float32)."""
    global _GLOBAL
    _GLOBAL = DTypePolicy("float32") if policy is None else get(policy)


def global_policy():
    return _GLOBAL


def bf16_layers(model):
    """Names of the layers whose matrix products run in bf16 under their policy."""
    return [
        layer.name
        for layer in model.layers
        if getattr(layer, "dtype_policy", None) is not None
        and layer.dtype_policy.matmul_precision
        and getattr(layer, "supports_bf16", False)
    ]
