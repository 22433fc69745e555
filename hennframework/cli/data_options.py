"""The review-data options shared by ``henn demo sentiment`` and the party commands.

``--format`` (only layouts that load), ``--encoding``, ``--header``/``--no-header``,
``--skip-empty``, ``--tokenizer``, ``--lowercase``/``--no-lowercase`` and the ``--test-size``
value type. Kept in one place so every command spells and explains them the same way; what they
do is in :mod:`hennframework.data.loaders` and :mod:`hennframework.data.text`.
"""

from __future__ import annotations

import argparse
from typing import Any

from hennframework.cli import common

__all__ = [
    "add_subset_options",
    "add_text_options",
    "add_vocabulary_options",
    "holdout_size",
    "text_settings",
]


def holdout_size(text: str) -> int | float:
    """An argparse type: a number of held-out reviews (``200``) or a fraction (``0.2``, ``20%``)."""
    from hennframework.data.loaders import parse_test_size
    from hennframework.exceptions import InputError

    try:
        return parse_test_size(text)
    except InputError:
        shown = text if text and not any(c.isspace() for c in text) else repr(text)
        raise argparse.ArgumentTypeError(
            "must be a number of reviews (a whole number >= 1) or a fraction between 0 and 1 "
            f"such as 0.2 or 20% (got {shown})"
        ) from None


def add_text_options(group: Any, *, applies_to: str = "") -> None:
    """Add the options that say how to read and tokenise review files to ``group``.

    ``applies_to`` (such as ``"--vocabulary-from"``) prefixes the help where the options only
    concern one of the command's inputs.
    """
    from hennframework.data.loaders import FORMAT_CHOICES

    lead = f"{applies_to}: " if applies_to else ""
    group.add_argument(
        "--format",
        default="auto",
        choices=FORMAT_CHOICES,
        help=f"{lead}layout of the reviews: tsv (text<TAB>label lines), csv (text,label), pair "
        "(a reviews file and a labels file), polarity (NAME.pos + NAME.neg), aclimdb; "
        "auto detects it (auto)",
    )
    group.add_argument(
        "--encoding",
        default=None,
        metavar="NAME",
        help=f"{lead}text encoding (default: UTF-8, falling back to Windows-1252)",
    )
    group.add_argument(
        "--header",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"{lead}tsv/csv: the first line is (--header) or is not (--no-header) a row of "
        "column names (default: detected)",
    )
    group.add_argument(
        "--skip-empty",
        action="store_true",
        help=f"{lead}drop empty reviews (with a warning) instead of stopping at the first one",
    )
    group.add_argument(
        "--tokenizer",
        default="auto",
        choices=("auto", "words", "whitespace"),
        help=f"{lead}how reviews become words: words (split punctuation off words, any "
        "script), whitespace (Andrew Trask's 2017 rules: split on single spaces); auto is "
        "whitespace for the pre-tokenised pair and polarity layouts and words otherwise (auto)",
    )
    group.add_argument(
        "--lowercase",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"{lead}lower-case reviews before tokenising (default: yes with --tokenizer words, "
        "no with whitespace)",
    )


def add_subset_options(group: Any, skip_help: str, limit_help: str) -> None:
    """``--skip N`` and ``--limit N``: which of the reviews (or rows) a command uses."""
    group.add_argument("--skip", type=common.non_negative_int, default=0, help=skip_help)
    group.add_argument("--limit", type=common.positive_int, default=None, help=limit_help)


def add_vocabulary_options(group: Any) -> None:
    """``--min-count`` and ``--polarity-cutoff``: which words make the sentiment vocabulary."""
    group.add_argument(
        "--min-count",
        type=common.non_negative_int,
        default=10,
        help="vocabulary: minimum word count (10)",
    )
    group.add_argument(
        "--polarity-cutoff",
        type=common.non_negative_number,
        default=0.1,
        help="vocabulary: polarity cutoff (0.1)",
    )


def text_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed text options as keyword arguments of the data functions."""
    return {
        "data_format": args.format,
        "encoding": args.encoding,
        "header": args.header,
        "skip_empty": args.skip_empty,
        "tokenizer": args.tokenizer,
        "lowercase": args.lowercase,
    }
