"""The parties' ClientApp handler, called directly: key checks, key kept between rounds, reply."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

pytest.importorskip("flwr", reason='needs Flower: pip install -e ".[federated]"')
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict

import hennframework
from hennframework.exceptions import InputError, KeyMismatchError
from hennframework.federated.apps import KEY_STATE, _owner_key, _party_train
from hennframework.federated.data import DataSpec, load_split, owner_vocabulary
from hennframework.federated.records import (
    RECORD,
    decode_model,
    encode_model,
    encode_public_key,
)
from hennframework.io.codecs import adopt_scheme
from hennframework.io.models import ModelBundle
from hennframework.nn import Sequential

SPEC = DataSpec(limit=300)


@pytest.fixture(autouse=True)
def task_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a SuperNode sets before it calls a ClientApp (messages are stamped with it)."""
    from flwr.supercore.task_identity import TaskIdentity

    for name, value in (("_run_id", 1), ("_task_id", 1), ("_node_id", 1)):
        monkeypatch.setattr(TaskIdentity, name, value, raising=False)


@pytest.fixture(scope="module")
def owner() -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheme = hennframework.get_scheme("integer-vector")
        keys, other = scheme.keygen(seed=31), scheme.keygen(seed=32)
    adopt_scheme(scheme)
    train, _ = load_split(SPEC)
    words = owner_vocabulary(SPEC, train)
    network = Sequential.bag_of_words(len(words), 4, seed=0)
    bundle = ModelBundle(network.encrypt(keys, scheme), words)
    return {"scheme": scheme, "keys": keys, "other": other, "bundle": bundle}


def _message(owner: dict[str, Any], *, with_key: bool = True, key: Any = None) -> Message:
    entries = {"model": encode_model(owner["bundle"])}
    if with_key:
        entries["public-key"] = encode_public_key(key or owner["keys"], owner["scheme"])
    config = ConfigRecord(
        {
            "round": 1,
            "local-steps": 2,
            "learning-rate": 0.1,
            "batch-size": 16,
            "split": "iid",
            "key-id": owner["keys"].key_id,
            **SPEC.to_config(),
        }
    )
    content = RecordDict({RECORD: ArrayRecord(entries), "config": config})
    return Message(content=content, dst_node_id=1, message_type="train")


def _context(**node: Any) -> Context:
    return Context(
        run_id=1,
        node_id=1,
        node_config={"partition-id": 0, "num-partitions": 2, **node},
        state=RecordDict(),
        run_config={},
    )


def test_party_trains_and_keeps_the_key(owner: dict[str, Any]) -> None:
    context = _context()
    reply = _party_train(_message(owner), context)
    metrics = reply.content.metric_records["metrics"]
    assert metrics["num-examples"] == 32 and metrics["steps"] == 2
    assert metrics["needs-refresh"] == 0 and metrics["round-cost-bits"] > 0
    # only the weights go back: no encrypted losses, no training plan
    update = decode_model(
        reply.content.array_records[RECORD], _owner_key(owner["keys"], owner["scheme"])
    )
    assert update.history.steps == 0 and not update.history.records
    assert update.training.planned_steps == 0 and update.training.step_cost is None
    assert [w.shape for w in update.model.weights()] == [
        w.shape for w in owner["bundle"].model.weights()
    ]
    assert KEY_STATE in context.state.array_records
    # next round: no key in the message, the party uses the one it kept
    again = _party_train(_message(owner, with_key=False), context)
    assert again.content.metric_records["metrics"]["num-examples"] == 32


def test_party_without_a_key_refuses(owner: dict[str, Any]) -> None:
    with pytest.raises(InputError, match="no public key"):
        _party_train(_message(owner, with_key=False), _context())


def test_party_refuses_a_key_that_is_not_the_published_one(owner: dict[str, Any]) -> None:
    # the owner's key id came out of band (node config); the message carries another key
    with pytest.raises(KeyMismatchError, match="published key id"):
        _party_train(_message(owner, key=owner["other"]), _context())
    with pytest.raises(KeyMismatchError, match="published key id"):
        _party_train(_message(owner), _context(**{"key-id": owner["other"].key_id}))


@pytest.mark.parametrize(
    ("scheme", "expected"), [("integer-vector", (32, 0.1)), ("ckks", (256, 0.025))]
)
def test_batch_and_rate_left_out_follow_the_scheme(
    scheme: str, expected: tuple[int, float]
) -> None:
    """The same defaults as `henn demo sentiment` and `henn train` (word_model_defaults)."""
    from hennframework.federated.apps import FederatedSettings, settings_from_run_config

    settings = settings_from_run_config({"rounds": 2, "scheme": scheme})
    assert (settings.batch_size, settings.learning_rate) == (None, None)
    assert settings.training(scheme) == expected
    given = settings_from_run_config({"batch-size": 8, "learning-rate": 0.3})
    assert given.training(scheme) == (8, 0.3)
    with pytest.raises(InputError, match="--lr must be > 0"):
        FederatedSettings(learning_rate=0.0).check()
    with pytest.raises(InputError, match="--batch-size"):
        FederatedSettings(batch_size=0).check()
