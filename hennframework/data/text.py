"""Text preprocessing: tokenizers, word counts, polarity ratios, a pruned vocabulary, index sets.

The vocabulary rules are those of the bag-of-words sentiment network in Andrew Trask's 2017 post
"Safe AI" (his ``SentimentNetwork`` from Udacity's deep-learning programme, project 6):

* a review's words come from a tokenizer. ``whitespace`` is that network's rule,
  ``review.split(" ")``: a split on single spaces, so double or trailing spaces give empty-string
  "words", which are counted like any other word (rt-polarity lines end in a space, so ``""`` is
  in almost every review and behaves like a bias input if it survives the cut below). ``words``
  (:func:`split_words`) splits punctuation off words, for raw text such as a ``text<TAB>label``
  file; either may lower-case first (:class:`TextTokenizer`);
* ``total``/``positive``/``negative`` counts are word occurrences over the *training* reviews;
* a word seen at least ``ratio_min_count`` (50) times gets a polarity score from
  ``ratio = positive / (negative + 1)``: ``log(ratio)`` if ``ratio > 1``, else
  ``-log(1 / (ratio + 0.01))``;
* the vocabulary keeps a word if ``total > min_count`` and, when it has a polarity score,
  ``|score| >= polarity_cutoff``;
* a review becomes the *set* of the vocabulary indices of its words (each word once, unknown
  words dropped); the network's input layer sums the weight rows of that set.

The vocabulary is sorted (the reference used a Python set, whose order changes between runs);
the order cannot change results, since the input weights start at zero and are updated per word.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, get_args

import numpy as np
import numpy.typing as npt

from hennframework.data.naming import option
from hennframework.exceptions import DataFormatError, InputError

__all__ = [
    "PRE_TOKENISED_FORMATS",
    "TOKENIZERS",
    "EncodedReviews",
    "TextTokenizer",
    "Tokenizer",
    "TokenizerName",
    "Vocabulary",
    "WordCounts",
    "build_vocabulary",
    "count_words",
    "make_tokenizer",
    "polarity_scores",
    "split_on_spaces",
    "split_words",
]

Tokenizer = Callable[[str], Sequence[str]]
TokenizerName: TypeAlias = Literal["whitespace", "words"]
#: The tokenizers by name: ``whitespace`` (Trask's 2017 rules) and ``words`` (punctuation split off).
TOKENIZERS: tuple[TokenizerName, ...] = get_args(TokenizerName)
#: Dataset layouts whose text comes already tokenised with spaces and lower-cased (rt-polarity, and
#: the reviews.txt of Trask's network): ``auto`` keeps the 2017 rules for them, so figures measured
#: on them stay comparable.
PRE_TOKENISED_FORMATS: frozenset[str] = frozenset({"polarity", "reviews-labels"})


def split_on_spaces(review: str) -> list[str]:
    """Trask's 2017 tokenizer: ``review.split(" ")`` (not ``split()``: empty words are kept)."""
    return review.split(" ")


# A word: letters and digits of any script, joined by single inner apostrophes or hyphens
# ("don't", "l'été", "slow-moving"). Anything else that is not a space is punctuation; a run of one
# punctuation character stays one token ("!!!", "..."), because emphasis carries sentiment.
# Combining marks are not "word" characters to the re module, so split_words glues them (and what
# follows them) back onto their word: Devanagari vowel signs, a dot above after lower-casing "İ".
_TOKEN = re.compile(r"(?P<w>[^\W_]+(?:[-'\u2019][^\W_]+)*)|(?P<p>[^\w\s]|_)(?P=p)*")


def split_words(review: str) -> list[str]:
    """Words and punctuation marks of raw text, Unicode-aware: ``"Don't stop!!"`` gives
    ``["Don't", "stop", "!!"]``.

    The text is put in Unicode normal form C first, so an accent typed as a separate combining
    mark stays part of its word (``"cafe\u0301"`` is ``"café"``); marks with no precomposed
    form (Indic vowel signs) are kept inside their word too. Case is kept (see
    :class:`TextTokenizer` for lower-casing).
    """
    text = unicodedata.normalize("NFC", review)
    tokens: list[str] = []
    end = -1
    in_word = False  # the last token is a word (so a mark right after it belongs to it)
    for match in _TOKEN.finditer(text):
        token = match.group()
        is_word = match.lastgroup == "w"
        if tokens and in_word and match.start() == end:
            ends_in_mark = unicodedata.category(tokens[-1][-1]).startswith("M")
            if unicodedata.category(token[0]).startswith("M") or (is_word and ends_in_mark):
                tokens[-1] += token
                end = match.end()
                continue
        tokens.append(token)
        end = match.end()
        in_word = is_word
    return tokens


@dataclass(frozen=True)
class TextTokenizer:
    """A tokenizer chosen by name (``whitespace`` or ``words``), optionally lower-casing first.

    Being a named value rather than any callable, it can be reported (:meth:`describe`) and
    chosen on the command line (``--tokenizer``, ``--lowercase``).
    """

    name: TokenizerName = "whitespace"
    lowercase: bool = False

    def __post_init__(self) -> None:
        if self.name not in TOKENIZERS:
            raise InputError(
                f"unknown tokenizer {self.name!r}; use 'whitespace' (Andrew Trask's 2017 rules: "
                "split on single spaces) or 'words' (split punctuation off words)."
            )

    def __call__(self, review: str) -> list[str]:
        text = review.lower() if self.lowercase else review
        return split_words(text) if self.name == "words" else split_on_spaces(text)

    def describe(self) -> str:
        """``"words, lower-cased"`` or ``"whitespace"``: for summaries."""
        return self.name + (", lower-cased" if self.lowercase else "")


def make_tokenizer(
    name: str = "auto", lowercase: bool | None = None, *, data_format: str | None = None
) -> TextTokenizer:
    """The tokenizer for ``name`` (``auto``, ``whitespace`` or ``words``) and ``lowercase``.

    ``auto`` is ``whitespace`` for text that comes tokenised (:data:`PRE_TOKENISED_FORMATS`, where
    ``data_format`` says which layout was read) and ``words`` otherwise. ``lowercase=None`` means
    on for ``words`` and off for ``whitespace`` (the 2017 rules take the text as it is).
    """
    key = name.strip().lower()
    if key == "auto":
        key = "whitespace" if data_format in PRE_TOKENISED_FORMATS else "words"
    if key not in TOKENIZERS:
        raise InputError(
            f"unknown tokenizer {name!r}; pass {option('tokenizer=', '--tokenizer')} 'auto', "
            "'words' (split punctuation off words) or 'whitespace' (Andrew Trask's 2017 rules: "
            "split on single spaces)."
        )
    chosen: TokenizerName = "words" if key == "words" else "whitespace"
    return TextTokenizer(chosen, chosen == "words" if lowercase is None else lowercase)


def _labels_array(labels: Sequence[int] | npt.NDArray[np.integer], n: int) -> npt.NDArray[np.int8]:
    arr = np.asarray(labels)
    if arr.shape != (n,):
        raise InputError(f"need one label per review: {n} reviews but labels of shape {arr.shape}.")
    if n and not np.isin(arr, (0, 1)).all():
        raise InputError("labels must be 0 (negative) or 1 (positive); map them to 0/1 first.")
    return arr.astype(np.int8)


@dataclass(frozen=True)
class WordCounts:
    """Occurrence counts of every word, overall and in positive / negative reviews."""

    total: Counter[str]
    positive: Counter[str]
    negative: Counter[str]


def count_words(
    reviews: Sequence[str],
    labels: Sequence[int] | npt.NDArray[np.integer],
    tokenize: Tokenizer = split_on_spaces,
) -> WordCounts:
    """Count each word's occurrences (every occurrence, not once per review) by label."""
    labels_arr = _labels_array(labels, len(reviews))
    positive: Counter[str] = Counter()
    negative: Counter[str] = Counter()
    for review, label in zip(reviews, labels_arr.tolist(), strict=True):
        (positive if label == 1 else negative).update(tokenize(review))
    total = positive + negative
    # Counter addition drops non-positive counts only; all counts here are >= 1.
    return WordCounts(total=total, positive=positive, negative=negative)


def polarity_scores(counts: WordCounts, ratio_min_count: int = 50) -> dict[str, float]:
    """The reference's log positive-to-negative ratio of each word seen >= ``ratio_min_count`` times.

    ``ratio = pos / (neg + 1)``; the score is ``log(ratio)`` when ``ratio > 1`` and
    ``-log(1 / (ratio + 0.01))`` otherwise (the +0.01 keeps words never seen in positive reviews
    finite). Positive scores lean positive, negative scores lean negative, 0 is neutral.
    """
    scores: dict[str, float] = {}
    for word, count in counts.total.items():
        if count >= ratio_min_count:
            ratio = counts.positive[word] / float(counts.negative[word] + 1)
            scores[word] = math.log(ratio) if ratio > 1 else -math.log(1.0 / (ratio + 0.01))
    return scores


class Vocabulary:
    """An ordered word list and its word -> index map; encodes reviews as sets of indices."""

    __slots__ = ("_index", "_words", "tokenize")

    def __init__(self, words: Iterable[str], tokenize: Tokenizer = split_on_spaces) -> None:
        self._words: tuple[str, ...] = tuple(words)
        self._index: dict[str, int] = {w: i for i, w in enumerate(self._words)}
        if len(self._index) != len(self._words):
            dupes = [w for w, c in Counter(self._words).items() if c > 1][:5]
            raise InputError(f"vocabulary words must be unique; repeated: {dupes!r}.")
        self.tokenize = tokenize

    def __len__(self) -> int:
        return len(self._words)

    def __contains__(self, word: object) -> bool:
        return word in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._words == other._words

    def __hash__(self) -> int:
        return hash(self._words)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} words)"

    @property
    def words(self) -> tuple[str, ...]:
        """The words, in index order."""
        return self._words

    def index(self, word: str) -> int:
        """The index of ``word``; KeyError if it is not in the vocabulary."""
        return self._index[word]

    def encode(self, review: str) -> npt.NDArray[np.int32]:
        """The sorted, unique indices of the review's words that are in the vocabulary."""
        index = self._index
        found = {index[w] for w in self.tokenize(review) if w in index}
        return np.fromiter(sorted(found), dtype=np.int32, count=len(found))

    def encode_many(
        self, reviews: Sequence[str], labels: Sequence[int] | npt.NDArray[np.integer] | None = None
    ) -> EncodedReviews:
        """All reviews as one :class:`EncodedReviews` (labels default to -1, meaning unknown)."""
        return EncodedReviews.from_reviews(self, reviews, labels)

    def to_json(self) -> str:
        """The words as JSON (safe to share; no pickle). The tokenizer is not saved."""
        return json.dumps(
            {"kind": "hennframework.vocabulary", "version": 1, "words": list(self._words)}
        )

    @classmethod
    def from_json(cls, text: str, tokenize: Tokenizer = split_on_spaces) -> Vocabulary:
        """Inverse of :meth:`to_json`; raises DataFormatError for anything else."""
        try:
            obj: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"vocabulary JSON is malformed: {exc}; re-export it.") from exc
        if (
            not isinstance(obj, dict)
            or obj.get("kind") != "hennframework.vocabulary"
            or obj.get("version") != 1
            or not isinstance(obj.get("words"), list)
            or not all(isinstance(w, str) for w in obj["words"])
        ):
            raise DataFormatError(
                "not a hennframework vocabulary (version 1) JSON document; export it with "
                "Vocabulary.to_json()."
            )
        return cls(obj["words"], tokenize)


def build_vocabulary(
    reviews: Sequence[str],
    labels: Sequence[int] | npt.NDArray[np.integer],
    min_count: int = 10,
    polarity_cutoff: float = 0.1,
    *,
    ratio_min_count: int = 50,
    tokenize: Tokenizer = split_on_spaces,
) -> Vocabulary:
    """The pruned vocabulary of the (training) ``reviews`` (see the module docstring).

    Keeps a word if it occurs more than ``min_count`` times and, if it occurs at least
    ``ratio_min_count`` times (so it has a polarity score), that score's magnitude is at least
    ``polarity_cutoff``.
    """
    if min_count < 0 or polarity_cutoff < 0 or ratio_min_count < 0:
        raise InputError(
            "min_count, polarity_cutoff and ratio_min_count must be >= 0; got "
            f"{min_count}, {polarity_cutoff}, {ratio_min_count}."
        )
    counts = count_words(reviews, labels, tokenize)
    scores = polarity_scores(counts, ratio_min_count)
    kept = [
        word
        for word, count in counts.total.items()
        if count > min_count and (word not in scores or abs(scores[word]) >= polarity_cutoff)
    ]
    return Vocabulary(sorted(kept), tokenize)


@dataclass(frozen=True)
class EncodedReviews:
    """Reviews as index sets in CSR form: review *i* is ``indices[offsets[i]:offsets[i+1]]``.

    ``labels`` are 0/1 (or -1 where unknown). One flat ``int32`` array plus ``int64`` offsets is
    what the training loops gather weight rows from, with no per-review Python objects.
    """

    indices: npt.NDArray[np.int32]
    offsets: npt.NDArray[np.int64]
    labels: npt.NDArray[np.int8]
    vocab_size: int

    def __post_init__(self) -> None:
        n = self.offsets.shape[0] - 1
        if (
            self.offsets.ndim != 1
            or n < 0
            or self.offsets[0] != 0
            or self.offsets[-1] != self.indices.shape[0]
            or np.any(np.diff(self.offsets) < 0)
        ):
            raise InputError("offsets must start at 0, never decrease and end at len(indices).")
        if self.labels.shape != (n,):
            raise InputError(f"need {n} labels, got shape {self.labels.shape}.")
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= self.vocab_size):
            raise InputError(f"word indices must lie in [0, {self.vocab_size}).")

    @classmethod
    def from_reviews(
        cls,
        vocab: Vocabulary,
        reviews: Sequence[str],
        labels: Sequence[int] | npt.NDArray[np.integer] | None = None,
    ) -> EncodedReviews:
        """Encode every review with ``vocab.encode``."""
        parts = [vocab.encode(r) for r in reviews]
        lengths = np.fromiter((p.shape[0] for p in parts), dtype=np.int64, count=len(parts))
        offsets = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        indices = np.concatenate(parts) if parts else np.zeros(0, np.int32)
        if labels is None:
            label_arr = np.full(len(parts), -1, dtype=np.int8)
        else:
            label_arr = _labels_array(labels, len(parts))
        return cls(indices.astype(np.int32, copy=False), offsets, label_arr, len(vocab))

    def __len__(self) -> int:
        return int(self.offsets.shape[0] - 1)

    def __getitem__(self, i: int) -> npt.NDArray[np.int32]:
        return self.indices[self.offsets[i] : self.offsets[i + 1]]

    @property
    def lengths(self) -> npt.NDArray[np.int64]:
        """How many vocabulary words each review has."""
        return np.diff(self.offsets)

    def split_list(self) -> list[npt.NDArray[np.int32]]:
        """One index array (a view) per review: what a per-review loop iterates over."""
        return np.split(self.indices, self.offsets[1:-1])

    def slice(self, start: int, stop: int) -> EncodedReviews:
        """Reviews ``start`` to ``stop - 1`` as their own EncodedReviews (indices are copied)."""
        n = len(self)
        start, stop, _ = slice(start, stop).indices(n)
        stop = max(start, stop)
        lo, hi = int(self.offsets[start]), int(self.offsets[stop])
        return EncodedReviews(
            self.indices[lo:hi].copy(),
            self.offsets[start : stop + 1] - lo,
            self.labels[start:stop].copy(),
            self.vocab_size,
        )
