import numpy as np
import pytest

import forgeml


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
