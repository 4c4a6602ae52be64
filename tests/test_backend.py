"""Backend dispatch and the shared validation helpers."""
import numpy as np
import pytest

import forgeml
from forgeml import _backend


class FakeCupyArray:
    """Looks like a CuPy array to the dispatcher (its type lives in a 'cupy' module)."""
    __module__ = "cupy._core.core"
    dtype = np.dtype(np.float32)
    ndim = 2
    shape = (2, 2)


def test_numpy_goes_to_cpu():
    kind, mod = _backend.backend_of(np.ones(3), None, np.zeros((2, 2)))
    assert kind == "cpu" and mod is forgeml._cpu


@pytest.mark.skipif(forgeml.cuda.is_available(), reason="a GPU is usable here")
def test_cupy_without_gpu_says_why_and_how_to_fix():
    with pytest.raises(RuntimeError) as err:
        _backend.backend_of(FakeCupyArray())
    msg = str(err.value)
    assert forgeml.cuda.status() in msg
    assert "cupy.asnumpy" in msg


def test_mixed_devices_name_the_arguments():
    with pytest.raises(TypeError, match="a on the GPU .* b on the CPU"):
        _backend.backend_of(FakeCupyArray(), np.ones(2), names=["a", "b"])


def test_as_array_converts_once():
    x = np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2]
    y = _backend.as_array(x, "x", ndim=2)
    assert y.dtype == np.float32 and y.flags.c_contiguous
    np.testing.assert_array_equal(y, x)
    z = np.ones((3, 4), np.float32)
    assert _backend.as_array(z, "z") is z  # already right: no copy
    assert _backend.as_array([[1, 2]], "lst").dtype == np.float32


def test_as_array_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"weights: expected a 2-D array, got 1-D with shape \(3,\)"):
        _backend.as_array(np.ones(3), "weights", ndim=2)
    with pytest.raises(TypeError, match="labels: expected a numeric array, got dtype <U1"):
        _backend.as_array(np.array(["a"]), "labels")
    with pytest.raises(ValueError, match=r"x: expected a 3-D or 4-D array"):
        _backend.as_array(np.ones(2), "x", ndim=(3, 4))


def test_check_shape():
    _backend.check_shape(np.ones((2, 3)), "w", (2, None))
    with pytest.raises(ValueError, match=r"w: expected shape \(\?, 4\), got \(2, 3\)"):
        _backend.check_shape(np.ones((2, 3)), "w", (None, 4))


def test_device_context():
    assert _backend.current_device() == "cpu"
    with pytest.raises(ValueError, match="device: expected 'cpu' or 'cuda'"):
        with forgeml.device("tpu"):
            pass
    with forgeml.device("cpu"):
        assert _backend.current_device() == "cpu"
    if not forgeml.cuda.is_available():
        with pytest.raises(RuntimeError, match="cannot run CUDA kernels"):
            with forgeml.device("cuda"):
                pass
        assert _backend.current_device() == "cpu"


def test_only_backend_imports_the_extension_modules():
    """forgeml._backend is the one importer of _cpu / _cuda / _emu (everything else asks it)."""
    import ast
    import pathlib
    root = pathlib.Path(forgeml.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if path.name == "_backend.py" and path.parent == root:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if any(n.split(".")[-1] in ("_cpu", "_cuda", "_emu") for n in names):
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not offenders, f"import the extension modules through forgeml._backend: {offenders}"
