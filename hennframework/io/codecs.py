"""The per-scheme part of serialisation: a small codec protocol and its registry.

The container (:mod:`hennframework.io.container`) knows JSON, ``.npy`` arrays and opaque blobs;
it knows nothing about ciphertexts or keys. A :class:`SchemeCodec` turns one scheme's objects
(encrypted tensors, public/secret/switching keys, parameter sets) into JSON metadata plus named
arrays and blobs, and back. The integer-vector scheme's codec
(:mod:`hennframework.io.integer_vector`) registers itself the way a plugin's does, when
:mod:`hennframework.io` is imported (which any of its modules' imports does first), so this
module imports no codec; a scheme plugin provides its own in one of two ways:

* call :func:`register_codec` when its scheme module is imported (the registry imports the
  scheme's entry point before giving up, so registration at import time is enough); or
* give its scheme class an attribute ``serialization_codec``: a codec instance, or a
  zero-argument callable returning one.

A codec writes with a :class:`EntrySink` (``add_array(name, array)``, ``add_blob(name, bytes)``,
both returning the entry name to store in the metadata) and reads with a :class:`EntrySource`
(``array(name)``, ``blob(name)``). Every entry written must be read back: a file with entries
that no codec consumed is refused as tampered. Loading must never execute code: no pickle,
``np.load(allow_pickle=False)`` only (the container does that), and plugin deserialisers that
parse bytes (TenSEAL's protobuf-based ``lazy_ckks_vector_from``/``context_from``) rather than
evaluate them.

Secret material: :func:`find_secret` walks any object graph handed to a public writer (models,
histories, dicts, dataclasses, ...) and names the first secret it finds (a
:class:`~hennframework.scheme.KeySet` with a secret, or anything a registered codec's
``is_secret`` recognises); public writers refuse to go on.
"""

from __future__ import annotations

import dataclasses
import threading
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from hennframework.exceptions import InputError, SerializationError, UnknownPluginError
from hennframework.scheme import KeySet

__all__ = [
    "EntrySink",
    "EntrySource",
    "SchemeCodec",
    "codec_for",
    "find_secret",
    "register_codec",
    "registered_codecs",
    "scheme_instance",
]


class EntrySink:
    """Collects the arrays and blobs a codec writes, under a name prefix."""

    def __init__(self) -> None:
        self.arrays: dict[str, npt.NDArray[Any]] = {}
        self.blobs: dict[str, bytes] = {}

    def add_array(self, name: str, array: Any) -> str:
        """Store ``array`` (numeric dtype) as ``arrays/<name>.npy``; returns ``name``."""
        if name in self.arrays or name in self.blobs:
            raise SerializationError(
                f"entry {name!r} written twice; a codec must use unique names."
            )
        value = np.asarray(array)
        if value.dtype.hasobject:
            raise SerializationError(
                f"array {name!r} is an object array; only numeric arrays are stored."
            )
        self.arrays[name] = value
        return name

    def add_blob(self, name: str, data: bytes) -> str:
        """Store opaque bytes (a plugin's own serialisation) as ``blobs/<name>.bin``; returns ``name``."""
        if name in self.arrays or name in self.blobs:
            raise SerializationError(
                f"entry {name!r} written twice; a codec must use unique names."
            )
        self.blobs[name] = bytes(data)
        return name


class EntrySource:
    """Hands a codec the verified arrays and blobs of a file, and remembers which it used."""

    def __init__(
        self, arrays: Mapping[str, npt.NDArray[Any]], blobs: Mapping[str, bytes], where: str
    ) -> None:
        self._arrays, self._blobs, self.where = dict(arrays), dict(blobs), where
        self._used: set[str] = set()

    def array(
        self,
        name: Any,
        *,
        dtype: str | None = None,
        ndim: int | None = None,
        shape: Sequence[int] | None = None,
    ) -> npt.NDArray[Any]:
        """The array ``name``, checked for dtype (e.g. ``"int64"``), rank and shape if given."""
        if not isinstance(name, str) or name not in self._arrays:
            raise SerializationError(
                f"{self.where}: the array {name!r} that the metadata names is missing."
            )
        value = self._arrays[name]
        if dtype is not None and value.dtype != np.dtype(dtype):
            raise SerializationError(
                f"{self.where}: array {name!r} is {value.dtype}, expected {dtype}."
            )
        if ndim is not None and value.ndim != ndim:
            raise SerializationError(
                f"{self.where}: array {name!r} has {value.ndim} axes, expected {ndim}."
            )
        if shape is not None and tuple(value.shape) != tuple(shape):
            raise SerializationError(
                f"{self.where}: array {name!r} has shape {value.shape}, expected {tuple(shape)}."
            )
        self._used.add(f"a:{name}")
        return value

    def blob(self, name: Any) -> bytes:
        """The blob ``name``."""
        if not isinstance(name, str) or name not in self._blobs:
            raise SerializationError(
                f"{self.where}: the blob {name!r} that the metadata names is missing."
            )
        self._used.add(f"b:{name}")
        return self._blobs[name]

    def check_all_used(self) -> None:
        """Refuse files with entries nothing asked for (padding, smuggled data, tampering)."""
        unused = sorted(
            [f"arrays/{n}.npy" for n in self._arrays if f"a:{n}" not in self._used]
            + [f"blobs/{n}.bin" for n in self._blobs if f"b:{n}" not in self._used]
        )
        if unused:
            raise SerializationError(
                f"{self.where} contains unexpected entries {unused[:5]}; the file was not written by "
                "this version of hennframework or was tampered with."
            )


@runtime_checkable
class SchemeCodec(Protocol):
    """What a scheme provides so its objects can be saved and loaded (see the module docstring).

    ``meta`` values are plain JSON (dict/list/str/int/float/bool/None). ``prefix`` is a name prefix
    the codec must put in front of every entry name it creates (letters, digits, ``_ . -``).
    """

    #: The scheme's registered name (as in the ``hennframework.schemes`` entry point).
    scheme_name: str

    def parameters(self, scheme: Any) -> dict[str, Any]:
        """``{"name": ..., "values": {...}}``: the scheme instance's full parameter set."""
        ...

    def make_scheme(self, parameters: Mapping[str, Any], backend: Any) -> Any:
        """A scheme instance for saved ``parameters`` (refuse values it cannot trust)."""
        ...

    def is_secret(self, value: Any) -> bool:
        """True if ``value`` is (or holds) secret key material of this scheme."""
        ...

    def key_id(self, value: Any) -> str | None:
        """The key id of a key or tensor of this scheme (None if it has none)."""
        ...

    def write_tensors(self, tensors: Sequence[Any], sink: EntrySink, prefix: str) -> dict[str, Any]:
        """Store encrypted tensors; returns the metadata to read them back."""
        ...

    def read_tensors(
        self, meta: Mapping[str, Any], source: EntrySource, prefix: str, scheme: Any
    ) -> list[Any]:
        """The tensors stored by :meth:`write_tensors`, bound to ``scheme``."""
        ...

    def write_public_key(self, public: Any, sink: EntrySink, prefix: str) -> dict[str, Any]: ...

    def read_public_key(
        self, meta: Mapping[str, Any], source: EntrySource, prefix: str, scheme: Any
    ) -> Any:
        """The public key; the codec also makes it usable for evaluation in ``scheme``."""
        ...

    def write_secret_key(self, secret: Any, sink: EntrySink, prefix: str) -> dict[str, Any]: ...

    def read_secret_key(
        self, meta: Mapping[str, Any], source: EntrySource, prefix: str, scheme: Any
    ) -> Any: ...

    def write_switch_key(self, key: Any, sink: EntrySink, prefix: str) -> dict[str, Any]: ...

    def read_switch_key(
        self, meta: Mapping[str, Any], source: EntrySource, prefix: str, scheme: Any
    ) -> Any: ...


_CODECS: dict[str, SchemeCodec] = {}
_LOCK = threading.Lock()
_SCHEMES: dict[tuple[str, str, str], Any] = {}


def register_codec(codec: SchemeCodec, *, replace: bool = False) -> None:
    """Make ``codec`` the serialiser of the scheme named ``codec.scheme_name``."""
    name = getattr(codec, "scheme_name", None)
    if not isinstance(name, str) or not name:
        raise InputError("a codec needs a scheme_name (the scheme's registered name)")
    with _LOCK:
        if name in _CODECS and not replace and _CODECS[name] is not codec:
            raise InputError(
                f"a codec for scheme {name!r} is already registered; pass replace=True"
            )
        _CODECS[name] = codec


def registered_codecs() -> dict[str, SchemeCodec]:
    """The codecs known so far (by scheme name)."""
    return dict(_CODECS)


def codec_for(scheme: str | Any) -> SchemeCodec:
    """The codec of a scheme (by name or instance); imports the scheme plugin if needed."""
    name = scheme if isinstance(scheme, str) else getattr(scheme, "name", None)
    if not isinstance(name, str):
        raise SerializationError(f"cannot tell which scheme {scheme!r} belongs to.")
    if name in _CODECS:
        return _CODECS[name]
    from hennframework.registry import get_scheme_class

    try:
        scheme_class = get_scheme_class(name)  # importing the plugin may register its codec
    except UnknownPluginError as exc:
        raise SerializationError(
            f"this file uses the scheme {name!r}, which is not installed here ({exc}). Install "
            "the scheme plugin and try again."
        ) from exc
    if name in _CODECS:
        return _CODECS[name]
    provided = getattr(scheme_class, "serialization_codec", None)
    if provided is not None:
        codec = (
            provided() if callable(provided) and not isinstance(provided, SchemeCodec) else provided
        )
        register_codec(codec, replace=True)
        return codec  # type: ignore[no-any-return]
    raise SerializationError(
        f"the scheme {name!r} has no serialisation codec, so its objects cannot be saved or "
        "loaded. Its plugin must call hennframework.io.register_codec(...) or set "
        "serialization_codec on its scheme class (docs/parties.md, 'Plugin hook')."
    )


def scheme_instance(name: str, parameters: Mapping[str, Any], backend: Any = None) -> Any:
    """One shared scheme instance per (scheme, parameter set, backend) in this process.

    Sharing matters: a scheme instance remembers the public keys registered with it, and every
    tensor loaded for the same key must evaluate through an instance that knows that key.
    """
    from hennframework.registry import get_backend

    backend_obj = get_backend(backend)
    from hennframework.io.container import canonical_json

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
    from hennframework.io.container import canonical_json

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
    checks: list[Callable[[Any], bool]] = [codec.is_secret for codec in _CODECS.values()]
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
        elif dataclasses.is_dataclass(item):
            for fld in dataclasses.fields(item):
                stack.append((getattr(item, fld.name, None), f"{where}.{fld.name}"))
        else:
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
