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
import matplotlib.ticker

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
COLORS = dict(
    zip((*OPS, "dot_keygen"), plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False)
)


def _save(figure: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path


def _vhe_cpp_points(records: Sequence[BenchRecord], op: str) -> list[tuple[int, float]]:
    """(m, seconds per call) of vhe.cpp measured in the same run, for ``op``."""
    return sorted(
        (r.m or 0, r.per_item)
        for r in records
        if r.kind == "reference" and r.implementation == "vhe.cpp" and r.operation == op
    )


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
    have_vhe = False
    for axis, batch in zip(axes, (1, 256), strict=True):
        for op, label in OPS.items():
            points = sorted(
                (r.m or 0, r.per_item) for r in ops if r.operation == op and r.batch == batch
            )
            if not points:
                continue
            xs, ys = zip(*points, strict=True)
            axis.plot(xs, [y * 1e6 for y in ys], "o-", color=COLORS[op], label=label)
            vhe = _vhe_cpp_points(records, op)
            if vhe:
                have_vhe = True
                vx, vy = zip(*vhe, strict=True)
                axis.plot(vx, [v * 1e6 for v in vy], "x:", color=COLORS[op], alpha=0.6)
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("vector length m")
        axis.set_title(f"batch {batch}" + (" (time per vector)" if batch > 1 else ""))
        axis.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("µs per vector (median)")
    if have_vhe:
        axes[0].plot([], [], "kx:", alpha=0.6, label="vhe.cpp (C++/NTL, this run)")
    axes[0].legend(fontsize=8, loc="upper left")
    figure.suptitle("Integer-vector scheme operations, parameter set 'default' (INSECURE)")
    return _save(figure, out / "scheme_ops.png")


def _vhe_speedup(records: Sequence[BenchRecord], out: Path) -> Path | None:
    """vhe.cpp's time / ours per vector against m, batch 1 and 256, both parameter sets."""
    reference = {
        (r.operation, r.m): r.per_item
        for r in records
        if r.kind == "reference" and r.implementation == "vhe.cpp"
    }
    if not reference:
        return None
    ours = [
        r
        for r in records
        if r.kind in ("scheme-op", "keygen")
        and r.extra.get("compared_with") == "vhe.cpp"
        and r.backend in ("", "numpy")
    ]
    if not ours:
        return None
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for axis, batch in zip(axes, (1, 256), strict=True):
        for op, label in {**OPS, "dot_keygen": "inner-product keygen"}.items():
            for params, style in (("vhe", "o-"), ("default", "s--")):
                points = sorted(
                    (r.m or 0, reference[(op, r.m)] / r.per_item)
                    for r in ours
                    if r.operation == op
                    and r.params == params
                    and (r.batch == batch or op == "dot_keygen")
                    and (op, r.m) in reference
                    and r.per_item > 0
                )
                if not points:
                    continue
                xs, ys = zip(*points, strict=True)
                axis.plot(
                    xs,
                    ys,
                    style,
                    color=COLORS.get(op, "gray"),
                    alpha=1.0 if params == "vhe" else 0.5,
                    label=label if params == "vhe" else None,
                )
        for level, text in ((1, "1x (as fast)"), (30, "30x"), (100, "100x")):
            axis.axhline(level, color="gray", lw=0.8, ls=":")
            # x in axes coordinates (right edge), y in data coordinates
            axis.text(
                0.99,
                level,
                text,
                transform=axis.get_yaxis_transform(),
                ha="right",
                va="bottom",
                fontsize=7,
                color="gray",
            )
        sizes = sorted({r.m or 0 for r in ours if (r.operation, r.m) in reference})
        axis.set_xscale("log", base=2)
        axis.set_xticks(sizes, [str(m) for m in sizes])
        axis.set_yscale("log")
        axis.set_xlabel("vector length m")
        axis.set_title(f"batch {batch}" + (" (per vector)" if batch > 1 else ""))
        axis.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("vhe.cpp time / ours (log; above 1: ours faster)")
    axes[0].plot([], [], "ko-", label="set 'vhe' (matched)")
    axes[0].plot([], [], "ks--", alpha=0.5, label="set 'default'")
    axes[0].legend(fontsize=7, loc="upper left")
    figure.suptitle("Speed-up over vhe.cpp measured in the same run (all INSECURE)")
    return _save(figure, out / "vhe_speedup.png")


def _sentiment_training(
    models: Sequence[BenchRecord], batch: int
) -> tuple[list[BenchRecord], list[BenchRecord]]:
    """The encrypted and the plain sentiment-training records of one batch size."""

    def variant(name: str) -> list[BenchRecord]:
        return [
            r
            for r in models
            if r.operation == "sentiment training"
            and r.batch == batch
            and r.extra.get("variant") == name
        ]

    return variant("encrypted"), variant("plain")


def _ratio_vs_batch(records: Sequence[BenchRecord], out: Path) -> Path | None:
    """Encrypted / unencrypted time per item against batch size: sentiment and XOR."""
    models = [r for r in records if r.kind == "model" and r.backend in ("", "numpy")]
    sentiment: list[tuple[int, float]] = []
    for batch in sorted({r.batch or 0 for r in models if r.operation == "sentiment training"}):
        enc, plain = _sentiment_training(models, batch)
        if enc and plain and plain[0].per_item > 0:
            sentiment.append((batch, enc[0].per_item / plain[0].per_item))
    xor_enc = [r for r in models if r.operation == "XOR training" and r.encrypted]
    xor_plain = [r for r in models if r.operation == "XOR training" and not r.encrypted]
    xor = (
        (xor_enc[0].batch or 4, xor_enc[0].per_item / xor_plain[0].per_item)
        if xor_enc and xor_plain and xor_plain[0].per_item > 0
        else None
    )
    if not sentiment and xor is None:
        return None
    figure, axis = plt.subplots(figsize=(7, 4))
    if sentiment:
        xs, ys = zip(*sentiment, strict=True)
        axis.plot(xs, ys, "o-", label="sentiment training (rt-polarity)")
        for x, y in sentiment:
            axis.annotate(
                f"{y:.0f}x",
                (x, y),
                textcoords="offset points",
                xytext=(0, 5),
                ha="center",
                fontsize=7,
            )
    if xor is not None:
        axis.plot([xor[0]], [xor[1]], "D", color="C1", label="XOR training (batch 4)")
        axis.annotate(f"{xor[1]:.0f}x", xor, textcoords="offset points", xytext=(6, -3), fontsize=7)
    targets = [(1, 25.0, "target batch 1: 25x"), (32, 10.0, "target batch 32: 10x")]
    axis.plot(
        [t[0] for t in targets], [t[1] for t in targets], "v", color="C3", label="sentiment targets"
    )
    axis.plot([4], [25.0], "v", color="C1", alpha=0.6, label="XOR target: 25x")
    batches = sorted({x for x, _ in sentiment} | ({xor[0]} if xor else set()) | {1, 32})
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    axis.set_xticks(batches, [str(b) for b in batches])
    axis.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    axis.set_xlabel("batch size")
    axis.set_ylabel("encrypted / unencrypted time per item (log)")
    axis.set_title("Cost of encryption against batch size ('default' set, INSECURE)")
    axis.grid(True, which="major", alpha=0.3)
    axis.legend(fontsize=8)
    return _save(figure, out / "ratio_vs_batch.png")


def _models(records: Sequence[BenchRecord], out: Path) -> Path | None:
    models = [r for r in records if r.kind == "model"]
    bars: list[tuple[str, float, float]] = []
    for operation, label in (("XOR training", "XOR training\n(iterations/s)"),):
        enc = [r for r in models if r.operation == operation and r.encrypted]
        plain = [r for r in models if r.operation == operation and not r.encrypted]
        if enc and plain:
            bars.append((label, enc[0].items_per_second, plain[0].items_per_second))
    for batch in (1, 32):
        enc, plain = _sentiment_training(models, batch)
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
            label="earlier target: 5,000 reviews/s (encrypted, batch 32)",
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
        for what, style, alpha in (("key", "o-", None), ("peak", "s--", 0.6)):  # solid, dashed
            mib = [float(r.extra.get(f"{what}_bytes", 0)) / 2**20 for _, r in points]
            memory_ax.plot(xs, mib, style, color=color, alpha=alpha, label=f"{OPS[op]}: {what}")
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
        ("vhe_speedup", lambda: _vhe_speedup(records, out)),
        ("ratio_vs_batch", lambda: _ratio_vs_batch(records, out)),
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
