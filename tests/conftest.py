import numpy as np
import pytest

import forgeml


def _emulator_built():
    try:
        from forgeml import _emu
    except ImportError:
        return False
    return hasattr(_emu, "device")


@pytest.fixture(params=[pytest.param("device", marks=pytest.mark.gpu), "emulator"])
def cupy(request):
    """CuPy for the GPU-path tests, twice: the real one on a real GPU (marked gpu, skipped without
    one) and the host-backed stand-in (tests/cupy_standin.py) with "cuda" work on forgeml._emu.
    The stand-in counts host <-> device copies: see the ``copies`` fixture."""
    if request.param == "device":
        import cupy
        yield cupy
        return
    if not _emulator_built():
        pytest.skip("forgeml._emu (with its device API) was not built: configure with FORGEML_TESTING=ON")
    import cupy_standin
    with cupy_standin.installed() as cp:
        yield cp


@pytest.fixture
def copies(cupy):
    """Host <-> device copy counts of the CuPy stand-in (None on a real GPU, where nothing counts)."""
    if not cupy.__version__.endswith("standin"):
        return None
    import cupy_standin
    return cupy_standin.counts


def pytest_collection_modifyitems(config, items):
    if forgeml.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=f"no usable GPU: {forgeml.cuda.status()}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def restore_threads():
    n = forgeml.get_num_threads()
    yield
    forgeml.set_num_threads(n)
