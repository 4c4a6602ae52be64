"""Nadam, Adagrad, Adamax, Adadelta, Lion and Ftrl with Keras 3's update rules and defaults.

Same contract as the optimizers in __init__.py: ``update_step(p, g, lr, slots, tmp)`` updates one
contiguous range of the flat parameter buffer in place (xp passes, NumPy or CuPy); weight decay
and clipping have already run. ``self.iterations`` is the step count before this update.
"""

from __future__ import annotations

from . import Optimizer, _xp

__all__ = ["Nadam", "Adagrad", "Adamax", "Adadelta", "Lion", "Ftrl"]


class Adagrad(Optimizer):
    """acc += g^2; p -= lr g / sqrt(acc + eps) (acc starts at initial_accumulator_value)."""

    slot_names = ("accumulator",)

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value, self.epsilon = float(initial_accumulator_value), float(epsilon)

    def build(self, params, grads, var_segments, ranges):
        fresh = self._params is None or self._params.shape != params.shape
        super().build(params, grads, var_segments, ranges)
        if fresh:
            self.slots["accumulator"].fill(self.initial_accumulator_value)

    def update_step(self, p, g, lr, slots, tmp):
        xp = _xp(p)
        acc = slots["accumulator"]
        xp.multiply(g, g, out=tmp)
        acc += tmp
        xp.add(acc, self.epsilon, out=tmp)
        xp.sqrt(tmp, out=tmp)
        xp.divide(g, tmp, out=tmp)
        tmp *= lr
        p -= tmp

    def get_config(self):
        return {
            **super().get_config(),
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        }


class Adamax(Optimizer):
    """m += (g - m)(1 - b1); u = max(b2 u, |g|); p -= lr m / ((1 - b1^t)(u + eps))."""

    slot_names = ("m", "u")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def update_step(self, p, g, lr, slots, tmp):
        xp = _xp(p)
        t = self.iterations.value + 1
        m, u = slots["m"], slots["u"]
        xp.subtract(g, m, out=tmp)
        tmp *= 1 - self.beta_1
        m += tmp
        u *= self.beta_2
        xp.maximum(u, abs(g), out=u)
        xp.add(u, self.epsilon, out=tmp)
        xp.divide(m, tmp, out=tmp)
        tmp *= lr / (1 - self.beta_1**t)
        p -= tmp

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class Adadelta(Optimizer):
    """ag = rho ag + (1 - rho) g^2; d = -sqrt(ad + eps) / sqrt(ag + eps) g;
    ad = rho ad + (1 - rho) d^2; p += lr d."""

    slot_names = ("accumulated_grad", "accumulated_delta_var")

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho, self.epsilon = float(rho), float(epsilon)

    def update_step(self, p, g, lr, slots, tmp):
        xp = _xp(p)
        ag, ad = slots["accumulated_grad"], slots["accumulated_delta_var"]
        ag *= self.rho
        ag += (1 - self.rho) * g * g
        d = -xp.sqrt(ad + self.epsilon) / xp.sqrt(ag + self.epsilon) * g
        ad *= self.rho
        ad += (1 - self.rho) * d * d
        d *= lr
        p += d

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class Nadam(Optimizer):
    """Adam with Nesterov momentum and Keras's momentum schedule u_t = b1 (1 - 0.5 * 0.96^t);
    the running product of the u_t advances once per step, before the updates."""

    slot_names = ("momentum", "velocity")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self._u_product = 1.0

    def _u(self, step):
        return self.beta_1 * (1.0 - 0.5 * 0.96**step)

    def apply(self):
        self._u_product *= self._u(self.iterations.value + 1)
        super().apply()

    def update_step(self, p, g, lr, slots, tmp):
        xp = _xp(p)
        t = self.iterations.value + 1
        u_t, u_t1 = self._u(t), self._u(t + 1)
        prod_t = self._u_product
        prod_t1 = prod_t * u_t1
        m, v = slots["momentum"], slots["velocity"]
        xp.subtract(g, m, out=tmp)
        tmp *= 1 - self.beta_1
        m += tmp
        xp.multiply(g, g, out=tmp)
        tmp -= v
        tmp *= 1 - self.beta_2
        v += tmp
        m_hat = m * (u_t1 / (1 - prod_t1)) + g * ((1 - u_t) / (1 - prod_t))
        xp.sqrt(v / (1 - self.beta_2**t), out=tmp)
        tmp += self.epsilon
        xp.divide(m_hat, tmp, out=tmp)
        tmp *= lr
        p -= tmp

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class Lion(Optimizer):
    """p -= lr sign(b1 m + (1 - b1) g); m = b2 m + (1 - b2) g."""

    slot_names = ("momentum",)

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if not 0 < beta_1 <= 1:
            raise ValueError(
                f"Argument `beta_1` must be in the [0, 1] range. Otherwise, the optimizer degenerates "
                f"to SignSGD. Received: beta_1={beta_1}."
            )
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)

    def update_step(self, p, g, lr, slots, tmp):
        xp = _xp(p)
        m = slots["momentum"]
        xp.multiply(m, self.beta_1, out=tmp)
        tmp += (1 - self.beta_1) * g
        xp.sign(tmp, out=tmp)
        tmp *= lr
        p -= tmp
        m *= self.beta_2
        m += (1 - self.beta_2) * g

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}


class Ftrl(Optimizer):
    """Follow-the-regularized-leader (Keras 3's rule, with l1, l2, l2 shrinkage and beta)."""

    slot_names = ("accumulator", "linear")

    def __init__(
        self,
        learning_rate=0.001,
        learning_rate_power=-0.5,
        initial_accumulator_value=0.1,
        l1_regularization_strength=0.0,
        l2_regularization_strength=0.0,
        l2_shrinkage_regularization_strength=0.0,
        beta=0.0,
        **kwargs,
    ):
        super().__init__(learning_rate, **kwargs)
        if learning_rate_power > 0:
            raise ValueError(
                f"`learning_rate_power` needs to be negative or zero. Received: "
                f"learning_rate_power={learning_rate_power}."
            )
        self.learning_rate_power, self.initial_accumulator_value = (
            float(learning_rate_power),
            float(initial_accumulator_value),
        )
        self.l1_regularization_strength = float(l1_regularization_strength)
        self.l2_regularization_strength = float(l2_regularization_strength)
        self.l2_shrinkage_regularization_strength = float(l2_shrinkage_regularization_strength)
        self.beta = float(beta)

    def build(self, params, grads, var_segments, ranges):
        fresh = self._params is None or self._params.shape != params.shape
        super().build(params, grads, var_segments, ranges)
        if fresh:
            self.slots["accumulator"].fill(self.initial_accumulator_value)

    def update_step(self, p, g, lr, slots, tmp):
        xp = _xp(p)
        acc, lin = slots["accumulator"], slots["linear"]
        power = -self.learning_rate_power
        l1, l2 = self.l1_regularization_strength, self.l2_regularization_strength + self.beta / (2 * lr)
        g_shrunk = g + 2 * self.l2_shrinkage_regularization_strength * p
        new_acc = acc + g * g
        lin += g_shrunk - (new_acc**power - acc**power) / lr * p
        quadratic = new_acc**power / lr + 2 * l2
        p[...] = (xp.clip(lin, -l1, l1) - lin) / quadratic
        acc[...] = new_acc

    def get_config(self):
        return {
            **super().get_config(),
            "learning_rate_power": self.learning_rate_power,
            "initial_accumulator_value": self.initial_accumulator_value,
            "l1_regularization_strength": self.l1_regularization_strength,
            "l2_regularization_strength": self.l2_regularization_strength,
            "l2_shrinkage_regularization_strength": self.l2_shrinkage_regularization_strength,
            "beta": self.beta,
        }
