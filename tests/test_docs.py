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
    gaps, notes = {}, {}
    for row in table:
        family, missing = (c.strip() for c in row.strip("|").split("|"))
        listed = re.sub(r"\([^)]*\)", "", missing)  # "(...)" names where the thing lives instead
        gaps[family] = set(re.findall(r"(?:csrc|python|tests)/[\w./]+\w", listed))
        notes[family] = missing
    return patterns, gaps, notes


def test_checklist_matches_the_tree():
    patterns, gaps, _ = _checklist_and_gaps()
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
    _, gaps, _ = _checklist_and_gaps()
    families = {p.name for p in (ROOT / "csrc" / "cpu").iterdir() if p.is_dir()}
    assert families <= set(gaps), f"families missing from the architecture page: {families - set(gaps)}"


def test_a_family_without_a_gpu_side_says_so():
    """No CUDA kernels is a stated property of the family ("CPU only: ..."), not a silent gap."""
    _, gaps, notes = _checklist_and_gaps()
    for family, listed in gaps.items():
        gpu_side = {f"csrc/cuda/{family}.cu", f"csrc/bind/{family}_cuda.cpp", f"tests/test_{family}_cuda_emu.py"}
        if gpu_side & listed:
            assert notes[family].startswith("CPU only:"), f"{family}: lacks a GPU side without saying 'CPU only'"
            assert gpu_side <= listed, f"{family}: half a GPU side: {sorted(gpu_side - listed)} exist"


def test_family_cuda_headers_only_declare():
    """csrc/cuda/F.cuh is the plain C++ face the binding files include; kernels live in .cu files
    (templates other families launch, in a header of their own: gemm_tile.cuh)."""
    _, gaps, _ = _checklist_and_gaps()
    for family in gaps:
        header = ROOT / "csrc" / "cuda" / f"{family}.cuh"
        if header.exists():
            text = header.read_text()
            assert "__global__" not in text and "__device__" not in text, f"{header.name} holds kernels"
