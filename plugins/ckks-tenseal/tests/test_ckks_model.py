"""The model API runs unchanged on the plugin: encrypted training tracks plaintext training."""

from __future__ import annotations

import numpy as np
from hennframework.exceptions import OverflowRiskError
from hennframework.nn import BagOfWords, Sequential, make_batches
from hennframework.nn import OwnerRefresher as CoreOwnerRefresher
from hennframework.scheme import KeySet

from hennframework_ckks import CKKSScheme, OwnerRefresher

XOR_X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=float)


def test_xor_steps_match_plaintext(scheme16384: CKKSScheme, keys16384) -> None:  # type: ignore[no-untyped-def]
    """Two SGD steps (11 levels each for this network) with an owner refresh in between."""
    plain = Sequential.mlp([3, 4, 1], activation="taylor3", seed=0, init_scale=4.0)
    encrypted = plain.encrypt(keys16384, scheme16384)
    refresher = OwnerRefresher(scheme16384, keys16384)
    history = encrypted.fit(XOR_X, XOR_Y, epochs=2, learning_rate=0.5, refresh=refresher)
    plain.fit(XOR_X, XOR_Y, epochs=2, learning_rate=0.5)
    assert history.refreshes == refresher.calls == 1
    decrypted = encrypted.decrypt(keys16384.secret)
    for (_, _, got), (_, _, want) in zip(decrypted.parameters(), plain.parameters(), strict=True):
        np.testing.assert_allclose(got, want, atol=2e-3)


def test_sentiment_steps_match_plaintext(scheme16384: CKKSScheme, keys16384) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    reviews = [np.unique(rng.integers(0, 60, size=rng.integers(2, 9))) for _ in range(8)]
    labels = rng.integers(0, 2, size=8).astype(float)
    batches = make_batches(BagOfWords.from_reviews(reviews), labels, 4)
    plain = Sequential.bag_of_words(60, 4, activation="lsq3", seed=0)
    encrypted = plain.encrypt(keys16384, scheme16384)
    history = encrypted.fit(
        batches, learning_rate=0.1, refresh=OwnerRefresher(scheme16384, keys16384)
    )
    plain.fit(batches, learning_rate=0.1)
    assert history.samples == 8 and history.refreshes == 1
    decrypted = encrypted.decrypt(keys16384.secret)
    for got, want in zip(decrypted.weights(), plain.weights(), strict=True):
        np.testing.assert_allclose(got, want, atol=2e-3)


def test_a_sentiment_step_uses_seven_levels(scheme16384: CKKSScheme, keys16384) -> None:  # type: ignore[no-untyped-def]
    """The table times the output weights (1), each review's words selected and summed (2),
    lsq3 (4), times its slope (5), the delta mapped back to the words' rows (6), times the
    learning-rate-scaled output weights (7): the learning rate scales weights that have levels
    to spare, costing the step no level of its own."""
    rng = np.random.default_rng(6)
    reviews = [np.unique(rng.integers(0, 60, size=rng.integers(2, 9))) for _ in range(4)]
    batch = make_batches(BagOfWords.from_reviews(reviews), rng.integers(0, 2, 4).astype(float), 4)
    encrypted = Sequential.bag_of_words(60, 4, activation="lsq3", seed=0).encrypt(
        keys16384, scheme16384
    )
    encrypted.train_step(batch[0], 0.1, with_loss=False)
    top = scheme16384.params.levels
    assert [top - int(w.levels_left) for w in encrypted.weights()] == [7, 7]


def test_the_core_owner_refresher_refreshes_to_the_levels_a_step_uses(
    scheme16384: CKKSScheme, keys16384: KeySet
) -> None:
    """``hennframework.nn.OwnerRefresher`` delegates to the scheme's provider: it refreshes to
    the levels the last step used plus a margin, below the top (the first round counts them from
    the top level, where the weights were encrypted), and training still tracks plaintext
    training."""
    plain = Sequential.mlp([3, 4, 1], activation="taylor3", seed=0, init_scale=4.0)
    encrypted = plain.encrypt(keys16384, scheme16384)
    refresher = CoreOwnerRefresher(scheme16384, keys16384)
    assert isinstance(refresher.provider, OwnerRefresher) and refresher.provider.level == "auto"
    top = scheme16384.params.levels
    batches = make_batches(XOR_X, XOR_Y, 4)
    issued: list[int] = []
    refused = 0
    for _ in range(3):
        try:
            encrypted.train_step(batches[0], 0.5, with_loss=False)
        except OverflowRiskError:
            # exactly the levels the last step used put this network's weight update at level
            # 0, whose value range is too small for it: refused, retried on the top level (as
            # the training loop does), and the refresher keeps a level more from then on
            refused += 1
            encrypted.refresh(refresher)
            encrypted.train_step(batches[0], 0.5, with_loss=False)
        plain.train_step(batches[0], 0.5)
        encrypted.refresh(refresher)
        issued.append(min(int(w.levels_left) for w in encrypted.weights()))
    assert refused <= 1 and refresher.calls == 3 + refused
    assert max(issued) < top
    decrypted = encrypted.decrypt(keys16384.secret)
    for (_, _, got), (_, _, want) in zip(decrypted.parameters(), plain.parameters(), strict=True):
        np.testing.assert_allclose(got, want, atol=2e-3)
