"""Number formatting for the performance report: times, rates, sizes and ratios."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["fmt_bytes", "fmt_rate", "fmt_ratio", "fmt_time", "markdown_table"]


def _significant(value: float, digits: int = 3) -> str:
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:,.{decimals}f}"


def fmt_time(seconds: float | None) -> str:
    """``1.23 µs``, ``45.6 ms``, ``2.10 s``: three significant digits in a readable unit."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    for unit, factor in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(seconds) >= factor:
            return f"{_significant(seconds / factor)} {unit}"
    return f"{_significant(seconds / 1e-9)} ns"


def fmt_rate(per_second: float | None) -> str:
    """Items per second with thousands separators (three significant digits below 1,000)."""
    if per_second is None or not math.isfinite(per_second):
        return "—"
    if per_second >= 1000:
        return f"{per_second:,.0f}"
    return _significant(per_second)


def fmt_bytes(count: float | None) -> str:
    """``512 B``, ``17.0 KiB``, ``4.21 MiB``, ``1.05 GiB``."""
    if count is None or not math.isfinite(count):
        return "—"
    for unit, factor in (("GiB", 2.0**30), ("MiB", 2.0**20), ("KiB", 2.0**10)):
        if abs(count) >= factor:
            return f"{_significant(count / factor)} {unit}"
    return f"{count:.0f} B"


def fmt_ratio(value: float | None) -> str:
    """``270x``, ``4.5x``, ``0.31x`` (how many times): two or three significant digits."""
    if value is None or not math.isfinite(value) or value <= 0:
        return "—"
    if value >= 100:
        return f"{value:,.0f}x"
    if value >= 10:
        return f"{value:.0f}x"
    return f"{value:.2g}x"


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(
    headers: Sequence[str] | str, rows: Sequence[Sequence[object]], align: str | None = None
) -> str:
    """A GitHub-flavoured markdown table; ``align`` holds one of ``l``/``r`` per column.

    ``headers`` is a list of column names, or one string of them separated by ``" | "`` (as the
    header row reads), which keeps a wide table's header on a few source lines.
    """
    if isinstance(headers, str):
        headers = headers.split(" | ")
    spec = align or "l" + "r" * (len(headers) - 1)
    rule = ["---:" if a == "r" else "---" for a in spec]
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
