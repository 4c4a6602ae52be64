"""scikit-learn's own tree/forest test files on forgeml's classes stay at or above the floor
recorded in .ci/stage_sklearn_trees.sh (the run takes about a minute: slow)."""

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _floor() -> int:
    text = (ROOT / ".ci" / "stage_sklearn_trees.sh").read_text()
    return int(re.search(r"^FLOOR=(\d+)", text, re.M).group(1))


def test_rewrite_rebinds_only_imported_classes():
    sys.path.insert(0, str(ROOT / "tests" / "sklearn_conformance"))
    try:
        from run import rewrite
    finally:
        sys.path.pop(0)
    src = "import numpy as np\nfrom sklearn.tree import (\n    DecisionTreeClassifier,\n)\nX = 1\n"
    out = rewrite(src, {"DecisionTreeClassifier": "forgeml.tree", "RandomForestClassifier": "forgeml.ensemble"})
    lines = out.splitlines()
    assert lines.index("from forgeml.tree import DecisionTreeClassifier  # noqa") == 5
    assert "RandomForestClassifier" not in out
    assert lines[-1] == "X = 1"


@pytest.mark.slow
def test_sklearn_conformance_at_least_floor():
    pytest.importorskip("matplotlib")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "sklearn_conformance" / "run.py"), "--floor", str(_floor())],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(r"CONFORMANCE passed=(\d+)", proc.stdout)
