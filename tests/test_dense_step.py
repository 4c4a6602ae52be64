"""The fused Dense-stack kernels (csrc/cpu/dense_step, forgeml.ops.dense_step) against NumPy float64
references on odd sizes, on every SIMD path: the forward pass, one optimizer update of each kind,
and one whole training step (forward, softmax cross-entropy, backward, update)."""

import numpy as np
import pytest

import forgeml
from forgeml import ops

ACTS = {"relu": lambda z: np.maximum(z, 0), "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh}
# d act / dz written in terms of the activation's output h
DACTS = {"relu": lambda h: (h > 0).astype(float), "sigmoid": lambda h: h * (1 - h), "tanh": lambda h: 1 - h * h}


def _net(rng, dims, acts, bias=(True,)):
    """A layout with kernels and biases packed in order (some layers without a bias) and its params."""
    w_off, b_off, n = [], [], 0
    for layer in range(len(dims) - 1):
        w_off.append(n)
        n += dims[layer] * dims[layer + 1]
        if bias[layer % len(bias)]:
            b_off.append(n)
            n += dims[layer + 1]
        else:
            b_off.append(-1)
    layout = ops.DenseLayout.build(dims, acts, w_off, b_off, n)
    params = (rng.standard_normal(n) * 0.4).astype(np.float32)
    return layout, params


def _layers(layout, params):
    """(W, b) per layer as float64 (b zeros where the layer has none)."""
    out = []
    for layer in range(len(layout.dims) - 1):
        i, o = int(layout.dims[layer]), int(layout.dims[layer + 1])
        w = params[layout.w_off[layer] : layout.w_off[layer] + i * o].astype(np.float64).reshape(i, o)
        b_at = int(layout.b_off[layer])
        b = params[b_at : b_at + o].astype(np.float64) if b_at >= 0 else np.zeros(o)
        out.append((w, b))
    return out


def _forward(layers, acts, x):
    """Hidden outputs h_0 = x, h_1 .. h_{L-1}, and the logits, in float64."""
    hs = [x.astype(np.float64)]
    for layer, (w, b) in enumerate(layers):
        z = hs[-1] @ w + b
        hs.append(z if layer == len(layers) - 1 else ACTS[acts[layer]](z))
    return hs


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


DIMS = [(7, 5), (13, 9, 3), (31, 17, 11, 6)]


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("act", sorted(ACTS))
@pytest.mark.parametrize("softmax", [False, True])
def test_forward_matches_float64(rng, isa, dims, act, softmax):
    layout, params = _net(rng, dims, [act] * (len(dims) - 1), bias=(True, False))
    x = rng.standard_normal((37, dims[0])).astype(np.float32)
    got = ops.dense_forward(layout, x, params, softmax=softmax, batch_size=10)  # 37 = 3 * 10 + 7
    logits = _forward(_layers(layout, params), [act] * len(dims), x)[-1]
    want = _softmax(logits) if softmax else logits
    assert got.shape == (37, dims[-1]) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def _slots(n, names):
    return {k: np.zeros(n, np.float32) for k in names}


def _update_reference(kind, hyper, p, g, slots, lr, t):
    """Keras 3's update rules in float64 (weight decay first), slots updated in the dict."""
    p = p * (1 - hyper.get("weight_decay", 0.0) * lr)
    if kind == "sgd":
        mu = hyper.get("momentum", 0.0)
        if mu == 0:
            return p - lr * g
        m = slots["momentum"] = mu * slots["momentum"] - lr * g
        return p + (mu * m - lr * g if hyper.get("nesterov") else m)
    if kind == "adam":
        b1, b2, eps = hyper["beta_1"], hyper["beta_2"], hyper["epsilon"]
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        m = slots["momentum"] = slots["momentum"] + (g - slots["momentum"]) * (1 - b1)
        v = slots["velocity"] = slots["velocity"] + (g * g - slots["velocity"]) * (1 - b2)
        if "velocity_hat" in slots:
            v = slots["velocity_hat"] = np.maximum(slots["velocity_hat"], v)
        return p - alpha * m / (np.sqrt(v) + eps)
    rho, eps, mu = hyper["rho"], hyper["epsilon"], hyper.get("momentum", 0.0)
    v = slots["velocity"] = rho * slots["velocity"] + (1 - rho) * g * g
    denom = v
    if "average_gradient" in slots:
        a = slots["average_gradient"] = rho * slots["average_gradient"] + (1 - rho) * g
        denom = v - a * a
    step = lr * g / np.sqrt(denom + eps)
    if "momentum" in slots:
        m = slots["momentum"] = mu * slots["momentum"] + step
        return p - m
    return p - step


OPTIMIZERS = [
    ("sgd", {}, []),
    ("sgd", {"momentum": 0.9}, ["momentum"]),
    ("sgd", {"momentum": 0.8, "nesterov": 1, "weight_decay": 0.01}, ["momentum"]),
    ("adam", {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}, ["momentum", "velocity"]),
    (
        "adam",
        {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6, "amsgrad": 1, "weight_decay": 0.004},
        ["momentum", "velocity", "velocity_hat"],
    ),
    ("rmsprop", {"rho": 0.9, "epsilon": 1e-7}, ["velocity"]),
    (
        "rmsprop",
        {"rho": 0.8, "epsilon": 1e-7, "momentum": 0.5, "centered": 1},
        ["velocity", "momentum", "average_gradient"],
    ),
]


@pytest.mark.parametrize("kind,hyper,slot_names", OPTIMIZERS)
def test_optimizer_update_matches_float64(rng, isa, kind, hyper, slot_names):
    n = 1003  # odd: every SIMD width has a tail
    p = rng.standard_normal(n).astype(np.float32)
    slots = _slots(n, slot_names)
    ref_p, ref_slots = p.astype(np.float64), {k: v.astype(np.float64) for k, v in slots.items()}
    for t in (1, 2, 3):
        g = rng.standard_normal(n).astype(np.float32)
        ops.optimizer_update(p, g, optimizer=kind, hyper=hyper, slots=slots, lr=0.01, t=t)
        ref_p = _update_reference(kind, hyper, ref_p, g.astype(np.float64), ref_slots, 0.01, t)
        np.testing.assert_allclose(p, ref_p, rtol=1e-5, atol=1e-5)
        for k in slot_names:
            np.testing.assert_allclose(slots[k], ref_slots[k], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(("m", "threads"), [(29, 2), (203, 1), (203, 2), (203, 3)])
def test_one_training_step_matches_float64(rng, isa, restore_threads, dims, weighted, m, threads):
    """One plain-SGD step over one batch of every row: the gradient of sum_i w_i loss_i / m
    (softmax cross-entropy) by float64 backpropagation, the update, and the loss and hit totals.
    203 rows on 2 or 3 threads split into row slices whose gradients are summed."""
    forgeml.set_num_threads(threads)
    acts = ["tanh", "relu", "sigmoid"][: len(dims) - 1]
    layout, params = _net(rng, dims, acts, bias=(True, False))
    x = rng.standard_normal((m, dims[0])).astype(np.float32)
    y = rng.integers(0, dims[-1], m)
    w = rng.uniform(0.5, 2.0, m) if weighted else np.ones(m)
    layers = _layers(layout, params)
    hs = _forward(layers, acts, x)
    prob = _softmax(hs[-1])
    losses = -np.log(prob[np.arange(m), y])
    dz = prob.copy()
    dz[np.arange(m), y] -= 1
    dz *= (w / m)[:, None]
    want = params.astype(np.float64)
    for layer in reversed(range(len(layers))):
        wk, _ = layers[layer]
        dw, db = hs[layer].T @ dz, dz.sum(axis=0)
        want[layout.w_off[layer] : layout.w_off[layer] + dw.size] -= 0.1 * dw.ravel()
        if layout.b_off[layer] >= 0:
            want[layout.b_off[layer] : layout.b_off[layer] + db.size] -= 0.1 * db
        if layer:
            dz = (dz @ wk.T) * DACTS[acts[layer - 1]](hs[layer])

    grads = np.zeros_like(params)
    loss, hits, count = ops.dense_train_steps(
        layout,
        x,
        y,
        params,
        grads,
        optimizer="sgd",
        hyper={},
        slots={},
        lrs=0.1,
        t0=0,
        batch_size=m,
        sample_weight=w if weighted else None,
    )
    assert count == m
    assert loss == pytest.approx(float(w @ losses), rel=1e-5)
    assert hits == np.sum(hs[-1].argmax(axis=1) == y)
    np.testing.assert_allclose(params, want, rtol=1e-5, atol=2e-6)


def test_bad_input_names_the_argument(rng):
    layout, params = _net(rng, (5, 3), ["relu"])
    with pytest.raises(ValueError, match="dims"):
        ops.DenseLayout.build([5, 0], ["relu"], [0], [-1], 0)
    with pytest.raises(ValueError, match="activations"):
        ops.DenseLayout.build([5, 3], ["swish"], [0], [-1], 15)
    with pytest.raises(ValueError, match="w_off, b_off"):
        ops.DenseLayout.build([5, 3], ["relu"], [4], [-1], 15)
    with pytest.raises(TypeError, match="params"):
        ops.dense_forward(layout, np.zeros((2, 5), np.float32), params.astype(np.float64))
    with pytest.raises(ValueError, match="optimizer"):
        ops.optimizer_update(params, params.copy(), optimizer="lion", hyper={}, slots={}, lr=0.1, t=1)
    with pytest.raises(ValueError, match="batch_size"):
        ops.dense_train_steps(
            layout,
            np.zeros((2, 5), np.float32),
            np.zeros(2),
            params,
            np.zeros_like(params),
            optimizer="sgd",
            hyper={},
            slots={},
            lrs=0.1,
            t0=0,
            batch_size=0,
        )


def test_empty_input_gives_empty_output(rng):
    layout, params = _net(rng, (5, 3), ["relu"])
    assert ops.dense_forward(layout, np.zeros((0, 5), np.float32), params).shape == (0, 3)


def _gradient(layout, params, acts, x, y):
    """float64 gradient of the mean softmax cross-entropy wrt the flat params (unweighted rows)."""
    layers = _layers(layout, params)
    hs = _forward(layers, acts, x)
    dz = _softmax(hs[-1])
    dz[np.arange(len(y)), y] -= 1
    dz /= len(y)
    grad = np.zeros(params.size)
    for layer in reversed(range(len(layers))):
        dw = hs[layer].T @ dz
        grad[layout.w_off[layer] : layout.w_off[layer] + dw.size] = dw.ravel()
        if layout.b_off[layer] >= 0:
            grad[layout.b_off[layer] : layout.b_off[layer] + dw.shape[1]] = dz.sum(axis=0)
        if layer:
            dz = (dz @ layers[layer][0].T) * DACTS[acts[layer - 1]](hs[layer])
    return grad


def _sliced_steps(layout, x, y, params, slots, kind, hyper, m, perm, first, steps):
    """Steps [first, first + steps) of batch m over x[perm], learning rate 0.01, in one call."""
    ops.dense_train_steps(
        layout,
        x,
        y,
        params,
        np.zeros_like(params),
        optimizer=kind,
        hyper=hyper,
        slots=slots,
        lrs=0.01,
        t0=first,
        batch_size=m,
        first_step=first,
        steps=steps,
        perm=perm,
    )


@pytest.mark.parametrize(
    "kind,hyper,slot_names",
    OPTIMIZERS
    + [
        ("adam", {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "clipvalue": 0.002}, ["momentum", "velocity"]),
        ("sgd", {"clipnorm": 0.05}, []),
    ],
)
def test_sliced_steps_are_one_update_on_any_thread_count(rng, restore_threads, kind, hyper, slot_names):
    """Batches of 517 rows run as 4 row slices; the slices' gradients are summed and the optimizer
    applied over ranges of the ~10k parameters on every thread (clipnorm: on the caller). Three
    steps on 1, 2 and 3 threads give the same bits, and each step is the float64 update of the
    float64 gradient."""
    dims, acts, m = (70, 131, 6), ["relu", "relu"], 517
    layout, params0 = _net(rng, dims, acts)
    assert params0.size > 8192  # enough for a range per thread
    x = rng.standard_normal((3 * m, dims[0])).astype(np.float32)
    y = rng.integers(0, dims[-1], 3 * m)
    perm = rng.permutation(3 * m)
    runs = []
    for threads in (1, 2, 3):
        forgeml.set_num_threads(threads)
        params, slots = params0.copy(), _slots(params0.size, slot_names)
        ref_slots = {k: v.astype(np.float64) for k, v in slots.items()}
        for step in range(3):
            rows = perm[step * m : (step + 1) * m]
            g = _gradient(layout, params, acts, x[rows], y[rows])
            if "clipvalue" in hyper:
                g = np.clip(g, -hyper["clipvalue"], hyper["clipvalue"])
            if "clipnorm" in hyper:  # Keras clips each variable to its own norm
                variables = [(layout.w_off[i], dims[i] * dims[i + 1]) for i in range(2)]
                for off, size in variables + [(layout.b_off[i], dims[i + 1]) for i in range(2)]:
                    norm = np.linalg.norm(g[off : off + size])
                    g[off : off + size] *= min(1.0, hyper["clipnorm"] / norm)
            want = _update_reference(kind, hyper, params.astype(np.float64), g, ref_slots, 0.01, step + 1)
            _sliced_steps(layout, x, y, params, slots, kind, hyper, m, perm, step, 1)
            np.testing.assert_allclose(params, want, rtol=1e-4, atol=1e-6)
            for k in slot_names:  # the float32 slots go on from here, as Keras's own do
                ref_slots[k] = slots[k].astype(np.float64)
        runs.append((params, slots))
    for params, slots in runs[1:]:
        np.testing.assert_array_equal(params, runs[0][0])
        for k in slot_names:
            np.testing.assert_array_equal(slots[k], runs[0][1][k])


@pytest.mark.parametrize(
    "kind,hyper,slot_names", [OPTIMIZERS[0], ("adam", {"clipvalue": 0.002}, ["momentum", "velocity"])]
)
def test_many_steps_in_one_call_same_bits_on_any_thread_count(rng, restore_threads, kind, hyper, slot_names):
    """Several sliced steps in one call, the last one short (200 rows: one slice where the others
    take 4), on 1, 2 and 3 threads: the same bits as the steps called one at a time on one thread
    (on more threads a call runs its steps as phases of tasks, slices then update ranges)."""
    dims, acts, m = (70, 131, 6), ["relu", "relu"], 517
    layout, params0 = _net(rng, dims, acts)
    n = 2 * m + 200
    x = rng.standard_normal((n, dims[0])).astype(np.float32)
    y = rng.integers(0, dims[-1], n)
    perm = rng.permutation(n)

    def train(threads, one_at_a_time):
        forgeml.set_num_threads(threads)
        params, slots = params0.copy(), _slots(params0.size, slot_names)
        calls = [(s, 1) for s in range(3)] if one_at_a_time else [(0, 3)]
        for first, steps in calls:
            _sliced_steps(layout, x, y, params, slots, kind, hyper, m, perm, first, steps)
        return params, slots

    want, want_slots = train(1, True)
    for threads in (1, 2, 3):
        params, slots = train(threads, False)
        np.testing.assert_array_equal(params, want)
        for k in slot_names:
            np.testing.assert_array_equal(slots[k], want_slots[k])
