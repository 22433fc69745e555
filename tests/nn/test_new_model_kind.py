"""A new model kind is one layer file: a layer defined here trains, encrypted, with no other change.

``Square`` is the square activation of CryptoNets (Gilad-Bachrach et al., ICML 2016): the cheapest
non-linearity an HE scheme can evaluate. Nothing outside this file knows about it, yet the model
trains through the one loop on encrypted weights (with owner refreshes), matches plain training,
and survives a ``.henn`` round trip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hennframework import io as hio
from hennframework.nn import Dense, Layer, OwnerRefresher, Sequential, Sigmoid
from hennframework.schemes.integer_vector import IntegerVectorScheme


class Square(Layer):
    """``y = x**2`` elementwise (no parameters); its derivative is ``2x``."""

    type_name = "TestSquare"

    def forward(self, inputs: Any, cache: dict[str, Any]) -> Any:
        cache["input"] = inputs
        return inputs * inputs

    def backward(
        self, delta: Any, cache: dict[str, Any], need_input_delta: bool
    ) -> tuple[Any, dict[str, Any]]:
        return delta * (cache["input"] * 2.0), {}

    def config(self) -> dict[str, Any]:
        return {"type": self.type_name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Square:
        return cls()


def _data() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    rng = np.random.default_rng(7)
    x = rng.normal(0.0, 0.5, (16, 3))
    return x, (x[:, :1] * x[:, 1:2] > 0).astype(np.float64)  # a sign-product target


def _model() -> Sequential:
    rng = np.random.default_rng(3)
    return Sequential(
        [
            Dense(3, 4, weights=rng.uniform(-0.5, 0.5, (3, 4)), bias=True),
            Square(),
            Dense(4, 1, weights=rng.uniform(-0.5, 0.5, (4, 1))),
            Sigmoid("lsq3"),
        ]
    )


def test_a_layer_defined_elsewhere_trains_encrypted_through_the_one_loop(
    scheme: IntegerVectorScheme, tmp_path: Path
) -> None:
    keys = scheme.keygen(seed=5)
    x, y = _data()
    plain, encrypted = _model(), _model().encrypt(keys, scheme)
    refresher = OwnerRefresher(scheme, keys)
    # noise tracked forward (absorb_noise=False) and a floor of 8 bits: the run needs refreshes
    history = encrypted.fit(
        x,
        y,
        epochs=40,
        batch_size=4,
        learning_rate=0.2,
        refresh=refresher,
        absorb_noise=False,
        min_noise_budget=8.0,
    )
    plain.fit(x, y, epochs=40, batch_size=4, learning_rate=0.2)
    assert history.steps == 160 and history.refreshes == refresher.calls >= 1
    assert all(r.encrypted_loss is not None for r in history.records)
    losses = history.decrypt(keys.secret, scheme)
    np.testing.assert_allclose(losses, plain.history.losses, atol=2e-2)
    for got, want in zip(encrypted.decrypt(keys.secret).weights(), plain.weights(), strict=True):
        np.testing.assert_allclose(got, want, atol=5e-3)
    # and it is saved and read back like any built-in layer
    path = hio.save_model(tmp_path / "square.henn", encrypted)
    loaded = hio.load_model(path, scheme=scheme).model
    assert [layer["type"] for layer in loaded.config()] == [
        "Dense",
        "TestSquare",
        "Dense",
        "Sigmoid",
    ]
    np.testing.assert_array_equal(
        scheme.decrypt_tensor(loaded.predict(x), keys.secret),
        scheme.decrypt_tensor(encrypted.predict(x), keys.secret),
    )


def test_logistic_regression_and_a_deeper_mlp_are_the_same_family(
    scheme: IntegerVectorScheme,
) -> None:
    """One Dense + Sigmoid (logistic regression) and two hidden layers use the same loop."""
    keys = scheme.keygen(seed=6)
    x, y = _data()
    y = (x[:, :1] > 0).astype(np.float64)
    for sizes in ([3, 1], [3, 4, 3, 1]):
        plain = Sequential.mlp(sizes, activation="lsq3", bias=True, seed=1)
        encrypted = plain.encrypt(keys, scheme)
        encrypted.fit(
            x, y, epochs=3, batch_size=8, learning_rate=0.1, refresh=OwnerRefresher(scheme, keys)
        )
        plain.fit(x, y, epochs=3, batch_size=8, learning_rate=0.1)
        for got, want in zip(
            encrypted.decrypt(keys.secret).weights(), plain.weights(), strict=True
        ):
            np.testing.assert_allclose(got, want, atol=5e-3)
