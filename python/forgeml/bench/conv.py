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


def cpu_time_table(threads: int = 1, reps: int = 5) -> None:
    """forgeml vs PyTorch in process CPU seconds (best of reps) at a fixed thread count: a measure
    that stays meaningful on a machine shared with other jobs, where wall-clock ratios of two
    thread pools mostly measure the scheduler. ``python -m forgeml.bench.conv [threads]``."""
    import time

    import forgeml
    from forgeml import ops
    torch = _torch()
    if torch is None:
        print("PyTorch is not installed")
        return
    forgeml.set_num_threads(threads)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)

    def cpu(fn):
        fn()
        best = float("inf")
        for _ in range(reps):
            t = time.process_time()
            fn()
            best = min(best, time.process_time() - t)
        return best

    print(f"GFLOP per CPU-second, {threads} thread(s); ratio = torch CPU time / forgeml CPU time")
    for (n, h, w, c, o) in CASES:
        x = rng.standard_normal((n, h, w, c), dtype=np.float32)
        k = rng.standard_normal((3, 3, c, o), dtype=np.float32)
        b = rng.standard_normal(o, dtype=np.float32)
        dy = rng.standard_normal((n, h, w, o), dtype=np.float32)
        fl = 2.0 * n * h * w * o * 9 * c
        tx = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        tw = torch.from_numpy(k).permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
        tb = torch.from_numpy(b)
        tdy = torch.from_numpy(dy).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        txg, twg, tbg = (t.clone().requires_grad_(True) for t in (tx, tw, tb))

        def t_fb():
            txg.grad = twg.grad = tbg.grad = None
            torch.nn.functional.conv2d(txg, twg, tbg, padding=1).backward(tdy)

        def f_fb():
            ops.conv2d(x, k, b, padding="same")
            ops.conv2d_grad(x, k, dy, padding="same")

        f = cpu(lambda: ops.conv2d(x, k, b, padding="same"))
        with torch.no_grad():
            t = cpu(lambda: torch.nn.functional.conv2d(tx, tw, tb, padding=1))
        fb, tfb = cpu(f_fb), cpu(t_fb)
        print(f"N{n} C{c} {h}x{w}->{o}: fwd {fl / f / 1e9:6.1f} vs torch {fl / t / 1e9:6.1f} ({t / f:.2f}x)   "
              f"fwd+bwd {3 * fl / fb / 1e9:6.1f} vs torch {3 * fl / tfb / 1e9:6.1f} ({tfb / fb:.2f}x)", flush=True)


def gpu_check(check) -> None:
    """CUDA conv/pool kernels on CuPy arrays against cuDNN (through PyTorch, channels_last)."""
    try:
        import torch
    except ImportError:
        return
    cp = check.cp
    from forgeml import ops
    torch.backends.cudnn.allow_tf32 = False  # compare and time float32 against float32

    def t2c(t):  # NCHW channels_last tensor -> NHWC CuPy array
        return cp.from_dlpack(t.permute(0, 2, 3, 1).contiguous())

    rng = np.random.default_rng(0)
    for (n, h, w, c, o) in CASES:
        x = cp.asarray(rng.standard_normal((n, h, w, c), dtype=np.float32))
        k = cp.asarray((rng.standard_normal((3, 3, c, o)) / np.sqrt(9 * c)).astype(np.float32))
        dy = cp.asarray(rng.standard_normal((n, h, w, o), dtype=np.float32))
        tx = torch.from_dlpack(x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        tw = torch.from_dlpack(k).permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
        tdy = torch.from_dlpack(dy).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        flops = 2.0 * n * h * w * o * 9 * c
        case = f"N{n} C{c} {h}x{w}->{o}"
        check.kernel("conv", f"{case} fwd", lambda: ops.conv2d(x, k, padding="same"),
                     lambda: t2c(torch.nn.functional.conv2d(tx, tw, padding=1)), peer="cudnn", flops=flops)

        def torch_grads():
            dx = torch.nn.grad.conv2d_input(tx.shape, tw, tdy, padding=1)
            dw = torch.nn.grad.conv2d_weight(tx, tw.shape, tdy, padding=1)
            return t2c(dx), cp.from_dlpack(dw.permute(2, 3, 1, 0).contiguous()), cp.from_dlpack(tdy.sum((0, 2, 3)))

        check.kernel("conv", f"{case} bwd", lambda: ops.conv2d_grad(x, k, dy, padding="same"), torch_grads,
                     peer="cudnn", flops=2 * flops, rtol=1e-3)
    x = cp.asarray(rng.standard_normal((64, 56, 56, 64), dtype=np.float32))
    tx = torch.from_dlpack(x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    # Stride 1 "same" pads one on each side, as PyTorch's padding=1 does.
    check.kernel("conv", "max_pool 3x3/1 same N64 56x56x64", lambda: ops.max_pool2d(x, 3, 1, "same"),
                 lambda: t2c(torch.nn.functional.max_pool2d(tx, 3, 1, padding=1)), peer="torch")
    check.kernel("conv", "avg_pool 3x3/1 same N64 56x56x64", lambda: ops.avg_pool2d(x, 3, 1, "same"),
                 lambda: t2c(torch.nn.functional.avg_pool2d(tx, 3, 1, padding=1, count_include_pad=False)),
                 peer="torch")
    check.kernel("conv", "max_pool 2x2/2 N64 56x56x64", lambda: ops.max_pool2d(x, 2),
                 lambda: t2c(torch.nn.functional.max_pool2d(tx, 2)), peer="torch")


if __name__ == "__main__":
    import sys

    cpu_time_table(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
