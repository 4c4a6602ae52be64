"""MkDocs hook: the benchmark page's tables and plots, generated at build time from bench/results
(so the page always shows the saved results, and nothing generated is committed)."""

from __future__ import annotations

import io
import json
import math
import pathlib

from mkdocs.structure.files import File

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
MARKER = "<!-- bench-results -->"


def _families():
    return sorted(p.stem for p in RESULTS.glob("*.json"))


def _rows(family):
    return json.loads((RESULTS / f"{family}.json").read_text())["rows"]


def _fmt(t):
    if t is None:
        return "-"
    return f"{t * 1e3:.3f} ms" if t < 10 else f"{t:.2f} s"


def _table(family):
    rows = _rows(family)
    out = ["| case | peer | forgeml | peer time | ratio |", "| --- | --- | ---: | ---: | ---: |"]
    for r in rows:
        ratio = f"{r['ratio']:.2f}x" if r.get("ratio") else "-"
        out.append(
            f"| {r['case']} | {r.get('peer') or '-'} | {_fmt(r['forgeml_s'])} | {_fmt(r.get('peer_s'))} | {ratio} |"
        )
    ratios = [r["ratio"] for r in rows if r.get("ratio")]
    gm = math.exp(sum(math.log(x) for x in ratios) / len(ratios)) if ratios else None
    head = f"### {family}\n\n"
    if gm:
        head += (
            f"{len(ratios)} comparisons; geometric-mean ratio {gm:.2f}x, best {max(ratios):.2f}x, "
            f"worst {min(ratios):.2f}x (`bench/results/{family}.txt`).\n\n"
        )
        head += f"![{family} ratios](img/bench_{family}.png)\n\n"
    return head + "\n".join(out) + "\n"


def _plot(family):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = [r for r in _rows(family) if r.get("ratio")]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.26 * len(rows) + 1.0))
    ax.barh(
        range(len(rows)),
        [r["ratio"] for r in rows],
        color=["tab:green" if r["ratio"] >= 1 else "tab:red" for r in rows],
    )
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_yticks(range(len(rows)), [f"{r['case']} vs {r['peer']}"[:60] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("peer time / forgeml time (> 1: forgeml faster)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def on_files(files, config):
    for family in _families():
        png = _plot(family)
        if png is None:
            png = _placeholder_png()
        files.append(File.generated(config, f"img/bench_{family}.png", content=png))
    return files


def on_page_markdown(markdown, page, config, files):
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, "\n".join(_table(f) for f in _families()))


def _placeholder_png():
    # a 1x1 transparent PNG where matplotlib is missing (the tables still render)
    import base64

    return base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
    )
