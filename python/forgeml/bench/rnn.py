"""Recurrent sequences: forgeml.ops.simple_rnn / lstm / gru against torch.nn.RNN / LSTM / GRU
(CPU, batch_first, float32), forward (inference) and forward + backward (all gradients)."""
from __future__ import annotations

import numpy as np

from .. import ops
from .._backend import cpu as _cpu

CASES = [(64, 50, 64, 128), (32, 100, 128, 256)]
QUICK_CASES = [(16, 20, 32, 64)]
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _weights(cell, f, h, rng):
    g = GATES[cell]
    k = (rng.standard_normal((f, g * h)) / np.sqrt(f)).astype(np.float32)
    r = (0.5 * rng.standard_normal((h, g * h)) / np.sqrt(h)).astype(np.float32)
    b = (0.1 * rng.standard_normal((2, g * h) if cell == "gru" else (g * h,))).astype(np.float32)
    return k, r, b


def _torch_module(torch, cell, f, h, k, r, b):
    """The same layer in PyTorch: weights transposed; GRU gate blocks z|r|h -> r|z|n."""
    mod = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](f, h, batch_first=True)
    if cell == "gru":
        order = np.r_[h:2 * h, 0:h, 2 * h:3 * h]
        k, r, b_ih, b_hh = k[:, order], r[:, order], b[0, order], b[1, order]
    else:
        b_ih, b_hh = b, np.zeros_like(b)
    with torch.no_grad():
        mod.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(k.T)))
        mod.weight_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(r.T)))
        mod.bias_ih_l0.copy_(torch.from_numpy(b_ih))
        mod.bias_hh_l0.copy_(torch.from_numpy(b_hh))
    return mod


def _ours(cell):
    return {"rnn": (ops.simple_rnn, ops.simple_rnn_grad), "lstm": (ops.lstm, ops.lstm_grad),
            "gru": (ops.gru, ops.gru_grad)}[cell]


def run(bench) -> None:
    try:
        import torch
        torch.set_num_threads(_cpu.get_num_threads())
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    for n, t, f, h in (QUICK_CASES if bench.quick else CASES):
        x = rng.standard_normal((n, t, f)).astype(np.float32)
        dy = rng.standard_normal((n, t, h)).astype(np.float32)
        for cell in ("rnn", "lstm", "gru"):
            k, r, b = _weights(cell, f, h, rng)
            fwd, bwd = _ours(cell)
            g = GATES[cell]
            flops = 2.0 * n * t * (f + h) * g * h
            name = f"{cell} N{n} T{t} F{f} H{h}"
            peer_f = peer_fb = None
            err = None
            if torch is not None:
                mod = _torch_module(torch, cell, f, h, k, r, b)
                xt = torch.from_numpy(x)
                xg = xt.clone().requires_grad_(True)
                dyt = torch.from_numpy(dy)
                with torch.no_grad():
                    err = float(np.abs(mod(xt)[0].numpy() - fwd(x, k, r, b)[0]).max())

                def peer_f(mod=mod, xt=xt):
                    with torch.no_grad():
                        return mod(xt)

                def peer_fb(mod=mod, xg=xg, dyt=dyt):
                    mod.zero_grad(set_to_none=True)
                    xg.grad = None
                    mod(xg)[0].backward(dyt)

            def ours_fb(fwd=fwd, bwd=bwd, k=k, r=r, b=b):
                return bwd(fwd(x, k, r, b, return_cache=True)[-1], dy)

            metric = (lambda impl, e=err: {"max_abs_diff_vs_torch": e} if impl == "forgeml" else None)
            bench.compare("rnn", name + " fwd", lambda fwd=fwd, k=k, r=r, b=b: fwd(x, k, r, b),
                          {"torch": peer_f}, flops=flops, metric=metric if err is not None else None)
            bench.compare("rnn", name + " fwd+bwd", ours_fb, {"torch": peer_fb}, flops=3 * flops)


def gpu_check(check) -> None:
    """forgeml's CUDA recurrent kernels (CuPy arrays) against torch.nn.RNN/LSTM/GRU on the GPU
    (cuDNN) when PyTorch has CUDA, else against forgeml's own CPU result (timing the CPU path)."""
    cp = check.cp
    try:
        import torch
        dev = torch.device("cuda") if torch.cuda.is_available() else None
    except ImportError:
        torch, dev = None, None
    rng = np.random.default_rng(0)
    for n, t, f, h in CASES:
        x = rng.standard_normal((n, t, f)).astype(np.float32)
        dy = rng.standard_normal((n, t, h)).astype(np.float32)
        xg, dyg = cp.asarray(x), cp.asarray(dy)
        for cell in ("rnn", "lstm", "gru"):
            k, r, b = _weights(cell, f, h, rng)
            kg, rg, bg = cp.asarray(k), cp.asarray(r), cp.asarray(b)
            fwd, bwd = _ours(cell)
            flops = 2.0 * n * t * (f + h) * GATES[cell] * h
            ours_f = lambda fwd=fwd, kg=kg, rg=rg, bg=bg: fwd(xg, kg, rg, bg)[0]  # noqa: E731
            ours_fb = lambda fwd=fwd, bwd=bwd, kg=kg, rg=rg, bg=bg: bwd(  # noqa: E731
                fwd(xg, kg, rg, bg, return_cache=True)[-1], dyg).dkernel
            if dev is not None:
                mod = _torch_module(torch, cell, f, h, k, r, b).to(dev)
                xt = torch.as_tensor(xg, device=dev)

                def peer_f(mod=mod, xt=xt):
                    with torch.no_grad():
                        return cp.asarray(mod(xt)[0])
                peer, name = peer_f, "torch-cudnn"
            else:
                peer, name = (lambda fwd=fwd, k=k, r=r, b=b: cp.asarray(fwd(x, k, r, b)[0])), "forgeml-cpu"
            check.kernel("rnn", f"{cell} N{n} T{t} F{f} H{h} fwd", ours_f, peer, peer=name, flops=flops)
            ref_fb = lambda fwd=fwd, bwd=bwd, k=k, r=r, b=b: cp.asarray(  # noqa: E731
                bwd(fwd(x, k, r, b, return_cache=True)[-1], dy).dkernel)
            check.kernel("rnn", f"{cell} N{n} T{t} F{f} H{h} fwd+bwd", ours_fb, ref_fb, peer="forgeml-cpu",
                         rtol=1e-3, flops=3 * flops)
