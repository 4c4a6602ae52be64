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


LAYOUT_SPECS = [spec for spec, _ in SPECS[:6]] + [
    "bthk,bhts->bshk",  # the output in the second operand's order first: computed as B^T A^T
    "btd,bthk->hkd",
    "bij,bjk->bki",
    "abc,cd->dab",
    "j,ij->i",
    "bi,bi->b",  # batch and contraction, no free index
    "i,i->",
]
LETTER_SIZES = dict(b=3, t=5, s=4, h=2, k=3, d=7, i=5, j=6, c=4, a=2)


def _laid_out(rng, shape, layout):
    x = rng.standard_normal(shape).astype(np.float32)
    if layout == "transposed" and x.ndim >= 2:  # memory order reversed: a transposed view
        return np.ascontiguousarray(np.swapaxes(x, 0, -1)).swapaxes(0, -1)
    if layout == "strided" and x.ndim >= 1:  # every other element of a wider array
        return rng.standard_normal(shape[:-1] + (2 * shape[-1],)).astype(np.float32)[..., ::2]
    return x


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided", "unit_axes"])
@pytest.mark.parametrize("spec", LAYOUT_SPECS)
def test_einsum_products_on_views_match_float64(spec, layout):
    """Operands are read in place where their strides merge into a (batch of) matrix or its
    transpose, and copied otherwise: every layout gives NumPy's float64 einsum."""
    rng = np.random.default_rng(len(spec))
    sizes = {c: 1 if layout == "unit_axes" and c in "hs" else n for c, n in LETTER_SIZES.items()}
    vals = [_laid_out(rng, tuple(sizes[c] for c in s), layout) for s in spec.split("->")[0].split(",")]
    want = np.einsum(spec, *[v.astype(np.float64) for v in vals])
    for _ in range(2):  # the second call takes the cached plan
        got = kn._einsum(np, spec, *vals)
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
