"""Knowledge distillation in the shape of Keras 3's ``keras.distillation``:
``Distiller(teacher, student, distillation_losses=LogitsDistillation(temperature=3),
student_loss_weight=0.5)``, compiled and fitted like a model.

The loss per batch is ``student_loss_weight * student_loss + (1 - student_loss_weight) *
distillation_loss``. ``LogitsDistillation`` is the KL divergence between the teacher's and the
student's softmax at temperature T, times T^2 (so its gradient keeps its size as T grows). The
teacher is frozen (only run forward, in inference mode); its logits are its last layer's output
before the softmax. The student must end in a softmax fused with a (sparse) categorical
cross-entropy, the usual classifier; ``distiller.student`` is then an ordinary trained model.
"""

from __future__ import annotations

import numpy as np

from . import constraints, utils

__all__ = ["Distiller", "LogitsDistillation"]


class LogitsDistillation:
    def __init__(self, temperature=3.0):
        if not float(temperature) > 0:
            raise ValueError(f"temperature: expected > 0, got {temperature}")
        self.temperature = float(temperature)

    def loss_and_grad(self, teacher_logits, student_logits):
        """(mean loss, gradient wrt the student logits, per batch mean)."""
        T = self.temperature
        n = student_logits.shape[0]
        pt = _softmax(teacher_logits / T)
        log_ps = _log_softmax(student_logits / T)
        loss = float((pt * (np.log(np.maximum(pt, 1e-30)) - log_ps)).sum(axis=-1).mean()) * T * T
        grad = (np.exp(log_ps) - pt) * (T / n)  # d(T^2 KL)/dz = T (p_s - p_t)
        return loss, grad.astype(np.float32)


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(z):
    s = z - z.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


def _logits(model, x):
    """The model's output before its final softmax (inference mode)."""
    layers = model.layers
    for layer in layers[:-1]:
        x = layer.forward(x, False)
    last = layers[-1]
    if getattr(getattr(last, "activation", None), "name", None) != "softmax":
        return last.forward(x, False)  # already logits
    return last.forward(x, False, logits=True)


class Distiller:
    def __init__(
        self,
        teacher,
        student,
        distillation_losses=None,
        distillation_loss_weights=None,
        student_loss_weight=0.5,
        name="distiller",
    ):
        if teacher is student:
            raise ValueError("Distiller: teacher and student must be different models")
        if not 0.0 <= float(student_loss_weight) <= 1.0:
            raise ValueError(f"student_loss_weight: expected a value in [0, 1], got {student_loss_weight}")
        losses = distillation_losses if distillation_losses is not None else LogitsDistillation()
        losses = losses if isinstance(losses, (list, tuple)) else [losses]
        if not all(isinstance(d, LogitsDistillation) for d in losses):
            raise NotImplementedError("Distiller: forgeml implements LogitsDistillation (FeatureDistillation not yet)")
        weights = distillation_loss_weights or [1.0] * len(losses)
        if len(weights) != len(losses):
            raise ValueError("distillation_loss_weights: one weight per distillation loss")
        self.teacher, self.student, self.name = teacher, student, name
        self.distillation_losses, self.distillation_loss_weights = list(losses), [float(w) for w in weights]
        self.student_loss_weight = float(student_loss_weight)
        self.teacher.trainable = False

    def compile(self, optimizer="adam", loss=None, metrics=None, **kwargs):
        """The student's own loss and metrics; the distillation terms are added in fit."""
        self.student.compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def fit(self, x, y, epochs=1, batch_size=32, verbose=0, shuffle=True):
        s = self.student
        s._assert_compiled("Distiller.fit")
        x = s._prepare_x(x)
        if not self.teacher.built:
            self.teacher.build((None, *x.shape[1:]))
        n = x.shape[0]
        yy = s._prepare_y(y, n)
        s._ready()
        if not s._fused:
            raise NotImplementedError(
                "Distiller: the student must end in a softmax with a (sparse) categorical cross-entropy loss"
            )
        rng = utils.global_rng()
        history = {"loss": [], "student_loss": [], "distillation_loss": []}
        w = self.student_loss_weight
        for epoch in range(epochs):
            perm = rng.permutation(n) if shuffle else np.arange(n)
            sums = np.zeros(3)
            for a in range(0, n, batch_size):
                idx = perm[a : a + batch_size]
                xb, yb = x[idx], yy[idx]
                m = xb.shape[0]
                t_logits = np.array(_logits(self.teacher, xb))
                h = xb
                layers = s.layers
                for layer in layers[:-1]:
                    h = layer.forward(h, True)
                z = layers[-1].forward(h, True, logits=True)
                s_total, _, g = s.loss.step_logits(yb, z, None, m, True)
                g = w * g
                d_total = 0.0
                for dl, dw in zip(self.distillation_losses, self.distillation_loss_weights):
                    dloss, dgrad = dl.loss_and_grad(t_logits, np.asarray(z, np.float32))
                    g = g + (1 - w) * dw * dgrad
                    d_total += dw * dloss
                for i in range(len(layers) - 1, -1, -1):
                    g = layers[i].backward(g, i > 0)
                s.optimizer.apply()
                if s._constrained:
                    constraints.apply(s._constrained)
                sl = float(s_total) / m
                sums += np.array([w * sl + (1 - w) * d_total, sl, d_total]) * m
            for key, v in zip(history, sums / n):
                history[key].append(float(v))
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs} - loss: {history['loss'][-1]:.4f}")
        return history

    def evaluate(self, x, y, **kwargs):
        return self.student.evaluate(x, y, **kwargs)

    def predict(self, x, **kwargs):
        return self.student.predict(x, **kwargs)
