"""Architectures and training histories as JSON + tensors (used by :mod:`hennframework.io.bundles`).

A model is a :class:`~hennframework.nn.Sequential`: its file holds the layers' ``config()`` (each
layer type registered in :data:`hennframework.nn.layers.LAYER_TYPES` reads its own back), the
parameters in ``parameters()`` order, and, for a model whose first layer is an ``EmbeddingSum``,
optionally the vocabulary's words (a party needs them to turn its reviews into word indices).
Files written before the sentiment network became a ``Sequential`` (type ``sentiment``) are read
as the same three layers.

A history is the list of training records (step, epoch, seconds, noise budget, the loss if it is
known in plaintext, and which encrypted loss belongs to the record) plus counters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hennframework.exceptions import HennError, SerializationError
from hennframework.nn.layers import Layer, layer_from_config
from hennframework.nn.model import Sequential
from hennframework.nn.training import History, TrainingRecord, TrainingState

__all__ = ["ModelBundle", "build_model", "describe_architecture", "encode_architecture"]


@dataclass
class ModelBundle:
    """A model read from (or to be written to) a file, with what travels alongside it.

    The history and the resumable training state are the model's own (``model.history``,
    ``model.state``); the bundle adds the vocabulary and where the file came from.
    """

    model: Sequential
    vocabulary: list[str] | None = None
    path: str | None = None

    @property
    def encrypted(self) -> bool:
        return self.model.encrypted

    @property
    def scheme(self) -> Any:
        return self.model.scheme

    @property
    def key_id(self) -> str | None:
        return self.model.key_id

    @property
    def history(self) -> History:
        return self.model.history

    @property
    def training(self) -> TrainingState:
        return self.model.state

    def drop_history(self) -> None:
        """Forget the history and training plan (a model handed to a new key starts anew)."""
        self.model.history, self.model.state = History(), TrainingState()


def encode_architecture(
    model: Sequential, vocabulary: Sequence[str] | None = None
) -> tuple[dict[str, Any], list[Any]]:
    """(architecture JSON, parameter values in a fixed order) for a model."""
    if not isinstance(model, Sequential):
        raise SerializationError(f"cannot save a {type(model).__name__}: only Sequential models.")
    arch: dict[str, Any] = {
        "type": "sequential",
        "layers": model.config(),
        "parameters": [{"layer": index, "name": name} for index, name, _ in model.parameters()],
    }
    if vocabulary is not None:
        if len(vocabulary) != model.vocabulary_size:
            expected = model.vocabulary_size or "no"
            raise SerializationError(
                f"the vocabulary has {len(vocabulary)} words but the model expects {expected} "
                "words; save the vocabulary the model was built for."
            )
        arch["vocabulary"] = list(vocabulary)
    return arch, model.weights()


def _legacy_sentiment(arch: Mapping[str, Any]) -> dict[str, Any]:
    """A ``sentiment`` architecture (older files) as the equivalent ``sequential`` one."""
    size, hidden = arch.get("vocabulary_size"), arch.get("hidden")
    return {
        "type": "sequential",
        "layers": [
            {"type": "EmbeddingSum", "vocabulary_size": size, "outputs": hidden},
            {"type": "Dense", "inputs": hidden, "outputs": 1, "bias": False},
            {"type": "Sigmoid", "activation": arch.get("activation")},
        ],
        "parameters": [{"layer": 0, "name": "weights"}, {"layer": 1, "name": "weights"}],
        "vocabulary": arch.get("vocabulary"),
    }


def build_model(
    arch: Mapping[str, Any], where: str
) -> tuple[Sequential, list[tuple[int, ...]], list[str] | None]:
    """An empty model of the architecture, the shape of each parameter in order, the vocabulary."""
    if arch.get("type") == "sentiment":
        arch = _legacy_sentiment(arch)
    if arch.get("type") != "sequential":
        raise SerializationError(f"{where}: unknown model type {arch.get('type')!r}.")
    layer_meta = arch.get("layers")
    if not isinstance(layer_meta, list) or not layer_meta or len(layer_meta) > 1000:
        raise SerializationError(f"{where}: the layer list is malformed.")
    try:
        layers: list[Layer] = [layer_from_config(item) for item in layer_meta]
        model = Sequential(layers)
    except HennError as exc:
        raise SerializationError(f"{where}: the architecture is invalid ({exc}).") from exc
    slots = model.parameters()
    if arch.get("parameters") != [{"layer": i, "name": n} for i, n, _ in slots]:
        raise SerializationError(f"{where}: the parameter list does not match the layers.")
    shapes = [model.layers[index].parameter_shapes()[name] for index, name, _ in slots]
    vocabulary = arch.get("vocabulary")
    if vocabulary is not None:
        size = model.vocabulary_size or 0
        if not isinstance(vocabulary, list) or not all(isinstance(w, str) for w in vocabulary):
            raise SerializationError(f"{where}: the vocabulary must be a list of words.")
        if len(vocabulary) != size or len(set(vocabulary)) != size:
            raise SerializationError(f"{where}: the vocabulary must hold {size} distinct words.")
    return model, shapes, vocabulary


def describe_architecture(arch: Mapping[str, Any]) -> str:
    """A one-line summary such as ``sequential 3-4-1 (taylor3)`` or ``sequential words 282 -> 8-1 (lsq3)``."""
    if arch.get("type") == "sentiment":
        arch = _legacy_sentiment(arch)
    layers = [layer for layer in arch.get("layers") or [] if isinstance(layer, dict)]
    sizes: list[str] = []
    for layer in layers:
        if layer.get("type") == "EmbeddingSum":
            sizes = [f"words {layer.get('vocabulary_size')} ->", str(layer.get("outputs"))]
        elif layer.get("type") == "Dense":
            sizes = sizes or [str(layer.get("inputs"))]
            sizes.append(str(layer.get("outputs")))
    activations = sorted(
        {
            str((layer.get("activation") or {}).get("name", "?"))
            for layer in layers
            if layer.get("type") == "Sigmoid"
        }
    )
    shape = "-".join(sizes).replace("->-", "-> ")
    return f"sequential {shape} ({', '.join(activations)})"


# ------------------------------------------------------------------------------------------
# history
# ------------------------------------------------------------------------------------------
def encode_history(
    history: History, *, keep_plain_losses: bool
) -> tuple[dict[str, Any], list[Any]]:
    """(JSON, encrypted losses in order) for a history; plaintext losses only if asked."""
    records = []
    encrypted: list[Any] = []
    for record in history.records:
        index = None
        if record.encrypted_loss is not None:
            index = len(encrypted)
            encrypted.append(record.encrypted_loss)
        loss = (
            record.loss
            if keep_plain_losses and record.loss is not None and math.isfinite(record.loss)
            else None
        )
        records.append(
            {
                "step": int(record.step),
                "epoch": int(record.epoch),
                "loss": None if loss is None else float(loss),
                "seconds": float(record.seconds) if math.isfinite(record.seconds) else 0.0,
                "noise_budget": (
                    float(record.noise_budget)
                    if record.noise_budget is not None and math.isfinite(record.noise_budget)
                    else None
                ),
                "encrypted_loss": index,
            }
        )
    meta = {
        "records": records,
        "refreshes": int(history.refreshes),
        "steps": int(history.steps),
        "seconds": float(history.seconds),
        "samples": int(history.samples),
    }
    if history.absorbed_steps:
        meta["absorbed_noise"] = history.absorbed_summary()
    return meta, encrypted


def decode_history(meta: Any, encrypted: Sequence[Any], where: str) -> History:
    """The :class:`History` described by :func:`encode_history`'s JSON and encrypted losses."""
    if not isinstance(meta, dict) or not isinstance(meta.get("records"), list):
        raise SerializationError(f"{where}: the training history is malformed.")
    history = History()
    try:
        history.refreshes = int(meta.get("refreshes", 0))
        history.steps = int(meta.get("steps", 0))
        history.seconds = float(meta.get("seconds", 0.0))
        history.samples = int(meta.get("samples", 0))
        absorbed = meta.get("absorbed_noise")
        if absorbed is not None:
            history.restore_absorbed(absorbed)
        used: set[int] = set()
        for item in meta["records"]:
            index = item.get("encrypted_loss")
            if index is not None:
                if not isinstance(index, int) or not 0 <= index < len(encrypted) or index in used:
                    raise ValueError("bad encrypted loss index")
                used.add(index)
            loss = item.get("loss")
            budget = item.get("noise_budget")
            history.records.append(
                TrainingRecord(
                    int(item["step"]),
                    int(item["epoch"]),
                    encrypted[index] if index is not None else None,
                    None if loss is None else float(loss),
                    float(item.get("seconds", 0.0)),
                    None if budget is None else float(budget),
                )
            )
        if len(used) != len(encrypted):
            raise ValueError("encrypted losses that belong to no record")
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise SerializationError(f"{where}: the training history is malformed ({exc}).") from None
    return history
