"""The framework's sentiment network against an independent oracle of Trask's update rule.

``sentiment_oracle.PlainSentimentNetwork`` is the per-review NumPy network of Trask's 2017 post,
written without the framework. Checked here:

* the oracle itself, against a literal transcription of the post's training loop (random reviews);
* on real reviews of the shipped rt-polarity data, ``Sequential.bag_of_words`` trained
  unencrypted at batch 1 with the exact sigmoid: the same weights as the oracle after an epoch,
  to float rounding;
* mini-batches (the oracle summing its per-review updates), over several epochs;
* the encrypted model (integer-vector scheme, the lsq3 polynomial in both): within the fixed-point
  rounding of the parameter set after every step.

Reviews with no vocabulary word (zero hidden layer, no word row to update) occur in all of them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sentiment_oracle import PlainSentimentNetwork

from hennframework.data import EncodedReviews, build_vocabulary, interleave, load_rt_polarity
from hennframework.nn import (
    BagOfWords,
    Batch,
    OwnerRefresher,
    Progress,
    Sequential,
    get_sigmoid,
    make_batches,
)
from hennframework.schemes.integer_vector import IntegerVectorScheme

pytestmark = pytest.mark.filterwarnings(
    "ignore::hennframework.exceptions.InsecureParametersWarning"
)

HIDDEN = 8


@pytest.fixture(scope="module")
def reviews() -> EncodedReviews:
    """The first 400 interleaved reviews, encoded with a vocabulary of the first 2,000."""
    dataset = interleave(load_rt_polarity())
    vocabulary = build_vocabulary(dataset.reviews[:2000], dataset.labels[:2000], 10, 0.1)
    return vocabulary.encode_many(dataset.reviews[:400], dataset.labels[:400])


def with_empty_reviews(data: EncodedReviews, count: int) -> EncodedReviews:
    """``data`` after ``count`` reviews with no vocabulary word (labels alternating 1, 0)."""
    labels = np.concatenate([np.arange(count) % 2 == 0, data.labels]).astype(np.int8)
    offsets = np.concatenate([np.zeros(count, np.int64), data.offsets])
    return EncodedReviews(data.indices, offsets, labels, data.vocab_size)


def batches(data: EncodedReviews, batch_size: int) -> list[Batch]:
    """The framework's batches of ``data``, in order."""
    return make_batches(BagOfWords(data.indices, data.offsets), data.labels, batch_size)


def model_and_oracle(
    vocab_size: int, activation: str = "exact", seed: int = 5
) -> tuple[Sequential, PlainSentimentNetwork]:
    """A framework model and an oracle with the same initial weights (W1 zeros, W2 the model's)."""
    model = Sequential.bag_of_words(vocab_size, HIDDEN, activation=activation, seed=seed)
    if activation == "exact":
        oracle = PlainSentimentNetwork(vocab_size, HIDDEN)
    else:
        polynomial = np.polynomial.Polynomial(get_sigmoid(activation).coefficients)
        oracle = PlainSentimentNetwork(
            vocab_size, HIDDEN, activation=polynomial, derivative=polynomial.deriv()
        )
    embedding, dense = model.weights()
    assert not np.any(embedding)  # Trask's W1 starts at zero in both
    oracle.w2 = np.array(dense[:, 0], dtype=np.float64)
    return model, oracle


def assert_same_weights(model: Sequential, oracle: PlainSentimentNetwork, rtol: float) -> None:
    embedding, dense = (np.asarray(w) for w in model.weights())
    # absolute floor far below any trained entry: rows of words never seen stay exactly 0
    np.testing.assert_allclose(embedding, oracle.w1, rtol=rtol, atol=1e-15)
    np.testing.assert_allclose(dense[:, 0], oracle.w2, rtol=rtol, atol=1e-15)


# ------------------------------------------------------------------ the oracle is Trask's rule


def random_reviews(
    rng: np.random.Generator, n: int, vocab: int, max_len: int = 6
) -> EncodedReviews:
    parts = [
        np.sort(rng.choice(vocab, size=rng.integers(0, max_len + 1), replace=False))
        for _ in range(n)
    ]
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    indices = np.concatenate(parts).astype(np.int32) if n else np.zeros(0, np.int32)
    return EncodedReviews(indices, offsets, rng.integers(0, 2, n).astype(np.int8), vocab)


def trask_loop(
    w1: np.ndarray[Any, Any], w2: np.ndarray[Any, Any], data: EncodedReviews, lr: float
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], int]:
    """The training loop of Trask's 2017 post / the Udacity project it came from, literally
    (``layer_1`` is 1 x hidden, ``weights_1_2`` hidden x 1)."""
    weights_0_1 = w1.copy()
    weights_1_2 = w2.reshape(-1, 1).copy()
    layer_1 = np.zeros((1, w1.shape[1]))
    correct = 0
    for i in range(len(data)):
        review, label = data[i].tolist(), int(data.labels[i])
        layer_1 *= 0
        for index in review:
            layer_1 += weights_0_1[index]
        layer_2 = 1 / (1 + np.exp(-layer_1.dot(weights_1_2)))
        layer_2_error = layer_2 - label
        layer_2_delta = layer_2_error * (layer_2 * (1 - layer_2))
        layer_1_error = layer_2_delta.dot(weights_1_2.T)
        layer_1_delta = layer_1_error
        weights_1_2 -= layer_1.T.dot(layer_2_delta) * lr
        for index in review:
            weights_0_1[index] -= layer_1_delta[0] * lr
        if (layer_2 >= 0.5 and label == 1) or (layer_2 < 0.5 and label == 0):
            correct += 1
    return weights_0_1, weights_1_2.ravel(), correct


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 40), st.sampled_from([1, 3, 8]))
def test_oracle_is_the_literal_loop_of_the_post(seed: int, n: int, hidden: int) -> None:
    rng = np.random.default_rng(seed)
    data = random_reviews(rng, n, 12)
    oracle = PlainSentimentNetwork(12, hidden, rng=seed)
    oracle.w1 = rng.normal(0, 0.5, oracle.w1.shape)  # non-zero start so every term matters
    w1, w2, correct = trask_loop(oracle.w1, oracle.w2, data, 0.3)
    assert oracle.train(data, 1, 0.3) == [correct]
    np.testing.assert_allclose(oracle.w1, w1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(oracle.w2, w2, rtol=0, atol=1e-12)


# ------------------------------------------------------------------ the plain framework model


def test_batch_one_exact_sigmoid_gives_the_oracle_weights(reviews: EncodedReviews) -> None:
    data = reviews.slice(0, 300)
    assert np.any(data.lengths == 0)  # real reviews with no vocabulary word are among them
    model, oracle = model_and_oracle(data.vocab_size)
    model.fit(batches(data, 1), learning_rate=0.1)
    oracle.train(data, 1, 0.1)
    assert np.abs(oracle.w1).max() > 0.01  # the epoch moved the weights: the check has teeth
    assert_same_weights(model, oracle, rtol=1e-9)
    probabilities = np.asarray(model.predict(BagOfWords(reviews.indices, reviews.offsets)))
    np.testing.assert_allclose(probabilities[:, 0], oracle.predict_proba(reviews), rtol=1e-9)


@pytest.mark.parametrize("batch_size", [2, 7, 64])
def test_mini_batches_sum_the_oracle_updates(reviews: EncodedReviews, batch_size: int) -> None:
    # two reviews without a word first: the first batch (of 2) has nothing to update in W1
    data = with_empty_reviews(reviews.slice(0, 200), 2)
    model, oracle = model_and_oracle(data.vocab_size, seed=7)
    model.fit(batches(data, batch_size), epochs=3, learning_rate=0.1)  # every batch seen 3 times
    oracle.train(data, 3, 0.1, batch_size=batch_size)
    assert_same_weights(model, oracle, rtol=1e-9)


def test_a_batch_of_reviews_without_words_changes_nothing(reviews: EncodedReviews) -> None:
    data = with_empty_reviews(reviews.slice(0, 0), 3)
    model, oracle = model_and_oracle(data.vocab_size)
    before = [np.array(w) for w in model.weights()]
    model.fit(batches(data, 3), learning_rate=0.1)
    oracle.train(data, 1, 0.1, batch_size=3)
    for weight, start in zip(model.weights(), before, strict=True):
        np.testing.assert_array_equal(weight, start)
    assert_same_weights(model, oracle, rtol=0)


# ------------------------------------------------------------------ the encrypted model


def test_encrypted_model_tracks_the_oracle_within_fixed_point_rounding(
    reviews: EncodedReviews,
) -> None:
    """Bound: after step ``s``, every weight is within ``(1 + s / 4) * 2**-f`` of the oracle's.

    ``2**-f`` is the fixed-point resolution of the parameter set (scale ``2**f``, f = 12 for
    ``default``); the integer-vector scheme decrypts its integer messages exactly, so the only
    difference is rounding to that grid. Encoding the initial weights rounds by at most half a unit;
    a step rounds its products to the nearest unit, errors that mostly cancel (rounding is to
    nearest, not toward zero), so a quarter unit of drift per step is allowed. The run goes
    over the same 25 batches twice (50 steps), one batch holding only reviews with no word.
    """
    scheme = IntegerVectorScheme("default")
    keys = scheme.keygen(seed=3)
    unit = 1.0 / scheme.params.scale
    data = with_empty_reviews(reviews.slice(0, 48), 2)
    batch_size, learning_rate = 2, 0.1
    model, oracle = model_and_oracle(data.vocab_size, activation="lsq3")
    encrypted = model.encrypt(keys, scheme)
    steps = [range(lo, lo + batch_size) for lo in range(0, len(data), batch_size)]
    errors: list[float] = []

    def compare(progress: Progress) -> None:
        if progress.batch is None:  # a note around a refresh, not a step
            return
        oracle.step(data, steps[(progress.done - 1) % len(steps)], learning_rate)
        embedding, dense = (scheme.decrypt_tensor(w, keys.secret) for w in encrypted.weights())
        error = max(np.abs(embedding - oracle.w1).max(), np.abs(dense[:, 0] - oracle.w2).max())
        errors.append(error)
        assert error <= (1 + progress.done / 4) * unit, f"step {progress.done}: {error / unit}"

    encrypted.fit(
        batches(data, batch_size),
        epochs=2,
        learning_rate=learning_rate,
        refresh=OwnerRefresher(scheme, keys),
        progress=compare,
    )
    assert len(errors) == 50
    moved = max(np.abs(oracle.w1).max(), np.abs(oracle.w2 - model.weights()[1][:, 0]).max())
    assert moved > 50 * unit  # the weights moved far more than the allowed error
