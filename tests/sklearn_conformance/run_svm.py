"""scikit-learn's own SVM tests run on forgeml's classes (conformance count).

Copies sklearn/svm/tests/test_svm.py and test_sparse.py from the installed scikit-learn into a
temporary folder, rewrites their imports so every SVM class forgeml provides comes from
forgeml.svm (the rest of sklearn.svm stays scikit-learn's), runs pytest there, and prints
passed / failed counts over the tests that use a forgeml class. Tests that call scikit-learn's
private internals (_libsvm, _base, ...) are excluded and listed.

    PYTHONPATH=python python tests/sklearn_conformance/run_svm.py [--floor N] [--show-failed] [-k EXPR]

Exit status 1 when the number passed is below --floor.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys
import tempfile

from harness import below_floor, run_pytest, tally

SVM_CLASSES = ("SVC", "NuSVC", "SVR", "NuSVR", "OneClassSVM", "LinearSVC", "LinearSVR")
TEST_FILES = ("test_svm.py", "test_sparse.py")
# tests reaching into scikit-learn's private machinery: not about forgeml's behaviour
PRIVATE = re.compile(
    r"\b(_libsvm|_libsvm_sparse|_validate_dual_parameter|_get_liblinear_solver_type|"
    r"_fit_liblinear|svm\._base|_sparse_fit|_dense_fit|_impl|_libsvm_impl)\b"
)

SHIM = '''"""sklearn.svm with forgeml's classes swapped in (written by run_svm.py)."""
import types as _types

import sklearn.svm as _sk
import forgeml.svm as _fml

svm = _types.ModuleType("svm")
svm.__dict__.update({{k: v for k, v in vars(_sk).items() if not k.startswith("__")}})
SWAPPED = []
for _name in {classes!r}:
    if hasattr(_fml, _name):
        setattr(svm, _name, getattr(_fml, _name))
        SWAPPED.append(_name)
globals().update({{k: getattr(svm, k) for k in {classes!r}}})
'''

CONFTEST = '''"""Records each test's outcome and whether it uses a forgeml class (written by run_svm.py)."""
import inspect, json, os, re
import _fml_svm

_USES = re.compile(r"\\b(" + "|".join(_fml_svm.SWAPPED or ["__none__"]) + r")\\b")
_PRIVATE = re.compile({private!r})
_results = {{}}


def _source(item):
    try:
        return inspect.getsource(item.function)
    except (OSError, TypeError):
        return ""


def pytest_collection_modifyitems(config, items):
    for item in items:
        src = _source(item)
        item.user_properties.append(("forgeml", bool(_USES.search(src))))
        item.user_properties.append(("private", bool(_PRIVATE.search(src))))


def pytest_runtest_logreport(report):
    props = dict(report.user_properties)
    r = _results.setdefault(report.nodeid, {{"outcome": "passed", **props}})
    if report.failed:
        r["outcome"] = "failed"
    elif report.skipped and r["outcome"] == "passed":
        r["outcome"] = "skipped"


def pytest_sessionfinish(session):
    with open(os.environ["FML_CONFORMANCE_OUT"], "w") as f:
        json.dump(_results, f)
'''


def rewrite(src: str) -> str:
    """Point the test module's SVM names at the shim."""
    src = re.sub(
        r"^from sklearn import (.*)\bsvm\b(.*)$",
        r"from sklearn import \1_sk_svm_unused\2\nfrom _fml_svm import svm",
        src,
        flags=re.M,
    )
    src = src.replace("_sk_svm_unused", "svm as _sk_svm_unused")
    # from sklearn.svm import (A, B, _libsvm): forgeml's classes where it has them
    src = re.sub(r"from sklearn\.svm import \(([^)]*)\)", lambda m: _from_shim(m.group(1)), src)
    src = re.sub(r"^from sklearn\.svm import ([^(\n]+)$", lambda m: _from_shim(m.group(1)), src, flags=re.M)
    src = src.replace("from sklearn.svm.tests import test_svm", "import test_svm")
    return src


def _from_shim(names: str) -> str:
    names = [n.strip() for n in names.replace("\n", " ").split(",") if n.strip()]
    ours = [n for n in names if n in SVM_CLASSES]
    theirs = [n for n in names if n not in SVM_CLASSES]
    lines = []
    if theirs:
        lines.append(f"from sklearn.svm import {', '.join(theirs)}")
    if ours:
        lines.append(f"from _fml_svm import {', '.join(ours)}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--floor", type=int, default=None, help="fail when fewer tests pass")
    ap.add_argument("--show-failed", action="store_true", help="list the failing tests")
    ap.add_argument("-k", default=None, help="pytest -k expression")
    ap.add_argument("--json", default=None, help="write the per-test outcomes here")
    args = ap.parse_args(argv)

    import sklearn

    sk_tests = pathlib.Path(sklearn.__file__).parent / "svm" / "tests"
    with tempfile.TemporaryDirectory(prefix="fml_svm_conf_") as tmp:
        tmp = pathlib.Path(tmp)
        for name in TEST_FILES:
            (tmp / name).write_text(rewrite((sk_tests / name).read_text()))
        (tmp / "_fml_svm.py").write_text(SHIM.format(classes=SVM_CLASSES))
        (tmp / "conftest.py").write_text(CONFTEST.format(private=PRIVATE.pattern))
        extra = ["-o", "addopts=", "-o", "filterwarnings=", "--tb=short"] + (["-k", args.k] if args.k else [])
        results = run_pytest(tmp, TEST_FILES, "FML_CONFORMANCE_OUT", extra)
        if results is None:
            return 2
    swapped = _swapped()
    used = {k: v for k, v in results.items() if v.get("forgeml") and not v.get("private")}
    private = sorted(k for k, v in results.items() if v.get("forgeml") and v.get("private"))
    counts = tally(used)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1))
    if args.show_failed:
        for k in sorted(k for k, v in used.items() if v["outcome"] == "failed"):
            print("FAILED", k)
    print(f"forgeml classes swapped in: {', '.join(swapped)}")
    print(f"excluded (scikit-learn private internals): {len(private)}")
    for k in private:
        print("  ", k)
    ran = counts["passed"] + counts["failed"]
    print(
        f"tests using a forgeml class: {len(used)}  passed {counts['passed']}  failed {counts['failed']}  "
        f"skipped {counts['skipped']}  ({100.0 * counts['passed'] / max(ran, 1):.1f}% of those run)"
    )
    print(f"SVM_CONFORMANCE_PASSED={counts['passed']}")
    return 1 if below_floor(counts["passed"], args.floor) else 0


def _swapped():
    import forgeml.svm as fml

    return [n for n in SVM_CLASSES if hasattr(fml, n)]


if __name__ == "__main__":
    sys.exit(main())
