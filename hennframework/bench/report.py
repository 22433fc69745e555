"""The performance report: saved benchmark results -> markdown (docs/performance.md) + plots.

``henn bench report`` calls :func:`write_report`. Every number in the page comes from the results
file (our measurements, with the machine that made them) or from
:mod:`hennframework.bench.references` (figures measured once for vhe.cpp, the seed and TenSEAL,
each with its source), so the docs' performance page is regenerated, never hand-typed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hennframework.bench import references as ref
from hennframework.bench.format import fmt_bytes, fmt_rate, fmt_ratio, fmt_time, markdown_table
from hennframework.bench.results import BenchRecord, BenchRun, load_results

__all__ = ["OPERATION_ORDER", "Report", "build_report", "write_report"]

#: Scheme operations in the order the tables list them, with their display names.
OPERATION_ORDER: dict[str, str] = {
    "encrypt": "encrypt (public key)",
    "decrypt": "decrypt",
    "key_switch": "key switch",
    "linear_transform": "linear transform",
    "dot": "inner product",
    "multiply": "slotwise product",
}
#: Display names of the other operations that the headline table names.
OTHER_NAMES = {"dot_keygen": "inner-product key generation"}
PARAMS_ORDER = ("default", "vhe", "seed", "plaintext")
SCALING_AXES: dict[str, str] = {
    "m": "vector length m (batch 64)",
    "batch": "batch size (m = 16)",
    "w": "w, the plaintext multiplier (m = 16, batch 256)",
    "gadget_bits": "gadget base 2**b (m = 16, batch 256)",
    "k": "k, columns of T (m = 16, batch 256)",
}

AXIS_HEADERS = {"w": "log2 w", "gadget_bits": "b"}


@dataclass
class Report:
    """The generated markdown, the plot files written, and notes on what was left out."""

    markdown: str
    plots: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sources: list[Path] = field(default_factory=list)


# ------------------------------------------------------------------------------------- helpers
def _records(runs: Sequence[BenchRun]) -> list[BenchRecord]:
    return [record for run in runs for record in run.records]


def _name(operation: str) -> str:
    return OPERATION_ORDER.get(operation) or OTHER_NAMES.get(operation, operation.replace("_", " "))


def _on_cpu(record: BenchRecord) -> bool:
    """Measured with the NumPy backend (or a plaintext/CKKS baseline on the CPU)."""
    return record.backend in ("", "numpy")


def _select(records: Iterable[BenchRecord], kind: str, **extra: Any) -> list[BenchRecord]:
    return [
        r
        for r in records
        if r.kind == kind and all(r.extra.get(key) == value for key, value in extra.items())
    ]


def _one(records: Iterable[BenchRecord], kind: str, **extra: Any) -> BenchRecord | None:
    found = _select(records, kind, **extra)
    return found[0] if found else None


def _speedup(reference_seconds: float | None, ours_seconds: float | None) -> float | None:
    if reference_seconds is None or ours_seconds is None or ours_seconds <= 0:
        return None
    return reference_seconds / ours_seconds


def _params_key(name: str) -> tuple[int, str]:
    return (PARAMS_ORDER.index(name) if name in PARAMS_ORDER else len(PARAMS_ORDER), name)


def _link(plots: Mapping[str, str], name: str, caption: str) -> str:
    if name not in plots:
        return ""
    return f"![{caption}]({plots[name]})\n\n"


# --------------------------------------------------------------------------------- the sections
def _machine_section(runs: Sequence[BenchRun]) -> str:
    parts = ["## Machine\n"]
    for run in runs:
        info = run.machine.get("hennframework") if isinstance(run.machine, Mapping) else None
        general = run.machine
        rows: list[list[object]] = []
        if isinstance(info, Mapping):
            cores = f"{info.get('logical_cpus', '?')} logical"
            if info.get("physical_cores"):
                cores += f", {info['physical_cores']} physical"
            threads = info.get("threads") or {}
            thread_text = ", ".join(f"{k}={v}" for k, v in threads.items() if v is not None)
            if info.get("threads_set_before_numpy") is False:
                thread_text += " (set after NumPy was loaded: may not have applied)"
            rows += [
                ["CPU", info.get("cpu_model", "?")],
                ["cores", cores],
                ["platform", info.get("platform", "?")],
                ["Python", f"{info.get('python', '?')} ({info.get('python_implementation', '')})"],
                ["NumPy", f"{info.get('numpy', '?')} with {info.get('blas', '?')}"],
                ["BLAS threads", thread_text or "library default"],
                ["TenSEAL", info.get("tenseal") or "not installed (CKKS comparison skipped)"],
                ["hennframework", info.get("hennframework", "?")],
                ["run date", info.get("date", run.datetime)],
            ]
            if info.get("gpu"):
                rows.insert(7, ["GPU", f"{info['gpu']} (CuPy {info.get('cupy', '?')})"])
        else:
            rows += [
                ["CPU", general.get("cpu", {}).get("brand_raw", general.get("processor", "?"))],
                ["Python", general.get("python_version", "?")],
                ["run date", run.datetime],
            ]
        commit = run.commit
        if commit.get("id"):
            dirty = " (uncommitted changes)" if commit.get("dirty") else ""
            rows.append(["commit", f"{str(commit['id'])[:12]}{dirty}"])
        rows.append(["results file", f"`{run.path.name}`"])
        parts.append(markdown_table(["", ""], rows, "ll"))
        parts.append("")
    parts.append(
        "Times are medians of repeated runs (pytest-benchmark), single-threaded unless the BLAS "
        "threads above say otherwise. The machine is shared, so expect some noise; the ratios "
        "compare runs made back to back in the same session."
    )
    return "\n".join(parts) + "\n"


SECURITY_TEXT = """## Security of what is measured

**Every integer-vector parameter set (`default`, `seed`, `vhe`) is INSECURE**: the scheme has no
modulus, so `round(c[:m] / w)` recovers the plaintext without the key, and the public key leaks
`T` (see [the scheme page](scheme.md)). Its numbers show what exact, vectorised arithmetic costs,
not what secure encryption costs. TenSEAL's CKKS configuration (N = 8192, a 200-bit coefficient
modulus) gives **128-bit** security by the HE standard. The NumPy rows are plaintext (no security).
Each table states the security of each row.
"""


def _target_rows(records: Sequence[BenchRecord]) -> tuple[list[list[object]], list[str]]:
    rows: list[list[object]] = []
    misses: list[str] = []
    for target in ref.TARGETS:
        vhe_s = target.vhe_ms / 1000
        if target.batched:
            big = _one(
                records,
                "scheme-op",
                operation=target.operation,
                m=target.m,
                batch=256,
                params="default",
            )
            small = _one(
                records,
                "scheme-op",
                operation=target.operation,
                m=target.m,
                batch=1,
                params="default",
            )
        else:
            big = _one(records, "keygen", operation=target.operation, m=target.m, params="default")
            small = big
        if big is None or small is None:
            rows.append([f"{target.operation} m={target.m}", fmt_time(vhe_s), "not measured"])
            continue
        speed_big = _speedup(vhe_s, big.per_item)
        speed_small = _speedup(vhe_s, small.per_item)
        met = speed_big is not None and speed_big >= ref.SPEEDUP_TARGET
        if not met:
            misses.append(f"{target.operation} m={target.m}")
        rows.append(
            [
                f"{_name(target.operation)} m = {target.m}",
                fmt_time(vhe_s),
                fmt_time(big.per_item) + (" (batch 256)" if target.batched else ""),
                fmt_ratio(speed_big),
                fmt_time(small.per_item) if target.batched else "same",
                fmt_ratio(speed_small) if target.batched else "same",
                "**met**" if met else "**missed**",
            ]
        )
    return rows, misses


def _sentiment(records: Sequence[BenchRecord], batch: int, variant: str) -> BenchRecord | None:
    return _one(records, "model", operation="sentiment training", batch=batch, variant=variant)


def _headline_section(all_records: Sequence[BenchRecord]) -> str:
    parts = ["## Headline\n"]
    records = [r for r in all_records if _on_cpu(r)]
    rows, misses = _target_rows(records)
    parts.append(
        "**Issue 3 targets**: at least "
        f"{ref.SPEEDUP_TARGET:.0f}x faster than vhe.cpp (C++/NTL, key prebuilt, one vector per "
        "call), amortised over a batch of 256 where batching applies; the batch-of-1 figure is "
        "given too. Ours: parameter set `default` (INSECURE); vhe.cpp's own parameters are "
        "compared in the operations table below.\n"
    )
    parts.append(
        markdown_table(
            [
                "operation",
                "vhe.cpp",
                "ours, per vector",
                "speed-up",
                "ours, batch 1",
                "speed-up",
                "target",
            ],
            rows,
            "lrrrrrl",
        )
    )
    parts.append("")
    encrypted = _sentiment(records, 32, "encrypted")
    if encrypted is not None:
        rate = encrypted.items_per_second
        met = rate >= ref.SENTIMENT_TARGET_REVIEWS_PER_SECOND
        parts.append(
            f"**Issue 5 target**: encrypted-weight sentiment training at the default batch of 32: "
            f"**{fmt_rate(rate)} reviews/s** (target "
            f"{fmt_rate(ref.SENTIMENT_TARGET_REVIEWS_PER_SECOND)}: "
            f"{'**met**' if met else '**missed**'}; the seed: "
            f"{ref.SEED_REVIEWS_PER_SECOND:g} reviews/s, "
            f"{fmt_ratio(rate / ref.SEED_REVIEWS_PER_SECOND)} slower than ours).\n"
        )
        if not met:
            misses.append("sentiment training >= 5,000 reviews/s")
    bullets = _headline_ratios(records)
    if bullets:
        parts.append("**Ratios** (medians of this run):\n")
        parts.extend(f"- {line}" for line in bullets)
        parts.append("")
    if misses:
        parts.append("Targets missed in this run: " + ", ".join(misses) + ".\n")
    return "\n".join(parts) + "\n"


def _headline_ratios(records: Sequence[BenchRecord]) -> list[str]:
    lines: list[str] = []
    xor_enc = _one(records, "model", operation="XOR training", encrypted=True)
    xor_plain = _one(records, "model", operation="XOR training", encrypted=False)
    if xor_enc and xor_plain:
        lines.append(
            f"XOR training: {fmt_time(xor_enc.per_item)} per iteration encrypted vs "
            f"{fmt_time(xor_plain.per_item)} unencrypted: encryption costs "
            f"{fmt_ratio(xor_enc.per_item / xor_plain.per_item)}."
        )
    for batch in (1, 32):
        enc = _sentiment(records, batch, "encrypted")
        plain = _sentiment(records, batch, "plain")
        base = _sentiment(records, batch, "baseline")
        if enc and plain:
            text = (
                f"Sentiment training, batch {batch}: {fmt_rate(enc.items_per_second)} reviews/s "
                f"encrypted vs {fmt_rate(plain.items_per_second)} unencrypted (same network "
                f"class): {fmt_ratio(plain.items_per_second / enc.items_per_second)} slower"
            )
            if base:
                text += (
                    f"; the tuned NumPy reference does {fmt_rate(base.items_per_second)}/s "
                    f"({fmt_ratio(base.items_per_second / enc.items_per_second)})"
                )
            lines.append(text + ".")
    comparisons = _comparison_pairs(records)
    speedups = [
        (name, ts.median / ours.median)
        for name, (ours, ts, _) in comparisons.items()
        if ours is not None and ts is not None and ours.median > 0
    ]
    if speedups:
        geo = math.exp(sum(math.log(s) for _, s in speedups) / len(speedups))
        low = min(speedups, key=lambda item: item[1])
        high = max(speedups, key=lambda item: item[1])
        lines.append(
            f"Against TenSEAL CKKS (128-bit) on the same {len(speedups)} workloads, ours "
            f"(INSECURE) is {fmt_ratio(low[1])} ({low[0]}) to {fmt_ratio(high[1])} ({high[0]}) "
            f"faster, geometric mean {fmt_ratio(geo)}. TenSEAL is secure (ours is not) and, "
            "except in the SGD step at its scale 2**25, far more precise: see the error columns "
            "(ours is fixed point at scale 2**12)."
        )
    vhe = []
    for (operation, m), vhe_ms in ref.VHE_CPP_MS.items():
        kind = "keygen" if operation == "dot_keygen" else "scheme-op"
        extra: dict[str, Any] = {"operation": operation, "m": m, "params": "default"}
        if kind == "scheme-op":
            extra["batch"] = 256
        ours = _one(records, kind, **extra)
        if ours is not None:
            vhe.append(vhe_ms / 1000 / ours.per_item)
    if vhe:
        geo = math.exp(sum(math.log(v) for v in vhe) / len(vhe))
        lines.append(
            f"Against vhe.cpp on {len(vhe)} operation/size pairs (batch 256, parameter set "
            f"`default`): {fmt_ratio(min(vhe))} to {fmt_ratio(max(vhe))} faster per vector, "
            f"geometric mean {fmt_ratio(geo)}."
        )
    return lines


def _scheme_section(records: Sequence[BenchRecord], plots: Mapping[str, str]) -> str:
    ops = [r for r in _select(records, "scheme-op") if _on_cpu(r)]
    if not ops:
        return ""
    plain = {(r.operation, r.m, r.batch): r for r in ops if not r.encrypted}
    rows: list[list[object]] = []
    ordered = sorted(
        (r for r in ops if r.encrypted),
        key=lambda r: (
            list(OPERATION_ORDER).index(r.operation) if r.operation in OPERATION_ORDER else 99,
            _params_key(r.params),
            r.m or 0,
            r.batch or 0,
        ),
    )
    for r in ordered:
        base = plain.get((r.operation, r.m, r.batch))
        vhe_ms = ref.VHE_CPP_MS.get((r.operation, r.m or 0))
        seed_ms = ref.SEED_MS.get((r.operation, r.m or 0))
        rows.append(
            [
                OPERATION_ORDER.get(r.operation, r.operation),
                f"`{r.params}`",
                r.security,
                r.m,
                r.batch,
                fmt_time(r.median),
                fmt_time(r.per_item),
                fmt_rate(r.items_per_second),
                fmt_ratio(r.per_item / base.per_item) if base else "—",
                fmt_time(vhe_ms / 1000) if vhe_ms else "—",
                fmt_ratio(_speedup(vhe_ms / 1000, r.per_item)) if vhe_ms else "—",
                fmt_ratio(_speedup(seed_ms / 1000, r.per_item)) if seed_ms else "—",
            ]
        )
    text = [
        "## Scheme operations\n",
        "One call on a batch of `batch` m-vectors; *per vector* is the call time divided by the "
        "batch (the amortised cost), *vectors/s* its inverse. *vs NumPy* is how many times "
        "slower than the same operation on plaintext (NumPy int64/float64 on the same batch; "
        "encryption and decryption have no plaintext counterpart). *vhe.cpp* and *seed* are "
        "their per-vector times on the same machine, quoted from the project's notes "
        f"({ref.SOURCES['vhe.cpp']}; {ref.SOURCES['seed']}); *speed-up* = their time / ours "
        "per vector. Key switch goes between two key sets; the linear transform uses a random "
        "G with entries in [-2, 2]; the inner product is x.y (H = I).\n",
        markdown_table(
            [
                "operation",
                "params",
                "security",
                "m",
                "batch",
                "per call",
                "per vector",
                "vectors/s",
                "vs NumPy",
                "vhe.cpp",
                "speed-up vs vhe.cpp",
                "speed-up vs seed",
            ],
            rows,
            "lllrrrrrrrrr",
        ),
        "",
        _link(plots, "scheme_ops", "time per vector against m"),
    ]
    keygen = sorted(
        (r for r in _select(records, "keygen") if _on_cpu(r)),
        key=lambda r: (r.operation, _params_key(r.params), r.m or 0),
    )
    if keygen:
        krows = []
        for r in keygen:
            vhe_ms = ref.VHE_CPP_MS.get((r.operation, r.m or 0))
            krows.append(
                [
                    "inner-product key"
                    if r.operation == "dot_keygen"
                    else "secret + encryption + product keys",
                    f"`{r.params}`",
                    r.security,
                    r.m,
                    fmt_time(r.median),
                    fmt_bytes(r.extra.get("key_bytes")),
                    fmt_time(vhe_ms / 1000) if vhe_ms else "—",
                    fmt_ratio(_speedup(vhe_ms / 1000, r.median)) if vhe_ms else "—",
                ]
            )
        text += [
            "### Key generation (owner side)\n",
            markdown_table(
                [
                    "key",
                    "params",
                    "security",
                    "m",
                    "time",
                    "key size",
                    "vhe.cpp",
                    "speed-up vs vhe.cpp",
                ],
                krows,
                "lllrrrrr",
            ),
            "",
        ]
    return "\n".join(text) + "\n"


def _gpu_section(records: Sequence[BenchRecord]) -> str:
    gpu = [r for r in records if r.kind == "scheme-op" and not _on_cpu(r)]
    if not gpu:
        return ""
    cpu = {
        (r.operation, r.m, r.batch, r.params): r
        for r in records
        if r.kind == "scheme-op" and _on_cpu(r) and r.encrypted
    }
    rows: list[list[object]] = []
    ordered = sorted(
        gpu,
        key=lambda r: (
            r.backend,
            list(OPERATION_ORDER).index(r.operation) if r.operation in OPERATION_ORDER else 99,
            r.m or 0,
            r.batch or 0,
        ),
    )
    for r in ordered:
        cpu_256 = cpu.get((r.operation, r.m, 256, r.params))
        rows.append(
            [
                OPERATION_ORDER.get(r.operation, r.operation),
                r.backend,
                f"`{r.params}`",
                r.security,
                r.m,
                f"{r.batch:,}" if r.batch else "—",
                fmt_time(r.median),
                fmt_time(r.per_item),
                fmt_rate(r.items_per_second),
                fmt_ratio(cpu_256.per_item / r.per_item) if cpu_256 else "—",
            ]
        )
    text = [
        "## GPU backends\n",
        "The same operations on a GPU backend (times include synchronising the device). "
        "*vs CPU* is the NumPy backend's time per vector at batch 256 in the runs above divided "
        "by the GPU's; the machines differ (see Machine).\n",
        markdown_table(
            [
                "operation",
                "backend",
                "params",
                "security",
                "m",
                "batch",
                "per call",
                "per vector",
                "vectors/s",
                "vs CPU (batch 256)",
            ],
            rows,
            "llllrrrrrr",
        ),
        "",
    ]
    targets = [r for r in gpu if r.extra.get("target_per_second")]
    for r in targets:
        goal = float(r.extra["target_per_second"])
        met = r.items_per_second >= goal
        text.append(
            f"Issue 6 target: {fmt_rate(goal)} {r.unit}s per second at m = {r.m}, batch "
            f"{r.batch:,}: measured **{fmt_rate(r.items_per_second)}/s** "
            f"({'**met**' if met else '**missed**'}).\n"
        )
    return "\n".join(text) + "\n"


def _models_section(records: Sequence[BenchRecord], plots: Mapping[str, str]) -> str:
    models = _select(records, "model")
    if not models:
        return ""
    rows: list[list[object]] = []
    for operation, unit in (("XOR training", "iteration"), ("XOR inference", "row")):
        enc = _one(models, "model", operation=operation, encrypted=True)
        plain = _one(models, "model", operation=operation, encrypted=False)
        if enc and plain:
            rows.append(
                [
                    operation,
                    enc.batch,
                    f"{fmt_time(enc.per_item)}/{unit}",
                    f"{fmt_time(plain.per_item)}/{unit}",
                    fmt_ratio(enc.per_item / plain.per_item),
                    "—",
                ]
            )
    for batch in (1, 32):
        enc = _sentiment(models, batch, "encrypted")
        plain = _sentiment(models, batch, "plain")
        base = _sentiment(models, batch, "baseline")
        if enc and plain:
            rows.append(
                [
                    f"sentiment training ({enc.extra.get('reviews', '?')} / "
                    f"{plain.extra.get('reviews', '?')} reviews)",
                    batch,
                    f"{fmt_rate(enc.items_per_second)} reviews/s",
                    f"{fmt_rate(plain.items_per_second)} reviews/s"
                    + (f" (tuned: {fmt_rate(base.items_per_second)})" if base else ""),
                    fmt_ratio(plain.items_per_second / enc.items_per_second),
                    fmt_ratio(enc.items_per_second / ref.SEED_REVIEWS_PER_SECOND),
                ]
            )
    enc = _one(models, "model", operation="sentiment inference", encrypted=True)
    plain = _one(models, "model", operation="sentiment inference", encrypted=False)
    if enc and plain:
        rows.append(
            [
                "sentiment inference (1,000 held-out reviews)",
                enc.batch,
                f"{fmt_rate(enc.items_per_second)} reviews/s",
                f"{fmt_rate(plain.items_per_second)} reviews/s",
                fmt_ratio(plain.items_per_second / enc.items_per_second),
                "—",
            ]
        )
    text = [
        "## Models: encrypted weights next to the same model unencrypted\n",
        "Encrypted: parameter set `default` (INSECURE); unencrypted: the same model with NumPy "
        "weights, same seed and initial weights. XOR: the seed's 3-4-1 network (cubic sigmoid, "
        "learning rate 0.015), one training run continued across rounds (owner refreshes "
        "included when due). Sentiment: rt-polarity interleaved, last 1,000 held out, "
        "vocabulary from the training part, one epoch over the first 2,000 training reviews "
        "(256 for the encrypted batch-1 run) from fresh weights, learning rate 0.1, 8 hidden "
        "units; *tuned* is the reference NumPy network of `hennframework.data.baseline` "
        f"(issue 5 quotes ~{fmt_rate(ref.UNENCRYPTED_REFERENCE_REVIEWS_PER_SECOND)} reviews/s "
        f"for it at batch 1 on the full set). *vs seed*: speed-up over the seed's "
        f"{ref.SEED_REVIEWS_PER_SECOND:g} reviews/s.\n",
        markdown_table(
            ["workload", "batch", "encrypted", "unencrypted", "encryption costs", "vs seed"],
            rows,
            "lrrrrr",
        ),
        "",
        _link(plots, "models", "encrypted and unencrypted model throughput"),
    ]
    return "\n".join(text) + "\n"


def _comparison_pairs(
    records: Sequence[BenchRecord],
) -> dict[str, tuple[BenchRecord | None, BenchRecord | None, BenchRecord | None]]:
    pairs: dict[str, tuple[BenchRecord | None, BenchRecord | None, BenchRecord | None]] = {}
    for r in _select(records, "comparison"):
        ours, ts, plain = pairs.get(r.operation, (None, None, None))
        if r.implementation == "hennframework":
            ours = r
        elif r.implementation == "tenseal":
            ts = r
        elif r.implementation == "numpy":
            plain = r
        pairs[r.operation] = (ours, ts, plain)
    return pairs


def _error(record: BenchRecord | None) -> str:
    if record is None or record.extra.get("max_abs_error") is None:
        return "—"
    return f"{float(record.extra['max_abs_error']):.1e}"


def _tenseal_section(records: Sequence[BenchRecord], plots: Mapping[str, str]) -> str:
    pairs = _comparison_pairs(records)
    if not pairs:
        return ""
    rows: list[list[object]] = []
    have_tenseal = any(ts is not None for _, ts, _ in pairs.values())
    for name, (ours, ts, plain) in pairs.items():
        notes_ms = ref.TENSEAL_NOTES_MS.get(name)
        rows.append(
            [
                name,
                fmt_time(ours.median) if ours else "—",
                _error(ours),
                fmt_time(ts.median) if ts else "not measured",
                _error(ts),
                fmt_ratio(ts.median / ours.median) if ours and ts else "—",
                fmt_time(plain.median) if plain else "—",
                fmt_ratio(ours.median / plain.median) if ours and plain else "—",
                fmt_time(notes_ms / 1000) if notes_ms else "—",
            ]
        )
    text = [
        "## Compared with TenSEAL (CKKS) on the same work\n",
        "Same inputs, one call each, median time. **Ours: parameter set `default`, INSECURE. "
        "TenSEAL: CKKS N = 8192, coefficient moduli [60, 40, 40, 60], scale 2**40: 128-bit "
        "security** (the SGD step needs more levels: [40, 25 x 5, 40], scale 2**25, still "
        "128-bit). *error* is the largest absolute difference from the NumPy result (after "
        "decryption). Ours packs the 8 values in one m = 8 vector for encrypt, decrypt, add and "
        "the inner product, and uses one scalar ciphertext per value for the matrix, polynomial "
        "and SGD workloads (as the model API does; no per-matrix key). *TenSEAL / ours*: how "
        "many times faster ours is. The last column quotes TenSEAL from "
        f"{ref.SOURCES['tenseal-notes']}.\n",
    ]
    if not have_tenseal:
        text.append(
            "TenSEAL was not measured in this run (not installed, or deselected), so only our "
            'side and NumPy are shown; `pip install "hennframework[ckks]"` to include it.\n'
        )
    text += [
        markdown_table(
            [
                "workload",
                "ours (INSECURE)",
                "error",
                "TenSEAL (128-bit)",
                "error",
                "TenSEAL / ours",
                "NumPy (plaintext)",
                "ours / NumPy",
                "TenSEAL (notes)",
            ],
            rows,
            "lrrrrrrrr",
        ),
        "",
        _link(plots, "tenseal", "ours against TenSEAL"),
    ]
    return "\n".join(text) + "\n"


def _scaling_cell(r: BenchRecord) -> str:
    budget = r.extra.get("noise_budget")
    budget_text = f"{float(budget):.0f} b" if isinstance(budget, int | float) else "—"
    return (
        f"{fmt_time(r.per_item)} · {fmt_bytes(r.extra.get('key_bytes'))} · "
        f"{fmt_bytes(r.extra.get('peak_bytes'))} · {budget_text}"
    )


def _scaling_section(records: Sequence[BenchRecord], plots: Mapping[str, str]) -> str:
    scaling = _select(records, "scaling")
    if not scaling:
        return ""
    text = [
        "## Scaling: time and memory against m, batch size, w, gadget base and k\n",
        "One parameter varies from the reference point (parameter set `default`: w = 2**40, "
        "base 2**8, k = 1; m = 16; batch 256). Each cell: *time per vector · size of the key "
        "the operation uses · peak memory of one call (tracemalloc) · noise budget left in the "
        "result (bits; negative means it would not decrypt)*. All INSECURE.\n",
    ]
    for axis, title in SCALING_AXES.items():
        chosen = [r for r in scaling if r.extra.get("axis") == axis]
        if not chosen:
            continue
        ops = [
            op
            for op in ("encrypt", "linear_transform", "multiply", "dot")
            if any(r.operation == op for r in chosen)
        ]
        values = sorted({int(r.extra["value"]) for r in chosen})
        rows: list[list[object]] = []
        for value in values:
            row: list[object] = [value]
            for op in ops:
                match = [r for r in chosen if r.operation == op and r.extra.get("value") == value]
                row.append(_scaling_cell(match[0]) if match else "—")
            rows.append(row)
        text += [
            f"### {title}\n",
            markdown_table(
                [AXIS_HEADERS.get(axis, axis), *(OPERATION_ORDER.get(op, op) for op in ops)],
                rows,
                "r" * (len(ops) + 1),
            ),
            "",
            _link(plots, f"scaling_{axis}", f"scaling with {axis}"),
        ]
    keys = sorted(_select(records, "keys"), key=lambda r: (_params_key(r.params), r.m or 0))
    if keys:
        kinds = ("encryption", "product", "dot", "linear")
        rows = []
        for r in keys:
            sizes = r.extra.get("key_bytes_by_kind") or {}
            rows.append(
                [
                    f"`{r.params}`",
                    r.security,
                    r.m,
                    fmt_time(r.median),
                    *(fmt_bytes(sizes.get(kind)) for kind in kinds),
                    fmt_bytes(r.extra.get("key_bytes")),
                    fmt_bytes(r.extra.get("peak_bytes")),
                ]
            )
        text += [
            "### Key material per parameter set\n",
            "A secret key with the public encryption key, the slotwise-product key, the "
            "inner-product key (H = I) and one linear-transform key (m x m), all for m-vectors; "
            "*peak* is the memory allocated while making them.\n",
            markdown_table(
                [
                    "params",
                    "security",
                    "m",
                    "keygen time",
                    "encryption key",
                    "product key",
                    "inner-product key",
                    "linear key (m x m)",
                    "total",
                    "peak",
                ],
                rows,
                "llrrrrrrrr",
            ),
            "",
            _link(plots, "key_memory", "key sizes per parameter set"),
        ]
    return "\n".join(text) + "\n"


REPRODUCE = """## Reproducing

```sh
pip install -e ".[bench,ckks]"       # pytest-benchmark, matplotlib, TenSEAL
tox -e bench                          # or: henn bench run
henn bench report                     # newest results under .benchmarks/ -> this page + plots
pytest benchmarks --benchmark-compare # compare with the previous saved run
```

The benchmark sources are in `benchmarks/` (one module per table); the reference figures and their
sources in `hennframework/bench/references.py`.
"""


# ------------------------------------------------------------------------------------ assembly
def build_report(
    runs: Sequence[BenchRun], plots: Mapping[str, str] | None = None, notes: Sequence[str] = ()
) -> str:
    """The markdown page for ``runs``; ``plots`` maps plot names to paths relative to the page."""
    plots = plots or {}
    records = _records(runs)
    sources = ", ".join(f"`{run.path.name}`" for run in runs)
    header = [
        "# Performance\n",
        "<!-- Generated by `henn bench report`; do not edit by hand. Regenerate with "
        "`tox -e bench` (or `henn bench run`). -->\n",
        f"Generated from {sources}. All numbers below are medians from that run unless a column "
        "says it quotes a reference figure.\n",
    ]
    for note in notes:
        header.append(f"> {note}\n")
    sections = [
        "\n".join(header),
        SECURITY_TEXT,
        _machine_section(runs),
        _headline_section(records),
        _scheme_section(records, plots),
        _gpu_section(records),
        _models_section(records, plots),
        _tenseal_section(records, plots),
        _scaling_section(records, plots),
        REPRODUCE,
    ]
    text = "\n".join(section for section in sections if section)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip() + "\n"


def write_report(
    inputs: Sequence[Path],
    out: Path | None,
    plots_dir: Path | None,
) -> Report:
    """Load results, draw the plots (if matplotlib is there and ``plots_dir`` is given), write.

    ``out=None`` writes nothing (the caller prints ``Report.markdown``). Missing matplotlib is
    not an error: the tables are written and a note in the page says the plots were skipped.
    """
    runs = load_results(list(inputs))
    notes: list[str] = []
    written: dict[str, Path] = {}
    links: dict[str, str] = {}
    if plots_dir is not None:
        try:
            from hennframework.bench.plots import make_plots
        except ImportError as exc:  # matplotlib is optional (extra "bench")
            notes.append(
                f"Plots were skipped: matplotlib is not installed ({exc}); "
                'pip install "hennframework[bench]" and run `henn bench report` again.'
            )
        else:
            written = make_plots(_records(runs), plots_dir)
            base = out.parent if out is not None else Path.cwd()
            for name, path in written.items():
                links[name] = Path(os.path.relpath(path, base)).as_posix()
    markdown = build_report(runs, links, notes)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(markdown, encoding="utf-8")
    return Report(markdown, written, notes, [run.path for run in runs])
