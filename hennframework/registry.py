"""Finding backends and schemes through entry points (stevedore).

Two groups: ``hennframework.backends`` and ``hennframework.schemes``. A third-party package adds a
backend or a scheme with one class and one entry point. Three distinct failures, each actionable:

* :class:`~hennframework.exceptions.UnknownPluginError`: no such name (lists what is installed);
* :class:`~hennframework.exceptions.PluginDependencyError`: declared, but a package it needs is
  missing (the ImportError is chained; the message names the extra to install);
* :class:`~hennframework.exceptions.BackendUnavailableError`: installed, but unusable here
  (for example CuPy with no GPU or driver).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

from stevedore import DriverManager, ExtensionManager

from hennframework import config
from hennframework.backend import ArrayBackend
from hennframework.exceptions import (
    BackendUnavailableError,
    PluginDependencyError,
    UnknownPluginError,
)

__all__ = [
    "BACKEND_GROUP",
    "SCHEME_GROUP",
    "PluginStatus",
    "get_backend",
    "get_scheme_class",
    "list_plugins",
    "load_plugin_class",
]

BACKEND_GROUP = "hennframework.backends"
SCHEME_GROUP = "hennframework.schemes"
Kind = Literal["backend", "scheme"]
_GROUPS: dict[str, str] = {"backend": BACKEND_GROUP, "scheme": SCHEME_GROUP}

#: Which extra of ``hennframework`` brings the dependencies of each built-in plugin.
EXTRA_FOR: dict[str, str] = {"cupy": "cupy", "ckks": "ckks"}


@dataclass(frozen=True)
class PluginStatus:
    """One declared plugin as ``henn backends`` / ``henn schemes`` shows it."""

    kind: str
    name: str
    target: str
    distribution: str
    loads: bool
    usable: bool
    detail: str


def _install_hint(name: str, exc: ImportError, distribution: str | None) -> str:
    extra = EXTRA_FOR.get(name)
    missing = getattr(exc, "name", None) or str(exc)
    if extra and distribution in (None, "hennframework"):
        how = f'pip install "hennframework[{extra}]"'
    elif distribution:
        how = f"reinstall {distribution} with its dependencies (pip install --force-reinstall {distribution})"
    else:
        how = f"install the package that provides {missing!r}"
    return how


def _declared(kind: Kind) -> dict[str, Any]:
    """Entry points of a group by name, without importing any of them."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=_GROUPS[kind])}


def _load_class(kind: Kind, name: str) -> Any:
    group = _GROUPS[kind]
    declared = _declared(kind)
    failures: list[tuple[str, BaseException]] = []

    def on_load_failure(_manager: Any, entrypoint: Any, exc: BaseException) -> None:
        failures.append((entrypoint.name, exc))

    if name not in declared:
        installed = ", ".join(sorted(declared)) or "none"
        raise UnknownPluginError(
            f"No {kind} named {name!r} is installed (installed {kind}s: {installed}). "
            f"Check the spelling, or install the package that provides it; `henn {kind}s` lists them."
        )
    try:
        manager = DriverManager(
            namespace=group,
            name=name,
            invoke_on_load=False,
            on_load_failure_callback=on_load_failure,
        )
    except Exception as exc:  # stevedore raises NoMatches when the only candidate failed to load
        failures.append((name, exc))
        manager = None
    if failures:
        _, exc = failures[0]
        dist = getattr(getattr(declared[name], "dist", None), "name", None)
        if isinstance(exc, ImportError):
            raise PluginDependencyError(
                f"The {kind} {name!r} is declared but a package it needs is missing "
                f"({exc}). To use it: {_install_hint(name, exc, dist)}."
            ) from exc
        raise PluginDependencyError(
            f"The {kind} {name!r} ({declared[name].value}) failed to load: "
            f"{type(exc).__name__}: {exc}. Reinstall the package that provides it."
        ) from exc
    assert manager is not None
    return manager.driver


def load_plugin_class(kind: Kind, name: str) -> Any:
    """The class registered as ``name`` in the group for ``kind``, imported but not instantiated."""
    return _load_class(kind, name)


@functools.cache
def _backend_instance(name: str) -> ArrayBackend:
    backend_class = _load_class("backend", name)
    backend = backend_class()
    ok, why = backend.is_available()
    if not ok:
        raise BackendUnavailableError(
            f"The backend {name!r} is installed but cannot run here: {why}. "
            "Use another backend (HENN_BACKEND=numpy, or --backend numpy), or fix the cause above."
        )
    return backend  # type: ignore[no-any-return]


def get_backend(name: str | ArrayBackend | None = None) -> ArrayBackend:
    """The backend to use: ``name`` if given, else the configured one (see :mod:`hennframework.config`)."""
    if name is not None and not isinstance(name, str):
        return name
    choice = config.resolve("backend", name)
    return _backend_instance(choice.value)


def get_scheme_class(name: str | None = None) -> Any:
    """The scheme class for ``name``, or for the configured default scheme."""
    choice = config.resolve("scheme", name)
    return _load_class("scheme", choice.value)


def clear_cache() -> None:
    """Forget loaded backend instances (tests that register fake plugins use this)."""
    _backend_instance.cache_clear()


def list_plugins(kind: Kind) -> list[PluginStatus]:
    """Every declared plugin of ``kind``: does it import, is it usable here, and why not."""
    statuses: list[PluginStatus] = []
    for name, entry_point in sorted(_declared(kind).items()):
        dist = getattr(getattr(entry_point, "dist", None), "name", "?") or "?"
        try:
            plugin_class = _load_class(kind, name)
        except PluginDependencyError as exc:
            statuses.append(PluginStatus(kind, name, entry_point.value, dist, False, False, str(exc)))
            continue
        loads, usable, detail = True, True, "ok"
        try:
            if kind == "backend":
                usable, detail = plugin_class().is_available()
            else:
                describe = getattr(plugin_class, "describe", None)
                detail = describe() if callable(describe) else "ok"
        except Exception as exc:  # reported, not raised: this is a listing
            usable, detail = False, f"{type(exc).__name__}: {exc}"
        statuses.append(PluginStatus(kind, name, entry_point.value, dist, loads, usable, detail))
    return statuses


def _extension_names(kind: Kind) -> list[str]:
    """Names stevedore can load (ExtensionManager), for callers that only want the working ones."""
    manager = ExtensionManager(namespace=_GROUPS[kind], invoke_on_load=False)
    return sorted(manager.names())
