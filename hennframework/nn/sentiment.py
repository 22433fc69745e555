"""The bag-of-words sentiment network of Trask's 2017 post (section 9), plain or encrypted weights.

Architecture (as in Trask's 2017 post and the Udacity deep-learning programme it came from): the
hidden layer is the sum of the rows of ``W01`` (vocabulary x hidden) for the review's distinct
words (no activation), the output is ``sigmoid(hidden @ W12)``; the error is ``output - label``; SGD updates ``W12`` by
``hidden^T delta`` and the used rows of ``W01`` by ``delta W12^T``.

With encrypted weights every quantity computed from them (hidden layer, output, error, deltas,
gradients) is a ciphertext; the reviews (word indices) and labels are plaintext. The sigmoid is
a polynomial (``lsq3`` on [-6, 6] by default: the Taylor series diverges for |z| > 2, where a
sentiment network's outputs often are). Mini-batches (rows of the batch processed together, the
gradient summed) amortise the per-operation overhead; Trask's 2017 post used one review per step.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from hennframework.exceptions import InputError, NoiseBudgetExhaustedError
from hennframework.nn.activations import SigmoidApproximation, get_sigmoid, sigmoid
from hennframework.nn.initialisation import weight_random
from hennframework.nn.model import Refresher, fresh_noise_budget, refresh_due
from hennframework.nn.ops import is_encrypted, multiply_constant, polyval, scatter_add, segment_sum
from hennframework.scheme import Capability, KeySet, require

__all__ = [
    "BagOfWordsBatch",
    "SentimentHistory",
    "SentimentNetwork",
    "batches_from_csr",
    "make_batches",
]


@dataclass(frozen=True)
class BagOfWordsBatch:
    """Reviews as distinct word indices in CSR form: review i uses ``indices[offsets[i]:offsets[i+1]]``."""

    indices: npt.NDArray[np.int64]
    offsets: npt.NDArray[np.int64]
    labels: npt.NDArray[np.float64]

    @property
    def size(self) -> int:
        return int(self.offsets.size - 1)

    @property
    def owner_of_word(self) -> npt.NDArray[np.int64]:
        """For each entry of ``indices``, the row (review) of the batch it belongs to."""
        return np.repeat(np.arange(self.size), np.diff(self.offsets))


def make_batches(
    reviews: Sequence[npt.NDArray[np.integer[Any]]], labels: npt.ArrayLike, batch_size: int
) -> list[BagOfWordsBatch]:
    """Cut reviews (arrays of distinct word indices) and 0/1 labels into CSR mini-batches."""
    label_array = np.asarray(labels, dtype=np.float64).reshape(-1)
    if len(reviews) != label_array.size:
        raise InputError(f"{len(reviews)} reviews but {label_array.size} labels")
    if batch_size < 1:
        raise InputError("batch_size must be at least 1")
    batches = []
    for start in range(0, len(reviews), batch_size):
        chunk = reviews[start : start + batch_size]
        lengths = np.array([len(r) for r in chunk], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        indices = (
            np.concatenate([np.asarray(r, dtype=np.int64) for r in chunk])
            if lengths.sum()
            else np.zeros(0, dtype=np.int64)
        )
        batches.append(
            BagOfWordsBatch(indices, offsets, label_array[start : start + batch_size, None])
        )
    return batches


def batches_from_csr(
    indices: npt.ArrayLike, offsets: npt.ArrayLike, labels: npt.ArrayLike, batch_size: int
) -> list[BagOfWordsBatch]:
    """Mini-batches from reviews already in CSR form (e.g. ``hennframework.data.EncodedReviews``)."""
    flat = np.asarray(indices, dtype=np.int64)
    bounds = np.asarray(offsets, dtype=np.int64)
    label_array = np.asarray(labels, dtype=np.float64).reshape(-1)
    if bounds.size - 1 != label_array.size:
        raise InputError(f"{bounds.size - 1} reviews but {label_array.size} labels")
    if batch_size < 1:
        raise InputError("batch_size must be at least 1")
    batches = []
    for start in range(0, label_array.size, batch_size):
        stop = min(start + batch_size, label_array.size)
        local = bounds[start : stop + 1] - bounds[start]
        batches.append(
            BagOfWordsBatch(
                flat[bounds[start] : bounds[stop]], local, label_array[start:stop, None]
            )
        )
    return batches


@dataclass
class SentimentHistory:
    """Counts and timings of training; accuracy is tracked only where the key holder decrypts."""

    reviews: int = 0
    steps: int = 0
    seconds: float = 0.0
    refreshes: int = 0
    correct: int = 0
    scored: int = 0
    log: list[dict[str, float]] = field(default_factory=list)

    @property
    def reviews_per_second(self) -> float:
        return self.reviews / self.seconds if self.seconds else 0.0


class SentimentNetwork:
    """Bag-of-words network: vocabulary -> hidden (linear) -> 1 (sigmoid)."""

    def __init__(
        self,
        vocabulary_size: int,
        hidden: int = 8,
        *,
        activation: str | SigmoidApproximation = "lsq3",
        seed: int | None = None,
    ) -> None:
        if vocabulary_size < 1 or hidden < 1:
            raise InputError("vocabulary_size and hidden must be positive")
        rng = weight_random(seed)  # CSPRNG unless a seed is given on purpose
        self.vocabulary_size, self.hidden = vocabulary_size, hidden
        self.exact_sigmoid = activation == "exact"
        self.activation = None if self.exact_sigmoid else get_sigmoid(activation)
        self.weights_0_1: Any = np.zeros((vocabulary_size, hidden))
        # as in Trask's 2017 post: W01 zeros, W12 ~ normal(0, output_nodes**-0.5) = normal(0, 1)
        self.weights_1_2: Any = rng.normal(0.0, 1.0, (hidden, 1))
        self.scheme: Any = None
        self.key_id: str | None = None
        self.history = SentimentHistory()

    @property
    def encrypted(self) -> bool:
        return self.scheme is not None

    # -- encryption --------------------------------------------------------------------------
    def encrypt(self, keys: KeySet, scheme: Any = None) -> SentimentNetwork:
        scheme = scheme or keys.scheme
        if scheme is None:
            raise InputError("pass the scheme that made the keys")
        require(
            scheme,
            (Capability.ADD, Capability.MUL_CIPHER, Capability.MUL_PLAIN, Capability.POLYNOMIAL),
            "training the encrypted sentiment network",
        )
        if self.activation is None:
            raise InputError(
                "encrypted training needs a polynomial sigmoid (activation='lsq3' or similar)"
            )
        clone = copy.copy(self)
        clone.history = SentimentHistory()
        clone.weights_0_1 = scheme.encrypt_tensor(self.weights_0_1, keys.public)
        clone.weights_1_2 = scheme.encrypt_tensor(self.weights_1_2, keys.public)
        clone.scheme, clone.key_id = scheme, keys.key_id
        return clone

    def decrypt(self, secret_key: Any) -> SentimentNetwork:
        if not self.encrypted:
            raise InputError("this network is not encrypted")
        plain = copy.copy(self)
        plain.weights_0_1 = self.scheme.decrypt_tensor(self.weights_0_1, secret_key)
        plain.weights_1_2 = self.scheme.decrypt_tensor(self.weights_1_2, secret_key)
        plain.scheme = None
        plain.key_id = None
        return plain

    def refresh(self, refresh: Refresher) -> None:
        """Fresh encryptions of the weights from the key holder's provider (counted)."""
        if not self.encrypted:
            raise InputError("only an encrypted network can be refreshed")
        self.weights_0_1, self.weights_1_2 = refresh([self.weights_0_1, self.weights_1_2])
        self.history.refreshes += 1

    def weights(self) -> list[Any]:
        return [self.weights_0_1, self.weights_1_2]

    # -- network ------------------------------------------------------------------------------
    def _activate(self, z: Any) -> tuple[Any, Any]:
        """Output and its derivative with respect to z (for the delta)."""
        if self.activation is None:
            out = sigmoid(z)
            return out, out * (1.0 - out)
        return polyval(z, self.activation.coefficients), polyval(
            z, self.activation.derivative_coefficients
        )

    def forward(self, batch: BagOfWordsBatch) -> Any:
        hidden = segment_sum(self.weights_0_1[batch.indices], batch.offsets)
        output, _ = self._activate(hidden @ self.weights_1_2)
        return output

    def predict(self, batch: BagOfWordsBatch) -> Any:
        """Outputs in (0, 1) (plain), or encrypted outputs for an encrypted network."""
        return self.forward(batch)

    def train_step(self, batch: BagOfWordsBatch, learning_rate: float) -> Any:
        """One SGD step on a mini-batch (gradient summed over its reviews). Returns the output."""
        hidden = segment_sum(self.weights_0_1[batch.indices], batch.offsets)  # (B, H)
        z = hidden @ self.weights_1_2  # (B, 1)
        output, slope = self._activate(z)
        error = output - batch.labels
        delta = error * slope  # (B, 1)
        hidden_delta = delta @ self.weights_1_2.T  # (B, H)
        grad_1_2 = hidden.T @ delta  # (H, 1)
        new_1_2 = self.weights_1_2 - multiply_constant(grad_1_2, learning_rate)
        new_0_1 = self.weights_0_1
        if batch.indices.size:
            per_word = multiply_constant(hidden_delta[batch.owner_of_word], -learning_rate)
            new_0_1 = scatter_add(self.weights_0_1, batch.indices, per_word)
        # stored together: a step refused half-way (an overflow risk) changes no weight
        self.weights_1_2, self.weights_0_1 = new_1_2, new_0_1
        return output

    def min_noise_budget(self) -> float | None:
        if not self.encrypted:
            return None
        return min(float(getattr(w, "noise_budget", float("inf"))) for w in self.weights())

    def fit(
        self,
        batches: Sequence[BagOfWordsBatch],
        *,
        epochs: int = 1,
        learning_rate: float = 0.1,
        refresh: Refresher | None = None,
        monitor: Callable[[Any], npt.NDArray[np.float64]] | None = None,
        progress: Callable[[SentimentHistory, int], None] | None = None,
        min_noise_budget: float = 2.0,
    ) -> SentimentHistory:
        """Train for ``epochs`` over ``batches``; ``monitor`` (key holder) decrypts outputs for accuracy."""
        history = self.history
        step_cost: float | None = None
        total = sum(b.size for b in batches) * epochs
        for _ in range(epochs):
            for batch in batches:
                started = time.perf_counter()
                budget = self.min_noise_budget()
                if refresh_due(
                    budget,
                    step_cost,
                    min_noise_budget,
                    fresh_budget=fresh_noise_budget(self.weights()),
                ):
                    if refresh is None:
                        raise NoiseBudgetExhaustedError(
                            f"the encrypted weights' noise budget ({budget:.1f} bits) will not carry "
                            f"another step after {history.steps} steps; pass refresh= (the key holder's "
                            "refresher) or use a parameter set with a larger w."
                        )
                    self.weights_0_1, self.weights_1_2 = refresh(
                        [self.weights_0_1, self.weights_1_2]
                    )
                    history.refreshes += 1
                    budget = self.min_noise_budget()
                output = self.train_step(batch, learning_rate)
                history.seconds += time.perf_counter() - started
                after = self.min_noise_budget()
                if budget is not None and after is not None:
                    step_cost = max(budget - after, 0.0)  # the last step predicts the next
                history.steps += 1
                history.reviews += batch.size
                if not is_encrypted(output) or monitor is not None:
                    revealed = (
                        monitor(output) if monitor is not None and is_encrypted(output) else output
                    )
                    values = np.asarray(revealed).reshape(-1)
                    history.correct += int(
                        ((values >= 0.5) == (batch.labels.reshape(-1) >= 0.5)).sum()
                    )
                    history.scored += batch.size
                if progress is not None:
                    progress(history, total)
        return history

    def evaluate(
        self, batches: Sequence[BagOfWordsBatch], decrypt: Callable[[Any], Any] | None = None
    ) -> float:
        """Accuracy on ``batches``; encrypted networks need ``decrypt`` (the key holder's)."""
        correct = total = 0
        for batch in batches:
            output = self.predict(batch)
            if is_encrypted(output):
                if decrypt is None:
                    raise InputError(
                        "evaluating an encrypted network needs the key holder's decrypt"
                    )
                output = decrypt(output)
            values = np.asarray(output).reshape(-1)
            correct += int(((values >= 0.5) == (batch.labels.reshape(-1) >= 0.5)).sum())
            total += batch.size
        return correct / total if total else 0.0
