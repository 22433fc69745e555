"""The ``henn`` command line.

The parser is assembled from *command modules*: each module named in :data:`COMMAND_MODULES`
exposes ``register(subparsers)``, which adds one or more subcommands with
``subparsers.add_parser(...)`` and sets ``func`` on each (``parser.set_defaults(func=run)``,
where ``run(args) -> int | None``). To add a command, write such a module and append its name to
:data:`COMMAND_MODULES`. A module that is not there is skipped silently (so the list may name
commands that are still being written); a module that is there but fails to import is skipped with
a warning, so one broken command never breaks the others.

Global options (accepted before or after the subcommand): ``--debug`` (show tracebacks),
``--backend NAME`` and ``--scheme NAME`` (the *explicit argument* level of
:mod:`hennframework.config`: they beat contexts, the environment and config files).

Errors: any :class:`~hennframework.exceptions.HennError`, and any ImportError raised by a plugin,
is printed as one paragraph ``henn: error: ...`` on stderr, without a traceback unless ``--debug``;
so is an ``OSError`` (a full disk is reported as "disk full", never as an internal error).
Exit status: 0 success, 2 usage or configuration errors (bad arguments, malformed config, unknown
backend or scheme name), 1 any other failure, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import NoReturn

import hennframework
from hennframework import config
from hennframework.cli.common import add_global_options, usage_line
from hennframework.exceptions import ConfigError, HennError, UnknownPluginError

__all__ = ["COMMAND_MODULES", "EXIT_FAILURE", "EXIT_USAGE", "build_parser", "main"]

#: Modules that contribute subcommands, in the order their commands are listed in ``henn -h``.
COMMAND_MODULES: list[str] = [
    "hennframework.cli.info",
    "hennframework.cli.plugins",
    "hennframework.cli.demo",
    "hennframework.cli.parties",
    "hennframework.cli.federated",
    "hennframework.cli.bench",
]

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: Errors that mean "the command line or the configuration is wrong" (exit status 2).
USAGE_ERRORS: tuple[type[BaseException], ...] = (ConfigError, UnknownPluginError)


@dataclass(frozen=True)
class LoadProblem:
    """A command module that exists but could not be imported or registered."""

    module: str
    error: BaseException


class _CommandParser(argparse.ArgumentParser):
    """Parser class for subcommands: every subcommand also accepts the global options."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        add_global_options(self, suppress_defaults=True)

    def error(self, message: str) -> NoReturn:
        """A bad command line: one line naming the option (no usage block), exit status 2."""
        self.exit(EXIT_USAGE, usage_line(self.prog, message) + "\n")


def _module_missing(name: str, exc: ModuleNotFoundError) -> bool:
    """True when ``exc`` says that the module ``name`` itself (or its package) does not exist."""
    missing = exc.name or ""
    return bool(missing) and (name == missing or name.startswith(missing + "."))


def build_parser(
    modules: Sequence[str] | None = None,
) -> tuple[argparse.ArgumentParser, list[LoadProblem]]:
    """The ``henn`` parser with every command module that loads, and the modules that did not."""
    parser = argparse.ArgumentParser(
        prog="henn",
        description=(
            "hennframework: neural networks with homomorphically encrypted weights. "
            "Run `henn info` to see what is installed and which backend and scheme are chosen."
        ),
    )
    parser.add_argument(
        "--version", action="version", version=f"hennframework {hennframework.__version__}"
    )
    add_global_options(parser, suppress_defaults=False)
    subparsers = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", parser_class=_CommandParser
    )
    problems: list[LoadProblem] = []
    for name in COMMAND_MODULES if modules is None else modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if not _module_missing(name, exc):
                problems.append(LoadProblem(name, exc))
            continue
        except Exception as exc:  # a broken command module must not break the others
            problems.append(LoadProblem(name, exc))
            continue
        register = getattr(module, "register", None)
        if not callable(register):
            problems.append(LoadProblem(name, TypeError(f"{name} has no register(subparsers)")))
            continue
        try:
            register(subparsers)
        except Exception as exc:
            problems.append(LoadProblem(name, exc))
    return parser, problems


def _one_paragraph(text: str) -> str:
    return " ".join(text.split())


def _report(message: str, exc: BaseException | None, debug: bool) -> None:
    if debug and exc is not None:
        traceback.print_exception(exc, file=sys.stderr)
    print(f"henn: error: {_one_paragraph(message)}", file=sys.stderr)


def _warn_problems(problems: list[LoadProblem], debug: bool) -> None:
    for problem in problems:
        if debug:
            traceback.print_exception(problem.error, file=sys.stderr)
        print(
            f"henn: warning: the commands in {problem.module} are unavailable "
            f"({type(problem.error).__name__}: {_one_paragraph(str(problem.error))}); "
            "the other commands still work.",
            file=sys.stderr,
        )


@contextmanager
def _selection(args: argparse.Namespace) -> Iterator[None]:
    """Make --backend/--scheme apply to every library call the command makes."""
    with ExitStack() as stack:
        if getattr(args, "backend", None):
            stack.enter_context(config.backend_context(args.backend))
        if getattr(args, "scheme", None):
            stack.enter_context(config.scheme_context(args.scheme))
        yield


def _os_error_message(exc: OSError) -> str:
    """One line for an operating-system error: "disk full" said plainly, else what and where."""
    where = f" {exc.filename}" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return (
            f"disk full: could not write{where} ({exc.strerror or exc}). Free some space or "
            "write to another disk, then run the command again."
        )
    return f"cannot access{where}: {exc.strerror or exc}. Check the path and its permissions."


def _exit_status(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return EXIT_FAILURE


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``henn`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in arguments
    parser, problems = build_parser()
    _warn_problems(problems, debug)
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exc:  # --help, --version and usage errors
        return _exit_status(exc)
    debug = debug or bool(getattr(args, "debug", False))
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        with _selection(args):
            result = func(args)
    except USAGE_ERRORS as exc:
        _report(str(exc), exc, debug)
        return EXIT_USAGE
    except HennError as exc:
        _report(str(exc), exc, debug)
        return EXIT_FAILURE
    except ImportError as exc:
        from hennframework.registry import install_hint

        _report(
            f"a package that this command needs is missing ({exc}). "
            f"Install it ({install_hint(exc)}) and try again.",
            exc,
            debug,
        )
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("henn: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `henn ... | head`: the reader left; stop quietly
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except OSError as exc:  # the file system refused (a full disk, a permission): not a bug
        _report(_os_error_message(exc), exc, debug)
        return EXIT_FAILURE
    except SystemExit as exc:
        return _exit_status(exc)
    except Exception as exc:
        _report(
            f"internal error: {type(exc).__name__}: {exc}. This is a bug in hennframework or "
            "in a plugin; run the command again with --debug to see the traceback, and report it.",
            exc,
            debug,
        )
        return EXIT_FAILURE
    return int(result or 0)
