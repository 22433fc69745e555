"""The encrypted loss is computed only where the training loop reads it, and the owner refresher
uses a scheme's own provider where the scheme has one.

A step asked for no loss (``with_loss=False``) skips the squared error (on encrypted outputs a
squaring and a sum) and updates the weights exactly as a step with the loss; the loop asks for it
on logged steps and on the step that measures how much deeper the loss is than the weights.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

import hennframework.nn.model as model_module
from hennframework.exceptions import TrainingDivergedError
from hennframework.nn import Batch, OwnerRefresher, Sequential, StepResult, make_batches, ops, train
from hennframework.scheme import KeySet
from hennframework.schemes.integer_vector import IntegerVectorScheme

X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
Y = np.array([0.0, 1.0, 1.0, 0.0])


@pytest.fixture(scope="module")
def keys(scheme: IntegerVectorScheme) -> KeySet:
    return scheme.keygen(seed=4)


def _encrypted(scheme: IntegerVectorScheme, keys: KeySet) -> Sequential:
    return Sequential.mlp([2, 3, 1], activation="taylor3", seed=1).encrypt(keys, scheme)


def test_a_step_without_the_loss_computes_none_and_updates_the_same(
    scheme: IntegerVectorScheme, keys: KeySet, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_loss = _encrypted(scheme, keys)
    without = copy.deepcopy(with_loss)
    batch = make_batches(X, Y, 4)[0]
    losses = 0
    halve = ops.multiply_constant

    def counted(value: Any, constant: float) -> Any:  # the loss's 1/2 * sum(error**2)
        nonlocal losses
        losses += 1
        return halve(value, constant)

    monkeypatch.setattr(model_module, "multiply_constant", counted)
    kept = with_loss.train_step(batch, 0.5)
    assert losses == 1 and kept.loss is not None
    skipped = without.train_step(batch, 0.5, with_loss=False)
    assert losses == 1 and skipped.loss is None
    for got, want in zip(without.weights(), with_loss.weights(), strict=True):
        assert np.array_equal(
            scheme.decrypt_tensor(got, keys.secret), scheme.decrypt_tensor(want, keys.secret)
        )
    assert np.array_equal(
        scheme.decrypt_tensor(skipped.outputs, keys.secret),
        scheme.decrypt_tensor(kept.outputs, keys.secret),
    )


def test_a_plain_step_keeps_its_loss_and_still_detects_divergence() -> None:
    model = Sequential.mlp([2, 3, 1], activation="taylor3", seed=1)
    assert model.train_step(make_batches(X, Y, 4)[0], 0.1, with_loss=False).loss is not None
    before = [w.copy() for w in model.weights()]
    with pytest.raises(TrainingDivergedError):
        model.train_step(make_batches(X * 1e120, Y, 4)[0], 0.1, with_loss=False)
    for got, want in zip(model.weights(), before, strict=True):
        assert np.array_equal(got, want)


class _Wrapped:
    """A Trainable around a Sequential (the loop's view of a model defined elsewhere)."""

    def __init__(self, model: Sequential) -> None:
        self.model = model
        self.asked: list[bool | None] = []  # with_loss per step (None: not passed)

    @property
    def encrypted(self) -> bool:
        return self.model.encrypted

    def weights(self) -> list[Any]:
        return self.model.weights()

    def set_weights(self, values: Sequence[Any]) -> None:
        self.model.set_weights(values)


class _Recording(_Wrapped):
    """Records what the loop asks of each step."""

    def train_step(
        self, batch: Batch, learning_rate: float, *, with_loss: bool = True
    ) -> StepResult:
        self.asked.append(with_loss)
        return self.model.train_step(batch, learning_rate, with_loss=with_loss)


class _Legacy(_Wrapped):
    """Written before ``with_loss``: its step takes no such keyword."""

    def train_step(self, batch: Batch, learning_rate: float) -> StepResult:
        self.asked.append(None)
        return self.model.train_step(batch, learning_rate)


def test_the_loop_asks_for_the_loss_only_where_it_reads_it(
    scheme: IntegerVectorScheme, keys: KeySet
) -> None:
    model = _Recording(_encrypted(scheme, keys))
    decrypted: list[float] = []

    def monitor(loss: Any) -> float:
        decrypted.append(float(np.asarray(scheme.decrypt_tensor(loss, keys.secret)).sum()))
        return decrypted[-1]

    outcome = train(
        model,
        make_batches(X, Y, 2),
        epochs=4,
        learning_rate=0.5,
        refresh=OwnerRefresher(scheme, keys),
        log_every=3,
        monitor=monitor,
    )
    assert outcome.status == "complete" and outcome.completed_steps == 8
    # the first step measures the loss gap; then every third (logged) step and the step before
    # it, which measures the gap the logged step's loss rule uses
    assert model.asked == [True, True, True, False, True, True, False, True]
    assert [record.step for record in outcome.history.records] == [3, 6]
    assert [record.loss for record in outcome.history.records] == decrypted
    assert all(record.encrypted_loss is not None for record in outcome.history.records)


def test_a_trainable_without_the_keyword_still_trains(
    scheme: IntegerVectorScheme, keys: KeySet
) -> None:
    model = _Legacy(_encrypted(scheme, keys))
    # statically the protocol's step takes ``with_loss``; at run time an older one still works
    outcome = train(
        model,  # type: ignore[arg-type]
        make_batches(X, Y, 2),
        epochs=2,
        learning_rate=0.5,
        refresh=None,
        log_every=2,
    )
    assert outcome.completed_steps == len(model.asked) == 4
    assert len(outcome.history.records) == 2


class _CountingScheme:
    """A scheme with its own owner refresher (wraps the integer-vector scheme's refresh)."""

    def __init__(self, inner: IntegerVectorScheme) -> None:
        self.inner, self.own_rounds = inner, 0

    def refresh(self, tensor: Any, keys: KeySet) -> Any:
        raise AssertionError("the scheme's own owner refresher should be used")

    def owner_refresher(self, keys: KeySet) -> Any:
        def provider(tensors: list[Any]) -> list[Any]:
            self.own_rounds += 1
            return [self.inner.refresh(tensor, keys) for tensor in tensors]

        return provider


def test_the_owner_refresher_uses_the_schemes_own_provider(
    scheme: IntegerVectorScheme, keys: KeySet
) -> None:
    counting = _CountingScheme(scheme)
    refresher = OwnerRefresher(counting, keys)
    tensor = scheme.encrypt_tensor(np.array([1.0, -2.0]), keys.public)
    fresh = refresher([tensor, tensor])
    assert refresher.calls == counting.own_rounds == 1 and len(fresh) == 2
    np.testing.assert_allclose(scheme.decrypt_tensor(fresh[0], keys.secret), [1.0, -2.0])
    # a scheme without one (the integer-vector scheme) refreshes tensor by tensor
    assert scheme.owner_refresher(keys) is None
    plain_refresher = OwnerRefresher(scheme, keys)
    assert plain_refresher.provider is None and len(plain_refresher([tensor])) == 1
