"""What the conformance runners share: run pytest on adapted copies of scikit-learn's test files
in a work folder, read back the per-test outcomes a plugin recorded, count them, check a floor."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

OUTCOMES = ("passed", "failed", "skipped")


def run_pytest(work: pathlib.Path, files, out_var: str, extra=()) -> dict | None:
    """pytest on `files` in `work` (first on PYTHONPATH); the plugin writes the outcomes as JSON to
    the file named by the environment variable `out_var`. None (with pytest's tail printed) when
    pytest wrote none."""
    out = work / "outcomes.json"
    env = dict(os.environ, MPLBACKEND=os.environ.get("MPLBACKEND", "Agg"))
    env[out_var] = str(out)
    inherited = [str(pathlib.Path(p).resolve()) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([str(work), *inherited])
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "sklearn.conftest", "-p", "no:cacheprovider"]
    cmd += ["--rootdir", str(work), *extra, *map(str, files)]
    proc = subprocess.run(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if not out.exists():
        print(proc.stdout[-5000:])
        print("conformance: pytest wrote no outcomes", file=sys.stderr)
        return None
    return json.loads(out.read_text())


def tally(results: dict) -> dict[str, int]:
    return {o: sum(1 for v in results.values() if v["outcome"] == o) for o in OUTCOMES}


def below_floor(passed: int, floor: int | None) -> bool:
    if floor is not None and passed < floor:
        print(f"conformance: {passed} forgeml tests passed, below the floor {floor}", file=sys.stderr)
        return True
    return False
