"""The architecture page's "add a kernel family" checklist matches the tree: every family has every
listed path, or the page lists the path as missing (and no listed gap has since been filled)."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "architecture.md"

pytestmark = pytest.mark.skipif(not PAGE.exists(), reason="docs/ is not in this tree (an installed wheel)")


def _checklist_and_gaps():
    text = PAGE.read_text()
    block = re.search(r"```text checklist\n(.*?)```", text, re.S).group(1)
    patterns = [line.strip() for line in block.splitlines() if line.strip()]
    table = text[text.index("| family | not there (yet) |") :].split("\n\n")[0].splitlines()[2:]
    gaps = {}
    for row in table:
        family, missing = (c.strip() for c in row.strip("|").split("|"))
        listed = re.sub(r"\([^)]*\)", "", missing)  # "(...)" names where the thing lives instead
        gaps[family] = set(re.findall(r"(?:csrc|python|tests)/[\w./]+\w", listed))
    return patterns, gaps


def test_checklist_matches_the_tree():
    patterns, gaps = _checklist_and_gaps()
    assert len(patterns) >= 10 and set(gaps) >= {"conv", "gemm", "rnn", "svm", "tree"}
    problems = []
    for family, listed in gaps.items():
        for pattern in patterns:
            path = pattern.format(F=family).rstrip("/")
            there = (ROOT / path).exists()
            if not there and path not in listed:
                problems.append(f"{family}: {path} is missing and not listed as a gap")
            if there and path in listed:
                problems.append(f"{family}: {path} exists now: drop it from the gaps table")
    assert not problems, "docs/architecture.md vs the tree:\n" + "\n".join(problems)


def test_every_cpu_family_is_in_the_table():
    _, gaps = _checklist_and_gaps()
    families = {p.name for p in (ROOT / "csrc" / "cpu").iterdir() if p.is_dir()}
    assert families <= set(gaps), f"families missing from the architecture page: {families - set(gaps)}"
