"""Helpers for ``henn`` command modules: global options, resolved choices, tables and JSON.

A command module looks like this::

    from hennframework.cli import common

    def register(subparsers):
        parser = subparsers.add_parser("hello", help="say hello")
        common.add_output_options(parser)  # --json
        parser.set_defaults(func=run)

    def run(args):
        backend = common.choice(args, "backend")    # value and where it came from
        ...
        common.emit(args, summary, text)            # JSON with --json, else the text
        return 0

``--backend``, ``--scheme`` and ``--debug`` are reserved: every subcommand accepts them already.

Option values are checked while the command line is parsed, with the ``type=`` functions below
(``positive_int``, ``learning_rate``, ``architecture``, ``output_file``, ...): a bad value stops
the command before any work with one line that names the option and the accepted range, such as
``henn train: error: --batch-size must be an integer >= 1 (got 0)`` (exit status 2).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypedDict

from hennframework import config

__all__ = [
    "BYTES_PER_WEIGHT",
    "MAX_INIT_SCALE",
    "MAX_LEARNING_RATE",
    "MAX_SECONDS",
    "Chosen",
    "activation",
    "add_global_options",
    "add_hidden",
    "add_learning_rate",
    "add_output_options",
    "add_params",
    "add_subcommands",
    "architecture",
    "choice",
    "chosen",
    "directory",
    "emit",
    "format_table",
    "init_scale",
    "input_file",
    "integer",
    "layer_size",
    "learning_rate",
    "max_weights",
    "non_negative_int",
    "non_negative_number",
    "number",
    "output_file",
    "plain_activation",
    "positive_int",
    "positive_number",
    "print_json",
    "refuse_overwrite",
    "same_path",
    "seconds",
    "show_progress",
    "usage_error",
    "usage_line",
    "weights_cap_note",
    "yes_no",
]


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


class Chosen(TypedDict):
    """The resolved names that most commands pass on as keyword arguments."""

    scheme: str
    backend: str


def chosen(args: argparse.Namespace) -> Chosen:
    """The resolved scheme and backend names, as ``scheme=`` and ``backend=`` keyword arguments."""
    return {"scheme": choice(args, "scheme").value, "backend": choice(args, "backend").value}


def add_subcommands(
    parser: argparse.ArgumentParser, dest: str, *, title: str = "commands", metavar: str = "COMMAND"
) -> Any:
    """The required subcommands of ``parser`` (``henn demo DEMO``, ``henn bench COMMAND``, ...).

    They are parsers of the same class, so they accept the global options and report errors the
    same way.
    """
    return parser.add_subparsers(
        title=title, dest=dest, metavar=metavar, required=True, parser_class=type(parser)
    )


def add_output_options(
    parser: Any, json_help: str = "print one machine-readable JSON object", progress: bool = False
) -> None:
    """``--json`` and, with ``progress``, ``--no-progress`` (progress bars go to stderr)."""
    parser.add_argument("--json", action="store_true", help=json_help)
    if progress:
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def emit(args: argparse.Namespace, summary: Any, text: str | Callable[[], str]) -> None:
    """Print ``summary`` as JSON with ``--json``, else the human-readable ``text``.

    ``text`` may be a function, called only without ``--json``: a summary that JSON can show
    need not be one that the text form can.
    """
    if args.json:
        print_json(summary)
    else:
        print(text() if callable(text) else text)


def show_progress(args: argparse.Namespace) -> bool:
    """Whether to draw a progress bar: not with ``--json`` or ``--no-progress``."""
    return not (args.json or args.no_progress)


def add_params(parser: Any, help: str = "parameter set of the scheme") -> None:
    """``--params NAME``: the scheme's parameter set."""
    parser.add_argument("--params", metavar="NAME", help=help)


def add_hidden(parser: Any, default: int, lead: str = "") -> None:
    """``--hidden N``: hidden units of the sentiment or XOR network, capped by :func:`layer_size`.

    ``lead`` (such as ``"sentiment: "``) starts the help where the option concerns one model.
    """
    parser.add_argument(
        "--hidden", type=layer_size, default=default, help=f"{lead}hidden units ({default})"
    )


def add_track_noise(parser: Any) -> None:
    """``--track-noise``: keep the forward noise bound of the weights instead of absorbing it."""
    parser.add_argument(
        "--track-noise",
        action="store_true",
        help="track the weights' noise forward from the last refresh instead of absorbing it "
        "into the weights after every step (a forward error bound; far more owner refreshes; "
        "see docs/numerics.md)",
    )


def file_size(size: int) -> str:
    """A byte count for people: ``812 bytes``, ``3.4 KB``, ``72.5 MB`` (powers of 1000)."""
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} bytes"


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


# ------------------------------------------------------------------------------------------
# option values: argparse ``type=`` functions
# ------------------------------------------------------------------------------------------
# Each raises argparse.ArgumentTypeError("must be ... (got X)"); the subcommand parser's error()
# (see usage_line) prefixes the option name, so the user reads one line in CLI terms.

#: Largest ``--lr`` accepted. Sigmoid networks diverge long before this; a larger value is almost
#: always a typo (``1e9`` for ``1e-9``) and would push the weights out of the fixed-point range.
MAX_LEARNING_RATE = 10.0

#: Longest timeout accepted, in seconds (30 days): a longer wait is almost surely a typo, and one
#: past about 292 years overflows the clock that time.sleep uses.
MAX_SECONDS = 30 * 24 * 3600.0

#: Largest ``--init-scale``: initial weights are uniform on ±scale/sqrt(fan-in); the useful range
#: is about 0.1 to 4, and far larger weights saturate every sigmoid approximation.
MAX_INIT_SCALE = 100.0

#: Memory budgeted per model weight when capping ``--arch`` and ``--hidden``. Training an
#: encrypted integer-vector MLP peaks at about 0.5 KiB per weight (ciphertext, noise bound,
#: gradient and product temporaries; docs/cli.md); twice that leaves room for the rest.
BYTES_PER_WEIGHT = 1024

#: Memory assumed when the operating system does not say how much there is.
FALLBACK_MEMORY_BYTES = 8 * 1024**3


def _shown(text: str) -> str:
    return text if text and not any(c.isspace() for c in text) else repr(text)


def _invalid(requirement: str, text: str, detail: str = "") -> NoReturn:
    got = _shown(text) + (f", {detail}" if detail else "")
    raise argparse.ArgumentTypeError(f"must be {requirement} (got {got})")


def _plain(value: float) -> str:
    """``10`` rather than ``10.0``, ``2592000`` rather than ``2.592e+06``."""
    return str(int(value)) if value.is_integer() else repr(value)


def _named(function: Callable[[str], Any], name: str) -> None:
    function.__name__ = function.__qualname__ = name


def integer(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: a base-10 integer in ``[minimum, maximum]`` (no upper end if None)."""
    requirement = (
        f"an integer >= {minimum}" if maximum is None else f"an integer from {minimum} to {maximum}"
    )

    def parse(text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:
            _invalid(requirement, text)
        if value < minimum or (maximum is not None and value > maximum):
            _invalid(requirement, text)
        return value

    _named(parse, f"integer_{minimum}_{maximum}")
    return parse


def number(
    minimum: float, maximum: float | None = None, *, exclusive_minimum: bool = False, unit: str = ""
) -> Callable[[str], float]:
    """An argparse type: a finite number >= ``minimum`` (> with ``exclusive_minimum``), <= ``maximum``.

    NaN and infinities are refused: they would pass every comparison or never end a wait.
    """
    low = f"> {_plain(minimum)}" if exclusive_minimum else f">= {_plain(minimum)}"
    what = f"a number of {unit}" if unit else "a number"
    requirement = f"{what} {low}" + ("" if maximum is None else f" and <= {_plain(maximum)}")

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            _invalid(requirement, text)
        if not math.isfinite(value):
            _invalid(requirement, text)
        too_low = value <= minimum if exclusive_minimum else value < minimum
        if too_low or (maximum is not None and value > maximum):
            _invalid(requirement, text)
        return value

    _named(parse, f"number_{minimum:g}_{maximum}")
    return parse


positive_int = integer(1)
non_negative_int = integer(0)
positive_number = number(0.0, exclusive_minimum=True)
non_negative_number = number(0.0)
learning_rate = number(0.0, MAX_LEARNING_RATE, exclusive_minimum=True)
seconds = number(0.0, MAX_SECONDS, exclusive_minimum=True, unit="seconds")
init_scale = number(0.0, MAX_INIT_SCALE, exclusive_minimum=True)


def add_learning_rate(parser: Any, default: float | None, note: str) -> None:
    """``--lr`` (alias ``--learning-rate``), validated by :data:`learning_rate`, one way everywhere.

    ``note`` ends the help text (the default, or where it comes from).
    """
    parser.add_argument(
        "--lr",
        "--learning-rate",
        dest="learning_rate",
        metavar="RATE",
        type=learning_rate,
        default=default,
        help=f"SGD learning rate, > 0 and <= {MAX_LEARNING_RATE:g} ({note})",
    )


def _physical_memory() -> int:
    """Bytes of RAM in this machine (FALLBACK_MEMORY_BYTES where the OS does not tell)."""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return FALLBACK_MEMORY_BYTES
    return pages * size if pages > 0 and size > 0 else FALLBACK_MEMORY_BYTES


def max_weights() -> int:
    """The most model weights ``--arch``/``--hidden`` may ask for on this machine."""
    return max(1, _physical_memory() // BYTES_PER_WEIGHT)


def weights_cap_note() -> str:
    """Why the cap is what it is, for messages."""
    gib = _physical_memory() / 1024**3
    return (
        f"{BYTES_PER_WEIGHT // 1024} KiB per weight for encrypted training, of this machine's "
        f"{gib:.1f} GiB of memory"
    )


def layer_size(text: str) -> int:
    """An argparse type: a layer width from 1 to :func:`max_weights`."""
    cap = max_weights()
    try:
        value = int(text.strip(), 10)
    except ValueError:
        _invalid(f"an integer from 1 to {cap:,}", text)
    if not 1 <= value <= cap:
        _invalid(f"an integer from 1 to {cap:,} ({weights_cap_note()})", text)
    return value


ARCHITECTURES = "xor, sentiment or mlp:SIZES with at least two layer sizes >= 1, such as mlp:3,4,1"


def architecture(text: str) -> str:
    """An argparse type: ``xor``, ``sentiment`` or ``mlp:SIZES`` within :func:`max_weights`."""
    spec = text.strip()
    if spec in ("xor", "sentiment"):
        return spec
    if not spec.startswith("mlp:"):
        _invalid(ARCHITECTURES, text)
    try:
        sizes = [int(part.strip(), 10) for part in spec[4:].split(",")]
    except ValueError:
        _invalid(ARCHITECTURES, text)
    if len(sizes) < 2 or min(sizes) < 1:
        _invalid(ARCHITECTURES, text)
    weights = sum(a * b for a, b in itertools.pairwise(sizes))
    cap = max_weights()
    if weights > cap:
        _invalid(
            f"a network of at most {cap:,} weights ({weights_cap_note()})",
            spec,
            f"which has {weights:,}",
        )
    return spec


def activation(text: str) -> str:
    """An argparse type: the name of a sigmoid approximation (``taylor3``, ``lsq3``, ...)."""
    from hennframework.nn.activations import SIGMOID_APPROXIMATIONS

    name = text.strip()
    if name not in SIGMOID_APPROXIMATIONS:
        _invalid(f"one of {', '.join(SIGMOID_APPROXIMATIONS)}", text)
    return name


def plain_activation(text: str) -> str:
    """Like :func:`activation`, or ``exact`` (the true sigmoid: unencrypted training only)."""
    from hennframework.nn.activations import SIGMOID_APPROXIMATIONS

    name = text.strip()
    if name != "exact" and name not in SIGMOID_APPROXIMATIONS:
        _invalid(f"one of {', '.join(SIGMOID_APPROXIMATIONS)} or exact (with --plain)", text)
    return name


def input_file(text: str) -> str:
    """An argparse type: a file that exists (not a folder)."""
    path = Path(text)
    if not text:
        _invalid("an existing file", text)
    if path.is_dir():
        _invalid("an existing file", text, "which is a folder")
    if not path.exists():
        _invalid("an existing file", text, "which does not exist")
    return text


def output_file(text: str) -> str:
    """An argparse type: a file name (not a folder) in an existing folder this user may write."""
    requirement = "a file name in an existing, writable folder"
    path = Path(text)
    if not text or text.endswith(("/", os.sep)):
        _invalid(requirement, text)
    if path.is_dir():
        _invalid(requirement, text, "which is a folder")
    parent = path.parent
    if not parent.is_dir():
        _invalid(requirement, text, f"and the folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        _invalid(requirement, text, f"and the folder {parent} is not writable")
    return text


def directory(text: str) -> str:
    """An argparse type: an existing folder, or a path where one can be created.

    A path that is a file is refused (creating the folder there would fail later, with a bare
    FileExistsError); so is one under a file or under a folder this user may not write.
    """
    requirement = "a folder, or a path where one can be created"
    if not text:
        _invalid(requirement, text)
    path = Path(text)
    if path.exists():
        if not path.is_dir():
            _invalid(requirement, text, "which is a file")
        return text
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        _invalid(requirement, text, f"but {ancestor} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        _invalid(requirement, text, f"but the folder {ancestor} is not writable")
    return text


# ------------------------------------------------------------------------------------------
# usage errors: one line, exit status 2
# ------------------------------------------------------------------------------------------
_VALUE_ERROR = re.compile(r"argument ([^:\s]+): (must .*)", re.DOTALL)


def usage_line(prog: str, message: str) -> str:
    """The one-line form of an argparse error of ``prog`` (``henn train``, ...).

    A value refused by a type above reads ``PROG: error: --option must be ... (got X)`` (the first
    of an option's spellings); other argparse errors get a pointer to ``PROG --help``.
    """
    match = _VALUE_ERROR.fullmatch(" ".join(message.split()))
    if match:
        return f"{prog}: error: {match[1].split('/')[0]} {match[2]}"
    return f"{prog}: error: {' '.join(message.split())} (`{prog} --help` lists the options)"


def usage_error(prog: str, message: str) -> NoReturn:
    """Stop a command whose options do not fit together: one line on stderr, exit status 2."""
    print(f"{prog}: error: {' '.join(message.split())}", file=sys.stderr)
    raise SystemExit(2)


def same_path(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` are one file (links followed), or would be once created."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def refuse_overwrite(
    prog: str,
    option: str,
    path: str | None,
    *,
    force: bool,
    inputs: Sequence[tuple[str, str | None]] = (),
) -> None:
    """Stop unless writing ``path`` (given as ``option``) replaces nothing, or ``--force`` is given.

    ``inputs`` are the command's input files as ``(option, path)``: writing over one of them
    gets its own message, because the command would replace what it reads.
    """
    if path is None or not os.path.lexists(path):
        return
    if force:
        return
    for input_option, input_path in inputs:
        if input_path is not None and same_path(path, input_path):
            usage_error(
                prog,
                f"{option} {path} is the same file as {input_option}: the command would replace "
                f"its own input. Choose another {option}, or pass --force to replace it (the "
                "input is read in full first, and the new file replaces it in one step).",
            )
    usage_error(
        prog,
        f"{option} {path} already exists; choose another {option}, or pass --force to replace it.",
    )
