"""Federated averaging under CKKS: the owner's side of a round, with the parties' ClientApp
handler called directly (no simulation engine).

The average of the parties' updates takes an operation of its own after their steps (a plaintext
product by each party's share of the samples). Refreshed to just the levels a step uses, the
weights would come back at level 1 and the average would land at level 0, whose range (512 at
``n16384-9``) the tracked bounds of an update can exceed: a round that raised
``OverflowRiskError`` on the owner's side after the parties' work, with no way to retry it. The
owner therefore refreshes to the top, and the average always lands a level above the last.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("flwr", reason='needs Flower: pip install -e ".[federated]"')
from flwr.app import Context, Message, RecordDict
from hennframework.federated import apps
from hennframework.federated.apps import FederatedSettings, _party_train, run_owner
from hennframework.federated.data import DataSpec
from hennframework.nn import OwnerRefresher

from hennframework_ckks import CKKSScheme

PARTIES = 2


@pytest.fixture(autouse=True)
def task_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a SuperNode sets before it calls a ClientApp (messages are stamped with it)."""
    from flwr.supercore.task_identity import TaskIdentity

    for name, value in (("_run_id", 1), ("_task_id", 1), ("_node_id", 1)):
        monkeypatch.setattr(TaskIdentity, name, value, raising=False)


class DirectGrid:
    """Delivers the owner's messages to the parties' handler in this process."""

    def __init__(self) -> None:
        self.contexts = {
            node: Context(
                run_id=1,
                node_id=node,
                node_config={"partition-id": node - 1, "num-partitions": PARTIES},
                state=RecordDict(),
                run_config={},
            )
            for node in range(1, PARTIES + 1)
        }

    def get_node_ids(self) -> list[int]:
        return list(self.contexts)

    def send_and_receive(self, messages: list[Message], timeout: float | None = None) -> list[Any]:
        from flwr.supercore.task_identity import TaskIdentity

        replies = []
        for message in messages:
            node = message.metadata.dst_node_id
            TaskIdentity._node_id = node  # type: ignore[attr-defined]  # replies name their party
            replies.append(_party_train(message, self.contexts[node]))
        return replies


def test_the_average_never_lands_on_the_last_level(monkeypatch: pytest.MonkeyPatch) -> None:
    averaged: list[list[int]] = []
    fedavg = apps.fedavg

    def recording(updates: list[list[Any]], counts: list[int]) -> list[Any]:
        averaged.append([int(w.levels_left) for update in updates for w in update])
        return fedavg(updates, counts)

    monkeypatch.setattr(apps, "fedavg", recording)
    settings = FederatedSettings(
        parties=PARTIES,
        rounds=3,
        scheme="ckks",
        params="n16384-9",
        batch_size=16,
        learning_rate=0.025,
        hidden=4,
        seed=0,
        data=DataSpec(limit=200),
    )
    result = run_owner(DirectGrid(), settings)  # type: ignore[arg-type]
    assert [r.refreshed for r in result.rounds] == [True, True, False]  # not after the last
    assert all(not r.failures for r in result.rounds)
    assert len(averaged) == 3
    # a step uses 7 of the 9 levels: every update comes back with 2, the average keeps 1
    assert all(min(levels) >= 2 for levels in averaged), averaged


def test_a_full_owner_refresh_gives_the_top_level() -> None:
    scheme = CKKSScheme("n8192")
    keys = scheme.keygen(rotations="none")
    weights = scheme.encrypt_tensor([[0.5, -0.25]], keys.public) * 0.5  # one level used
    top = int(keys.public.context.top_level)
    assert int(weights.levels_left) == top - 1
    (fresh,) = OwnerRefresher(scheme, keys, full=True)([weights])
    assert int(fresh.levels_left) == top
