"""Convolution benchmark: forgeml.ops.conv2d (+ conv2d_grad) against PyTorch CPU with channels_last.

Cases from issue 5, all 3x3 "same", stride 1: forward, and forward + backward (dx, dw, db). PyTorch
gets its fastest layout (channels_last, oneDNN); the forward+backward peer computes the same three
gradients through autograd.
"""
from __future__ import annotations

import numpy as np

CASES = [  # N, H, W, C, O
    (64, 32, 32, 3, 32),
    (64, 32, 32, 32, 64),
    (32, 56, 56, 64, 64),
    (128, 28, 28, 1, 32),
]
QUICK_CASES = [(16, 32, 32, 3, 32), (16, 32, 32, 32, 64), (8, 56, 56, 64, 64), (32, 28, 28, 1, 32)]


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def run(bench) -> None:
    from forgeml import ops

    torch = _torch()
    rng = np.random.default_rng(0)
    for (n, h, w, c, o) in (QUICK_CASES if bench.quick else CASES):
        x = rng.standard_normal((n, h, w, c), dtype=np.float32)
        k = (rng.standard_normal((3, 3, c, o), dtype=np.float32) / np.sqrt(9 * c)).astype(np.float32)
        b = rng.standard_normal(o, dtype=np.float32)
        dy = rng.standard_normal((n, h, w, o), dtype=np.float32)
        flops = 2.0 * n * h * w * o * 9 * c
        case = f"N{n} C{c} {h}x{w}->{o} 3x3 same"

        def fwd():
            return ops.conv2d(x, k, b, padding="same")

        def fwd_bwd():
            ops.conv2d(x, k, b, padding="same")
            return ops.conv2d_grad(x, k, dy, padding="same")

        peers_f, peers_fb = {}, {}
        if torch is not None:
            tx = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
            tw = torch.from_numpy(k).permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
            tb = torch.from_numpy(b)
            tdy = torch.from_numpy(dy).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
            # Same numbers from both before timing.
            with torch.no_grad():
                ref = torch.nn.functional.conv2d(tx, tw, tb, padding=1).permute(0, 2, 3, 1).numpy()
            err = np.abs(fwd() - ref).max() / (np.abs(ref).max() + 1e-6)
            if err > 1e-4:
                raise AssertionError(f"conv bench {case}: forgeml and PyTorch differ (rel err {err:.2e})")

            def t_fwd():
                with torch.no_grad():
                    return torch.nn.functional.conv2d(tx, tw, tb, padding=1)

            txg = tx.detach().requires_grad_(True)
            twg = tw.detach().requires_grad_(True)
            tbg = tb.detach().requires_grad_(True)

            def t_fwd_bwd():
                txg.grad = twg.grad = tbg.grad = None
                y = torch.nn.functional.conv2d(txg, twg, tbg, padding=1)
                y.backward(tdy)
                return txg.grad, twg.grad, tbg.grad

            peers_f["torch"], peers_fb["torch"] = t_fwd, t_fwd_bwd
        bench.compare("conv", f"{case} fwd", fwd, peers_f, flops=flops)
        bench.compare("conv", f"{case} fwd+bwd", fwd_bwd, peers_fb, flops=3 * flops)
