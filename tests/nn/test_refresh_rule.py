"""The training loop's refresh rule at its edges, and the demos' refresh after training.

The loop keeps a step's encrypted loss decryptable only when the step is logged (the loss of any
other step is dropped unread), so every loss a key holder reads decrypts; the demos refresh the
trained weights before predicting only when the prediction is refused, never guessing a value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hennframework.demos.common import refresh_if_refused
from hennframework.demos.sentiment import SentimentSettings, prepare
from hennframework.exceptions import NoiseBudgetExhaustedError
from hennframework.nn import OwnerRefresher, Sequential
from hennframework.schemes.integer_vector import IntegerVectorScheme

pytestmark = pytest.mark.filterwarnings(
    "ignore::hennframework.exceptions.InsecureParametersWarning"
)


@pytest.mark.parametrize("log_every", [1, 5])
def test_every_logged_loss_decrypts(log_every: int) -> None:
    """A bag-of-words network (its loss is deeper than its weights) through several refreshes:
    the monitor decrypts every logged loss; a refusal would raise out of ``fit``."""
    prepared = prepare(SentimentSettings(limit=3000, test_size=100, seed=0))
    scheme = IntegerVectorScheme("default")
    keys = scheme.keygen(seed=0)
    model = Sequential.bag_of_words(prepared.vocabulary_size, 8, seed=0).encrypt(keys, scheme)
    read: list[float] = []

    def monitor(loss: Any) -> float:
        read.append(loss.noise_budget)
        return float(np.asarray(scheme.decrypt_tensor(loss, keys.secret)).sum())

    history = model.fit(
        prepared.train,
        learning_rate=0.1,
        refresh=OwnerRefresher(scheme, keys),
        log_every=log_every,
        monitor=monitor,
        absorb_noise=False,  # the loss rule is what is tested: it needs refreshes
    )
    assert history.refreshes >= 2
    assert len(read) == len(prepared.train) // log_every
    assert min(read) > 0
    assert all(record.loss is not None for record in history.records)


def test_logging_less_often_never_costs_refreshes() -> None:
    """Skipping the loss on unlogged steps must not leave the loss rule a stale gap: a gap
    measured on freshly refreshed weights (where the step's own noise dominates) overstates it
    and would ask for a refresh before every logged step."""
    prepared = prepare(SentimentSettings(limit=3000, test_size=100, seed=0))
    scheme = IntegerVectorScheme("default")
    keys = scheme.keygen(seed=0)
    refreshes = {}
    for log_every in (1, 10):
        model = Sequential.bag_of_words(prepared.vocabulary_size, 8, seed=0).encrypt(keys, scheme)
        history = model.fit(
            prepared.train,
            learning_rate=0.1,
            refresh=OwnerRefresher(scheme, keys),
            log_every=log_every,
            absorb_noise=False,
        )
        refreshes[log_every] = history.refreshes
    assert refreshes[1] >= 2
    assert refreshes[10] <= refreshes[1]


class _Model:
    """Counts refreshes; ``refused`` predictions are refused before any succeeds."""

    def __init__(self, refused: int) -> None:
        self.refused, self.refreshes = refused, 0

    def refresh(self, refresh: Any) -> None:
        self.refreshes += 1

    def predict(self) -> float:
        if self.refused:
            self.refused -= 1
            raise NoiseBudgetExhaustedError("refusing to decrypt: test")
        return 1.0


@pytest.mark.parametrize(("refused", "refreshes"), [(0, 0), (1, 1)])
def test_demos_refresh_before_predicting_only_when_refused(refused: int, refreshes: int) -> None:
    model = _Model(refused)
    assert refresh_if_refused(model, lambda tensors: tensors, model.predict) == 1.0
    assert model.refreshes == refreshes


def test_a_second_refusal_is_raised_not_guessed() -> None:
    model = _Model(2)
    with pytest.raises(NoiseBudgetExhaustedError):
        refresh_if_refused(model, lambda tensors: tensors, model.predict)
    assert model.refreshes == 1
