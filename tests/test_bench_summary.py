"""The benchmark's newcomer-facing output: which peers were found (and how to install the missing
ones), the per-family summary, and its picture."""

import io
import math
import time

import pytest

from forgeml.bench import harness, peers


def _bench_with(rows):
    b = harness.Bench(out=io.StringIO())
    b.rows = [harness.Row(f, c, "forgeml", p, 1.0, r, r) for f, c, p, r in rows]
    return b


def test_summary_is_the_geometric_mean_with_best_and_worst():
    b = _bench_with(
        [
            ("conv", "a", "torch", 2.0),
            ("conv", "b", "torch", 0.5),
            ("conv", "c", "torch", 4.0),
            ("tree", "fit", "sklearn", 10.0),
        ]
    )
    s = {x["family"]: x for x in b.family_summary(["conv", "tree", "rnn"])}
    assert math.isclose(s["conv"]["gmean"], 4.0 ** (1 / 3))
    assert (s["conv"]["best"].case, s["conv"]["worst"].case) == ("c", "b")
    assert s["rnn"]["n"] == 0
    text = b.summary(["conv", "tree", "rnn"])
    assert " 1.59x" in text and "4.00x c vs torch" in text and "0.50x b vs torch" in text
    assert "rnn" in text and "no peer measured" in text
    assert len(text.splitlines()) == 5  # header lines + one per family: fits a screen


def test_peer_line_names_the_missing_and_the_command(monkeypatch):
    monkeypatch.setitem(peers.PEERS, "fake", {"numpy": ("numpy", None), "no_such_peer_xyz": ("xyz", "pip install xyz")})
    line = peers.line("fake")
    assert line.startswith("# fake: peers found: numpy ")
    assert "missing no_such_peer_xyz: pip install xyz" in line
    monkeypatch.setitem(peers.PEERS, "lonely", {"no_such_peer_xyz": ("xyz", "pip install xyz")})
    assert "peers found: none" in peers.line("lonely") and "no comparison" in peers.line("lonely")


def test_every_family_has_a_peer_entry():
    from forgeml.bench import families

    assert set(families()) <= set(peers.PEERS)


def test_plot_draws_summary_and_rows(tmp_path):
    pytest.importorskip("matplotlib")
    b = _bench_with([("conv", "a", "torch", 2.0), ("gemm", "b", "numpy", 0.8)])
    path = tmp_path / "bench.png"
    assert b.plot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_long_case_still_repeats_the_fast_side(monkeypatch):
    """A row whose slowest side runs over LONG_CASE_S samples that side once, but a side that takes
    under SHORT_SIDE_S still gets the row's repeats (its median, not one noisy sample)."""
    monkeypatch.setattr(harness, "LONG_CASE_S", 0.05)
    monkeypatch.setattr(harness, "SHORT_SIDE_S", 0.02)
    calls = {"fast": 0, "slow": 0}

    def fast():
        calls["fast"] += 1

    def slow():
        calls["slow"] += 1
        time.sleep(0.06)

    b = harness.Bench(out=io.StringIO(), pause=0.0)
    (row,) = b.compare("t", "case", fast, {"peer": slow}, repeats=5)
    assert calls == {"fast": 6, "slow": 1}  # the warm-up, then five samples; the peer's one
    assert len(row.spread) == 2 and row.note == "peer ran once (over a minute)"
