"""Which peers each benchmark family compares against, whether they are installed here, and the
one command that installs the missing ones. Peers are never dependencies of forgeml: the
benchmark simply has nobody to compare with until they are installed."""

from __future__ import annotations

import importlib.metadata
import importlib.util

# family -> {import name: (what the row is called, the pip command that brings it)}
_TORCH = ("torch", "pip install torch==2.13.0")
_KERAS = ("keras (JAX)", "pip install keras jax jaxlib")
PEERS: dict[str, dict[str, tuple[str, str | None]]] = {
    "gemm": {"numpy": ("numpy", None), "torch": _TORCH},
    "conv": {"torch": _TORCH},
    "rnn": {"torch": _TORCH},
    "keras": {"keras": _KERAS, "jax": _KERAS, "torch": _TORCH},
    "keras_cnn_rnn": {"torch": _TORCH},
    "keras_seq": {"torch": _TORCH},
    "tree": {
        "sklearn": ("scikit-learn", None),
        "lightgbm": ("lightgbm", "pip install lightgbm xgboost"),
        "xgboost": ("xgboost", "pip install lightgbm xgboost"),
    },
    "svm": {"sklearn": ("scikit-learn", None)},
    "sparse": {"numpy": ("numpy", None), "scipy": ("scipy", None)},
    "quantize": {"forgeml": ("forgeml float32 (the same model unquantized)", None)},
    "gemm_cuda": {"cupy": ("cupy (cuBLAS)", "pip install 'forgeml[cuda]'")},
    "svm_cuda": {"cupy": ("cupy", "pip install 'forgeml[cuda]'")},
    "dist": {
        "distributed": ("dask.distributed", "pip install 'forgeml[dask]'"),
        "mpi4py": ("mpi4py", "pip install 'forgeml[mpi]'"),
    },
}


def _version(module: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return None
    dist = {"sklearn": "scikit-learn"}.get(module, module)
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def status(family: str) -> tuple[list[str], list[str], list[str]]:
    """(found 'name version' strings, missing names, install commands for the missing) of a family;
    found without importing the peers (importing PyTorch alone takes seconds)."""
    found, missing, commands = [], [], []
    for module, (_name, command) in PEERS.get(family, {}).items():
        v = _version(module)
        if v is not None:
            found.append(f"{module} {v}")
        else:
            missing.append(module)
            if command and command not in commands:
                commands.append(command)
    return found, missing, commands


def line(family: str) -> str:
    """One line for the bench output, e.g.
    '# conv: peers found: none; missing torch: pip install torch==2.13.0 (no comparison until then)'."""
    found, missing, commands = status(family)
    text = f"# {family}: peers found: {', '.join(found) if found else 'none'}"
    if missing:
        text += f"; missing {', '.join(missing)}: {' && '.join(commands) if commands else 'see README'}"
    if not found and family in PEERS:
        text += " (no comparison until then)"
    return text
