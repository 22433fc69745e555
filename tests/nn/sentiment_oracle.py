"""Test oracle: Trask's sentiment network, unencrypted, written out in plain NumPy.

This is the network of Andrew Trask's 2017 post "Safe AI" (the sentiment classifier of the
Udacity project it came from), transcribed independently of :mod:`hennframework.nn`, so the
framework's plain and encrypted models can be checked against it. It shares no code with the
framework: only :class:`~hennframework.data.text.EncodedReviews` is read, for its indices.

The rules:

* input: the set of vocabulary indices of a review; there are no input values, the hidden layer is
  the **sum** of the weight rows ``W1[i]`` of those words (``W1``: vocabulary x hidden, zeros at
  the start; a review with no vocabulary word has a zero hidden layer);
* hidden: ``hidden`` linear units (8 in the post);
* output: one unit, ``out = activation(z)`` with ``z = hidden @ W2`` (``W2`` drawn from
  ``normal(0, init_std)``; the post used ``output_nodes ** -0.5 = 1``). The activation is the exact
  logistic sigmoid unless another function and its derivative are given (a polynomial, to follow
  an encrypted model that cannot evaluate the exact one);
* update: ``delta = (out - label) * activation'(z)`` (for the exact sigmoid
  ``out * (1 - out)``, as in the post); ``hidden_delta = delta * W2`` with ``W2`` *before* its
  update; ``W2 -= lr * hidden * delta``; ``W1[word] -= lr * hidden_delta`` for each word.

Per-review SGD (``batch_size=1``) is the post's rule. With ``batch_size > 1`` every review of a
batch is run forward at the same weights and the per-review updates are **summed** (not averaged:
the learning rate keeps its per-review meaning, and an encrypted model needs no division).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from hennframework.data.text import EncodedReviews

__all__ = ["PlainSentimentNetwork", "exact_sigmoid", "exact_sigmoid_derivative"]

FloatArray = npt.NDArray[np.float64]
Activation = Callable[[FloatArray], FloatArray]


def exact_sigmoid(z: FloatArray) -> FloatArray:
    """The logistic function, without overflow warnings for large ``|z|``."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def exact_sigmoid_derivative(z: FloatArray) -> FloatArray:
    """``s * (1 - s)`` for ``s = sigmoid(z)``: the post's ``layer_2 * (1 - layer_2)``."""
    s = exact_sigmoid(z)
    return s * (1.0 - s)


class PlainSentimentNetwork:
    """The oracle network (see the module docstring for the exact rules)."""

    def __init__(
        self,
        vocab_size: int,
        hidden: int = 8,
        *,
        rng: np.random.Generator | int | None = 1,
        init_std: float = 1.0,
        activation: Activation = exact_sigmoid,
        derivative: Activation = exact_sigmoid_derivative,
    ) -> None:
        generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.w1: FloatArray = np.zeros((vocab_size, hidden))
        self.w2: FloatArray = generator.normal(0.0, init_std, size=hidden)
        self.activation = activation
        self.derivative = derivative

    def predict_proba(self, data: EncodedReviews) -> FloatArray:
        """The output unit for every review (the network's probability that it is positive)."""
        z = np.array([self.w1[data[i]].sum(axis=0) @ self.w2 for i in range(len(data))])
        return self.activation(z)

    def train(
        self,
        data: EncodedReviews,
        epochs: int = 1,
        learning_rate: float = 0.1,
        *,
        batch_size: int = 1,
    ) -> list[int]:
        """Train in place, reviews in their order; returns per epoch how many were right before
        their update (output >= 0.5 for a positive review)."""
        correct_per_epoch = []
        for _ in range(epochs):
            correct = 0
            for lo in range(0, len(data), batch_size):
                correct += self.step(
                    data, range(lo, min(len(data), lo + batch_size)), learning_rate
                )
            correct_per_epoch.append(correct)
        return correct_per_epoch

    def step(self, data: EncodedReviews, reviews: range, learning_rate: float) -> int:
        """One update: the sum of the per-review updates of ``reviews``, all computed at the
        current weights; returns how many of them were right before it."""
        dw1 = np.zeros_like(self.w1)
        dw2 = np.zeros_like(self.w2)
        correct = 0
        for i in reviews:
            words = data[i]
            label = float(data.labels[i])
            hidden = self.w1[words].sum(axis=0)
            z = np.array(hidden @ self.w2)
            out = float(self.activation(z))
            correct += int((out >= 0.5) == (label == 1.0))
            delta = (out - label) * float(self.derivative(z))
            dw2 += hidden * delta
            np.add.at(dw1, words, delta * self.w2)  # hidden_delta, with W2 before the update
        self.w1 -= learning_rate * dw1
        self.w2 -= learning_rate * dw2
        return correct
