"""``python -m forgeml gpucheck``: check and time every registered CUDA kernel against CuPy.

A family registers by defining ``gpu_check(check)`` in its bench module and calling
``check.kernel(...)`` once per kernel. Without a usable GPU this says why and exits 0.
"""
from __future__ import annotations

import importlib
import statistics
import sys
from typing import Callable

from . import families


class GpuCheck:
    def __init__(self, repeats: int = 20):
        import cupy
        self.cp = cupy
        self.repeats = repeats
        self.rows: list[tuple] = []

    def time(self, fn: Callable[[], object]) -> float:
        """Median seconds of fn on the current stream, timed with CUDA events after a warm-up."""
        cp = self.cp
        fn()
        cp.cuda.get_current_stream().synchronize()
        ts = []
        for _ in range(self.repeats):
            start, stop = cp.cuda.Event(), cp.cuda.Event()
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            ts.append(cp.cuda.get_elapsed_time(start, stop) / 1e3)
        return statistics.median(ts)

    def kernel(self, family: str, case: str, forgeml_fn, peer_fn, *, peer: str = "cupy",
               rtol: float = 1e-4, atol: float = 1e-5, flops: float | None = None) -> bool:
        """Compare outputs (max error relative to the peer's scale), then time both."""
        cp = self.cp
        out, ref = forgeml_fn(), peer_fn()
        outs = out if isinstance(out, (tuple, list)) else (out,)
        refs = ref if isinstance(ref, (tuple, list)) else (ref,)
        err = max(float(cp.max(cp.abs(o.astype(cp.float64) - r.astype(cp.float64))) /
                        (float(cp.max(cp.abs(r.astype(cp.float64)))) + atol)) if r.size else 0.0
                  for o, r in zip(outs, refs))
        ok = err <= rtol
        t_f, t_p = self.time(forgeml_fn), self.time(peer_fn)
        self.rows.append((family, case, ok, err, t_f, t_p, peer, flops))
        return ok

    def table(self) -> str:
        lines = [f"{'family':7s} {'case':30s} {'ok':3s} {'max rel err':>11s} {'forgeml':>10s} {'peer':>10s} "
                 f"{'peer/fml':>8s} {'GF/s':>8s}  peer"]
        for family, case, ok, err, t_f, t_p, peer, flops in self.rows:
            gf = f"{flops / t_f / 1e9:8.0f}" if flops else "       -"
            lines.append(f"{family:7s} {case:30s} {'yes' if ok else 'NO':3s} {err:11.2e} {t_f * 1e3:8.3f}ms "
                         f"{t_p * 1e3:8.3f}ms {t_p / t_f:8.2f} {gf}  {peer}")
        return "\n".join(lines)


    def records(self) -> list[dict]:
        keys = ("family", "case", "ok", "max_rel_err", "forgeml_s", "peer_s", "peer", "flops")
        out = []
        for row in self.rows:
            r = dict(zip(keys, row))
            r["ratio"] = r["peer_s"] / r["forgeml_s"] if r["forgeml_s"] > 0 else None
            out.append(r)
        return out


def main(argv=None) -> int:
    """``gpucheck [--json PATH] [--repeats N] [--families a,b]``: every (or each named) family's
    ``gpu_check``; a family that raises is reported as failed and the others still run."""
    import argparse
    import json
    import traceback

    parser = argparse.ArgumentParser(prog="python -m forgeml gpucheck")
    parser.add_argument("--json", help="write the rows (and any family errors) to this JSON file")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--families", help="comma-separated bench modules to check (default: all)")
    args = parser.parse_args(argv)
    names = families()
    if args.families:
        names = [n.strip() for n in args.families.split(",") if n.strip()]
        unknown = sorted(set(names) - set(families()))
        if unknown:
            parser.error(f"--families: unknown {unknown}; choose from {families()}")
    from .. import cuda
    if not cuda.is_available():
        print(f"gpucheck: no usable GPU ({cuda.status()}); nothing to check")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"gpu": None, "reason": cuda.status(), "rows": [], "errors": {}}, f, indent=1)
        return 0
    check = GpuCheck(repeats=args.repeats)
    errors = {}
    for name in names:
        mod = importlib.import_module(f"{__package__}.{name}")
        if hasattr(mod, "gpu_check"):
            try:
                mod.gpu_check(check)
            except Exception:  # report it and go on: one broken family must not hide the others
                errors[name] = traceback.format_exc(limit=4)
                print(f"gpucheck: {name} failed:\n{errors[name]}", file=sys.stderr)
    print(check.table())
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpu": cuda.status(), "rows": check.records(), "errors": errors}, f, indent=1)
    return 0 if all(r[2] for r in check.rows) and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
