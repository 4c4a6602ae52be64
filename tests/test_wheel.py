"""Wheel smoke test: CI sets FORGEML_WHEEL to the repaired wheel it installed into a fresh venv."""
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

import forgeml

WHEEL = os.environ.get("FORGEML_WHEEL")
pytestmark = pytest.mark.skipif(not WHEEL, reason="FORGEML_WHEEL not set (CI sets it to the built wheel)")
SOURCE = pathlib.Path(__file__).resolve().parents[1] / "python" / "forgeml"


def test_wheel_contents():
    names = zipfile.ZipFile(WHEEL).namelist()
    assert any(n.startswith("forgeml/_cpu") and n.endswith(".so") for n in names)
    assert any(n.startswith("forgeml.libs/libgomp") for n in names), "auditwheel did not bundle libgomp"
    if shutil.which("nvcc"):
        assert any(n.startswith("forgeml/_cuda") for n in names)
    assert not any(n.startswith("tests/") for n in names)


def test_installed_from_the_wheel_not_the_source_tree():
    here = pathlib.Path(forgeml.__file__).resolve().parent
    assert here != SOURCE.resolve()
    assert "site-packages" in str(here)


def test_works_from_a_clean_directory(tmp_path):
    code = ("import numpy as np, forgeml, forgeml.ops as ops; forgeml.show_config(); "
            "a = np.arange(6, dtype=np.float32).reshape(2, 3); "
            "print(ops.matmul(a, a.T).tolist())")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "SIMD used" in r.stdout
    assert "[[5.0, 14.0], [14.0, 50.0]]" in r.stdout
