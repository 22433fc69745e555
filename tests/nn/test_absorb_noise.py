"""Absorbing the weights' noise after each step: what it moves, what it saves, where it stops.

The forward noise bound of the weights grows by ``1 + lr |H|`` per SGD step (the absolute Hessian:
a public bound cannot see signs), so with it the XOR demo needed 26 owner refreshes in 3,000
iterations. Absorbing the noise into the weights after each step (a backward error of at most
``noise / w`` per step, proved by the worst-case bound) leaves each step only its own noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from hennframework.data.bundled import XOR_INPUTS, XOR_TARGETS
from hennframework.demos.sentiment import SentimentSettings, prepare
from hennframework.demos.xor import XorSettings, format_summary, run_xor
from hennframework.exceptions import SerializationError
from hennframework.io.models import decode_history, encode_history
from hennframework.nn import History, OwnerRefresher, Sequential, absorb_weight_noise
from hennframework.schemes.integer_vector import IntegerVectorScheme
from hennframework.schemes.integer_vector.scheme import ABSORB_MOST, RENEW_COEFFICIENTS_ABOVE

pytestmark = pytest.mark.filterwarnings(
    "ignore::hennframework.exceptions.InsecureParametersWarning"
)


@pytest.fixture(scope="module")
def keys(scheme: IntegerVectorScheme) -> Any:
    return scheme.keygen(seed=7)


def test_absorbing_keeps_the_value_and_states_how_far_it_moved(
    scheme: IntegerVectorScheme, keys: Any
) -> None:
    values = np.array([[0.75, -0.5], [0.25, 0.125]])
    product = scheme.encrypt_tensor(values, keys.public) * scheme.encrypt_tensor(
        values, keys.public
    )
    assert product.max_noise > 0
    result = scheme.absorb_noise(product)
    assert result is not None
    absorbed, moved = result
    # the same data, now with no noise: it decrypts to the same numbers, and any later bound
    # starts from zero
    assert absorbed.data is product.data and absorbed.max_noise == 0.0
    assert absorbed.decryption_bound == 0.0
    np.testing.assert_array_equal(
        scheme.decrypt_tensor(absorbed, keys.secret), scheme.decrypt_tensor(product, keys.secret)
    )
    # the distance is the worst-case bound over w, in the value's own units
    expected = product.max_noise / scheme.params.w / product.scale_int
    assert expected <= moved <= expected * (1 + 1e-8)
    # a coefficient bound with headroom is kept; one near the exact range (as the summed
    # bounds of many updates become) is renewed to the actual largest coefficient
    largest = int(np.abs(np.asarray(product.data)).max())
    assert absorbed.coeff_bound == product.coeff_bound >= largest
    inflated = product.derive(product.data, product.noise, coeff_bound=RENEW_COEFFICIENTS_ABOVE + 1)
    renewed = scheme.absorb_noise(inflated)
    assert renewed is not None and renewed[0].coeff_bound == largest


def test_absorbing_is_refused_beyond_the_limit(scheme: IntegerVectorScheme, keys: Any) -> None:
    noisy = scheme.encrypt_tensor(np.array([3.0]), keys.public) * 1.5
    units = noisy.max_noise / scheme.params.w
    assert scheme.absorb_noise(noisy, most=units / 2) is None
    assert scheme.absorb_noise(noisy, most=units * 2) is not None
    assert 0 < units < ABSORB_MOST  # the default limit is far above one operation's noise


@dataclass
class _Tensor:
    """A stand-in encrypted weight whose scheme absorbs only when told to."""

    name: str
    absorbable: bool
    moved: float

    @property
    def scheme(self) -> Any:
        return self

    def absorb_noise(self, tensor: _Tensor) -> tuple[_Tensor, float] | None:
        if not tensor.absorbable:
            return None
        return _Tensor(tensor.name + "'", True, 0.0), tensor.moved


class _Model:
    def __init__(self, tensors: list[_Tensor]) -> None:
        self.tensors = tensors

    def weights(self) -> list[Any]:
        return list(self.tensors)

    def set_weights(self, values: Any) -> None:
        self.tensors = list(values)


def test_weights_a_scheme_will_not_absorb_keep_their_noise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("hennframework.nn.training.is_encrypted", lambda tensor: True)
    model = _Model([_Tensor("a", True, 2.0**-40), _Tensor("b", False, 1.0)])
    history = History()
    assert absorb_weight_noise(model, history)  # type: ignore[arg-type]
    assert [t.name for t in model.tensors] == ["a'", "b"]
    assert history.absorbed_steps == 1 and history.largest_absorbed == 2.0**-40
    assert absorb_weight_noise(model, history)  # type: ignore[arg-type]
    assert history.absorbed_steps == 2 and history.total_absorbed == 2.0**-40
    nothing = _Model([_Tensor("c", False, 1.0)])
    assert not absorb_weight_noise(nothing, history)  # type: ignore[arg-type]
    assert history.absorbed_steps == 2


def test_the_xor_demo_needs_no_refresh_where_tracking_needs_many() -> None:
    absorbed = run_xor(XorSettings(seed=0), show_progress=False)
    assert absorbed["iterations"] == 3000 and absorbed["learned"]
    assert absorbed["refreshes"] <= 6
    figures = absorbed["absorbed_noise"]
    assert figures["steps"] == 3000
    # each step moved a weight by less than 2**-30 (the fixed-point unit is 2**-12) and all
    # steps together by less than 2**-20
    assert 0 < figures["largest_per_step"] < 2.0**-30 and figures["total"] < 2.0**-20
    assert "absorbed after 3000 steps" in format_summary(absorbed)
    tracked = run_xor(XorSettings(seed=0, iterations=600, absorb_noise=False), show_progress=False)
    assert tracked["absorbed_noise"] is None and tracked["refreshes"] >= 3


def test_absorbed_training_follows_the_plain_network(
    scheme: IntegerVectorScheme, keys: Any
) -> None:
    plain = Sequential.mlp([3, 4, 1], seed=2, init_scale=4.0)
    encrypted = Sequential.mlp([3, 4, 1], seed=2, init_scale=4.0).encrypt(keys)
    refresher = OwnerRefresher(scheme, keys)
    history = encrypted.fit(
        XOR_INPUTS, XOR_TARGETS, epochs=400, learning_rate=0.05, refresh=refresher
    )
    plain.fit(XOR_INPUTS, XOR_TARGETS, epochs=400, learning_rate=0.05)
    assert refresher.calls == 0 and history.absorbed_steps == 400
    for got, want in zip(encrypted.decrypt(keys.secret).weights(), plain.weights(), strict=True):
        np.testing.assert_allclose(got, want, atol=5e-3)  # fixed point and polynomial vs float
    losses = history.decrypt(keys.secret, scheme)
    np.testing.assert_allclose(losses, plain.history.losses, atol=2e-2)


@pytest.mark.parametrize("params", ["vhe", "seed"])
def test_every_named_set_absorbs_a_step(params: str) -> None:
    scheme = IntegerVectorScheme(params)
    keys = scheme.keygen(seed=0)
    model = Sequential.mlp([3, 4, 1], seed=0, init_scale=4.0).encrypt(keys)
    history = model.fit(XOR_INPUTS, XOR_TARGETS, epochs=50, learning_rate=0.015)
    assert history.absorbed_steps == 50 and history.refreshes == 0
    # below a hundredth of the set's fixed-point unit per step
    assert history.largest_absorbed < 0.01 / scheme.params.scale


def test_sentiment_trains_without_refreshes() -> None:
    """A bag-of-words network over 90 steps: tracked forward it needs refreshes (see
    test_refresh_rule), absorbed it needs none, and every logged loss still decrypts."""
    prepared = prepare(SentimentSettings(limit=3000, test_size=100, seed=0))
    scheme = IntegerVectorScheme("default")
    keys = scheme.keygen(seed=0)
    model = Sequential.bag_of_words(prepared.vocabulary_size, 8, seed=0).encrypt(keys, scheme)
    refresher = OwnerRefresher(scheme, keys)
    history = model.fit(prepared.train, learning_rate=0.1, refresh=refresher)
    assert refresher.calls == 0 and history.absorbed_steps == len(prepared.train)
    losses = history.decrypt(keys.secret, scheme)
    assert all(math.isfinite(loss) for loss in losses)
    assert model.evaluate(
        prepared.test, decrypt=lambda out: scheme.decrypt_tensor(out, keys.secret)
    )


def test_absorbed_figures_are_saved_with_the_history() -> None:
    history = History(steps=3, absorbed_steps=3, largest_absorbed=2.0**-40)
    history.total_absorbed = 3 * 2.0**-41
    meta, encrypted = encode_history(history, keep_plain_losses=False)
    loaded = decode_history(meta, encrypted, "model.henn")
    assert loaded.absorbed_summary() == history.absorbed_summary()
    assert decode_history({"records": []}, [], "old.henn").absorbed_summary() is None
    for bad in ({"steps": 1}, {"steps": 1, "largest_per_step": 1.0, "total": 0.5}, [1, 2]):
        with pytest.raises(SerializationError, match="history is malformed"):
            decode_history({"records": [], "absorbed_noise": bad}, [], "model.henn")
