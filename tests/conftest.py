import contextlib

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


ISA_ORDER = ("reference", "portable", "avx2", "avx512")


def supported_isas(lowest="reference"):
    """The SIMD paths this CPU runs, from `lowest` up to the detected one."""
    from forgeml import _cpu

    top = ISA_ORDER.index(_cpu.detected_isa())
    return list(ISA_ORDER[ISA_ORDER.index(lowest) : top + 1])


@contextlib.contextmanager
def isa_active(name):
    """`name` as the active SIMD path inside the block (an oracle taken from another path within a
    test that runs under the ``isa`` fixture); the previous one is restored after."""
    from forgeml import _cpu

    before = _cpu.active_isa()
    _cpu.set_active_isa(name)
    try:
        yield name
    finally:
        _cpu.set_active_isa(before)


@pytest.fixture(params=supported_isas())
def isa(request):
    """The one ISA fixture of every family's tests: the test runs once per supported SIMD path (or
    per path a test lists with ``@pytest.mark.parametrize("isa", [...], indirect=True)``), with that
    path active; the previous one is restored after."""
    with isa_active(request.param):
        yield request.param


@pytest.fixture
def python_sigint():
    """Python's own SIGINT handler for the test: a shell starts background jobs with SIGINT
    ignored, and Python then never installs it (so Ctrl-C tests would see nothing)."""
    import signal

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
