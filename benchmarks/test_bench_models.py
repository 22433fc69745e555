"""Model training and inference: encrypted weights next to the same model unencrypted.

* XOR (Andrew Trask's 2017 post "Safe AI"): 3-4-1 network, cubic Taylor sigmoid, learning
  rate 0.015, same random seed and initial weights for both; the encrypted run includes the
  owner's refreshes when they fall due.
* Sentiment (the same post's second demo): rt-polarity, positive and negative interleaved, the
  last 1,000 held out, vocabulary (min_count 10, polarity cutoff 0.1) from the training part; one
  epoch over a fixed subset of the first 2,000 training reviews (256 at batch size 1, whose
  encrypted run is slow), at batch sizes 1, 8, 32, 128 and 256 for the ratio against batch size.
  The unencrypted baseline is the same model (``Sequential.bag_of_words``) with NumPy weights,
  trained by the same loop: the fair ratio.

Throughput is reported as items per second (iterations or reviews). Parameter set "default":
INSECURE (see docs/scheme.md, Security).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from benchutil import INSECURE, PLAINTEXT, make_scheme, measure, rt_polarity_dir

from hennframework.demos.xor import XOR_INPUTS, XOR_TARGETS
from hennframework.nn import BagOfWords, Batch, OwnerRefresher, Sequential, make_batches

TRAIN_SUBSET = 2_000
BATCH1_SUBSET = 256
TEST_SIZE = 1_000
LEARNING_RATE = 0.1


def _info(operation: str, encrypted: bool, batch: int, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "model",
        "operation": operation,
        "batch": batch,
        "params": "default" if encrypted else "plaintext",
        "security": INSECURE if encrypted else PLAINTEXT,
        "encrypted": encrypted,
        **extra,
    }


# ----------------------------------------------------------------------------------------- XOR
@pytest.fixture(scope="module")
def xor_setup() -> tuple[Any, Any]:
    scheme = make_scheme("default")
    return scheme, scheme.keygen(seed=0)


def _xor_model() -> Sequential:
    return Sequential.mlp([3, 4, 1], activation="taylor3", seed=0, init_scale=4.0)


@pytest.mark.parametrize("encrypted", [True, False], ids=["encrypted", "plain"])
def test_xor_training(benchmark: Any, xor_setup: tuple[Any, Any], encrypted: bool) -> None:
    """Seconds per training iteration (4 rows, full batch), continuing one training run."""
    scheme, keys = xor_setup
    model = _xor_model().encrypt(keys) if encrypted else _xor_model()
    refresh = OwnerRefresher(scheme, keys) if encrypted else None
    iterations = 10 if encrypted else 100

    def train() -> Any:
        return model.fit(
            XOR_INPUTS, XOR_TARGETS, epochs=iterations, learning_rate=0.015, refresh=refresh
        )

    benchmark.group = "model XOR training"
    measure(
        benchmark,
        train,
        items=iterations,
        unit="iteration",
        rounds=5 if encrypted else None,
        implementation="hennframework" if encrypted else "numpy",
        **_info("XOR training", encrypted, 4, network="3-4-1", activation="taylor3"),
    )
    benchmark.extra_info["refreshes"] = model.history.refreshes


@pytest.mark.parametrize("encrypted", [True, False], ids=["encrypted", "plain"])
def test_xor_inference(benchmark: Any, xor_setup: tuple[Any, Any], encrypted: bool) -> None:
    """One forward pass over the 4 XOR rows."""
    _, keys = xor_setup
    model = _xor_model().encrypt(keys) if encrypted else _xor_model()
    benchmark.group = "model XOR inference"
    measure(
        benchmark,
        lambda: model.predict(XOR_INPUTS),
        items=4,
        unit="row",
        implementation="hennframework" if encrypted else "numpy",
        **_info("XOR inference", encrypted, 4, network="3-4-1"),
    )


# ----------------------------------------------------------------------------------- sentiment
@dataclass
class SentimentData:
    train: Any  # EncodedReviews of the training part
    test: Any  # EncodedReviews of the held-out part
    vocabulary_size: int


@pytest.fixture(scope="module")
def sentiment_data() -> SentimentData:
    folder = rt_polarity_dir()
    if folder is None:
        pytest.skip(
            "rt-polarity data not found (expected ../shared/data/rt-polarity next to the checkout; "
            "set HENN_BENCH_DATA to its folder)"
        )
    from hennframework.data import build_vocabulary, interleave, load_reviews
    from hennframework.data.loaders import train_test_split_last

    dataset = interleave(load_reviews(folder))
    train, test = train_test_split_last(dataset, TEST_SIZE)
    vocabulary = build_vocabulary(train.reviews, train.labels, 10, 0.1)
    return SentimentData(
        vocabulary.encode_many(train.reviews, train.labels),
        vocabulary.encode_many(test.reviews, test.labels),
        len(vocabulary),
    )


@pytest.fixture(scope="module")
def sentiment_keys() -> tuple[Any, Any]:
    scheme = make_scheme("default")
    return scheme, scheme.keygen(seed=0)


def _batches(encoded: Any, count: int, batch_size: int) -> list[Batch]:
    part = encoded.slice(0, count)
    return make_batches(BagOfWords(part.indices, part.offsets), part.labels, batch_size)


#: Batch sizes for the encrypted/unencrypted ratio against batch size (the report's plot).
SENTIMENT_BATCHES = (1, 8, 32, 128, 256)
SENTIMENT_CASES = [
    pytest.param(variant, batch, id=f"{variant}-{batch}")
    for batch in SENTIMENT_BATCHES
    for variant in ("encrypted", "plain")
]


@pytest.mark.parametrize(("variant", "batch_size"), SENTIMENT_CASES)
def test_sentiment_training(
    benchmark: Any,
    sentiment_data: SentimentData,
    sentiment_keys: tuple[Any, Any],
    variant: str,
    batch_size: int,
) -> None:
    """Reviews per second for one epoch over a fixed subset, from fresh weights each round."""
    scheme, keys = sentiment_keys
    count = BATCH1_SUBSET if (variant == "encrypted" and batch_size == 1) else TRAIN_SUBSET
    vocabulary = sentiment_data.vocabulary_size
    benchmark.group = f"model sentiment training (batch {batch_size})"
    info = _info(
        "sentiment training",
        variant == "encrypted",
        batch_size,
        reviews=count,
        vocabulary=vocabulary,
        hidden=8,
        learning_rate=LEARNING_RATE,
        variant=variant,
    )
    batches = _batches(sentiment_data.train, count, batch_size)
    encrypted = variant == "encrypted"
    refresh = OwnerRefresher(scheme, keys) if encrypted else None

    def fresh_network() -> tuple[tuple[Any, ...], dict[str, Any]]:
        network = Sequential.bag_of_words(vocabulary, 8, seed=0)
        return ((network.encrypt(keys) if encrypted else network),), {}

    def train(network: Sequential) -> Any:
        return network.fit(batches, learning_rate=LEARNING_RATE, refresh=refresh)

    history = measure(
        benchmark,
        train,
        items=count,
        unit="review",
        rounds=3 if (encrypted and batch_size == 1) else 5 if encrypted else 20,
        setup=fresh_network,
        implementation="hennframework" if encrypted else "numpy (same Sequential model)",
        **info,
    )
    benchmark.extra_info["refreshes"] = history.refreshes


@pytest.mark.parametrize("encrypted", [True, False], ids=["encrypted", "plain"])
def test_sentiment_inference(
    benchmark: Any, sentiment_data: SentimentData, sentiment_keys: tuple[Any, Any], encrypted: bool
) -> None:
    """Predictions for the 1,000 held-out reviews in batches of 256 (outputs stay encrypted)."""
    scheme, keys = sentiment_keys
    network = Sequential.bag_of_words(sentiment_data.vocabulary_size, 8, seed=0)
    network.fit(_batches(sentiment_data.train, TRAIN_SUBSET, 32), learning_rate=LEARNING_RATE)
    model = network.encrypt(keys) if encrypted else network
    batches = _batches(sentiment_data.test, len(sentiment_data.test), 256)

    def predict() -> list[Any]:
        return [model.predict(batch.inputs) for batch in batches]

    benchmark.group = "model sentiment inference"
    outputs = measure(
        benchmark,
        predict,
        items=len(sentiment_data.test),
        unit="review",
        rounds=5,
        implementation="hennframework" if encrypted else "numpy",
        **_info("sentiment inference", encrypted, 256, reviews=len(sentiment_data.test)),
    )
    if encrypted:  # the key holder's decryption agrees with the plain network
        plain = np.concatenate([np.asarray(network.predict(b.inputs)).reshape(-1) for b in batches])
        values = np.concatenate(
            [np.asarray(scheme.decrypt_tensor(o, keys.secret)).reshape(-1) for o in outputs]
        )
        assert np.abs(values - plain).max() < 0.05
