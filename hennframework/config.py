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

Only the *nearest* ``pyproject.toml`` counts (the current project); if it has no
``[tool.hennframework]`` table, resolution goes on to the user config file, whose settings are
top-level keys::

    # ~/.config/hennframework/config.toml
    backend = "cupy"
    scheme = "integer-vector"

A malformed file is an error (:class:`~hennframework.exceptions.ConfigError`), never skipped.
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
    "ENV_VARS",
    "Choice",
    "ConfigFile",
    "Setting",
    "backend_context",
    "config_files",
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


_toml_cache: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}


def _read_toml(path: Path) -> dict[str, Any]:
    """Parse ``path``; parsed files are cached by (mtime, size) so repeated resolution is cheap."""
    try:
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        cached = _toml_cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        with path.open("rb") as handle:
            data = tomllib.load(handle)
        _toml_cache[path] = (stamp, data)
        return data
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


def _pyproject_value(setting: str) -> Choice | None:
    pyproject = find_pyproject()
    if pyproject is None:
        return None
    tool = _read_toml(pyproject).get("tool", {})
    table = tool.get("hennframework") if isinstance(tool, dict) else None
    if table is not None and not isinstance(table, dict):
        raise ConfigError(
            f"{pyproject}: tool.hennframework must be a table ([tool.hennframework]), "
            f"not {type(table).__name__}."
        )
    value = _from_table(table, setting, pyproject, "[tool.hennframework] ")
    return None if value is None else Choice(setting, value, f"[tool.hennframework] in {pyproject}")


def _user_config_value(setting: str) -> Choice | None:
    user_file = user_config_path()
    if not user_file.is_file():
        return None
    value = _from_table(_read_toml(user_file), setting, user_file, "")
    return None if value is None else Choice(setting, value, f"user config file {user_file}")


def resolve(
    setting: Setting, explicit: str | None = None, *, explicit_source: str = "explicit argument"
) -> Choice:
    """Resolve ``setting`` ("backend" or "scheme") by the precedence described in this module.

    ``explicit`` wins when it is a non-empty string; ``explicit_source`` is how the returned
    :class:`Choice` describes it (the CLI passes ``"command-line option --backend"``).
    Raises :class:`~hennframework.exceptions.ConfigError` when a config file that would be
    consulted is malformed, even if it holds no value for ``setting``: a broken file is reported
    rather than silently skipped.
    """
    if setting not in DEFAULTS:
        raise ConfigError(
            f"unknown setting {setting!r}; hennframework resolves only {', '.join(DEFAULTS)}."
        )
    if explicit is not None and explicit.strip():
        return Choice(setting, explicit.strip(), explicit_source)
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
    for source in (_pyproject_value, _user_config_value):
        choice = source(setting)
        if choice is not None:
            return choice
    return Choice(setting, DEFAULTS[setting], "built-in default")


@dataclass(frozen=True)
class ConfigFile:
    """A config file that :func:`resolve` consults, for ``henn info``."""

    kind: str
    path: Path | None
    exists: bool


def config_files() -> list[ConfigFile]:
    """The project and user config files that :func:`resolve` reads, in precedence order."""
    pyproject = find_pyproject()
    user_file = user_config_path()
    return [
        ConfigFile("project pyproject.toml [tool.hennframework]", pyproject, pyproject is not None),
        ConfigFile("user config file", user_file, user_file.is_file()),
    ]


def set_backend(name: str | None) -> None:
    """Set the process-wide backend (``None`` clears it).

    Beaten only by explicit arguments and :func:`backend_context`; beats the environment and
    config files.
    """
    _global_choice["backend"] = name or None


def set_scheme(name: str | None) -> None:
    """Set the process-wide default scheme (``None`` clears it). Same precedence as :func:`set_backend`."""
    _global_choice["scheme"] = name or None


@contextlib.contextmanager
def _setting_context(setting: str, name: str) -> Iterator[None]:
    token = _context_vars[setting].set(name)
    try:
        yield
    finally:
        _context_vars[setting].reset(token)


def backend_context(name: str) -> contextlib.AbstractContextManager[None]:
    """Use backend ``name`` inside the ``with`` block (thread- and task-local)."""
    return _setting_context("backend", name)


def scheme_context(name: str) -> contextlib.AbstractContextManager[None]:
    """Use scheme ``name`` as the default inside the ``with`` block."""
    return _setting_context("scheme", name)
