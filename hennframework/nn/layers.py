"""Layers whose weights may be plain arrays or encrypted tensors.

Each layer keeps what its backward pass needs in a cache dict and returns gradients for its
parameters. All arithmetic is written with operators, so the same code trains the unencrypted
model (NumPy) and the encrypted one (weights, activations, deltas and gradients encrypted; inputs
and targets plaintext) without the secret key.

A new kind of layer is one subclass of :class:`Layer` with a ``type_name``: it registers itself
for files (``config()`` / ``from_config``), and :class:`~hennframework.nn.Sequential`, the training
loop and ``.henn`` files handle it with no other change. A layer whose gradient is not a dense
array (:class:`EmbeddingSum`: a few rows of a large matrix) overrides :meth:`Layer.updated`.

>>> import numpy as np
>>> layer = Dense(2, 1, weights=[[1.0], [2.0]])
>>> layer.forward(np.array([[3.0, 4.0]]), {}).tolist()
[[11.0]]
>>> layer_from_config(layer.config()).config() == layer.config()
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from hennframework.exceptions import InputError
from hennframework.nn.activations import (
    SIGMOID_APPROXIMATIONS,
    SigmoidApproximation,
    get_sigmoid,
    sigmoid,
)
from hennframework.nn.batches import BagOfWords
from hennframework.nn.initialisation import WeightRandom, weight_random
from hennframework.nn.ops import is_encrypted, multiply_constant, polyval, scatter_add, segment_sum

__all__ = [
    "LAYER_TYPES",
    "Dense",
    "EmbeddingSum",
    "Layer",
    "Sigmoid",
    "SparseRows",
    "layer_from_config",
]

#: Layer classes by ``type_name``, for building a model from its saved architecture.
LAYER_TYPES: dict[str, type[Layer]] = {}


class Layer:
    """Base class: ``forward(x, cache) -> y`` and ``backward(delta, cache) -> (delta_in, grads)``."""

    #: The name a layer is saved under (subclasses that set it are registered in LAYER_TYPES).
    type_name: ClassVar[str] = ""
    #: Names of trainable parameters (attributes holding arrays or encrypted tensors).
    parameter_names: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("type_name"):
            LAYER_TYPES[cls.type_name] = cls

    def forward(self, inputs: Any, cache: dict[str, Any]) -> Any:
        raise NotImplementedError

    def backward(
        self, delta: Any, cache: dict[str, Any], need_input_delta: bool
    ) -> tuple[Any, dict[str, Any]]:
        raise NotImplementedError

    def parameters(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.parameter_names}

    def set_parameters(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            setattr(self, name, value)

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of every parameter (what a file must hold for this layer)."""
        return {name: tuple(np.shape(value)) for name, value in self.parameters().items()}

    def updated(self, name: str, gradient: Any, learning_rate: float) -> Any:
        """The SGD update of parameter ``name``: a new value, the layer unchanged (dense here)."""
        return getattr(self, name) - multiply_constant(gradient, learning_rate)

    def output_width(self, input_width: int | None) -> int | None:
        """Width of the output for inputs of ``input_width`` columns (None: unknown)."""
        return input_width

    def config(self) -> dict[str, Any]:
        """Architecture (no weights), JSON-ready, with ``type``: for saving and describing."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """A layer of the architecture ``config`` with zero (placeholder) weights."""
        raise NotImplementedError


def layer_from_config(config: Any) -> Layer:
    """The layer a saved ``config()`` describes (weights to be filled in by the caller)."""
    if not isinstance(config, dict):
        raise InputError("a layer description must be a JSON object")
    kind = LAYER_TYPES.get(str(config.get("type")))
    if kind is None:
        raise InputError(
            f"unknown layer type {config.get('type')!r} (known: {', '.join(sorted(LAYER_TYPES))})"
        )
    return kind.from_config(config)


def _size(config: dict[str, Any], name: str, limit: int = 1 << 24) -> int:
    value = config.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
        raise InputError(
            f"layer field {name!r} must be an integer from 1 to {limit}, got {value!r}"
        )
    return value


class Dense(Layer):
    """``y = x @ weights (+ bias)``; weights have shape (inputs, outputs).

    Initial weights: uniform on [-limit, limit] with limit = init_scale / sqrt(inputs) unless
    given, drawn from ``rng`` or else the OS CSPRNG (:mod:`hennframework.nn.initialisation`).
    The XOR network of Trask's 2017 post used no bias and put a constant column in the inputs
    instead.
    """

    type_name = "Dense"

    def __init__(
        self,
        inputs: int,
        outputs: int,
        *,
        bias: bool = False,
        weights: npt.ArrayLike | None = None,
        init_scale: float = 1.0,
        rng: WeightRandom | None = None,
    ) -> None:
        if inputs < 1 or outputs < 1:
            raise InputError(f"Dense layer sizes must be positive, got {inputs} x {outputs}")
        self.inputs, self.outputs, self.use_bias = inputs, outputs, bias
        if weights is None:
            generator = rng if rng is not None else weight_random(None)  # CSPRNG
            limit = init_scale / np.sqrt(inputs)
            weights = generator.uniform(-limit, limit, size=(inputs, outputs))
        array = np.asarray(weights, dtype=np.float64)
        if array.shape != (inputs, outputs):
            raise InputError(f"weights must have shape ({inputs}, {outputs}), got {array.shape}")
        self.weights: Any = array
        self.bias: Any = np.zeros(outputs) if bias else None
        self.parameter_names = ("weights", "bias") if bias else ("weights",)

    def forward(self, inputs: Any, cache: dict[str, Any]) -> Any:
        cache["input"] = inputs
        out = inputs @ self.weights
        if self.use_bias:
            out = out + self.bias
        return out

    def backward(
        self, delta: Any, cache: dict[str, Any], need_input_delta: bool
    ) -> tuple[Any, dict[str, Any]]:
        inputs = cache["input"]
        grads = {"weights": inputs.T @ delta}
        if self.use_bias:
            grads["bias"] = delta.sum(axis=0)
        delta_in = delta @ self.weights.T if need_input_delta else None
        return delta_in, grads

    def output_width(self, input_width: int | None) -> int | None:
        if input_width is not None and input_width != self.inputs:
            raise InputError(
                f"a Dense layer with {self.inputs} inputs cannot follow {input_width} values"
            )
        return self.outputs

    def config(self) -> dict[str, Any]:
        return {
            "type": "Dense",
            "inputs": self.inputs,
            "outputs": self.outputs,
            "bias": self.use_bias,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Dense:
        inputs, outputs = _size(config, "inputs"), _size(config, "outputs")
        bias = config.get("bias")
        if not isinstance(bias, bool):
            raise InputError("Dense 'bias' must be true or false")
        return cls(inputs, outputs, bias=bias, weights=np.zeros((inputs, outputs)))


@dataclass(frozen=True)
class SparseRows:
    """A gradient that touches only some rows: ``values[i]`` belongs to row ``rows[i]`` (repeats add).

    With ``owner``, row ``rows[i]`` gets ``values[owner[i]]``: one value shared by several rows
    (a sample's delta, for each of its words) is kept once, so the update scales it once.
    """

    rows: npt.NDArray[np.integer[Any]]
    values: Any
    owner: npt.NDArray[np.integer[Any]] | None = None


class EmbeddingSum(Layer):
    """Bag of words -> hidden: the sum of the weight rows of each sample's words.

    Inputs are a :class:`~hennframework.nn.batches.BagOfWords` (word indices, plaintext); the
    forward pass is a segment sum of encrypted rows, with no multiplication, so it costs no noise
    budget. The gradient touches only the rows of the batch's words: it is kept sparse
    (:class:`SparseRows`) and applied with ``scatter_add``, never as a vocabulary-sized dense
    update. This is the hidden layer of the sentiment network of Trask's 2017 post (weights
    initialised to zeros there).
    """

    type_name = "EmbeddingSum"
    parameter_names = ("weights",)

    def __init__(
        self, vocabulary_size: int, outputs: int, *, weights: npt.ArrayLike | None = None
    ) -> None:
        if vocabulary_size < 1 or outputs < 1:
            raise InputError(
                f"EmbeddingSum sizes must be positive, got {vocabulary_size} x {outputs}"
            )
        if vocabulary_size * outputs > 1 << 31:
            raise InputError(f"an EmbeddingSum of {vocabulary_size} x {outputs} is too large")
        self.vocabulary_size, self.outputs = vocabulary_size, outputs
        array = (
            np.zeros((vocabulary_size, outputs))
            if weights is None
            else np.asarray(weights, dtype=np.float64)
        )
        if array.shape != (vocabulary_size, outputs):
            raise InputError(
                f"weights must have shape ({vocabulary_size}, {outputs}), got {array.shape}"
            )
        self.weights: Any = array

    def forward(self, inputs: Any, cache: dict[str, Any]) -> Any:
        if not isinstance(inputs, BagOfWords):
            raise InputError(
                "an EmbeddingSum layer takes word indices (hennframework.nn.BagOfWords), not "
                f"{type(inputs).__name__}; it must be the model's first layer"
            )
        if inputs.indices.size and int(inputs.indices.max()) >= self.vocabulary_size:
            raise InputError(
                f"word index {int(inputs.indices.max())} is outside the vocabulary of "
                f"{self.vocabulary_size} words"
            )
        cache["input"] = inputs
        return segment_sum(self.weights[inputs.indices], inputs.offsets)

    def backward(
        self, delta: Any, cache: dict[str, Any], need_input_delta: bool
    ) -> tuple[Any, dict[str, Any]]:
        if need_input_delta:
            raise InputError("an EmbeddingSum layer must be the model's first layer")
        words: BagOfWords = cache["input"]
        return None, {"weights": SparseRows(words.indices, delta, words.owner_of_word)}

    def updated(self, name: str, gradient: Any, learning_rate: float) -> Any:
        if not isinstance(gradient, SparseRows):
            return super().updated(name, gradient, learning_rate)
        if gradient.rows.size == 0:
            return self.weights
        step = multiply_constant(gradient.values, -learning_rate)
        if gradient.owner is not None:
            # scaling is elementwise, so scaling each sample's delta once and then repeating it
            # for its words gives the bits of scaling the repeated values, at a fraction of the
            # cost (a batch has ten times as many words as samples)
            step = step[gradient.owner]
        return scatter_add(self.weights, gradient.rows, step)

    def output_width(self, input_width: int | None) -> int | None:
        if input_width is not None:
            raise InputError("an EmbeddingSum layer reads word indices: it must be the first layer")
        return self.outputs

    def config(self) -> dict[str, Any]:
        return {
            "type": "EmbeddingSum",
            "vocabulary_size": self.vocabulary_size,
            "outputs": self.outputs,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EmbeddingSum:
        return cls(_size(config, "vocabulary_size", 1 << 31), _size(config, "outputs", 1 << 16))


class Sigmoid(Layer):
    """Sigmoid activation: a polynomial approximation (``approximation=...``) or ``"exact"``.

    The exact sigmoid only runs on plain arrays; encrypted models need a polynomial. The backward
    pass uses the derivative of whatever function the forward pass computed, so gradients are the
    exact gradients of the network as evaluated.
    """

    type_name = "Sigmoid"

    def __init__(self, approximation: str | SigmoidApproximation = "taylor3") -> None:
        self.exact = approximation == "exact"
        self.approximation: SigmoidApproximation | None = (
            None if self.exact else get_sigmoid(approximation)
        )

    @property
    def name(self) -> str:
        return "exact" if self.approximation is None else self.approximation.name

    def forward(self, inputs: Any, cache: dict[str, Any]) -> Any:
        cache["input"] = inputs
        if self.approximation is None:
            if is_encrypted(inputs):
                raise InputError(
                    "the exact sigmoid cannot run on encrypted values; use a polynomial "
                    "approximation such as Sigmoid('taylor3') or Sigmoid('lsq3')"
                )
            out = sigmoid(inputs)
            cache["output"] = out
            return out
        return polyval(inputs, self.approximation.coefficients)

    def backward(
        self, delta: Any, cache: dict[str, Any], need_input_delta: bool
    ) -> tuple[Any, dict[str, Any]]:
        if self.approximation is None:
            out = cache["output"]
            return delta * (out * (1.0 - out)), {}
        slope = polyval(cache["input"], self.approximation.derivative_coefficients)
        return delta * slope, {}

    def config(self) -> dict[str, Any]:
        """The polynomial itself is saved, so a custom approximation survives a round trip."""
        approximation = self.approximation
        if approximation is None:
            return {"type": "Sigmoid", "activation": {"name": "exact"}}
        return {
            "type": "Sigmoid",
            "activation": {
                "name": approximation.name,
                "coefficients": [float(c) for c in approximation.coefficients],
                "radius": float(approximation.radius),
                "description": approximation.description,
            },
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sigmoid:
        meta = config.get("activation")
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            raise InputError("a Sigmoid layer's activation description is malformed")
        name = meta["name"]
        if name == "exact":
            return cls("exact")
        coefficients, radius = meta.get("coefficients"), meta.get("radius")
        if (
            not isinstance(coefficients, list)
            or not coefficients
            or not all(
                isinstance(c, int | float) and not isinstance(c, bool) and math.isfinite(c)
                for c in coefficients
            )
            or not isinstance(radius, int | float)
        ):
            raise InputError(f"the sigmoid polynomial {name!r} is malformed")
        known = SIGMOID_APPROXIMATIONS.get(name)
        if known is not None and list(known.coefficients) == [float(c) for c in coefficients]:
            return cls(known)
        description = meta.get("description")
        return cls(
            SigmoidApproximation(
                name,
                tuple(float(c) for c in coefficients),
                float(radius),
                description if isinstance(description, str) else "loaded from a file",
            )
        )
