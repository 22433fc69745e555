"""Encrypted training on ordinary standardised data with the default set, no clipping.

scikit-learn ships breast_cancer and digits with the package (no download). Standardised, their
features reach |x| = 10 to 16; before the scheme formed polynomial powers on x / 2**k and bounded
long sums by their actual magnitudes, these runs stopped with OverflowRiskError.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from hennframework.exceptions import OverflowRiskError
from hennframework.nn import OwnerRefresher, Sequential
from hennframework.schemes.integer_vector import IntegerVectorScheme

pytestmark = pytest.mark.filterwarnings(
    "ignore::hennframework.exceptions.InsecureParametersWarning"
)
datasets = pytest.importorskip("sklearn.datasets")


def standardised(name: str) -> tuple[Any, Any, Any, Any]:
    if name == "breast_cancer":
        x, y = datasets.load_breast_cancer(return_X_y=True)
    else:
        digits = datasets.load_digits()
        keep = (digits.target == 3) | (digits.target == 8)
        x, y = digits.data[keep], (digits.target[keep] == 8).astype(float)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    cut = int(0.7 * len(y))
    mean, std = x[:cut].mean(axis=0), x[:cut].std(axis=0)
    std[std == 0] = 1.0
    return (x[:cut] - mean) / std, (x[cut:] - mean) / std, y[:cut], y[cut:]


@pytest.mark.parametrize(
    ("name", "sizes"),
    [("breast_cancer", [30, 1]), ("breast_cancer", [30, 8, 1]), ("digits", [64, 8, 1])],
)
def test_default_set_trains_standardised_data_like_plain(name: str, sizes: list[int]) -> None:
    x_train, x_test, y_train, y_test = standardised(name)
    assert np.abs(x_train).max() > 8  # outliers a clipped copy would not have
    plain = Sequential.mlp(sizes, activation="lsq3", seed=0)
    scheme = IntegerVectorScheme("default")
    keys = scheme.keygen(seed=1)
    encrypted = copy.deepcopy(plain).encrypt(keys, scheme)
    options = {"epochs": 30, "learning_rate": 0.01, "batch_size": 128}
    encrypted.fit(x_train, y_train, refresh=OwnerRefresher(scheme, keys), **options)
    plain.fit(x_train, y_train, **options)

    def accuracy(model: Sequential) -> float:
        return float(((np.asarray(model.predict(x_test)).ravel() > 0.5) == y_test).mean())

    plain_accuracy = accuracy(plain)
    assert plain_accuracy > 0.85
    assert abs(accuracy(encrypted.decrypt(keys.secret)) - plain_accuracy) <= 0.01


def test_a_refused_step_changes_nothing_and_names_the_inputs() -> None:
    scheme = IntegerVectorScheme("default")
    keys = scheme.keygen(seed=1)
    model = Sequential.mlp([2, 1], activation="lsq3", seed=0).encrypt(keys, scheme)
    before = [scheme.decrypt_tensor(w, keys.secret) for w in model.weights()]
    huge = np.array([[3000.0, -2500.0], [1.0, 2.0]])
    with pytest.raises(OverflowRiskError, match=r"\|x\| = 3e\+03.*unchanged|unchanged.*\|x\|"):
        model.fit(huge, np.array([1.0, 0.0]), refresh=OwnerRefresher(scheme, keys))
    after = [scheme.decrypt_tensor(w, keys.secret) for w in model.weights()]
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(old, new)


def test_a_step_refused_after_accepted_ones_names_the_batch_and_the_learning_rate() -> None:
    """Far too large a rate for summed gradients: the weights blow up after one step, and the
    refusal on fresh weights says why a large batch needs a smaller rate, not only the inputs."""
    x_train, _, y_train, _ = standardised("breast_cancer")
    scheme = IntegerVectorScheme("default")
    keys = scheme.keygen(seed=1)
    model = Sequential.mlp([30, 1], activation="lsq3", seed=0).encrypt(keys, scheme)
    with pytest.raises(OverflowRiskError) as refused:
        model.fit(
            x_train,
            y_train,
            epochs=5,
            batch_size=128,
            learning_rate=0.5,
            refresh=OwnerRefresher(scheme, keys),
        )
    message = str(refused.value)
    assert "stopped after 1 of 20 steps" in message
    assert "a batch of 128 can move the weights 128 times as far" in message
    assert "lower the learning rate or use smaller batches" in message
    assert "After 1 accepted step, a refusal often means that training diverges." in message


def test_sentiment_demo_keeps_the_model_when_evaluation_cannot_decrypt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An evaluation refused after training is reported; the trained model is handed over."""
    from hennframework.demos.sentiment import SentimentSettings, format_summary, run_sentiment
    from hennframework.exceptions import NoiseBudgetExhaustedError
    from hennframework.nn import Sequential

    def refuse(self: Sequential, batches: Any, decrypt: Any = None) -> float:
        if self.encrypted:
            raise NoiseBudgetExhaustedError("refusing to decrypt: test")
        return 0.5

    monkeypatch.setattr(Sequential, "evaluate", refuse)
    trained: dict[str, Any] = {}
    settings = SentimentSettings(limit=60, test_size=20, seed=1, compare=False)
    summary = run_sentiment(settings, show_progress=False, trained=trained)
    assert summary["encrypted_test_accuracy"] is None
    assert "kept" in summary["evaluation_error"]
    assert "not available" in format_summary(summary)
    network = trained["network"]
    assert network.encrypted and network.decrypt(trained["keys"].secret).weights()[1].shape == (
        8,
        1,
    )
