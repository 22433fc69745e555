"""Who holds which reviews in a federated run: the owner's held-out part and the parties' shards.

The dataset is read as ``henn demo sentiment`` reads it (interleaved positive/negative, the last
``test_size`` reviews held out), so federated and centralized training see the same reviews and
compare fairly. The held-out part is the owner's validation data; the training part is split
among the parties: ``iid`` gives each party a contiguous part of the interleaved reviews (both
labels alike), ``label-skew`` sorts by label first, so each party holds mostly (or only) one label.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from hennframework.data.bundled import load_rt_polarity
from hennframework.data.loaders import (
    ReviewDataset,
    interleave,
    load_reviews,
    parse_data_spec,
    resolve_test_size,
    train_test_split_last,
)
from hennframework.data.text import build_vocabulary, make_tokenizer
from hennframework.exceptions import InputError
from hennframework.nn import Batch
from hennframework.workflow.data import review_batches

__all__ = ["SPLITS", "DataSpec", "load_split", "owner_vocabulary", "party_batches", "party_shard"]

SPLITS = ("iid", "label-skew")


@dataclass(frozen=True)
class DataSpec:
    """Where the reviews are and how they are cut; ``data=None`` is the shipped rt-polarity copy."""

    data: str | None = None
    limit: int | None = None
    test_size: float | None = None
    tokenizer: str = "auto"
    lowercase: bool | None = None
    min_count: int = 10
    polarity_cutoff: float = 0.1

    def to_config(self) -> dict[str, Any]:
        """As Flower config values (str, int, float, bool; empty string / -1 for None)."""
        return {
            "data": self.data or "",
            "limit": -1 if self.limit is None else self.limit,
            "test-size": -1.0 if self.test_size is None else float(self.test_size),
            "tokenizer": self.tokenizer,
            "lowercase": "" if self.lowercase is None else ("yes" if self.lowercase else "no"),
        }

    @classmethod
    def from_config(cls, config: Any) -> DataSpec:
        lowercase = str(config.get("lowercase", ""))
        test_size = float(config.get("test-size", -1.0))
        limit = int(config.get("limit", -1))
        return cls(
            data=str(config.get("data", "")) or None,
            limit=None if limit < 0 else limit,
            test_size=None if test_size < 0 else (int(test_size) if test_size >= 1 else test_size),
            tokenizer=str(config.get("tokenizer", "auto")),
            lowercase=None if not lowercase else lowercase == "yes",
        )


@lru_cache(maxsize=4)
def load_split(spec: DataSpec) -> tuple[ReviewDataset, ReviewDataset]:
    """(training part, held-out part), cached: a party's process reads its file once per run."""
    loaded = load_rt_polarity() if spec.data is None else load_reviews(parse_data_spec(spec.data))
    dataset = interleave(loaded)
    if spec.limit is not None:
        if spec.limit < 4:
            raise InputError(f"--limit {spec.limit} is too small: at least 4 reviews are needed.")
        dataset = dataset.subset(slice(0, spec.limit))
    return train_test_split_last(dataset, resolve_test_size(spec.test_size, len(dataset)))


def owner_vocabulary(spec: DataSpec, train: ReviewDataset) -> list[str]:
    """The model's vocabulary (public: it travels inside the model file)."""
    loaded_format = train.format
    tokenize = make_tokenizer(spec.tokenizer, spec.lowercase, data_format=loaded_format)
    vocabulary = build_vocabulary(
        train.reviews, train.labels, spec.min_count, spec.polarity_cutoff, tokenize=tokenize
    )
    if len(vocabulary) == 0:
        raise InputError(
            f"the vocabulary is empty: no word occurs more than {spec.min_count} times in the "
            f"{len(train):,} training reviews; use more reviews (raise --limit)."
        )
    return list(vocabulary.words)


def party_shard(train: ReviewDataset, partition: int, partitions: int, split: str) -> ReviewDataset:
    """Party ``partition``'s reviews (of ``partitions``), disjoint from every other party's."""
    if split not in SPLITS:
        raise InputError(f"--split {split!r}: use one of {', '.join(SPLITS)}.")
    if not 0 <= partition < partitions:
        raise InputError(f"partition {partition} is not one of the {partitions} partitions.")
    if partitions > len(train):
        raise InputError(
            f"{partitions} parties but only {len(train)} training reviews: every party needs at "
            "least one; use fewer --parties or more reviews."
        )
    positions = np.arange(len(train))
    if split == "iid":
        # contiguous parts of the interleaved order hold both labels alike (every P-th review
        # would not: with an even P, it picks one label only)
        return train.subset(np.array_split(positions, partitions)[partition])
    ordered = positions[np.argsort(train.labels, kind="stable")]
    return train.subset(np.array_split(ordered, partitions)[partition])


def party_batches(
    spec: DataSpec, shard: ReviewDataset, words: list[str], batch_size: int
) -> list[Batch]:
    """The shard as mini-batches of word indices, with the model's vocabulary."""
    return review_batches(
        shard, words, batch_size, tokenizer=spec.tokenizer, lowercase=spec.lowercase
    )
