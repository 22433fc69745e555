"""The sentiment network, plain and encrypted, on a small real subset of rt-polarity."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from hennframework.cli import main
from hennframework.demos.sentiment import SentimentSettings, run_sentiment
from hennframework.exceptions import InputError
from hennframework.nn import BagOfWords, Batch, Dense, EmbeddingSum, Sequential, make_batches
from hennframework.registry import get_backend

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "rt-polarity"
needs_data = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared dataset not found at {SHARED}")


def test_bag_of_words_batches_cut_reviews_in_order() -> None:
    reviews = [np.array([0, 3]), np.array([], dtype=np.int64), np.array([1, 2, 4])]
    words = BagOfWords.from_reviews(reviews)
    for size in (1, 2, 3):
        batches = make_batches(words, [1, 0, 1], size)
        got = [b.inputs.row(i).tolist() for b in batches for i in range(b.size)]
        assert got == [r.tolist() for r in reviews]
        assert np.concatenate([b.targets for b in batches]).ravel().tolist() == [1, 0, 1]
    with pytest.raises(InputError, match="offsets"):
        BagOfWords(np.array([0, 1]), np.array([0, 3]))


def _review_batches(size: int, count: int = 40, vocabulary: int = 50) -> list[Batch]:
    rng = np.random.default_rng(0)
    reviews = [rng.choice(vocabulary, size=rng.integers(1, 9), replace=False) for _ in range(count)]
    reviews[3] = np.array([], dtype=np.int64)  # a review with no vocabulary word
    return make_batches(BagOfWords.from_reviews(reviews), rng.integers(0, 2, count), size)


def test_encrypted_step_matches_plain_step() -> None:
    from hennframework.schemes.integer_vector import IntegerVectorScheme

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheme = IntegerVectorScheme("default", backend=get_backend("numpy"))
    keys = scheme.keygen(seed=3)
    batches = _review_batches(8)
    plain = Sequential.bag_of_words(50, 8, seed=4)
    encrypted = plain.encrypt(keys)
    plain.fit(batches, learning_rate=0.1)
    encrypted.fit(batches, learning_rate=0.1)
    assert encrypted.history.samples == plain.history.samples == 40
    decrypted = encrypted.decrypt(keys.secret)
    for got, want in zip(decrypted.weights(), plain.weights(), strict=True):
        np.testing.assert_allclose(got, want, atol=2e-3)


def test_embedding_sum_updates_only_the_rows_of_the_batch_words() -> None:
    model = Sequential.bag_of_words(50, 4, activation="exact", seed=1)
    batch = _review_batches(8)[0]
    before = model.weights()[0].copy()
    model.train_step(batch, 0.5)
    changed = np.flatnonzero(np.any(model.weights()[0] != before, axis=1))
    assert set(changed) <= set(batch.inputs.indices.tolist()) and changed.size > 0
    with pytest.raises(InputError, match="first layer"):
        Sequential([Dense(3, 4), EmbeddingSum(10, 4)])
    with pytest.raises(InputError, match="outside the vocabulary"):
        model.predict(BagOfWords.from_reviews([[50]]))


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


def test_batch_size_and_rate_default_per_scheme() -> None:
    """Left None, the batch size and learning rate are the scheme's; given values always win."""
    from hennframework.demos.sentiment import batch_and_rate, prepare

    assert batch_and_rate(SentimentSettings(), "integer-vector") == (32, 0.1)
    assert batch_and_rate(SentimentSettings(), "ckks") == (256, 0.025)
    assert batch_and_rate(SentimentSettings(), "some-plugin") == (32, 0.1)
    chosen = SentimentSettings(batch_size=8, learning_rate=0.2)
    assert batch_and_rate(chosen, "ckks") == (8, 0.2)
    prepared = prepare(SentimentSettings(limit=600, test_size=100, scheme="ckks"))
    assert max(batch.size for batch in prepared.train) == 256
    summary = run_sentiment(
        SentimentSettings(limit=200, test_size=50, seed=0, encrypted=False), show_progress=False
    )
    assert (summary["batch_size"], summary["learning_rate"]) == (32, 0.1)
