"""The CUDA recurrent kernels (csrc/cuda/rnn.cu) run through the SIMT emulator, against the float64
references of test_rnn.py: forward outputs and the gradients of backward, for every cell, odd
sizes spanning several SGEMM tiles and gate-kernel blocks, given and default initial states, both
thread orders."""
from __future__ import annotations

import numpy as np
import pytest
from test_rnn import ACT, assert_close, make, ref_backward, ref_forward

_emu = pytest.importorskip("forgeml._emu", reason="forgeml was built without FORGEML_TESTING=ON")

CELLS = {"simple_rnn": 0, "lstm": 1, "gru": 2}
ACTS = {"tanh": 0, "sigmoid": 1, "relu": 2, "linear": 3}


@pytest.fixture(params=["forward", "reversed"])
def order(request):
    _emu.set_thread_order(request.param)
    yield request.param
    _emu.set_thread_order("forward")


def run(cell, x, k, r, b, h0, c0, act="tanh"):
    n, _, _ = x.shape
    h = r.shape[0]
    z = np.zeros((n, h), np.float32)
    h0 = z if h0 is None else h0
    c0 = z if c0 is None else c0
    y, xg, aux = _emu.rnn_forward(CELLS[cell], ACTS[act], x, k, r, b, h0, c0)
    return y, xg, aux, h0, c0


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("shape", [(3, 4, 5, 7), (1, 1, 1, 1), (5, 3, 2, 70)], ids=lambda s: "N%dT%dF%dH%d" % s)
@pytest.mark.parametrize("given_state", [False, True], ids=["zero_state", "given_state"])
def test_matches_reference(order, cell, shape, given_state):
    n, t, f, h = shape
    x, k, r, b, h0, c0 = make(cell, *shape, seed=sum(shape) + 1)
    if not given_state:
        h0 = c0 = None
    y, xg, aux, h0z, c0z = run(cell, x, k, r, b, h0, c0)
    y_ref, h_ref, c_ref, hist = ref_forward(cell, x, k, r, b, h0, c0)
    assert_close(y, y_ref, "y")
    if cell == "lstm":
        assert_close(aux[:, -1], c_ref, "c_T")
    rng = np.random.default_rng(3)
    dy = rng.standard_normal((n, t, h)).astype(np.float32)
    dh_t = rng.standard_normal((n, h)).astype(np.float32)
    dc_t = rng.standard_normal((n, h)).astype(np.float32) if cell == "lstm" else None
    got = _emu.rnn_backward(CELLS[cell], 0, x, k, r, h0z, c0z, y, xg, aux, dy, dh_t, dc_t)
    ref = ref_backward(cell, x, k, r, b, hist, dy, dh_t, dc_t)
    names = ("dx", "dkernel", "drecurrent_kernel", "dbias", "dh0", "dc0")
    for name, g, want in zip(names, got, ref):
        if want is not None:
            assert_close(g.reshape(want.shape), want, name, tol=5e-5)


@pytest.mark.parametrize("act", list(ACTS))
def test_simple_rnn_activations(act):
    x, k, r, b, h0, _ = make("simple_rnn", 2, 3, 4, 5, seed=8)
    y, xg, aux, h0z, c0z = run("simple_rnn", x, k, r, b, h0, None, act)
    y_ref, _, _, hist = ref_forward("simple_rnn", x, k, r, b, h0, act=act)
    assert_close(y, y_ref, "y")
    dy = np.random.default_rng(0).standard_normal(y.shape).astype(np.float32)
    got = _emu.rnn_backward(0, ACTS[act], x, k, r, h0z, c0z, y, xg, aux, dy, None, None)
    ref = ref_backward("simple_rnn", x, k, r, b, hist, dy, None, act=act)
    for name, g, want in zip(("dx", "dkernel", "drecurrent_kernel", "dbias", "dh0"), got, ref):
        assert_close(g.reshape(want.shape), want, name, tol=5e-5)


def test_empty_time():
    x, k, r, b, h0, c0 = make("lstm", 2, 0, 3, 4)
    y, xg, aux, h0z, c0z = run("lstm", x, k, r, b, h0, c0)
    assert y.shape == (2, 0, 4)
    got = _emu.rnn_backward(1, 0, x, k, r, h0z, c0z, y, xg, aux, None, h0, c0)
    np.testing.assert_array_equal(got[4], h0)
    np.testing.assert_array_equal(got[5], c0)
    assert not got[1].any() and not got[2].any() and not got[3].any()


assert ACT  # the activations the references share


@pytest.mark.parametrize("cell", list(CELLS))
def test_cupy_matches_cpu(cell, cupy, copies):
    """forgeml.ops with CuPy arrays (a real GPU, or the stand-in on the emulator) against the same
    ops on NumPy arrays."""
    import forgeml.ops as ops
    cp = cupy
    x, k, r, b, h0, c0 = make(cell, 5, 9, 6, 33, seed=4)
    fwd = {"simple_rnn": ops.simple_rnn, "lstm": ops.lstm, "gru": ops.gru}[cell]
    grad = {"simple_rnn": ops.simple_rnn_grad, "lstm": ops.lstm_grad, "gru": ops.gru_grad}[cell]
    cpu = fwd(x, k, r, b, h0, return_cache=True)
    args = [cp.asarray(a) for a in (x, k, r, b, h0)]
    if copies is not None:
        copies.reset()
    gpu = fwd(*args, return_cache=True)
    if copies is not None:  # the cache stays on the device
        assert (copies.h2d, copies.d2h) == (0, 0)
    for a, g in zip(cpu[:-1], gpu[:-1]):
        assert isinstance(g, cp.ndarray)
        np.testing.assert_allclose(cp.asnumpy(g), a, rtol=1e-4, atol=1e-5)
    dy = np.random.default_rng(5).standard_normal(cpu[0].shape).astype(np.float32)
    gc, gg = grad(cpu[-1], dy), grad(gpu[-1], cp.asarray(dy))
    for name, a, g in zip(gc._fields, gc, gg):
        if a is not None:
            np.testing.assert_allclose(cp.asnumpy(g), a, rtol=1e-4, atol=1e-4, err_msg=name)
