"""atheris target: forgeml.keras.models.load_model on arbitrary .keras archives.

The contract: a damaged or hostile file raises ValueError (or OSError for unreadable paths) and
never crashes, hangs, or raises anything else. Inputs are mutated archives built from a real
saved model, plus raw bytes. Run by .ci/stage_sanitizers.sh; by hand:
    python tests/fuzz/fuzz_keras_loader.py -max_total_time=30
"""

import io
import json
import os
import sys
import tempfile
import zipfile

import atheris

import numpy as np  # noqa: F401

with atheris.instrument_imports(include=["forgeml"]):  # coverage of forgeml's Python, not NumPy's
    from forgeml import keras


def _seed_archive() -> bytes:
    model = keras.Sequential(
        [keras.layers.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(2)]
    )
    path = os.path.join(tempfile.mkdtemp(), "seed.keras")
    model.save(path)
    with open(path, "rb") as f:
        return f.read()


SEED = _seed_archive()
with zipfile.ZipFile(io.BytesIO(SEED)) as _zf:
    SEED_CONFIG = json.loads(_zf.read("config.json"))
    SEED_WEIGHTS = _zf.read("model.weights.npz")
PATH = os.path.join(tempfile.mkdtemp(), "fuzz.keras")


def _mutate_json(value, fdp):
    """Replace one random sub-value of the seed config by a fuzzed JSON value."""
    choices = [None, True, 0, -1, 1 << 40, 1.5, "", "x", [], {}, [1, 2], {"a": 1}]
    if isinstance(value, dict) and value and fdp.ConsumeBool():
        key = fdp.PickValueInList(sorted(value))
        return {**value, key: _mutate_json(value[key], fdp)}
    if isinstance(value, list) and value and fdp.ConsumeBool():
        i = fdp.ConsumeIntInRange(0, len(value) - 1)
        return value[:i] + [_mutate_json(value[i], fdp)] + value[i + 1 :]
    return fdp.PickValueInList(choices) if fdp.ConsumeBool() else fdp.ConsumeUnicodeNoSurrogates(16)


def TestOneInput(data: bytes):
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 2)
    if mode == 0:  # raw bytes
        blob = fdp.ConsumeBytes(fdp.remaining_bytes())
    else:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            config = _mutate_json(SEED_CONFIG, fdp) if mode == 1 else fdp.ConsumeUnicodeNoSurrogates(200)
            zf.writestr("config.json", config if isinstance(config, str) and mode == 2 else json.dumps(config))
            zf.writestr("metadata.json", "{}")
            weights = SEED_WEIGHTS if fdp.ConsumeBool() else fdp.ConsumeBytes(fdp.remaining_bytes())
            zf.writestr("model.weights.npz", weights)
        blob = buf.getvalue()
    with open(PATH, "wb") as f:
        f.write(blob)
    try:
        keras.models.load_model(PATH)
    except (ValueError, OSError):
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
