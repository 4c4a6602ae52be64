"""SimpleRNN, LSTM and GRU with Keras 3 arguments, weight layouts and gate orders.

x is (N, T, F); kernel (F, G*H), recurrent_kernel (H, G*H), bias (G*H,) — GRU with
reset_after=True: (2, 3H), input row then recurrent row. Gates: LSTM i, f, c, o; GRU z, r, h.

Two paths, same arithmetic:

- fast: the fused sequence ops (forgeml.ops.simple_rnn / lstm / gru and their grads; NumPy or
  CuPy), taken for float32 input with the default activations (LSTM/GRU: tanh and sigmoid; GRU
  reset_after). Under mixed_bfloat16 NumPy input runs them with precision="bf16" (every
  product on bf16 operands, float32 sums); CuPy input, which has no bf16 recurrent kernels,
  runs them in float32.
  Input ``dropout`` keeps it: as Keras 3 does before its fused (cuDNN) call, one (N, F) mask per
  batch multiplies x at every step, before the sequence op.
- loop: a one-step cell per time step (xp matmuls), the fallback for everything else — other
  activations, reset_after=False, float64 arrays, and ``recurrent_dropout``. Like Keras's
  cells, recurrent dropout draws one (N, H) mask per batch and, at every step, multiplies the
  h_{t-1} that enters the recurrent kernel by it; the state that carries on (LSTM's c, GRU's
  z·h_{t-1} term) is not dropped. The mask is per sample, so it cannot be folded into the
  recurrent kernel; that is why it leaves the fused op.

``go_backwards`` reads the sequence from the end and, as Keras, returns outputs in that
processing order. ``return_state`` makes the layer return [output, h_T] (LSTM: [output, h_T, c_T]);
backward then takes the matching list of gradients.
"""
from __future__ import annotations

import numpy as np

from .. import activations, backend, initializers, utils
from . import masking
from .base import KerasTensor, Layer
from .convolutional import auto_name, reject_unsupported

__all__ = ["SimpleRNN", "LSTM", "GRU"]

_ops = None


def rnn_ops():
    global _ops
    if _ops is None:
        from ... import ops
        _ops = ops
    return _ops


def _mm(a, b, trans_a=False, trans_b=False, precision=None):
    """The loop path's product: forgeml's float32 matmul (bf16 operands with float32 sums under
    precision="bf16"), or xp's for other dtypes (float64 tests)."""
    if a.dtype == np.float32 and b.dtype == np.float32:
        return backend.matmul(a, b, trans_a=trans_a, trans_b=trans_b, precision=precision)
    return (a.T if trans_a else a) @ (b.T if trans_b else b)


def _use_cudnn(value):
    """Accepted for Keras compatibility: the fused sequence op is forgeml's counterpart, tried
    whenever the layer's options allow it."""
    if value not in ("auto", True, False):
        raise ValueError(f"Invalid valid received for argument `use_cudnn`. Expected one of {{'auto', True, False}}. "
                         f"Received: use_cudnn={value}")
    return value


def _rate(value, name):
    value = float(value)
    if not 0 <= value <= 1:
        raise ValueError(f"Invalid value received for argument `{name}`. Expected a float value between 0 and 1. "
                         f"Received: {name}={value}")
    return min(value, 1.0)


class _RNN(Layer):
    _gates = 1
    _cell = ""
    # mixed_bfloat16: the input projection, the recurrent product and their gradients run on
    # bf16 operands with float32 sums (the fused ops' precision="bf16", or the loop path's bf16
    # matmuls); gate math, states and weights stay float32.
    supports_bf16 = True

    def _precision(self):
        """What the products run in: "bf16" under mixed_bfloat16 for NumPy arrays, else None."""
        return self.dtype_policy.matmul_precision if self.xp is np else None

    def _mm(self, a, b, trans_a=False, trans_b=False):
        return _mm(a, b, trans_a, trans_b, self._precision())

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 dropout=0.0, recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, **kwargs):
        super().__init__(**auto_name(self, kwargs))
        cls = type(self).__name__
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"Received an invalid value for argument `units`, expected a positive integer, "
                             f"got {units!r}.")
        reject_unsupported(cls, kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
                           bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer)
        self._set_constraints(kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
                              bias_constraint=bias_constraint)
        if stateful:
            raise NotImplementedError(f"{cls}: stateful=True is not supported by forgeml.keras yet")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.dropout = _rate(dropout, "dropout")
        self.recurrent_dropout = _rate(recurrent_dropout, "recurrent_dropout")
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = False
        self.unroll = bool(unroll)
        self.initial_state_grads = None
        self.zero_output_for_mask = False  # Bidirectional sets it (masked steps output 0, as Keras)

    # ---------------------------------------------------------------- weights and shapes
    def _bias_shape(self):
        return (self._gates * self.units,)

    def _bias_init(self):
        return self.bias_initializer

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected input of shape (batch, timesteps, "
                             f"features) with known features, got {tuple(input_shape)}")
        g = self._gates * self.units
        self.kernel = self.add_weight((input_shape[-1], g), self.kernel_initializer, "kernel",
                                      constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight((self.units, g), self.recurrent_initializer, "recurrent_kernel",
                                                constraint=self.recurrent_constraint)
        self.bias = self.add_weight(self._bias_shape(), self._bias_init(), "bias",
                                    constraint=self.bias_constraint) if self.use_bias else None

    def compute_output_shape(self, input_shape):
        n, t = input_shape[0], input_shape[1]
        out = (n, t, self.units) if self.return_sequences else (n, self.units)
        if not self.return_state:
            return out
        return [out] + [(n, self.units)] * self._n_states

    _n_states = 1

    # ---------------------------------------------------------------- forward
    def _mask(self, n, size, rate, dtype):
        rng = self._rng or utils.global_rng()
        keep = rng.random((n, size)) >= rate
        mask = (keep * (1.0 / (1.0 - rate) if rate < 1 else 0.0)).astype(dtype)
        return mask if self.xp is np else self.xp.asarray(mask)

    def _fast_ok(self):
        return self.recurrent_activation is activations.sigmoid and self.activation is activations.tanh

    def forward(self, x, training=False, initial_state=None, mask=None):
        n, t, f = x.shape
        in_mask = masking.mask_of(x) if mask is None else mask
        tmask = masking.as_bool_mask(self.xp, in_mask, n, t)  # masked steps keep the previous state
        self._dmask = self._rmask = None
        if training and self.dropout > 0:
            self._dmask = self._mask(n, f, self.dropout, x.dtype)
            x = x * self._dmask[:, None, :]
        if self.go_backwards:
            x = x[:, ::-1]
            tmask = None if tmask is None else tmask[:, ::-1]
        self._tmask = tmask
        if training and self.recurrent_dropout > 0:
            self._rmask = self._mask(n, self.units, self.recurrent_dropout, x.dtype)
        states = self._initial_states(initial_state, n, x.dtype)
        self._fast = (x.dtype == np.float32 and self._rmask is None and tmask is None and self._fast_ok()
                      and all(s is None or s.dtype == np.float32 for s in states))
        if self._fast:
            y, *final = self._fast_forward(x, states)
        else:
            y, *final = self._loop_forward(x, states)
        main = y if self.return_sequences else final[0]
        if self.return_sequences and in_mask is not None:
            masking.attach(main, in_mask)
        return [main, *final] if self.return_state else main

    def _initial_states(self, initial_state, n, dtype):
        if initial_state is None:
            return [None] * self._n_states
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        if len(states) != self._n_states:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected {self._n_states} initial state(s), "
                             f"got {len(states)}")
        out = []
        for i, s in enumerate(states):
            s = backend.to_xp(s, self.xp, dtype=dtype)
            if tuple(s.shape) != (n, self.units):
                raise ValueError(f"initial_state[{i}]: expected shape {(n, self.units)}, got {tuple(s.shape)}")
            out.append(s)
        return out

    def _bias_value(self, dtype):
        if self.use_bias:
            return self.bias.value
        zeros = self._bufs.get("zero_bias")
        if zeros is None or zeros.dtype != dtype:
            zeros = self._bufs["zero_bias"] = self.xp.zeros(self._bias_shape(), dtype)
        return zeros

    def _fast_forward(self, x, states):
        out = getattr(rnn_ops(), self._cell)(x, self.kernel.value, self.recurrent_kernel.value,
                                             self._bias_value(x.dtype), *states, **self._op_kwargs(),
                                             return_cache=True, precision=self._precision())
        self._cache = out[-1]
        return out[:-1]

    def _op_kwargs(self):
        return {}

    # ---------------------------------------------------------------- backward
    def backward(self, dy, need_dx=True):
        if self.return_state:
            grads = list(dy) if isinstance(dy, (list, tuple)) else [dy]
            grads += [None] * (1 + self._n_states - len(grads))
            d_main, d_states = grads[0], grads[1:]
        else:
            d_main, d_states = dy, [None] * self._n_states
        if self.return_sequences:
            dseq = d_main
        else:
            dseq = None
            if d_main is not None:  # the last state is the output: their gradients add
                d_states[0] = d_main if d_states[0] is None else d_main + d_states[0]
        if self._fast:
            g = getattr(rnn_ops(), self._cell + "_grad")(self._cache, dseq, *d_states)
            dx, dk, dr, db = g.dx, g.dkernel, g.drecurrent_kernel, g.dbias
            self.initial_state_grads = [g.dh0, g.dc0] if self._n_states == 2 else [g.dh0]
        else:
            dx, dk, dr, db, d0 = self._loop_backward(dseq, d_states)
            self.initial_state_grads = d0
        if self._trainable:
            self.kernel.grad[...] = dk
            self.recurrent_kernel.grad[...] = dr
            if self.use_bias:
                self.bias.grad[...] = db
        if not need_dx:
            return None
        if self.go_backwards:
            dx = dx[:, ::-1]
        if self._dmask is not None:
            dx = dx * self._dmask[:, None, :]
        return dx

    # ---------------------------------------------------------------- the loop path
    def _loop_forward(self, x, states):
        """Project every step's input at once, then run the cell step by step."""
        xp = self.xp
        n, t, f = x.shape
        h = self.units
        self._x = x
        xz = self._mm(xp.ascontiguousarray(x).reshape(n * t, f), self.kernel.value)
        xz = xz.reshape(n, t, -1)
        self._steps = []
        carry = [xp.zeros((n, h), x.dtype) if s is None else s for s in states]
        y = xp.empty((n, t, h), x.dtype)
        for i in range(t):
            hp = carry[0] if self._rmask is None else carry[0] * self._rmask
            new, saved = self._step(xz[:, i], hp, carry)
            if self._tmask is not None:
                m = self._tmask[:, i:i + 1]
                new = [xp.where(m, a, b) for a, b in zip(new, carry)]
            carry = new
            self._steps.append(saved)
            y[:, i] = carry[0] if self._tmask is None or not self.zero_output_for_mask else \
                xp.where(self._tmask[:, i:i + 1], carry[0], 0)
        return (y, *carry)

    def _loop_backward(self, dseq, d_states):
        xp = self.xp
        x = self._x
        n, t, f = x.shape
        dxz = xp.empty((n, t, self._gates * self.units), x.dtype)
        self._dr = xp.zeros_like(self.recurrent_kernel.value, dtype=x.dtype)
        self._db_rec = None
        carry = [xp.zeros((n, self.units), x.dtype) if d is None else d.astype(x.dtype) for d in d_states]
        for i in range(t - 1, -1, -1):
            if dseq is not None:
                zeroed = self._tmask is not None and self.zero_output_for_mask
                carry[0] = carry[0] + (xp.where(self._tmask[:, i:i + 1], dseq[:, i], 0) if zeroed else dseq[:, i])
            keep = None
            if self._tmask is not None:  # masked rows pass their state gradient straight through
                m = self._tmask[:, i:i + 1]
                keep = [xp.where(m, 0, c) for c in carry]
                carry = [xp.where(m, c, 0) for c in carry]
            dxz[:, i], carry, direct = self._step_back(self._steps[i], carry)
            if self._rmask is not None:  # carry[0] is the gradient of the dropped h_{t-1}
                carry[0] = carry[0] * self._rmask
            if direct is not None:  # and this one of h_{t-1} itself
                carry[0] = carry[0] + direct
            if keep is not None:
                carry = [c + k for c, k in zip(carry, keep)]
        flat = dxz.reshape(n * t, -1)
        dk = self._mm(xp.ascontiguousarray(x).reshape(n * t, f), flat, trans_a=True)
        dx = self._mm(flat, self.kernel.value, trans_b=True).reshape(n, t, f)
        db = self._bias_grad(flat.sum(axis=0))
        return dx, dk, self._dr, db, carry

    def _bias_grad(self, dsum):
        return dsum

    def _input_bias(self):
        return 0 if not self.use_bias else self.bias.value

    # ---------------------------------------------------------------- calling and config
    def __call__(self, x, training=None, initial_state=None, mask=None):
        from ..autodiff import tape as _tape
        from . import _calling

        if isinstance(x, KerasTensor):
            # training stays unset in the node unless given: the model's fit / predict decides it
            kw = {} if training is None else {"training": training}
            if initial_state is None and not self.return_state:
                return super().__call__(x, **kw)
            if initial_state is not None:
                kw["initial_state"] = initial_state
            return _calling.symbolic_call(self, x, kw)  # several outputs / inputs: a general graph node
        states = [] if initial_state is None else (
            list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state])
        if _tape.recording() or _tape.is_tensor(x) or any(_tape.is_tensor(s) for s in states):
            if initial_state is None and not self.return_state:
                return super().__call__(x, training=training)  # one tape node, its backward the VJP
            return _tape_call(self, x, states, bool(training))
        xp = backend.xp_of(x) if hasattr(x, "shape") else self.xp
        x = backend.to_xp(x, xp, dtype=np.float32)
        self._build_once((None, *x.shape[1:]), xp)
        out = self.forward(x, training, initial_state, mask)
        if isinstance(out, list):
            return [o.copy() for o in out]
        return masking.attach(out.copy(), masking.mask_of(out))

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation.name,
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": None, "recurrent_regularizer": None, "bias_regularizer": None,
                "activity_regularizer": None, "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
                "seed": self.seed, "return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "stateful": self.stateful, "unroll": self.unroll}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("kernel_initializer", "recurrent_initializer", "bias_initializer"):
            if key in config:
                config[key] = initializers.get(config[key])
        return cls(**config)


def _tape_call(layer, x, states, training):
    """An RNN with return_state and / or initial_state on the tape: one node per output, all
    sharing the forward's saved state. The backward is linear in the output gradients, so each
    node's VJP runs it with its own output's gradient and the tape sums the parts (weights,
    input and initial states)."""
    from ..autodiff import tape as _tape
    from ..autodiff.tape import Tensor

    px = _tape.lift(x)
    ps = [_tape.lift(s) for s in states]
    xv = backend.to_xp(_tape.value_of(px), backend.xp_of(_tape.value_of(px)), dtype=np.float32)
    layer._build_once((None, *xv.shape[1:]), backend.xp_of(xv))
    wvars = layer.trainable_weights
    leaves = [_tape.lift(v) for v in wvars] if _tape.recording() else []
    saved = layer._bufs
    layer._bufs = {}
    try:
        out = layer.forward(xv, training, [_tape.value_of(s) for s in ps] or None)
        state = dict(layer.__dict__)
    finally:
        layer._bufs = saved
    outs = out if isinstance(out, list) else [out]

    def vjp_for(j):
        def vjp(g):
            current = dict(layer.__dict__)
            layer.__dict__.update(state)
            try:
                grads = [None] * len(outs)
                grads[j] = g.astype(np.float32, copy=True)
                dx = layer.backward(grads if layer.return_state else grads[0], type(px) is Tensor)
                dstates = [None if d is None else d.copy() for d in layer.initial_state_grads] if ps else []
                dweights = [v.grad.copy() for v in wvars] if leaves else []
            finally:
                layer.__dict__.clear()
                layer.__dict__.update(current)
            return [dx, *dstates, *dweights]

        return vjp

    parents = (px, *ps, *leaves)
    made = [Tensor(o, parents, vjp_for(j), layer) for j, o in enumerate(outs)]
    return made if isinstance(out, list) else made[0]


class SimpleRNN(_RNN):
    """h_t = activation(x_t·kernel + h_{t-1}·recurrent_kernel + bias)."""
    _gates, _cell = 1, "simple_rnn"

    def __init__(self, units, activation="tanh", **kwargs):
        if "recurrent_activation" in kwargs:
            raise TypeError("SimpleRNN has no recurrent_activation argument")
        super().__init__(units, activation=activation, **kwargs)

    def _fast_ok(self):
        return self.activation.name in ("tanh", "sigmoid", "relu", "linear")

    def _op_kwargs(self):
        return {"activation": self.activation.name}

    def _step(self, xz, hp, carry):
        z = xz + self._mm(hp, self.recurrent_kernel.value)
        if self.use_bias:
            z += self.bias.value
        h = self.activation.forward(z) if self.activation is not activations.linear else z
        return [h], (hp, z, h)

    def _step_back(self, saved, carry):
        hp, z, h = saved
        dz = self.activation.backward(carry[0].copy(), h, z)
        self._dr += self._mm(hp, dz, trans_a=True)
        return dz, [self._mm(dz, self.recurrent_kernel.value, trans_b=True)], None

    def get_config(self):
        return super().get_config()


class LSTM(_RNN):
    """Gates i, f, c, o: c_t = f·c_{t-1} + i·act(z_c); h_t = o·act(c_t), gates through recurrent_activation."""
    _gates, _cell, _n_states = 4, "lstm", 2

    def __init__(self, units, unit_forget_bias=True, use_cudnn="auto", **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.use_cudnn = _use_cudnn(use_cudnn)

    def _bias_init(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        init, h = self.bias_initializer, self.units

        def forget_one(shape, dtype="float32"):  # Keras: [init(H), ones(H), init(2H)]
            return np.concatenate([np.asarray(init((h,)), np.float64), np.ones(h),
                                   np.asarray(init((2 * h,)), np.float64)]).astype(dtype)
        return forget_one

    def _step(self, xz, hp, carry):
        h, ra, act = self.units, self.recurrent_activation, self.activation
        z = xz + self._mm(hp, self.recurrent_kernel.value)
        if self.use_bias:
            z += self.bias.value
        i, f, o = ra.forward(z[:, :h]), ra.forward(z[:, h:2 * h]), ra.forward(z[:, 3 * h:])
        g = act.forward(z[:, 2 * h:3 * h])
        c = f * carry[1] + i * g
        ac = act.forward(c)
        return [o * ac, c], (hp, z, i, f, g, o, carry[1], c, ac)

    def _step_back(self, saved, carry):
        hp, z, i, f, g, o, cp, c, ac = saved
        h, ra, act = self.units, self.recurrent_activation, self.activation
        dh, dc = carry
        dc = dc + act.backward(dh * o, ac, c)
        dz = self.xp.empty_like(z)
        dz[:, :h] = ra.backward(dc * g, i, z[:, :h])
        dz[:, h:2 * h] = ra.backward(dc * cp, f, z[:, h:2 * h])
        dz[:, 2 * h:3 * h] = act.backward(dc * i, g, z[:, 2 * h:3 * h])
        dz[:, 3 * h:] = ra.backward(dh * ac, o, z[:, 3 * h:])
        self._dr += self._mm(hp, dz, trans_a=True)
        return dz, [self._mm(dz, self.recurrent_kernel.value, trans_b=True), dc * f], None

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation.name,
                "unit_forget_bias": self.unit_forget_bias, "use_cudnn": self.use_cudnn}


class GRU(_RNN):
    """Gates z, r, h: h_t = z·h_{t-1} + (1 - z)·act(x_h + r·(h_{t-1}·U_h + b_rec_h)) with reset_after=True
    (bias (2, 3H): input row, recurrent row); reset_after=False applies r before the product."""
    _gates, _cell = 3, "gru"

    def __init__(self, units, reset_after=True, use_cudnn="auto", **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = bool(reset_after)
        self.use_cudnn = _use_cudnn(use_cudnn)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _fast_ok(self):
        return self.reset_after and super()._fast_ok()

    def _step(self, xz, hp, carry):
        h, ra, act, u = self.units, self.recurrent_activation, self.activation, self.recurrent_kernel.value
        if self.use_bias:
            xz = xz + (self.bias.value[0] if self.reset_after else self.bias.value)
        if self.reset_after:
            b = self._mm(hp, u)
            if self.use_bias:
                b += self.bias.value[1]
            pz, pr = xz[:, :h] + b[:, :h], xz[:, h:2 * h] + b[:, h:2 * h]
            z, r = ra.forward(pz), ra.forward(pr)
            ph = xz[:, 2 * h:] + r * b[:, 2 * h:]
            rh = None
        else:
            b = self._mm(hp, u[:, :2 * h])
            pz, pr = xz[:, :h] + b[:, :h], xz[:, h:2 * h] + b[:, h:]
            z, r = ra.forward(pz), ra.forward(pr)
            rh = r * hp
            ph = xz[:, 2 * h:] + self._mm(rh, u[:, 2 * h:])
        hh = act.forward(ph)
        prev = carry[0]  # h_{t-1} itself (hp is the copy the recurrent dropout mask hit)
        return [z * prev + (1 - z) * hh], (hp, prev, pz, pr, ph, z, r, hh, b, rh)

    def _step_back(self, saved, carry):
        hp, prev, pz, pr, ph, z, r, hh, b, rh = saved
        h, ra, act, u, xp = self.units, self.recurrent_activation, self.activation, self.recurrent_kernel.value, self.xp
        dh = carry[0]
        dph = act.backward(dh * (1 - z), hh, ph)
        dpz = ra.backward(dh * (prev - hh), z, pz)
        direct = dh * z
        dhp = xp.zeros_like(hp)
        dxz = xp.empty((hp.shape[0], 3 * h), hp.dtype)
        dxz[:, :h], dxz[:, 2 * h:] = dpz, dph
        if self.reset_after:
            dpr = ra.backward(dph * b[:, 2 * h:], r, pr)
            dxz[:, h:2 * h] = dpr
            db = xp.concatenate([dpz, dpr, dph * r], axis=1)
            self._dr += self._mm(hp, db, trans_a=True)
            dhp += self._mm(db, u, trans_b=True)
            self._db_rec = db.sum(axis=0) if self._db_rec is None else self._db_rec + db.sum(axis=0)
        else:
            drh = self._mm(dph, u[:, 2 * h:], trans_b=True)
            self._dr[:, 2 * h:] += self._mm(rh, dph, trans_a=True)
            dpr = ra.backward(drh * hp, r, pr)
            dxz[:, h:2 * h] = dpr
            dhp += drh * r
            dzr = dxz[:, :2 * h]
            self._dr[:, :2 * h] += self._mm(hp, dzr, trans_a=True)
            dhp += self._mm(xp.ascontiguousarray(dzr), u[:, :2 * h], trans_b=True)
        return dxz, [dhp], direct

    def _bias_grad(self, dsum):
        if not self.reset_after:
            return dsum
        return self.xp.stack([dsum, self.xp.zeros_like(dsum) if self._db_rec is None else self._db_rec])

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation.name,
                "reset_after": self.reset_after, "use_cudnn": self.use_cudnn}
