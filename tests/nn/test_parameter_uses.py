"""How a model tells a scheme what each parameter is for (``Sequential.parameter_uses``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hennframework.nn import Dense, EmbeddingSum, Sequential, Sigmoid
from hennframework.scheme import AFTER_GATHERED_ROWS, GATHERED_ROWS
from hennframework.schemes.integer_vector import IntegerVectorScheme


@pytest.fixture(scope="module")
def keys(scheme: IntegerVectorScheme) -> Any:
    return scheme.keygen(seed=3)


def test_an_embedding_and_the_layer_after_it_say_how_they_are_read() -> None:
    assert Sequential.bag_of_words(50, 4, seed=0).parameter_uses() == [
        GATHERED_ROWS,
        AFTER_GATHERED_ROWS,
    ]
    with_bias = Sequential([EmbeddingSum(50, 4), Dense(4, 2, bias=True), Sigmoid("lsq3")])
    assert with_bias.parameter_uses() == [GATHERED_ROWS, AFTER_GATHERED_ROWS, None]
    deeper = Sequential(
        [EmbeddingSum(50, 4), Sigmoid("lsq3"), Dense(4, 1), Sigmoid("lsq3")]
    )  # an activation in between: the dense weights no longer contract the table directly
    assert deeper.parameter_uses() == [GATHERED_ROWS, None]
    assert Sequential.mlp([3, 4, 1], seed=0).parameter_uses() == [None, None]
    model = Sequential.bag_of_words(50, 4, seed=0)
    assert len(model.parameter_uses()) == len(model.parameters())


def test_a_scheme_without_packing_encrypts_each_parameter_as_before(
    scheme: IntegerVectorScheme, keys: Any
) -> None:
    model = Sequential.bag_of_words(30, 4, seed=0)
    model.set_weights([np.full((30, 4), 0.25), model.weights()[1]])
    encrypted = model.encrypt(keys, scheme)
    for got, want in zip(encrypted.decrypt(keys.secret).weights(), model.weights(), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-3)
    values = model.weights()
    with pytest.raises(ValueError, match="one use"):
        scheme.encrypt_parameters(values, keys.public, [GATHERED_ROWS])
    again = scheme.encrypt_like(values[1], encrypted.weights()[1], keys.public)
    np.testing.assert_allclose(scheme.decrypt_tensor(again, keys.secret), values[1], atol=1e-3)
