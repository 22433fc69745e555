"""A party's training data, as the workflow commands read it.

* Sequential models: ``"xor"`` (the seed's four XOR rows, with the bias column) or a CSV file of
  numbers, one sample per row, the last ``target_columns`` columns being the targets. A first
  row that is not numeric is taken as a header; blank lines and lines starting with ``#`` are
  skipped.
* Sentiment models: a reviews dataset in any layout :func:`hennframework.data.load_reviews`
  reads (rt-polarity folder, reviews/labels pair, aclImdb), interleaved positive/negative, then
  ``skip``/``limit`` select a contiguous part (so two parties can use different reviews of one
  dataset). Reviews become word-index sets with the model's own vocabulary.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hennframework.data.loaders import ReviewDataset, interleave, load_reviews
from hennframework.data.text import Vocabulary, build_vocabulary
from hennframework.exceptions import DataFormatError, InputError
from hennframework.nn.sentiment import BagOfWordsBatch, batches_from_csr

__all__ = [
    "TabularData",
    "load_review_subset",
    "load_tabular",
    "review_batches",
    "vocabulary_from_reviews",
    "xor_rows",
]


@dataclass
class TabularData:
    """Inputs and targets for a Sequential model, and where they came from."""

    inputs: npt.NDArray[np.float64]
    targets: npt.NDArray[np.float64]
    source: str

    @property
    def rows(self) -> int:
        return int(self.inputs.shape[0])


def xor_rows() -> TabularData:
    """The seed's XOR rows (inputs with a constant bias column, targets 0 1 1 0)."""
    from hennframework.demos.xor import XOR_INPUTS, XOR_TARGETS

    return TabularData(XOR_INPUTS.copy(), XOR_TARGETS.copy(), "built-in XOR rows")


def load_tabular(spec: str, *, target_columns: int = 1) -> TabularData:
    """``"xor"`` or a CSV path (see the module docstring)."""
    if spec == "xor":
        return xor_rows()
    path = Path(spec)
    if not path.is_file():
        raise DataFormatError(
            f"{spec!r} is neither 'xor' nor a CSV file; give the path of a CSV file whose last "
            f"{target_columns} column(s) are the targets."
        )
    if target_columns < 1:
        raise InputError("target_columns must be at least 1")
    rows: list[list[float]] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            cells = [cell.strip() for cell in row]
            if not cells or all(not c for c in cells) or cells[0].startswith("#"):
                continue
            try:
                values = [float(c) for c in cells]
            except ValueError:
                if not rows and number == 1:
                    continue  # header
                raise DataFormatError(
                    f"{path}:{number}: not a number in {row!r}; CSV cells must be numbers."
                ) from None
            if not all(math.isfinite(v) for v in values):
                raise DataFormatError(f"{path}:{number}: NaN or infinity; clean the data first.")
            rows.append(values)
    if not rows:
        raise DataFormatError(f"{path} holds no data rows.")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise DataFormatError(f"{path}: rows have different numbers of columns ({sorted(widths)}).")
    width = widths.pop()
    if width <= target_columns:
        raise DataFormatError(
            f"{path}: {width} columns leave no inputs beside {target_columns} target column(s)."
        )
    table = np.asarray(rows, dtype=np.float64)
    return TabularData(table[:, :-target_columns], table[:, -target_columns:], str(path))


def load_review_subset(
    spec: str,
    *,
    data_format: str = "auto",
    encoding: str | None = None,
    skip: int = 0,
    limit: int | None = None,
) -> ReviewDataset:
    """Reviews ``skip`` to ``skip + limit`` of the interleaved dataset at ``spec``."""
    path: Any = spec
    if "," in spec and not Path(spec).exists():
        first, second = spec.split(",", 1)
        path = (first, second)
    dataset = interleave(load_reviews(path, format=data_format, encoding=encoding))
    if skip < 0 or (limit is not None and limit < 1):
        raise InputError("--skip must be >= 0 and --limit >= 1")
    stop = len(dataset) if limit is None else min(len(dataset), skip + limit)
    if skip >= stop:
        raise InputError(f"--skip {skip} leaves no reviews (the dataset has {len(dataset)}).")
    return dataset.subset(slice(skip, stop))


def vocabulary_from_reviews(
    dataset: ReviewDataset, *, min_count: int = 10, polarity_cutoff: float = 0.1
) -> Vocabulary:
    """The seed's pruned vocabulary of ``dataset`` (see :mod:`hennframework.data.text`)."""
    vocabulary = build_vocabulary(dataset.reviews, dataset.labels, min_count, polarity_cutoff)
    if len(vocabulary) == 0:
        raise InputError("the vocabulary is empty; use more reviews or a smaller --min-count.")
    return vocabulary


def review_batches(
    dataset: ReviewDataset, words: list[str], batch_size: int
) -> list[BagOfWordsBatch]:
    """The reviews as mini-batches of word-index sets, with the model's vocabulary ``words``."""
    encoded = Vocabulary(words).encode_many(dataset.reviews, dataset.labels)
    return batches_from_csr(encoded.indices, encoded.offsets, encoded.labels, batch_size)
