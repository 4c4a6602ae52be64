"""Central finite differences shared by the gradient-check tests."""
import numpy as np


def numeric_grad(f, a, eps=1e-6):
    """d f() / d a by central differences, perturbing `a` in place (restored afterwards)."""
    g = np.zeros_like(a)
    flat, gflat = a.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return g
