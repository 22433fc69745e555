"""The real rt-polarity files from ../shared: line counts, decoding traps, and learning."""

from __future__ import annotations

from pathlib import Path

import pytest

from hennframework.data import (
    build_vocabulary,
    interleave,
    load_reviews,
    train_test_split_last,
)
from hennframework.demos.sentiment import SentimentSettings, run_sentiment
from hennframework.nn import BagOfWords, Sequential, make_batches

pytestmark = pytest.mark.data


def test_loads_5331_each_despite_0x85(rt_polarity_dir: Path) -> None:
    ds = load_reviews(rt_polarity_dir)
    assert ds.format == "polarity" and ds.encoding == "windows-1252"
    assert (ds.n_positive, ds.n_negative) == (5331, 5331)
    assert sum("\u2026" in r for r in ds.reviews) > 0  # byte 0x85 decoded as an ellipsis in-line
    assert not any("\n" in r or "\r" in r for r in ds.reviews)
    # Forcing Latin-1 keeps 0x85 as U+0085, which str.splitlines would treat as a line break:
    latin = load_reviews(rt_polarity_dir, encoding="latin-1")
    assert len(latin) == 10662
    raw = (rt_polarity_dir / "rt-polarity.pos").read_bytes().decode("latin-1")
    assert len(raw.splitlines()) == 5344  # the trap the README describes


def test_small_real_subset_learns(rt_polarity_dir: Path) -> None:
    mixed = interleave(load_reviews(rt_polarity_dir))
    train, test = train_test_split_last(mixed.subset(slice(0, 2500)), 500)
    vocab = build_vocabulary(train.reviews, train.labels, min_count=2, polarity_cutoff=0.1)
    net = Sequential.bag_of_words(len(vocab), 8, activation="exact", seed=1)
    train_enc = vocab.encode_many(train.reviews, train.labels)
    test_enc = vocab.encode_many(test.reviews, test.labels)
    net.fit(
        BagOfWords(train_enc.indices, train_enc.offsets),
        train_enc.labels,
        batch_size=1,
        epochs=3,
        learning_rate=0.05,
    )
    test = make_batches(BagOfWords(test_enc.indices, test_enc.offsets), test_enc.labels, 256)
    accuracy = net.evaluate(test)
    assert accuracy > 0.6, accuracy


def test_reference_protocol(rt_polarity_dir: Path) -> None:
    """Trask's protocol, per-review SGD with the exact sigmoid, unencrypted, on all the data."""
    settings = SentimentSettings(
        data=str(rt_polarity_dir),
        encrypted=False,
        activation="exact",
        batch_size=1,
        test_size=1000,
        seed=1,
    )
    summary = run_sentiment(settings, show_progress=False)
    assert (summary["train_reviews"], summary["test_reviews"]) == (9662, 1000)
    assert summary["vocabulary"] == 1827
    assert summary["plain_test_accuracy"] >= 0.70, summary
