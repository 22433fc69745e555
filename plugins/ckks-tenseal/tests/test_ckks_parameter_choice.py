"""Keys for one model on the shortest chain that holds its step, with as many rotation keys as fit.

Levels a training step never uses cost twice: every key-switching key holds a polynomial per
level, and the owner's first refresh goes to the top. ``henn keygen --for`` (and the sentiment
demo) therefore take, of the sets with the default ring degree, the one with the fewest levels
that holds one step with 2 to spare (``n16384-9`` for the bag-of-words network, whose step uses
7), and as many rotation keys as keep the public material within 64 MB.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hennframework.cli import main as henn
from hennframework.nn import BagOfWords, OwnerRefresher, Sequential, make_batches
from hennframework.workflow.owner import scheme_for_model

from hennframework_ckks import CKKSScheme
from hennframework_ckks.codec import CODEC
from hennframework_ckks.keys import (
    PUBLIC_MATERIAL_BUDGET,
    key_switching_key_bytes,
    rotation_keys_within,
)
from hennframework_ckks.params import HE_STANDARD_MAX_BITS_128, get_params

VOCABULARY = 300


def _word_batches(seed: int, reviews: int = 16) -> list:
    rng = np.random.default_rng(seed)
    words = [
        np.unique(rng.integers(0, VOCABULARY, size=rng.integers(2, 15))) for _ in range(reviews)
    ]
    labels = rng.integers(0, 2, size=reviews).astype(float)
    return make_batches(BagOfWords.from_reviews(words), labels, reviews)


def _word_model() -> Sequential:
    model = Sequential.bag_of_words(VOCABULARY, 4, activation="lsq3", seed=0)
    table = np.random.default_rng(1).normal(0.0, 0.3, (VOCABULARY, 4))
    model.set_weights([table, model.weights()[1]])
    return model


def test_the_short_chain_is_128_bit_and_accepted_by_seal() -> None:
    params = get_params("n16384-9")
    assert params.levels == 9 and params.total_bits <= HE_STANDARD_MAX_BITS_128[16384]
    assert params.security_bits == 128 and "350 bits" in params.security_note
    CKKSScheme("n16384-9")  # SEAL checks the chain against its own 128-bit table


@pytest.mark.parametrize("name", ["n8192", "n16384-9"])
def test_key_size_estimates_bound_the_real_keys(name: str) -> None:
    keys = CKKSScheme(name).keygen(rotations=[1])
    sizes = keys.public.size_bytes()
    estimate = key_switching_key_bytes(keys.public.params)
    assert sizes["relin_keys"] <= estimate and sizes["galois_keys"] <= estimate
    assert sizes["relin_keys"] > 0.9 * estimate  # an estimate, not a loose guess


def test_rotation_keys_within_the_budget() -> None:
    assert rotation_keys_within(get_params("n16384")) == 4
    assert rotation_keys_within(get_params("n16384-9")) == 7
    assert rotation_keys_within(get_params("n16384"), budget=1) == 1  # never none
    assert rotation_keys_within(get_params("n8192")) > 12  # every power of two fits
    assert PUBLIC_MATERIAL_BUDGET == 64_000_000


def test_a_word_model_gets_the_short_chain_and_xor_the_long_one() -> None:
    scheme = CKKSScheme("n16384")
    (batch,) = _word_batches(0)
    assert CODEC.parameter_set_for(scheme, _word_model(), batch) == "n16384-9"
    xor = Sequential.mlp([3, 4, 1], activation="taylor3", seed=0)
    inputs = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
    (xor_batch,) = make_batches(inputs, np.array([0.0, 1.0, 1.0, 0.0]), 4)
    assert CODEC.parameter_set_for(scheme, xor, xor_batch) == "n16384"  # 11 of 12 levels
    # only sets of the same ring degree: n8192 stays n8192
    small = Sequential.mlp([3, 1], activation="taylor3", seed=0)
    assert CODEC.parameter_set_for(CKKSScheme("n8192"), small, xor_batch) == "n8192"


def test_scheme_for_model_keeps_schemes_without_a_choice() -> None:
    import warnings

    import hennframework
    from hennframework.exceptions import InsecureParametersWarning

    with warnings.catch_warnings():  # warned once per process: maybe already, maybe here
        warnings.simplefilter("ignore", InsecureParametersWarning)
        integer = hennframework.get_scheme("integer-vector")
    assert scheme_for_model(integer, _word_model(), 16) is integer
    ckks = CKKSScheme("n16384")
    assert scheme_for_model(ckks, _word_model(), None) is ckks
    assert scheme_for_model(ckks, _word_model(), 16).params.name == "n16384-9"


def test_a_word_model_trains_on_the_short_chain_as_in_plaintext() -> None:
    scheme = CKKSScheme("n16384-9")
    keys = scheme.keygen()
    model, plain = _word_model(), _word_model()
    encrypted = model.encrypt(keys, scheme)
    refresher = OwnerRefresher(scheme, keys)
    batches = _word_batches(3) + _word_batches(4)
    encrypted.fit(batches, learning_rate=0.1, refresh=refresher)
    plain.fit(batches, learning_rate=0.1)
    for got, want in zip(encrypted.decrypt(keys.secret).weights(), plain.weights(), strict=True):
        np.testing.assert_allclose(got, want, atol=2e-3)


def test_henn_keygen_for_sentiment_picks_the_chain_and_the_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "k"
    command = ["--scheme", "ckks", "keygen", "--out", str(out), "--json", "--for", "sentiment"]
    sizes = ["--vocabulary-size", str(VOCABULARY), "--batch-size", "16"]
    assert henn([*command, *sizes]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["parameter_set"] == "n16384-9"
    assert 1 <= len(summary["rotations"]) <= 7
    assert summary["public_bytes"] < PUBLIC_MATERIAL_BUDGET
    # a named set is kept
    named = tmp_path / "named"
    assert (
        henn([*command[:3], "--params", "n16384", *command[3:4], str(named), *command[5:], *sizes])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["parameter_set"] == "n16384"


def test_the_sentiment_demo_trains_on_the_short_chain() -> None:
    """``henn demo sentiment --scheme ckks`` without ``--params`` encrypts under the set the
    plugin picks for the network, and says so in its summary."""
    from hennframework.demos.sentiment import SentimentSettings, run_sentiment

    settings = SentimentSettings(limit=300, test_size=40, seed=0, scheme="ckks", batch_size=128)
    summary = run_sentiment(settings, show_progress=False)
    assert summary["parameter_set"] == "n16384-9"
    assert summary["encrypted_test_accuracy"] is not None


def test_the_federated_owner_makes_keys_for_the_model() -> None:
    """Every party receives and keeps the owner's public key: the owner makes it for the model,
    as ``henn keygen --for`` does (the recommended set without ``--params``; only the rotation
    keys the model's training and prediction use)."""
    pytest.importorskip("flwr", reason='needs Flower: pip install -e ".[federated]"')
    from hennframework.federated.apps import FederatedSettings, owner_scheme_and_keys
    from hennframework.workflow.owner import keygen_options_for_model

    model = _word_model()
    settings = FederatedSettings(scheme="ckks")  # no --params: the set recommended for the model
    scheme, keys = owner_scheme_and_keys(CKKSScheme("n16384"), model, 16, settings)
    assert scheme.params.name == "n16384-9"
    chosen = keygen_options_for_model(scheme, model, 16)["rotations"]
    assert sorted(keys.public.rotation_steps) == sorted(chosen)
    assert len(chosen) <= rotation_keys_within(scheme.params)
