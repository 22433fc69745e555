"""The data options end to end through ``henn``: files people have, the shipped data, errors."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from hennframework.cli import main
from hennframework.data import FORMAT_CHOICES

GOOD = [
    "Great film, I loved it!",
    "What a WONDERFUL story.",
    "Brilliant acting; great fun.",
    "I loved every minute - wonderful!",
    "A great, moving film.",
    "Fun, fun, fun: loved it.",
]
BAD = [
    "Terrible plot... boring!",
    "I hated it, what a waste.",
    "Dull, dull, DULL.",
    "A boring, terrible mess.",
    "Waste of time; I hated it!",
    "Terrible acting and a dull plot.",
]


def uci_file(path: Path, pairs: int = 30) -> Path:
    """A UCI-style file: raw sentences, two trailing spaces, a tab and 0/1; no header."""
    lines = []
    for i in range(pairs):
        lines.append(f"{GOOD[i % 6]}  \t1")
        lines.append(f"{BAD[(i * 5) % 6]}  \t0")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    """``henn ARGS``: exit status, the JSON summary (if any) and stderr."""
    code = main(list(args))
    captured = capsys.readouterr()
    summary = json.loads(captured.out) if code == 0 and "--json" in args else captured.out
    return code, summary, captured.err


# ---------------------------------------------------------------------------- henn demo sentiment


def test_demo_trains_on_a_uci_style_tsv_with_no_preprocessing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = uci_file(tmp_path / "reviews_labelled.txt")
    code, summary, err = run(
        capsys, "demo", "sentiment", "--data", str(data), "--json", "--no-progress", "--compare"
    )
    assert code == 0, err
    assert (summary["train_reviews"], summary["test_reviews"]) == (48, 12)  # default: 20 %
    assert summary["tokenizer"] == "words, lower-cased"
    assert "tab-separated" in summary["data"] and summary["citation"] is None
    assert summary["vocabulary"] > 0
    assert summary["encrypted_test_accuracy"] >= 0.75  # 11/12 at seed 0; chance is 0.5
    assert summary["encrypted_test_accuracy"] == summary["plain_test_accuracy"]


def test_demo_default_test_size_on_a_1000_line_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["review", "sentiment"])
    for i in range(500):
        writer.writerow([GOOD[i % 6] + ' He said "yes", twice.', "positive"])
        writer.writerow([BAD[i % 6], "negative"])
    data = tmp_path / "reviews.csv"
    data.write_text(buffer.getvalue(), encoding="utf-8")
    code, summary, err = run(
        capsys, "demo", "sentiment", "--data", str(data), "--json", "--no-progress", "--plain"
    )
    assert code == 0, err
    assert (summary["train_reviews"], summary["test_reviews"]) == (800, 200)
    assert summary["data_notes"] == ["line 1 read as a header: 'review,sentiment'"]
    assert summary["plain_test_accuracy"] > 0.9


def test_demo_runs_with_no_options_on_the_shipped_data(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, text, err = run(capsys, "demo", "sentiment", "--no-progress")
    assert code == 0, err
    assert "sentence polarity dataset v1.0 (Pang and Lee, ACL 2005)" in text
    assert "9,662 training and 1,000 held-out reviews" in text
    assert "tokenizer whitespace; vocabulary 1,827 words" in text  # the 2017 rules, as before
    assert "cite: Bo Pang and Lillian Lee" in text
    accuracy = float(re.search(r"test accuracy ([0-9.]+)%", text)[1])  # type: ignore[index]
    assert 71.6 <= accuracy <= 73.6  # 72.6 % at the defaults, the figure of docs/sentiment.md


def test_test_size_counts_fractions_and_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(uci_file(tmp_path / "d.tsv"))
    base = ("demo", "sentiment", "--data", data, "--plain", "--no-progress")
    code, summary, _ = run(capsys, *base, "--json", "--test-size", "0.25")
    assert code == 0 and summary["test_reviews"] == 15
    code, summary, _ = run(capsys, *base, "--json", "--test-size", "7")
    assert code == 0 and summary["test_reviews"] == 7
    code, _, err = run(capsys, *base, "--test-size", "0")
    assert code == 2 and "--test-size must be a number of reviews" in err
    code, _, err = run(capsys, *base, "--test-size", "500")
    assert code == 1 and "--test-size 500 does not fit 60 reviews" in err
    assert "n_test" not in err and "test_size" not in err


def test_tiny_file_errors_name_cli_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = tmp_path / "one.tsv"
    one.write_text("good film\t1\n", encoding="utf-8")
    code, _, err = run(capsys, "demo", "sentiment", "--data", str(one), "--plain")
    assert code == 1 and "1 review(s) cannot be split" in err and "Traceback" not in err
    few = uci_file(tmp_path / "few.tsv", pairs=3)
    code, _, err = run(capsys, "demo", "sentiment", "--data", str(few), "--plain")
    assert code == 1 and "vocabulary is empty" in err and "--min-count" in err
    assert "vocabulary_size and hidden" not in err


def test_blank_lines_name_the_skip_empty_flag_which_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = uci_file(tmp_path / "blank.tsv")
    data.write_text(data.read_text(encoding="utf-8") + "\n\n" + "Loved it!\t1\n", "utf-8")
    base = ("demo", "sentiment", "--data", str(data), "--plain", "--no-progress")
    code, _, err = run(capsys, *base)
    assert code == 1 and "empty review at lines 61, 62" in err
    assert "--skip-empty" in err and "skip_empty" not in err
    with pytest.warns(UserWarning, match="skipped 2 empty review"):
        code, summary, err = run(capsys, *base, "--skip-empty", "--json")
    assert code == 0, err
    assert summary["train_reviews"] + summary["test_reviews"] == 61


def test_wrong_format_names_the_cli_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(uci_file(tmp_path / "d.tsv"))
    code, _, err = run(capsys, "demo", "sentiment", "--data", data, "--format", "csv", "--plain")
    assert code == 1 and "pass --format tsv" in err and "format=" not in err
    code, _, err = run(capsys, "demo", "sentiment", "--data", data, "--format", "xml")
    assert code == 2 and "--format" in err


def test_binary_reviews_pair_with_matching_line_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "reviews.txt").write_bytes(b"\x00\x9f\x01\xee\x02\n" * 40)
    (tmp_path / "labels.txt").write_text("positive\nnegative\n" * 20, encoding="utf-8")
    code, _, err = run(capsys, "demo", "sentiment", "--data", str(tmp_path), "--plain")
    assert code == 1 and "reviews.txt' is not a text file" in err
    assert "vocabulary_size" not in err and "internal error" not in err


def test_help_lists_only_formats_that_load(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["demo", "sentiment"], ["train"], ["predict"], ["encrypt-model"]):
        assert main([*command, "--help"]) == 0
        usage = " ".join(capsys.readouterr().out.split())
        assert "{" + ",".join(FORMAT_CHOICES) + "}" in usage, command
        assert "--skip-empty" in usage and "--tokenizer" in usage and "--lowercase" in usage


# ---------------------------------------------------------------------------- party commands


@pytest.fixture
def keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    code, _, err = run(capsys, "keygen", "--out", str(tmp_path / "keys"), "--seed", "3", "--json")
    assert code == 0, err
    return tmp_path / "keys" / "public.henn"


def test_party_trains_a_uci_style_tsv(
    tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(uci_file(tmp_path / "party.tsv"))
    model, trained = str(tmp_path / "m.henn"), str(tmp_path / "t.henn")
    code, summary, err = run(
        capsys, "encrypt-model", "--public", str(keys), "--arch", "sentiment",
        "--vocabulary-from", data, "--out", model, "--json",
    )  # fmt: skip
    assert code == 0, err
    code, summary, err = run(
        capsys, "train", "--model", model, "--public", str(keys), "--data", data,
        "--out", trained, "--epochs", "2", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert summary["rows"] == 60 and "tab-separated" in summary["data"]
    assert "warning" not in err  # same tokenizer on both sides: no mismatch warning
    code, summary, err = run(
        capsys, "predict", "--model", trained, "--public", str(keys), "--data", data,
        "--out", str(tmp_path / "p.henn"), "--json",
    )  # fmt: skip
    assert code == 0 and summary["rows"] == 60, err
    # predictions report their progress batch by batch (the CLI draws a bar; --no-progress not)
    from hennframework.workflow.party import DataOptions, predict

    reports: list[tuple[int, int]] = []
    predict(trained, keys, DataOptions(data), None, progress=lambda *r: reports.append(r))
    assert reports and reports[-1] == (60, 60)
    code, _, err = run(
        capsys, "predict", "--model", trained, "--public", str(keys), "--data", data,
        "--out", str(tmp_path / "q.henn"), "--no-progress",
    )  # fmt: skip
    assert code == 0, err


def test_party_warns_when_the_tokenizer_does_not_match_the_vocabulary(
    tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # raw words with punctuation attached: the words tokenizer (lower-cased) finds "great" and
    # "!", Trask's whitespace rules only "Great!", which the vocabulary does not hold
    lines = ["Great!\t1", "Awful.\t0", "Superb!\t1", "Dreadful.\t0"] * 15
    data = tmp_path / "party.tsv"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    model = str(tmp_path / "m.henn")
    code, _, err = run(
        capsys, "encrypt-model", "--public", str(keys), "--arch", "sentiment",
        "--vocabulary-from", str(data), "--out", model, "--json",
    )  # fmt: skip
    assert code == 0, err
    code, _, err = run(
        capsys, "train", "--model", model, "--public", str(keys), "--data", str(data),
        "--out", str(tmp_path / "t.henn"), "--tokenizer", "whitespace", "--no-lowercase",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    assert "60 of 60 reviews contain no word of the model's vocabulary" in err
    assert "--tokenizer and --lowercase" in err


def test_predict_on_a_binary_file_is_a_clear_error(
    tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(tmp_path / "xor.henn")
    code, _, err = run(
        capsys, "encrypt-model", "--public", str(keys), "--arch", "xor", "--out", model, "--json"
    )
    assert code == 0, err
    binary = tmp_path / "binary.bin"
    binary.write_bytes(bytes(range(256)) * 16)
    code, _, err = run(
        capsys, "predict", "--model", model, "--public", str(keys), "--data", str(binary),
        "--out", str(tmp_path / "p.henn"),
    )  # fmt: skip
    assert code == 1
    assert "binary.bin' is not a text file" in err
    assert "UnicodeDecodeError" not in err and "internal error" not in err
    # the same file as a sentiment party's reviews
    code, _, err = run(
        capsys, "encrypt-model", "--public", str(keys), "--arch", "sentiment",
        "--vocabulary-from", str(binary), "--out", str(tmp_path / "s.henn"),
    )  # fmt: skip
    assert code == 1 and "is not a text file" in err
