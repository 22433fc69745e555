"""How data errors name the options that fix them: Python arguments, or ``henn`` options.

The loaders are called both from Python (``load_reviews(..., skip_empty=True)``) and from the
``henn`` command line (``--skip-empty``). An error that tells a command-line user to pass
``skip_empty=True`` names something they cannot type, so each message names both spellings through
:func:`option`, and the command line switches to its own inside :func:`command_line_names`.
A context variable (not a global flag) keeps threads and nested calls independent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["command_line_names", "option", "using_command_line_names"]

_COMMAND_LINE: ContextVar[bool] = ContextVar("hennframework_data_command_line", default=False)


@contextmanager
def command_line_names() -> Iterator[None]:
    """Within this block, data errors name ``henn`` options (``--skip-empty``)."""
    token = _COMMAND_LINE.set(True)
    try:
        yield
    finally:
        _COMMAND_LINE.reset(token)


def using_command_line_names() -> bool:
    """True inside :func:`command_line_names`."""
    return _COMMAND_LINE.get()


def option(python: str, command_line: str) -> str:
    """``python`` (such as ``"skip_empty=True"``) or, on the command line, ``command_line``."""
    return command_line if _COMMAND_LINE.get() else python
