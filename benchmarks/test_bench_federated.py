"""Federated rounds on Flower's simulation engine: rounds per second and bytes per round vs parties.

Each case runs the owner and N parties (``henn federated run``'s engine) for a few rounds of
encrypted FedAvg on the shipped movie reviews (2,000 of them, one local step per party per round)
and records, besides the whole run's time, the figures that matter: seconds per round after the
first (the first includes starting Ray and sending the public key), rounds per second, and the
bytes the owner sends and receives per round. The integer-vector sets are INSECURE: speed only.
Skipped without Flower (``pip install -e ".[federated]"``).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("flwr") is None,
        reason='needs Flower: pip install -e ".[federated]"',
    ),
]

ROUNDS = 4


@pytest.mark.parametrize("parties", [2, 8, 32])
def test_federated_rounds(benchmark: Any, parties: int) -> None:
    from hennframework.federated.apps import FederatedSettings
    from hennframework.federated.data import DataSpec
    from hennframework.federated.simulation import run_federated

    settings = FederatedSettings(
        parties=parties, rounds=ROUNDS, local_steps=1, seed=0, data=DataSpec(limit=2000)
    )
    benchmark.group = "federated rounds (simulation engine)"
    result = benchmark.pedantic(run_federated, args=(settings,), rounds=1, iterations=1)
    later = result.rounds[1:]
    per_round = sum(r.seconds for r in later) / len(later)
    benchmark.extra_info.update(
        {
            "operation": "encrypted FedAvg round",
            "parties": parties,
            "rounds": ROUNDS,
            "scheme": result.scheme,
            "security": result.security,
            "seconds_per_round": per_round,
            "rounds_per_second": 1.0 / per_round,
            "bytes_per_round": sum(r.bytes_to_parties + r.bytes_from_parties for r in later)
            / len(later),
            "first_round_bytes": result.rounds[0].bytes_to_parties
            + result.rounds[0].bytes_from_parties,
            "unit": "round",
        }
    )
    assert all(r.parties == parties and not r.failures for r in result.rounds)
