"""The model API, unencrypted and encrypted: gradients, tracking, errors, the XOR demo."""

from __future__ import annotations

import re
import warnings
from typing import Any, ClassVar

import numpy as np
import pytest

from hennframework.demos.xor import XOR_INPUTS, XOR_TARGETS, XorSettings, run_xor
from hennframework.exceptions import (
    CapabilityError,
    InputError,
    NoiseBudgetExhaustedError,
    TrainingDivergedError,
)
from hennframework.nn import Dense, OwnerRefresher, Sequential, Sigmoid, get_sigmoid
from hennframework.registry import get_backend
from hennframework.scheme import Capability
from hennframework.schemes.integer_vector import IntegerVectorScheme


@pytest.fixture(scope="module")
def keys(scheme: IntegerVectorScheme) -> Any:
    return scheme.keygen(seed=7)


def _numeric_gradient(
    model: Sequential, x: np.ndarray, y: np.ndarray, layer: int, eps: float = 1e-6
) -> np.ndarray:
    weights = model.layers[layer].weights
    grad = np.zeros_like(weights)
    for index in np.ndindex(weights.shape):
        original = weights[index]
        weights[index] = original + eps
        up = float(model.loss_and_gradients(x, y)[1])
        weights[index] = original - eps
        down = float(model.loss_and_gradients(x, y)[1])
        weights[index] = original
        grad[index] = (up - down) / (2 * eps)
    return grad


@pytest.mark.parametrize("activation", ["taylor3", "taylor5", "lsq3", "exact"])
def test_plain_gradients_match_finite_differences(activation: str) -> None:
    rng = np.random.default_rng(3)
    model = Sequential.mlp([3, 5, 2], activation=activation, seed=11, bias=False)
    model.layers.insert(2, Dense(5, 5, weights=rng.uniform(-0.5, 0.5, (5, 5))))
    model.layers.insert(3, Sigmoid(activation))
    x = rng.uniform(-1, 1, (6, 3))
    y = rng.uniform(0, 1, (6, 2))
    _, _, grads = model.loss_and_gradients(x, y)
    for layer_index, layer in enumerate(model.layers):
        if isinstance(layer, Dense):
            numeric = _numeric_gradient(model, x, y, layer_index)
            np.testing.assert_allclose(grads[layer_index]["weights"], numeric, rtol=1e-5, atol=1e-7)


def test_bias_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(5)
    layer = Dense(3, 2, bias=True, rng=rng)
    layer.bias = rng.uniform(-1, 1, 2)
    model = Sequential([layer, Sigmoid("lsq3")])
    x, y = rng.uniform(-1, 1, (4, 3)), rng.uniform(0, 1, (4, 2))
    _, _, grads = model.loss_and_gradients(x, y)
    numeric = np.zeros(2)
    for i in range(2):
        layer.bias[i] += 1e-6
        up = float(model.loss_and_gradients(x, y)[1])
        layer.bias[i] -= 2e-6
        down = float(model.loss_and_gradients(x, y)[1])
        layer.bias[i] += 1e-6
        numeric[i] = (up - down) / 2e-6
    np.testing.assert_allclose(grads[0]["bias"], numeric, rtol=1e-5)


def test_encrypted_weights_track_plain_weights(scheme: IntegerVectorScheme, keys: Any) -> None:
    plain = Sequential.mlp([3, 4, 1], activation="taylor3", seed=2, init_scale=4.0)
    encrypted = plain.encrypt(keys)
    refresher = OwnerRefresher(scheme, keys)
    plain.fit(XOR_INPUTS, XOR_TARGETS, epochs=60, learning_rate=0.015)
    history = encrypted.fit(
        XOR_INPUTS, XOR_TARGETS, epochs=60, learning_rate=0.015, refresh=refresher
    )
    decrypted = encrypted.decrypt(keys.secret)
    # Fixed point at scale 2**12: each step adds at most a few 1/scale of rounding per weight.
    for ours, reference in zip(decrypted.weights(), plain.weights(), strict=True):
        np.testing.assert_allclose(ours, reference, atol=60 * 4 / scheme.params.scale)
    assert history.steps == 60
    # The encrypted loss decrypts to the plain loss of the same step (within fixed-point error).
    losses = history.decrypt(keys.secret, scheme)
    assert abs(losses[-1] - plain.history.losses[-1]) < 5e-3


def test_encrypted_prediction_needs_only_the_secret_key(
    scheme: IntegerVectorScheme, keys: Any
) -> None:
    plain = Sequential.mlp([3, 4, 1], seed=1)
    encrypted = plain.encrypt(keys)
    predictions = encrypted.predict(XOR_INPUTS)
    assert not isinstance(predictions, np.ndarray)
    values = scheme.decrypt_tensor(predictions, keys.secret)
    np.testing.assert_allclose(values, plain.predict(XOR_INPUTS), atol=2e-3)
    other = scheme.keygen(seed=99)
    with pytest.raises(Exception, match="key"):
        scheme.decrypt_tensor(predictions, other.secret)


def test_seed_sigmoid_table_through_the_whole_chain(scheme: IntegerVectorScheme, keys: Any) -> None:
    """The Taylor sigmoid of Trask's 2017 post (4 terms) of 0.1 .. 1.0, computed homomorphically and decrypted."""
    expected = [
        0.5249792,
        0.549834,
        0.5744426,
        0.598688,
        0.6224609,
        0.645662,
        0.6682043,
        0.690016,
        0.7110427,
        0.73125,
    ]
    x = np.round(np.arange(1, 11) / 10, 1)
    encrypted = scheme.encrypt_tensor(x, keys.public)
    values = scheme.decrypt_tensor(
        encrypted.polyval(get_sigmoid("taylor5").coefficients), keys.secret
    )
    np.testing.assert_allclose(values, expected, atol=1e-3)


def test_exact_sigmoid_cannot_be_encrypted(keys: Any) -> None:
    model = Sequential.mlp([3, 2, 1], activation="exact", seed=0)
    with pytest.raises(InputError, match="polynomial"):
        model.encrypt(keys)


class _AdditiveOnlyScheme(IntegerVectorScheme):
    name = "additive-only"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.ADD, Capability.MUL_PLAIN}
    )


def test_missing_capability_fails_before_training(keys: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        limited = _AdditiveOnlyScheme("default", backend=get_backend("numpy"))
    model = Sequential.mlp([3, 2, 1], seed=0)
    with pytest.raises(CapabilityError, match="mul-cipher"):
        model.encrypt(keys, scheme=limited)


def test_bad_training_input_is_rejected(keys: Any) -> None:
    model = Sequential.mlp([3, 2, 1], seed=0)
    with pytest.raises(InputError, match="rows"):
        model.fit(XOR_INPUTS, XOR_TARGETS[:3])
    with pytest.raises(InputError, match="columns"):
        model.fit(XOR_INPUTS[:, :2], XOR_TARGETS)
    with pytest.raises(InputError, match="NaN"):
        model.fit(np.full((4, 3), np.nan), XOR_TARGETS)


def test_noise_budget_exhaustion_raises_without_refresh(
    scheme: IntegerVectorScheme, keys: Any
) -> None:
    encrypted = Sequential.mlp([3, 4, 1], seed=0, init_scale=4.0).encrypt(keys)
    with pytest.raises(NoiseBudgetExhaustedError, match="refresh"):
        encrypted.fit(XOR_INPUTS, XOR_TARGETS, epochs=2000, learning_rate=0.015, absorb_noise=False)


def test_refreshes_are_counted(scheme: IntegerVectorScheme, keys: Any) -> None:
    encrypted = Sequential.mlp([3, 4, 1], seed=0, init_scale=4.0).encrypt(keys)
    refresher = OwnerRefresher(scheme, keys)
    history = encrypted.fit(
        XOR_INPUTS,
        XOR_TARGETS,
        epochs=250,
        learning_rate=0.015,
        refresh=refresher,
        absorb_noise=False,
    )
    assert history.refreshes == refresher.calls >= 1
    assert encrypted.min_noise_budget() is not None and encrypted.min_noise_budget() > 0


def test_xor_demo_learns() -> None:
    summary = run_xor(XorSettings(iterations=400, seed=0), show_progress=False)
    assert summary["learned"], summary["predictions"]
    assert [round(p) for p in summary["predictions"]] == [0, 1, 1, 0]
    assert summary["security"].startswith("INSECURE")


def test_target_width_must_match_the_output_layer_plain_and_encrypted(keys: Any) -> None:
    """A 2-column y on a 1-output model: the same clear error, encrypted or not, before any step."""
    plain = Sequential.mlp([3, 4, 1], seed=0)
    encrypted = plain.encrypt(keys)
    two_columns = np.hstack([XOR_TARGETS, XOR_TARGETS])
    messages = []
    for model in (plain, encrypted):
        with pytest.raises(InputError, match=r"y has shape \(4, 2\).*1 output unit") as info:
            model.fit(XOR_INPUTS, two_columns, epochs=1)
        messages.append(str(info.value))
        assert model.history.steps == 0
        assert model.layers[-2].weights.shape == (4, 1)  # not broadcast to 4 x 2
    assert messages[0] == messages[1]
    assert "(4,) or (4, 1)" in messages[0]
    wide = Sequential.mlp([3, 4, 2], seed=0)
    with pytest.raises(InputError, match=r"y has shape \(4,\).*2 output units.*\(4, 2\)"):
        wide.fit(XOR_INPUTS, XOR_TARGETS[:, 0], epochs=1)
    wide.fit(XOR_INPUTS, two_columns, epochs=1)  # the right width trains
    assert wide.history.steps == 1


def test_plain_divergence_stops_with_a_clear_error() -> None:
    model = Sequential.mlp([3, 4, 1], seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no NumPy overflow warnings either
        with pytest.raises(TrainingDivergedError, match=r"diverged at step (\d+)") as info:
            model.fit(XOR_INPUTS * 50, XOR_TARGETS, epochs=100, learning_rate=0.5)
    message = str(info.value)
    assert "learning rate (it is 0.5)" in message and "scale the inputs" in message
    found = re.search(r"diverged at step (\d+)", message)
    assert found is not None
    step = int(found.group(1))
    assert model.history.steps == step - 1  # stopped there, not after 100 NaN steps
    assert all(np.isfinite(w).all() for w in model.weights())  # left at the last finite values
    assert all(loss is not None and np.isfinite(loss) for loss in model.history.losses)


def test_plain_training_that_stays_finite_is_not_stopped() -> None:
    model = Sequential.mlp([3, 4, 1], seed=0, init_scale=4.0)
    history = model.fit(XOR_INPUTS, XOR_TARGETS, epochs=50, learning_rate=0.015)
    assert history.steps == 50


@pytest.mark.parametrize(
    ("field", "value"),
    [("iterations", 0), ("iterations", -5), ("learning_rate", 0.0), ("learning_rate", -1.0)],
)
def test_xor_demo_refuses_non_positive_settings(field: str, value: float) -> None:
    """0 iterations used to fall back silently to the default 3,000; now it is an error."""
    settings = XorSettings(**{field: value})  # type: ignore[arg-type]
    expected = "iterations" if field == "iterations" else "learning rate"
    with pytest.raises(InputError, match=expected):
        run_xor(settings, show_progress=False, log=lambda *_: None)
