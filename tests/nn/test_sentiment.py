"""The sentiment network, plain and encrypted, on a small real subset of rt-polarity."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from hennframework.cli import main
from hennframework.demos.sentiment import SentimentSettings, run_sentiment
from hennframework.nn.sentiment import SentimentNetwork, batches_from_csr, make_batches

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "rt-polarity"
needs_data = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared dataset not found at {SHARED}")


def test_batches_from_csr_matches_make_batches() -> None:
    reviews = [np.array([0, 3]), np.array([], dtype=np.int64), np.array([1, 2, 4])]
    labels = [1, 0, 1]
    indices = np.concatenate(reviews)
    offsets = np.array([0, 2, 2, 5])
    for size in (1, 2, 3):
        a = make_batches(reviews, labels, size)
        b = batches_from_csr(indices, offsets, labels, size)
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x.indices, y.indices)
            np.testing.assert_array_equal(x.offsets, y.offsets)
            np.testing.assert_array_equal(x.labels, y.labels)


def test_encrypted_step_matches_plain_step() -> None:
    from hennframework.schemes.integer_vector import IntegerVectorScheme

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheme = IntegerVectorScheme("default", backend="numpy")
    keys = scheme.keygen(seed=3)
    rng = np.random.default_rng(0)
    reviews = [rng.choice(50, size=rng.integers(1, 9), replace=False) for _ in range(40)]
    labels = rng.integers(0, 2, 40)
    batches = make_batches(reviews, labels, 8)
    plain = SentimentNetwork(50, 8, seed=4)
    encrypted = plain.encrypt(keys)
    plain.fit(batches, learning_rate=0.1)
    encrypted.fit(batches, learning_rate=0.1)
    decrypted = encrypted.decrypt(keys.secret)
    np.testing.assert_allclose(decrypted.weights_0_1, plain.weights_0_1, atol=2e-3)
    np.testing.assert_allclose(decrypted.weights_1_2, plain.weights_1_2, atol=2e-3)


@needs_data
def test_encrypted_training_on_real_reviews_beats_chance() -> None:
    settings = SentimentSettings(data=str(SHARED), limit=3000, test_size=600, compare=True, seed=1)
    summary = run_sentiment(settings, show_progress=False)
    assert summary["encrypted_test_accuracy"] > 0.6
    # encrypted training tracks the unencrypted network trained the same way
    assert abs(summary["encrypted_test_accuracy"] - summary["plain_test_accuracy"]) <= 0.01


def test_sentiment_demo_cli_on_user_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = [
        "great fun film",
        "a wonderful moving story",
        "brilliant and great acting",
        "fun and wonderful",
    ]
    bad = ["dull boring mess", "a terrible waste", "boring and dull plot", "terrible acting mess"]
    reviews, labels = [], []
    for i in range(60):
        reviews += [good[i % 4], bad[i % 4]]
        labels += ["positive", "negative"]
    (tmp_path / "reviews.txt").write_text("\n".join(reviews) + "\n", encoding="utf-8")
    (tmp_path / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    code = main(
        [
            "demo",
            "sentiment",
            "--data",
            str(tmp_path),
            "--json",
            "--test-size",
            "20",
            "--min-count",
            "1",
            "--epochs",
            "3",
            "--batch-size",
            "4",
            "--compare",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["train_reviews"] == 100 and summary["test_reviews"] == 20
    assert summary["encrypted_test_accuracy"] >= 0.9


def test_sentiment_demo_reports_bad_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "reviews.txt").write_text("a\nb\nc\n", encoding="utf-8")
    (tmp_path / "labels.txt").write_text("positive\nnegative\n", encoding="utf-8")
    code = main(["demo", "sentiment", "--data", str(tmp_path)])
    assert code != 0
    err = capsys.readouterr().err
    assert "3" in err and "2" in err and "Traceback" not in err
