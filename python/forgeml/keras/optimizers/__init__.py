"""Optimizers (SGD, Adam, AdamW, RMSprop) with Keras 3 update rules, names and defaults.

A model binds an optimizer to its flat parameter and gradient buffers: every trainable weight is a
slice of one float32 array, so a step is a few whole-array passes over the contiguous ranges of
trainable layers (one range unless some layer is frozen), not a loop over variables. Slots
(momenta) are flat arrays of the same layout. ``update_step(p, g, lr, slots, tmp)`` works on one
range; clipping (clipnorm per variable, global_clipnorm, clipvalue) and weight decay happen first.
"""
from __future__ import annotations

import math

import numpy as np

from . import schedules
from .schedules import LearningRateSchedule

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "get", "serialize", "deserialize", "schedules"]


class _Scalar(float):
    """A float that also answers .numpy() (Keras optimizers hand out variables)."""

    def numpy(self):
        return np.float32(self)


class _Iterations:
    def __init__(self):
        self.value = 0

    def __int__(self):
        return self.value

    __index__ = __int__

    def numpy(self):
        return np.int64(self.value)

    def assign(self, v):
        self.value = int(v)

    def __eq__(self, other):
        return self.value == int(other)

    def __repr__(self):
        return f"<iterations={self.value}>"


class Optimizer:
    slot_names: tuple[str, ...] = ()

    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name=None, **kwargs):
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}")
        if use_ema or gradient_accumulation_steps or loss_scale_factor:
            raise NotImplementedError("use_ema, gradient_accumulation_steps and loss_scale_factor are not supported")
        if sum(c is not None for c in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set.")
        self.name = name or type(self).__name__.lower()
        self.weight_decay = weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.learning_rate = learning_rate
        self.iterations = _Iterations()
        self._params = None

    # ---------------------------------------------------------------- learning rate
    @property
    def learning_rate(self):
        return _Scalar(self._current_lr())

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, LearningRateSchedule) or callable(value):
            self._lr = value
        else:
            value = float(value)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"learning_rate: expected a float >= 0 or a schedule, got {value!r}")
            self._lr = value

    lr = learning_rate

    def _current_lr(self) -> float:
        lr = self._lr
        return float(lr(self.iterations.value)) if callable(lr) else lr

    # ---------------------------------------------------------------- binding to a model's buffers
    def build(self, params, grads, var_segments, ranges):
        """params, grads: flat float32 arrays; var_segments: (start, stop) of each trainable weight;
        ranges: merged (start, stop) of the weights to update now."""
        xp = _xp(params)
        if self._params is None or self._params.shape != params.shape:
            self.slots = {k: xp.zeros_like(params) for k in self.slot_names}
        self._params, self._grads, self._tmp = params, grads, xp.empty_like(params)
        self.set_ranges(var_segments, ranges)
        self._kernel = None  # the fused C++ update (forgeml.ops.optimizer_update) for NumPy buffers
        spec = self.kernel_spec() if type(self) in _KERNEL_TYPES else None  # subclasses may change the rule
        if xp is np and spec is not None:
            from ... import ops
            self._kernel = (ops.optimizer_update, spec[0], {**spec[1], "clipnorm": 0.0, "clipvalue": 0.0,
                                                            "global_clipnorm": 0.0})

    def kernel_spec(self):
        """(kind, hyper-parameters) of the C++ update this optimizer matches exactly, or None."""
        return None

    def _hyper_common(self):
        return {"weight_decay": self.weight_decay or 0.0, "clipnorm": self.clipnorm or 0.0,
                "clipvalue": self.clipvalue or 0.0, "global_clipnorm": self.global_clipnorm or 0.0}

    def set_ranges(self, var_segments, ranges):
        self._segments = [s for s in var_segments if any(a <= s[0] and s[1] <= b for a, b in ranges)]
        self._ranges = list(ranges)

    @property
    def built(self):
        return self._params is not None

    @property
    def variables(self):
        if not self.built:
            return []
        return [self.iterations.value, *self.slots.values()]

    # ---------------------------------------------------------------- one step
    def _apply_flat(self):
        """Update the bound parameters from the bound gradients."""
        lr = self._current_lr()
        p_all, g_all, tmp_all = self._params, self._grads, self._tmp
        self._clip()
        if self._kernel is not None:
            update, kind, hyper = self._kernel
            t = self.iterations.value + 1
            for a, b in self._ranges:
                update(p_all[a:b], g_all[a:b], optimizer=kind, hyper=hyper,
                       slots={k: s[a:b] for k, s in self.slots.items()}, lr=lr, t=t)
            self.iterations.value += 1
            return
        for a, b in self._ranges:
            p, g, tmp = p_all[a:b], g_all[a:b], tmp_all[a:b]
            if self.weight_decay:
                p -= p * (self.weight_decay * lr)
            self.update_step(p, g, lr, {k: s[a:b] for k, s in self.slots.items()}, tmp)
        self.iterations.value += 1

    def apply_gradients(self, grads_and_vars):
        """Keras's ``optimizer.apply_gradients(zip(grads, variables))``: one update of each variable
        from its gradient (variables with a None gradient are skipped). Slots live per variable."""
        from .per_variable import apply_gradients
        apply_gradients(self, grads_and_vars)
        return self.iterations

    def apply(self_or_grads, *args, **kwargs):
        """Without arguments: update the bound flat buffers (the model's fast path). With
        (grads, variables): Keras 3's ``optimizer.apply(grads, trainable_variables)``."""
        self = self_or_grads
        if args or kwargs:
            grads = args[0] if args else kwargs["grads"]
            variables = args[1] if len(args) > 1 else kwargs.get("trainable_variables")
            return self.apply_gradients(zip(grads, variables))
        return self._apply_flat()

    def _clip(self):
        g = self._grads
        xp = _xp(g)
        if self.clipvalue is not None:
            for a, b in self._ranges:
                xp.clip(g[a:b], -self.clipvalue, self.clipvalue, out=g[a:b])
        elif self.clipnorm is not None:
            for a, b in self._segments:
                n = math.sqrt(float(xp.dot(g[a:b], g[a:b])))
                if n > self.clipnorm:
                    g[a:b] *= self.clipnorm / n
        elif self.global_clipnorm is not None:
            n = math.sqrt(sum(float(xp.dot(g[a:b], g[a:b])) for a, b in self._ranges))
            if n > self.global_clipnorm:
                for a, b in self._ranges:
                    g[a:b] *= self.global_clipnorm / n

    def update_step(self, p, g, lr, slots, tmp):
        raise NotImplementedError

    # ---------------------------------------------------------------- config
    def get_config(self):
        lr = self._lr
        return {"name": self.name,
                "learning_rate": schedules.serialize(lr) if isinstance(lr, LearningRateSchedule) else lr,
                "weight_decay": self.weight_decay, "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)


def _xp(a):
    if type(a).__module__.split(".", 1)[0] == "cupy":
        import cupy
        return cupy
    return np


class SGD(Optimizer):
    """momentum == 0: p -= lr g. Otherwise m = momentum m - lr g; p += m, or with nesterov
    p += momentum m - lr g."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if not 0 <= momentum <= 1:
            raise ValueError(f"`momentum` must be a float between [0, 1]. Received: momentum={momentum}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.slot_names = ("momentum",) if self.momentum else ()

    def update_step(self, p, g, lr, slots, tmp):
        xp = _xp(p)
        if not self.momentum:
            xp.multiply(g, lr, out=tmp)
            p -= tmp
            return
        m = slots["momentum"]
        m *= self.momentum
        xp.multiply(g, lr, out=tmp)
        m -= tmp
        if self.nesterov:
            p -= tmp
            xp.multiply(m, self.momentum, out=tmp)
            p += tmp
        else:
            p += m

    def kernel_spec(self):
        return "sgd", {**self._hyper_common(), "momentum": self.momentum, "nesterov": float(self.nesterov)}

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
    p -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)   (t = step + 1, eps = 1e-7)."""
    slot_names = ("momentum", "velocity")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = float(beta_1), float(beta_2), float(epsilon), bool(amsgrad)
        if self.amsgrad:
            self.slot_names = ("momentum", "velocity", "velocity_hat")

    def update_step(self, p, g, lr, slots, tmp):
        xp = _xp(p)
        t = self.iterations.value + 1
        alpha = lr * math.sqrt(1 - self.beta_2 ** t) / (1 - self.beta_1 ** t)
        m, v = slots["momentum"], slots["velocity"]
        xp.subtract(g, m, out=tmp)
        tmp *= 1 - self.beta_1
        m += tmp
        xp.multiply(g, g, out=tmp)
        tmp -= v
        tmp *= 1 - self.beta_2
        v += tmp
        if self.amsgrad:
            vh = slots["velocity_hat"]
            xp.maximum(vh, v, out=vh)
            v = vh
        xp.sqrt(v, out=tmp)
        tmp += self.epsilon
        xp.divide(m, tmp, out=tmp)
        tmp *= alpha
        p -= tmp

    def kernel_spec(self):
        return "adam", {**self._hyper_common(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                        "epsilon": self.epsilon, "amsgrad": float(self.amsgrad)}

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (p -= lr * weight_decay * p before the Adam step)."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        if weight_decay is None:
            raise ValueError("AdamW: weight_decay must be a float")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay=weight_decay, **kwargs)


class RMSprop(Optimizer):
    """v = rho v + (1 - rho) g^2; (centered: a = rho a + (1 - rho) g, v - a^2);
    step = lr g / sqrt(v + eps); with momentum: m = momentum m + step, p -= m."""

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon, self.centered = float(rho), float(momentum), float(epsilon), bool(centered)
        names = ["velocity"]
        if self.momentum:
            names.append("momentum")
        if self.centered:
            names.append("average_gradient")
        self.slot_names = tuple(names)

    def update_step(self, p, g, lr, slots, tmp):
        xp = _xp(p)
        v = slots["velocity"]
        v *= self.rho
        xp.multiply(g, g, out=tmp)
        tmp *= 1 - self.rho
        v += tmp
        if self.centered:
            a = slots["average_gradient"]
            a *= self.rho
            a += (1 - self.rho) * g
            xp.multiply(a, a, out=tmp)
            xp.subtract(v, tmp, out=tmp)
        else:
            tmp[...] = v
        tmp += self.epsilon
        xp.sqrt(tmp, out=tmp)
        xp.divide(g, tmp, out=tmp)
        tmp *= lr
        if self.momentum:
            m = slots["momentum"]
            m *= self.momentum
            m += tmp
            p -= m
        else:
            p -= tmp

    def kernel_spec(self):
        return "rmsprop", {**self._hyper_common(), "rho": self.rho, "momentum": self.momentum,
                           "epsilon": self.epsilon, "centered": float(self.centered)}

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered}


_KERNEL_TYPES = (SGD, Adam, AdamW, RMSprop)
_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop}

from .extra import Adadelta, Adagrad, Adamax, Ftrl, Lion, Nadam  # noqa: E402  (they subclass Optimizer)

_BY_NAME.update({"nadam": Nadam, "adagrad": Adagrad, "adamax": Adamax, "adadelta": Adadelta, "lion": Lion,
                 "ftrl": Ftrl})
__all__ += ["Nadam", "Adagrad", "Adamax", "Adadelta", "Lion", "Ftrl"]


def get(identifier) -> Optimizer:
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = _BY_NAME.get(identifier["class_name"].lower())
        if cls is not None:
            return cls.from_config(identifier.get("config", {}))
    raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}. Known optimizers: "
                     f"{sorted(c.__name__ for c in _BY_NAME.values())}")


def serialize(opt: Optimizer) -> dict:
    return {"module": "keras.optimizers", "class_name": type(opt).__name__, "config": opt.get_config()}


def deserialize(config) -> Optimizer:
    return get(config)
