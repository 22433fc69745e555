"""Benchmark-suite configuration: single-threaded BLAS, the machine description, shared keys.

vhe.cpp (measured in the same run by test_bench_vhe.py) and TenSEAL run single-threaded, and so
did the figures quoted for context, so BLAS/OpenMP threads default to 1 here; set
OPENBLAS_NUM_THREADS (etc.) yourself to measure otherwise. This must happen before NumPy is
imported, hence at the top of this file.
"""

from __future__ import annotations

import os
import sys

# Before anything imports NumPy (hennframework does): the names match
# hennframework.bench.machine.THREAD_VARIABLES, which cannot be imported before this point.
NUMPY_ALREADY_LOADED = "numpy" in sys.modules
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import importlib.util  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from benchutil import VHE_CPP, KeyCache  # noqa: E402

from hennframework.bench.machine import describe_machine  # noqa: E402

if importlib.util.find_spec("pytest_benchmark") is not None:

    def pytest_benchmark_update_machine_info(config: Any, machine_info: dict[str, Any]) -> None:
        """Store our machine description (CPU model, cores, versions, threads) with the results."""
        description = describe_machine()
        # If NumPy was loaded before this file ran, the thread settings above may not apply.
        description["threads_set_before_numpy"] = not NUMPY_ALREADY_LOADED
        # Called when the results are saved, after the run: whether vhe.cpp was built and
        # measured, or why not (the report prints the reason where its figures would be).
        description["vhe_cpp"] = VHE_CPP.status()
        machine_info["hennframework"] = description


@pytest.fixture(scope="session")
def key_cache() -> KeyCache:
    """Keys made once per session and shared by the scheme benchmarks."""
    return KeyCache()
