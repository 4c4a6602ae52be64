"""forgeml's benchmark suite: ``python -m forgeml bench [family ...] [--quick] [--json PATH] [--plot PATH]``.

Each family is a module here defining ``run(bench)``, which times forgeml against every peer that
is installed (peers are optional imports, skipped when missing).
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import platform
import sys

from . import peers
from .harness import Bench, Row

__all__ = ["Bench", "Row", "families", "main", "header"]

_NOT_FAMILIES = {"harness", "gpu", "peers", "gemm_lowp"}  # gemm_lowp: rows of the gemm family


def families() -> list[str]:
    names = [m.name for m in pkgutil.iter_modules(__path__) if m.name not in _NOT_FAMILIES]
    return sorted(names)


def header() -> dict:
    from .._backend import cpu as _cpu
    h = {
        "forgeml": _cpu.version,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "simd": _cpu.active_isa(),
        "threads": _cpu.get_num_threads(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
    }
    try:
        import numpy as np
        h["numpy"] = np.__version__
        from threadpoolctl import threadpool_info
        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if blas:
            b = blas[0]
            h["numpy_blas"] = f"{b.get('internal_api')} {b.get('version')} kernel={b.get('architecture')} threads={b.get('num_threads')}"
    except ImportError:
        h["numpy_blas"] = "unknown (pip install threadpoolctl)"
    return h


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m forgeml bench", description=__doc__)
    p.add_argument("families", nargs="*", help=f"families to run (default all: {', '.join(families())})")
    p.add_argument("--quick", action="store_true", help="smaller cases and fewer repeats")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--spread", action="store_true",
                   help="print each row's min-max time per side (always kept in --json)")
    p.add_argument("--json", metavar="PATH", help="write the rows as JSON")
    p.add_argument("--plot", metavar="PATH", help="write a PNG of the ratios (needs matplotlib)")
    args = p.parse_args(argv)
    known = families()
    chosen = args.families or known
    unknown = [f for f in chosen if f not in known]
    if unknown:
        p.error(f"unknown families {unknown}; known: {known}")
    h = header()
    print("# forgeml bench  " + "  ".join(f"{k}={v}" for k, v in h.items()))
    if h.get("OPENBLAS_CORETYPE"):
        print("# note: OPENBLAS_CORETYPE is set, which slows NumPy's OpenBLAS; unset it (and "
              "OPENBLAS_L2_SIZE) to measure NumPy at its best")
    print(f"{'family':6s} {'case':34s} {'impl':10s} {'forgeml':>12s}  {'peer':12s} {'peer time':>12s}  {'ratio':>7s}")
    bench = Bench(quick=args.quick, repeats=args.repeats, show_spread=args.spread)
    for name in chosen:
        print(peers.line(name), flush=True)
        importlib.import_module(f"{__name__}.{name}").run(bench)
    print()
    print(bench.summary(chosen))
    if args.json:
        bench.save_json(args.json, h)
        print(f"# wrote {args.json}")
    if args.plot and bench.plot(args.plot):
        print(f"# wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
