"""The performance report: saved benchmark results -> markdown (docs/performance.md) + plots.

``henn bench report`` calls :func:`write_report`. Every number in the page comes from the results
file: our measurements, vhe.cpp's (built and timed in the same run by the benchmark suite) and the
machine that made them. Figures quoted from notes (:mod:`hennframework.bench.references`) appear
only in columns labelled "notes, for context"; no target divides by them. The headline table
checks each target of :data:`hennframework.bench.references.TARGETS`, then the secure path's
:data:`SECURE_TARGETS` (the CKKS plugin at 128-bit against TenSEAL written by hand, from
``benchmarks/test_bench_secure.py``), and says "met", "not met" or "not measured" with the reason.
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
from hennframework.bench.results import select_records as _select
from hennframework.bench.vhecpp import INSTALL_HINT
from hennframework.io.safe_files import write_file

__all__ = [
    "OPERATION_ORDER",
    "SECURE_TARGETS",
    "VHE_COMPARED",
    "Report",
    "TargetResult",
    "build_report",
    "evaluate_targets",
    "write_report",
]

#: Scheme operations in the order the tables list them, with their display names.
OPERATION_ORDER: dict[str, str] = {
    "encrypt": "encrypt (public key)",
    "decrypt": "decrypt",
    "key_switch": "key switch",
    "linear_transform": "linear transform",
    "dot": "inner product",
    "dot_keygen": "inner-product key generation",
    "multiply": "slotwise product",
}
#: The operations and vector lengths compared with vhe.cpp (benchmarks/test_bench_vhe.py).
VHE_COMPARED: dict[str, tuple[int, ...]] = {
    "encrypt": (4, 16, 64, 256),
    "decrypt": (4, 16, 64, 256),
    "key_switch": (4, 16, 64, 256),
    "linear_transform": (4, 16, 64, 256),
    "dot": (4, 16, 64),
    "dot_keygen": (4, 16, 64),
}
PARAMS_ORDER = ("default", "vhe", "seed", "plaintext")
SCALING_AXES: dict[str, str] = {
    "m": "vector length m (batch 64)",
    "batch": "batch size (m = 16)",
    "w": "w, the plaintext multiplier (m = 16, batch 256)",
    "gadget_bits": "gadget base 2**b (m = 16, batch 256)",
    "k": "k, columns of T (m = 16, batch 256)",
}
AXIS_HEADERS = {"w": "log2 w", "gadget_bits": "b"}
#: Batch sizes of the sentiment benchmarks (the ratio against batch size).
SENTIMENT_BATCHES = (1, 8, 32, 128, 256)
MET = "**met**"
NOT_MET = "**not met**"
#: The secure-path targets (benchmarks/test_bench_secure.py, CKKS at 128-bit against TenSEAL
#: written by hand), listed after :data:`hennframework.bench.references.TARGETS`.
SECURE_TARGETS: tuple[ref.Target, ...] = (
    ref.Target(
        "secure-xor",
        "Secure path, XOR (CKKS, 128-bit): one training iteration, refreshes included, in at "
        "most 60 ms (about two ciphertext products as TenSEAL times them)",
        0.060,
        True,
    ),
    ref.Target(
        "secure-sentiment",
        "Secure path, sentiment on rt-polarity (CKKS, 128-bit): at least 200 reviews/s, "
        "held-out accuracy within 1 point of the same network unencrypted",
        200.0,
        False,
    ),
    ref.Target(
        "secure-logistic",
        "Secure path, logistic regression on breast_cancer (CKKS, 128-bit, encrypted weights): "
        "at least 4x the samples/s of TenSEAL written by hand",
        4.0,
        False,
    ),
    ref.Target(
        "secure-keys",
        "Secure path, keys (CKKS, 128-bit): public + relinearisation + rotation keys for the "
        "XOR and the sentiment model at most 64 MB each",
        64e6,
        True,
    ),
)
#: Secure sentiment: the most the encrypted held-out accuracy may differ from the plain one.
SECURE_ACCURACY_GAP = 0.01
#: The models whose public keys the keys target covers.
SECURE_KEY_MODELS = ("xor", "sentiment")
SECURE_MISSING = (
    "no {what} in these results (benchmarks/test_bench_secure.py, `pytest benchmarks -k "
    "secure`; needs TenSEAL, scikit-learn and the CKKS plugin: pip install -e "
    '".[bench,ckks,sklearn]" -e plugins/ckks-tenseal)'
)


@dataclass
class Report:
    """The generated markdown, the plot files written, and notes on what was left out."""

    markdown: str
    plots: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sources: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class TargetResult:
    """One row of the headline table: the measured ratio and whether it meets the target."""

    target: ref.Target
    measured: float | None
    detail: str
    missing: str = ""  # why (part of) it was not measured
    failed: str = ""  # another condition of the target that the run did not meet

    @property
    def status(self) -> str:
        if self.measured is None:
            return f"not measured: {self.missing}"
        if not self.target.met(self.measured) or self.failed:
            return NOT_MET
        if self.missing:
            return f"not measured in full: {self.missing}"
        return MET


# ------------------------------------------------------------------------------------- helpers
def _records(runs: Sequence[BenchRun]) -> list[BenchRecord]:
    return [record for run in runs for record in run.records]


def _name(operation: str) -> str:
    return OPERATION_ORDER.get(operation, operation.replace("_", " "))


def _op_index(operation: str) -> int:
    return list(OPERATION_ORDER).index(operation) if operation in OPERATION_ORDER else 99


def _on_cpu(record: BenchRecord) -> bool:
    """Measured with the NumPy backend (or a plaintext/CKKS baseline on the CPU)."""
    return record.backend in ("", "numpy")


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


def _ours(
    records: Sequence[BenchRecord], operation: str, m: int, params: str, batch: int
) -> BenchRecord | None:
    """Our CPU measurement of ``operation`` (key generation has no batch)."""
    cpu = [r for r in records if _on_cpu(r) and r.encrypted]
    if operation == "dot_keygen":
        return _one(cpu, "keygen", operation=operation, m=m, params=params)
    return _one(cpu, "scheme-op", operation=operation, m=m, params=params, batch=batch)


def _vhe_cpp(records: Sequence[BenchRecord], operation: str, m: int) -> BenchRecord | None:
    return _one(records, "reference", implementation="vhe.cpp", operation=operation, m=m)


def _vhe_status(runs: Sequence[BenchRun]) -> Mapping[str, Any] | None:
    """What the suite recorded about building and running vhe.cpp (a built run first).

    With several results files, the peak memory and skipped cases of every built run are merged.
    """
    found: list[Mapping[str, Any]] = []
    for run in runs:
        info = run.machine.get("hennframework") if isinstance(run.machine, Mapping) else None
        status = info.get("vhe_cpp") if isinstance(info, Mapping) else None
        if isinstance(status, Mapping):
            found.append(status)
    built = [s for s in found if s.get("built")]
    if not built:
        return found[0] if found else None
    merged = dict(built[0])
    peaks: dict[str, Any] = {}
    skipped: dict[str, Any] = {}
    for status in built:
        if isinstance(status.get("peak_rss_bytes"), Mapping):
            peaks.update(status["peak_rss_bytes"])
        if isinstance(status.get("skipped"), Mapping):
            skipped.update(status["skipped"])
    merged["peak_rss_bytes"] = dict(sorted(peaks.items(), key=lambda item: int(item[0])))
    merged["skipped"] = skipped
    return merged


def _vhe_missing(status: Mapping[str, Any] | None, operation: str, m: int) -> str:
    """Why vhe.cpp has no figure for ``operation`` at ``m`` in these results."""
    if status is None:
        return (
            "these results have no vhe.cpp measurements (run benchmarks/test_bench_vhe.py with "
            f"NTL and g++ installed: {INSTALL_HINT})"
        )
    if not status.get("built"):
        return str(status.get("reason") or "vhe.cpp was not built")
    skipped = status.get("skipped")
    if isinstance(skipped, Mapping) and f"{operation} m={m}" in skipped:
        return str(skipped[f"{operation} m={m}"])
    return "not in these results (deselected)"


def _ratio_text(value: float | None) -> str:
    """Like fmt_ratio, with up to three significant digits below 10x (for speed-ups near 1x)."""
    if value is None or not math.isfinite(value) or value <= 0:
        return "—"
    if value < 10:
        return f"{value:.3g}x"
    return fmt_ratio(value)


def _megabytes(count: object) -> str:
    """Bytes in MB (10**6 bytes), the unit the key-size target is stated in."""
    if not isinstance(count, int | float) or isinstance(count, bool):
        return "—"
    return f"{float(count) / 1e6:.1f} MB"


def _goal(target: ref.Target) -> str:
    if target.key in ("sentiment-rate", "secure-sentiment"):
        return f">= {fmt_rate(target.bound)} reviews/s"
    if target.key == "secure-xor":
        return f"<= {fmt_time(target.bound)} per iteration"
    if target.key == "secure-keys":
        return f"<= {_megabytes(target.bound)}"
    return f"{'<=' if target.at_most else '>='} {target.bound:g}x"


def _measured(target: ref.Target, value: float | None) -> str:
    if value is None:
        return "—"
    if target.key in ("sentiment-rate", "secure-sentiment"):
        return f"{fmt_rate(value)} reviews/s"
    if target.key == "secure-xor":
        return fmt_time(value)
    if target.key == "secure-keys":
        return _megabytes(value)
    return _ratio_text(value)


# ------------------------------------------------------------------------------------- targets
def _sentiment(records: Sequence[BenchRecord], batch: int, variant: str) -> BenchRecord | None:
    return _one(records, "model", operation="sentiment training", batch=batch, variant=variant)


def _model_target(target: ref.Target, records: Sequence[BenchRecord]) -> TargetResult:
    if target.key == "xor":
        enc = _one(records, "model", operation="XOR training", encrypted=True)
        plain = _one(records, "model", operation="XOR training", encrypted=False)
        what = "XOR training (benchmarks/test_bench_models.py)"
    else:
        batch = 32 if target.key in ("sentiment-32", "sentiment-rate") else 1
        enc = _sentiment(records, batch, "encrypted")
        plain = _sentiment(records, batch, "plain")
        what = (
            f"sentiment training at batch {batch} (benchmarks/test_bench_models.py; needs the "
            "rt-polarity data: ../shared/data/rt-polarity or HENN_BENCH_DATA)"
        )
    if target.key == "sentiment-rate":
        if enc is None:
            return TargetResult(target, None, "", f"no encrypted {what}")
        return TargetResult(target, enc.items_per_second, "`default` set")
    if enc is None or plain is None:
        return TargetResult(target, None, "", f"no encrypted and unencrypted {what}")
    ratio = enc.per_item / plain.per_item
    unit = enc.unit
    detail = (
        f"{fmt_time(enc.per_item)} vs {fmt_time(plain.per_item)} per {unit} (`default` set vs "
        "NumPy)"
    )
    return TargetResult(target, ratio, detail)


def _vhe_pairs(
    records: Sequence[BenchRecord], params: str, batch: int, sizes: Iterable[int]
) -> tuple[list[tuple[str, int, float]], list[tuple[str, int]]]:
    """(operation, m, vhe.cpp time / ours per vector) for each compared case, and the missing."""
    wanted = set(sizes)
    found: list[tuple[str, int, float]] = []
    missing: list[tuple[str, int]] = []
    for operation, op_sizes in VHE_COMPARED.items():
        for m in op_sizes:
            if m not in wanted:
                continue
            ours = _ours(records, operation, m, params, batch)
            theirs = _vhe_cpp(records, operation, m)
            ratio = _speedup(theirs.per_item, ours.per_item) if ours and theirs else None
            if ratio is None:
                missing.append((operation, m))
            else:
                found.append((operation, m, ratio))
    return found, missing


def _missing_text(
    missing: Sequence[tuple[str, int]],
    records: Sequence[BenchRecord],
    status: Mapping[str, Any] | None,
    params: str,
    batch: int,
) -> str:
    built = status is not None and bool(status.get("built"))
    if not built and not any(_vhe_cpp(records, operation, m) for operation, m in missing):
        return _vhe_missing(status, *missing[0])  # nothing of vhe.cpp: one reason for all
    reasons: dict[str, list[str]] = {}
    for operation, m in missing:
        if _vhe_cpp(records, operation, m) is None:
            reason = f"vhe.cpp {_vhe_missing(status, operation, m)}"
        else:
            reason = f"ours (`{params}`, batch {batch}) not in these results (deselected)"
        reasons.setdefault(reason, []).append(f"{_name(operation)} m = {m}")
    parts = []
    for reason, cases in reasons.items():
        shown = ", ".join(cases[:3]) + (f" and {len(cases) - 3} more" if len(cases) > 3 else "")
        parts.append(f"{shown}: {reason}")
    return "; ".join(parts)


def _vhe_target(
    target: ref.Target, records: Sequence[BenchRecord], status: Mapping[str, Any] | None
) -> TargetResult:
    batch = 1 if target.key == "vhe-1" else 256
    sizes = {"vhe-256-large": (16, 64, 256), "vhe-256-m4": (4,), "vhe-1": (4, 16, 64, 256)}
    found, missing = _vhe_pairs(records, "vhe", batch, sizes[target.key])
    missing_text = _missing_text(missing, records, status, "vhe", batch) if missing else ""
    if not found:
        return TargetResult(target, None, "", missing_text)
    worst = min(found, key=lambda item: item[2])
    best = max(found, key=lambda item: item[2])
    below = [f for f in found if not target.met(f[2])]
    detail = (
        f"worst: {_name(worst[0])} m = {worst[1]}; best: {_name(best[0])} m = {best[1]} "
        f"({_ratio_text(best[2])}); {len(found) - len(below)} of {len(found)} cases meet it"
    )
    return TargetResult(target, worst[2], detail, missing_text)


def _batching_target(target: ref.Target, records: Sequence[BenchRecord]) -> TargetResult:
    found = []
    for m in VHE_COMPARED["dot"]:
        one = _ours(records, "dot", m, "vhe", 1)
        many = _ours(records, "dot", m, "vhe", 256)
        if one and many:
            found.append((m, one.per_item / many.per_item, one, many))
    if not found:
        return TargetResult(
            target, None, "", "no `vhe` inner products at batch 1 and 256 in these results"
        )
    m, ratio, one, many = min(found, key=lambda item: item[1])
    detail = (
        f"worst: m = {m}, {fmt_time(one.per_item)} per vector at batch 1 vs "
        f"{fmt_time(many.per_item)} at batch 256"
    )
    return TargetResult(target, ratio, detail)


def _temporaries(record: BenchRecord) -> float | None:
    """Bytes allocated beyond the output at the peak, divided by the output's size."""
    peak, out = record.extra.get("peak_bytes"), record.extra.get("output_bytes")
    if not isinstance(peak, int | float) or not isinstance(out, int | float) or out <= 0:
        return None
    return max(0.0, float(peak) - float(out)) / float(out)


def _memory_records(records: Sequence[BenchRecord]) -> list[BenchRecord]:
    """Our measurements in the memory target's scope: batch 256 operations and key generation."""
    chosen = []
    for r in records:
        if not (_on_cpu(r) and r.encrypted and _temporaries(r) is not None):
            continue
        if (r.kind == "scheme-op" and r.batch == 256) or r.kind == "keygen":
            chosen.append(r)
    return chosen


def _memory_target(target: ref.Target, records: Sequence[BenchRecord]) -> TargetResult:
    chosen = _memory_records(records)
    if not chosen:
        return TargetResult(
            target, None, "", "no peak_bytes/output_bytes in these results (older suite)"
        )
    ratios = [(r, _temporaries(r) or 0.0) for r in chosen]
    worst, ratio = max(ratios, key=lambda item: item[1])
    within = sum(1 for _, value in ratios if target.met(value))
    detail = (
        f"worst: {_name(worst.operation)} `{worst.params}` m = {worst.m}"
        + (f", batch {worst.batch}" if worst.kind == "scheme-op" else "")
        + f" ({fmt_bytes(worst.extra.get('peak_bytes'))} peak for a "
        f"{fmt_bytes(worst.extra.get('output_bytes'))} output); {within} of {len(ratios)} "
        "operations within"
    )
    return TargetResult(target, ratio, detail)


# ------------------------------------------------------------------------- the secure path
def _reference(record: BenchRecord, key: str = "reference") -> Mapping[str, Any] | None:
    """The reference timed interleaved with ``record`` (``extra_info.reference``, or ``key``:
    ``hand_written`` for the same workload written by hand on TenSEAL), if valid."""
    found = record.extra.get(key)
    if not isinstance(found, Mapping):
        return None
    median, items = _fraction(found.get("median")), _fraction(found.get("items", 1))
    return found if median and items and median > 0 and items > 0 else None


def _reference_per_item(record: BenchRecord, key: str = "reference") -> float | None:
    found = _reference(record, key)
    return None if found is None else float(found["median"]) / float(found["items"])


def _secure_security(info: Mapping[str, Any]) -> str:
    """``128-bit: `n16384`, N = 16384, 434 of 438 bits`` (the HE Standard's bound for N)."""
    name = str(info.get("params") or "")
    label = f"`{name}`, " if name and name != "TenSEAL" else ""
    moduli = info.get("moduli")
    primes = f" [{', '.join(map(str, moduli))}]" if isinstance(moduli, list) else ""
    return (
        f"{info.get('security', 'unknown')}: {label}N = {info.get('ring', '?')}, "
        f"{info.get('modulus_bits', '?')} of {info.get('max_modulus_bits', '?')} bits{primes}"
    )


def _fraction(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _count(value: object, digits: str = ",.0f") -> str:
    """A recorded number for the page (``?`` where the results lack it)."""
    number = _fraction(value)
    return "?" if number is None else format(number, digits)


def _secure_xor(target: ref.Target, records: Sequence[BenchRecord]) -> TargetResult:
    found = _one(records, "secure", target="xor")
    if found is None:
        return TargetResult(target, None, "", SECURE_MISSING.format(what="secure XOR case"))
    product = _reference_per_item(found)
    detail = f"{fmt_time(found.per_item)} per iteration"
    if product is not None:
        detail += (
            f" = {found.per_item / product:.3g} TenSEAL ciphertext products "
            f"({fmt_time(product)} each, this run)"
        )
    seeds = found.extra.get("learned_seeds")
    if seeds is not None:
        detail += f"; learning XOR for 10 seeds (300 iterations each): {seeds}"
    missing = "" if product is not None else "no TenSEAL product timed in the same run"
    return TargetResult(target, found.per_item, detail, missing)


def _secure_sentiment(target: ref.Target, records: Sequence[BenchRecord]) -> TargetResult:
    found = _one(records, "secure", target="sentiment")
    if found is None:
        return TargetResult(target, None, "", SECURE_MISSING.format(what="secure sentiment case"))
    encrypted = _fraction(found.extra.get("encrypted_accuracy"))
    plain = _fraction(found.extra.get("plain_accuracy"))
    detail = f"speed on {found.extra.get('subset', 'a subset of the training set')}"
    if encrypted is None or plain is None:
        return TargetResult(target, found.items_per_second, detail, "no held-out accuracy")
    gap = abs(encrypted - plain)
    detail += (
        f"; held-out accuracy {encrypted:.1%} encrypted vs {plain:.1%} unencrypted "
        f"({100 * gap:.1f} points apart)"
    )
    trained = _fraction(found.extra.get("accuracy_train_reviews"))
    full = _fraction(found.extra.get("train_reviews"))
    if trained is not None and full is not None:
        detail += f"; both trained on {trained:,.0f} of {full:,.0f} training reviews"
    missing = ""
    if trained is None or full is None or trained < full:
        missing = (
            f"accuracy after {_count(trained)} of {_count(full)} training reviews, not the "
            "full training set"
        )
        if full:
            minutes = full / found.items_per_second / 60
            missing += f" (about {minutes:,.0f} min of encrypted training at this rate)"
    failed = "" if gap <= SECURE_ACCURACY_GAP + 1e-12 else "accuracy gap"
    return TargetResult(target, found.items_per_second, detail, missing, failed)


def _logistic_batch(record: BenchRecord) -> str:
    batch = record.extra.get("batch")
    return f"mini-batch {batch}" if batch not in (None, 1) else "per-sample SGD"


def _secure_logistic(target: ref.Target, records: Sequence[BenchRecord]) -> TargetResult:
    found = _one(records, "secure", target="logistic")
    if found is None:
        return TargetResult(
            target, None, "", SECURE_MISSING.format(what="secure logistic-regression case")
        )
    theirs = _reference_per_item(found)
    if theirs is None:
        return TargetResult(target, None, "", "no hand-written TenSEAL timing in the same run")
    detail = (
        f"{fmt_rate(found.items_per_second)} samples/s ({_logistic_batch(found)}) vs "
        f"{fmt_rate(1 / theirs)} samples/s for TenSEAL by hand (per-sample SGD; same ring and "
        "moduli, interleaved)"
    )
    per_sample = found.extra.get("per_sample")
    if isinstance(per_sample, Mapping) and per_sample.get("median") and per_sample.get("items"):
        ours_single = float(per_sample["median"]) / float(per_sample["items"])
        detail += (
            f"; ours per-sample {fmt_rate(1 / ours_single)} samples/s "
            f"({_ratio_text(theirs / ours_single)})"
        )
    batched = _fraction(found.extra.get("batched_accuracy"))
    single = _fraction(found.extra.get("per_sample_accuracy"))
    failed = ""
    if batched is not None and single is not None:
        detail += (
            f"; held-out accuracy after one epoch: {batched:.1%} ({_logistic_batch(found)}) vs "
            f"{single:.1%} (per-sample)"
        )
        if batched < single - SECURE_ACCURACY_GAP - 1e-12:
            failed = "accuracy gap"
    return TargetResult(target, theirs / found.per_item, detail, failed=failed)


def _secure_keys(target: ref.Target, records: Sequence[BenchRecord]) -> TargetResult:
    sizes: dict[str, float] = {}
    for model in SECURE_KEY_MODELS:
        found = _one(records, "secure", target="keys", model=model)
        size = _fraction(found.extra.get("public_bytes")) if found else None
        if size is not None:
            sizes[model] = size
    absent = [model for model in SECURE_KEY_MODELS if model not in sizes]
    missing = (
        SECURE_MISSING.format(what=f"public keys for {' and '.join(absent)}") if absent else ""
    )
    if not sizes:
        return TargetResult(target, None, "", missing)
    detail = "; ".join(f"{model}: {_megabytes(size)}" for model, size in sizes.items())
    return TargetResult(target, max(sizes.values()), f"largest of {detail}", missing)


def _secure_targets(records: Sequence[BenchRecord]) -> list[TargetResult]:
    """The secure-path targets, each from this run's ``kind="secure"`` records only."""
    evaluate = {
        "secure-xor": _secure_xor,
        "secure-sentiment": _secure_sentiment,
        "secure-logistic": _secure_logistic,
        "secure-keys": _secure_keys,
    }
    return [evaluate[target.key](target, records) for target in SECURE_TARGETS]


def evaluate_targets(runs: Sequence[BenchRun]) -> list[TargetResult]:
    """Each target of the headline table with its measured ratio, from ``runs`` only."""
    records = _records(runs)
    status = _vhe_status(runs)
    results = []
    for target in ref.TARGETS:
        if target.key.startswith("vhe-"):
            results.append(_vhe_target(target, records, status))
        elif target.key == "dot-batching":
            results.append(_batching_target(target, records))
        elif target.key == "memory":
            results.append(_memory_target(target, records))
        else:
            results.append(_model_target(target, [r for r in records if _on_cpu(r)]))
    return results + _secure_targets(records)


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
                ["integer-vector kernels", info.get("compiled_kernels") or "not recorded"],
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
        status = info.get("vhe_cpp") if isinstance(info, Mapping) else None
        if isinstance(status, Mapping):
            if status.get("built"):
                text = (
                    f"built in this run with {status.get('compiler_version') or 'a C++ compiler'}"
                )
                if status.get("ntl_version"):
                    text += f", NTL {status['ntl_version']}"
            else:
                text = f"not measured: {status.get('reason') or 'not built'}"
            rows.append(["vhe.cpp", text])
        commit = run.commit
        if commit.get("id"):
            dirty = " (uncommitted changes)" if commit.get("dirty") else ""
            rows.append(["commit", f"{str(commit['id'])[:12]}{dirty}"])
        rows.append(["results file", f"`{run.path.name}`"])
        parts.append(markdown_table(["", ""], rows, "ll"))
        parts.append("")
    parts.append(
        "Times are medians of repeated runs (pytest-benchmark), single-threaded unless the BLAS "
        "threads above say otherwise; vhe.cpp is single-threaded (NTL, GMP). The machine is "
        "shared, so expect some noise; every ratio compares measurements made in the same run, "
        "vhe.cpp's interleaved with ours at each vector length."
    )
    return "\n".join(parts) + "\n"


SECURITY_TEXT = """## Security of what is measured

**Every integer-vector parameter set (`default`, `seed`, `vhe`) is INSECURE**, and so is vhe.cpp:
the scheme has no modulus, so `round(c[:m] / w)` recovers the plaintext without the key, and the
public key leaks `T` (see [the scheme page](scheme.md)). Their numbers show what exact, vectorised
arithmetic costs, not what secure encryption costs. TenSEAL's CKKS configuration (N = 8192, a
200-bit coefficient modulus) gives **128-bit** security by the HE standard, and so does every row
of the secure-path section (the CKKS plugin and TenSEAL, each with its ring and moduli stated). The NumPy rows are
plaintext (no security). Each table states the security of each row.
"""


def _headline_section(runs: Sequence[BenchRun], plots: Mapping[str, str]) -> str:
    results = evaluate_targets(runs)
    rows = [
        [r.target.title, _goal(r.target), _measured(r.target, r.measured), r.detail, r.status]
        for r in results
    ]
    parts = [
        "## Headline: the speed targets\n",
        "Every ratio below comes from this one run: encrypted against the same network "
        "unencrypted, ours against vhe.cpp built and timed in the same run (interleaved with "
        "ours at each vector length, single-threaded), batch 256 against batch 1, and each "
        "operation's peak temporary memory against its output. vhe.cpp comparisons use the "
        "matched parameter set `vhe` (w = 2**40, bounds 1000, bits, k = 1, like vhe.cpp); the "
        "`default` set's ratios are in the vhe.cpp table below. *measured* is the worst case over "
        "the operations and sizes the target covers. All integer-vector figures are INSECURE; "
        "the secure-path rows (last) are CKKS at 128-bit, each ratio against TenSEAL timed in "
        "the same run (see the secure-path section).\n",
        markdown_table(["target", "goal", "measured", "where", "result"], rows, "lrrll"),
        "",
    ]
    # a run with GPU figures alone (the GPU section's) takes no part in the targets
    on_cpu = [run for run in runs if any(_on_cpu(r) for r in _records([run]))]
    if len(on_cpu) > 1:
        parts.append(
            f"These tables merge {len(on_cpu)} results files: a ratio between measurements from "
            "different files was not measured in one run (machine load and versions may "
            "differ). For the targets, use one `tox -e bench` run.\n"
        )
    unmet = [r.target.title for r in results if r.status == NOT_MET]
    if unmet:
        parts.append(f"Targets not met in this run: {len(unmet)} of {len(results)}.\n")
    bullets = _headline_ratios(_records(runs))
    if bullets:
        parts.append("**Ratios** (medians of this run):\n")
        parts.extend(f"- {line}" for line in bullets)
        parts.append("")
    parts.append(_link(plots, "ratio_vs_batch", "encrypted/unencrypted time against batch size"))
    return "\n".join(parts) + "\n"


def _secure_row_security(record: BenchRecord, key: str = "reference") -> str:
    text = f"ours {_secure_security(record.extra)}"
    theirs = _reference(record, key)
    if theirs is not None:
        text += f"; TenSEAL {_secure_security(theirs)}"
    return text


def _secure_section(records: Sequence[BenchRecord]) -> str:
    """The secure path: CKKS at 128-bit on the four targets, next to TenSEAL written by hand."""
    secure = _select(records, "secure")
    if not secure:
        return ""
    results = {r.target.key: r for r in _secure_targets(records)}
    rows: list[list[object]] = []
    notes: list[str] = []
    xor = _one(secure, "secure", target="xor")
    if xor is not None:
        product = _reference_per_item(xor)
        rows.append(
            [
                "XOR training iteration (3-4-1, batch 4, refreshes included)",
                f"{fmt_time(xor.per_item)} per iteration",
                f"{fmt_time(product)} per ciphertext product" if product else "not measured",
                f"{xor.per_item / product:.3g} products per iteration" if product else "—",
                _secure_row_security(xor),
                _goal(results["secure-xor"].target),
                results["secure-xor"].status,
            ]
        )
        error = _fraction(xor.extra.get("max_abs_error"))
        notes.append(
            f"XOR: `Sequential.mlp([3, 4, 1])`, cubic Taylor sigmoid, learning rate "
            f"{xor.extra.get('learning_rate', '?')}, the owner refreshing the weights in-process "
            f"(refreshes per iteration: {_count(xor.extra.get('refreshes_per_iteration'), '.2g')}"
            f"); iterations per timed call: {xor.items}, timed calls: {xor.rounds}"
            + (
                f"; predictions after {xor.extra.get('steps_checked')} iterations within "
                f"{error:.1e} of plaintext training"
                if error is not None
                else ""
            )
            + ". TenSEAL: one product of two full ciphertexts (multiply, relinearise, rescale), "
            "timed before each of our calls. Learning XOR for 10 seeds (300 iterations each): "
            f"{xor.extra.get('learned_seeds', 'not recorded')}."
        )
        by_hand = _reference(xor, "hand_written")
        by_hand_time = _reference_per_item(xor, "hand_written")
        if by_hand is not None and by_hand_time is not None:
            rows.append(
                [
                    "XOR training iteration, against the same iteration by hand on TenSEAL",
                    f"{fmt_time(xor.per_item)} per iteration",
                    f"{fmt_time(by_hand_time)} per iteration",
                    f"{_ratio_text(by_hand_time / xor.per_item)} faster",
                    _secure_row_security(xor, "hand_written"),
                    "—",
                    "—",
                ]
            )
            notes.append(
                "XOR by hand on TenSEAL (`HandWrittenTenSEALXor` in "
                "benchmarks/test_bench_secure.py): the same network, batch and learning rate on "
                "`ckks_vector` at our ring and moduli (a step is 11 levels deep: TenSEAL's usual "
                "40-bit primes do not fit it in 128-bit's bound), a vector per row of the first "
                "layer's weights, the batch's rows one after another with their gradients summed, "
                "the owner refreshing the weights by decrypt and encrypt after every iteration; "
                f"one iteration timed before each of our calls ({by_hand.get('rounds', '?')} "
                "kept). Weights after its "
                f"{by_hand.get('steps_checked', '?')} iterations, largest difference from the "
                f"same training in plaintext: {_count(by_hand.get('max_abs_error'), '.1e')} "
                "(TenSEAL sets a rescaled ciphertext's scale to exactly 2**28, while the primes "
                "it divides by are up to 1.4 % below it; ours tracks the exact scale)."
            )
    sentiment = _one(secure, "secure", target="sentiment")
    if sentiment is not None:
        encrypted = _fraction(sentiment.extra.get("encrypted_accuracy"))
        plain = _fraction(sentiment.extra.get("plain_accuracy"))
        accuracy = (
            f"; held-out accuracy {encrypted:.1%} (unencrypted {plain:.1%})"
            if encrypted is not None and plain is not None
            else ""
        )
        by_hand = _reference(sentiment, "hand_written")
        per_review = _reference_per_item(sentiment, "hand_written")
        rows.append(
            [
                f"Sentiment training, batch {sentiment.extra.get('batch', '?')}, vocabulary "
                f"{_count(sentiment.extra.get('vocabulary'))}; TenSEAL by hand per review",
                f"{fmt_rate(sentiment.items_per_second)} reviews/s{accuracy}",
                f"{fmt_rate(1 / per_review)} reviews/s" if per_review else "not measured",
                f"{_ratio_text(per_review * sentiment.items_per_second)} the reviews/s"
                if per_review
                else "—",
                _secure_row_security(sentiment, "hand_written"),
                f"{_goal(results['secure-sentiment'].target)}, accuracy within "
                f"{100 * SECURE_ACCURACY_GAP:g} point",
                results["secure-sentiment"].status,
            ]
        )
        notes.append(
            f"Sentiment (rt-polarity, {_count(sentiment.extra.get('train_reviews'))} training and "
            f"{_count(sentiment.extra.get('test_reviews'))} held-out reviews, bag-of-words network "
            f"with 8 hidden units, learning rate {sentiment.extra.get('learning_rate', '?')}): "
            f"speed on {sentiment.extra.get('subset', '?')}"
            + (f"; keys {sentiment.extra['keys']}" if sentiment.extra.get("keys") else "")
            + f"; accuracy: {sentiment.extra.get('accuracy_run', 'not recorded')}."
            + (
                " TenSEAL by hand (`HandWrittenTenSEALSentiment` in "
                "benchmarks/test_bench_secure.py): the same network and learning rate by "
                "per-review SGD on `ckks_vector` at our ring and moduli, the word table as one "
                "vector per hidden unit (its column over the vocabulary: each hidden unit a dot "
                "product with the review's bag of words), the owner refreshing every weight by "
                "decrypt and encrypt after each review; "
                f"{by_hand.get('calls_per_round', '?')} reviews timed before our epoch; weights "
                "after them, largest difference from the same SGD in plaintext: "
                f"{_count(by_hand.get('max_abs_error'), '.1e')}."
                if by_hand is not None
                else ""
            )
            + (
                f" {results['secure-sentiment'].missing[0].upper()}"
                f"{results['secure-sentiment'].missing[1:]}."
                if results["secure-sentiment"].missing
                else ""
            )
        )
    logistic = _one(secure, "secure", target="logistic")
    if logistic is not None:
        theirs = _reference_per_item(logistic)
        rows.append(
            [
                f"Logistic regression, breast_cancer, ours {_logistic_batch(logistic)}, "
                "TenSEAL per-sample SGD",
                f"{fmt_rate(logistic.items_per_second)} samples/s",
                f"{fmt_rate(1 / theirs)} samples/s" if theirs else "not measured",
                f"{_ratio_text(theirs / logistic.per_item)} the samples/s" if theirs else "—",
                _secure_row_security(logistic),
                _goal(results["secure-logistic"].target),
                results["secure-logistic"].status,
            ]
        )
        reference = _reference(logistic) or {}
        notes.append(
            f"Logistic regression: {logistic.extra.get('features', '?')} standardised features, "
            f"plain samples, encrypted weights, sigmoid `{logistic.extra.get('sigmoid', '?')}`, "
            "squared error. Ours: `Sequential.mlp([30, 1]).fit(batch_size="
            f"{logistic.extra.get('batch', 1)})`, learning rate "
            f"{logistic.extra.get('learning_rate', '?')}, the batch packed into the slots and "
            "the summed gradient applied once per batch, refreshing as the plugin decides "
            f"(refreshes per sample: {_count(logistic.extra.get('refreshes_per_sample'), '.2g')}"
            "); TenSEAL written by hand on `ckks_vector` (`HandWrittenTenSEAL` in "
            "benchmarks/test_bench_secure.py): per-sample SGD, learning rate "
            f"{logistic.extra.get('per_sample_learning_rate', '?')}, refreshing by decrypt and "
            f"encrypt after every step, {reference.get('items', '?')} samples per timed call; "
            "ours at batch 1 (the same arithmetic as TenSEAL's) timed in the same rounds. "
            "Alternating: TenSEAL, ours at batch 1, ours in batches. Weights after the run, "
            f"largest difference from the same SGD in plaintext: ours {_error(logistic)}, "
            f"TenSEAL {_count(reference.get('max_abs_error'), '.1e')}. Held-out accuracy: "
            f"{logistic.extra.get('accuracy_run', 'not recorded')}."
        )
    for model in SECURE_KEY_MODELS:
        keys = _one(secure, "secure", target="keys", model=model)
        if keys is None:
            continue
        size = _fraction(keys.extra.get("public_bytes"))
        steps = keys.extra.get("rotations")
        rotation = (
            f"; rotation steps {', '.join(map(str, steps))}" if isinstance(steps, list) else ""
        )
        within = size is not None and results["secure-keys"].target.met(size)
        by_hand = _reference(keys, "hand_written")
        theirs = None if by_hand is None else _fraction(by_hand.get("public_bytes"))
        rows.append(
            [
                f"Public keys for {model} (batch {keys.extra.get('batch', '?')}{rotation})",
                f"{_megabytes(size)}, made in {fmt_time(keys.median)}",
                f"{_megabytes(theirs)}, made in {fmt_time(float(by_hand['median']))}"
                if by_hand is not None and theirs
                else "—",
                f"{_ratio_text(theirs / size)} smaller" if theirs and size else "—",
                _secure_row_security(keys, "hand_written"),
                _goal(results["secure-keys"].target),
                "within" if within else "**over**",
            ]
        )
        notes.append(
            f"Keys for {model}: the public key file of `{keys.extra.get('command')}`"
            + (
                "; TenSEAL: a context at the same ring and moduli with the public, "
                "relinearisation and rotation keys its `ckks_vector` operations need "
                "(`generate_galois_keys()` makes a key for every power-of-two step both ways; "
                "it cannot be told which), serialised without the secret key."
                if by_hand is not None
                else "."
            )
        )
    text = [
        "## Secure path: CKKS at 128-bit, against TenSEAL written by hand\n",
        'The CKKS plugin through the public API (`hennframework.get_scheme("ckks")`, '
        "`Sequential.fit`, the owner workflow's key generation), so these figures are what the "
        "plugin did in this run. Every row runs at **128-bit** classical security by the "
        "HomomorphicEncryption.org standard (total coefficient-modulus bits within its bound "
        "for the ring dimension N, ternary secret); the security column gives each side's ring "
        "and moduli. Each TenSEAL figure was measured in the same run, alternating with ours "
        "(TenSEAL, ours, TenSEAL, ours ...), so the ratios are like for like. The headline "
        "table above checks the four targets.\n",
        markdown_table(
            "case | ours (CKKS plugin) | TenSEAL by hand, same run | ours against TenSEAL | "
            "security | goal | result",
            rows,
            "lrrrlll",
        ),
        "",
        "**What was run.**\n",
        *(f"- {note}" for note in notes),
        "",
    ]
    return "\n".join(text) + "\n"


def _headline_ratios(all_records: Sequence[BenchRecord]) -> list[str]:
    records = [r for r in all_records if _on_cpu(r)]
    lines: list[str] = []
    xor_enc = _one(records, "model", operation="XOR training", encrypted=True)
    xor_plain = _one(records, "model", operation="XOR training", encrypted=False)
    if xor_enc and xor_plain:
        lines.append(
            f"XOR training: {fmt_time(xor_enc.per_item)} per iteration encrypted vs "
            f"{fmt_time(xor_plain.per_item)} unencrypted: encryption costs "
            f"{fmt_ratio(xor_enc.per_item / xor_plain.per_item)}."
        )
    for batch in SENTIMENT_BATCHES:
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
    for params in ("vhe", "default"):
        for batch in (1, 256):
            found, _ = _vhe_pairs(all_records, params, batch, (4, 16, 64, 256))
            if not found:
                continue
            ratios = [ratio for _, _, ratio in found]
            geo = math.exp(sum(math.log(v) for v in ratios) / len(ratios))
            lines.append(
                f"Against vhe.cpp measured in this run, `{params}` set at batch {batch}, "
                f"{len(ratios)} operation/size pairs: {_ratio_text(min(ratios))} to "
                f"{_ratio_text(max(ratios))} per vector (vhe.cpp time / ours), geometric mean "
                f"{_ratio_text(geo)}."
            )
    return lines


def _vhe_section(runs: Sequence[BenchRun], plots: Mapping[str, str]) -> str:
    records = _records(runs)
    status = _vhe_status(runs)
    references = _select(records, "reference", implementation="vhe.cpp")
    ours_any = [r for r in records if r.extra.get("compared_with") == "vhe.cpp" and _on_cpu(r)]
    if not references and not ours_any:
        return ""
    text = ["## Against vhe.cpp, measured in the same run\n"]
    if status is not None and status.get("built"):
        parameters = status.get("parameters") or {}
        peaks = status.get("peak_rss_bytes") or {}
        peak_text = ", ".join(f"m = {m}: {fmt_bytes(v)}" for m, v in peaks.items())
        text.append(
            "vhe.cpp (Yu, Lai, Payor; C++ on NTL big integers) was compiled unmodified into our "
            "timing driver (`benchmarks/vhe_driver/driver.cpp`) with "
            f"`{status.get('display_command') or status.get('command') or '?'}` "
            f"({status.get('compiler_version') or 'compiler version unknown'}, NTL "
            f"{status.get('ntl_version', '?')}) and run "
            "before our cases at each vector length. Its parameters: w = 2**"
            f"{parameters.get('w_bits', 40)}, T, A and E uniform on [0, "
            f"{int(parameters.get('t_bound', 1000)) - 1}], l = {parameters.get('l', 100)} bits "
            "per entry, k = 1 (T is m x 1), no modulus; one vector per call, keys built "
            "beforehand (its `encrypt()` rebuilds the key each call: the driver times the key "
            "switch from the identity instead); its inner product puts x.y in all m slots "
            "(ours: one). Times are vhe.cpp's own per-call medians (std::chrono in the driver). "
            f"Peak memory of the driver per vector length: {peak_text or '—'}.\n"
        )
    else:
        reason = _vhe_missing(status, "encrypt", 16)
        text.append(f"vhe.cpp was **not measured** in this run: {reason}.\n")
    text.append(
        "Ours: the matched set `vhe` (w = 2**40, entries of T, A, E uniform on [-1000, 1000], "
        "bits, k = 1) and `default` (w = 2**40, bounds 4, base-2**8 digits), NumPy backend, one "
        "BLAS thread; our inner-product keys are made from the operating system's CSPRNG, as a "
        "key holder makes them (a seed's SHAKE-256 stream is for reproducible tests only). *×* = "
        "vhe.cpp's time / ours per vector (above 1: ours is faster). The last column quotes "
        "vhe.cpp from the notes for context only; no ratio uses it. vhe.cpp's own times vary "
        "between runs on this shared machine (nearly 2x for the same operation), so a "
        "ratio near its goal can be met in one run and missed in the next.\n"
    )
    rows: list[list[object]] = []
    for operation, sizes in VHE_COMPARED.items():
        for m in sizes:
            theirs = _vhe_cpp(records, operation, m)
            if theirs is None and not any(
                _ours(records, operation, m, params, batch)
                for params in ("vhe", "default")
                for batch in (1, 256)
            ):
                continue  # neither side ran at this size (deselected)
            row: list[object] = [
                _name(operation),
                m,
                fmt_time(theirs.per_item) if theirs else "not measured",
            ]
            for params in ("vhe", "default"):
                for batch in (1, 256):
                    if operation == "dot_keygen" and batch == 256:
                        continue
                    ours = _ours(records, operation, m, params, batch)
                    row.append(fmt_time(ours.per_item) if ours else "—")
                    row.append(
                        _ratio_text(_speedup(theirs.per_item, ours.per_item))
                        if ours and theirs
                        else "—"
                    )
                if operation == "dot_keygen":
                    row += ["(one key)", ""]
            notes = ref.VHE_CPP_NOTES_MS.get((operation, m))
            row.append(fmt_time(notes / 1000) if notes else "—")
            rows.append(row)
    text += [
        markdown_table(
            "operation | m | vhe.cpp (this run) | `vhe` batch 1 | × | "
            "`vhe` batch 256, per vector | × | `default` batch 1 | × | "
            "`default` batch 256, per vector | × | vhe.cpp (notes, for context)",
            rows,
            "lrrrrrrrrrrr",
        ),
        "",
    ]
    if status is not None and status.get("skipped"):
        skipped = status["skipped"]
        text.append(
            "Skipped in this run: "
            + "; ".join(f"{case}: {reason}" for case, reason in skipped.items())
            + ".\n"
        )
    text.append(_link(plots, "vhe_speedup", "speed-up over vhe.cpp against m"))
    return "\n".join(text) + "\n"


def _scheme_section(records: Sequence[BenchRecord], plots: Mapping[str, str]) -> str:
    ops = [r for r in _select(records, "scheme-op") if _on_cpu(r)]
    if not ops:
        return ""
    plain = {(r.operation, r.m, r.batch): r for r in ops if not r.encrypted}
    rows: list[list[object]] = []
    ordered = sorted(
        (r for r in ops if r.encrypted),
        key=lambda r: (_op_index(r.operation), _params_key(r.params), r.m or 0, r.batch or 0),
    )
    for r in ordered:
        base = plain.get((r.operation, r.m, r.batch))
        theirs = _vhe_cpp(records, r.operation, r.m or 0)
        seed_ms = ref.SEED_MS.get((r.operation, r.m or 0))
        rows.append(
            [
                _name(r.operation),
                f"`{r.params}`",
                r.security,
                r.m,
                r.batch,
                fmt_time(r.median),
                fmt_time(r.per_item),
                fmt_rate(r.items_per_second),
                fmt_ratio(r.per_item / base.per_item) if base else "—",
                _ratio_text(_speedup(theirs.per_item, r.per_item)) if theirs else "—",
                fmt_ratio(_speedup(seed_ms / 1000, r.per_item)) if seed_ms else "—",
            ]
        )
    text = [
        "## Scheme operations\n",
        "One call on a batch of `batch` m-vectors; *per vector* is the call time divided by the "
        "batch (the amortised cost), *vectors/s* its inverse. *vs NumPy* is how many times "
        "slower than the same operation on plaintext (NumPy int64/float64 on the same batch; "
        "encryption and decryption have no plaintext counterpart). *vs vhe.cpp* divides "
        "vhe.cpp's time measured in this run by ours per vector. *vs 2017 notebook* quotes "
        f"its times from the notes, for context only ({ref.SOURCES['seed']}). Key switch goes "
        "between two key sets; the linear transform uses a random G with entries in [-2, 2]; "
        "the inner product is x.y (H = I).\n",
        markdown_table(
            "operation | params | security | m | batch | per call | per vector | vectors/s | "
            "vs NumPy | vs vhe.cpp (this run) | vs 2017 notebook (notes, for context)",
            rows,
            "lllrrrrrrrr",
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
            theirs = _vhe_cpp(records, r.operation, r.m or 0)
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
                    fmt_time(theirs.per_item) if theirs else "—",
                    _ratio_text(_speedup(theirs.per_item, r.median)) if theirs else "—",
                ]
            )
        text += [
            "### Key generation (owner side)\n",
            markdown_table(
                "key | params | security | m | time | key size | vhe.cpp (this run) | vs vhe.cpp",
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
        key=lambda r: (r.backend, _op_index(r.operation), r.m or 0, r.batch or 0),
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
            "operation | backend | params | security | m | batch | per call | per vector | "
            "vectors/s | vs CPU (batch 256)",
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
            f"GPU target: {fmt_rate(goal)} {r.unit}s per second at m = {r.m}, batch "
            f"{r.batch:,}: measured **{fmt_rate(r.items_per_second)}/s** "
            f"({MET if met else NOT_MET}).\n"
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
    for batch in SENTIMENT_BATCHES:
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
        "weights, same seed and initial weights. XOR: the 2017 post's 3-4-1 network (cubic "
        "sigmoid, learning rate 0.015, the 4 rows as one batch), one training run continued "
        "across rounds (owner refreshes included when due). Sentiment: rt-polarity interleaved, "
        "last 1,000 held out, vocabulary from the training part, one epoch over the first 2,000 "
        "training reviews (256 for the encrypted batch-1 run) from fresh weights, learning rate "
        "0.1, 8 hidden units, at batch sizes "
        f"{', '.join(str(b) for b in SENTIMENT_BATCHES)}; *tuned* (where a run recorded it) is a "
        "hand-tuned per-review NumPy implementation of the same network (quoted at "
        f"~{fmt_rate(ref.UNENCRYPTED_REFERENCE_REVIEWS_PER_SECOND)} reviews/s at batch 1 on the "
        "full set). *vs 2017 notebook*: speed-up over its "
        f"{ref.SEED_REVIEWS_PER_SECOND:g} reviews/s (notes, for context).\n",
        markdown_table(
            "workload | batch | encrypted | unencrypted | encryption costs | vs 2017 notebook",
            rows,
            "lrrrrr",
        ),
        "",
        _link(plots, "models", "encrypted and unencrypted model throughput"),
    ]
    return "\n".join(text) + "\n"


def _memory_section(runs: Sequence[BenchRun], plots: Mapping[str, str]) -> str:
    records = _records(runs)
    compared = [r for r in records if r.extra.get("compared_with") == "vhe.cpp" and _on_cpu(r)]
    references = _select(records, "reference", implementation="vhe.cpp")
    chosen = _memory_records(records)
    if not compared and not references and not chosen:
        return ""
    text = ["## Memory\n"]
    size_rows: list[list[object]] = []
    for params in ("vhe", "default", "vhe.cpp"):
        sizes = sorted({r.m for r in compared + references if r.m})
        for m in sizes:
            row: list[object] = [f"`{params}`" if params != "vhe.cpp" else "vhe.cpp", m]
            found = False
            if params == "vhe.cpp":
                enc = _vhe_cpp(records, "encrypt", m)
                cipher = enc.extra.get("ciphertext_bytes") if enc else None
                row.append(fmt_bytes(cipher) if cipher else "—")
                for operation in ("encrypt", "key_switch", "linear_transform", "dot"):
                    theirs = _vhe_cpp(records, operation, m)
                    found = found or theirs is not None
                    row.append(fmt_bytes(theirs.extra.get("key_bytes")) if theirs else "—")
            else:
                enc = _ours(records, "encrypt", m, params, 256)
                # the coefficients (older results: the output, which was only those)
                out = (
                    enc.extra.get("coefficient_bytes", enc.extra.get("output_bytes"))
                    if enc
                    else None
                )
                per = (
                    float(out) / (enc.batch or 1) if enc and isinstance(out, int | float) else None
                )
                row.append(fmt_bytes(per))
                for operation in ("encrypt", "key_switch", "linear_transform", "dot"):
                    ours = _ours(records, operation, m, params, 256) or _ours(
                        records, operation, m, params, 1
                    )
                    found = found or ours is not None
                    row.append(fmt_bytes(ours.extra.get("key_bytes")) if ours else "—")
            if found:
                size_rows.append(row)
    if size_rows:
        text += [
            "### Key and ciphertext sizes per parameter set\n",
            "One ciphertext of an m-vector, and the key each operation uses (for the key "
            "switch: between two key sets; linear: one m x m matrix; inner product: H = I). "
            "Ours: int64 arrays (`nbytes`; a ciphertext's coefficients, without the three "
            "noise-bound floats it also carries). vhe.cpp: the bytes of NTL's big-integer "
            "magnitudes "
            "(a lower bound: each entry also has a header and a pointer).\n",
            markdown_table(
                "params | m | ciphertext | encryption key | switch key | linear key | "
                "inner-product key",
                size_rows,
                "lrrrrrr",
            ),
            "",
        ]
    if chosen:
        rows: list[list[object]] = []
        ordered = sorted(
            chosen,
            key=lambda r: (_op_index(r.operation), _params_key(r.params), r.m or 0),
        )
        for r in ordered:
            ratio = _temporaries(r)
            rows.append(
                [
                    _name(r.operation),
                    f"`{r.params}`",
                    r.m,
                    r.batch if r.kind == "scheme-op" else "—",
                    fmt_bytes(r.extra.get("output_bytes")),
                    fmt_bytes(r.extra.get("peak_bytes")),
                    _ratio_text(ratio),
                    "yes" if ratio is not None and ratio <= ref.MEMORY_TARGET else "**no**",
                    fmt_bytes(r.extra["kept_bytes"]) if "kept_bytes" in r.extra else "—",
                ]
            )
        text += [
            "### Temporary memory per operation\n",
            "Peak bytes allocated during one call (tracemalloc, which sees NumPy's array "
            "buffers and the compiled kernels' work buffers; measured outside the timed "
            "rounds, on the second call where the suite records *kept*), and the temporaries "
            "beyond the output as a multiple of the output's size (target: at most "
            f"{ref.MEMORY_TARGET:g}x). A ciphertext's output is its coefficients and the "
            "noise bounds it carries (three floats per vector). *kept*: what the first "
            "call built and kept for later calls (the digit plans a scheme keeps and the "
            "parts of a key it reads, held as long as the scheme and the key): not "
            "temporaries, and not in the peak. Batch 256 and key generation; at batch 1 fixed "
            "costs dominate tiny outputs.\n",
            markdown_table(
                "operation | params | m | batch | output | peak | temporaries / output | "
                f"within {ref.MEMORY_TARGET:g}x | kept (first call)",
                rows,
                "llrrrrrlr",
            ),
            "",
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
        "many times faster ours is. The last column quotes TenSEAL from the notes, for context "
        f"only: {ref.SOURCES['tenseal-notes']}.\n",
    ]
    if not have_tenseal:
        text.append(
            "TenSEAL was not measured in this run (not installed, or deselected), so only our "
            'side and NumPy are shown; `pip install "hennframework[ckks]"` to include it.\n'
        )
    text += [
        markdown_table(
            "workload | ours (INSECURE) | error | TenSEAL (128-bit) | error | TenSEAL / ours | "
            "NumPy (plaintext) | ours / NumPy | TenSEAL (notes, for context)",
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
        "the operation uses · peak memory of one call after a first one (tracemalloc) · noise "
        "budget left in the "
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
                "params | security | m | keygen time | encryption key | product key | "
                "inner-product key | linear key (m x m) | total | peak",
                rows,
                "llrrrrrrrr",
            ),
            "",
            _link(plots, "key_memory", "key sizes per parameter set"),
        ]
    return "\n".join(text) + "\n"


REPRODUCE = f"""## Reproducing

```sh
pip install -e ".[bench,ckks,sklearn]" -e plugins/ckks-tenseal  # benchmark tools, TenSEAL, the CKKS plugin
{INSTALL_HINT}   # vhe.cpp's compiler and NTL (Debian/Ubuntu)
tox -e bench                          # or: henn bench run
pytest benchmarks -k secure --benchmark-autosave --benchmark-storage=.benchmarks  # secure path alone
henn bench report                     # newest results under .benchmarks/ -> this page + plots
henn bench report --input .benchmarks --input benchmarks/results/gpu-nvidia-h200.json  # as tox: with the kept GPU run
pytest benchmarks --benchmark-compare # compare with the previous saved run
```

The suite builds vhe.cpp's driver (`benchmarks/vhe_driver/driver.cpp`, which includes
`../shared/reference/vhe-cpp/vhe.cpp` unmodified; set `HENN_VHE_CPP` to use another copy) into
`.benchmarks/vhe-build/` and skips the vhe.cpp cases, with the reason, when there is no compiler or
NTL. vhe.cpp's inner product at m = 64 needs about 10 GB of memory and half a minute for its key;
it is skipped, with the reason, where less memory is available. The benchmark sources are in
`benchmarks/` (one module per table); the targets and the figures quoted for context in
`hennframework/bench/references.py`.
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
        (
            f"Generated from {sources}. All numbers below are medians from that run unless a "
            "column says it quotes notes, for context.\n"
            if len(runs) == 1
            else f"Generated from {sources}, one run per file (see Machine). All numbers below "
            "are medians; every ratio compares figures of one run, except the GPU section's "
            "*vs CPU* column, which says so.\n"
        ),
    ]
    for note in notes:
        header.append(f"> {note}\n")
    sections = [
        "\n".join(header),
        SECURITY_TEXT,
        _machine_section(runs),
        _headline_section(runs, plots),
        _secure_section(records),
        _vhe_section(runs, plots),
        _scheme_section(records, plots),
        _gpu_section(records),
        _models_section(records, plots),
        _memory_section(runs, plots),
        _tenseal_section(records, plots),
        _scaling_section(records, plots),
        REPRODUCE,
    ]
    text = "\n".join(section for section in sections if section)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip() + "\n"


def write_report(inputs: Sequence[Path], out: Path | None, plots_dir: Path | None) -> Report:
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
        write_file(out, markdown)  # atomic: a failed write leaves the old page
    return Report(markdown, written, notes, [run.path for run in runs])
