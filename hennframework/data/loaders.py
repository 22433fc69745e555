"""Loading labelled movie reviews from the files users actually have.

Five layouts are understood, and :func:`load_reviews` tells them apart from a path:

``tsv`` / ``csv``
    One file of ``text<TAB>label`` or ``text,label`` lines (the UCI "sentiment labelled
    sentences" files, a spreadsheet export). The label is the *last* field; a CSV review holding
    commas is quoted as usual (read with :mod:`csv`, so quoted newlines and doubled quotes work).
    Tab or comma is detected from the content, and so is a header row (``header=`` forces it).
``reviews-labels``
    A reviews file and a labels file, one review (or label) per line, line *i* of one belonging to
    line *i* of the other: the ``reviews.txt`` / ``labels.txt`` pair of Trask's sentiment network.
``polarity``
    Two files ``<name>.pos`` and ``<name>.neg`` holding one positive (negative) review per line:
    Pang and Lee's sentence polarity dataset (``rt-polarity.pos`` / ``rt-polarity.neg``; a copy
    ships with the package, :func:`hennframework.data.load_rt_polarity`).
``aclimdb``
    The Stanford Large Movie Review Dataset folder: ``<root>/<split>/{pos,neg}/*.txt``, one review
    per file (files are read in name order, so loading is deterministic; ``<br />`` tags become
    spaces).

Labels are ``positive``/``negative``, ``pos``/``neg`` or ``1``/``0``, in any case.

Decoding is explicit because real review files are not all UTF-8: the polarity files are
Windows-1252. Without an ``encoding=`` a file is decoded as strict UTF-8 (a leading byte-order mark
is dropped) and, if that fails, as Windows-1252, where the five bytes cp1252 leaves undefined
(0x81, 0x8D, 0x8F, 0x90, 0x9D) are taken as their Latin-1 code points, so every byte string decodes
and nothing is silently dropped. With ``encoding=`` that codec alone is used, strictly. A file
that is not text at all (a NUL byte, or many control bytes) is refused before decoding, since
Windows-1252 would turn it into nonsense "reviews".

Only ``"\\n"`` ends a line (a trailing ``"\\r"`` is removed). :meth:`str.splitlines` is never used:
it also breaks at U+0085, the character the Windows-1252 byte 0x85 (an ellipsis in these files)
decodes to under Latin-1, and at several other Unicode separators, which would split reviews and
misalign them with their labels. A final newline does not make an extra, empty review.

Errors name the file, the line and the fix; the option that fixes it is named as a Python argument,
or as a ``henn`` option inside :func:`hennframework.data.naming.command_line_names`.
"""

from __future__ import annotations

import codecs
import csv
import math
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from hennframework.data.naming import option
from hennframework.exceptions import DataFormatError, InputError

__all__ = [
    "ACCEPTED_LABELS",
    "DEFAULT_MAX_TEST",
    "DEFAULT_TEST_FRACTION",
    "FORMATS",
    "FORMAT_CHOICES",
    "DatasetFormat",
    "PathPair",
    "ReviewDataset",
    "check_text",
    "decode_bytes",
    "detect_format",
    "interleave",
    "load_aclimdb",
    "load_delimited",
    "load_polarity",
    "load_reviews",
    "load_reviews_and_labels",
    "parse_data_spec",
    "parse_label",
    "parse_test_size",
    "polarity_from_bytes",
    "resolve_test_size",
    "split_lines",
    "train_test_split_last",
]

DatasetFormat: TypeAlias = Literal["tsv", "csv", "reviews-labels", "polarity", "aclimdb"]
FORMATS: tuple[DatasetFormat, ...] = ("tsv", "csv", "reviews-labels", "polarity", "aclimdb")
#: What ``--format`` offers on the command line: every name here loads (``pair`` is the
#: reviews-labels pair of files).
FORMAT_CHOICES: tuple[str, ...] = ("auto", "tsv", "csv", "pair", "polarity", "aclimdb")
PathLike: TypeAlias = str | Path
PathPair: TypeAlias = tuple[PathLike, PathLike]

#: Without a test size, this share of the reviews is held out ...
DEFAULT_TEST_FRACTION = 0.2
#: ... but at most this many (the protocol of the rt-polarity figures: the last 1,000).
DEFAULT_MAX_TEST = 1000

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


# Bytes that text files do not hold: C0 controls other than tab, line feed, vertical tab, form
# feed, carriage return, the DOS end-of-file mark (0x1A) and escape (0x1B).
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 11, 12, 13, 26, 27))
_WIDE_CODECS = ("utf-16", "utf-32")


def _is_wide(encoding: str | None) -> bool:
    """True for UTF-16/UTF-32, whose text is full of NUL bytes."""
    if encoding is None:
        return False
    try:
        return codecs.lookup(encoding).name.startswith(_WIDE_CODECS)
    except LookupError:
        return False  # decode_bytes reports the unknown name


def check_text(
    data: bytes,
    encoding: str | None = None,
    *,
    source: str = "<bytes>",
    holds: str = "",
    encodings: bool = True,
) -> None:
    """Raise :class:`DataFormatError` if ``data`` is not text: a NUL byte, or control bytes.

    A binary file decodes "successfully" as Windows-1252 and then fails much later with a
    puzzling message (an empty vocabulary, a label that is not a label), so it is refused here,
    naming ``source`` and what it should hold (``holds``). NUL bytes are allowed with a UTF-16 or
    UTF-32 ``encoding``; the control-byte test (more than 1 % of the first 64 KiB) only runs
    without an explicit encoding, which is the way to read such a file anyway. ``encodings=False``
    leaves that advice out, for callers that take no encoding.
    """
    offset = -1
    if not _is_wide(encoding):
        offset = data.find(b"\x00")
    if offset < 0 and encoding is None:
        sample = data[:65536]
        controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
        if controls > max(1, len(sample) // 100):
            offset = next(i for i, b in enumerate(sample) if b in _CONTROL_BYTES)
    if offset < 0:
        return
    line = data.count(b"\n", 0, offset) + 1
    byte = f"byte 0x{data[offset]:02x} at line {line}, offset {offset}"
    if not encodings:
        hint = "Point at the text file itself."
    elif data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        hint = (
            "It starts with a UTF-16 byte-order mark: if it is UTF-16 text, pass "
            f"{option('encoding=' + repr('utf-16'), '--encoding utf-16')}."
        )
    else:
        hint = (
            "Point at the text file itself; if it is text in an encoding such as UTF-16, pass "
            f"{option('encoding=', '--encoding NAME')} with its name."
        )
    expected = f"; it should hold {holds}" if holds else ""
    raise DataFormatError(
        f"{source} is not a text file (it holds {byte}, which text files do not){expected}. {hint}"
    )


def _decode_file(path: Path, what: str, encoding: str | None, holds: str) -> tuple[str, str]:
    """Read, check (:func:`check_text`) and decode a file: ``(text, encoding used)``."""
    data = _read_bytes(path, what)
    source = f"{what} {str(path)!r}"
    check_text(data, encoding, source=source, holds=holds)
    return decode_bytes(data, encoding, source=source)


def _lines_of(text: str, source: str, holds: str) -> list[str]:
    """The lines of decoded text (see :func:`split_lines`); no non-blank line is an error."""
    lines = split_lines(text)
    if not lines or all(not line.strip() for line in lines):
        raise DataFormatError(
            f"{source} is empty (it has no non-blank lines); point at a file that holds {holds}."
        )
    return lines


def _read_lines(
    path: Path, what: str, encoding: str | None, holds: str = "one review per line"
) -> tuple[list[str], str]:
    """Lines of a text file (see :func:`split_lines`); empty and binary files are an error."""
    text, used = _decode_file(path, what, encoding, holds)
    return _lines_of(text, f"{what} {str(path)!r}", holds), used


def _blank_lines(lines: Sequence[str]) -> list[int]:
    """1-based numbers of the lines that are empty or hold only whitespace."""
    return [i + 1 for i, line in enumerate(lines) if not line.strip()]


def _describe_lines(numbers: Sequence[int], limit: int = 5) -> str:
    shown = ", ".join(str(n) for n in numbers[:limit])
    more = f" and {len(numbers) - limit} more" if len(numbers) > limit else ""
    return f"line{'s' if len(numbers) > 1 else ''} {shown}{more}"


def _skip_empty_option() -> str:
    return option("skip_empty=True", "--skip-empty")


def _refuse_blank(source: str, blank: Sequence[int], extra: str = "") -> DataFormatError:
    return DataFormatError(
        f"{source} has an empty review at {_describe_lines(blank)}; remove those lines{extra} or "
        f"pass {_skip_empty_option()} to drop them."
    )


def _handle_blank(
    lines: list[str], name: str, what: str, skip_empty: bool
) -> tuple[list[str], list[int]]:
    """Drop blank lines (with a warning) if ``skip_empty``, else refuse them with their numbers."""
    blank = _blank_lines(lines)
    if not blank:
        return lines, []
    if not skip_empty:
        raise _refuse_blank(f"{what} {name!r}", blank)
    warnings.warn(
        f"skipped {len(blank)} empty review line(s) in {name!r} ({_describe_lines(blank)})",
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
# The layouts with one review per line or per file
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
    labels_raw, l_enc = _read_lines(lpath, "labels file", encoding, "one label per line")
    if len(reviews) != len(labels_raw):
        raise DataFormatError(
            f"the reviews file {str(rpath)!r} has {len(reviews)} lines but the labels file "
            f"{str(lpath)!r} has {len(labels_raw)}; they must pair line by line (check for a "
            "truncated file, a missing label, or a review that contains a newline)."
        )
    blank = set(_blank_lines(reviews))
    if blank and not skip_empty:
        raise _refuse_blank(f"reviews file {str(rpath)!r}", sorted(blank), " (and their labels)")
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
    path: PathLike | PathPair, *, encoding: str | None = None, skip_empty: bool = False
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
    return polarity_from_bytes(
        _read_bytes(pos_path, "positive reviews file"),
        _read_bytes(neg_path, "negative reviews file"),
        names=(str(pos_path), str(neg_path)),
        encoding=encoding,
        skip_empty=skip_empty,
    )


def polarity_from_bytes(
    pos: bytes,
    neg: bytes,
    *,
    names: tuple[str, str] = ("<positive>", "<negative>"),
    encoding: str | None = None,
    skip_empty: bool = False,
    source: str | None = None,
) -> ReviewDataset:
    """The polarity format from the contents of the two files (``names`` are for messages).

    What :func:`load_polarity` does after reading; also reads the copy shipped in the package,
    which need not be a file on disk.
    """
    parts: list[tuple[list[str], str, list[int]]] = []
    for data, name, what in (
        (pos, names[0], "positive reviews file"),
        (neg, names[1], "negative reviews file"),
    ):
        where = f"{what} {name!r}"
        check_text(data, encoding, source=where, holds="one review per line")
        text, used = decode_bytes(data, encoding, source=where)
        lines, blank = _handle_blank(
            _lines_of(text, where, "one review per line"), name, what, skip_empty
        )
        parts.append((lines, used, blank))
    (pos_lines, pos_enc, pos_blank), (neg_lines, neg_enc, neg_blank) = parts
    notes = tuple(
        f"skipped {len(blank)} empty line(s) in {Path(name).name}: {_describe_lines(blank)}"
        for name, blank in ((names[0], pos_blank), (names[1], neg_blank))
        if blank
    )
    labels = np.concatenate([np.ones(len(pos_lines), np.int8), np.zeros(len(neg_lines), np.int8)])
    return ReviewDataset(
        pos_lines + neg_lines,
        labels,
        source=source
        or f"polarity files {names[0]!r} ({len(pos_lines)} positive) + {names[1]!r} "
        f"({len(neg_lines)} negative)",
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
    pick = option(
        "pass split= one of those, or point at the aclImdb root",
        "point --data at one of those split folders, or at the aclImdb root",
    )
    raise DataFormatError(
        f"aclImdb folder {str(root)!r} has no split {split!r} with pos/ and neg/ subfolders "
        f"({hint}); {pick}."
    )


def load_aclimdb(
    root: PathLike, split: str = "train", *, encoding: str | None = None, skip_empty: bool = False
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
            text, used = _decode_file(file, "review file", encoding, "the text of one review")
            review = (
                _BR_TAG.sub(" ", text).replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
            )
            if not review.strip():
                if not skip_empty:
                    raise DataFormatError(
                        f"review file {str(file)!r} is empty; delete it or pass "
                        f"{_skip_empty_option()} to leave it out."
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
# One file of text<TAB>label or text,label lines
# --------------------------------------------------------------------------------------------

Delimited: TypeAlias = Literal["tsv", "csv"]
_SEPARATOR: dict[Delimited, tuple[str, str]] = {"tsv": ("\t", "tab"), "csv": (",", "comma")}
# A header's label cell is a column name ("label", "sentiment", "class"), not a review or a number.
_HEADER_CELL = re.compile(r"[^\W\d_][\w .-]{0,39}")
_SNIFF_LINES = 50


def _split_one(line: str, fmt: Delimited) -> tuple[str, str] | None:
    """``(text, label)`` of one physical line, or None if it has no separator (for sniffing)."""
    if fmt == "tsv":
        text, sep, label = line.rpartition("\t")
        return (text, label) if sep else None
    try:
        fields = next(csv.reader([line]), [])
    except csv.Error:
        return None
    return (",".join(fields[:-1]), fields[-1]) if len(fields) >= 2 else None


def _is_label(cell: str) -> bool:
    return cell.strip().lower() in ACCEPTED_LABELS


def _sniff_delimited(lines: Sequence[str]) -> Delimited | None:
    """``"tsv"`` or ``"csv"`` if most of the first lines end in a label after that separator.

    The first non-blank line is left out of the vote (it may be a header); tab wins a tie,
    because a comma inside a tab-separated review is common and a tab inside a CSV review is not.
    """
    sample = [line for line in lines if line.strip()][:_SNIFF_LINES]
    body = sample[1:] or sample
    best: Delimited | None = None
    best_share = 0.0
    for fmt in ("tsv", "csv"):
        good = 0
        for line in body:
            parts = _split_one(line, fmt)
            good += parts is not None and _is_label(parts[1])
        share = good / len(body) if body else 0.0
        if share > best_share:
            best, best_share = fmt, share
    return best if best_share >= 0.5 else None


def _records(
    lines: Sequence[str], fmt: Delimited, source: str
) -> Iterator[tuple[int, int, list[str]]]:
    """``(first line, last line, fields)`` of each record; a blank line gives ``[]``."""
    if fmt == "tsv":
        for number, line in enumerate(lines, 1):
            text, sep, label = line.rpartition("\t")
            yield number, number, ([text, label] if sep else [line] if line.strip() else [])
        return
    # csv.reader sees each line with a plain "\n", so a quoted review may span lines and only
    # "\n" ends one (no U+0085 surprises; see split_lines).
    reader = csv.reader(line + "\n" for line in lines)
    last = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataFormatError(
                f"{source}, line {reader.line_num}: not valid CSV ({exc}); a review holding "
                'commas or quotes must be in double quotes, with inner quotes doubled ("").'
            ) from None
        if all(not f.strip() for f in fields):
            fields = []
        yield last + 1, reader.line_num, fields
        last = reader.line_num


def _spans(first: int, last: int) -> str:
    """For a CSV record over several lines: the likely cause, an unclosed quote."""
    if last == first:
        return ""
    return (
        f" (this record runs from line {first} to line {last}: a double quote opened at line "
        f"{first} may not be closed)"
    )


def _wrong_layout(
    source: str, fmt: Delimited, number: int, line: str, spans: str = ""
) -> DataFormatError:
    sep, name = _SEPARATOR[fmt]
    other: Delimited = "csv" if fmt == "tsv" else "tsv"
    shown = line if len(line) <= 60 else line[:57] + "..."
    return DataFormatError(
        f"{source}, line {number}: no {name} in {shown!r}{spans}; each line must be the review, a {name} "
        f"and the label (such as 'a fine film{sep}positive'). If the file is "
        f"{_SEPARATOR[other][1]}-separated, pass {option(f'format={other!r}', f'--format {other}')}."
    )


def load_delimited(
    path: PathLike,
    fmt: Delimited | None = None,
    *,
    header: bool | None = None,
    encoding: str | None = None,
    skip_empty: bool = False,
) -> ReviewDataset:
    """Load one file of ``text<TAB>label`` (``fmt="tsv"``) or ``text,label`` (``"csv"``) lines.

    The label is the last field (0/1, pos/neg, positive/negative, any case); the review is
    everything before it (a CSV review with commas should be quoted; unquoted commas are kept).
    ``fmt=None`` detects the separator from the first lines; ``header=None`` takes the first line
    as a header when its last field is a column name (``label``, ``sentiment``), not a label.
    Blank lines and empty reviews are refused unless ``skip_empty``.
    """
    p = Path(path)
    what = "data file"
    text, used = _decode_file(p, what, encoding, "lines of text<TAB>label or text,label")
    lines = _lines_of(text, f"{what} {str(p)!r}", "one review and its label per line")
    if fmt is None:
        fmt = _sniff_delimited(lines)
        if fmt is None:
            first_line = next(line for line in lines if line.strip())
            raise DataFormatError(
                f"cannot tell whether {what} {str(p)!r} is tab- or comma-separated: fewer than "
                f"half of its first lines end in a label after a tab or a comma (first line: "
                f"{first_line[:60]!r}). Each line must be text<TAB>label or text,label, with labels "
                f"0/1, pos/neg or positive/negative; pass "
                f"{option('format=' + repr('tsv'), '--format tsv')} or "
                f"{option(repr('csv'), 'csv')} to see what is wrong on each line."
            )
    sep_name = _SEPARATOR[fmt][1]
    source = f"{sep_name}-separated {what} {str(p)!r}"
    reviews: list[str] = []
    labels: list[int] = []
    blank: list[int] = []
    notes: list[str] = []
    seen_first = False
    for first, last, fields in _records(lines, fmt, source):
        if not fields:
            blank.append(first)
            continue
        if not seen_first:
            seen_first = True
            cell = fields[-1].strip()
            if header or (
                header is None
                and len(fields) >= 2
                and not _is_label(cell)
                and _HEADER_CELL.fullmatch(cell)
            ):
                notes.append(f"line {first} read as a header: {lines[first - 1][:60]!r}")
                continue
        spans = _spans(first, last)
        if len(fields) < 2:
            raise _wrong_layout(source, fmt, first, lines[first - 1], spans)
        label = fields[-1]
        review = ",".join(fields[:-1]) if fmt == "csv" else fields[0]
        if not _is_label(label):
            other: Delimited = "csv" if fmt == "tsv" else "tsv"
            as_other = _split_one(lines[first - 1], other)
            if as_other is not None and _is_label(as_other[1]):
                hint = (
                    f"; the line reads as {_SEPARATOR[other][1]}-separated: pass "
                    f"{option(f'format={other!r}', f'--format {other}')}"
                )
            elif len(reviews) == 0 and not blank and header is None:
                hint = f"; if it is a header row, pass {option('header=True', '--header')}"
            else:
                hint = ""
            raise DataFormatError(
                f"unknown label {label.strip()[:40]!r} at line {first} of {source}{spans}: the "
                "label is the last field of each line, and accepted labels (any case) are "
                f"positive/negative, pos/neg and 1/0{hint}."
            )
        if not review.strip():
            blank.append(first)
            continue
        reviews.append(review)
        labels.append(ACCEPTED_LABELS[label.strip().lower()])
    if blank:
        if not skip_empty:
            raise _refuse_blank(source, blank)
        note = f"skipped {len(blank)} empty review(s) at {_describe_lines(blank)}"
        warnings.warn(f"{note} of {str(p)!r}", UserWarning, stacklevel=2)
        notes.append(note)
    if not reviews:
        raise DataFormatError(
            f"{source} holds no reviews (only a header or blank lines); point at a file with one "
            "review and its label per line."
        )
    return ReviewDataset(
        reviews,
        np.asarray(labels, dtype=np.int8),
        source=f"{source} ({len(reviews)} reviews)",
        encoding=used,
        format=fmt,
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------------------------
# Format detection and the one entry point
# --------------------------------------------------------------------------------------------

_FORMAT_ALIASES: dict[str, DatasetFormat] = {
    "tsv": "tsv",
    "tab": "tsv",
    "csv": "csv",
    "pair": "reviews-labels",
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
            f"unknown dataset format {fmt!r}; pass {option('format=', '--format')} "
            f"{', '.join(FORMAT_CHOICES)} (pair: a reviews file and a labels file)."
        ) from None


def _labels_beside(reviews_path: Path) -> Path | None:
    """``labels.txt`` (or ``labels<suffix>``) next to a reviews file named like ``reviews*``."""
    name = reviews_path.name
    if not name.lower().startswith("reviews"):
        return None
    candidate = reviews_path.with_name("labels" + name[len("reviews") :])
    return candidate if candidate.is_file() else None


def detect_format(path: PathLike | PathPair, *, encoding: str | None = None) -> DatasetFormat:
    """Which layout ``path`` holds; raises :class:`DataFormatError` saying what was looked for.

    A pair of paths is ``polarity`` if the first ends in ``.pos``/``.neg``, else ``reviews-labels``.
    A directory is ``aclimdb`` if it (or a ``train``/``test`` folder in it) holds ``pos/`` and
    ``neg/`` folders, ``polarity`` if it holds a ``<name>.pos``/``<name>.neg`` pair, and
    ``reviews-labels`` if it holds ``reviews.txt`` and ``labels.txt``. A file is ``polarity`` if it
    ends in ``.pos``/``.neg``, ``reviews-labels`` if a ``labels`` file sits beside it, and ``tsv``
    or ``csv`` if most of its first lines end in a label after a tab or a comma (the file is read;
    one that is not text is refused here).
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
            "(train|test/pos|neg/*.txt). Point at a text<TAB>label file, or pass "
            f"{option('format=', '--format')} and the exact paths."
        )
    if p.suffix in (".pos", ".neg"):
        return "polarity"
    if _labels_beside(p) is not None:
        return "reviews-labels"
    text, _ = _decode_file(p, "data file", encoding, "lines of text<TAB>label or text,label")
    lines = split_lines(text)
    found = _sniff_delimited(lines)
    if found is not None:
        return found
    first_line = next((line for line in lines if line.strip()), "")
    raise DataFormatError(
        f"cannot tell the dataset format of file {str(p)!r}: its lines are not text<TAB>label "
        f"or text,label (first line: {first_line[:60]!r}), it is not a .pos/.neg polarity file, and "
        "no labels file sits beside it. Give one review and its label (0/1, pos/neg, "
        "positive/negative) per line, or pass the pair REVIEWS,LABELS, or pass "
        f"{option('format=', '--format')} to see what is wrong on each line."
    )


def parse_data_spec(spec: str) -> PathLike | PathPair:
    """A path, or ``(reviews, labels)`` for ``"REVIEWS,LABELS"`` when no file has that name."""
    if "," in spec and not Path(spec).exists():
        first, second = spec.split(",", 1)
        return (first, second)
    return spec


def load_reviews(
    path: PathLike | PathPair,
    format: str = "auto",
    encoding: str | None = None,
    split: str = "train",
    *,
    header: bool | None = None,
    skip_empty: bool = False,
) -> ReviewDataset:
    """Load labelled reviews from ``path`` in any of the layouts (see the module docstring).

    ``path`` may be a directory, one file, or a pair of files ((reviews, labels) or (pos, neg)).
    ``format`` is ``"auto"`` (see :func:`detect_format`) or a layout name (``tsv``, ``csv``,
    ``pair``, ``polarity``, ``aclimdb``); ``encoding`` forces a codec; ``split`` picks the aclImdb
    split; ``header`` forces (True) or rules out (False) a header row in a tsv/csv file;
    ``skip_empty`` drops blank reviews with a warning instead of refusing them.
    """
    fmt = _normalise_format(format)
    if fmt == "auto":
        fmt = detect_format(path, encoding=encoding)
    if fmt in ("tsv", "csv"):
        if isinstance(path, tuple):
            raise DataFormatError(
                f"the {fmt} format takes one file of text and label lines, not a pair of files."
            )
        delimited: Delimited = "tsv" if fmt == "tsv" else "csv"
        return load_delimited(
            path, delimited, header=header, encoding=encoding, skip_empty=skip_empty
        )
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
                pair = option("pass the pair (reviews_path, labels_path)", "pass REVIEWS,LABELS")
                raise DataFormatError(
                    f"no labels file found beside reviews file {str(p)!r} (a file named "
                    f"reviews*.txt looks for labels*.txt with the same ending); {pair}."
                )
            reviews_path, labels_path = p, beside
    return load_reviews_and_labels(
        reviews_path, labels_path, encoding=encoding, skip_empty=skip_empty
    )


# --------------------------------------------------------------------------------------------
# Ordering and splitting (the protocol of Trask's 2017 post: interleave, hold out the last 1,000)
# --------------------------------------------------------------------------------------------


def interleave(dataset: ReviewDataset) -> ReviewDataset:
    """Alternate positive and negative reviews: pos, neg, pos, neg, ... (each class in its order).

    If one class has more reviews, its surplus follows at the end. The evaluation protocol of the
    bag-of-words network of Trask's 2017 post trains on the interleaved reviews and holds out the
    last 1,000 (:func:`train_test_split_last`), so both parts stay balanced.
    """
    labels = dataset.labels
    pos = np.flatnonzero(labels == 1)
    neg = np.flatnonzero(labels == 0)
    common = min(len(pos), len(neg))
    order = np.empty(2 * common, dtype=np.intp)
    order[0::2] = pos[:common]
    order[1::2] = neg[:common]
    order = np.concatenate([order, pos[common:], neg[common:]])
    return replace(dataset.subset(order), source=f"{dataset.source}, interleaved pos/neg")


def resolve_test_size(test_size: int | float | None, n: int) -> int:
    """How many of ``n`` reviews to hold out for ``test_size``: a count, a fraction, or None.

    A count must leave at least one review to train on; a fraction in (0, 1) is rounded to the
    nearest count and kept between 1 and ``n - 1``; None holds out
    :data:`DEFAULT_TEST_FRACTION` (20 %) but at most :data:`DEFAULT_MAX_TEST` (1,000), which is the
    rt-polarity protocol on big files and still works on a file of ten lines.
    """
    name = option("test_size", "--test-size")
    if n < 2:
        raise InputError(
            f"{n} review(s) cannot be split into a training part and a test part (each needs at "
            "least one review); use a file with more reviews."
        )
    if test_size is None:
        return min(DEFAULT_MAX_TEST, max(1, math.floor(n * DEFAULT_TEST_FRACTION + 0.5)))
    if isinstance(test_size, int | np.integer) and not isinstance(test_size, bool):
        if 1 <= test_size <= n - 1:
            return int(test_size)
        raise InputError(
            f"{name} {test_size} does not fit {n} reviews: hold out between 1 and {n - 1} of them "
            "(at least one must be left to train on), or give a fraction such as 0.2."
        )
    if isinstance(test_size, float | np.floating) and 0.0 < float(test_size) < 1.0:
        count = math.floor(n * float(test_size) + 0.5)
        return min(max(count, 1), n - 1)
    raise InputError(
        f"{name} must be a number of reviews (a whole number >= 1) or a fraction between 0 and 1 "
        f"such as 0.2; got {test_size!r}."
    )


def parse_test_size(text: str) -> int | float:
    """A test size as typed: ``"200"`` (a count), ``"0.2"`` or ``"20%"`` (a fraction)."""
    raw = text.strip()
    try:
        if raw.endswith("%"):
            value: int | float = float(raw[:-1]) / 100.0
        elif raw.isdigit():
            value = int(raw)
        else:
            value = float(raw)
    except ValueError:
        value = math.nan
    if isinstance(value, int) and value >= 1:
        return value
    if isinstance(value, float) and 0.0 < value < 1.0:
        return value
    raise InputError(
        "expected a number of reviews (a whole number >= 1) or a fraction between 0 and 1, such "
        f"as 0.2 or 20%; got {text!r}."
    )


def train_test_split_last(
    dataset: ReviewDataset, test_size: int | float | None = None
) -> tuple[ReviewDataset, ReviewDataset]:
    """``(all but the last k reviews, the last k reviews)``, order kept.

    ``k`` comes from ``test_size`` by :func:`resolve_test_size`: a count, a fraction, or None for
    20 % of the reviews, at most 1,000.
    """
    cut = len(dataset) - resolve_test_size(test_size, len(dataset))
    return dataset.subset(slice(0, cut)), dataset.subset(slice(cut, None))
