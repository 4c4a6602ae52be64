"""ONNX graphs for forgeml's SVC (and NuSVC) and LinearSVC, used by ``forgeml.onnx.to_onnx``.

The decision values are built from standard operators in float64 (X cast once), the precision
forgeml predicts in, so the exported labels agree with ``predict`` even for points next to the
decision boundary. Outputs, as skl2onnx orders them: "label" (int64, classes_) then "scores"
(float32, ``decision_function``'s values and shape).

SVC: K = kernel(X, support_vectors_) (linear, poly, rbf or sigmoid), the one-vs-one values
K @ W - rho (libsvm's: > 0 votes for the pair's first class), votes counted with two 0/1
matrices and ArgMax (ties to the lowest class, as libsvm); scores as decision_function:
-dec for two classes, scikit-learn's ovr transform (votes + confidences / (3 (|conf| + 1)))
or the raw ovo values. break_ties=True takes the ArgMax of the ovr scores.
LinearSVC: X @ coef_.T + intercept_; two classes: label classes_[dec > 0], else ArgMax.
"""

from __future__ import annotations

import numpy as np


def _const(helper, TensorProto, name, array):
    a = np.asarray(array)
    dtype = TensorProto.INT64 if np.issubdtype(a.dtype, np.integer) else TensorProto.DOUBLE
    a = a.astype(np.int64 if dtype == TensorProto.INT64 else np.float64)
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, dtype, a.shape, a.ravel().tolist()))


class _Graph:
    """A list of nodes with fresh output names."""

    def __init__(self, helper, TensorProto):
        self.h, self.T, self.nodes, self.n = helper, TensorProto, [], 0

    def const(self, array):
        name = f"c{self.n}"
        self.n += 1
        self.nodes.append(_const(self.h, self.T, name, array))
        return name

    def op(self, kind, *inputs, **attrs):
        name = f"t{self.n}"
        self.n += 1
        self.nodes.append(self.h.make_node(kind, list(inputs), [name], **attrs))
        return name

    def output(self, kind, inputs, name, **attrs):
        self.nodes.append(self.h.make_node(kind, list(inputs), [name], **attrs))
        return name


def _kernel(g, est, xd):
    """The kernel matrix K (n, n_SV) of X (float64) against the support vectors."""
    kernel = est.kernel
    if callable(kernel) or kernel not in ("linear", "poly", "rbf", "sigmoid"):
        raise NotImplementedError(f"to_onnx: SVC with kernel={kernel!r} is not supported (linear, poly, rbf, sigmoid)")
    sv = np.asarray(
        est.support_vectors_.toarray() if hasattr(est.support_vectors_, "toarray") else est.support_vectors_
    )
    sv = sv.astype(np.float64)
    dots = g.op("MatMul", xd, g.const(sv.T))
    gamma, coef0 = float(est._gamma), float(est.coef0)
    if kernel == "linear":
        return dots
    if kernel in ("poly", "sigmoid"):
        z = g.op("Add", g.op("Mul", dots, g.const(gamma)), g.const(coef0))
        return g.op("Pow", z, g.const(float(est.degree))) if kernel == "poly" else g.op("Tanh", z)
    xx = g.op("ReduceSum", g.op("Mul", xd, xd), g.const(np.array([1], np.int64)), keepdims=1)
    d2 = g.op("Add", g.op("Sub", xx, g.op("Mul", dots, g.const(2.0))), g.const((sv * sv).sum(1)))
    d2 = g.op("Max", d2, g.const(0.0))
    return g.op("Exp", g.op("Mul", d2, g.const(-gamma)))


def svc_nodes(est, helper, TensorProto, classes_name):
    """Nodes from "X" to "label_index" (int64) and "scores" (float32) for a fitted SVC / NuSVC."""
    g = _Graph(helper, TensorProto)
    k = len(est.classes_)
    xd = g.op("Cast", "X", to=TensorProto.DOUBLE)
    dec = g.op(
        "Sub",
        g.op("MatMul", _kernel(g, est, xd), g.const(np.asarray(est._W, np.float64))),
        g.const(np.asarray(est._rho, np.float64)),
    )
    pairs = est._pairs(k)
    first, second = np.zeros((len(pairs), k)), np.zeros((len(pairs), k))
    for p, (a, b) in enumerate(pairs):
        first[p, a], second[p, b] = 1, 1
    cast = dict(to=TensorProto.DOUBLE)

    def votes(wins_first):  # (n, k) vote counts from a boolean (n, n_pairs)
        lose = g.op("Cast", g.op("Not", wins_first), **cast)
        return g.op(
            "Add",
            g.op("MatMul", g.op("Cast", wins_first, **cast), g.const(first)),
            g.op("MatMul", lose, g.const(second)),
        )

    libsvm_votes = votes(g.op("Greater", dec, g.const(0.0)))
    if k == 2:
        scores = g.op("Neg", g.op("Squeeze", dec, g.const(np.array([1], np.int64))))
    elif est.decision_function_shape == "ovr":
        ovr_votes = votes(g.op("Not", g.op("Less", dec, g.const(0.0))))
        conf = g.op("MatMul", dec, g.const(first - second))
        scale = g.op("Mul", g.op("Add", g.op("Abs", conf), g.const(1.0)), g.const(3.0))
        scores = g.op("Add", ovr_votes, g.op("Div", conf, scale))
    else:
        scores = dec
    by = scores if (est.break_ties and k > 2 and est.decision_function_shape == "ovr") else libsvm_votes
    g.output("ArgMax", [by], "label_index", axis=1, keepdims=0)
    g.output("Cast", [scores], "scores", to=TensorProto.FLOAT)
    return g.nodes, (None,) if k == 2 else (None, k if est.decision_function_shape == "ovr" else len(pairs))


def linear_svc_nodes(est, helper, TensorProto, classes_name):
    """Nodes from "X" to "label_index" and "scores" for a fitted LinearSVC."""
    g = _Graph(helper, TensorProto)
    coef = np.asarray(est.coef_.toarray() if hasattr(est.coef_, "toarray") else est.coef_, np.float64)
    k = len(est.classes_)
    xd = g.op("Cast", "X", to=TensorProto.DOUBLE)
    dec = g.op(
        "Add",
        g.op("MatMul", xd, g.const(coef.T)),
        g.const(np.broadcast_to(np.asarray(est.intercept_, np.float64), (coef.shape[0],))),
    )
    if k == 2:
        dec = g.op("Squeeze", dec, g.const(np.array([1], np.int64)))
        g.output("Cast", [g.op("Greater", dec, g.const(0.0))], "label_index", to=TensorProto.INT64)
    else:
        g.output("ArgMax", [dec], "label_index", axis=1, keepdims=0)
    g.output("Cast", [dec], "scores", to=TensorProto.FLOAT)
    return g.nodes, (None,) if k == 2 else (None, k)
