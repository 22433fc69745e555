"""Mini-batches: what the training loop feeds a model, one step at a time.

A :class:`Batch` holds plaintext inputs and targets. Inputs are a 2-D array (one row per sample)
or a :class:`BagOfWords` (one set of word indices per sample, for
:class:`~hennframework.nn.layers.EmbeddingSum`); targets are always a 2-D array with one column
per output unit. :func:`make_batches` cuts either kind into consecutive mini-batches.

>>> import numpy as np
>>> sizes = [b.size for b in make_batches(np.zeros((5, 3)), np.zeros(5), batch_size=2)]
>>> sizes
[2, 2, 1]
>>> words = BagOfWords.from_reviews([[0, 3], [], [2]])
>>> words.rows, words.row(0).tolist()
(3, [0, 3])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hennframework.exceptions import InputError

__all__ = ["BagOfWords", "Batch", "as_matrix", "make_batches", "sample_count"]


@dataclass(frozen=True)
class BagOfWords:
    """Samples as sets of word indices in CSR form: sample ``i`` is ``indices[offsets[i]:offsets[i+1]]``."""

    indices: npt.NDArray[np.integer[Any]]
    offsets: npt.NDArray[np.integer[Any]]

    def __post_init__(self) -> None:
        indices = np.asarray(self.indices)
        offsets = np.asarray(self.offsets)
        if indices.ndim != 1 or offsets.ndim != 1 or offsets.size < 1:
            raise InputError("a bag of words needs 1-D indices and at least one offset")
        if offsets[0] != 0 or offsets[-1] != indices.size or np.any(np.diff(offsets) < 0):
            raise InputError(
                "bag-of-words offsets must start at 0, never decrease and end at the number of "
                f"indices ({indices.size}); got {offsets[:1].tolist()}..{offsets[-1:].tolist()}"
            )
        if indices.size and int(indices.min()) < 0:
            raise InputError("word indices must be >= 0")
        object.__setattr__(self, "indices", indices.astype(np.int64, copy=False))
        object.__setattr__(self, "offsets", offsets.astype(np.int64, copy=False))

    @classmethod
    def from_reviews(cls, reviews: Sequence[npt.ArrayLike]) -> BagOfWords:
        """From one array of (distinct) word indices per sample."""
        arrays = [np.asarray(r, dtype=np.int64).reshape(-1) for r in reviews]
        lengths = np.array([a.size for a in arrays], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        indices = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
        return cls(indices.astype(np.int64), offsets)

    @property
    def rows(self) -> int:
        """Number of samples."""
        return int(self.offsets.size - 1)

    @property
    def owner_of_word(self) -> npt.NDArray[np.int64]:
        """For each entry of ``indices``, the sample (row) it belongs to."""
        return np.repeat(np.arange(self.rows), np.diff(self.offsets))

    def row(self, index: int) -> npt.NDArray[np.integer[Any]]:
        """The word indices of one sample."""
        return self.indices[self.offsets[index] : self.offsets[index + 1]]

    def slice(self, start: int, stop: int) -> BagOfWords:
        """Samples ``start`` to ``stop`` (clipped to the number of samples)."""
        stop = min(stop, self.rows)
        return BagOfWords(
            self.indices[self.offsets[start] : self.offsets[stop]],
            self.offsets[start : stop + 1] - self.offsets[start],
        )


@dataclass(frozen=True)
class Batch:
    """One step's plaintext data: ``inputs`` (2-D array or :class:`BagOfWords`) and ``targets``."""

    inputs: Any
    targets: npt.NDArray[np.float64]

    @property
    def size(self) -> int:
        """Number of samples in the batch."""
        return int(self.targets.shape[0])


def as_matrix(values: npt.ArrayLike, name: str = "y") -> npt.NDArray[np.float64]:
    """Values as a finite 2-D float array (a 1-D array becomes one column)."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise InputError(f"{name} must be a 1-D or 2-D array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InputError(f"{name} contains NaN or infinity")
    return array


def sample_count(inputs: Any) -> int:
    """Rows of a 2-D input array or samples of a :class:`BagOfWords`."""
    return inputs.rows if isinstance(inputs, BagOfWords) else int(np.shape(inputs)[0])


def make_batches(inputs: Any, targets: npt.ArrayLike, batch_size: int | None) -> list[Batch]:
    """Consecutive mini-batches of ``batch_size`` samples (``None``: one batch of everything)."""
    y = as_matrix(targets)
    if not isinstance(inputs, BagOfWords):
        inputs = as_matrix(inputs, "X")
    rows = sample_count(inputs)
    if rows != y.shape[0]:
        raise InputError(f"X has {rows} rows (samples) but y has {y.shape[0]}")
    if rows == 0:
        raise InputError("no training data: X has no rows")
    size = rows if batch_size is None else batch_size
    if size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    return [
        Batch(
            inputs.slice(start, start + size)
            if isinstance(inputs, BagOfWords)
            else inputs[start : start + size],
            y[start : start + size],
        )
        for start in range(0, rows, size)
    ]
