"""A party's training data, as the workflow commands read it.

* Sequential models: ``"xor"`` (the four XOR rows of Trask's 2017 post, with the bias column) or
  a CSV file of numbers, one sample per row, the last ``target_columns`` columns being the
  targets. A first row that is not numeric is taken as a header; blank lines and lines starting
  with ``#`` are skipped. A file that is not text is refused by name, before parsing.
* Sentiment models: a reviews dataset in any layout :func:`hennframework.data.load_reviews`
  reads (a ``text<TAB>label`` or ``text,label`` file, rt-polarity folder, reviews/labels pair,
  aclImdb), interleaved positive/negative, then ``skip``/``limit`` select a contiguous part (so two
  parties can use different reviews of one dataset). Reviews become word-index sets with the
  model's own vocabulary, tokenised as chosen (``tokenizer``, ``lowercase``): the model file keeps
  the words but not the tokenizer, so the vocabulary's builder and every party must choose the
  same one. :func:`review_batches` warns when most reviews match no vocabulary word, the sign of a
  mismatch.
"""

from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hennframework.data.bundled import XOR_INPUTS, XOR_TARGETS
from hennframework.data.loaders import (
    ReviewDataset,
    check_text,
    decode_bytes,
    interleave,
    load_reviews,
    parse_data_spec,
    split_lines,
)
from hennframework.data.naming import option
from hennframework.data.text import Vocabulary, build_vocabulary, make_tokenizer
from hennframework.exceptions import DataFormatError, InputError
from hennframework.nn import BagOfWords, Batch, make_batches

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
    """The XOR rows (inputs with a constant bias column, targets 0 1 1 0)."""
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
        raise InputError(
            f"{option('target_columns', '--target-columns')} must be at least 1; got "
            f"{target_columns}."
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(
            f"cannot read data file {str(path)!r}: {exc.strerror or exc}; check its permissions."
        ) from exc
    source = f"data file {str(path)!r}"
    check_text(data, source=source, holds="CSV rows of numbers, the targets last", encodings=False)
    text, _ = decode_bytes(data, source=source)
    rows: list[list[float]] = []
    reader = csv.reader(line + "\n" for line in split_lines(text))
    number = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DataFormatError(
                f"{path}:{reader.line_num}: not valid CSV ({exc}); write one row of numbers per "
                "line, separated by commas."
            ) from None
        number = reader.line_num
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
    header: bool | None = None,
    skip_empty: bool = False,
    skip: int = 0,
    limit: int | None = None,
) -> ReviewDataset:
    """Reviews ``skip`` to ``skip + limit`` of the interleaved dataset at ``spec``.

    ``spec`` is a path, or ``REVIEWS,LABELS``; the other options are those of
    :func:`hennframework.data.load_reviews`.
    """
    if skip < 0 or (limit is not None and limit < 1):
        raise InputError(
            f"{option('skip', '--skip')} must be >= 0 and {option('limit', '--limit')} >= 1; "
            f"got {skip} and {limit}."
        )
    dataset = interleave(
        load_reviews(
            parse_data_spec(spec),
            format=data_format,
            encoding=encoding,
            header=header,
            skip_empty=skip_empty,
        )
    )
    stop = len(dataset) if limit is None else min(len(dataset), skip + limit)
    if skip >= stop:
        raise InputError(
            f"{option('skip', '--skip')} {skip} leaves no reviews (the dataset has {len(dataset)})."
        )
    return dataset.subset(slice(skip, stop))


def vocabulary_from_reviews(
    dataset: ReviewDataset,
    *,
    min_count: int = 10,
    polarity_cutoff: float = 0.1,
    tokenizer: str = "auto",
    lowercase: bool | None = None,
) -> Vocabulary:
    """The pruned vocabulary of ``dataset`` (see :mod:`hennframework.data.text`)."""
    tokenize = make_tokenizer(tokenizer, lowercase, data_format=dataset.format)
    vocabulary = build_vocabulary(
        dataset.reviews, dataset.labels, min_count, polarity_cutoff, tokenize=tokenize
    )
    if len(vocabulary) == 0:
        raise InputError(
            f"the vocabulary is empty: no word occurs more than {min_count} times in the "
            f"{len(dataset):,} reviews; use more reviews or a smaller "
            f"{option('min_count', '--min-count')}."
        )
    return vocabulary


#: Share of reviews with no vocabulary word above which :func:`review_batches` warns.
UNMATCHED_WARNING_SHARE = 0.5


def review_batches(
    dataset: ReviewDataset,
    words: list[str],
    batch_size: int,
    *,
    tokenizer: str = "auto",
    lowercase: bool | None = None,
) -> list[Batch]:
    """The reviews as mini-batches of word-index sets, with the model's vocabulary ``words``.

    Warns when more than half of the reviews hold no vocabulary word: the usual cause is a
    tokenizer or lower-casing other than the one the vocabulary was built with.
    """
    tokenize = make_tokenizer(tokenizer, lowercase, data_format=dataset.format)
    encoded = Vocabulary(words, tokenize).encode_many(dataset.reviews, dataset.labels)
    unmatched = int(np.count_nonzero(encoded.lengths == 0))
    if len(dataset) and unmatched > UNMATCHED_WARNING_SHARE * len(dataset):
        warnings.warn(
            f"{unmatched} of {len(dataset)} reviews contain no word of the model's vocabulary "
            f"(tokenised as {tokenize.describe()}); check that "
            f"{option('tokenizer= and lowercase=', '--tokenizer and --lowercase')} match those "
            "the vocabulary was built with.",
            UserWarning,
            stacklevel=2,
        )
    return make_batches(BagOfWords(encoded.indices, encoded.offsets), encoded.labels, batch_size)
