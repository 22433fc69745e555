"""Loading labelled movie reviews from the files users actually have.

Three layouts are understood, and :func:`load_reviews` tells them apart from a path:

``reviews-labels``
    A reviews file and a labels file, one review (or label) per line, line *i* of one belonging to
    line *i* of the other: the ``reviews.txt`` / ``labels.txt`` pair of the Udacity sentiment course.
    Labels are ``positive``/``negative``, ``pos``/``neg`` or ``1``/``0``, in any case.
``polarity``
    Two files ``<name>.pos`` and ``<name>.neg`` holding one positive (negative) review per line:
    Pang and Lee's sentence polarity dataset (``rt-polarity.pos`` / ``rt-polarity.neg``).
``aclimdb``
    The Stanford Large Movie Review Dataset folder: ``<root>/<split>/{pos,neg}/*.txt``, one review
    per file (files are read in name order, so loading is deterministic; ``<br />`` tags become
    spaces).

Decoding is explicit because real review files are not all UTF-8: the polarity files are
Windows-1252. Without an ``encoding=`` a file is decoded as strict UTF-8 (a leading byte-order mark
is dropped) and, if that fails, as Windows-1252, where the five bytes cp1252 leaves undefined
(0x81, 0x8D, 0x8F, 0x90, 0x9D) are taken as their Latin-1 code points, so every byte string decodes
and nothing is silently dropped. With ``encoding=`` that codec alone is used, strictly.

Only ``"\\n"`` ends a line (a trailing ``"\\r"`` is removed). :meth:`str.splitlines` is never used:
it also breaks at U+0085, the character the Windows-1252 byte 0x85 (an ellipsis in these files)
decodes to under Latin-1, and at several other Unicode separators, which would split reviews and
misalign them with their labels. A final newline does not make an extra, empty review.
"""

from __future__ import annotations

import codecs
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from hennframework.exceptions import DataFormatError, InputError

__all__ = [
    "ACCEPTED_LABELS",
    "FORMATS",
    "DatasetFormat",
    "PathPair",
    "ReviewDataset",
    "decode_bytes",
    "detect_format",
    "interleave",
    "load_aclimdb",
    "load_polarity",
    "load_reviews",
    "load_reviews_and_labels",
    "parse_label",
    "split_lines",
    "train_test_split_last",
]

DatasetFormat: TypeAlias = Literal["reviews-labels", "polarity", "aclimdb"]
FORMATS: tuple[DatasetFormat, ...] = ("reviews-labels", "polarity", "aclimdb")
PathLike: TypeAlias = str | Path
PathPair: TypeAlias = tuple[PathLike, PathLike]

#: Spellings accepted in a labels file (compared after stripping spaces and lower-casing).
ACCEPTED_LABELS: dict[str, int] = {
    "positive": 1,
    "pos": 1,
    "1": 1,
    "negative": 0,
    "neg": 0,
    "0": 0,
}

_FALLBACK_ENCODING = "windows-1252"
_ERROR_HANDLER = "hennframework.cp1252_latin1"


def _cp1252_latin1_fallback(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: map bytes cp1252 leaves undefined to the same Latin-1 code point."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return bytes(bad).decode("latin-1"), error.end


codecs.register_error(_ERROR_HANDLER, _cp1252_latin1_fallback)


@dataclass(frozen=True)
class ReviewDataset:
    """Reviews with 0/1 sentiment labels (1 = positive), plus where they came from.

    ``reviews[i]`` is the text of review *i* exactly as read (only a trailing ``"\\r"`` removed, and
    for aclImdb ``<br />`` tags and newlines turned into spaces); ``labels[i]`` is its label as
    ``int8``. ``source`` says which files were read and ``encoding`` which codec decoded them, so a
    user can check that a fallback decoding was the right guess.
    """

    reviews: list[str]
    labels: npt.NDArray[np.int8]
    source: str
    encoding: str
    format: DatasetFormat | None = None
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels)
        if labels.ndim != 1 or labels.shape[0] != len(self.reviews):
            raise InputError(
                f"ReviewDataset needs one label per review: got {len(self.reviews)} reviews and "
                f"labels of shape {labels.shape}; pass a 1-D array as long as the review list."
            )
        if labels.size and not np.isin(labels, (0, 1)).all():
            raise InputError(
                "ReviewDataset labels must be 0 (negative) or 1 (positive); found "
                f"{sorted(set(np.unique(labels).tolist()) - {0, 1})[:5]}. Map them to 0/1 first."
            )
        object.__setattr__(self, "labels", labels.astype(np.int8, copy=False))

    def __len__(self) -> int:
        return len(self.reviews)

    @property
    def n_positive(self) -> int:
        """How many reviews are labelled positive."""
        return int(np.count_nonzero(self.labels))

    @property
    def n_negative(self) -> int:
        """How many reviews are labelled negative."""
        return len(self.reviews) - self.n_positive

    def subset(self, index: slice | Sequence[int] | npt.NDArray[np.integer]) -> ReviewDataset:
        """The reviews selected by ``index`` (a slice or integer positions), in that order."""
        if isinstance(index, slice):
            reviews = self.reviews[index]
            labels = self.labels[index]
        else:
            positions = np.asarray(index, dtype=np.intp)
            reviews = [self.reviews[int(i)] for i in positions]
            labels = self.labels[positions]
        return ReviewDataset(reviews, labels, self.source, self.encoding, self.format, self.notes)


# --------------------------------------------------------------------------------------------
# Reading and decoding
# --------------------------------------------------------------------------------------------


def _read_bytes(path: Path, what: str) -> bytes:
    """The bytes of ``path``, or a DataFormatError naming the path and what it was meant to be."""
    if not path.exists():
        raise DataFormatError(
            f"{what} {str(path)!r} does not exist; check the path (relative paths are taken "
            f"from the current directory, {str(Path.cwd())!r})."
        )
    if path.is_dir():
        raise DataFormatError(f"{what} {str(path)!r} is a directory; pass the file itself.")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataFormatError(
            f"cannot read {what} {str(path)!r}: {exc.strerror or exc}; check its permissions."
        ) from exc


def decode_bytes(
    data: bytes, encoding: str | None = None, *, source: str = "<bytes>"
) -> tuple[str, str]:
    """Decode ``data`` as described in the module docstring; returns ``(text, encoding used)``.

    With ``encoding=None``: ``"ascii"`` if every byte is ASCII, else strict UTF-8 (BOM dropped), else Windows-1252 with Latin-1 for its five
    undefined bytes (never fails). With an explicit ``encoding``: that codec, strictly; a failure
    raises :class:`DataFormatError` naming ``source``, the line and the byte.
    """
    if encoding is None:
        if data.isascii():
            return data.decode("ascii"), "ascii"
        try:
            return data.decode("utf-8-sig"), "utf-8"
        except UnicodeDecodeError:
            return data.decode(_FALLBACK_ENCODING, errors=_ERROR_HANDLER), _FALLBACK_ENCODING
    try:
        codecs.lookup(encoding)
    except LookupError as exc:
        raise DataFormatError(
            f"unknown encoding {encoding!r}; pass a codec name Python knows, such as 'utf-8', "
            "'windows-1252' or 'latin-1' (or leave it out to detect UTF-8 / Windows-1252)."
        ) from exc
    codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    try:
        return data.decode(codec), encoding
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataFormatError(
            f"{source} cannot be decoded as {encoding!r}: byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start} (line {line}) is invalid ({exc.reason}). Pass the file's real encoding, "
            "or leave the encoding out to try UTF-8 and then Windows-1252."
        ) from exc


def split_lines(text: str) -> list[str]:
    """Split at ``"\\n"`` only, strip one trailing ``"\\r"`` per line, ignore one final newline.

    ``"a\\nb\\n"`` and ``"a\\r\\nb"`` both give ``["a", "b"]``; ``"a\\x85b"`` stays one line.
    """
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _read_lines(path: Path, what: str, encoding: str | None) -> tuple[list[str], str]:
    """Lines of a text file (see :func:`split_lines`); empty files are an error."""
    data = _read_bytes(path, what)
    text, used = decode_bytes(data, encoding, source=f"{what} {str(path)!r}")
    lines = split_lines(text)
    if not lines or all(not line.strip() for line in lines):
        raise DataFormatError(
            f"{what} {str(path)!r} is empty (it has no non-blank lines); point at a file that "
            "holds one review per line."
        )
    return lines, used


def _blank_lines(lines: Sequence[str]) -> list[int]:
    """1-based numbers of the lines that are empty or hold only whitespace."""
    return [i + 1 for i, line in enumerate(lines) if not line.strip()]


def _describe_lines(numbers: Sequence[int], limit: int = 5) -> str:
    shown = ", ".join(str(n) for n in numbers[:limit])
    more = f" and {len(numbers) - limit} more" if len(numbers) > limit else ""
    return f"line{'s' if len(numbers) > 1 else ''} {shown}{more}"


def _handle_blank(
    lines: list[str], path: Path, what: str, skip_empty: bool
) -> tuple[list[str], list[int]]:
    """Drop blank lines (with a warning) if ``skip_empty``, else refuse them with their numbers."""
    blank = _blank_lines(lines)
    if not blank:
        return lines, []
    if not skip_empty:
        raise DataFormatError(
            f"{what} {str(path)!r} has an empty review at {_describe_lines(blank)}; remove those "
            "lines or pass skip_empty=True to drop them."
        )
    warnings.warn(
        f"skipped {len(blank)} empty review line(s) in {str(path)!r} ({_describe_lines(blank)})",
        UserWarning,
        stacklevel=3,
    )
    blank_set = set(blank)
    return [line for i, line in enumerate(lines, 1) if i not in blank_set], blank


def _join_encodings(encodings: Sequence[str]) -> str:
    """One description of the codecs used; pure-ASCII files fit any of them, so they don't count."""
    unique = list(dict.fromkeys(encodings))
    if len(unique) > 1 and "ascii" in unique:
        unique.remove("ascii")
    return unique[0] if len(unique) == 1 else " + ".join(unique)


# --------------------------------------------------------------------------------------------
# The three layouts
# --------------------------------------------------------------------------------------------


def parse_label(raw: str, *, line: int | None = None, source: str = "labels") -> int:
    """1 for a positive label, 0 for a negative one (see :data:`ACCEPTED_LABELS`)."""
    key = raw.strip().lower()
    try:
        return ACCEPTED_LABELS[key]
    except KeyError:
        where = f" at line {line}" if line is not None else ""
        raise DataFormatError(
            f"unknown label {raw.strip()!r} in {source}{where}; accepted labels (any case) are "
            "positive/negative, pos/neg and 1/0."
        ) from None


def load_reviews_and_labels(
    reviews_path: PathLike,
    labels_path: PathLike,
    *,
    encoding: str | None = None,
    skip_empty: bool = False,
) -> ReviewDataset:
    """Load a reviews file and a labels file that hold one review / one label per line.

    Both files must have the same number of lines. A blank review is an error unless
    ``skip_empty=True``, which drops that review and its label (with a warning); a line that is
    blank in both files is treated the same way. Labels are parsed by :func:`parse_label`.
    """
    rpath, lpath = Path(reviews_path), Path(labels_path)
    reviews, r_enc = _read_lines(rpath, "reviews file", encoding)
    labels_raw, l_enc = _read_lines(lpath, "labels file", encoding)
    if len(reviews) != len(labels_raw):
        raise DataFormatError(
            f"the reviews file {str(rpath)!r} has {len(reviews)} lines but the labels file "
            f"{str(lpath)!r} has {len(labels_raw)}; they must pair line by line (check for a "
            "truncated file, a missing label, or a review that contains a newline)."
        )
    blank = set(_blank_lines(reviews))
    if blank and not skip_empty:
        numbers = sorted(blank)
        raise DataFormatError(
            f"reviews file {str(rpath)!r} has an empty review at {_describe_lines(numbers)}; "
            "remove those lines (and their labels) or pass skip_empty=True to drop them."
        )
    kept_reviews: list[str] = []
    kept_labels: list[int] = []
    label_source = f"labels file {str(lpath)!r}"
    for number, (review, raw_label) in enumerate(zip(reviews, labels_raw, strict=True), 1):
        if number in blank:
            continue
        kept_reviews.append(review)
        kept_labels.append(parse_label(raw_label, line=number, source=label_source))
    notes: tuple[str, ...] = ()
    if blank:
        numbers = sorted(blank)
        note = f"skipped {len(numbers)} empty review(s) at {_describe_lines(numbers)}"
        warnings.warn(f"{note} of {str(rpath)!r}", UserWarning, stacklevel=2)
        notes = (note,)
    return ReviewDataset(
        kept_reviews,
        np.asarray(kept_labels, dtype=np.int8),
        source=f"reviews {str(rpath)!r} + labels {str(lpath)!r}",
        encoding=_join_encodings([r_enc, l_enc]),
        format="reviews-labels",
        notes=notes,
    )


def _polarity_pair(path: Path) -> tuple[Path, Path]:
    """The (.pos, .neg) files for a polarity directory or for either of its two files."""
    if path.is_dir():
        pos = sorted(path.glob("*.pos"))
        pairs = [(p, p.with_suffix(".neg")) for p in pos if p.with_suffix(".neg").is_file()]
        if len(pairs) != 1:
            found = ", ".join(p.name for p in pos) or "none"
            raise DataFormatError(
                f"directory {str(path)!r} should hold exactly one <name>.pos / <name>.neg pair "
                f"(such as rt-polarity.pos and rt-polarity.neg); .pos files found: {found}. "
                "Pass the two files explicitly."
            )
        return pairs[0]
    if path.suffix in (".pos", ".neg"):
        return path.with_suffix(".pos"), path.with_suffix(".neg")
    raise DataFormatError(
        f"{str(path)!r} is not a polarity dataset: expected a directory holding <name>.pos and "
        "<name>.neg, or one of those two files."
    )


def load_polarity(
    path: PathLike | PathPair,
    *,
    encoding: str | None = None,
    skip_empty: bool = False,
) -> ReviewDataset:
    """Load the two-file polarity format: all of ``<name>.pos`` (label 1), then ``<name>.neg`` (0).

    ``path`` is the directory holding the pair, either file of the pair, or an explicit
    ``(pos_path, neg_path)`` tuple. Use :func:`interleave` to alternate the two classes.
    """
    if isinstance(path, tuple):
        pos_path, neg_path = Path(path[0]), Path(path[1])
    else:
        p = Path(path)
        if not p.exists():
            raise DataFormatError(
                f"polarity dataset path {str(p)!r} does not exist; check the path."
            )
        pos_path, neg_path = _polarity_pair(p)
    pos, pos_enc = _read_lines(pos_path, "positive reviews file", encoding)
    neg, neg_enc = _read_lines(neg_path, "negative reviews file", encoding)
    pos, pos_blank = _handle_blank(pos, pos_path, "positive reviews file", skip_empty)
    neg, neg_blank = _handle_blank(neg, neg_path, "negative reviews file", skip_empty)
    notes = tuple(
        f"skipped {len(blank)} empty line(s) in {name}: {_describe_lines(blank)}"
        for name, blank in ((pos_path.name, pos_blank), (neg_path.name, neg_blank))
        if blank
    )
    labels = np.concatenate([np.ones(len(pos), np.int8), np.zeros(len(neg), np.int8)])
    return ReviewDataset(
        pos + neg,
        labels,
        source=f"polarity files {str(pos_path)!r} ({len(pos)} positive) + {str(neg_path)!r} "
        f"({len(neg)} negative)",
        encoding=_join_encodings([pos_enc, neg_enc]),
        format="polarity",
        notes=notes,
    )


_BR_TAG = re.compile(r"<br\s*/?\s*>", re.IGNORECASE)


def _aclimdb_split_dir(root: Path, split: str) -> Path:
    """The folder holding pos/ and neg/ for ``split`` (``root`` itself if it is such a folder)."""
    if (root / "pos").is_dir() and (root / "neg").is_dir():
        return root
    candidate = root / split
    if (candidate / "pos").is_dir() and (candidate / "neg").is_dir():
        return candidate
    available = (
        sorted(
            d.name
            for d in root.iterdir()
            if d.is_dir() and (d / "pos").is_dir() and (d / "neg").is_dir()
        )
        if root.is_dir()
        else []
    )
    hint = (
        f"splits found: {', '.join(available)}"
        if available
        else "no <split>/pos and <split>/neg folders found"
    )
    raise DataFormatError(
        f"aclImdb folder {str(root)!r} has no split {split!r} with pos/ and neg/ subfolders "
        f"({hint}); pass split= one of those, or point at the aclImdb root."
    )


def load_aclimdb(
    root: PathLike,
    split: str = "train",
    *,
    encoding: str | None = None,
    skip_empty: bool = False,
) -> ReviewDataset:
    """Load one split of an aclImdb folder: every ``pos/*.txt`` (label 1), then ``neg/*.txt``.

    ``root`` is the aclImdb folder (holding ``train/`` and ``test/``) or a split folder itself.
    Files are read in name order; each is one review, whose ``<br />`` tags and line breaks become
    spaces. An empty file is an error unless ``skip_empty=True``.
    """
    root_path = Path(root)
    if not root_path.is_dir():
        raise DataFormatError(
            f"aclImdb folder {str(root_path)!r} does not exist or is not a directory; check the path."
        )
    split_dir = _aclimdb_split_dir(root_path, split)
    reviews: list[str] = []
    labels: list[int] = []
    encodings: list[str] = []
    skipped: list[str] = []
    counts: dict[str, int] = {}
    for sub, label in (("pos", 1), ("neg", 0)):
        files = sorted(p for p in (split_dir / sub).glob("*.txt") if p.is_file())
        if not files:
            raise DataFormatError(
                f"aclImdb folder {str(split_dir / sub)!r} holds no *.txt review files; check that "
                "the dataset was extracted completely."
            )
        for file in files:
            text, used = decode_bytes(
                _read_bytes(file, "review file"), encoding, source=f"review file {str(file)!r}"
            )
            review = (
                _BR_TAG.sub(" ", text).replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
            )
            if not review.strip():
                if not skip_empty:
                    raise DataFormatError(
                        f"review file {str(file)!r} is empty; delete it or pass skip_empty=True."
                    )
                skipped.append(str(file))
                continue
            reviews.append(review)
            labels.append(label)
            encodings.append(used)
        counts[sub] = len(files)
    notes: tuple[str, ...] = ()
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} empty review file(s), e.g. {skipped[0]!r}",
            UserWarning,
            stacklevel=2,
        )
        notes = (f"skipped {len(skipped)} empty review file(s)",)
    return ReviewDataset(
        reviews,
        np.asarray(labels, dtype=np.int8),
        source=f"aclImdb {str(split_dir)!r} ({counts['pos']} pos + {counts['neg']} neg files)",
        encoding=_join_encodings(encodings),
        format="aclimdb",
        notes=notes,
    )


# --------------------------------------------------------------------------------------------
# Format detection and the one entry point
# --------------------------------------------------------------------------------------------

_FORMAT_ALIASES: dict[str, DatasetFormat] = {
    "reviews-labels": "reviews-labels",
    "reviews_labels": "reviews-labels",
    "udacity": "reviews-labels",
    "polarity": "polarity",
    "rt-polarity": "polarity",
    "aclimdb": "aclimdb",
    "imdb": "aclimdb",
}


def _normalise_format(fmt: str) -> DatasetFormat | Literal["auto"]:
    key = fmt.strip().lower()
    if key == "auto":
        return "auto"
    try:
        return _FORMAT_ALIASES[key]
    except KeyError:
        raise DataFormatError(
            f"unknown dataset format {fmt!r}; use 'auto' or one of {', '.join(FORMATS)}."
        ) from None


def _labels_beside(reviews_path: Path) -> Path | None:
    """``labels.txt`` (or ``labels<suffix>``) next to a reviews file named like ``reviews*``."""
    name = reviews_path.name
    if not name.lower().startswith("reviews"):
        return None
    candidate = reviews_path.with_name("labels" + name[len("reviews") :])
    return candidate if candidate.is_file() else None


def detect_format(path: PathLike | PathPair) -> DatasetFormat:
    """Which layout ``path`` holds; raises :class:`DataFormatError` saying what was looked for.

    A pair of paths is ``polarity`` if the first ends in ``.pos``/``.neg``, else ``reviews-labels``.
    A directory is ``aclimdb`` if it (or a ``train``/``test`` folder in it) holds ``pos/`` and
    ``neg/`` folders, ``polarity`` if it holds a ``<name>.pos``/``<name>.neg`` pair, and
    ``reviews-labels`` if it holds ``reviews.txt`` and ``labels.txt``. A file is ``polarity`` if it
    ends in ``.pos``/``.neg`` and ``reviews-labels`` if a ``labels`` file sits beside it.
    """
    if isinstance(path, tuple):
        first = Path(path[0])
        return "polarity" if first.suffix in (".pos", ".neg") else "reviews-labels"
    p = Path(path)
    if not p.exists():
        raise DataFormatError(f"dataset path {str(p)!r} does not exist; check the path.")
    if p.is_dir():
        if (p / "pos").is_dir() and (p / "neg").is_dir():
            return "aclimdb"
        if any((p / s / "pos").is_dir() and (p / s / "neg").is_dir() for s in ("train", "test")):
            return "aclimdb"
        if any(q.with_suffix(".neg").is_file() for q in p.glob("*.pos")):
            return "polarity"
        if (p / "reviews.txt").is_file() and (p / "labels.txt").is_file():
            return "reviews-labels"
        raise DataFormatError(
            f"cannot tell the dataset format of directory {str(p)!r}: expected reviews.txt + "
            "labels.txt, a <name>.pos + <name>.neg pair, or an aclImdb layout "
            "(train|test/pos|neg/*.txt). Pass format= and the exact paths."
        )
    if p.suffix in (".pos", ".neg"):
        return "polarity"
    if _labels_beside(p) is not None:
        return "reviews-labels"
    raise DataFormatError(
        f"cannot tell the dataset format of file {str(p)!r}: a reviews file needs its labels file "
        "(pass the pair (reviews, labels)), and polarity files end in .pos / .neg."
    )


def load_reviews(
    path: PathLike | PathPair,
    format: str = "auto",
    encoding: str | None = None,
    split: str = "train",
    *,
    skip_empty: bool = False,
) -> ReviewDataset:
    """Load labelled reviews from ``path`` in any of the three layouts (see the module docstring).

    ``path`` may be a directory, one file, or a pair of files ((reviews, labels) or (pos, neg)).
    ``format`` is ``"auto"`` (see :func:`detect_format`) or a layout name; ``encoding`` forces a
    codec; ``split`` picks the aclImdb split; ``skip_empty`` drops blank reviews with a warning
    instead of refusing them.
    """
    fmt = _normalise_format(format)
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "polarity":
        return load_polarity(path, encoding=encoding, skip_empty=skip_empty)
    if fmt == "aclimdb":
        if isinstance(path, tuple):
            raise DataFormatError(
                "the aclimdb format takes one folder (the aclImdb root or a split folder), not a pair."
            )
        return load_aclimdb(path, split, encoding=encoding, skip_empty=skip_empty)
    if isinstance(path, tuple):
        reviews_path, labels_path = Path(path[0]), Path(path[1])
    else:
        p = Path(path)
        if p.is_dir():
            reviews_path, labels_path = p / "reviews.txt", p / "labels.txt"
        else:
            beside = _labels_beside(p)
            if beside is None:
                raise DataFormatError(
                    f"no labels file found beside reviews file {str(p)!r} (a file named "
                    "reviews*.txt looks for labels*.txt with the same ending); pass the pair "
                    "(reviews_path, labels_path)."
                )
            reviews_path, labels_path = p, beside
    return load_reviews_and_labels(
        reviews_path, labels_path, encoding=encoding, skip_empty=skip_empty
    )


# --------------------------------------------------------------------------------------------
# Ordering and splitting (the protocol: interleave, hold out the last 1,000)
# --------------------------------------------------------------------------------------------


def interleave(dataset: ReviewDataset) -> ReviewDataset:
    """Alternate positive and negative reviews: pos, neg, pos, neg, ... (each class in its order).

    If one class has more reviews, its surplus follows at the end. The evaluation protocol of the
    sentiment work trains on the interleaved reviews and holds out the last 1,000
    (:func:`train_test_split_last`), so both parts stay balanced.
    """
    labels = dataset.labels
    pos = np.flatnonzero(labels == 1)
    neg = np.flatnonzero(labels == 0)
    common = min(len(pos), len(neg))
    order = np.empty(2 * common, dtype=np.intp)
    order[0::2] = pos[:common]
    order[1::2] = neg[:common]
    order = np.concatenate([order, pos[common:], neg[common:]])
    mixed = dataset.subset(order)
    return ReviewDataset(
        mixed.reviews,
        mixed.labels,
        source=f"{dataset.source}, interleaved pos/neg",
        encoding=dataset.encoding,
        format=dataset.format,
        notes=dataset.notes,
    )


def train_test_split_last(
    dataset: ReviewDataset, n_test: int = 1000
) -> tuple[ReviewDataset, ReviewDataset]:
    """``(all but the last n_test reviews, the last n_test reviews)``, order kept."""
    if not isinstance(n_test, int | np.integer) or not 0 < n_test < len(dataset):
        raise InputError(
            f"n_test must be an integer between 1 and {len(dataset) - 1} for a dataset of "
            f"{len(dataset)} reviews; got {n_test!r}."
        )
    cut = len(dataset) - int(n_test)
    return dataset.subset(slice(0, cut)), dataset.subset(slice(cut, None))
