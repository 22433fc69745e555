"""Helpers for ``henn`` command modules: global options, resolved choices, tables and JSON.

A command module looks like this::

    from hennframework.cli import common

    def register(subparsers):
        parser = subparsers.add_parser("hello", help="say hello")
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.set_defaults(func=run)

    def run(args):
        backend = common.choice(args, "backend")    # value and where it came from
        ...
        return 0

``--backend``, ``--scheme`` and ``--debug`` are reserved: every subcommand accepts them already.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from hennframework import config

__all__ = ["add_global_options", "choice", "format_table", "print_json", "yes_no"]


def add_global_options(parser: argparse.ArgumentParser, *, suppress_defaults: bool) -> None:
    """Add ``--debug``, ``--backend`` and ``--scheme`` to ``parser``.

    On subcommand parsers the defaults are suppressed, so an option given before the subcommand
    (``henn --backend numpy info``) is not reset by the subcommand's own default.
    """
    group = parser.add_argument_group("global options")
    group.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS if suppress_defaults else False,
        help="show the full traceback when something fails",
    )
    group.add_argument(
        "--backend",
        metavar="NAME",
        default=argparse.SUPPRESS if suppress_defaults else None,
        help="array backend to use (beats HENN_BACKEND and config files; `henn backends` lists them)",
    )
    group.add_argument(
        "--scheme",
        metavar="NAME",
        default=argparse.SUPPRESS if suppress_defaults else None,
        help="encryption scheme to use (beats HENN_SCHEME and config files; `henn schemes` lists them)",
    )


def choice(args: argparse.Namespace, setting: config.Setting) -> config.Choice:
    """The resolved backend or scheme, with ``--backend``/``--scheme`` as the explicit argument."""
    return config.resolve(
        setting, getattr(args, setting, None), explicit_source=f"command-line option --{setting}"
    )


def yes_no(flag: bool) -> str:
    """``"yes"`` or ``"no"``, for table cells."""
    return "yes" if flag else "no"


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, header: bool = True
) -> str:
    """A plain-text table: left-aligned columns separated by two spaces (last column unpadded).

    ``headers`` fixes the number of columns; ``header=False`` leaves the heading line out.
    """
    cells = [[str(cell) for cell in row] for row in [list(headers), *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells if header else cells[1:]:
        padded = [cell.ljust(width) for cell, width in zip(row[:-1], widths[:-1], strict=True)]
        lines.append("  ".join([*padded, row[-1]]).rstrip())
    return "\n".join(lines)


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON to stdout (paths and other objects as strings)."""
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
