"""Trask's sentiment network, unencrypted, in NumPy: the reference the encrypted one must match.

Architecture (Trask's ``SentimentNetwork`` from his 2017 post "Safe AI"; Udacity project 6):

* input: the set of vocabulary indices of a review (:class:`~hennframework.data.text.EncodedReviews`);
  there are no input values, the hidden layer is the **sum** of the weight rows ``W1[i]`` of
  those words (``W1``: vocabulary x hidden, initialised to zeros);
* hidden: ``hidden`` linear units (8 in the 2017 post);
* output: one unit, the exact logistic sigmoid of ``hidden @ W2`` (``W2`` initialised from
  ``normal(0, init_std)``; the original used ``output_nodes ** -0.5`` = 1.0);
* loss gradient as in the original: ``delta = (out - label) * out * (1 - out)``;
  ``hidden_delta = delta * W2`` (with ``W2`` before its update); ``W2 -= lr * hidden * delta``;
  ``W1[words] -= lr * hidden_delta`` for each word of the review, once;
* prediction: positive iff ``out >= 0.5``.

Training is per-review SGD (``batch_size=1``, the original rule) or mini-batch (``batch_size > 1``):
every review of a batch is run forward with the same weights, and the per-review updates above are
**summed** (``reduction="sum"``, default) or averaged (``"mean"``). With summing, the learning rate
keeps its per-review meaning, ``batch_size=1`` is exactly the original, and the encrypted version needs
no division by the batch size.

Run ``python -m hennframework.data PATH`` to reproduce the reference figures.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from hennframework.data.loaders import (
    ReviewDataset,
    interleave,
    load_reviews,
    parse_test_size,
    train_test_split_last,
)
from hennframework.data.naming import command_line_names
from hennframework.data.text import EncodedReviews, Vocabulary, build_vocabulary
from hennframework.exceptions import HennError, InputError

__all__ = [
    "BaselineResult",
    "EvalReport",
    "PlainSentimentNetwork",
    "TrainProgress",
    "TrainReport",
    "run_baseline",
]

Reduction = Literal["sum", "mean"]


@dataclass(frozen=True)
class TrainProgress:
    """A snapshot during training, as the original code printed it."""

    epoch: int
    epochs: int
    seen: int
    total: int
    correct: int
    elapsed_s: float

    @property
    def fraction(self) -> float:
        """Share of this epoch done, 0..1."""
        return self.seen / self.total if self.total else 1.0

    @property
    def reviews_per_second(self) -> float:
        """Reviews trained per second in this epoch so far."""
        return self.seen / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def running_accuracy(self) -> float:
        """Share of this epoch's reviews so far that were classified right before their update."""
        return self.correct / self.seen if self.seen else 0.0

    def format(self) -> str:
        """One progress line like the original code's."""
        return (
            f"epoch {self.epoch}/{self.epochs} progress {100 * self.fraction:5.1f}% "
            f"speed {self.reviews_per_second:,.0f} reviews/s #correct {self.correct} "
            f"#trained {self.seen} training accuracy {100 * self.running_accuracy:.1f}%"
        )


@dataclass(frozen=True)
class TrainReport:
    """What :meth:`PlainSentimentNetwork.train` did."""

    epochs: int
    reviews: int
    batch_size: int
    learning_rate: float
    reduction: str
    seconds: float
    epoch_train_accuracy: tuple[float, ...]

    @property
    def reviews_per_second(self) -> float:
        """Training throughput over all epochs (review-updates per second)."""
        return self.epochs * self.reviews / self.seconds if self.seconds > 0 else math.inf


@dataclass(frozen=True)
class EvalReport:
    """Accuracy of the network on labelled reviews."""

    correct: int
    total: int
    seconds: float

    @property
    def accuracy(self) -> float:
        """Share of the reviews classified right."""
        return self.correct / self.total if self.total else 0.0

    @property
    def reviews_per_second(self) -> float:
        """Evaluation throughput."""
        return self.total / self.seconds if self.seconds > 0 else math.inf


def _sigmoid(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Exact logistic function without overflow warnings for large |z|."""
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    e = np.exp(z[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def _segment_sums(
    w1: npt.NDArray[np.float64], indices: npt.NDArray[np.int32], offsets: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """Row b: the sum of ``w1`` rows ``indices[offsets[b]:offsets[b+1]]`` (0 for an empty review)."""
    n = offsets.shape[0] - 1
    hidden = w1.shape[1]
    if n == 0:
        return np.zeros((0, hidden))
    gathered = np.empty((indices.shape[0] + 1, hidden))
    np.take(w1, indices, axis=0, out=gathered[:-1])
    gathered[-1] = 0.0  # lets reduceat start a segment at len(indices) (empty trailing reviews)
    sums = np.add.reduceat(gathered, offsets[:-1], axis=0)
    empty = offsets[1:] == offsets[:-1]
    if empty.any():
        sums[empty] = 0.0  # reduceat returns the start row for an empty segment
    return sums


class PlainSentimentNetwork:
    """The unencrypted reference network (see the module docstring for the exact rules)."""

    def __init__(
        self,
        vocab_size: int,
        hidden: int = 8,
        *,
        rng: np.random.Generator | int | None = 1,
        init_std: float = 1.0,
    ) -> None:
        if vocab_size < 1 or hidden < 1:
            raise InputError(
                f"vocab_size and hidden must be >= 1; got {vocab_size} and {hidden}. An empty "
                "vocabulary means min_count / polarity_cutoff removed every word: lower them."
            )
        generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.vocab_size = vocab_size
        self.hidden = hidden
        self.w1: npt.NDArray[np.float64] = np.zeros((vocab_size, hidden))
        self.w2: npt.NDArray[np.float64] = generator.normal(0.0, init_std, size=hidden)

    # ------------------------------------------------------------------ inference

    def _check(self, data: EncodedReviews) -> None:
        if data.vocab_size != self.vocab_size:
            raise InputError(
                f"reviews were encoded with a vocabulary of {data.vocab_size} words but the "
                f"network has {self.vocab_size} input rows; encode them with the vocabulary the "
                "network was built for."
            )

    def hidden_layer(self, data: EncodedReviews) -> npt.NDArray[np.float64]:
        """The hidden activations (sum of the review's weight rows), shape (n, hidden)."""
        self._check(data)
        return _segment_sums(self.w1, data.indices, data.offsets)

    def predict_proba(self, data: EncodedReviews) -> npt.NDArray[np.float64]:
        """Sigmoid output per review: the network's probability that it is positive."""
        return _sigmoid(self.hidden_layer(data) @ self.w2)

    def predict(self, data: EncodedReviews) -> npt.NDArray[np.int8]:
        """1 (positive) where the output is >= 0.5, else 0."""
        return (self.predict_proba(data) >= 0.5).astype(np.int8)

    def evaluate(self, data: EncodedReviews) -> EvalReport:
        """Accuracy on labelled reviews (labels must be 0/1)."""
        if len(data) and data.labels.min() < 0:
            raise InputError("evaluate needs labelled reviews; these have unknown (-1) labels.")
        start = time.perf_counter()
        correct = int(np.count_nonzero(self.predict(data) == data.labels))
        return EvalReport(correct, len(data), time.perf_counter() - start)

    # ------------------------------------------------------------------ training

    def train(
        self,
        data: EncodedReviews,
        epochs: int = 1,
        learning_rate: float = 0.1,
        *,
        batch_size: int = 1,
        reduction: Reduction = "sum",
        progress: Callable[[TrainProgress], None] | None = None,
        progress_every: int = 2500,
    ) -> TrainReport:
        """Train in place, reviews in their given order each epoch; returns timings and accuracy.

        ``progress`` is called every ``progress_every`` reviews (rounded up to whole batches)
        and at the end of each epoch.
        """
        self._check(data)
        if epochs < 1 or batch_size < 1 or progress_every < 1:
            raise InputError(
                f"epochs, batch_size and progress_every must be >= 1; got {epochs}, "
                f"{batch_size}, {progress_every}."
            )
        if reduction not in ("sum", "mean"):
            raise InputError(f"reduction must be 'sum' or 'mean', not {reduction!r}.")
        if len(data) and data.labels.min() < 0:
            raise InputError("training needs labelled reviews; these have unknown (-1) labels.")
        n = len(data)
        rows = data.split_list() if batch_size == 1 else []
        targets = data.labels.astype(np.float64)
        per_epoch: list[float] = []
        start = time.perf_counter()
        for epoch in range(1, epochs + 1):
            epoch_start = time.perf_counter()
            correct = 0
            pos = 0
            chunk = -(-progress_every // batch_size) * batch_size  # whole batches
            while pos < n:
                stop = min(n, pos + chunk)
                if batch_size == 1:
                    correct += self._sgd_chunk(
                        rows[pos:stop], targets[pos:stop].tolist(), learning_rate
                    )
                else:
                    for b in range(pos, stop, batch_size):
                        correct += self._batch_step(
                            data, b, min(stop, b + batch_size), targets, learning_rate, reduction
                        )
                pos = stop
                if progress is not None:
                    progress(
                        TrainProgress(
                            epoch, epochs, pos, n, correct, time.perf_counter() - epoch_start
                        )
                    )
            per_epoch.append(correct / n if n else 0.0)
        return TrainReport(
            epochs=epochs,
            reviews=n,
            batch_size=batch_size,
            learning_rate=learning_rate,
            reduction=reduction,
            seconds=time.perf_counter() - start,
            epoch_train_accuracy=tuple(per_epoch),
        )

    def _sgd_chunk(
        self, rows: Sequence[npt.NDArray[np.int32]], targets: Sequence[float], lr: float
    ) -> int:
        """Per-review SGD over ``rows``; returns how many were classified right before updating.

        Tuned for Python overhead (about ten NumPy calls per review): the weight rows of a review
        are gathered once, reused for the update and scattered back (indices are unique, so plain
        fancy assignment is exact).
        """
        w1 = self.w1
        w2 = self.w2
        exp = math.exp
        correct = 0
        for idx, y in zip(rows, targets, strict=True):
            block = w1[idx]
            hidden = block.sum(axis=0)
            z = float(hidden @ w2)
            if z >= 0.0:
                out = 1.0 / (1.0 + exp(-z))
            else:
                e = exp(z)
                out = e / (1.0 + e)
            if (out >= 0.5) == (y > 0.5):
                correct += 1
            step = lr * (out - y) * out * (1.0 - out)
            block -= w2 * step  # hidden delta uses W2 before its update, as in the original
            w2 -= hidden * step
            w1[idx] = block
        return correct

    def _batch_step(
        self,
        data: EncodedReviews,
        lo: int,
        hi: int,
        targets: npt.NDArray[np.float64],
        lr: float,
        reduction: Reduction,
    ) -> int:
        """One mini-batch update over reviews ``lo..hi-1``; returns how many were right before it."""
        off = data.offsets[lo : hi + 1]
        idx = data.indices[off[0] : off[-1]]
        local = off - off[0]
        hidden = _segment_sums(self.w1, idx, local)  # (B, H)
        out = _sigmoid(hidden @ self.w2)
        y = targets[lo:hi]
        correct = int(np.count_nonzero((out >= 0.5) == (y > 0.5)))
        delta = (out - y) * out * (1.0 - out)
        scale = lr / (hi - lo) if reduction == "mean" else lr
        hidden_delta = np.multiply.outer(delta * scale, self.w2)  # (B, H), W2 before its update
        self.w2 -= hidden.T @ (delta * scale)
        if idx.size:
            words, inverse = np.unique(idx, return_inverse=True)
            review_of = np.repeat(np.arange(hi - lo), np.diff(local))
            grad = np.zeros((words.shape[0], self.hidden))
            np.add.at(grad, inverse, hidden_delta[review_of])
            self.w1[words] -= grad
        return correct


# ---------------------------------------------------------------------- the reference protocol


@dataclass(frozen=True)
class BaselineResult:
    """Settings and outcome of :func:`run_baseline`."""

    source: str
    train_reviews: int
    test_reviews: int
    vocab_size: int
    min_count: int
    polarity_cutoff: float
    hidden: int
    epochs: int
    learning_rate: float
    batch_size: int
    reduction: str
    seed: int | None
    init_std: float
    test_accuracy: float
    train_accuracy_last_epoch: float
    train_reviews_per_second: float
    preprocess_seconds: float
    epoch_test_accuracy: tuple[float, ...] = field(default=())


def run_baseline(
    dataset: ReviewDataset,
    *,
    n_test: int | float | None = 1000,
    min_count: int = 10,
    polarity_cutoff: float = 0.1,
    hidden: int = 8,
    epochs: int = 1,
    learning_rate: float = 0.1,
    batch_size: int = 1,
    reduction: Reduction = "sum",
    seed: int | None = 1,
    init_std: float = 1.0,
    progress: Callable[[TrainProgress], None] | None = None,
) -> tuple[BaselineResult, PlainSentimentNetwork, Vocabulary]:
    """The rt-polarity protocol: interleave pos/neg, hold out the last ``n_test`` (a count, a
    fraction, or None for 20 % at most 1,000), build the vocabulary on the rest, train, and report
    test accuracy (also after each epoch) and throughput."""
    t0 = time.perf_counter()
    train_set, test_set = train_test_split_last(interleave(dataset), n_test)
    vocab = build_vocabulary(train_set.reviews, train_set.labels, min_count, polarity_cutoff)
    train_enc = vocab.encode_many(train_set.reviews, train_set.labels)
    test_enc = vocab.encode_many(test_set.reviews, test_set.labels)
    preprocess = time.perf_counter() - t0
    net = PlainSentimentNetwork(len(vocab), hidden, rng=seed, init_std=init_std)
    seconds = 0.0
    test_acc: list[float] = []
    last_train = 0.0
    for _ in range(epochs):
        report = net.train(
            train_enc,
            1,
            learning_rate,
            batch_size=batch_size,
            reduction=reduction,
            progress=progress,
        )
        seconds += report.seconds
        last_train = report.epoch_train_accuracy[-1]
        test_acc.append(net.evaluate(test_enc).accuracy)
    result = BaselineResult(
        source=dataset.source,
        train_reviews=len(train_set),
        test_reviews=len(test_set),
        vocab_size=len(vocab),
        min_count=min_count,
        polarity_cutoff=polarity_cutoff,
        hidden=hidden,
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        reduction=reduction,
        seed=seed,
        init_std=init_std,
        test_accuracy=test_acc[-1],
        train_accuracy_last_epoch=last_train,
        train_reviews_per_second=epochs * len(train_set) / seconds if seconds > 0 else math.inf,
        preprocess_seconds=preprocess,
        epoch_test_accuracy=tuple(test_acc),
    )
    return result, net, vocab


def _test_size(text: str) -> int | float:
    try:
        return parse_test_size(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: train the unencrypted baseline on a dataset and print the figures."""
    parser = argparse.ArgumentParser(
        prog="python -m hennframework.data",
        description="Train Trask's sentiment network unencrypted (interleave, hold out last N).",
    )
    parser.add_argument("path", help="dataset directory or file (format detected)")
    parser.add_argument("--format", default="auto")
    parser.add_argument("--encoding", default=None)
    parser.add_argument("--split", default="train")
    parser.add_argument(
        "--test-size",
        "--n-test",
        dest="n_test",
        type=_test_size,
        default=1000,
        help="held-out reviews: a count or a fraction such as 0.2 (1000)",
    )
    parser.add_argument("--min-count", type=int, default=10)
    parser.add_argument("--polarity-cutoff", type=float, default=0.1)
    parser.add_argument("--hidden", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--reduction", choices=("sum", "mean"), default="sum")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--init-std", type=float, default=1.0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)

    def show(p: TrainProgress) -> None:
        sys.stderr.write("\r" + p.format())
        if p.seen == p.total:
            sys.stderr.write("\n")

    try:
        with command_line_names():
            dataset = load_reviews(args.path, args.format, args.encoding, args.split)
            result, _, _ = run_baseline(
                dataset,
                n_test=args.n_test,
                min_count=args.min_count,
                polarity_cutoff=args.polarity_cutoff,
                hidden=args.hidden,
                epochs=args.epochs,
                learning_rate=args.lr,
                batch_size=args.batch_size,
                reduction=args.reduction,
                seed=args.seed,
                init_std=args.init_std,
                progress=None if args.quiet or args.json else show,
            )
    except HennError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        print(
            f"{result.source}: vocabulary {result.vocab_size} words, {result.train_reviews} train / "
            f"{result.test_reviews} test; test accuracy per epoch "
            + ", ".join(f"{100 * a:.1f}%" for a in result.epoch_test_accuracy)
            + f"; training {result.train_reviews_per_second:,.0f} reviews/s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
