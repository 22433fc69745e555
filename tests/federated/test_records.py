"""Flower records made from the `.henn` codecs: round trips, and the same refusals as files."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

pytest.importorskip("flwr", reason='needs Flower: pip install -e ".[federated]"')
from flwr.app import Array, ArrayRecord

import hennframework
from hennframework.exceptions import KeyMismatchError, SerializationError
from hennframework.federated.records import (
    STYPE,
    decode_model,
    decode_public_key,
    encode_model,
    encode_public_key,
    record_bytes,
)
from hennframework.io.bundles import KeyFile
from hennframework.io.codecs import adopt_scheme
from hennframework.io.models import ModelBundle
from hennframework.nn import Sequential


@pytest.fixture(scope="module")
def setup() -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheme = hennframework.get_scheme("integer-vector")
        keys, other = scheme.keygen(seed=21), scheme.keygen(seed=22)
    adopt_scheme(scheme)
    network = Sequential.bag_of_words(5, 3, seed=0)
    _, output = network.weights()
    network.set_weights([np.arange(15, dtype=np.float64).reshape(5, 3) / 10, output])
    words = ["good", "bad", "fine", "dull", "great"]
    return {
        "scheme": scheme,
        "keys": keys,
        "other": other,
        "plain": network,
        "bundle": ModelBundle(network.encrypt(keys, scheme), words),
        "other_bundle": ModelBundle(network.encrypt(other, scheme), words),
        "words": words,
    }


def _key(keys: Any, scheme: Any) -> KeyFile:
    return KeyFile(keys.public, scheme, keys.key_id, "test key", {}, True)


def test_model_and_key_round_trip(setup: dict[str, Any]) -> None:
    scheme, keys = setup["scheme"], setup["keys"]
    record = ArrayRecord(
        {"model": encode_model(setup["bundle"]), "public-key": encode_public_key(keys, scheme)}
    )
    assert record_bytes(record) > 0
    public = decode_public_key(record, expected_id=keys.key_id)
    assert public.verified and public.key_id == keys.key_id
    bundle = decode_model(record, public)
    assert bundle.vocabulary == setup["words"]
    plain = bundle.model.decrypt(keys.secret)
    expected = setup["plain"].weights()
    assert [w.shape for w in plain.weights()] == [(5, 3), (3, 1)]
    for got, want in zip(plain.weights(), expected, strict=True):
        assert np.abs(got - want).max() < 1e-3


def test_key_not_the_published_one_is_refused(setup: dict[str, Any]) -> None:
    record = ArrayRecord({"public-key": encode_public_key(setup["other"], setup["scheme"])})
    with pytest.raises(KeyMismatchError, match="published key id"):
        decode_public_key(record, expected_id=setup["keys"].key_id)


def test_model_under_another_key_is_refused(setup: dict[str, Any]) -> None:
    record = ArrayRecord({"model": encode_model(setup["other_bundle"])})
    with pytest.raises(KeyMismatchError, match="party 3"):
        decode_model(record, _key(setup["keys"], setup["scheme"]), where="party 3")


def test_secret_key_never_travels(setup: dict[str, Any]) -> None:
    with pytest.raises(SerializationError):
        encode_public_key(setup["keys"].secret, setup["scheme"])


def test_plain_model_is_not_sent(setup: dict[str, Any]) -> None:
    with pytest.raises(SerializationError, match="encrypt"):
        encode_model(ModelBundle(setup["plain"], setup["words"]))


def test_tampered_and_foreign_payloads_are_refused(setup: dict[str, Any]) -> None:
    key = _key(setup["keys"], setup["scheme"])
    data = bytearray(encode_model(setup["bundle"]).data)
    data[len(data) // 2] ^= 0xFF
    tampered = Array(dtype="uint8", shape=(len(data),), stype=STYPE, data=bytes(data))
    with pytest.raises(SerializationError):
        decode_model(ArrayRecord({"model": tampered}), key)
    foreign = ArrayRecord({"model": Array(np.zeros(4, dtype=np.float64))})
    with pytest.raises(SerializationError, match=r"not a \.henn container"):
        decode_model(foreign, key)
    with pytest.raises(SerializationError, match="no 'model' record"):
        decode_model(ArrayRecord({}), key)
