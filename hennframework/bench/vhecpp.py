"""vhe.cpp, measured in the same run: build our timing driver, run it, read its JSON.

vhe.cpp (Yu, Lai, Payor; C++ on NTL big integers) is the reference implementation of Zhou and
Wornell's integer-vector scheme. The benchmark suite compiles ``benchmarks/vhe_driver/driver.cpp``,
which includes vhe.cpp unmodified (it is never copied into this repository), and runs it between
our own measurements at the same vector lengths, so the report divides by figures from the same
machine, the same load and the same run rather than by numbers quoted from notes.

Nothing here fails for a missing compiler or NTL: :func:`build_driver` returns the reason, and the
suite skips the comparison with it (``apt-get update && apt-get install -y libntl-dev g++``).
A driver whose results do not decrypt to the expected values raises: a time for a wrong answer is
not a measurement.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import statistics
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hennframework.exceptions import DataFormatError, HennError

__all__ = [
    "DRIVER_FORMAT",
    "INSTALL_HINT",
    "OPERATIONS",
    "SOURCE_VARIABLE",
    "BuildOutcome",
    "DriverReport",
    "DriverTiming",
    "ReferenceRunError",
    "build_driver",
    "dot_memory_reason",
    "find_vhe_source",
    "parse_driver_output",
    "run_driver",
]

#: Environment variable naming vhe.cpp (the file, or the folder that holds it) elsewhere.
SOURCE_VARIABLE = "HENN_VHE_CPP"
#: How to get a compiler and NTL on Debian/Ubuntu (shown in every skip reason).
INSTALL_HINT = "apt-get update && apt-get install -y libntl-dev g++"
#: The ``format`` field of the driver's JSON.
DRIVER_FORMAT = "hennframework-vhe-driver"
#: Operations the driver times, in our names (vhe.cpp: encrypt, decrypt, keySwitch,
#: linearTransform, innerProdClient, innerProd).
OPERATIONS = ("encrypt", "decrypt", "key_switch", "linear_transform", "dot_keygen", "dot")
#: Compiler flags: what the reference's README gives (-O3, link NTL), plus the C++ standard.
CXX_FLAGS = ("-O3", "-std=c++17")
LINK_FLAGS = ("-lntl",)
#: Peak memory of vhe.cpp's inner product (its key has (m+1) x 100 (m+1)**2 big integers and is
#: built from several temporaries of that size): measured 9.9 GB at m = 64 on the project's machine.
DOT_PEAK_BYTES = {64: 11 * 2**30}


class ReferenceRunError(HennError, RuntimeError):
    """The vhe.cpp driver crashed, timed out, or returned results that failed their check."""


# ---------------------------------------------------------------------------------- building
@dataclass(frozen=True)
class BuildOutcome:
    """A built driver (``driver`` set) or the reason there is none (``reason``)."""

    driver: Path | None
    reason: str = ""
    source: Path | None = None
    compiler: str = ""
    command: tuple[str, ...] = ()
    compiler_version: str = ""

    @property
    def built(self) -> bool:
        return self.driver is not None

    def describe(self) -> dict[str, Any]:
        """JSON-ready facts for the results file (machine_info and each vhe.cpp record)."""
        return {
            "built": self.built,
            "reason": self.reason,
            "source": str(self.source) if self.source else None,
            "compiler": self.compiler,
            "compiler_version": self.compiler_version,
            "command": " ".join(self.command),
            # the same command without this machine's paths, for the report
            "display_command": " ".join(
                (
                    Path(self.compiler).name or "g++",
                    *CXX_FLAGS,
                    "-I <folder of vhe.cpp> -o vhe_driver driver.cpp",
                    *LINK_FLAGS,
                )
            ),
        }


def find_vhe_source(
    root: Path, environ: Mapping[str, str] | None = None
) -> tuple[Path | None, str]:
    """vhe.cpp from HENN_VHE_CPP, else ``shared/reference/vhe-cpp`` beside or inside ``root``.

    Returns the file, or None and a reason naming the places looked at.
    """
    env = os.environ if environ is None else environ
    override = env.get(SOURCE_VARIABLE)
    if override:
        path = Path(override)
        candidate = path / "vhe.cpp" if path.is_dir() else path
        if candidate.is_file() and candidate.name == "vhe.cpp":
            return candidate, ""
        return None, (
            f"{SOURCE_VARIABLE}={override!r} does not name vhe.cpp or a folder holding it; "
            "point it at the reference's vhe.cpp"
        )
    places = [root.parent / "shared", root / "shared"]
    for place in places:
        candidate = place / "reference" / "vhe-cpp" / "vhe.cpp"
        if candidate.is_file():
            return candidate, ""
    looked = " or ".join(str(p / "reference" / "vhe-cpp" / "vhe.cpp") for p in places)
    return None, (
        f"vhe.cpp not found (looked for {looked}); set {SOURCE_VARIABLE} to the reference's "
        "vhe.cpp or its folder"
    )


def _tail(text: str, lines: int = 6) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " / ".join(kept)


def build_driver(
    driver_source: Path,
    vhe_source: Path,
    build_dir: Path,
    compiler: str | None = None,
    timeout: float = 300.0,
) -> BuildOutcome:
    """Compile ``driver_source`` (which includes vhe.cpp) into ``build_dir``; reuse a fresh build.

    The binary's name carries a hash of both sources, the compiler and the flags, so an edit to
    either file, or another compiler, rebuilds it. A missing compiler or NTL is a reason, not an
    error.
    """
    chosen = compiler or os.environ.get("CXX") or "g++"
    found = shutil.which(chosen)
    if found is None:
        return BuildOutcome(
            None,
            f"no C++ compiler {chosen!r} on PATH (install one and NTL: {INSTALL_HINT})",
            vhe_source,
            chosen,
        )
    if not driver_source.is_file():
        return BuildOutcome(
            None, f"the driver source {driver_source} is missing", vhe_source, chosen
        )
    digest = hashlib.sha256()
    for part in (driver_source.read_bytes(), vhe_source.read_bytes()):
        digest.update(part)
    digest.update(" ".join((found, *CXX_FLAGS, *LINK_FLAGS)).encode())
    binary = build_dir / f"vhe_driver-{digest.hexdigest()[:16]}"
    command = (
        found,
        *CXX_FLAGS,
        "-I",
        str(vhe_source.parent),
        "-o",
        str(binary),
        str(driver_source),
        *LINK_FLAGS,
    )
    version = _compiler_version(found)
    if binary.is_file() and os.access(binary, os.X_OK):
        return BuildOutcome(binary, "", vhe_source, found, command, version)
    build_dir.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return BuildOutcome(None, f"compiling the vhe.cpp driver failed: {exc}", vhe_source, found)
    if done.returncode != 0:
        message = done.stderr or done.stdout
        missing_ntl = "NTL/" in message and ("No such file" in message or "not found" in message)
        missing_lib = "cannot find -lntl" in message
        if missing_ntl or missing_lib:
            reason = f"NTL is not installed ({_tail(message, 2)}); install it: {INSTALL_HINT}"
        else:
            reason = f"compiling the vhe.cpp driver failed: {_tail(message)}"
        return BuildOutcome(None, reason, vhe_source, found, command, version)
    return BuildOutcome(binary, "", vhe_source, found, command, version)


def _compiler_version(compiler: str) -> str:
    """The first line of ``compiler --version`` ('' if it says nothing usable)."""
    try:
        done = subprocess.run(
            [compiler, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = done.stdout.strip().splitlines()
    return lines[0].strip() if done.returncode == 0 and lines else ""


def dot_memory_reason(m: int, available: int | None = None) -> str:
    """Why vhe.cpp's inner product at ``m`` cannot run here ('' if it can): its memory need."""
    need = DOT_PEAK_BYTES.get(m)
    if need is None and m > max(DOT_PEAK_BYTES):
        return (
            f"vhe.cpp's inner-product key at m = {m} has (m+1) x 100 (m+1)**2 big integers, "
            "far beyond this machine's memory"
        )
    if need is None:
        return ""
    have = _memory_available() if available is None else available
    if have is not None and have < need:
        return (
            f"vhe.cpp's inner product at m = {m} needs about {need / 2**30:.0f} GiB of memory "
            f"and {have / 2**30:.1f} GiB is available"
        )
    return ""


def _memory_available() -> int | None:
    try:
        text = Path("/proc/meminfo").read_text(encoding="ascii")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


# --------------------------------------------------------------------------------- the output
@dataclass(frozen=True)
class DriverTiming:
    """One operation at one m: seconds per call of each timed round, and its sizes."""

    operation: str
    m: int
    seconds: tuple[float, ...]
    verified: bool
    calls_per_round: int = 1
    key_rows: int = 0
    key_cols: int = 0
    key_bytes: int = 0
    ciphertext_entries: int = 0
    ciphertext_bytes: int = 0
    setup_seconds: float = 0.0

    @property
    def rounds(self) -> int:
        return len(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.seconds)

    @property
    def minimum(self) -> float:
        return min(self.seconds)

    @property
    def stddev(self) -> float:
        return statistics.stdev(self.seconds) if len(self.seconds) > 1 else 0.0

    @property
    def iqr(self) -> float:
        if len(self.seconds) < 2:
            return 0.0
        q1, _, q3 = statistics.quantiles(self.seconds, n=4, method="inclusive")
        return q3 - q1

    def stats(self) -> dict[str, float | int]:
        """Statistics in pytest-benchmark's names, stored as ``external_stats`` in a record."""
        return {
            "median": self.median,
            "mean": self.mean,
            "min": self.minimum,
            "max": max(self.seconds),
            "stddev": self.stddev,
            "iqr": self.iqr,
            "rounds": self.rounds,
            "calls_per_round": self.calls_per_round,
        }


@dataclass(frozen=True)
class DriverReport:
    """The driver's JSON: vhe.cpp's parameters, NTL's version, peak memory, one timing per op."""

    m: int
    ntl_version: str
    parameters: Mapping[str, Any]
    peak_rss_bytes: int
    results: tuple[DriverTiming, ...] = field(default_factory=tuple)

    def get(self, operation: str) -> DriverTiming | None:
        for timing in self.results:
            if timing.operation == operation:
                return timing
        return None


def _field(entry: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    value = entry.get(name)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise DataFormatError(
            f"vhe.cpp driver output: {where} has no {kind.__name__} {name!r} (got {value!r}); "
            "rebuild the driver from benchmarks/vhe_driver/driver.cpp"
        )
    return value


def _timing(entry: Any, index: int) -> DriverTiming:
    where = f"results[{index}]"
    if not isinstance(entry, Mapping):
        raise DataFormatError(f"vhe.cpp driver output: {where} is not an object")
    seconds = entry.get("seconds")
    if (
        not isinstance(seconds, list)
        or not seconds
        or not all(isinstance(s, int | float) and not isinstance(s, bool) for s in seconds)
        or not all(math.isfinite(s) and s > 0 for s in seconds)
    ):
        raise DataFormatError(
            f"vhe.cpp driver output: {where} needs 'seconds', a non-empty list of positive "
            f"times (got {seconds!r})"
        )
    operation = _field(entry, "operation", str, where)
    if operation not in OPERATIONS:
        raise DataFormatError(f"vhe.cpp driver output: {where} has unknown operation {operation!r}")
    return DriverTiming(
        operation=operation,
        m=_field(entry, "m", int, where),
        seconds=tuple(float(s) for s in seconds),
        verified=_field(entry, "verified", bool, where),
        calls_per_round=int(entry.get("calls_per_round", 1)),
        key_rows=int(entry.get("key_rows", 0)),
        key_cols=int(entry.get("key_cols", 0)),
        key_bytes=int(entry.get("key_bytes", 0)),
        ciphertext_entries=int(entry.get("ciphertext_entries", 0)),
        ciphertext_bytes=int(entry.get("ciphertext_bytes", 0)),
        setup_seconds=float(entry.get("setup_seconds", 0.0)),
    )


def parse_driver_output(text: str) -> DriverReport:
    """The driver's stdout as a :class:`DriverReport`; DataFormatError names what is wrong."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(
            f"vhe.cpp driver output is not JSON ({exc}); run the driver by hand to see what it "
            "printed"
        ) from exc
    if not isinstance(document, Mapping) or document.get("format") != DRIVER_FORMAT:
        raise DataFormatError(
            f'not the vhe.cpp driver\'s output (no "format": {DRIVER_FORMAT!r}); rebuild the '
            "driver from benchmarks/vhe_driver/driver.cpp"
        )
    version = document.get("version")
    if version != 1:
        raise DataFormatError(
            f"vhe.cpp driver output version {version!r} is not supported (expected 1); rebuild "
            "the driver from benchmarks/vhe_driver/driver.cpp"
        )
    results = document.get("results")
    if not isinstance(results, list):
        raise DataFormatError("vhe.cpp driver output has no 'results' list")
    parameters = document.get("parameters")
    return DriverReport(
        m=_field(document, "m", int, "the document"),
        ntl_version=str(document.get("ntl_version", "?")),
        parameters=dict(parameters) if isinstance(parameters, Mapping) else {},
        peak_rss_bytes=int(document.get("peak_rss_bytes", 0)),
        results=tuple(_timing(entry, i) for i, entry in enumerate(results)),
    )


def run_driver(
    driver: Path,
    m: int,
    operations: Sequence[str],
    *,
    min_time: float = 0.25,
    min_rounds: int = 5,
    max_time: float = 10.0,
    seed: int = 1,
    timeout: float = 900.0,
) -> DriverReport:
    """Time ``operations`` at ``m`` with the driver (one process; keys shared between them).

    Raises ReferenceRunError if the driver fails, times out, or a result does not decrypt to the
    expected value (its exit status 3).
    """
    unknown = [op for op in operations if op not in OPERATIONS]
    if unknown:
        raise ReferenceRunError(
            f"the vhe.cpp driver has no operation {', '.join(unknown)}; choose from "
            f"{', '.join(OPERATIONS)}"
        )
    command = [
        str(driver),
        "--m",
        str(m),
        "--ops",
        ",".join(operations),
        "--min-time",
        repr(min_time),
        "--min-rounds",
        str(min_rounds),
        "--max-time",
        repr(max_time),
        "--seed",
        str(seed),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ReferenceRunError(
            f"the vhe.cpp driver took more than {timeout:.0f} s at m = {m} "
            f"({', '.join(operations)}); deselect that size (-k) or raise the timeout"
        ) from exc
    except OSError as exc:
        raise ReferenceRunError(f"cannot run the vhe.cpp driver {driver}: {exc}") from exc
    if done.returncode not in (0, 3):
        raise ReferenceRunError(
            f"the vhe.cpp driver failed at m = {m} ({', '.join(operations)}) with exit status "
            f"{done.returncode}: {_tail(done.stderr) or 'no message'} (a negative status is a "
            "signal: -9 is usually the kernel killing it for memory)"
        )
    report = parse_driver_output(done.stdout)
    wrong = [t.operation for t in report.results if not t.verified]
    if wrong or done.returncode == 3:
        raise ReferenceRunError(
            f"vhe.cpp's {', '.join(wrong) or 'results'} at m = {m} did not decrypt to the "
            "expected values, so its times are not comparable; check the vhe.cpp source"
        )
    return report
