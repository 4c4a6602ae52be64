"""forgeml.keras reads bottom-up: no module imports a module of a higher layer at import time
(the order is written in keras/registry.py)."""

import ast
import pathlib

import forgeml.keras

ROOT = pathlib.Path(forgeml.keras.__file__).parent
LAYERS = [
    {
        "registry",
        "utils",
        "backend",
        "autodiff",
        "summary",
        "random",
        "data_adapters",
        "utils_data",
        "mixed_precision",
        "distribution",
    },
    {"ops"},
    {"variables"},
    {
        "activations",
        "initializers",
        "losses",
        "loss_tape",
        "loss_mask",
        "metrics",
        "optimizers",
        "callbacks",
        "regularizers",
        "constraints",
        "activations_extra",
        "losses_extra",
        "metrics_extra",
        "callbacks_extra",
    },
    {"layers"},
    {"functional", "serialization", "saving", "quantization"},
    {"training", "traced", "_fast", "trainer_stream", "training_stream", "pruning"},
    {"models", "distillation", "export"},
    {"__init__"},
]


def _rank(top):
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"module {top!r} has no place in the layering table: add it")


def _top(path):
    rel = path.relative_to(ROOT).with_suffix("")
    return rel.parts[0]


def _imports(path):
    """keras modules imported at module level (function-level imports are lazy and not counted)."""
    tree = ast.parse(path.read_text())
    pkg = path.relative_to(ROOT).parent.parts
    out = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level:
            if node.level > len(pkg) + 1:
                continue  # forgeml itself (the kernels), below keras
            base = list(pkg[: len(pkg) - (node.level - 1)]) if node.level > 1 else list(pkg)
            mod = base + (node.module.split(".") if node.module else [])
            if len(mod) == 0:
                out += [a.name for a in node.names]
            else:
                out.append(mod[0])
    return out


def test_no_module_imports_upward():
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        me = _top(path)
        if me == "__init__" and path.parent != ROOT:
            continue
        for other in _imports(path):
            if other in ("__future__",) or other == me:
                continue
            if _rank(other) > _rank(me):
                bad.append(f"{path.relative_to(ROOT)} imports {other}")
    assert not bad, bad
