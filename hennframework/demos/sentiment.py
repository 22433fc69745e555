"""The seed's sentiment network (section 9) on real movie reviews, with encrypted weights.

Protocol (issue 5): interleave positive and negative reviews, hold out the last ``test_size``,
build the seed's vocabulary (min_count, polarity_cutoff) on the training part only, train with
encrypted weights (no secret key on the training side), and let the key holder decrypt the
held-out predictions to measure accuracy. ``--compare`` also trains the unencrypted network the
same way (same batches, initial weights and sigmoid polynomial).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hennframework.data.loaders import interleave, load_reviews, train_test_split_last
from hennframework.data.text import EncodedReviews, build_vocabulary
from hennframework.demos.common import describe_scheme, make_scheme, progress_bar
from hennframework.exceptions import InputError, InsecureParametersWarning
from hennframework.nn import OwnerRefresher
from hennframework.nn.sentiment import (
    BagOfWordsBatch,
    SentimentHistory,
    SentimentNetwork,
    batches_from_csr,
)


@dataclass
class SentimentSettings:
    data: str
    data_format: str = "auto"
    encoding: str | None = None
    params: str | None = None
    epochs: int = 1
    learning_rate: float = 0.1
    batch_size: int = 32
    hidden: int = 8
    min_count: int = 10
    polarity_cutoff: float = 0.1
    test_size: int = 1000
    limit: int | None = None
    activation: str = "lsq3"
    seed: int | None = 0
    encrypted: bool = True
    compare: bool = False
    scheme: str | None = None
    backend: str | None = None


@dataclass
class PreparedData:
    train: list[BagOfWordsBatch]
    test: list[BagOfWordsBatch]
    vocabulary_size: int
    train_reviews: int
    test_reviews: int
    source: str
    encoding: str


def _batches(encoded: EncodedReviews, batch_size: int) -> list[BagOfWordsBatch]:
    return batches_from_csr(encoded.indices, encoded.offsets, encoded.labels, batch_size)


def prepare(settings: SentimentSettings) -> PreparedData:
    """Load, interleave, split, build the vocabulary on the training part, encode as CSR batches."""
    path: Any = settings.data
    if "," in settings.data and not Path(settings.data).exists():
        first, second = settings.data.split(",", 1)
        path = (first, second)
    dataset = interleave(
        load_reviews(path, format=settings.data_format, encoding=settings.encoding)
    )
    if settings.limit is not None:
        if settings.limit <= settings.test_size:
            raise InputError(
                f"--limit {settings.limit} leaves nothing to train on with --test-size {settings.test_size}"
            )
        dataset = dataset.subset(slice(0, settings.limit))
    train, test = train_test_split_last(dataset, settings.test_size)
    vocabulary = build_vocabulary(
        train.reviews, train.labels, settings.min_count, settings.polarity_cutoff
    )
    train_encoded = vocabulary.encode_many(train.reviews, train.labels)
    test_encoded = vocabulary.encode_many(test.reviews, test.labels)
    return PreparedData(
        _batches(train_encoded, settings.batch_size),
        _batches(test_encoded, 256),
        len(vocabulary),
        len(train),
        len(test),
        dataset.source,
        dataset.encoding,
    )


def run_sentiment(settings: SentimentSettings, *, show_progress: bool = True) -> dict[str, Any]:
    """Train (encrypted and/or plain) and return a JSON-ready summary."""
    prepared = prepare(settings)
    summary: dict[str, Any] = {
        "data": prepared.source,
        "encoding": prepared.encoding,
        "train_reviews": prepared.train_reviews,
        "test_reviews": prepared.test_reviews,
        "vocabulary": prepared.vocabulary_size,
        "hidden": settings.hidden,
        "epochs": settings.epochs,
        "learning_rate": settings.learning_rate,
        "batch_size": settings.batch_size,
        "activation": settings.activation,
    }
    network = SentimentNetwork(
        prepared.vocabulary_size,
        settings.hidden,
        activation=settings.activation,
        seed=settings.seed,
    )
    total = prepared.train_reviews * settings.epochs

    def bar_for(label: str) -> tuple[Any, Any]:
        bar = progress_bar(total, label, show_progress)

        def update(history: SentimentHistory, _total: int) -> None:
            bar.update(history.reviews - bar.n)
            if history.steps % 20 == 0:
                accuracy = history.correct / history.scored if history.scored else float("nan")
                bar.set_postfix(
                    {
                        "reviews/s": f"{history.reviews_per_second:,.0f}",
                        "train acc": f"{accuracy:.3f}",
                    },
                    refresh=False,
                )

        return bar, update

    if settings.encrypted:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureParametersWarning)
            scheme = make_scheme(settings.scheme, settings.params, settings.backend)
        keyed = settings.seed is not None and scheme.name == "integer-vector"
        keys = scheme.keygen(seed=settings.seed) if keyed else scheme.keygen()
        encrypted = network.encrypt(keys)

        def monitor(output: Any) -> Any:  # the key holder decrypts outputs for the running accuracy
            return scheme.decrypt_tensor(output, keys.secret)

        bar, update = bar_for("sentiment (encrypted)")
        refresher = OwnerRefresher(scheme, keys)
        history = encrypted.fit(
            prepared.train,
            epochs=settings.epochs,
            learning_rate=settings.learning_rate,
            refresh=refresher,
            monitor=monitor,
            progress=update,
        )
        bar.close()
        # leveled schemes (CKKS) end training with few levels left: refresh before inference
        encrypted.refresh(refresher)
        started = time.perf_counter()
        accuracy = encrypted.evaluate(prepared.test, decrypt=monitor)
        summary.update(
            {
                **describe_scheme(scheme),
                "encrypted_test_accuracy": accuracy,
                "encrypted_train_accuracy": history.correct / history.scored
                if history.scored
                else None,
                "encrypted_reviews_per_second": history.reviews_per_second,
                "encrypted_train_seconds": history.seconds,
                "owner_refreshes": history.refreshes,
                "evaluate_seconds": time.perf_counter() - started,
            }
        )
    if settings.compare or not settings.encrypted:
        bar, update = bar_for("sentiment (plain)")
        history = network.fit(
            prepared.train,
            epochs=settings.epochs,
            learning_rate=settings.learning_rate,
            progress=update,
        )
        bar.close()
        summary.update(
            {
                "plain_test_accuracy": network.evaluate(prepared.test),
                "plain_reviews_per_second": history.reviews_per_second,
            }
        )
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"data: {summary['data']} ({summary['encoding']}); {summary['train_reviews']:,} training and "
        f"{summary['test_reviews']:,} held-out reviews; vocabulary {summary['vocabulary']:,} words",
        f"network: bag of words -> {summary['hidden']} hidden -> sigmoid ({summary['activation']}); "
        f"{summary['epochs']} epoch(s), learning rate {summary['learning_rate']}, batch {summary['batch_size']}",
    ]
    if "encrypted_test_accuracy" in summary:
        lines.append(
            f"encrypted ({summary['scheme']} / {summary['parameter_set']}, {summary['security']}, "
            f"{summary['backend']}): test accuracy {summary['encrypted_test_accuracy']:.1%}, "
            f"{summary['encrypted_reviews_per_second']:,.0f} reviews/s, {summary['owner_refreshes']} owner refreshes"
        )
    if "plain_test_accuracy" in summary:
        lines.append(
            f"unencrypted, trained the same way: test accuracy {summary['plain_test_accuracy']:.1%}, "
            f"{summary['plain_reviews_per_second']:,.0f} reviews/s"
        )
    if "encrypted_reviews_per_second" in summary and "plain_reviews_per_second" in summary:
        ratio = summary["plain_reviews_per_second"] / max(
            summary["encrypted_reviews_per_second"], 1e-9
        )
        lines.append(f"encryption costs {ratio:.1f}x in throughput")
    return "\n".join(lines)
