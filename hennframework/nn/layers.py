"""Layers whose weights may be plain arrays or encrypted tensors.

Each layer keeps what its backward pass needs in a cache dict and returns gradients for its
parameters. All arithmetic is written with operators, so the same code trains the unencrypted
model (NumPy) and the encrypted one (weights, activations, deltas and gradients encrypted; inputs
and targets plaintext) without the secret key.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from hennframework.exceptions import InputError
from hennframework.nn.activations import SigmoidApproximation, get_sigmoid, sigmoid
from hennframework.nn.initialisation import WeightRandom, weight_random
from hennframework.nn.ops import is_encrypted, polyval

__all__ = ["Dense", "Layer", "Sigmoid"]


class Layer:
    """Base class: ``forward(x, cache) -> y`` and ``backward(delta, cache) -> (delta_in, grads)``."""

    #: Names of trainable parameters (attributes holding arrays or encrypted tensors).
    parameter_names: tuple[str, ...] = ()

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

    def config(self) -> dict[str, Any]:
        """Architecture (no weights), for saving and describing the model."""
        raise NotImplementedError


class Dense(Layer):
    """``y = x @ weights (+ bias)``; weights have shape (inputs, outputs).

    Initial weights: uniform on [-limit, limit] with limit = init_scale / sqrt(inputs) unless
    given, drawn from ``rng`` or else the OS CSPRNG (:mod:`hennframework.nn.initialisation`).
    The XOR network of Trask's 2017 post used no bias and put a constant column in the inputs
    instead.
    """

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

    def config(self) -> dict[str, Any]:
        return {
            "type": "Dense",
            "inputs": self.inputs,
            "outputs": self.outputs,
            "bias": self.use_bias,
        }


class Sigmoid(Layer):
    """Sigmoid activation: a polynomial approximation (``approximation=...``) or ``"exact"``.

    The exact sigmoid only runs on plain arrays; encrypted models need a polynomial. The backward
    pass uses the derivative of whatever function the forward pass computed, so gradients are the
    exact gradients of the network as evaluated.
    """

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
        return {"type": "Sigmoid", "approximation": self.name}
