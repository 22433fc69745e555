"""``henn bench report`` and ``henn bench run``: the benchmark suite and the performance page.

``henn bench run`` runs pytest-benchmark over ``benchmarks/`` of a source checkout (the same as
``tox -e bench``, in the current environment) and then the report; ``henn bench report`` turns
saved results into ``docs/performance.md`` and its plots, so that page is regenerated, never
hand-typed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

from hennframework.cli import common
from hennframework.exceptions import InputError

__all__ = ["register"]

DEFAULT_RESULTS = ".benchmarks"
DEFAULT_OUT = "docs/performance.md"
DEFAULT_PLOTS = "docs/img"


def register(subparsers: Any) -> None:
    """Add ``bench report`` and ``bench run``."""
    bench = subparsers.add_parser(
        "bench",
        help="run the benchmarks and write the performance report",
        description="Benchmark suite (pytest-benchmark) and its report (markdown + plots).",
    )
    commands = common.add_subcommands(bench, "bench_command", title="bench commands")
    report = commands.add_parser(
        "report",
        help="turn saved benchmark results into docs/performance.md and plots",
        description=(
            "Read pytest-benchmark results (a JSON file, or the newest one under a folder) and "
            "write the performance page: tables of every measurement with its security level, "
            "the speed targets (met / not met) from ratios measured in one run (encrypted / "
            "unencrypted, ours / vhe.cpp built and timed in the same run, memory), the "
            "comparison with TenSEAL, and plots (matplotlib, optional extra 'bench')."
        ),
    )
    _report_options(report)
    report.set_defaults(func=run_report)

    run = commands.add_parser(
        "run",
        help="run the benchmark suite (pytest benchmarks/) and then the report",
        description=(
            "Run `pytest benchmarks --benchmark-only --benchmark-autosave` from a source "
            "checkout in this Python environment (like `tox -e bench`), then write the report. "
            "Arguments after `--` go to pytest (e.g. `-- -k scheme`)."
        ),
    )
    run.add_argument(
        "--benchmarks",
        metavar="DIR",
        default="benchmarks",
        help="the benchmark suite folder of a source checkout (benchmarks)",
    )
    run.add_argument(
        "--no-report", action="store_true", help="only run the benchmarks, write no report"
    )
    _report_options(run, with_input=False)
    run.add_argument("pytest_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    run.set_defaults(func=run_suite)


def _report_options(parser: argparse.ArgumentParser, with_input: bool = True) -> None:
    if with_input:
        parser.add_argument(
            "--input",
            metavar="PATH",
            action="append",
            help=(
                f"results file, or folder whose newest *.json is used ({DEFAULT_RESULTS}); "
                "repeat to merge several runs (e.g. a GPU run)"
            ),
        )
    parser.add_argument(
        "--out", metavar="FILE", default=DEFAULT_OUT, help=f"markdown page to write ({DEFAULT_OUT})"
    )
    parser.add_argument(
        "--plots",
        metavar="DIR",
        default=DEFAULT_PLOTS,
        help=f"folder for the PNG plots ({DEFAULT_PLOTS})",
    )
    parser.add_argument("--no-plots", action="store_true", help="write the tables only")
    parser.add_argument(
        "--stdout", action="store_true", help="print the markdown instead of writing --out"
    )
    common.add_output_options(parser, "print a machine-readable summary")


def run_report(args: argparse.Namespace) -> int:
    """Write (or print) the report from saved results."""
    from hennframework.bench.report import write_report

    inputs = [Path(p) for p in (getattr(args, "input", None) or [DEFAULT_RESULTS])]
    out = None if args.stdout else Path(args.out)
    plots = None if args.no_plots else Path(args.plots)
    report = write_report(inputs, out, plots)
    if args.stdout:
        sys.stdout.write(report.markdown)
    if args.json:
        common.print_json(
            {
                "sources": [str(p) for p in report.sources],
                "out": str(out) if out else None,
                "plots": {name: str(path) for name, path in report.plots.items()},
                "notes": report.notes,
            }
        )
    elif not args.stdout:
        print(f"wrote {out} from {', '.join(str(p) for p in report.sources)}")
        for name, path in report.plots.items():
            print(f"  plot {name}: {path}")
        for note in report.notes:
            print(f"note: {note}", file=sys.stderr)
    return 0


def run_suite(args: argparse.Namespace) -> int:
    """pytest-benchmark over the suite, then the report from the run it saved."""
    folder = Path(args.benchmarks)
    if not (folder / "conftest.py").is_file():
        raise InputError(
            f"no benchmark suite at {str(folder)!r}: `henn bench run` needs a source checkout "
            "(run it from the repository root, or pass --benchmarks DIR)."
        )
    extra = list(args.pytest_args or [])
    if extra and extra[0] == "--":
        extra = extra[1:]
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(folder),
        "--benchmark-only",
        "--benchmark-autosave",
        f"--benchmark-storage={DEFAULT_RESULTS}",
        *extra,
    ]
    print("running: " + " ".join(command), flush=True)
    status = subprocess.call(command)
    if status != 0:
        print(f"henn: the benchmark run failed (pytest exit status {status})", file=sys.stderr)
        return 1
    if args.no_report:
        return 0
    args.input = [DEFAULT_RESULTS]
    return run_report(args)
