"""keras.ops: every op's forward against NumPy and its tape gradient against float64 central
finite differences (and against torch autograd where torch is installed)."""

import numpy as np
import pytest

from forgeml.keras import ops
from forgeml.keras.autodiff.tape import GradientTape, NoGradientError, Tensor, backward
from gradcheck import numeric_grad

R = np.random.default_rng(7)


def _pos(*shape):
    return R.uniform(0.5, 2.0, shape)


def _any(*shape):
    return R.standard_normal(shape)


def _away(*shape):  # no value near a kink (relu, abs, max ties)
    a = R.uniform(0.3, 1.5, shape) * R.choice([-1, 1], shape)
    return a


# name -> (function of the differentiable inputs, inputs)
CASES = {
    "add_broadcast": (lambda a, b: ops.add(a, b), [_any(3, 5), _any(5)]),
    "subtract": (lambda a, b: ops.subtract(a, b), [_any(3, 5), _any(3, 1)]),
    "multiply": (lambda a, b: ops.multiply(a, b), [_any(2, 3, 5), _any(3, 5)]),
    "divide": (lambda a, b: ops.divide(a, b), [_any(3, 5), _pos(3, 5)]),
    "power": (lambda a, b: ops.power(a, b), [_pos(3, 4), _any(3, 4)]),
    "negative": (lambda a: -a, [_any(4, 3)]),
    "operators": (lambda a, b: (a * 2 - b / 3) ** 2 + 1 / (1 + a * a), [_any(3, 4), _any(3, 4)]),
    "square": (ops.square, [_any(3, 4)]),
    "sqrt": (ops.sqrt, [_pos(3, 4)]),
    "abs": (ops.abs, [_away(3, 4)]),
    "exp": (ops.exp, [_any(3, 4)]),
    "log": (ops.log, [_pos(3, 4)]),
    "log1p": (ops.log1p, [_pos(3, 4)]),
    "expm1": (ops.expm1, [_any(3, 4)]),
    "sin": (ops.sin, [_any(3, 4)]),
    "cos": (ops.cos, [_any(3, 4)]),
    "tanh": (ops.tanh, [_any(3, 4)]),
    "reciprocal": (ops.reciprocal, [_pos(3, 4)]),
    "maximum": (lambda a, b: ops.maximum(a, b), [_any(3, 4), _any(3, 4) + 0.05]),
    "minimum": (lambda a, b: ops.minimum(a, b), [_any(3, 4), _any(4) + 0.05]),
    "clip": (lambda a: ops.clip(a, -0.5, 0.6), [_away(4, 5) * 0.8]),
    "where": (lambda a, b: ops.where(a > 0, a, b), [_away(3, 4), _any(3, 4)]),
    "matmul": (lambda a, b: ops.matmul(a, b), [_any(3, 5), _any(5, 4)]),
    "matmul_batched": (lambda a, b: ops.matmul(a, b), [_any(2, 3, 5), _any(5, 4)]),
    "matmul_vec": (lambda a, b: ops.matmul(a, b), [_any(5), _any(5, 4)]),
    "matmul_op": (lambda a, b: a @ b, [_any(3, 5), _any(5)]),
    "dot": (lambda a, b: ops.dot(a, b), [_any(3, 5), _any(5, 2)]),
    "einsum": (lambda a, b: ops.einsum("bij,jk->bik", a, b), [_any(2, 3, 4), _any(4, 5)]),
    "einsum_reduce": (lambda a, b: ops.einsum("ij,kj->i", a, b), [_any(3, 4), _any(5, 4)]),
    "sum": (lambda a: ops.sum(a, axis=1), [_any(3, 4, 2)]),
    "sum_all": (lambda a: ops.sum(a), [_any(3, 4)]),
    "mean_keepdims": (lambda a: ops.mean(a, axis=(0, 2), keepdims=True), [_any(3, 4, 2)]),
    "max": (lambda a: ops.max(a, axis=-1), [_any(3, 7)]),
    "min_all": (lambda a: ops.min(a), [_any(3, 7)]),
    "prod": (lambda a: ops.prod(a, axis=0), [_pos(3, 4)]),
    "var": (lambda a: ops.var(a, axis=1), [_any(3, 5)]),
    "std": (lambda a: ops.std(a), [_any(3, 5)]),
    "logsumexp": (lambda a: ops.logsumexp(a, axis=-1), [_any(3, 5)]),
    "norm": (lambda a: ops.norm(a, axis=-1), [_any(3, 5)]),
    "reshape": (lambda a: ops.reshape(a, (5, 3)) * np.arange(15.0).reshape(5, 3), [_any(3, 5)]),
    "transpose": (lambda a: ops.transpose(a, (2, 0, 1)), [_any(2, 3, 4)]),
    "T": (lambda a: a.T @ a, [_any(3, 4)]),
    "expand_squeeze": (lambda a: ops.squeeze(ops.expand_dims(a, 1), 1), [_any(3, 4)]),
    "broadcast_to": (lambda a: ops.broadcast_to(a, (3, 4, 5)), [_any(4, 1)]),
    "tile": (lambda a: ops.tile(a, (2, 3)), [_any(2, 3)]),
    "flip": (lambda a: ops.flip(a, 1), [_any(2, 3)]),
    "concatenate": (lambda a, b: ops.concatenate([a, b], axis=1), [_any(3, 2), _any(3, 4)]),
    "stack": (lambda a, b: ops.stack([a, b], axis=1), [_any(3, 2), _any(3, 2)]),
    "split": (lambda a: ops.split(a, [1, 3], axis=1)[1] * ops.split(a, 3, axis=0)[2][:, :2].sum(), [_any(3, 5)]),
    "getitem": (lambda a: a[1:, ::2] + a[np.array([2, 2])][:, :3], [_any(3, 5)]),
    "take": (lambda a: ops.take(a, np.array([[0, 2], [2, 2]]), axis=0), [_any(3, 4)]),
    "take_axis1": (lambda a: ops.take(a, np.array([3, 0, 3]), axis=1), [_any(2, 4)]),
    "take_along_axis": (lambda a: ops.take_along_axis(a, np.array([[0], [2], [1]]), axis=1), [_any(3, 4)]),
    "cast": (lambda a: ops.cast(a, "float64") * 3, [_any(3, 4)]),
    "relu": (ops.relu, [_away(3, 4)]),
    "relu6": (ops.relu6, [_away(3, 4) * 4]),
    "sigmoid": (ops.sigmoid, [_any(3, 4)]),
    "softplus": (ops.softplus, [_any(3, 4)]),
    "softsign": (ops.softsign, [_away(3, 4)]),
    "silu": (ops.silu, [_any(3, 4)]),
    "log_sigmoid": (ops.log_sigmoid, [_any(3, 4)]),
    "gelu_tanh": (lambda a: ops.gelu(a, approximate=True), [_any(3, 4)]),
    "gelu_erf": (lambda a: ops.gelu(a, approximate=False), [_any(3, 4)]),
    "elu": (ops.elu, [_away(3, 4)]),
    "selu": (ops.selu, [_away(3, 4)]),
    "leaky_relu": (ops.leaky_relu, [_away(3, 4)]),
    "hard_sigmoid": (ops.hard_sigmoid, [_away(3, 4)]),
    "softmax": (lambda a: ops.softmax(a, axis=-1), [_any(3, 5)]),
    "softmax_axis0": (lambda a: ops.softmax(a, axis=0), [_any(3, 5)]),
    "log_softmax": (ops.log_softmax, [_any(3, 5)]),
    "scce_logits": (
        lambda z: ops.sparse_categorical_crossentropy(np.array([0, 4, 2]), z, from_logits=True),
        [_any(3, 5)],
    ),
    "scce_probs": (lambda p: ops.sparse_categorical_crossentropy(np.array([1, 0, 2]), p), [_pos(3, 4)]),
    "cce_logits": (lambda t, z: ops.categorical_crossentropy(t, z, from_logits=True), [_pos(3, 4), _any(3, 4)]),
    "cce_probs": (lambda t, p: ops.categorical_crossentropy(t, p), [_pos(3, 4), _pos(3, 4)]),
    "bce_logits": (lambda t, z: ops.binary_crossentropy(t, z, from_logits=True), [_pos(3, 4) / 3, _any(3, 4)]),
    "bce_probs": (lambda t, p: ops.binary_crossentropy(t, p), [_pos(3, 4) / 3, _pos(3, 4) / 3]),
    "moments": (lambda a: ops.moments(a, axes=[0])[1] + ops.moments(a, axes=[0])[0], [_any(4, 3)]),
    "normalize": (lambda a: ops.normalize(a), [_any(3, 4)]),
}


def _check(fn, inputs, rtol=1e-6, atol=1e-8):
    inputs = [np.array(a, dtype=np.float64) for a in inputs]
    out0 = ops.convert_to_numpy(fn(*inputs))
    w = R.standard_normal(np.shape(out0))

    def f():
        return float(np.sum(ops.convert_to_numpy(fn(*inputs)) * w))

    leaves = [Tensor(a) for a in inputs]
    out = fn(*leaves)
    assert type(out) is Tensor, "the op recorded no node"
    np.testing.assert_allclose(out.value, out0, rtol=1e-12, atol=1e-12)
    grads = backward(out, leaves, w)
    for i, (a, g) in enumerate(zip(inputs, grads)):
        num = numeric_grad(f, a)
        assert g is not None, f"input {i}: no gradient"
        np.testing.assert_allclose(g, num, rtol=rtol, atol=atol * (1 + np.abs(num).max()), err_msg=f"input {i}")
    return grads


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_gradient_matches_finite_differences(name):
    fn, inputs = CASES[name]
    _check(fn, inputs, rtol=1e-5, atol=1e-7)


def test_forward_matches_numpy():
    a, b = _any(3, 5), _pos(3, 5)
    np.testing.assert_allclose(ops.softmax(a), np.exp(a) / np.exp(a).sum(-1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(ops.logsumexp(a, axis=1), np.log(np.exp(a).sum(1)), rtol=1e-12)
    np.testing.assert_allclose(ops.einsum("ij,ij->i", a, b), (a * b).sum(1), rtol=1e-12)
    np.testing.assert_array_equal(ops.one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    lab = np.array([1, 3, 0])
    ref = -np.log(np.exp(a) / np.exp(a).sum(1, keepdims=True))[np.arange(3), lab]
    np.testing.assert_allclose(ops.sparse_categorical_crossentropy(lab, a, from_logits=True), ref, rtol=1e-12)
    assert type(ops.add(a, b)) is np.ndarray  # no tensor in, plain array out


def _conv_ref(x, w):
    """float64 valid convolution (N, H, W, C) * (KH, KW, C, O)."""
    kh, kw = w.shape[:2]
    oh, ow = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    out = np.zeros((x.shape[0], oh, ow, w.shape[3]))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("nhwc,co->nhwo", x[:, i : i + oh, j : j + ow, :], w[i, j])
    return out


def test_conv_and_pool_nodes_use_the_kernel_backward():
    """conv / pooling are float32 kernels: check their VJP against a float64 reference's gradients."""
    x = R.standard_normal((2, 7, 6, 3)).astype(np.float32)
    w = R.standard_normal((3, 2, 3, 4)).astype(np.float32)
    tx, tw = Tensor(x), Tensor(w)
    y = ops.conv(tx, tw)
    np.testing.assert_allclose(y.value, _conv_ref(x.astype(np.float64), w.astype(np.float64)), rtol=1e-4, atol=1e-4)
    g = R.standard_normal(y.shape)
    gx, gw = backward(y, [tx, tw], g)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    num_w = numeric_grad(lambda: float((_conv_ref(x64, w64) * g).sum()), w64)
    num_x = numeric_grad(lambda: float((_conv_ref(x64, w64) * g).sum()), x64)
    np.testing.assert_allclose(gw, num_w, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(gx, num_x, rtol=1e-4, atol=1e-3)
    xp = Tensor(R.standard_normal((2, 6, 6, 3)).astype(np.float32))
    p = ops.max_pool(xp, 2)
    (gp,) = backward(p, [xp], np.ones(p.shape, np.float32))
    ref = xp.value.reshape(2, 3, 2, 3, 2, 3).transpose(0, 1, 3, 5, 2, 4).reshape(2, 3, 3, 3, 4)
    hits = (ref == ref.max(-1, keepdims=True)).sum()
    assert gp.sum() == pytest.approx(hits) and gp.max() == 1
    pa = ops.average_pool(xp, 3)
    (ga,) = backward(pa, [xp], np.ones(pa.shape, np.float32))
    np.testing.assert_allclose(ga, np.full(xp.shape, 1 / 9), rtol=1e-6)


def test_gradient_accumulates_over_shared_uses_and_tape_api():
    from forgeml.keras.layers import Variable

    v = Variable(np.array([1.5, -2.0], dtype=np.float64), "v")
    with GradientTape() as tape:
        y = ops.sum(v * v + ops.exp(v))  # v used twice
    g = tape.gradient(y, [v])[0]
    np.testing.assert_allclose(g, 2 * v.value + np.exp(v.value), rtol=1e-12)
    with pytest.raises(RuntimeError, match="persistent"):
        tape.gradient(y, [v])
    with GradientTape(persistent=True) as tape:
        y = ops.sum(v * 3)
    assert tape.gradient(y, v) is not None and tape.gradient(y, v) is not None


def test_numpy_function_without_gradient_rule_is_a_clear_error():
    t = Tensor(_any(3, 4))
    with pytest.raises(NoGradientError, match="numpy.sort has no gradient rule"):
        np.sort(t)
    np.testing.assert_allclose(np.exp(t).value, np.exp(t.value))  # ufuncs with a rule dispatch to ops


@pytest.mark.parametrize(
    "name",
    ["matmul", "softmax", "log_softmax", "gelu_erf", "scce_logits", "bce_logits", "einsum", "take", "max", "cce_probs"],
)
def test_matches_torch_autograd(name):
    torch = pytest.importorskip("torch")
    fn, inputs = CASES[name]
    torch_fns = {
        "matmul": lambda a, b: a @ b,
        "softmax": lambda a: torch.softmax(a, -1),
        "log_softmax": lambda a: torch.log_softmax(a, -1),
        "gelu_erf": lambda a: torch.nn.functional.gelu(a),
        "scce_logits": lambda z: torch.nn.functional.cross_entropy(z, torch.tensor([0, 4, 2]), reduction="none"),
        "bce_logits": lambda t, z: torch.nn.functional.binary_cross_entropy_with_logits(z, t, reduction="none"),
        "einsum": lambda a, b: torch.einsum("bij,jk->bik", a, b),
        "take": lambda a: a[torch.tensor([[0, 2], [2, 2]])],
        "max": lambda a: a.max(-1).values,
        "cce_probs": lambda t, p: -(t * torch.log(p / p.sum(-1, keepdim=True))).sum(-1),
    }
    inputs = [np.array(a, dtype=np.float64) for a in inputs]
    leaves = [Tensor(a) for a in inputs]
    out = fn(*leaves)
    w = R.standard_normal(out.shape)
    ours = backward(out, leaves, w)
    tins = [torch.tensor(a, requires_grad=True) for a in inputs]
    tout = torch_fns[name](*tins)
    np.testing.assert_allclose(out.value, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    tout.backward(torch.tensor(w))
    for g, t in zip(ours, tins):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-9, atol=1e-12)
