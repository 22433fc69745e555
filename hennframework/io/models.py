"""Architectures and training histories as JSON + tensors (used by :mod:`hennframework.io.bundles`).

Two model types are known:

* ``sequential`` (:class:`~hennframework.nn.Sequential`): the layers' ``config()`` (``Dense``:
  inputs, outputs, bias; ``Sigmoid``: the approximation's name, coefficients and interval, so a
  custom polynomial survives the round trip) and the parameters in ``parameters()`` order;
* ``sentiment`` (:class:`~hennframework.nn.sentiment.SentimentNetwork`): vocabulary size, hidden
  units, the sigmoid polynomial, optionally the vocabulary's words (the party needs them to turn
  its reviews into word indices) and the two weight matrices.

A history is the list of training records (step, epoch, seconds, noise budget, the loss if it is
known in plaintext, and which encrypted loss belongs to the record) plus counters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hennframework.exceptions import HennError, SerializationError
from hennframework.nn.activations import SIGMOID_APPROXIMATIONS, SigmoidApproximation
from hennframework.nn.layers import Dense, Layer, Sigmoid
from hennframework.nn.model import History, Sequential, TrainingRecord
from hennframework.nn.sentiment import SentimentNetwork

__all__ = ["ModelBundle", "build_model", "describe_architecture", "encode_architecture"]

Model = Sequential | SentimentNetwork


@dataclass
class ModelBundle:
    """A model read from (or to be written to) a file, with what travels alongside it.

    ``training`` is JSON state of an unfinished training plan (steps done, steps planned, the
    measured noise cost of a step, whether the model waits for an owner refresh).
    """

    model: Any
    vocabulary: list[str] | None = None
    history: History = field(default_factory=History)
    training: dict[str, Any] = field(default_factory=dict)
    path: str | None = None

    @property
    def encrypted(self) -> bool:
        return bool(self.model.encrypted)

    @property
    def scheme(self) -> Any:
        return self.model.scheme

    @property
    def key_id(self) -> str | None:
        return self.model.key_id  # type: ignore[no-any-return]

    @property
    def model_type(self) -> str:
        return "sentiment" if isinstance(self.model, SentimentNetwork) else "sequential"

    def drop_history(self) -> None:
        """Forget the training history (a model handed to a new key starts a new one)."""
        self.history = History()
        if isinstance(self.model, SentimentNetwork):
            self.model.history = type(self.model.history)()
        else:
            self.model.history = self.history


def _activation_json(approximation: SigmoidApproximation | None) -> dict[str, Any]:
    if approximation is None:
        return {"name": "exact"}
    return {
        "name": approximation.name,
        "coefficients": [float(c) for c in approximation.coefficients],
        "radius": float(approximation.radius),
        "description": approximation.description,
    }


def _activation_from(meta: Any, where: str) -> str | SigmoidApproximation:
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        raise SerializationError(f"{where}: a sigmoid layer's description is malformed.")
    name = meta["name"]
    if name == "exact":
        return "exact"
    coefficients = meta.get("coefficients")
    radius = meta.get("radius")
    if (
        not isinstance(coefficients, list)
        or not coefficients
        or not all(
            isinstance(c, int | float) and not isinstance(c, bool) and math.isfinite(c)
            for c in coefficients
        )
        or not isinstance(radius, int | float)
    ):
        raise SerializationError(f"{where}: the sigmoid polynomial {name!r} is malformed.")
    known = SIGMOID_APPROXIMATIONS.get(name)
    if known is not None and list(known.coefficients) == [float(c) for c in coefficients]:
        return known
    description = meta.get("description")
    return SigmoidApproximation(
        name,
        tuple(float(c) for c in coefficients),
        float(radius),
        description if isinstance(description, str) else "loaded from a file",
    )


def encode_architecture(
    model: Any, vocabulary: Sequence[str] | None = None
) -> tuple[dict[str, Any], list[Any]]:
    """(architecture JSON, parameter values in a fixed order) for a Sequential or sentiment model."""
    if isinstance(model, SentimentNetwork):
        arch: dict[str, Any] = {
            "type": "sentiment",
            "vocabulary_size": int(model.vocabulary_size),
            "hidden": int(model.hidden),
            "activation": _activation_json(model.activation),
            "vocabulary": list(vocabulary) if vocabulary is not None else None,
        }
        if vocabulary is not None and len(vocabulary) != model.vocabulary_size:
            raise SerializationError(
                f"the vocabulary has {len(vocabulary)} words but the network expects "
                f"{model.vocabulary_size}; save the vocabulary the network was built for."
            )
        return arch, [model.weights_0_1, model.weights_1_2]
    if isinstance(model, Sequential):
        layers: list[dict[str, Any]] = []
        for layer in model.layers:
            if isinstance(layer, Dense):
                layers.append(
                    {
                        "type": "Dense",
                        "inputs": layer.inputs,
                        "outputs": layer.outputs,
                        "bias": layer.use_bias,
                    }
                )
            elif isinstance(layer, Sigmoid):
                layers.append(
                    {"type": "Sigmoid", "activation": _activation_json(layer.approximation)}
                )
            else:
                raise SerializationError(
                    f"cannot save a {type(layer).__name__} layer: only Dense and Sigmoid layers "
                    "have a file format so far."
                )
        parameters = [
            {"layer": index, "name": name}
            for index, name, value in model.parameters()
            if value is not None
        ]
        values = [value for _, _, value in model.parameters() if value is not None]
        return {"type": "sequential", "layers": layers, "parameters": parameters}, values
    raise SerializationError(
        f"cannot save a {type(model).__name__}: only Sequential and SentimentNetwork models."
    )


def _positive(meta: Mapping[str, Any], name: str, where: str, limit: int = 1 << 31) -> int:
    value = meta.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
        raise SerializationError(
            f"{where}: architecture field {name!r} must be a positive integer, got {value!r}."
        )
    return value


def build_model(
    arch: Mapping[str, Any], where: str
) -> tuple[Any, list[tuple[Any, str, tuple[int, ...]]], list[str] | None]:
    """An empty model of the architecture and, in order, (owner object, attribute, shape) per parameter."""
    kind = arch.get("type")
    try:
        if kind == "sentiment":
            size = _positive(arch, "vocabulary_size", where)
            hidden = _positive(arch, "hidden", where, 1 << 16)
            if size * hidden > 1 << 31:
                raise SerializationError(
                    f"{where}: the sentiment network is implausibly large ({size} x {hidden})."
                )
            network = SentimentNetwork(
                size, hidden, activation=_activation_from(arch.get("activation"), where), seed=0
            )
            vocabulary = arch.get("vocabulary")
            if vocabulary is not None:
                if not isinstance(vocabulary, list) or not all(
                    isinstance(w, str) for w in vocabulary
                ):
                    raise SerializationError(f"{where}: the vocabulary must be a list of words.")
                if len(vocabulary) != size or len(set(vocabulary)) != size:
                    raise SerializationError(
                        f"{where}: the vocabulary must hold {size} distinct words."
                    )
            slots: list[tuple[Any, str, tuple[int, ...]]] = [
                (network, "weights_0_1", (size, hidden)),
                (network, "weights_1_2", (hidden, 1)),
            ]
            return network, slots, vocabulary
        if kind == "sequential":
            layer_meta = arch.get("layers")
            if not isinstance(layer_meta, list) or not layer_meta or len(layer_meta) > 1000:
                raise SerializationError(f"{where}: the layer list is malformed.")
            layers: list[Layer] = []
            for item in layer_meta:
                if not isinstance(item, dict):
                    raise SerializationError(f"{where}: a layer description is malformed.")
                if item.get("type") == "Dense":
                    inputs = _positive(item, "inputs", where, 1 << 24)
                    outputs = _positive(item, "outputs", where, 1 << 24)
                    bias = item.get("bias")
                    if not isinstance(bias, bool):
                        raise SerializationError(f"{where}: Dense 'bias' must be true or false.")
                    layers.append(
                        Dense(inputs, outputs, bias=bias, weights=np.zeros((inputs, outputs)))
                    )
                elif item.get("type") == "Sigmoid":
                    layers.append(Sigmoid(_activation_from(item.get("activation"), where)))
                else:
                    raise SerializationError(f"{where}: unknown layer type {item.get('type')!r}.")
            model = Sequential(layers)
            expected = [
                (index, name) for index, name, value in model.parameters() if value is not None
            ]
            declared = arch.get("parameters")
            if declared != [{"layer": i, "name": n} for i, n in expected]:
                raise SerializationError(f"{where}: the parameter list does not match the layers.")
            slots = []
            for index, name in expected:
                layer = model.layers[index]
                assert isinstance(layer, Dense)
                shape = (layer.inputs, layer.outputs) if name == "weights" else (layer.outputs,)
                slots.append((layer, name, shape))
            return model, slots, None
    except SerializationError:
        raise
    except HennError as exc:
        raise SerializationError(f"{where}: the architecture is invalid ({exc}).") from exc
    raise SerializationError(
        f"{where}: unknown model type {kind!r} (known: sequential, sentiment)."
    )


def describe_architecture(arch: Mapping[str, Any]) -> str:
    """A one-line summary such as ``sequential 3-4-1 (taylor3)`` or ``sentiment 282x8 (lsq3)``."""
    if arch.get("type") == "sentiment":
        activation = (arch.get("activation") or {}).get("name", "?")
        return f"sentiment {arch.get('vocabulary_size')}x{arch.get('hidden')} ({activation})"
    layers = arch.get("layers") or []
    sizes = [layers[0].get("inputs")] if layers else []
    sizes += [layer.get("outputs") for layer in layers if layer.get("type") == "Dense"]
    activations = sorted(
        {
            (layer.get("activation") or {}).get("name", "?")
            for layer in layers
            if layer.get("type") == "Sigmoid"
        }
    )
    return f"sequential {'-'.join(str(s) for s in sizes)} ({', '.join(activations)})"


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
