"""Plots for the performance report (matplotlib, optional extra ``bench``).

Importing this module needs matplotlib; :func:`hennframework.bench.report.write_report` catches
the ImportError and writes the tables without plots. Figures are small PNGs (about 100 dpi) so the
docs stay light; every axis is labelled with its unit and every plot says what is insecure.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt

from hennframework.bench import references as ref
from hennframework.bench.results import BenchRecord

__all__ = ["make_plots"]

DPI = 100
OPS = {
    "encrypt": "encrypt",
    "decrypt": "decrypt",
    "key_switch": "key switch",
    "linear_transform": "linear transform",
    "dot": "inner product",
    "multiply": "slotwise product",
}
COLORS = dict(zip(OPS, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))


def _save(figure: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path


def _scheme_ops(records: Sequence[BenchRecord], out: Path) -> Path | None:
    ops = [
        r
        for r in records
        if r.kind == "scheme-op"
        and r.params == "default"
        and r.encrypted
        and r.backend in ("", "numpy")
    ]
    if not ops:
        return None
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axis, batch in zip(axes, (1, 256), strict=True):
        for op, label in OPS.items():
            points = sorted(
                (r.m or 0, r.per_item) for r in ops if r.operation == op and r.batch == batch
            )
            if not points:
                continue
            xs, ys = zip(*points, strict=True)
            axis.plot(xs, [y * 1e6 for y in ys], "o-", color=COLORS[op], label=label)
            vhe = sorted((m, ms) for (o, m), ms in ref.VHE_CPP_MS.items() if o == op)
            if vhe:
                vx, vy = zip(*vhe, strict=True)
                axis.plot(vx, [v * 1e3 for v in vy], "x:", color=COLORS[op], alpha=0.6)
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("vector length m")
        axis.set_title(f"batch {batch}" + (" (time per vector)" if batch > 1 else ""))
        axis.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("µs per vector (median)")
    axes[0].plot([], [], "kx:", alpha=0.6, label="vhe.cpp (C++/NTL, quoted)")
    axes[0].legend(fontsize=8, loc="upper left")
    figure.suptitle("Integer-vector scheme operations, parameter set 'default' (INSECURE)")
    return _save(figure, out / "scheme_ops.png")


def _models(records: Sequence[BenchRecord], out: Path) -> Path | None:
    models = [r for r in records if r.kind == "model"]
    bars: list[tuple[str, float, float]] = []
    for operation, label in (("XOR training", "XOR training\n(iterations/s)"),):
        enc = [r for r in models if r.operation == operation and r.encrypted]
        plain = [r for r in models if r.operation == operation and not r.encrypted]
        if enc and plain:
            bars.append((label, enc[0].items_per_second, plain[0].items_per_second))
    for batch in (1, 32):
        enc = [
            r
            for r in models
            if r.operation == "sentiment training"
            and r.batch == batch
            and r.extra.get("variant") == "encrypted"
        ]
        plain = [
            r
            for r in models
            if r.operation == "sentiment training"
            and r.batch == batch
            and r.extra.get("variant") == "plain"
        ]
        if enc and plain:
            bars.append(
                (
                    f"sentiment training\nbatch {batch} (reviews/s)",
                    enc[0].items_per_second,
                    plain[0].items_per_second,
                )
            )
    enc = [r for r in models if r.operation == "sentiment inference" and r.encrypted]
    plain = [r for r in models if r.operation == "sentiment inference" and not r.encrypted]
    if enc and plain:
        bars.append(
            ("sentiment inference\n(reviews/s)", enc[0].items_per_second, plain[0].items_per_second)
        )
    if not bars:
        return None
    figure, axis = plt.subplots(figsize=(8, 4))
    positions = range(len(bars))
    width = 0.38
    axis.bar(
        [p - width / 2 for p in positions],
        [b[1] for b in bars],
        width,
        label="encrypted weights ('default', INSECURE)",
    )
    axis.bar(
        [p + width / 2 for p in positions],
        [b[2] for b in bars],
        width,
        label="unencrypted (NumPy, same model)",
    )
    for p, (_, enc_rate, plain_rate) in zip(positions, bars, strict=True):
        axis.annotate(
            f"{plain_rate / enc_rate:.0f}x",
            (p, enc_rate),
            textcoords="offset points",
            xytext=(0, 4),
            ha="center",
            fontsize=8,
        )
    if any("batch 32" in b[0] for b in bars):
        axis.axhline(
            ref.SENTIMENT_TARGET_REVIEWS_PER_SECOND,
            color="gray",
            ls="--",
            lw=1,
            label="issue 5 target: 5,000 reviews/s (encrypted, batch 32)",
        )
    axis.set_xticks(list(positions), [b[0] for b in bars], fontsize=8)
    axis.set_yscale("log")
    axis.set_ylabel("items per second (log)")
    axis.set_title("Model throughput: encrypted vs unencrypted (label: slowdown)")
    axis.legend(fontsize=8, loc="upper left")
    axis.grid(True, axis="y", alpha=0.3)
    return _save(figure, out / "models.png")


def _tenseal(records: Sequence[BenchRecord], out: Path) -> Path | None:
    comparisons = [r for r in records if r.kind == "comparison"]
    names = list(dict.fromkeys(r.operation for r in comparisons))
    if not names:
        return None
    implementations = (
        ("hennframework", "ours ('default', INSECURE)"),
        ("tenseal", "TenSEAL CKKS (128-bit)"),
        ("numpy", "NumPy (plaintext)"),
    )
    figure, axis = plt.subplots(figsize=(10, 4.5))
    width = 0.27
    for index, (implementation, label) in enumerate(implementations):
        values = []
        for name in names:
            match = [
                r for r in comparisons if r.operation == name and r.implementation == implementation
            ]
            values.append(match[0].median * 1e3 if match else 0.0)
        if not any(values):
            continue
        axis.bar([p + (index - 1) * width for p in range(len(names))], values, width, label=label)
    axis.set_yscale("log")
    axis.set_ylabel("ms per call (median, log)")
    axis.set_xticks(range(len(names)), [textwrap.fill(n, 16) for n in names], fontsize=7)
    axis.set_title("The same workloads: ours vs TenSEAL vs plaintext")
    axis.legend(fontsize=8)
    axis.grid(True, axis="y", alpha=0.3)
    return _save(figure, out / "tenseal.png")


def _scaling(records: Sequence[BenchRecord], axis_name: str, out: Path) -> Path | None:
    chosen = [r for r in records if r.kind == "scaling" and r.extra.get("axis") == axis_name]
    if not chosen:
        return None
    ops = [
        op
        for op in ("encrypt", "linear_transform", "multiply", "dot")
        if any(r.operation == op for r in chosen)
    ]
    figure, (time_ax, memory_ax, noise_ax) = plt.subplots(1, 3, figsize=(12, 3.6))
    for op in ops:
        points = sorted((int(r.extra["value"]), r) for r in chosen if r.operation == op)
        xs = [x for x, _ in points]
        color = COLORS.get(op)
        time_ax.plot(xs, [r.per_item * 1e6 for _, r in points], "o-", color=color, label=OPS[op])
        memory_ax.plot(
            xs,
            [float(r.extra.get("key_bytes", 0)) / 2**20 for _, r in points],
            "o-",
            color=color,
            label=f"{OPS[op]}: key",
        )
        memory_ax.plot(
            xs,
            [float(r.extra.get("peak_bytes", 0)) / 2**20 for _, r in points],
            "s--",
            color=color,
            alpha=0.6,
            label=f"{OPS[op]}: peak",
        )
        noise_ax.plot(
            xs,
            [float(r.extra.get("noise_budget", 0)) for _, r in points],
            "o-",
            color=color,
            label=OPS[op],
        )
    labels = {
        "m": "vector length m",
        "batch": "batch size",
        "w": "log2 w",
        "gadget_bits": "gadget bits b (base 2**b)",
        "k": "k (columns of T)",
    }
    log_x = axis_name in ("m", "batch", "k")
    for ax in (time_ax, memory_ax, noise_ax):
        ax.set_xlabel(labels.get(axis_name, axis_name))
        if log_x:
            ax.set_xscale("log", base=2)
        ax.grid(True, alpha=0.3)
    time_ax.set_yscale("log")
    time_ax.set_ylabel("µs per vector (log)")
    time_ax.legend(fontsize=7)
    memory_ax.set_yscale("log")
    memory_ax.set_ylabel("MiB (log): key (solid), peak per call (dashed)")
    memory_ax.yaxis.label.set_size(8)
    noise_ax.axhline(0, color="gray", lw=1)
    noise_ax.set_ylabel("noise budget left (bits)")
    figure.suptitle(
        f"Scaling with {labels.get(axis_name, axis_name)} (parameter set 'default' varied; INSECURE)",
        fontsize=10,
    )
    return _save(figure, out / f"scaling_{axis_name}.png")


def _key_memory(records: Sequence[BenchRecord], out: Path) -> Path | None:
    keys = [r for r in records if r.kind == "keys"]
    if not keys:
        return None
    kinds = ("encryption", "product", "dot", "linear")
    keys.sort(key=lambda r: (r.params, r.m or 0))
    labels = [f"{r.params}\nm={r.m}" for r in keys]
    figure, axis = plt.subplots(figsize=(8, 4))
    width = 0.2
    for index, kind in enumerate(kinds):
        values = [
            float((r.extra.get("key_bytes_by_kind") or {}).get(kind, 0)) / 2**20 for r in keys
        ]
        axis.bar(
            [p + (index - 1.5) * width for p in range(len(keys))],
            values,
            width,
            label=kind if kind != "dot" else "inner product",
        )
    axis.set_yscale("log")
    axis.set_ylabel("MiB (log)")
    axis.set_xticks(range(len(keys)), labels, fontsize=8)
    axis.set_title("Key sizes per parameter set (all INSECURE)")
    axis.legend(fontsize=8)
    axis.grid(True, axis="y", alpha=0.3)
    return _save(figure, out / "key_memory.png")


def make_plots(records: Sequence[BenchRecord], out: Path) -> dict[str, Path]:
    """Draw every plot for which ``records`` have data; return {name: file written}."""
    written: dict[str, Path] = {}
    makers: list[tuple[str, Any]] = [
        ("scheme_ops", lambda: _scheme_ops(records, out)),
        ("models", lambda: _models(records, out)),
        ("tenseal", lambda: _tenseal(records, out)),
        *(
            (f"scaling_{axis}", (lambda a=axis: _scaling(records, a, out)))
            for axis in ("m", "batch", "w", "gadget_bits", "k")
        ),
        ("key_memory", lambda: _key_memory(records, out)),
    ]
    for name, maker in makers:
        path = maker()
        if path is not None:
            written[name] = path
    return written
