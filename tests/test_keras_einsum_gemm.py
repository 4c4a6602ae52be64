"""keras.ops.einsum's two-operand contractions, which run as 2-D GEMMs (or stacked matmuls over
batch indices), against NumPy's float64 einsum on odd sizes, values and gradients."""

import numpy as np
import pytest

from forgeml.keras import ops
from forgeml.keras.autodiff.tape import Tensor, backward
from forgeml.keras.ops import numpy as kn

SPECS = [
    ("btd,dhk->bthk", [(3, 5, 7), (7, 2, 3)]),
    ("bthk,hkd->btd", [(3, 5, 2, 3), (2, 3, 7)]),
    ("bshk,bthk->bhts", [(3, 5, 2, 3), (3, 4, 2, 3)]),
    ("bhts,bshk->bthk", [(3, 2, 4, 5), (3, 5, 2, 3)]),
    ("bthk,btd->dhk", [(3, 5, 2, 3), (3, 5, 7)]),
    ("ij,jk->ki", [(5, 3), (3, 7)]),
    ("ij,j->i", [(5, 3), (3,)]),
    ("ij,ij->i", [(5, 3), (5, 3)]),  # no contraction: NumPy's einsum path
]


@pytest.mark.parametrize(("spec", "shapes"), SPECS)
def test_two_operand_einsum_matches_float64(spec, shapes):
    rng = np.random.default_rng(len(spec))
    vals = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    got = kn._einsum(np, spec, *vals)
    want = np.einsum(spec, *[v.astype(np.float64) for v in vals])
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("spec", "shapes"), SPECS[:5])
def test_einsum_gradients_match_float64(spec, shapes):
    """float32 inputs take the GEMM path in both directions; the VJP is checked against the exact
    float64 gradients of sum(einsum * g)."""
    rng = np.random.default_rng(1)
    vals = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    ins, out = spec.split("->")
    sa, sb = ins.split(",")
    ta, tb = Tensor(vals[0]), Tensor(vals[1])
    y = ops.einsum(spec, ta, tb)
    g = rng.standard_normal(y.shape).astype(np.float32)
    ga, gb = backward(y, [ta, tb], g)
    a, b, g64 = vals[0].astype(np.float64), vals[1].astype(np.float64), g.astype(np.float64)
    np.testing.assert_allclose(ga, np.einsum(f"{out},{sb}->{sa}", g64, b), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gb, np.einsum(f"{out},{sa}->{sb}", g64, a), rtol=1e-4, atol=1e-4)
