"""Encrypted FedAvg: the aggregate decrypts to the sample-weighted mean, or refuses."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import hennframework
from hennframework.exceptions import InputError, KeyMismatchError
from hennframework.federated import fedavg, fedavg_weights


@pytest.fixture(scope="module")
def scheme_keys() -> tuple[Any, Any, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheme = hennframework.get_scheme("integer-vector")
        return scheme, scheme.keygen(seed=11), scheme.keygen(seed=12)


def test_weights_are_sample_shares() -> None:
    assert fedavg_weights([1, 3]) == [0.25, 0.75]
    for bad in ([], [0, 2], [-1, 2], [True, 2], [2.5, 1]):
        with pytest.raises(InputError):
            fedavg_weights(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("counts", [[10, 20, 70], [1, 1], [1], [997, 1, 3, 5000]])
def test_aggregate_is_the_weighted_mean(
    scheme_keys: tuple[Any, Any, Any], counts: list[int]
) -> None:
    scheme, keys, _ = scheme_keys
    rng = np.random.default_rng(len(counts))
    plain = [[rng.normal(0, 2, (6, 3)), rng.normal(0, 1, (3, 1))] for _ in counts]
    encrypted = [[scheme.encrypt_tensor(w, keys.public) for w in party] for party in plain]
    mean = fedavg(encrypted, counts)
    total = sum(counts)
    for position, tensor in enumerate(mean):
        expected = sum(n * party[position] for n, party in zip(counts, plain, strict=True)) / total
        got = scheme.decrypt_tensor(tensor, keys.secret)
        # fixed point: the decryption's resolution 1/f (f = 2**12) plus the weight's 2**-24 rounding
        assert np.abs(got - expected).max() <= 1.0 / 2**12 + 2**-20 * np.abs(expected).max()
        assert tensor.noise_budget > 20  # fresh updates keep almost all their budget


def test_unequal_updates_are_refused(scheme_keys: tuple[Any, Any, Any]) -> None:
    scheme, keys, other = scheme_keys
    a = scheme.encrypt_tensor(np.ones((2, 2)), keys.public)
    b = scheme.encrypt_tensor(np.ones((2, 3)), keys.public)
    with pytest.raises(InputError, match="shape"):
        fedavg([[a], [b]], [1, 1])
    with pytest.raises(InputError, match="tensors"):
        fedavg([[a], [a, a]], [1, 1])
    with pytest.raises(InputError, match="plaintext"):
        fedavg([[a], [np.ones((2, 2))]], [1, 1])
    with pytest.raises(InputError, match="sample counts"):
        fedavg([[a], [a]], [1])
    c = scheme.encrypt_tensor(np.ones((2, 2)), other.public)
    with pytest.raises(KeyMismatchError, match="different keys"):
        fedavg([[a], [c]], [1, 1])
