"""``henn federated run`` on Flower's simulation engine: a small run, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("flwr", reason='needs Flower: pip install -e ".[federated]"')


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hennframework.cli", "federated", "run", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "RAY_DEDUP_LOGS": "0"},
        check=False,
    )


@pytest.mark.slow
def test_three_parties_two_rounds_label_skew() -> None:
    done = _run(
        "--parties", "3", "--rounds", "2", "--limit", "900", "--split", "label-skew",
        "--local-steps", "2", "--seed", "3", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["scheme"] == "integer-vector"
    assert summary["security"].startswith("INSECURE")
    # and it was said before any work, not only in the summary
    assert "INSECURE" in done.stderr.split("federated rounds")[0]
    assert len(summary["rounds"]) == 2
    for row in summary["rounds"]:
        assert row["parties"] == 3 and not row["failures"]
        # 3 parties x 2 steps x 32 reviews (every shard has at least 64 reviews)
        assert row["samples"] == 3 * 2 * 32
        assert 0.0 <= row["accuracy"] <= 1.0
        assert row["noise_budget"] > 0
    first, second = summary["rounds"]
    # the parties absorb the weights' noise after each step, so a round uses about one step's
    # budget and the aggregate needs no refresh
    assert not first["refreshed"]
    # the public key goes to each party once (round 1); later rounds carry the model only
    assert first["bytes_to_parties"] > second["bytes_to_parties"] > 0
    assert second["bytes_from_parties"] > 0
    central = summary["centralized"]
    assert central["steps"] == 2 * 3 * 2 and len(central["accuracy"]) == 2


def test_missing_data_is_refused_before_any_worker_starts(tmp_path: object) -> None:
    done = _run("--parties", "2", "--rounds", "1", "--data", "/nonexistent/reviews.tsv", timeout=60)
    assert done.returncode != 0
    assert "/nonexistent/reviews.tsv" in done.stderr
    assert "Traceback" not in done.stderr


def test_centralized_baseline_takes_the_federated_runs_steps() -> None:
    from hennframework.federated.apps import FederatedSettings
    from hennframework.federated.data import DataSpec
    from hennframework.federated.simulation import centralized_baseline

    # 2 parties x 3 local steps x 3 rounds = 18 steps of 32 reviews: more than one pass over the
    # ~240 training reviews, so the plan resumes across an epoch boundary
    settings = FederatedSettings(
        parties=2, rounds=3, local_steps=3, seed=4, data=DataSpec(limit=300)
    )
    central = centralized_baseline(settings)
    assert central["steps"] == 18
    assert len(central["accuracy"]) == 3
    assert all(0.0 <= accuracy <= 1.0 for accuracy in central["accuracy"])
    assert isinstance(central["refreshes"], int)
