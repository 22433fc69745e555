"""``henn federated run``: N parties on one machine, on Flower's simulation engine (Ray).

The owner's ServerApp runs in this process; Flower runs the parties' ClientApp in Ray workers
(one CPU each) and moves every message as protobuf, as the deployment engine does over gRPC.
For comparison, :func:`centralized_baseline` trains the same initial model on all the parties'
reviews in one place with the same loop, batch size and learning rate, for the same number of
reviews, evaluating it at the same points.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Callable
from typing import Any

from hennframework.exceptions import HennError
from hennframework.federated.apps import (
    FederatedSettings,
    OwnerResult,
    RoundResult,
    _local_steps,
    client_app,
    make_server_app,
    owner_scheme_and_keys,
)
from hennframework.federated.data import load_split, owner_vocabulary, party_batches
from hennframework.nn import OwnerRefresher, Sequential, train

__all__ = ["centralized_baseline", "peak_memory_mb", "run_federated"]


def peak_memory_mb() -> float:
    """Peak resident memory of this process and its finished children (Linux: kilobytes)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024.0


def run_federated(
    settings: FederatedSettings,
    *,
    progress: Callable[[RoundResult, int], None] | None = None,
    cpus: int | None = None,
) -> OwnerResult:
    """Run owner and ``settings.parties`` parties on the simulation engine; the owner's result."""
    from flwr.simulation import run_simulation

    settings.check()
    load_split(settings.data)  # refuse bad data here, before any worker starts
    sink: list[OwnerResult] = []
    server = make_server_app(settings, sink, progress)
    available = cpus or os.cpu_count() or 1
    backend_config: dict[str, Any] = {
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
        "init_args": {
            "num_cpus": available,
            "num_gpus": 0,
            "include_dashboard": False,
            "logging_level": logging.ERROR,
            "log_to_driver": False,
        },
    }
    flwr_logger = logging.getLogger("flwr")
    level = flwr_logger.level
    flwr_logger.setLevel(logging.ERROR)
    try:
        run_simulation(
            server_app=server,
            client_app=client_app,
            num_supernodes=settings.parties,
            backend_config=backend_config,
        )
    finally:
        flwr_logger.setLevel(level)
    if not sink:
        raise HennError(
            "the federated run ended without a result: the owner's ServerApp failed (its error is "
            "in the log above). Rerun with fewer --parties or check --data."
        )
    return sink[0]


def centralized_baseline(settings: FederatedSettings) -> dict[str, Any]:
    """Encrypted training of the same initial model on all training reviews in one place.

    Same loop (:func:`hennframework.nn.train`), batch size, learning rate and sigmoid; the owner's
    refresher in-process. It takes as many steps as the federated run's reviews make (rounds x
    parties x local steps batches), as one plan resumed round by round, and is evaluated after
    each round's share of them.
    """
    import hennframework
    from hennframework.io.codecs import adopt_scheme

    train_part, held_out = load_split(settings.data)
    words = owner_vocabulary(settings.data, train_part)
    network = Sequential.bag_of_words(len(words), settings.hidden, seed=settings.seed)
    scheme = hennframework.get_scheme(settings.scheme, params=settings.params)
    batch_size, learning_rate = settings.training(scheme.name)
    scheme, keys = owner_scheme_and_keys(scheme, network, batch_size, settings)
    adopt_scheme(scheme)
    model = network.encrypt(keys, scheme)
    batches = party_batches(settings.data, train_part, words, batch_size)
    test = party_batches(settings.data, held_out, words, 256)
    per_round = settings.parties * _local_steps(settings, len(train_part), batch_size)
    total = per_round * settings.rounds
    refresher = OwnerRefresher(scheme, keys)
    accuracies: list[float] = []
    started = time.perf_counter()
    done = 0
    while done < total:
        # one plan of ``total`` steps (rounded up to whole epochs), taken a round's share at a
        # time: the loop keeps its place in the batches and its measured step cost
        outcome = train(
            model,
            batches,
            epochs=-(-total // len(batches)),
            learning_rate=learning_rate,
            refresh=refresher,
            history=model.history,
            state=model.state,
            resume=done > 0,
            max_steps=min(per_round, total - done),
            when_exhausted="stop",
        )
        done += outcome.steps
        if outcome.status != "complete" or outcome.steps == 0:
            break
        accuracies.append(model.decrypt(keys.secret).evaluate(test))
    return {
        "steps": done,
        "accuracy": accuracies,
        "refreshes": refresher.calls,
        "seconds": time.perf_counter() - started,
    }
