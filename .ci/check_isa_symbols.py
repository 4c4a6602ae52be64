"""Fails when a translation unit compiled for a wider ISA (*_avx2.cpp, *_avx512.cpp) defines a weak
symbol (an inline function or template instance) that another unit of the same module also
defines: the linker keeps one copy for the whole module, and the ISA unit's copy would run on CPUs
without that ISA (SIGILL; forgeml/isa_local.h says how to avoid it).

    python .ci/check_isa_symbols.py BUILD_DIR     (reads BUILD_DIR/CMakeFiles/<module>.dir/**.o)
"""
import pathlib
import re
import subprocess
import sys

ISA_UNIT = re.compile(r"_(avx2|avx512)\.cpp\.o$")
WEAK = {"W"}  # weak code (V: weak data, which cannot hold an instruction)
# Weak symbols that compile to the same instructions under any ISA flag (no vector code in them).
HARMLESS = {"_ZSt21__is_constant_evaluatedv"}


def defined(obj: pathlib.Path) -> dict[str, str]:
    """{mangled name: nm type} of the symbols obj defines (nm reads GCC's LTO objects too)."""
    out = subprocess.run(["nm", "--defined-only", str(obj)], capture_output=True, text=True, check=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            syms[parts[2]] = parts[1]
    return syms


def main(build: str) -> int:
    modules = sorted(pathlib.Path(build).glob("CMakeFiles/*.dir"))
    if not modules:
        print(f"check_isa_symbols: no CMakeFiles/*.dir under {build}")
        return 1
    bad = []
    for module in modules:
        objs = sorted(module.rglob("*.o"))
        isa = [o for o in objs if ISA_UNIT.search(o.name)]
        if not isa:
            continue
        owners: dict[str, list[pathlib.Path]] = {}
        for o in objs:
            for name in defined(o):
                owners.setdefault(name, []).append(o)
        for o in isa:
            for name, kind in defined(o).items():
                if kind in WEAK and name not in HARMLESS and len(owners[name]) > 1:
                    others = ", ".join(p.name for p in owners[name] if p != o)
                    bad.append(f"{module.name}: {o.name} defines weak {name} (also in {others})")
        print(f"check_isa_symbols: {module.name}: {len(isa)} ISA units of {len(objs)} checked")
    if bad:
        names = subprocess.run(["c++filt"], input="\n".join(bad), capture_output=True, text=True).stdout
        print("ISA units share weak symbols with other units (see csrc/include/forgeml/isa_local.h):")
        print(names)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "build/dev"))
