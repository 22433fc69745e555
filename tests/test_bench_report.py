"""The benchmark report (hennframework.bench, `henn bench report`) and the vhe.cpp driver's side.

Built from small synthetic pytest-benchmark results files and driver outputs, so these tests time
nothing: every figure is made up, and the assertions check the report's arithmetic and wording
(target met / not met / not measured and why), the driver's JSON parser, and the build and run
helpers' error handling. One test builds and runs the real driver where g++ and NTL are present.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hennframework.bench import load_results, newest_result_file, write_report
from hennframework.bench.format import fmt_bytes, fmt_rate, fmt_ratio, fmt_time, markdown_table
from hennframework.bench.machine import describe_machine
from hennframework.bench.report import MET, NOT_MET, build_report, evaluate_targets
from hennframework.bench.vhecpp import (
    INSTALL_HINT,
    BuildOutcome,
    ReferenceRunError,
    build_driver,
    dot_memory_reason,
    find_vhe_source,
    parse_driver_output,
    run_driver,
)
from hennframework.cli import main
from hennframework.exceptions import DataFormatError, InputError

ROOT = Path(__file__).resolve().parents[1]
VHE_OPS = ("encrypt", "decrypt", "key_switch", "linear_transform", "dot", "dot_keygen")


# ----------------------------------------------------------------------- synthetic results
def _bench(name: str, median: float, **extra: Any) -> dict[str, Any]:
    stats = {"min": median, "max": median, "mean": median, "stddev": 0.0, "rounds": 5}
    stats.update({"median": median, "iqr": 0.0, "ops": 1 / median})
    return {"name": name, "group": None, "stats": stats, "extra_info": extra}


def _op(op: str, m: int, batch: int, median: float, params: str = "default", **more: Any) -> Any:
    encrypted = params != "plaintext"
    kind = "keygen" if op == "dot_keygen" else "scheme-op"
    return _bench(
        f"{op}-{params}-m{m}-b{batch}",
        median,
        kind=kind,
        operation=op,
        m=m,
        batch=batch,
        items=1 if kind == "keygen" else batch,
        params=params,
        security="INSECURE" if encrypted else "none (plaintext)",
        implementation="hennframework" if encrypted else "numpy",
        encrypted=encrypted,
        backend="numpy",
        **more,
    )


def _vhe_cpp(op: str, m: int, seconds: float) -> dict[str, Any]:
    """A vhe.cpp record as the suite writes it: harness time in stats, its own in extra_info."""
    entry = _bench(
        f"vhecpp-{op}-m{m}",
        0.5,  # the driver process: must not be what the report divides by
        kind="reference",
        operation=op,
        m=m,
        batch=1,
        items=1,
        params="vhe.cpp",
        security="INSECURE",
        implementation="vhe.cpp",
        encrypted=True,
        backend="",
        key_bytes=1000 * m,
        ciphertext_bytes=6 * (m + 1),
    )
    entry["extra_info"]["external_stats"] = {
        "median": seconds,
        "mean": seconds,
        "min": seconds,
        "max": seconds,
        "stddev": 0.0,
        "iqr": 0.0,
        "rounds": 7,
    }
    return entry


def _model(operation: str, batch: int, seconds: float, encrypted: bool, **more: Any) -> Any:
    items = 4 if operation == "XOR training" else 2000
    return _bench(
        f"{operation}-{batch}-{encrypted}",
        seconds,
        kind="model",
        operation=operation,
        batch=batch,
        items=items,
        unit="iteration" if operation == "XOR training" else "review",
        encrypted=encrypted,
        params="default" if encrypted else "plaintext",
        security="INSECURE" if encrypted else "none (plaintext)",
        reviews=items,
        **more,
    )


CKKS_SECURITY = {
    "params": "n16384",
    "ring": 16384,
    "moduli": [38, *[28] * 12, 60],
    "scale_bits": 28,
    "modulus_bits": 434,
    "max_modulus_bits": 438,
    "security": "128-bit",
}
PRODUCT_SECURITY = {
    **CKKS_SECURITY,
    "params": "TenSEAL",
    "moduli": [60, 40, 40, 40, 40, 60],
    "modulus_bits": 280,
    "scale_bits": 40,
}


def _secure_case(target: str, seconds: float, items: int, **extra: Any) -> dict[str, Any]:
    return _bench(
        f"secure-{target}-{extra.get('model', '')}",
        seconds * items,
        kind="secure",
        target=target,
        operation=target,
        implementation="hennframework",
        encrypted=True,
        backend="",
        items=items,
        **{**CKKS_SECURITY, **extra},
    )


def _reference(seconds: float, items: int = 1, **extra: Any) -> dict[str, Any]:
    """TenSEAL's side of a secure record: the plugin's security unless ``extra`` overrides it."""
    return {
        "implementation": "tenseal",
        "median": seconds * items,
        "items": items,
        **CKKS_SECURITY,
        **extra,
    }


def _secure(
    iteration: float = 0.05,
    product: float = 0.03,
    reviews_per_second: float = 250.0,
    accuracy: tuple[float, float] = (0.755, 0.75),
    trained: int = 9662,
    ours_sample: float = 0.01,
    theirs_sample: float = 0.05,
    logistic_accuracy: tuple[float, float] = (0.956, 0.947),
    key_mb: tuple[float, float] = (40.0, 60.0),
) -> list[dict[str, Any]]:
    """The secure-path records of one run (benchmarks/test_bench_secure.py); times in seconds."""
    return [
        _secure_case(
            "xor",
            iteration,
            1,
            unit="iteration",
            learned_seeds="not run by the bench",
            reference=_reference(product, **PRODUCT_SECURITY),
            hand_written=_reference(0.4, steps_checked=5, max_abs_error=4e-2, params="TenSEAL"),
        ),
        _secure_case(
            "sentiment",
            1 / reviews_per_second,
            64,
            unit="review",
            batch=256,
            learning_rate=0.05,
            vocabulary=1827,
            train_reviews=9662,
            test_reviews=1000,
            accuracy_train_reviews=trained,
            encrypted_accuracy=accuracy[0],
            plain_accuracy=accuracy[1],
            subset="the first 192 training reviews",
            hand_written=_reference(8.0, calls_per_round=2, max_abs_error=2e-4, params="TenSEAL"),
        ),
        _secure_case(
            "logistic",
            ours_sample,
            16,
            unit="sample",
            features=30,
            batch=16,
            learning_rate=0.8,
            per_sample_learning_rate=0.05,
            max_abs_error=2e-4,
            per_sample={"median": 2 * 4 * ours_sample, "items": 2},  # 4x slower at batch 1
            batched_accuracy=logistic_accuracy[0],
            per_sample_accuracy=logistic_accuracy[1],
            accuracy_run="one epoch on the first 455 samples",
            reference=_reference(theirs_sample, 2, max_abs_error=4e-4),
        ),
        *(
            _secure_case(
                "keys",
                10.0,
                1,
                model=model,
                batch=batch,
                public_bytes=int(mb * 1e6),
                rotations=[1, 2, 4, 8],
                command=f"henn keygen --scheme ckks --for {model}",
                hand_written=_reference(5.0, public_bytes=int(600e6), params="TenSEAL"),
            )
            for model, batch, mb in zip(("xor", "sentiment"), (4, 32), key_mb, strict=True)
        ),
    ]


def _document(
    speedup: float = 200.0,
    batch1_speedup: float = 2.0,
    slowdown: float = 5.0,
    temporaries: float = 3.0,
    vhe: bool = True,
    sizes: tuple[int, ...] = (4, 16, 64),
    secure: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One run: ours vs vhe.cpp at ``sizes`` (every op ``speedup``x faster at batch 256 and
    ``batch1_speedup``x at batch 1), models ``slowdown``x slower encrypted, temporaries
    ``temporaries`` times the output, and the secure path (``secure``, default: every target
    met)."""
    benchmarks: list[dict[str, Any]] = _secure() if secure is None else list(secure)
    for m in sizes:
        for op in VHE_OPS:
            theirs = 1e-4 * m
            if vhe:
                benchmarks.append(_vhe_cpp(op, m, theirs))
            for params in ("vhe", "default"):
                memory = {"output_bytes": 1000, "peak_bytes": int(1000 * (1 + temporaries))}
                if op == "dot_keygen":
                    benchmarks.append(
                        _op(op, m, 1, theirs / speedup, params, compared_with="vhe.cpp", **memory)
                    )
                    continue
                memory["kept_bytes"] = 3000  # what a first call keeps (plans, key parts)
                benchmarks.append(
                    _op(
                        op,
                        m,
                        1,
                        theirs / batch1_speedup,
                        params,
                        compared_with="vhe.cpp",
                        key_bytes=2000 * m,
                    )
                )
                benchmarks.append(
                    _op(
                        op,
                        m,
                        256,
                        256 * theirs / speedup,
                        params,
                        compared_with="vhe.cpp",
                        key_bytes=2000 * m,
                        **memory,
                    )
                )
    benchmarks.append(_op("linear_transform", 16, 256, 1e-5, params="plaintext"))
    plain_seconds = 0.01
    for batch in (1, 8, 32, 128, 256):
        benchmarks.append(
            _model("sentiment training", batch, plain_seconds * slowdown, True, variant="encrypted")
        )
        benchmarks.append(
            _model("sentiment training", batch, plain_seconds, False, variant="plain")
        )
    benchmarks.append(_model("XOR training", 4, 1e-3 * slowdown, True))
    benchmarks.append(_model("XOR training", 4, 1e-3, False))
    benchmarks += [
        _bench(
            "ts-ours",
            1e-4,
            kind="comparison",
            operation="add",
            implementation="hennframework",
            security="INSECURE",
            max_abs_error=1e-4,
        ),
        _bench(
            "ts-tenseal",
            4e-3,
            kind="comparison",
            operation="add",
            implementation="tenseal",
            security="128-bit",
            max_abs_error=1e-9,
        ),
        _bench(
            "scale",
            1e-3,
            kind="scaling",
            axis="w",
            value=40,
            operation="dot",
            m=16,
            batch=256,
            items=256,
            key_bytes=1000,
            peak_bytes=2000,
            noise_budget=14.6,
        ),
        _bench(
            "gpu",
            1e-3,
            kind="scheme-op",
            operation="dot",
            m=8,
            batch=100_000,
            items=100_000,
            params="default",
            security="INSECURE",
            backend="cupy",
            unit="inner product",
            target_per_second=10**6,
        ),
    ]
    machine = describe_machine()
    machine["vhe_cpp"] = (
        {
            "built": True,
            "reason": "",
            "compiler_version": "g++ 12.2.0",
            "display_command": "g++ -O3 -std=c++17 -I <folder of vhe.cpp> -o vhe_driver "
            "driver.cpp -lntl",
            "ntl_version": "11.5.1",
            "parameters": {"w_bits": 40, "l": 100, "t_bound": 1000},
            "peak_rss_bytes": {"4": 50_000_000},
            "skipped": {},
        }
        if vhe
        else {"built": False, "reason": f"NTL is not installed; install it: {INSTALL_HINT}"}
    )
    return {
        "machine_info": {"hennframework": machine},
        "commit_info": {},
        "benchmarks": benchmarks,
        "datetime": "x",
    }


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _targets(tmp_path: Path, document: dict[str, Any]) -> dict[str, Any]:
    runs = load_results(_write(tmp_path / "r.json", document))
    return {result.target.key: result for result in evaluate_targets(runs)}


# ------------------------------------------------------------------------------- the targets
def test_every_target_met(tmp_path: Path) -> None:
    document = _document(sizes=(4, 16, 64, 256))
    # the suite measures no inner product at m = 256: drop it from this run as well
    document["benchmarks"] = [
        b
        for b in document["benchmarks"]
        if not (
            b["extra_info"].get("m") == 256
            and str(b["extra_info"].get("operation", "")).startswith("dot")
        )
    ]
    # inner product: batch 256 costs 1/100 of batch 1 per vector here (200x vs 2x)
    results = _targets(tmp_path, document)
    assert {key: r.status for key, r in results.items()} == dict.fromkeys(results, MET)
    assert results["vhe-256-large"].measured == pytest.approx(200.0)
    assert results["vhe-1"].measured == pytest.approx(2.0)
    assert results["dot-batching"].measured == pytest.approx(100.0)
    assert results["sentiment-32"].measured == pytest.approx(5.0)
    assert results["memory"].measured == pytest.approx(3.0)
    assert results["sentiment-rate"].measured == pytest.approx(2000 / 0.05)
    text = build_report(load_results(tmp_path / "r.json"))
    assert NOT_MET not in text and "not measured" not in text.split("## Against vhe.cpp")[0]


def test_targets_not_met_show_the_measured_ratio_and_worst_case(tmp_path: Path) -> None:
    document = _document(speedup=50.0, batch1_speedup=0.5, slowdown=12.0, temporaries=4.5)
    results = _targets(tmp_path, document)
    assert results["vhe-256-large"].status == NOT_MET
    assert results["vhe-256-large"].measured == pytest.approx(50.0)
    assert results["vhe-256-m4"].status == MET  # 50x >= 30x at m = 4
    assert results["vhe-1"].status == NOT_MET and results["vhe-1"].measured == pytest.approx(0.5)
    assert results["dot-batching"].measured == pytest.approx(50 / 0.5)
    assert results["sentiment-32"].status == NOT_MET  # 12x > 10x
    assert results["sentiment-1"].status == MET  # 12x <= 25x
    assert results["memory"].status == NOT_MET
    text = build_report(load_results(tmp_path / "r.json"))
    row = next(line for line in text.splitlines() if "every operation at m >= 16" in line)
    assert "| >= 100x | 50x |" in row and row.endswith(f"| {NOT_MET} |")
    assert "0 of 12 cases meet it" in row  # 6 operations at m = 16 and 64


def test_one_slow_case_fails_the_target_and_is_named(tmp_path: Path) -> None:
    document = _document()
    for entry in document["benchmarks"]:
        info = entry["extra_info"]
        case = (info.get("operation"), info.get("m"), info.get("params"), info.get("batch"))
        if case == ("dot", 64, "vhe", 256):
            for key in ("median", "mean", "min"):
                entry["stats"][key] *= 4  # 200x -> 50x
    results = _targets(tmp_path, document)
    assert results["vhe-256-large"].status == NOT_MET
    assert results["vhe-256-large"].measured == pytest.approx(50.0)
    assert "worst: inner product m = 64" in results["vhe-256-large"].detail


def test_vhe_cpp_figures_come_from_its_own_stats_not_the_harness(tmp_path: Path) -> None:
    runs = load_results(_write(tmp_path / "r.json", _document()))
    record = next(r for r in runs[0].records if r.kind == "reference")
    assert record.median == pytest.approx(1e-4 * record.m)  # not the 0.5 s driver process
    text = build_report(runs)
    assert "| encrypt (public key) | 16 | 1.60 ms |" in text  # vhe.cpp this run, 1e-4 * 16


def test_missing_vhe_cpp_says_not_measured_with_the_reason(tmp_path: Path) -> None:
    results = _targets(tmp_path, _document(vhe=False))
    for key in ("vhe-256-large", "vhe-256-m4", "vhe-1"):
        assert results[key].measured is None
        assert (
            results[key].status == f"not measured: NTL is not installed; install it: {INSTALL_HINT}"
        )
    assert results["dot-batching"].status == MET  # ours only: still measured
    text = build_report(load_results(tmp_path / "r.json"))
    assert "vhe.cpp was **not measured** in this run: NTL is not installed" in text
    assert "| vhe.cpp | not measured: NTL is not installed" in text  # the machine table


def test_results_without_any_vhe_cpp_status(tmp_path: Path) -> None:
    document = _document(vhe=False)
    del document["machine_info"]["hennframework"]["vhe_cpp"]
    results = _targets(tmp_path, document)
    assert results["vhe-1"].status.startswith("not measured: these results have no vhe.cpp")
    assert INSTALL_HINT in results["vhe-1"].status


def test_partly_measured_target_is_not_reported_as_met(tmp_path: Path) -> None:
    document = _document(sizes=(4, 16))  # nothing at m = 64 or 256
    skipped = {"dot m=64": "needs about 11 GiB of memory and 3.0 GiB is available"}
    document["machine_info"]["hennframework"]["vhe_cpp"]["skipped"] = skipped
    results = _targets(tmp_path, document)
    large = results["vhe-256-large"]
    assert large.measured == pytest.approx(200.0)
    assert large.status.startswith("not measured in full: ")
    assert "vhe.cpp not in these results (deselected)" in large.status
    assert results["vhe-256-m4"].status == MET


def test_skipped_vhe_cpp_case_gives_its_own_reason(tmp_path: Path) -> None:
    document = _document(sizes=(4, 16, 64))
    document["benchmarks"] = [
        b
        for b in document["benchmarks"]
        if not (
            b["extra_info"].get("kind") == "reference"
            and b["extra_info"]["m"] == 64
            and b["extra_info"]["operation"] in ("dot", "dot_keygen")
        )
    ]
    reason = "vhe.cpp's inner product at m = 64 needs about 11 GiB of memory"
    document["machine_info"]["hennframework"]["vhe_cpp"]["skipped"] = {
        "dot m=64": reason,
        "dot_keygen m=64": reason,
    }
    results = _targets(tmp_path, document)
    assert reason in results["vhe-256-large"].status
    text = build_report(load_results(tmp_path / "r.json"))
    assert f"Skipped in this run: dot m=64: {reason}" in text


def test_missing_models_and_memory_say_what_to_run(tmp_path: Path) -> None:
    document = _document()
    document["benchmarks"] = [
        b
        for b in document["benchmarks"]
        if b["extra_info"].get("kind") != "model" and "peak_bytes" not in b["extra_info"]
    ]
    results = _targets(tmp_path, document)
    assert "rt-polarity" in results["sentiment-32"].status
    assert results["xor"].status.startswith("not measured: no encrypted and unencrypted XOR")
    assert results["memory"].status.startswith("not measured: no peak_bytes")


def test_report_tables_security_and_wording(tmp_path: Path) -> None:
    text = build_report(load_results(_write(tmp_path / "r.json", _document())))
    assert "INSECURE" in text and "128-bit" in text
    assert "| linear transform | `default` | INSECURE | 16 | 256 |" in text
    assert "40x" in text  # TenSEAL / ours on "add"
    assert "## GPU backends" in text and "GPU target" in text
    assert f"| CPU | {describe_machine()['cpu_model']} |" in text
    assert "vhe.cpp (notes, for context)" in text and "## Memory" in text
    # the memory table: a second call's peak, and what the first kept (none for a key's making)
    assert "| kept (first call) |" in text
    assert "| 2.93 KiB |" in text
    keygen_rows = [
        line for line in text.splitlines() if line.startswith("| inner-product key generation | `")
    ]
    assert keygen_rows and all(line.rstrip().endswith("| — |") for line in keygen_rows)
    assert "| `vhe` | 16 | 136 B |" not in text  # no encrypt ciphertext size in synthetic data
    assert INSTALL_HINT in text  # how to get NTL, on the page
    assert "issue" not in text.lower()


def test_merged_runs_are_flagged(tmp_path: Path) -> None:
    first = _write(tmp_path / "a" / "1.json", _document())
    second = _write(tmp_path / "b" / "2.json", _document())
    text = build_report(load_results([first, second]))
    assert "These tables merge 2 results files" in text
    assert "one run per file" in text


def test_a_gpu_run_merged_in_adds_its_section_without_flagging_the_targets(
    tmp_path: Path,
) -> None:
    document = _document()
    gpu_only = {
        **document,
        "benchmarks": [
            b for b in document["benchmarks"] if b["extra_info"].get("backend") == "cupy"
        ],
    }
    assert gpu_only["benchmarks"]  # the fixture has a GPU case
    first = _write(tmp_path / "a" / "1.json", document)
    second = _write(tmp_path / "b" / "gpu.json", gpu_only)
    text = build_report(load_results([first, second]))
    assert "These tables merge" not in text
    assert "one run per file" in text and "## GPU backends" in text


# ------------------------------------------------------------------------------ secure path
SECURE_KEYS = ("secure-xor", "secure-sentiment", "secure-logistic", "secure-keys")


def _secure_report(tmp_path: Path, secure: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    document = _document(secure=secure)
    results = _targets(tmp_path, document)
    return results, build_report(load_results(tmp_path / "r.json"))


def test_secure_targets_met_with_security_on_every_row(tmp_path: Path) -> None:
    results, text = _secure_report(tmp_path, _secure())
    assert {key: results[key].status for key in SECURE_KEYS} == dict.fromkeys(SECURE_KEYS, MET)
    assert results["secure-xor"].measured == pytest.approx(0.05)
    assert results["secure-sentiment"].measured == pytest.approx(250.0)
    assert results["secure-logistic"].measured == pytest.approx(5.0)  # 0.05 s vs 0.01 s a sample
    assert results["secure-keys"].measured == pytest.approx(60e6)  # the larger of the two
    assert (
        "50.0 ms per iteration = 1.67 TenSEAL ciphertext products" in results["secure-xor"].detail
    )
    section = text.split("## Secure path")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    # header, XOR against the product and against TenSEAL by hand, sentiment, logistic
    # regression, two key files
    assert len(rows) == 1 + 6
    ours = "ours 128-bit: `n16384`, N = 16384, 434 of 438 bits"
    assert all(ours in row for row in rows[1:])
    assert "TenSEAL 128-bit: N = 16384, 280 of 438 bits [60, 40, 40, 40, 40, 60]" in rows[1]
    assert "| 50.0 ms per iteration | 30.0 ms per ciphertext product | 1.67 products" in rows[1]
    assert "| 50.0 ms per iteration | 400 ms per iteration | 8x faster |" in rows[2]
    assert "TenSEAL 128-bit: N = 16384, 434 of 438 bits" in rows[2] and rows[2].endswith("| — |")
    assert rows[3].startswith("| Sentiment training, batch 256, vocabulary 1,827; TenSEAL by hand")
    assert (
        "| 250 reviews/s; held-out accuracy 75.5% (unencrypted 75.0%) | 0.125 reviews/s | "
        in (rows[3])
    )
    assert "| 2,000x the reviews/s |" in rows[3]
    assert "| 100 samples/s | 20.0 samples/s | 5x the samples/s |" in rows[4]
    assert "ours mini-batch 16, TenSEAL per-sample SGD" in rows[4]
    assert "largest difference from the same training in plaintext: 4.0e-02" in section
    assert "2 reviews timed before our epoch" in section
    logistic = results["secure-logistic"].detail
    assert "ours per-sample 25.0 samples/s (1.25x)" in logistic
    assert "held-out accuracy after one epoch: 95.6% (mini-batch 16) vs 94.7% (per-sample)" in (
        logistic
    )
    assert "| 60.0 MB, made in 10.0 s | 600.0 MB, made in 5.00 s | 10x smaller |" in rows[6]
    assert rows[6].endswith("| within |") and "TenSEAL 128-bit: N = 16384" in rows[6]
    assert "(`generate_galois_keys()` makes a key for every power-of-two step" in section
    headline = text.split("## Headline")[1].split("## Secure path")[0]
    assert (
        "| Secure path, keys (CKKS, 128-bit)" in headline and "| <= 64.0 MB | 60.0 MB |" in headline
    )
    assert "not measured" not in section


def test_secure_targets_not_met_say_why(tmp_path: Path) -> None:
    slow = _secure(
        iteration=0.66,
        reviews_per_second=300.0,
        accuracy=(0.53, 0.55),
        ours_sample=1.44,
        theirs_sample=1.12,
        key_mb=(72.5, 199.2),
    )
    results, text = _secure_report(tmp_path, slow)
    assert {key: results[key].status for key in SECURE_KEYS} == dict.fromkeys(SECURE_KEYS, NOT_MET)
    # 300 reviews/s meets the rate: the 2-point accuracy gap alone fails the target
    assert results["secure-sentiment"].target.met(300.0)
    assert "(2.0 points apart)" in results["secure-sentiment"].detail
    assert results["secure-logistic"].measured == pytest.approx(1.12 / 1.44)
    assert "| 660 ms | 660 ms per iteration = 22 TenSEAL ciphertext products" in text
    assert "| 199.2 MB | largest of xor: 72.5 MB; sentiment: 199.2 MB |" in text
    assert text.count("| **over** |") == 2


def test_secure_logistic_batches_that_learn_worse_are_not_met(tmp_path: Path) -> None:
    """Mini-batches buy speed only if they learn as well as per-sample SGD (within 1 point)."""
    results, _ = _secure_report(tmp_path, _secure(logistic_accuracy=(0.93, 0.947)))
    assert results["secure-logistic"].target.met(results["secure-logistic"].measured)
    assert results["secure-logistic"].status == NOT_MET
    results, _ = _secure_report(tmp_path, _secure(logistic_accuracy=(0.94, 0.947)))
    assert results["secure-logistic"].status == MET


def test_secure_accuracy_from_a_subset_is_not_reported_as_met(tmp_path: Path) -> None:
    results, text = _secure_report(tmp_path, _secure(reviews_per_second=200.0, trained=192))
    status = results["secure-sentiment"].status
    assert status.startswith("not measured in full: accuracy after 192 of 9,662 training reviews")
    assert "about 1 min of encrypted training at this rate" in status  # 9,662 / 200 per second
    assert "both trained on 192 of 9,662 training reviews" in results["secure-sentiment"].detail
    assert "Accuracy after 192 of 9,662 training reviews, not the full training set" in text


def test_secure_path_missing_says_what_to_run(tmp_path: Path) -> None:
    results, text = _secure_report(tmp_path, [])
    for key in SECURE_KEYS:
        assert results[key].measured is None
        assert results[key].status.startswith("not measured: no ")
        assert "pytest benchmarks -k secure" in results[key].status
    assert "## Secure path" not in text
    only_xor_keys = [b for b in _secure() if b["extra_info"].get("model") != "sentiment"]
    results, _ = _secure_report(tmp_path, only_xor_keys)
    assert results["secure-keys"].measured == pytest.approx(40e6)
    assert results["secure-keys"].status.startswith(
        "not measured in full: no public keys for sentiment"
    )


def test_secure_ratio_needs_the_reference_from_the_same_run(tmp_path: Path) -> None:
    records = _secure()
    for entry in records:
        entry["extra_info"].pop("reference", None)
    results, text = _secure_report(tmp_path, records)
    assert results["secure-logistic"].status == (
        "not measured: no hand-written TenSEAL timing in the same run"
    )
    assert results["secure-xor"].status == (
        "not measured in full: no TenSEAL product timed in the same run"
    )
    assert "| 50.0 ms per iteration | not measured | — |" in text


# -------------------------------------------------------------------------- driver output
def _driver_json(**override: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "format": "hennframework-vhe-driver",
        "version": 1,
        "ntl_version": "11.5.1",
        "parameters": {"w_bits": 40, "l": 100},
        "m": 4,
        "peak_rss_bytes": 1234,
        "results": [
            {
                "operation": "encrypt",
                "m": 4,
                "verified": True,
                "calls_per_round": 48,
                "key_rows": 5,
                "key_cols": 400,
                "key_bytes": 6754,
                "ciphertext_entries": 5,
                "ciphertext_bytes": 26,
                "setup_seconds": 0.0,
                "seconds": [3e-5, 1e-5, 2e-5, 5e-5],
            }
        ],
    }
    document.update(override)
    return document


def test_driver_output_is_parsed_with_its_statistics() -> None:
    report = parse_driver_output(json.dumps(_driver_json()))
    timing = report.get("encrypt")
    assert timing is not None and report.get("dot") is None
    assert report.m == 4 and report.ntl_version == "11.5.1" and report.peak_rss_bytes == 1234
    assert timing.median == pytest.approx(2.5e-5)  # even count: mean of the middle two
    assert timing.minimum == pytest.approx(1e-5) and timing.rounds == 4
    assert timing.iqr == pytest.approx(3.5e-5 - 1.75e-5)
    stats = timing.stats()
    assert stats["median"] == timing.median and stats["rounds"] == 4
    assert (timing.key_rows, timing.key_cols, timing.ciphertext_bytes) == (5, 400, 26)


def test_single_round_has_no_spread() -> None:
    entry = _driver_json()["results"][0] | {"seconds": [29.2]}
    timing = parse_driver_output(json.dumps(_driver_json(results=[entry]))).results[0]
    assert (timing.median, timing.stddev, timing.iqr) == (29.2, 0.0, 0.0)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not JSON"),
        (json.dumps({"format": "other"}), "not the vhe.cpp driver's output"),
        (json.dumps(_driver_json(version=2)), "version 2 is not supported"),
        (json.dumps(_driver_json(results={})), "no 'results' list"),
        (json.dumps(_driver_json(m="4")), "no int 'm'"),
    ],
)
def test_malformed_driver_output_raises(text: str, match: str) -> None:
    with pytest.raises(DataFormatError, match=match):
        parse_driver_output(text)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"seconds": []}, "non-empty list of positive times"),
        ({"seconds": [1e-5, -1.0]}, "non-empty list of positive times"),
        ({"seconds": [1e-5, True]}, "non-empty list of positive times"),
        ({"seconds": [float("nan")]}, "non-empty list of positive times"),
        ({"operation": "bootstrap"}, "unknown operation 'bootstrap'"),
        ({"verified": 1}, "no bool 'verified'"),
        ({"m": True}, "no int 'm'"),
    ],
)
def test_malformed_driver_result_raises(change: dict[str, Any], match: str) -> None:
    entry = _driver_json()["results"][0] | change
    with pytest.raises(DataFormatError, match=match):
        parse_driver_output(json.dumps(_driver_json(results=[entry])))


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.mark.skipif(sys.platform == "win32", reason="uses a POSIX shell script as the driver")
def test_run_driver_rejects_results_that_did_not_decrypt(tmp_path: Path) -> None:
    entry = _driver_json()["results"][0] | {"verified": False}
    output = tmp_path / "out.json"
    output.write_text(json.dumps(_driver_json(results=[entry])), encoding="utf-8")
    driver = _script(tmp_path / "driver", f"cat {output}; exit 3")
    with pytest.raises(ReferenceRunError, match="did not decrypt to the expected values"):
        run_driver(driver, 4, ["encrypt"])
    crashed = _script(tmp_path / "crashed", "echo 'std::bad_alloc' >&2; exit 134")
    with pytest.raises(ReferenceRunError, match=r"exit status 134: std::bad_alloc"):
        run_driver(crashed, 4, ["encrypt"])
    with pytest.raises(ReferenceRunError, match="no operation bootstrap"):
        run_driver(crashed, 4, ["bootstrap"])
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_driver_json()), encoding="utf-8")
    report = run_driver(_script(tmp_path / "ok", f"cat {good}"), 4, ["encrypt"])
    assert report.results[0].verified


def test_build_without_a_compiler_gives_a_reason(tmp_path: Path) -> None:
    source = tmp_path / "vhe.cpp"
    source.write_text("// stand-in\n", encoding="utf-8")
    outcome = build_driver(source, source, tmp_path / "build", compiler="no-such-compiler-here")
    assert not outcome.built and outcome.driver is None
    assert "no C++ compiler 'no-such-compiler-here'" in outcome.reason
    assert INSTALL_HINT in outcome.reason


@pytest.mark.skipif(sys.platform == "win32", reason="uses a POSIX shell script as the compiler")
def test_build_without_ntl_gives_the_install_command(tmp_path: Path) -> None:
    source = tmp_path / "vhe.cpp"
    source.write_text("// stand-in\n", encoding="utf-8")
    compiler = _script(
        tmp_path / "fake-g++",
        'case "$1" in --version) echo "fake 1.0";; *) '
        "echo 'vhe.cpp:6:10: fatal error: NTL/mat_ZZ.h: No such file or directory' >&2; "
        "exit 1;; esac",
    )
    outcome = build_driver(source, source, tmp_path / "build", compiler=str(compiler))
    assert not outcome.built
    assert outcome.reason.startswith("NTL is not installed") and INSTALL_HINT in outcome.reason
    described = BuildOutcome(None, outcome.reason, source, str(compiler)).describe()
    assert described["built"] is False and described["reason"] == outcome.reason


def test_vhe_source_lookup(tmp_path: Path) -> None:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "vhe.cpp").write_text("//\n", encoding="utf-8")
    assert find_vhe_source(tmp_path, {"HENN_VHE_CPP": str(folder)}) == (folder / "vhe.cpp", "")
    assert find_vhe_source(tmp_path, {"HENN_VHE_CPP": str(folder / "vhe.cpp")})[0] is not None
    missing, reason = find_vhe_source(tmp_path, {"HENN_VHE_CPP": str(tmp_path / "nope.cpp")})
    assert missing is None and "HENN_VHE_CPP" in reason
    checkout = tmp_path / "main"
    checkout.mkdir()
    none, reason = find_vhe_source(checkout, {})
    assert none is None and "reference/vhe-cpp/vhe.cpp" in reason
    beside = tmp_path / "shared" / "reference" / "vhe-cpp"
    beside.mkdir(parents=True)
    (beside / "vhe.cpp").write_text("//\n", encoding="utf-8")
    assert find_vhe_source(checkout, {}) == (beside / "vhe.cpp", "")


def test_inner_product_memory_guard() -> None:
    assert dot_memory_reason(16, available=1) == ""  # small keys: no guard
    assert "needs about 11 GiB" in dot_memory_reason(64, available=4 * 2**30)
    assert dot_memory_reason(64, available=64 * 2**30) == ""
    assert "far beyond" in dot_memory_reason(256, available=2**40)


def test_real_driver_builds_runs_and_checks_its_results(tmp_path: Path) -> None:
    source, reason = find_vhe_source(ROOT)
    if source is None:
        pytest.skip(reason)
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        pytest.skip(f"no C++ compiler ({INSTALL_HINT})")
    outcome = build_driver(ROOT / "benchmarks" / "vhe_driver" / "driver.cpp", source, tmp_path)
    if not outcome.built:
        assert INSTALL_HINT in outcome.reason or "compiling" in outcome.reason
        pytest.skip(outcome.reason)
    assert outcome.driver is not None
    again = build_driver(ROOT / "benchmarks" / "vhe_driver" / "driver.cpp", source, tmp_path)
    assert again.driver == outcome.driver  # the same sources and compiler: no rebuild
    report = run_driver(outcome.driver, 3, ["decrypt", "dot"], min_time=0.0, min_rounds=2)
    assert [t.operation for t in report.results] == ["decrypt", "dot"]
    assert all(t.verified and t.rounds >= 1 for t in report.results)
    dot = report.get("dot")
    assert dot is not None and dot.key_cols == 100 * 4 * 4  # l (m + 1)**2 bits: vhe.cpp's key
    assert report.parameters["w_bits"] == 40


# ----------------------------------------------------------------------------- files, CLI
def test_external_stats_must_be_an_object(tmp_path: Path) -> None:
    document = _document()
    document["benchmarks"][0]["extra_info"]["external_stats"] = [1, 2]
    with pytest.raises(DataFormatError, match="malformed external_stats"):
        load_results(_write(tmp_path / "r.json", document))


def test_newest_file_in_a_folder_is_used(tmp_path: Path) -> None:
    old = _write(tmp_path / "a" / "0001.json", _document())
    new = _write(tmp_path / "b" / "0002.json", _document())
    os.utime(old, (1_000_000, 1_000_000))
    assert newest_result_file(tmp_path) == new


def test_bad_inputs_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no benchmark results"):
        load_results(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="tox -e bench"):
        load_results(tmp_path / "empty")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataFormatError, match="not valid JSON"):
        load_results(bad)
    bad.write_text('{"benchmarks": [{"name": "x", "stats": {}}]}', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"stats\.median"):
        load_results(bad)
    bad.write_text("[]", encoding="utf-8")
    with pytest.raises(DataFormatError, match="not a pytest-benchmark results file"):
        load_results(bad)


def test_without_matplotlib_tables_are_written_and_plots_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "hennframework.bench.plots", None)  # import fails
    out = tmp_path / "docs" / "performance.md"
    report = write_report([_write(tmp_path / "r.json", _document())], out, tmp_path / "img")
    assert report.plots == {}
    assert "Plots were skipped" in out.read_text(encoding="utf-8")
    assert not (tmp_path / "img").exists()


def test_plots_are_small_pngs_linked_from_the_page(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason='plots need matplotlib (extra "bench")')
    out = tmp_path / "docs" / "performance.md"
    report = write_report([_write(tmp_path / "r.json", _document())], out, tmp_path / "docs/img")
    assert {"scheme_ops", "vhe_speedup", "ratio_vs_batch", "models", "tenseal"} <= set(report.plots)
    text = out.read_text(encoding="utf-8")
    for path in report.plots.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size < 200_000
        assert f"](img/{path.name})" in text


def test_cli_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _write(tmp_path / ".benchmarks" / "m" / "0001.json", _document())
    out = tmp_path / "perf.md"
    status = main(
        ["bench", "report", "--input", str(source.parent), "--out", str(out), "--no-plots"]
    )
    assert status == 0
    assert out.read_text(encoding="utf-8").startswith("# Performance")
    assert str(out) in capsys.readouterr().out
    status = main(["bench", "report", "--input", str(tmp_path / "nothing"), "--no-plots"])
    assert status == 1
    assert "no benchmark results" in capsys.readouterr().err


def test_cli_run_needs_a_source_checkout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "run", "--benchmarks", str(tmp_path)]) == 1
    assert "source checkout" in capsys.readouterr().err


@given(st.floats(min_value=1e-10, max_value=1e4, allow_nan=False))
def test_time_format_has_a_unit_and_three_significant_digits(value: float) -> None:
    # a formatting test (no clock involved): the printed number and unit give back the value
    text = fmt_time(value)
    number, unit = text.rsplit(" ", 1)
    assert unit in ("ns", "µs", "ms", "s")
    factor = {"ns": 1e-9, "µs": 1e-6, "ms": 1e-3, "s": 1.0}[unit]
    assert float(number.replace(",", "")) * factor == pytest.approx(value, rel=0.01)


def test_other_formats() -> None:
    assert fmt_bytes(17 * 1024) == "17.0 KiB" and fmt_bytes(100) == "100 B"
    assert fmt_rate(11_456.3) == "11,456" and fmt_rate(2.0) == "2.00"
    assert fmt_ratio(270.4) == "270x" and fmt_ratio(4.49) == "4.5x" and fmt_ratio(None) == "—"
    table = markdown_table(["a", "b|c"], [[1, "x|y"]], "lr")
    assert table.splitlines() == ["| a | b\\|c |", "| --- | ---: |", "| 1 | x\\|y |"]


def test_ciphertext_sizes_are_the_coefficients_not_the_noise_bounds(tmp_path: Path) -> None:
    """The size table gives a ciphertext's coefficients (``coefficient_bytes``) while the
    memory target counts the noise bounds it carries as output too (``output_bytes``); older
    results without ``coefficient_bytes`` give their ``output_bytes``, which were only those."""
    document = _document(sizes=(16,))
    for bench in document["benchmarks"]:
        info = bench["extra_info"]
        if info.get("operation") == "encrypt" and info.get("batch") == 256:
            info["output_bytes"] = 256 * (17 * 8 + 24)
            if info.get("params") == "vhe":
                info["coefficient_bytes"] = 256 * 17 * 8
    text = build_report(load_results(_write(tmp_path / "r.json", document)))
    assert "| `vhe` | 16 | 136 B |" in text  # coefficients: 17 words
    assert "| `default` | 16 | 160 B |" in text  # an older result: its output_bytes
