"""The benchmark report generator (hennframework.bench, `henn bench report`).

Built from small synthetic pytest-benchmark results files, so these tests time nothing and run in
well under a second (apart from the optional plot test, which draws real PNGs).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hennframework.bench import load_results, newest_result_file, write_report
from hennframework.bench.format import fmt_bytes, fmt_rate, fmt_ratio, fmt_time, markdown_table
from hennframework.bench.machine import describe_machine
from hennframework.bench.report import build_report
from hennframework.cli import main
from hennframework.exceptions import DataFormatError, InputError


def _bench(name: str, median: float, **extra: Any) -> dict[str, Any]:
    stats = {"min": median, "max": median, "mean": median, "stddev": 0.0, "rounds": 5}
    stats.update({"median": median, "iqr": 0.0, "ops": 1 / median})
    return {"name": name, "group": None, "stats": stats, "extra_info": extra}


def _op(op: str, m: int, batch: int, median: float, params: str = "default", **more: Any) -> Any:
    encrypted = params != "plaintext"
    return _bench(
        f"{op}-{params}-m{m}-b{batch}",
        median,
        kind="scheme-op",
        operation=op,
        m=m,
        batch=batch,
        items=batch,
        params=params,
        security="INSECURE" if encrypted else "none (plaintext)",
        implementation="hennframework" if encrypted else "numpy",
        encrypted=encrypted,
        backend="numpy",
        **more,
    )


def _document(encrypt_256: float = 256e-6, sentiment_seconds: float = 0.2) -> dict[str, Any]:
    """A results file with one record of each kind the report knows."""
    benchmarks = [
        _op("encrypt", 16, 256, encrypt_256),
        _op("encrypt", 16, 1, 50e-6),
        _op("linear_transform", 64, 256, 1e-3),
        _op("linear_transform", 64, 1, 130e-6),
        _op("linear_transform", 64, 256, 0.4e-3, params="plaintext"),
        _op("dot", 16, 256, 3e-3),
        _op("dot", 16, 1, 140e-6),
        _bench(
            "dot_keygen",
            220e-6,
            kind="keygen",
            operation="dot_keygen",
            m=16,
            batch=1,
            items=1,
            params="default",
            security="INSECURE",
            key_bytes=37_000,
        ),
        _bench(
            "sent-enc",
            sentiment_seconds,
            kind="model",
            operation="sentiment training",
            batch=32,
            items=2000,
            unit="review",
            variant="encrypted",
            encrypted=True,
            security="INSECURE",
            reviews=2000,
        ),
        _bench(
            "sent-plain",
            0.004,
            kind="model",
            operation="sentiment training",
            batch=32,
            items=2000,
            unit="review",
            variant="plain",
            encrypted=False,
            security="none (plaintext)",
            reviews=2000,
        ),
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
    machine = {"hennframework": describe_machine()}
    return {"machine_info": machine, "commit_info": {}, "benchmarks": benchmarks, "datetime": "x"}


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_report_tables_targets_and_security(tmp_path: Path) -> None:
    runs = load_results(_write(tmp_path / "r.json", _document()))
    text = build_report(runs)
    # encrypt m=16: 1 µs per vector vs vhe.cpp's 250 µs -> 250x -> met
    assert "| encrypt (public key) m = 16 | 250 µs | 1.00 µs (batch 256) | 250x |" in text
    assert "**missed**" not in text
    assert "**10,000 reviews/s**" in text  # 2,000 reviews in 0.2 s
    assert "INSECURE" in text and "128-bit" in text
    assert "| linear transform | `default` | INSECURE | 64 | 256 |" in text
    assert "2.5x" in text  # encrypted / plaintext linear transform per vector
    assert "40x" in text  # TenSEAL / ours on "add"
    assert "## GPU backends" in text and "Issue 6 target" in text
    assert f"| CPU | {describe_machine()['cpu_model']} |" in text


def test_missed_targets_are_reported(tmp_path: Path) -> None:
    slow = _document(encrypt_256=256 * 10e-6, sentiment_seconds=1.0)  # 25x; 2,000 reviews/s
    text = build_report(load_results(_write(tmp_path / "r.json", slow)))
    assert "**missed**" in text
    assert "Targets missed in this run: encrypt m=16, sentiment training" in text


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
    assert {"scheme_ops", "tenseal", "scaling_w"} <= set(report.plots)
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
