"""How the file layer finds and uses scheme codecs, and the secret-key scan of public writers.

The codec contract (:class:`~hennframework.codec.SchemeCodec`, :class:`~hennframework.codec.EntrySink`,
:class:`~hennframework.codec.EntrySource`) and its registry (:func:`~hennframework.codec.register_codec`)
live in :mod:`hennframework.codec`, below the schemes, so that a scheme registers its codec when
its package is imported without depending on this package. This module adds what needs the
plugin registry and the container:

* :func:`codec_for`: the codec of a scheme by name or instance, loading the scheme's entry point
  (which registers its codec) when none is registered yet;
* :func:`scheme_instance` / :func:`adopt_scheme`: one shared scheme instance per parameter set
  and backend, so that every tensor loaded under a key evaluates through an instance that knows
  that key;
* :func:`find_secret` / :func:`refuse_secrets`: walks any object graph handed to a public writer
  (models, histories, dicts, dataclasses, ...) and names the first secret it finds (a
  :class:`~hennframework.scheme.KeySet` with a secret, or anything a registered codec's
  ``is_secret`` recognises); public writers refuse to go on.

The contract's names are importable from here too, for the writers in this package.
"""

from __future__ import annotations

import dataclasses
import threading
import types
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from hennframework.codec import (
    EntrySink,
    EntrySource,
    SchemeCodec,
    register_codec,
    registered_codec,
    registered_codecs,
)
from hennframework.exceptions import SerializationError, UnknownPluginError
from hennframework.io.container import canonical_json
from hennframework.registry import get_backend, get_scheme_class
from hennframework.scheme import KeySet

__all__ = [
    "EntrySink",
    "EntrySource",
    "SchemeCodec",
    "adopt_scheme",
    "codec_for",
    "find_secret",
    "refuse_secrets",
    "register_codec",
    "registered_codecs",
    "scheme_instance",
]


_LOCK = threading.Lock()
_SCHEMES: dict[tuple[str, str, str], Any] = {}


def codec_for(scheme: str | Any) -> SchemeCodec:
    """The codec of a scheme (by name or instance); loads the scheme's plugin if needed.

    A scheme's package registers its codec when it is imported, so a name with no codec yet is
    looked up as a scheme entry point (which imports the package) before this gives up.
    """
    name = scheme if isinstance(scheme, str) else getattr(scheme, "name", None)
    if not isinstance(name, str):
        raise SerializationError(f"cannot tell which scheme {scheme!r} belongs to.")
    codec = registered_codec(name)
    if codec is not None:
        return codec
    try:
        get_scheme_class(name)  # importing the scheme's package registers its codec
    except UnknownPluginError as exc:
        raise SerializationError(
            f"this file uses the scheme {name!r}, which is not installed here ({exc}). Install "
            "the scheme plugin and try again."
        ) from exc
    codec = registered_codec(name)
    if codec is not None:
        return codec
    raise SerializationError(
        f"the scheme {name!r} has no serialisation codec, so its objects cannot be saved or "
        "loaded. Its package must call hennframework.plugin.register_codec(...) when it is "
        "imported (docs/plugins.md, 'Saving and sharing')."
    )


def scheme_instance(name: str, parameters: Mapping[str, Any], backend: Any = None) -> Any:
    """One shared scheme instance per (scheme, parameter set, backend) in this process.

    Sharing matters: a scheme instance remembers the public keys registered with it, and every
    tensor loaded for the same key must evaluate through an instance that knows that key.
    """
    backend_obj = get_backend(backend)
    key = (
        name,
        canonical_json(dict(parameters)).decode(),
        str(getattr(backend_obj, "name", backend_obj)),
    )
    with _LOCK:
        if key in _SCHEMES:
            return _SCHEMES[key]
    instance = codec_for(name).make_scheme(parameters, backend_obj)
    with _LOCK:
        return _SCHEMES.setdefault(key, instance)


def adopt_scheme(scheme: Any) -> None:
    """Make ``scheme`` the shared instance for its parameters (so loads reuse its keys)."""
    codec = codec_for(scheme)
    backend_name = str(getattr(getattr(scheme, "backend", None), "name", None))
    key = (codec.scheme_name, canonical_json(codec.parameters(scheme)).decode(), backend_name)
    with _LOCK:
        _SCHEMES.setdefault(key, scheme)


# ------------------------------------------------------------------------------------------
# secret detection
# ------------------------------------------------------------------------------------------
_LEAVES = (str, bytes, bytearray, int, float, complex, bool, type(None), np.ndarray, np.generic)
_SKIP = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type, types.MethodType)


def find_secret(value: Any, *, _limit: int = 2_000_000) -> str | None:
    """A description of the first secret key found anywhere in ``value``, or None.

    Walks containers, dataclasses and objects' attributes (models, layers, histories) without
    calling any of their code beyond attribute access.
    """
    checks: list[Callable[[Any], bool]] = [
        codec.is_secret for codec in registered_codecs().values()
    ]
    seen: set[int] = set()
    stack: list[tuple[Any, str]] = [(value, "the object")]
    visited = 0
    while stack:
        item, where = stack.pop()
        if isinstance(item, _LEAVES + _SKIP) or id(item) in seen:
            continue
        seen.add(id(item))
        visited += 1
        if visited > _limit:
            raise SerializationError("the object graph is too large to check for secret keys.")
        if isinstance(item, KeySet):
            if item.secret is not None:
                return f"{where} is a KeySet that holds the secret key"
            stack.append((item.public, f"{where}.public"))
            stack.append((item.evaluation, f"{where}.evaluation"))
            continue
        for check in checks:
            try:
                if check(item):
                    return f"{where} ({type(item).__name__}) is secret key material"
            except Exception:  # a codec's check must never break the scan
                continue
        if isinstance(item, Mapping):
            for key, sub in item.items():
                stack.append((key, f"{where} key"))
                stack.append((sub, f"{where}[{key!r}]"))
        elif isinstance(item, list | tuple | set | frozenset):
            for index, sub in enumerate(item):
                stack.append((sub, f"{where}[{index}]"))
        elif dataclasses.is_dataclass(item) and not isinstance(
            getattr(item, "__dict__", None), dict
        ):
            for fld in dataclasses.fields(item):  # slotted: the declared fields are all there is
                stack.append((getattr(item, fld.name, None), f"{where}.{fld.name}"))
        else:  # objects and ordinary dataclasses: every attribute, declared or added later
            attributes = getattr(item, "__dict__", None)
            if isinstance(attributes, dict):
                for attr, sub in attributes.items():
                    stack.append((sub, f"{where}.{attr}"))
            for slot in getattr(type(item), "__slots__", ()) or ():
                if isinstance(slot, str) and hasattr(item, slot):
                    stack.append((getattr(item, slot), f"{where}.{slot}"))
    return None


def refuse_secrets(value: Any, what: str) -> None:
    """Raise :class:`SerializationError` if ``value`` contains a secret key (public writers call it)."""
    found = find_secret(value)
    if found:
        raise SerializationError(
            f"refusing to write {what}: {found}. Secret keys go only into their own file "
            "(hennframework.io.save_secret_key / `henn keygen`), never into a file that is "
            "shared. Pass keys.public (not the KeySet) or remove the secret from what you save."
        )
