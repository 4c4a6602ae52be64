"""Run scikit-learn's own tree and forest test files on forgeml's estimator classes.

Copies test_tree.py, test_export.py, test_monotonic_tree.py (sklearn/tree/tests) and
test_forest.py (sklearn/ensemble/tests) from the installed scikit-learn into a temporary
directory, rebinds every estimator class forgeml provides to forgeml's (right after each file's
imports, so module-level tables such as CLF_TREES pick them up), runs pytest on them and counts
the outcomes of the tests that construct a forgeml estimator (the others test scikit-learn's own
classes or private Cython internals and are reported apart).

    PYTHONPATH=python python tests/sklearn_conformance/run.py [--floor N] [--json out.json]
                                                             [--keep DIR] [-- pytest args]

Exit status 1 when fewer than --floor forgeml tests pass.
"""

from __future__ import annotations

import argparse
import ast
import json
import pathlib
import shutil
import sys
import tempfile

from harness import below_floor, run_pytest, tally

FILES = [
    "tree/tests/test_tree.py",
    "tree/tests/test_export.py",
    "tree/tests/test_monotonic_tree.py",
    "ensemble/tests/test_forest.py",
]
CLASSES = {  # name -> forgeml module that may provide it
    "DecisionTreeClassifier": "forgeml.tree",
    "DecisionTreeRegressor": "forgeml.tree",
    "ExtraTreeClassifier": "forgeml.tree",
    "ExtraTreeRegressor": "forgeml.tree",
    "RandomForestClassifier": "forgeml.ensemble",
    "RandomForestRegressor": "forgeml.ensemble",
    "ExtraTreesClassifier": "forgeml.ensemble",
    "ExtraTreesRegressor": "forgeml.ensemble",
    # scikit-learn's export functions accept only its own tree classes: forgeml's run its code
    "export_text": "forgeml.tree",
    "plot_tree": "forgeml.tree",
    "export_graphviz": "forgeml.tree",
}
HERE = pathlib.Path(__file__).resolve().parent
# Tests of scikit-learn's private internals rather than of the estimators' behaviour: they are run
# but counted apart (the "private Cython internals excluded and listed").
PRIVATE = {
    "test_tree.py::test_build_pruned_tree_py": "calls the Cython _build_pruned_tree_py on a Cython Tree",
    "test_tree.py::test_build_pruned_tree_infinite_loop": "calls the Cython _build_pruned_tree_py",
    "test_tree.py::test_huge_allocations": "expects the Cython tree builder's MemoryError on its node-array allocation",
    "test_forest.py::test_mse_criterion_object_segfault_smoke_test": "passes a Cython Criterion object as criterion",
    "test_forest.py::test_validate_y_class_weight": "calls the private method BaseForest._validate_y_class_weight",
}


def provided() -> dict[str, str]:
    import importlib

    out = {}
    for name, mod in CLASSES.items():
        if hasattr(importlib.import_module(mod), name):
            out[name] = mod
    return out


def rewrite(src: str, names: dict[str, str]) -> str:
    """Insert `from forgeml.x import Name` for the forgeml classes the file imports, after its
    last top-level import."""
    tree = ast.parse(src)
    imported, last = set(), 0
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            last = node.end_lineno
            if isinstance(node, ast.ImportFrom):
                imported.update(a.asname or a.name for a in node.names)
    lines = src.splitlines(keepends=True)
    block = ["# --- forgeml conformance: estimator classes from forgeml ---\n"]
    block += [f"from {mod} import {name}  # noqa\n" for name, mod in sorted(names.items()) if name in imported]
    return "".join(lines[:last] + block + lines[last:])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--floor", type=int, default=0, help="fail when fewer forgeml tests pass")
    ap.add_argument("--json", help="write per-test outcomes here")
    ap.add_argument("--keep", help="write the adapted files to this directory (kept)")
    ap.add_argument("--list-failed", action="store_true", help="print the failing forgeml tests")
    ap.add_argument("pytest_args", nargs="*")
    args = ap.parse_args(argv)

    import sklearn

    skl = pathlib.Path(sklearn.__file__).parent
    names = provided()
    work = pathlib.Path(args.keep) if args.keep else pathlib.Path(tempfile.mkdtemp(prefix="forgeml_skl_"))
    work.mkdir(parents=True, exist_ok=True)
    for rel in FILES:
        src = (skl / rel).read_text()
        (work / pathlib.Path(rel).name).write_text(rewrite(src, names))
    shutil.copy(HERE / "plugin.py", work / "forgeml_conformance_plugin.py")
    (work / "pytest.ini").write_text("[pytest]\n")  # keeps pytest off the repository's config
    res = run_pytest(
        work,
        [work / pathlib.Path(r).name for r in FILES],
        "FORGEML_CONFORMANCE_OUT",
        ["-p", "forgeml_conformance_plugin", "-o", "console_output_style=classic", "--tb=no", "-rN", *args.pytest_args],
    )
    if res is None:
        return 2
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(res, indent=1))
    private = {k: v for k, v in res.items() if k.split("[")[0] in PRIVATE}
    fml = {k: v for k, v in res.items() if v["forgeml"] and k not in private}
    others = {k: v for k, v in res.items() if not v["forgeml"] and k not in private}
    print(f"forgeml classes: {', '.join(sorted(names))}")
    for label, d in (("forgeml tests", fml), ("other tests", others), ("private-internals tests (excluded)", private)):
        c = tally(d)
        print(f"{label}: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped (of {len(d)})")
    c = tally(fml)
    passed, failed = c["passed"], c["failed"]
    print(f"CONFORMANCE passed={passed} failed={failed} rate={passed / max(1, passed + failed):.3f}")
    for name, why in PRIVATE.items():
        print(f"excluded: {name}: {why}")
    if args.list_failed:
        for k, v in sorted(fml.items()):
            if v["outcome"] == "failed":
                print("FAILED", k, "|", v.get("msg", "")[:200])
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if below_floor(passed, args.floor) else 0


if __name__ == "__main__":
    sys.exit(main())
