"""ops.pack_int8: an int8 B packed once for the CPU int8 GEMM gives the same results as the
per-call packing (int8 a with scales, and a float a quantized per row inside the call)."""

import numpy as np
import pytest

from forgeml import _cpu
from forgeml.ops import matmul_int8, pack_int8, quantize_int8
from conftest import isa_active, supported_isas
from test_gemm_lowp import SHAPES, int8_ref, rand, rand_int8

PACKED_ISAS = supported_isas("portable")  # packing has no reference path


@pytest.mark.parametrize("m,n,k", SHAPES)
@pytest.mark.parametrize("isa", PACKED_ISAS, indirect=True)
def test_packed_matches_exact_integer_reference(isa, rng, m, n, k):
    qa, qb = rand_int8(rng, m, k), rand_int8(rng, k, n)
    sa, sb = rng.uniform(0.001, 0.02, m).astype(np.float32), rng.uniform(0.001, 0.02, n).astype(np.float32)
    pb = pack_int8(qb)
    assert pb.shape == (k, n) and pb.isa == isa
    c = matmul_int8(qa, sa, pb, sb)
    ref = int8_ref(qa, sa, qb, sb)
    scale = (np.abs(qa.astype(np.float64)) @ np.abs(qb.astype(np.float64))) * sa[:, None] * sb
    assert np.all(np.abs(c - ref) <= 1e-6 * scale + 1e-7), np.abs(c - ref).max()
    np.testing.assert_array_equal(c, matmul_int8(qa, sa, qb, sb))  # same kernel, same sums


@pytest.mark.parametrize("act", [None, "relu", "gelu"])
@pytest.mark.parametrize("isa", PACKED_ISAS, indirect=True)
def test_packed_float_a_quantized_per_row(isa, rng, act):
    x, w, bias = rand(rng, 41, 67), rand(rng, 67, 37), rand(rng, 37)
    x[3] = 0
    qw, sw = quantize_int8(w, axis=0)
    c = matmul_int8(x, None, pack_int8(qw), sw, bias=bias, activation=act)
    qx, sx = quantize_int8(x)
    np.testing.assert_allclose(c, int8_ref(qx, sx, qw, sw, bias, act), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(c, matmul_int8(x, None, qw, sw, bias=bias, activation=act))


@pytest.mark.parametrize("m", [1, 2, 3, 6])
@pytest.mark.parametrize("k", [1, 7, 8, 9, 31, 32, 33, 64, 67])
@pytest.mark.parametrize("isa", PACKED_ISAS, indirect=True)
def test_packed_float_a_rows_in_pairs(isa, rng, m, k):
    """A float a is quantized inside the call two rows at a time where the ISA can (AVX2): the
    same codes and scales as quantize_int8 row by row at every width around the vector steps,
    and a NaN or infinity refused naming its row, first or second of a pair."""
    x, qw = rand(rng, m, k) * rng.uniform(0.1, 50, (m, 1)).astype(np.float32), rand_int8(rng, k, 19)
    sw, pb = rng.uniform(0.001, 0.02, 19).astype(np.float32), pack_int8(qw)
    qx, sx = quantize_int8(x)
    np.testing.assert_array_equal(matmul_int8(x, None, pb, sw), matmul_int8(qx, sx, pb, sw))
    for row in range(min(m, 3)):
        y = x.copy()
        y[row, k // 2] = np.nan if row % 2 else np.inf
        with pytest.raises(ValueError, match=f"row {row} holds NaN"):
            matmul_int8(y, None, pb, sw)


def test_packed_errors_and_empty(rng):
    qb = rand_int8(rng, 5, 4)
    pb, sb = pack_int8(qb), np.ones(4, np.float32)
    with pytest.raises(TypeError, match="b: expected a NumPy int8"):
        pack_int8(qb.astype(np.float32))
    with pytest.raises(ValueError, match="b: expected 6 rows"):
        matmul_int8(rand(rng, 3, 6), None, pb, sb)
    with pytest.raises(ValueError, match="b_scale"):
        matmul_int8(rand(rng, 3, 5), None, pb, np.ones(3, np.float32))
    with pytest.raises(TypeError, match="a: expected int8"):
        matmul_int8(rand(rng, 3, 5), np.ones(3, np.float32), pb, sb)
    with pytest.raises(ValueError, match="NaN"):
        matmul_int8(np.array([[1, 2, np.nan, 0, 0]], np.float32), None, pb, sb)
    assert matmul_int8(rand(rng, 0, 5), None, pb, sb).shape == (0, 4)
    z = matmul_int8(rand(rng, 3, 0), None, pack_int8(rand_int8(rng, 0, 4)), sb, bias=np.full(4, 2, np.float32))
    np.testing.assert_array_equal(z, np.full((3, 4), 2, np.float32))
    if len(PACKED_ISAS) > 1:
        with isa_active(PACKED_ISAS[0] if _cpu.active_isa() != PACKED_ISAS[0] else PACKED_ISAS[-1]):
            with pytest.raises(ValueError, match="pack it again"):
                matmul_int8(rand(rng, 3, 5), None, pb, sb)
