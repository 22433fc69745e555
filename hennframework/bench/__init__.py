"""Benchmark reporting: saved pytest-benchmark results -> the docs' performance page and plots.

* :mod:`hennframework.bench.results` reads results files (``.benchmarks/**.json``);
* :mod:`hennframework.bench.report` builds the markdown (``henn bench report``);
* :mod:`hennframework.bench.plots` draws the figures (needs matplotlib: extra ``bench``);
* :mod:`hennframework.bench.references` holds the speed targets, and figures quoted from notes
  for context (never used for a target);
* :mod:`hennframework.bench.vhecpp` builds and runs the vhe.cpp timing driver and reads its JSON;
* :mod:`hennframework.bench.machine` describes the machine that ran the benchmarks.

The benchmarks themselves live in ``benchmarks/`` of the source tree (``tox -e bench``).
"""

from __future__ import annotations

from hennframework.bench.report import Report, build_report, write_report
from hennframework.bench.results import BenchRecord, BenchRun, load_results, newest_result_file

__all__ = [
    "BenchRecord",
    "BenchRun",
    "Report",
    "build_report",
    "load_results",
    "newest_result_file",
    "write_report",
]
