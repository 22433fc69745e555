"""Reading saved pytest-benchmark results (JSON) into typed records for the report.

pytest-benchmark writes one JSON document per run (``--benchmark-autosave`` puts them under
``.benchmarks/<machine>/NNNN_<commit>_<date>.json``; ``--benchmark-json=FILE`` anywhere). Each
benchmark of our suite carries ``extra_info`` describing what was measured (see
``benchmarks/benchutil.py``): ``kind``, ``operation``, ``m``, ``batch``, ``params``, ``security``,
``implementation``, ``items`` (how many ciphertexts, reviews or iterations one call handles) and,
for the scaling study, ``axis``/``value`` and memory figures. A program that times itself
(vhe.cpp's driver, kind ``reference``) stores its own statistics in ``extra_info.external_stats``,
which replace pytest-benchmark's (those time the harness). Records without that description
(for example from a benchmark written elsewhere) are kept with what can be inferred.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hennframework.exceptions import DataFormatError, InputError

__all__ = ["BenchRecord", "BenchRun", "find_result_files", "load_results", "newest_result_file"]


@dataclass(frozen=True)
class BenchRecord:
    """One benchmark: its timing statistics (seconds per call) and what it measured."""

    name: str
    group: str | None
    median: float
    mean: float
    minimum: float
    stddev: float
    iqr: float
    rounds: int
    extra: Mapping[str, Any] = field(default_factory=dict)

    # -- what was measured ----------------------------------------------------------------
    def _text(self, key: str, default: str = "") -> str:
        value = self.extra.get(key)
        return default if value is None else str(value)

    def _int(self, key: str) -> int | None:
        value = self.extra.get(key)
        return (
            int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )

    @property
    def kind(self) -> str:
        return self._text("kind", "other")

    @property
    def operation(self) -> str:
        return self._text("operation", self.name)

    @property
    def m(self) -> int | None:
        return self._int("m")

    @property
    def batch(self) -> int | None:
        return self._int("batch")

    @property
    def params(self) -> str:
        return self._text("params", "")

    @property
    def security(self) -> str:
        return self._text("security", "unknown")

    @property
    def implementation(self) -> str:
        return self._text("implementation", "hennframework")

    @property
    def backend(self) -> str:
        return self._text("backend", "")

    @property
    def encrypted(self) -> bool:
        return bool(self.extra.get("encrypted", True))

    @property
    def items(self) -> int:
        """Ciphertexts, reviews or iterations handled by one timed call (at least 1)."""
        value = self._int("items")
        if value is None:
            value = self.batch
        return max(1, value or 1)

    @property
    def unit(self) -> str:
        return self._text("unit", "item")

    @property
    def per_item(self) -> float:
        """Median seconds per item (the amortised cost)."""
        return self.median / self.items

    @property
    def items_per_second(self) -> float:
        return self.items / self.median if self.median > 0 else float("inf")


@dataclass(frozen=True)
class BenchRun:
    """One results file: where it came from, the machine, and its benchmarks."""

    path: Path
    datetime: str
    machine: Mapping[str, Any]
    commit: Mapping[str, Any]
    records: tuple[BenchRecord, ...]

    def select(self, kind: str | None = None, **extra: Any) -> list[BenchRecord]:
        """Records of ``kind`` whose extra_info has every given key with the given value."""
        return select_records(self.records, kind, **extra)


def select_records(
    records: Iterable[BenchRecord], kind: str | None = None, **extra: Any
) -> list[BenchRecord]:
    """The ``records`` of ``kind`` (any, for None) whose extra_info has every given key/value."""
    return [
        r
        for r in records
        if (kind is None or r.kind == kind)
        and all(r.extra.get(key) == value for key, value in extra.items())
    ]


def find_result_files(path: Path) -> list[Path]:
    """Every ``*.json`` under ``path`` (or ``path`` itself), oldest first by modification time."""
    if path.is_file():
        return [path]
    if not path.exists():
        raise InputError(
            f"no benchmark results at {str(path)!r}: run `tox -e bench` (or `henn bench run`) "
            "first, or pass --input with a results file or folder."
        )
    files = [p for p in path.rglob("*.json") if p.is_file()]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def newest_result_file(path: Path) -> Path:
    """``path`` if it is a file, else the newest results file in the folder tree under it."""
    files = find_result_files(path)
    if not files:
        raise InputError(
            f"no benchmark results (*.json) under {str(path)!r}: run `tox -e bench` (or "
            "`henn bench run`) first, or pass --input with a results file."
        )
    return files[-1]


def _number(stats: Mapping[str, Any], key: str, source: Path, name: str) -> float:
    value = stats.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise DataFormatError(
            f"{source}: benchmark {name!r} has no numeric stats.{key}; is this a pytest-benchmark "
            "results file (--benchmark-json / --benchmark-autosave)?"
        )
    return float(value)


def _record(entry: Mapping[str, Any], source: Path) -> BenchRecord:
    name = str(entry.get("name") or entry.get("fullname") or "?")
    stats = entry.get("stats")
    if not isinstance(stats, Mapping):
        raise DataFormatError(
            f"{source}: benchmark {name!r} has no stats; is this a pytest-benchmark results file?"
        )
    extra = entry.get("extra_info") or {}
    if not isinstance(extra, Mapping):
        raise DataFormatError(f"{source}: benchmark {name!r} has a malformed extra_info")
    external = extra.get("external_stats")
    if external is not None:
        # A program timed by itself (vhe.cpp's driver): its own per-call statistics replace
        # pytest-benchmark's, which time only the harness that ran it.
        if not isinstance(external, Mapping):
            raise DataFormatError(f"{source}: benchmark {name!r} has a malformed external_stats")
        stats = external
    rounds = stats.get("rounds", 0)
    return BenchRecord(
        name=name,
        group=entry.get("group") if isinstance(entry.get("group"), str) else None,
        median=_number(stats, "median", source, name),
        mean=_number(stats, "mean", source, name),
        minimum=_number(stats, "min", source, name),
        stddev=float(stats.get("stddev") or 0.0),
        iqr=float(stats.get("iqr") or 0.0),
        rounds=int(rounds) if isinstance(rounds, int | float) else 0,
        extra=dict(extra),
    )


def _load_one(path: Path) -> BenchRun:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read benchmark results {str(path)!r}: {exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFormatError(
            f"{str(path)!r} is not valid JSON ({exc}); pass a pytest-benchmark results file."
        ) from exc
    if not isinstance(document, Mapping) or not isinstance(document.get("benchmarks"), list):
        raise DataFormatError(
            f"{str(path)!r} is not a pytest-benchmark results file (no 'benchmarks' list); "
            "make one with `pytest benchmarks --benchmark-json=FILE` or `tox -e bench`."
        )
    machine = document.get("machine_info") or {}
    commit = document.get("commit_info") or {}
    records = tuple(_record(entry, path) for entry in document["benchmarks"])
    return BenchRun(
        path=path,
        datetime=str(document.get("datetime", "")),
        machine=machine if isinstance(machine, Mapping) else {},
        commit=commit if isinstance(commit, Mapping) else {},
        records=records,
    )


def load_results(paths: Path | Sequence[Path] | Iterable[Path]) -> list[BenchRun]:
    """Load one results file per path (a folder means the newest file under it)."""
    if isinstance(paths, Path):
        paths = [paths]
    runs = [_load_one(newest_result_file(Path(p))) for p in paths]
    if not runs:
        raise InputError("no benchmark results given")
    return runs
