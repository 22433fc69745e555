"""Which backend and which default scheme to use, and where that choice came from.

Precedence, highest first:

1. an explicit argument (``get_backend("cupy")``);
2. ``backend_context(...)`` / ``set_backend(...)`` (and ``scheme_context`` / ``set_scheme``);
3. the environment: ``HENN_BACKEND``, ``HENN_SCHEME``;
4. a config file: ``[tool.hennframework]`` in the nearest ``pyproject.toml`` at or above the current
   directory, then ``$XDG_CONFIG_HOME/hennframework/config.toml`` (default ``~/.config/...``);
5. the built-in default (``numpy``, ``integer-vector``).

Every resolution returns a :class:`Choice` naming the value *and* its source, so ``henn info`` can
say where each choice came from.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hennframework.exceptions import ConfigError

__all__ = [
    "DEFAULTS",
    "Choice",
    "backend_context",
    "find_pyproject",
    "resolve",
    "scheme_context",
    "set_backend",
    "set_scheme",
    "user_config_path",
]

Setting = Literal["backend", "scheme"]

DEFAULTS: dict[str, str] = {"backend": "numpy", "scheme": "integer-vector"}
ENV_VARS: dict[str, str] = {"backend": "HENN_BACKEND", "scheme": "HENN_SCHEME"}

_context_vars: dict[str, contextvars.ContextVar[str | None]] = {
    "backend": contextvars.ContextVar("henn_backend", default=None),
    "scheme": contextvars.ContextVar("henn_scheme", default=None),
}
_global_choice: dict[str, str | None] = {"backend": None, "scheme": None}


@dataclass(frozen=True)
class Choice:
    """A resolved setting: its value and a human-readable description of where it came from."""

    setting: str
    value: str
    source: str


def user_config_path() -> Path:
    """The user config file under the XDG config dir."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "hennframework" / "config.toml"


def find_pyproject(start: Path | None = None) -> Path | None:
    """The nearest pyproject.toml at or above ``start`` (default: the current directory)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid TOML ({exc}). Fix the file or remove it; hennframework reads "
            "[tool.hennframework] from pyproject.toml and the top level of the user config file."
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc


def _from_table(table: Any, setting: str, path: Path, where: str) -> str | None:
    if not isinstance(table, dict):
        return None
    value = table.get(setting)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"{path}: {where}{setting} must be a non-empty string such as "
            f'{setting} = "{DEFAULTS[setting]}", not {value!r}.'
        )
    return value.strip()


def resolve(setting: Setting, explicit: str | None = None) -> Choice:
    """Resolve ``setting`` ("backend" or "scheme") by the precedence described in this module."""
    if explicit:
        return Choice(setting, explicit, "explicit argument")
    from_context = _context_vars[setting].get()
    if from_context:
        return Choice(setting, from_context, f"{setting}_context()")
    from_global = _global_choice[setting]
    if from_global:
        return Choice(setting, from_global, f"set_{setting}()")
    env_name = ENV_VARS[setting]
    from_env = os.environ.get(env_name, "").strip()
    if from_env:
        return Choice(setting, from_env, f"environment variable {env_name}")
    pyproject = find_pyproject()
    if pyproject is not None:
        tool = _read_toml(pyproject).get("tool", {})
        value = _from_table(
            tool.get("hennframework") if isinstance(tool, dict) else None,
            setting,
            pyproject,
            "[tool.hennframework] ",
        )
        if value:
            return Choice(setting, value, f"[tool.hennframework] in {pyproject}")
    user_file = user_config_path()
    if user_file.is_file():
        value = _from_table(_read_toml(user_file), setting, user_file, "")
        if value:
            return Choice(setting, value, f"user config file {user_file}")
    return Choice(setting, DEFAULTS[setting], "built-in default")


def set_backend(name: str | None) -> None:
    """Set the process-wide backend (``None`` clears it). Beaten only by explicit arguments and contexts."""
    _global_choice["backend"] = name


def set_scheme(name: str | None) -> None:
    """Set the process-wide default scheme (``None`` clears it)."""
    _global_choice["scheme"] = name


@contextlib.contextmanager
def backend_context(name: str) -> Iterator[None]:
    """Use backend ``name`` inside the ``with`` block (thread- and task-local)."""
    token = _context_vars["backend"].set(name)
    try:
        yield
    finally:
        _context_vars["backend"].reset(token)


@contextlib.contextmanager
def scheme_context(name: str) -> Iterator[None]:
    """Use scheme ``name`` as the default inside the ``with`` block."""
    token = _context_vars["scheme"].set(name)
    try:
        yield
    finally:
        _context_vars["scheme"].reset(token)
