"""Side-by-side timing of forgeml and its peers, in one process.

Every case is timed interleaved (forgeml, peer 1, peer 2, forgeml, ...) after a warm-up, with a
short pause between implementations so spinning thread pools settle; the median of the repeats
is reported, and each row keeps the spread (min / median / max over the repeats) of every side
(``--spread`` prints it). A case may ask for its own pause (an idle gap before every sample) and a
`before` call run untimed just before every sample (e.g. another library's matmul). A case whose
single run takes over a minute runs once and says so.
"""
from __future__ import annotations

import dataclasses
import gc
import json
import math
import statistics
import sys
import time
from typing import Callable

LONG_CASE_S = 60.0
SHORT_SIDE_S = 3.0  # in a long case, a side this fast still takes the row's repeats


def repeated(fn: Callable[[], object], n: int) -> Callable[[], object]:
    """fn called n times in a row, as one sample (a case too short to time alone, or a steady
    state of back-to-back calls); the time printed is of the n calls."""
    if n <= 1:
        return fn

    def run():
        for _ in range(n):
            fn()

    return run


@dataclasses.dataclass
class Row:
    family: str
    case: str
    impl: str
    peer: str | None
    forgeml_s: float
    peer_s: float | None
    ratio: float | None  # peer_s / forgeml_s: > 1 means forgeml is faster
    metric: dict | None = None
    note: str = ""
    spread: dict | None = None  # impl name -> [min, median, max] seconds over the repeats

    def as_json(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("note")
        return d


class Bench:
    """Collects rows; family modules call ``compare`` once per case."""

    def __init__(self, quick: bool = False, repeats: int | None = None, pause: float = 0.05, out=None,
                 show_spread: bool = False):
        self.quick = quick
        self.show_spread = show_spread
        self.repeats = repeats or (3 if quick else 7)
        self.pause = pause
        self.rows: list[Row] = []
        self.out = out or sys.stdout

    def _time_once(self, fn: Callable[[], object], pause: float | None = None,
                   before: Callable[[], object] | None = None) -> float:
        gc.collect()
        time.sleep(self.pause if pause is None else pause)
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    def compare(self, family: str, case: str, forgeml_fn: Callable[[], object],
                peers: dict[str, Callable[[], object]] | None = None, *, impl: str = "forgeml",
                metric: Callable[[str], dict] | None = None, flops: float | None = None,
                repeats: int | None = None, pause: float | None = None,
                before: Callable[[], object] | None = None) -> list[Row]:
        """Time forgeml_fn against each peer; `metric(name)` may report e.g. accuracy per impl
        after its runs; `flops` adds GFLOP/s to the printed line. `pause` (seconds of sleep before
        every sample, default the bench's) and `before` (called untimed right before every
        sample) apply to every side alike."""
        peers = {k: v for k, v in (peers or {}).items() if v is not None}
        impls = {impl: forgeml_fn, **peers}
        first = {name: self._time_once(fn, pause, before) for name, fn in impls.items()}  # warm-up
        long_case = max(first.values()) > LONG_CASE_S
        reps = repeats or self.repeats
        times: dict[str, list[float]] = {name: [] for name in impls}
        if long_case:  # one sample a side, except the sides that take seconds: their median as usual
            times = {name: [t] for name, t in first.items()}
            for name, fn in impls.items():
                if first[name] < SHORT_SIDE_S:
                    times[name] = [self._time_once(fn, pause, before) for _ in range(reps)]
        else:
            for _ in range(reps):
                for name, fn in impls.items():
                    times[name].append(self._time_once(fn, pause, before))
        med = {name: statistics.median(ts) for name, ts in times.items()}
        spread = {name: [min(ts), med[name], max(ts)] for name, ts in times.items()}
        metrics = {name: metric(name) for name in impls} if metric else {}
        note = ""
        if long_case:
            once = [name for name in impls if len(times[name]) == 1]
            note = f"{', '.join(once)} ran once (over a minute)"
        rows = []
        for peer in peers or [None]:
            row = Row(family, case, impl, peer, med[impl], med.get(peer),
                      (med[peer] / med[impl]) if peer and med[impl] > 0 else None,
                      ({impl: metrics.get(impl), peer: metrics.get(peer)} if metrics else None), note,
                      {k: spread[k] for k in (impl, peer) if k})
            rows.append(row)
            self.rows.append(row)
            self._print(row, flops)
        return rows

    def _print(self, row: Row, flops: float | None) -> None:
        def fmt(t):
            return "-" if t is None else (f"{t * 1e3:9.3f} ms" if t < 10 else f"{t:9.2f} s ")
        gf = f"  {flops / row.forgeml_s / 1e9:7.1f} GF/s" if flops and row.forgeml_s > 0 else ""
        if flops and row.peer_s:
            gf += f" (peer {flops / row.peer_s / 1e9:6.1f})"
        ratio = f"{row.ratio:6.2f}x" if row.ratio is not None else "     -"
        metric = ""
        if row.metric:
            metric = "  " + " ".join(f"{k}={_short(v)}" for k, v in row.metric.items() if v is not None)
        spread = ""
        if self.show_spread and row.spread:  # min-max in ms, and max/min: how steady each side was
            spread = "  spread " + ", ".join(f"{k} {v[0] * 1e3:.3f}-{v[2] * 1e3:.3f} ms ({v[2] / v[0]:.2f})"
                                             for k, v in row.spread.items() if v[0] > 0)
        print(f"{row.family:6s} {row.case:34s} {row.impl:10s} {fmt(row.forgeml_s)}  "
              f"{(row.peer or '-'):12s} {fmt(row.peer_s)}  {ratio}{gf}{metric}"
              f"{'  ' + row.note if row.note else ''}{spread}", file=self.out, flush=True)

    def save_json(self, path: str, header: dict) -> None:
        with open(path, "w") as f:
            json.dump({"header": header, "rows": [r.as_json() for r in self.rows]}, f, indent=1)

    def family_summary(self, families: list[str] | None = None) -> list[dict]:
        """Per family: the geometric-mean ratio over its rows with a peer, and its best and worst row."""
        names = families or list(dict.fromkeys(r.family for r in self.rows))
        out = []
        for fam in names:
            rows = [r for r in self.rows if r.family == fam and r.ratio is not None and r.ratio > 0]
            if not rows:
                out.append({"family": fam, "n": 0})
                continue
            gmean = math.exp(sum(math.log(r.ratio) for r in rows) / len(rows))
            best, worst = max(rows, key=lambda r: r.ratio), min(rows, key=lambda r: r.ratio)
            out.append({"family": fam, "n": len(rows), "gmean": gmean, "best": best, "worst": worst})
        return out

    def summary(self, families: list[str] | None = None) -> str:
        """One screen: per family, the geometric-mean ratio (peer time / forgeml time) and its best
        and worst case."""
        lines = ["# summary: ratio = peer time / forgeml time (> 1: forgeml faster), geometric mean per family",
                 f"{'family':14s} {'rows':>4s} {'ratio':>7s}   {'best case':44s} {'worst case':44s}"]
        for s in self.family_summary(families):
            if not s["n"]:
                lines.append(f"{s['family']:14s} {0:4d} {'-':>7s}   (no peer measured: see the '# {s['family']}:' line)")
                continue
            def case(r):
                return f"{r.ratio:6.2f}x {r.case[:26]} vs {r.peer}"[:44]
            lines.append(f"{s['family']:14s} {s['n']:4d} {s['gmean']:6.2f}x   {case(s['best']):44s} "
                         f"{case(s['worst']):44s}")
        return "\n".join(lines)

    def plot(self, path: str) -> bool:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("(matplotlib not installed: no plot)", file=self.out)
            return False
        rows = [r for r in self.rows if r.ratio is not None]
        if not rows:
            return False
        fams = [s for s in self.family_summary() if s["n"]]
        fig, (top, ax) = plt.subplots(2, 1, figsize=(9, 0.28 * (len(rows) + len(fams)) + 2.4),
                                      height_ratios=[len(fams) + 1, len(rows) + 1])
        g = [s["gmean"] for s in fams]
        lo = [s["gmean"] - s["worst"].ratio for s in fams]
        hi = [s["best"].ratio - s["gmean"] for s in fams]
        top.barh(range(len(fams)), g, xerr=[lo, hi], capsize=3,
                 color=["tab:green" if v >= 1 else "tab:red" for v in g])
        top.axvline(1.0, color="k", lw=0.8)
        top.set_yticks(range(len(fams)), [f"{s['family']} ({s['n']} rows)" for s in fams], fontsize=8)
        top.invert_yaxis()
        top.set_title("per family: geometric mean, whiskers = worst and best case", fontsize=9)
        labels = [f"{r.family}: {r.case} vs {r.peer}" for r in rows]
        ax.barh(range(len(rows)), [r.ratio for r in rows],
                color=["tab:green" if r.ratio >= 1 else "tab:red" for r in rows])
        ax.axvline(1.0, color="k", lw=0.8)
        ax.set_yticks(range(len(rows)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("peer time / forgeml time (> 1: forgeml faster)")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return True


def _short(v):
    if isinstance(v, dict):
        return ",".join(f"{k}:{_short(x)}" for k, x in v.items())
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
