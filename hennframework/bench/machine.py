"""A description of the machine that ran the benchmarks, stored with the results.

The benchmark suite records it in pytest-benchmark's ``machine_info`` (key ``hennframework``), so a
report made later, or elsewhere, still describes the machine that produced the numbers rather than
the one rendering the report. Everything here is read-only inspection: no network, no subprocesses.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import sys
from pathlib import Path
from typing import Any

__all__ = ["THREAD_VARIABLES", "cpu_model", "describe_machine", "gpu_name", "physical_cores"]

#: Environment variables that set the number of BLAS/OpenMP threads NumPy's matrix products use.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

_CPUINFO = Path("/proc/cpuinfo")


def _cpuinfo_fields(name: str) -> list[str]:
    """Values of ``name`` in /proc/cpuinfo (one per logical CPU); empty where there is none."""
    try:
        text = _CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    values = []
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == name:
            values.append(value.strip())
    return values


def cpu_model() -> str:
    """The CPU model name (/proc/cpuinfo on Linux, else what the platform module reports)."""
    names = _cpuinfo_fields("model name")
    if names:
        return names[0]
    return platform.processor() or platform.machine() or "unknown CPU"


def physical_cores() -> int | None:
    """Distinct (physical id, core id) pairs in /proc/cpuinfo, or None where that is unknown."""
    packages = _cpuinfo_fields("physical id")
    cores = _cpuinfo_fields("core id")
    if not cores or len(packages) != len(cores):
        return None
    return len(set(zip(packages, cores, strict=True)))


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _blas() -> str:
    """NumPy's BLAS library name and version, as NumPy's build configuration reports it."""
    try:
        import numpy as np

        config: Any = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy or an unusual build: the description is optional
        return "unknown"


def gpu_name() -> str | None:
    """The first CUDA device's name if CuPy is installed and sees a GPU, else None."""
    import importlib.util

    if importlib.util.find_spec("cupy") is None:
        return None
    try:
        import cupy

        if not cupy.cuda.is_available():
            return None
        name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:  # no driver, no device, or a broken install: simply no GPU to describe
        return None


def _kernels() -> str:
    """Whether the integer-vector scheme's compiled kernels ran (``henn info``'s words)."""
    from hennframework.schemes.integer_vector import native

    return native.status()


def describe_machine() -> dict[str, Any]:
    """JSON-ready facts about this machine and the software that the benchmarks ran on."""
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "physical_cores": physical_cores(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
        "numpy": _version("numpy"),
        "blas": _blas(),
        "threads": {name: os.environ.get(name) for name in THREAD_VARIABLES},
        "hennframework": _version("hennframework"),
        "tenseal": _version("tenseal"),
        "compiled_kernels": _kernels(),
        "cupy": next(
            filter(None, map(_version, ("cupy-cuda13x", "cupy-cuda12x", "cupy-cuda11x", "cupy"))),
            None,
        ),
        "gpu": gpu_name(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
