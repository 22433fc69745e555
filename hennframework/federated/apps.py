"""The Flower apps: the owner's ServerApp (holds the secret key) and the parties' ClientApp.

A round: the owner sends every sampled party the encrypted model and the public key (as `.henn`
containers, :mod:`hennframework.federated.records`) with the round's settings; each party checks
the key against the owner's published key id, trains the encrypted model on its own reviews with
the framework's one training loop (:func:`hennframework.nn.train`, with no refresh provider: a
party never asks the owner to decrypt its individual update) and returns the encrypted weights
and its sample count; the owner averages the returned ciphertexts weighted by sample count
without decrypting them (:func:`hennframework.federated.aggregation.fedavg`), refreshes the
aggregate with its secret key when the next round needs more noise budget than it has, and
evaluates it on its own held-out reviews.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

import hennframework
from hennframework.exceptions import HennError, InputError
from hennframework.federated.aggregation import fedavg
from hennframework.federated.data import (
    DataSpec,
    load_split,
    owner_vocabulary,
    party_batches,
    party_shard,
)
from hennframework.federated.records import (
    RECORD,
    decode_model,
    decode_public_key,
    encode_model,
    encode_public_key,
    record_bytes,
)
from hennframework.io.bundles import KeyFile
from hennframework.io.codecs import adopt_scheme
from hennframework.io.models import ModelBundle
from hennframework.nn import OwnerRefresher, Sequential, train, word_model_defaults
from hennframework.nn.training import FIRST_STEP_MARGIN
from hennframework.workflow.owner import keygen_options_for_model, scheme_for_model

__all__ = [
    "FederatedSettings",
    "OwnerResult",
    "RoundResult",
    "client_app",
    "make_server_app",
    "run_owner",
    "server_app",
]


@dataclass
class FederatedSettings:
    """What the owner runs. ``local_steps=None``: one pass over the parties' data in all rounds."""

    parties: int = 2
    rounds: int = 3
    local_steps: int | None = None
    learning_rate: float | None = None  # None: word_model_defaults(scheme)
    batch_size: int | None = None  # None: word_model_defaults(scheme)
    hidden: int = 8
    split: str = "iid"
    scheme: str | None = None
    params: str | None = None
    seed: int | None = None
    refresh: str = "auto"
    data: DataSpec = field(default_factory=DataSpec)
    wait_for_parties_s: float = 120.0
    round_timeout_s: float | None = None

    def check(self) -> None:
        if self.parties < 1 or self.rounds < 1:
            raise InputError("--parties and --rounds must be at least 1.")
        if self.local_steps is not None and self.local_steps < 1:
            raise InputError("--local-steps must be at least 1.")
        if (
            (self.learning_rate is not None and not self.learning_rate > 0)
            or (self.batch_size is not None and self.batch_size < 1)
            or self.hidden < 1
        ):
            raise InputError("--lr must be > 0, --batch-size and --hidden at least 1.")
        if self.refresh not in ("auto", "always"):
            raise InputError(f"--refresh {self.refresh!r}: use auto or always.")

    def training(self, scheme_name: str) -> tuple[int, float]:
        """(batch size, learning rate) the parties train with: those given, else the defaults
        for a word model under ``scheme_name`` (:func:`~hennframework.nn.word_model_defaults`:
        32 reviews at 0.1, 256 at 0.025 under CKKS), the same as ``henn demo sentiment`` and
        ``henn train``."""
        return word_model_defaults(scheme_name, self.batch_size, self.learning_rate)


@dataclass
class RoundResult:
    """One round as the owner saw it (bytes: container payloads, owner -> parties and back)."""

    round: int
    parties: int
    samples: int
    local_steps: int
    accuracy: float | None
    bytes_to_parties: int
    bytes_from_parties: int
    seconds: float
    refreshed: bool
    noise_budget: float | None
    failures: list[str] = field(default_factory=list)


@dataclass
class OwnerResult:
    """The run: key id, scheme, vocabulary size, held-out reviews and the rounds."""

    key_id: str
    scheme: str
    security: str
    vocabulary: int
    held_out: int
    local_steps: int
    batch_size: int
    learning_rate: float
    rounds: list[RoundResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _int(value: Any, what: str) -> int:
    """A whole number from a Flower record or config, refused (InputError) if it is anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InputError(f"{what} must be a whole number, got {value!r}.")
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"{what} must be a whole number, got {value!r}.") from None
    if not number.is_integer():
        raise InputError(f"{what} must be a whole number, got {value!r}.")
    return int(number)


def _float(value: Any, what: str) -> float:
    """A finite number from a Flower record or config, refused (InputError) otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InputError(f"{what} must be a number, got {value!r}.")
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"{what} must be a number, got {value!r}.") from None
    if not math.isfinite(number):
        raise InputError(f"{what} must be a finite number, got {value!r}.")
    return number


def _local_steps(settings: FederatedSettings, train_reviews: int, batch_size: int) -> int:
    if settings.local_steps is not None:
        return settings.local_steps
    if settings.scheme == "ckks":
        return 1  # levels carry about one SGD step; the owner refreshes after each round
    batches = math.ceil(train_reviews / settings.parties / batch_size)
    return max(1, math.ceil(batches / settings.rounds))


def owner_scheme_and_keys(
    scheme: Any, network: Any, batch_size: int, settings: FederatedSettings
) -> tuple[Any, Any]:
    """The owner's scheme (``scheme`` or its recommended set) and keys for ``network`` trained
    in batches of ``batch_size``.

    As ``henn keygen --for`` makes them: without ``params``, the parameter set the scheme
    recommends for the network; and, for schemes whose codec can tell, only the evaluation keys
    its training and prediction use (CKKS: ``n16384-9`` and 7 rotation keys for the sentiment
    network, 59.5 MB of public material instead of the default set's, which every party
    receives and keeps). Keys come from the OS CSPRNG; a seed (experiments only) for schemes
    that accept one. SEAL (CKKS) refuses seeded keys, so there the seed only fixes the initial
    weights.
    """
    if settings.params is None:
        scheme = scheme_for_model(scheme, network, batch_size)
    options = keygen_options_for_model(scheme, network, batch_size, required=False)
    if settings.seed is not None and scheme.name != "ckks":
        options["seed"] = settings.seed
    return scheme, scheme.keygen(**options)


def _owner_key(keys: Any, scheme: Any) -> KeyFile:
    return KeyFile(keys.public, scheme, keys.key_id, "the owner's public key", {}, True)


Progress = Callable[[RoundResult, int], None]


def run_owner(
    grid: Grid, settings: FederatedSettings, progress: Progress | None = None
) -> OwnerResult:
    """The model owner's side of a federated run (keys stay in this process)."""
    settings.check()
    train_part, held_out = load_split(settings.data)
    words = owner_vocabulary(settings.data, train_part)
    network = Sequential.bag_of_words(len(words), settings.hidden, seed=settings.seed)
    scheme = hennframework.get_scheme(settings.scheme, params=settings.params)
    batch_size, learning_rate = settings.training(scheme.name)
    scheme, keys = owner_scheme_and_keys(scheme, network, batch_size, settings)
    adopt_scheme(scheme)
    owner_key = _owner_key(keys, scheme)
    bundle = ModelBundle(network.encrypt(keys, scheme), words)
    # Fresh weights with a fresh encryption's whole budget: after the parties' steps the average
    # takes an operation of its own, which a refresh sized to one step leaves at the last CKKS
    # level, whose range (512 at n16384-9) the tracked bounds of a party's update can exceed.
    refresher = OwnerRefresher(scheme, keys, full=True)
    test_batches = party_batches(settings.data, held_out, words, 256)
    public_entry = encode_public_key(keys, scheme)
    steps = _local_steps(settings, len(train_part), batch_size)
    result = OwnerResult(
        keys.key_id,
        scheme.name,
        keys.params.security_label(),
        len(words),
        len(held_out),
        steps,
        batch_size,
        learning_rate,
    )
    nodes = _wait_for_parties(grid, settings)
    round_cost = 0.0  # the most budget one party's local training used in the last round
    keyed: set[int] = set()
    for round_number in range(1, settings.rounds + 1):
        started = time.perf_counter()
        config = ConfigRecord(
            {
                "round": round_number,
                "local-steps": steps,
                "learning-rate": learning_rate,
                "batch-size": batch_size,
                "split": settings.split,
                "key-id": keys.key_id,
                **settings.data.to_config(),
            }
        )
        model_entry = encode_model(bundle)
        messages = []
        sent = 0
        for node in nodes:
            # the public key (tens of MB of CKKS evaluation keys) goes to each party once;
            # the party keeps it in its node state for the rest of the run
            entries = {"model": model_entry}
            if node not in keyed:
                entries["public-key"] = public_entry
                keyed.add(node)
            arrays = ArrayRecord(entries)
            sent += record_bytes(arrays)
            content = RecordDict({RECORD: arrays, "config": config})
            messages.append(Message(content=content, dst_node_id=node, message_type="train"))
        replies = list(grid.send_and_receive(messages, timeout=settings.round_timeout_s))
        updates: list[list[Any]] = []
        counts: list[int] = []
        received = 0
        failures: list[str] = []
        stopped = False
        for node in set(nodes) - {reply.metadata.src_node_id for reply in replies}:
            failures.append(f"party {node}: no reply within the round's time limit")
            keyed.discard(node)  # it may have lost the key: send it again next round
        for reply in replies:
            party = reply.metadata.src_node_id
            if reply.has_error():
                failures.append(f"party {party}: {reply.error.reason}")
                keyed.discard(party)
                continue
            try:
                arrays = reply.content.array_records[RECORD]
                received += record_bytes(arrays)
                metrics = reply.content.metric_records["metrics"]
                samples = _int(metrics["num-examples"], "a party's sample count")
                stopped = stopped or bool(_int(metrics.get("needs-refresh", 0), "needs-refresh"))
                cost = _float(metrics.get("round-cost-bits", 0.0), "round-cost-bits")
                if samples <= 0:
                    failures.append(f"party {party}: no update ({samples} samples)")
                    continue
                update = decode_model(arrays, owner_key, where=f"party {party}'s update")
            except KeyError as exc:
                failures.append(f"party {party}: its reply lacks {exc}")
                continue
            except HennError as exc:
                failures.append(f"party {party}: {exc}")
                continue
            round_cost = max(round_cost, cost)
            updates.append(update.model.weights())
            counts.append(samples)
        if not updates:
            raise HennError(
                f"round {round_number}: no party returned a usable update "
                f"({'; '.join(failures)}); the model is unchanged."
            )
        bundle.model.set_weights(fedavg(updates, counts))
        budget = bundle.model.min_noise_budget()
        # the next round must fit in the aggregate's budget: as much as the last round used
        # (the weights' noise absorbed after each step, a round uses about one step's worth;
        # tracked forward, the sum of its steps), with the loop's margin
        needed = 2.0 + max(FIRST_STEP_MARGIN, 1.5 * round_cost)
        refreshed = (
            settings.refresh == "always" or stopped or budget is None or budget < needed
        ) and round_number < settings.rounds
        if refreshed:
            bundle.model.refresh(refresher)  # counted in the model's history
        accuracy = (
            bundle.model.decrypt(keys.secret).evaluate(test_batches) if test_batches else None
        )
        record = RoundResult(
            round_number,
            len(updates),
            sum(counts),
            steps,
            accuracy,
            sent,
            received,
            time.perf_counter() - started,
            refreshed,
            bundle.model.min_noise_budget(),
            failures,
        )
        result.rounds.append(record)
        if progress is not None:
            progress(record, settings.rounds)
    return result


def _wait_for_parties(grid: Grid, settings: FederatedSettings) -> list[int]:
    deadline = time.monotonic() + settings.wait_for_parties_s
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= settings.parties:
            return nodes[: settings.parties]
        if time.monotonic() > deadline:
            raise InputError(
                f"{len(nodes)} of {settings.parties} parties connected within "
                f"{settings.wait_for_parties_s:.0f} s; start more SuperNodes or lower --parties."
            )
        time.sleep(0.5)


def make_server_app(
    settings: FederatedSettings,
    sink: list[OwnerResult],
    progress: Progress | None = None,
) -> ServerApp:
    """A ServerApp running :func:`run_owner` with ``settings``; the result is appended to ``sink``."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        sink.append(run_owner(grid, settings, progress))

    return app


def settings_from_run_config(config: Any) -> FederatedSettings:
    """Settings from a Flower run config (``flwr run --run-config "rounds=3 parties=2"``)."""

    def get(name: str, default: Any) -> Any:
        return config.get(name, default)

    def optional(name: str, convert: Callable[[Any], Any]) -> Any:
        value = config.get(name)
        return None if value is None else convert(value)

    local = int(get("local-steps", 0))
    seed = int(get("seed", -1))
    return FederatedSettings(
        parties=int(get("parties", 2)),
        rounds=int(get("rounds", 3)),
        local_steps=None if local <= 0 else local,
        learning_rate=optional("learning-rate", float),  # absent: the scheme's default
        batch_size=optional("batch-size", int),
        split=str(get("split", "iid")),
        scheme=str(get("scheme", "")) or None,
        params=str(get("params", "")) or None,
        seed=None if seed < 0 else seed,
        data=DataSpec.from_config(config),
    )


#: The deployment engine's ServerApp (``flwr run``): settings from the run config; the summary is
#: written as JSON to the run config's ``summary-out`` path when given.
server_app = ServerApp()


@server_app.main()
def _deployed_owner(grid: Grid, context: Context) -> None:
    import json
    from pathlib import Path

    settings = settings_from_run_config(context.run_config)
    result = run_owner(grid, settings)
    out = str(context.run_config.get("summary-out", ""))
    if out:
        Path(out).write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")


#: Where a party keeps the owner's public key between rounds (its Flower node state).
KEY_STATE = "henn-owner-public-key"

#: The parties' ClientApp (simulation and deployment alike).
client_app = ClientApp()


@client_app.train()
def _party_train(msg: Message, context: Context) -> Message:
    """One party's round: check the key, train locally, return ciphertexts and a sample count."""
    config = msg.content.config_records["config"]
    arrays = msg.content.array_records[RECORD]
    node = context.node_config
    # a party that got the owner's key id out of band (node config) checks against that one
    expected = str(node.get("key-id", "")) or str(config["key-id"])
    if "public-key" in arrays:
        context.state.array_records[KEY_STATE] = ArrayRecord({"public-key": arrays["public-key"]})
    if KEY_STATE not in context.state.array_records:
        raise InputError(
            "the owner's message carries no public key and this party has none from an earlier "
            "round: restart the run so that the owner sends it."
        )
    public = decode_public_key(
        context.state.array_records[KEY_STATE],
        expected_id=expected,
        where="the owner's message",
    )
    bundle = decode_model(arrays, public, where="the owner's message")
    if bundle.vocabulary is None:  # a saved vocabulary means the model takes word indices
        raise InputError(
            "the federated party trains a bag-of-words model on reviews; the owner's model "
            "carries no vocabulary."
        )
    spec = DataSpec.from_config(config)
    if "data" in node:  # deployment: the party's own file, named on its SuperNode
        spec = DataSpec(data=str(node["data"]), limit=None, test_size=spec.test_size)
    partition = _int(node.get("partition-id", 0), "the node config's partition-id")
    partitions = _int(node.get("num-partitions", 1), "the node config's num-partitions")
    train_part, _ = load_split(spec)
    shard = party_shard(train_part, partition, partitions, str(config["split"]))
    batches = party_batches(
        spec, shard, list(bundle.vocabulary), _int(config["batch-size"], "batch-size")
    )
    steps = _int(config["local-steps"], "local-steps")
    offset = ((_int(config["round"], "round") - 1) * steps) % len(batches)
    rotated = batches[offset:] + batches[:offset]
    bundle.drop_history()
    start = bundle.model.min_noise_budget()
    outcome = train(
        bundle.model,
        rotated,
        epochs=math.ceil(steps / len(rotated)),
        learning_rate=_float(config["learning-rate"], "learning-rate"),
        refresh=None,
        history=bundle.history,
        state=bundle.training,
        max_steps=steps,
        when_exhausted="stop",
    )
    samples = bundle.history.samples
    # the budget this round used: from the start to the lowest after any step
    lowest = outcome.lowest_noise_budget
    cost = None if start is None or lowest is None else max(start - lowest, 0.0)
    # only the weights go back: no encrypted losses, no training state
    bundle.drop_history()
    reply = RecordDict(
        {
            RECORD: ArrayRecord({"model": encode_model(bundle)}),
            "metrics": MetricRecord(
                {
                    "num-examples": samples,
                    "steps": outcome.steps,
                    "needs-refresh": int(outcome.status == "needs-refresh"),
                    "round-cost-bits": 0.0 if cost is None else float(cost),
                }
            ),
        }
    )
    return Message(content=reply, reply_to=msg)
