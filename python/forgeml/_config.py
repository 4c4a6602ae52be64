"""show_config() / ``python -m forgeml info``: what was built and what runs on this machine."""
from __future__ import annotations

import os
import sys

from . import cuda
from ._backend import cpu as _cpu
from ._backend import cuda_runtime_version


def config() -> dict:
    cuda_built = cuda.is_built()
    usable, why = cuda.is_available(), cuda.status()
    info = {
        "version": _cpu.version,
        "python": sys.version.split()[0],
        "compiler": _cpu.compiler,
        "simd_detected": _cpu.detected_isa(),
        "simd_used": _cpu.active_isa(),
        "threads": _cpu.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "idle_spin_us": _cpu.pool_spin_microseconds(),
        "cuda_compiled": cuda_built,
        "cuda_archs": cuda.archs(),
        "gpu_usable": usable,
        "gpu": why,
    }
    if cuda_built:
        v = cuda_runtime_version()
        info["cuda_runtime"] = f"{v // 1000}.{v % 1000 // 10}"
    return info


def show_config(file=None) -> None:
    """Print the version, compiler, SIMD levels, threads and the CUDA / GPU state."""
    c = config()
    if c["cuda_compiled"]:
        cuda_line = f"yes (archs {','.join(c['cuda_archs'])}, runtime {c['cuda_runtime']}, cudart static)"
    else:
        cuda_line = "no"
    gpu_line = f"yes ({c['gpu']})" if c["gpu_usable"] else f"no ({c['gpu']})"
    threads = f"{c['threads']}" + (f" (OMP_NUM_THREADS={c['omp_num_threads']})" if c["omp_num_threads"] else "")
    lines = [
        f"forgeml {c['version']} (Python {c['python']})",
        f"  compiler:       {c['compiler']}",
        f"  SIMD detected:  {c['simd_detected']}",
        f"  SIMD used:      {c['simd_used']}",
        f"  threads:        {threads}",
        f"  thread pool:    forgeml's own; idle workers spin {c['idle_spin_us']} us, then sleep (FORGEML_SPIN_US)",
        f"  CUDA compiled:  {cuda_line}",
        f"  GPU usable:     {gpu_line}",
    ]
    print("\n".join(lines), file=file or sys.stdout)
