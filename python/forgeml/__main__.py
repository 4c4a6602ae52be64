"""python -m forgeml info | bench [family ...] [--quick] [--json PATH] [--plot PATH] | gpucheck"""
from __future__ import annotations

import sys


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "info":
        from . import show_config
        show_config()
        return 0
    if cmd == "bench":
        from .bench import main as bench_main
        return bench_main(rest)
    if cmd == "gpucheck":
        from .bench.gpu import main as gpu_main
        return gpu_main(rest)
    print(f"unknown command {cmd!r}; expected info, bench or gpucheck", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
