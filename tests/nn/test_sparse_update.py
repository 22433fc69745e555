"""The bag-of-words update scales each sample's delta once, then repeats it for the sample's words.

``EmbeddingSum.backward`` keeps the per-sample deltas and which sample each word belongs to
(``SparseRows.owner``) instead of one delta per word; the update must be, bit for bit, the update
of the repeated deltas (scaling is elementwise), encrypted or not, refusals included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hennframework.exceptions import OverflowRiskError
from hennframework.nn import BagOfWords, Sequential
from hennframework.nn.layers import EmbeddingSum, SparseRows
from hennframework.schemes.integer_vector import IntegerVectorScheme
from hennframework.testing.integer_vector import ciphertext_fields


@pytest.fixture(scope="module")
def keys(scheme: IntegerVectorScheme) -> Any:
    return scheme.keygen(seed=4)


def words() -> BagOfWords:
    """Four samples, one of them without words, some words repeated within and across them."""
    return BagOfWords(np.array([0, 3, 3, 5, 1, 0, 3, 6]), np.array([0, 3, 3, 5, 8]))


def updates(layer: EmbeddingSum, delta: Any, learning_rate: float) -> tuple[Any, Any]:
    """The update through ``backward`` (shared deltas) and through the deltas repeated per word."""
    cache = {"input": words()}
    _, grads = layer.backward(delta, cache, need_input_delta=False)
    shared = grads["weights"]
    assert isinstance(shared, SparseRows) and shared.owner is not None
    repeated = SparseRows(shared.rows, delta[words().owner_of_word])
    return (
        layer.updated("weights", shared, learning_rate),
        layer.updated("weights", repeated, learning_rate),
    )


@pytest.mark.parametrize("learning_rate", [0.1, 0.37, 3.0])
def test_encrypted_update_is_the_update_of_the_repeated_deltas(
    scheme: IntegerVectorScheme, keys: Any, learning_rate: float
) -> None:
    rng = np.random.default_rng(1)
    model = Sequential.bag_of_words(7, 3, seed=2).encrypt(keys)
    layer = model.layers[0]
    assert isinstance(layer, EmbeddingSum)
    delta = scheme.encrypt_tensor(rng.normal(0, 1, (4, 3)), keys.public, seed=3)
    delta = delta * delta  # noise bounds of a product: all three parts differ per item
    shared, repeated = updates(layer, delta, learning_rate)
    assert ciphertext_fields(shared) == ciphertext_fields(repeated)
    assert np.allclose(
        scheme.decrypt_tensor(shared, keys.secret),
        scheme.decrypt_tensor(repeated, keys.secret),
    )


def test_plain_update_is_the_update_of_the_repeated_deltas() -> None:
    layer = EmbeddingSum(7, 3, weights=np.random.default_rng(5).normal(0, 1, (7, 3)))
    delta = np.random.default_rng(6).normal(0, 1, (4, 3))
    shared, repeated = updates(layer, delta, 0.1)
    assert shared.tobytes() == repeated.tobytes()


def test_a_refused_update_is_refused_either_way(scheme: IntegerVectorScheme, keys: Any) -> None:
    """A delta whose scaled coefficients could leave the exact range: both raise alike."""
    layer = Sequential.bag_of_words(7, 3, seed=2).encrypt(keys).layers[0]
    assert isinstance(layer, EmbeddingSum)
    delta = scheme.encrypt_tensor(np.full((4, 3), 100.0), keys.public, seed=8)
    errors = []
    for gradient in (
        SparseRows(words().indices, delta, words().owner_of_word),
        SparseRows(words().indices, delta[words().owner_of_word]),
    ):
        with pytest.raises(OverflowRiskError) as raised:
            layer.updated("weights", gradient, 1000.0)
        errors.append(str(raised.value))
    assert errors[0] == errors[1]


def test_no_words_leave_the_weights_as_they_are(scheme: IntegerVectorScheme, keys: Any) -> None:
    layer = Sequential.bag_of_words(7, 3, seed=2).encrypt(keys).layers[0]
    assert isinstance(layer, EmbeddingSum)
    delta = scheme.encrypt_tensor(np.ones((2, 3)), keys.public, seed=9)
    empty = SparseRows(np.zeros(0, dtype=np.int64), delta, np.zeros(0, dtype=np.int64))
    assert layer.updated("weights", empty, 0.1) is layer.weights
