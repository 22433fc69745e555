"""Finding backends and schemes through entry points (stevedore).

Two entry-point groups: ``hennframework.backends`` and ``hennframework.schemes``. A third-party
package adds a backend or a scheme with one class and one entry point, for example in its
``pyproject.toml``::

    [project.entry-points."hennframework.backends"]
    mygpu = "my_package.backend:MyGpuBackend"

One plugin is loaded by name with stevedore's ``DriverManager``; listings (``henn backends``,
``henn schemes``) use an ``ExtensionManager`` whose load-failure callback records why a plugin
did not load instead of hiding it. Three distinct failures, each actionable:

* :class:`~hennframework.exceptions.UnknownPluginError`: no such name (the message lists what is
  installed);
* :class:`~hennframework.exceptions.PluginDependencyError`: declared, but a package it needs is
  missing (the ImportError is chained; the message names the extra to install);
* :class:`~hennframework.exceptions.BackendUnavailableError`: installed, but unusable here
  (for example CuPy with no GPU or driver: the backend's ``is_available()`` says why).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from stevedore import DriverManager, ExtensionManager
from stevedore.exception import MultipleMatches, NoMatches

from hennframework import config
from hennframework.backend import ArrayBackend
from hennframework.exceptions import (
    BackendUnavailableError,
    HennError,
    PluginDependencyError,
    UnknownPluginError,
)
from hennframework.scheme import HEScheme

__all__ = [
    "BACKEND_GROUP",
    "EXTRA_FOR",
    "EXTRA_FOR_MODULE",
    "SCHEME_GROUP",
    "PluginStatus",
    "clear_cache",
    "get_backend",
    "get_scheme_class",
    "install_hint",
    "list_plugins",
    "load_plugin_class",
]

BACKEND_GROUP = "hennframework.backends"
SCHEME_GROUP = "hennframework.schemes"
Kind = Literal["backend", "scheme"]
_GROUPS: dict[str, str] = {"backend": BACKEND_GROUP, "scheme": SCHEME_GROUP}

#: Which extra of ``hennframework`` brings a missing top-level module.
EXTRA_FOR_MODULE: dict[str, str] = {"cupy": "cupy", "cupy_backends": "cupy", "tenseal": "ckks"}
#: Which extra of ``hennframework`` brings the dependencies of each built-in plugin (by name).
EXTRA_FOR: dict[str, str] = {"cupy": "cupy", "ckks": "ckks"}

_CORE_DISTRIBUTION = "hennframework"


@dataclass(frozen=True)
class PluginStatus:
    """One declared plugin as ``henn backends`` / ``henn schemes`` shows it.

    ``loads``: the entry point imports. ``usable``: it can be used here (a backend's
    ``is_available()`` said yes; a scheme is an :class:`~hennframework.scheme.HEScheme`).
    ``detail``: the backend's or scheme's ``describe()`` when usable, otherwise why not.
    ``plugin``: the loaded class (``None`` when it did not load); not part of :meth:`as_dict`.
    """

    kind: str
    name: str
    target: str
    distribution: str
    loads: bool
    usable: bool
    detail: str
    plugin: Any = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (everything but the loaded class)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "plugin"}


def _check_kind(kind: str) -> str:
    if kind not in _GROUPS:
        raise UnknownPluginError(f"unknown plugin kind {kind!r}; use 'backend' or 'scheme'.")
    return _GROUPS[kind]


def _declared(kind: Kind) -> dict[str, importlib.metadata.EntryPoint]:
    """Entry points of a group by name, without importing any of them (first one wins)."""
    group = _check_kind(kind)
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for entry_point in importlib.metadata.entry_points(group=group):
        found.setdefault(entry_point.name, entry_point)
    return found


def _distribution_of(entry_point: importlib.metadata.EntryPoint | None) -> str | None:
    dist = getattr(entry_point, "dist", None)
    name = getattr(dist, "name", None)
    return name if isinstance(name, str) else None


def _install_hint(name: str, exc: ImportError, distribution: str | None) -> str:
    """How to install what ``exc`` says is missing (an extra of hennframework where one exists)."""
    missing = getattr(exc, "name", None) or str(exc)
    extra = EXTRA_FOR_MODULE.get(missing.split(".")[0])
    if extra is None and distribution in (None, _CORE_DISTRIBUTION):
        extra = EXTRA_FOR.get(name)
    if extra is not None:
        return f'pip install "hennframework[{extra}]"'
    if distribution and distribution != _CORE_DISTRIBUTION:
        return (
            f"install the package that provides the module {missing!r}, or reinstall "
            f"{distribution} with its dependencies (pip install --force-reinstall {distribution})"
        )
    return f"install the package that provides the module {missing!r}"


def install_hint(exc: ImportError) -> str:
    """A command that installs what the ImportError ``exc`` says is missing (for error messages)."""
    return _install_hint("", exc, None)


def _load_error(
    kind: str, name: str, target: str, distribution: str | None, exc: BaseException
) -> PluginDependencyError:
    """Turn an exception raised while importing a plugin into the matching actionable error."""
    module = target.split(":")[0].strip()
    reinstall = (
        f"pip install --force-reinstall {distribution}"
        if distribution and distribution != _CORE_DISTRIBUTION
        else 'pip install -e . (or pip install --force-reinstall "hennframework")'
    )
    if isinstance(exc, ImportError):
        missing = getattr(exc, "name", None)
        if missing and (module == missing or module.startswith(missing + ".")):
            # The entry point's own module (or its package) is absent, not a dependency of it.
            return PluginDependencyError(
                f"The {kind} {name!r} points to the module {module!r}, which does not exist: "
                f"the installation of {distribution or 'its package'} is incomplete or out of "
                f"date. Reinstall it: {reinstall}."
            )
        return PluginDependencyError(
            f"The {kind} {name!r} is installed but a package it needs is missing ({exc}). "
            f"To use it: {_install_hint(name, exc, distribution)}."
        )
    return PluginDependencyError(
        f"The {kind} {name!r} ({target}) failed to load: {type(exc).__name__}: {exc}. "
        f"Reinstall the package that provides it ({reinstall}) or report the problem to its "
        f"authors; `henn {kind}s` shows the state of every {kind}."
    )


def _unknown(kind: Kind, name: str) -> UnknownPluginError:
    installed = ", ".join(sorted(_declared(kind))) or "none"
    return UnknownPluginError(
        f"No {kind} named {name!r} is installed (installed {kind}s: {installed}). "
        f"Check the spelling (set by --{kind}, HENN_{kind.upper()} or a config file), or "
        f"install the package that provides it; `henn {kind}s` lists what is installed."
    )


def _load_class(kind: Kind, name: str) -> Any:
    """Import the class registered as ``name`` (DriverManager), mapping failures to our errors."""
    group = _check_kind(kind)
    declared = _declared(kind)
    if name not in declared:
        raise _unknown(kind, name)
    entry_point = declared[name]
    distribution = _distribution_of(entry_point)
    failures: list[BaseException] = []

    def on_load_failure(_manager: Any, _entry_point: Any, exc: BaseException) -> None:
        failures.append(exc)

    try:
        manager = DriverManager(
            namespace=group,
            name=name,
            invoke_on_load=False,
            on_load_failure_callback=on_load_failure,
        )
    except MultipleMatches as exc:
        raise UnknownPluginError(
            f"More than one installed package declares a {kind} named {name!r}; uninstall "
            f"all but one of them (`pip list` and `henn {kind}s` help find them)."
        ) from exc
    except NoMatches as exc:
        if not failures:
            raise UnknownPluginError(
                f"The {kind} {name!r} is declared by {distribution or 'an installed package'} "
                "but stevedore's entry-point cache does not list it. Delete the cache directory "
                "(~/.cache/python-entrypoints) and try again."
            ) from exc
    if failures:  # the entry point was found but did not import
        cause = failures[0]
        raise _load_error(kind, name, entry_point.value, distribution, cause) from cause
    return manager.driver


def load_plugin_class(kind: Kind, name: str) -> Any:
    """The class registered as ``name`` in the group for ``kind``, imported but not instantiated."""
    return _load_class(kind, name)


def _missing_members(backend: Any) -> list[str]:
    wanted = [
        member
        for member in dir(ArrayBackend)
        if not member.startswith("_") and member not in ("name",)
    ]
    missing = [member for member in wanted if not callable(getattr(backend, member, None))]
    if not isinstance(getattr(backend, "name", None), str):
        missing.insert(0, "name")
    return missing


def _start_backend(name: str, backend_class: Any) -> ArrayBackend:
    """Instantiate a backend class and check that it can run here."""
    try:
        backend = backend_class()
        ok, why = backend.is_available()
    except ImportError as exc:
        raise PluginDependencyError(
            f"The backend {name!r} is installed but a package it needs is missing ({exc}). "
            f"To use it: {_install_hint(name, exc, None)}."
        ) from exc
    except HennError:
        raise
    except Exception as exc:
        raise BackendUnavailableError(
            f"The backend {name!r} is installed but cannot run here: "
            f"{type(exc).__name__}: {exc}. Use another backend (HENN_BACKEND=numpy or "
            "--backend numpy), or fix the cause above."
        ) from exc
    if not ok:
        raise BackendUnavailableError(
            f"The backend {name!r} is installed but cannot run here: {why}. "
            "Use another backend (HENN_BACKEND=numpy, or --backend numpy), or fix the cause above."
        )
    missing = _missing_members(backend)
    if missing:
        raise BackendUnavailableError(
            f"The backend {name!r} does not implement the ArrayBackend interface "
            f"(missing: {', '.join(missing)}), so it cannot be used. Use another backend "
            "(--backend numpy) and report the problem to the backend's authors."
        )
    return backend  # type: ignore[no-any-return]


@functools.cache
def _backend_instance(name: str) -> ArrayBackend:
    return _start_backend(name, _load_class("backend", name))


def get_backend(name: str | ArrayBackend | None = None) -> ArrayBackend:
    """The backend to use: ``name`` if given, else the configured one (see :mod:`hennframework.config`).

    Instances are cached per name (one per process); an :class:`ArrayBackend` instance passed in
    is returned unchanged.
    """
    if name is not None and not isinstance(name, str):
        return name
    choice = config.resolve("backend", name)
    return _backend_instance(choice.value)


def get_scheme_class(name: str | None = None) -> Any:
    """The scheme class for ``name``, or for the configured default scheme."""
    choice = config.resolve("scheme", name)
    return _load_class("scheme", choice.value)


def clear_cache() -> None:
    """Forget loaded backend instances and stevedore's in-process entry-point lists.

    stevedore keeps one list of entry points per group for the life of the process
    (``ExtensionManager.ENTRY_POINT_CACHE``); tests that put fake plugins on ``sys.path`` call
    this so that they are seen (and forgotten again afterwards).
    """
    _backend_instance.cache_clear()
    for group in _GROUPS.values():
        ExtensionManager.ENTRY_POINT_CACHE.pop(group, None)
    importlib.invalidate_caches()


def _status_of_loaded(kind: str, name: str, target: str, dist: str, plugin: Any) -> PluginStatus:
    """Status of a plugin whose class imported: is it usable here?"""
    try:
        if kind == "backend":
            backend = _start_backend(name, plugin)
            detail = str(backend.describe())
        else:
            if not (isinstance(plugin, type) and issubclass(plugin, HEScheme)):
                raise TypeError(f"{target} is not a subclass of hennframework.scheme.HEScheme")
            detail = plugin.describe()
    except Exception as exc:  # reported, not raised: this is a listing
        detail = str(exc) if isinstance(exc, HennError) else f"{type(exc).__name__}: {exc}"
        return PluginStatus(kind, name, target, dist, True, False, detail, plugin)
    return PluginStatus(kind, name, target, dist, True, True, detail, plugin)


def list_plugins(kind: Kind) -> list[PluginStatus]:
    """Every declared plugin of ``kind``: does it import, is it usable here, and why not.

    Uses stevedore's ``ExtensionManager`` with a load-failure callback, so a plugin that fails to
    import is listed with the reason instead of being dropped. Never raises for a broken plugin.
    """
    group = _check_kind(kind)
    declared = _declared(kind)
    failures: dict[str, BaseException] = {}

    def on_load_failure(_manager: Any, entry_point: Any, exc: BaseException) -> None:
        failures.setdefault(entry_point.name, exc)

    manager = ExtensionManager(
        namespace=group, invoke_on_load=False, on_load_failure_callback=on_load_failure
    )
    statuses: dict[str, PluginStatus] = {}
    for extension in manager.extensions:
        dist = _distribution_of(declared.get(extension.name)) or "?"
        target = extension.entry_point.value
        statuses.setdefault(
            extension.name, _status_of_loaded(kind, extension.name, target, dist, extension.plugin)
        )
    for entry_point in manager.list_entry_points():
        if entry_point.name in statuses or entry_point.name not in failures:
            continue
        dist_name = _distribution_of(declared.get(entry_point.name))
        error = _load_error(
            kind, entry_point.name, entry_point.value, dist_name, failures[entry_point.name]
        )
        statuses[entry_point.name] = PluginStatus(
            kind, entry_point.name, entry_point.value, dist_name or "?", False, False, str(error)
        )
    for name, entry_point in declared.items():
        if name not in statuses:
            statuses[name] = PluginStatus(
                kind,
                name,
                entry_point.value,
                _distribution_of(entry_point) or "?",
                False,
                False,
                "declared, but stevedore's entry-point cache does not list it: delete "
                "~/.cache/python-entrypoints and try again",
            )
    return [statuses[name] for name in sorted(statuses)]
