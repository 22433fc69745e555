"""The serialisation contract between a scheme and hennframework's files, and the codec registry.

The container (:mod:`hennframework.io.container`) knows JSON, ``.npy`` arrays and opaque blobs;
it knows nothing about ciphertexts or keys. A :class:`SchemeCodec` turns one scheme's objects
(encrypted tensors, public/secret/switching keys, parameter sets) into JSON metadata plus named
arrays and blobs, and back. It writes with an :class:`EntrySink` (``add_array(name, array)``,
``add_blob(name, bytes)``, both returning the entry name to store in the metadata) and reads with
an :class:`EntrySource` (``array(name)``, ``blob(name)``). Every entry written must be read back:
a file with entries that no codec consumed is refused as tampered. Loading must never execute
code: no pickle, ``np.load(allow_pickle=False)`` only (the container does that), and plugin
deserialisers that parse bytes rather than evaluate them.

There is one way to provide a codec: the scheme's package calls :func:`register_codec` when it is
imported. The built-in integer-vector scheme does it in
:mod:`hennframework.schemes.integer_vector`, a plugin in its top-level package (the CKKS plugin in
:mod:`hennframework_ckks`). Importing the scheme is enough, because
:func:`hennframework.io.codecs.codec_for` loads a scheme's entry point before it gives up on a
name it has no codec for.

This module sits below the schemes and below :mod:`hennframework.io`: it imports nothing but the
exceptions, so a scheme can implement and register its codec without depending on the file layer.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from hennframework.exceptions import InputError, SerializationError

__all__ = [
    "EntrySink",
    "EntrySource",
    "SchemeCodec",
    "parameter_record",
    "register_codec",
    "registered_codec",
    "registered_codecs",
]


class EntrySink:
    """Collects the arrays and blobs a codec writes, under a name prefix."""

    def __init__(self) -> None:
        self.arrays: dict[str, npt.NDArray[Any]] = {}
        self.blobs: dict[str, bytes] = {}

    def _check_new(self, name: str) -> None:
        if name in self.arrays or name in self.blobs:
            raise SerializationError(
                f"entry {name!r} written twice; a codec must use unique names."
            )

    def add_array(self, name: str, array: Any) -> str:
        """Store ``array`` (numeric dtype) as ``arrays/<name>.npy``; returns ``name``."""
        self._check_new(name)
        value = np.asarray(array)
        if value.dtype.hasobject:
            raise SerializationError(
                f"array {name!r} is an object array; only numeric arrays are stored."
            )
        self.arrays[name] = value
        return name

    def add_blob(self, name: str, data: bytes) -> str:
        """Store opaque bytes (a plugin's own serialisation) as ``blobs/<name>.bin``; returns ``name``."""
        self._check_new(name)
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
        """A scheme instance for saved ``parameters`` (refuse values it cannot trust).

        ``backend`` is an :class:`~hennframework.backend.ArrayBackend` instance, already chosen.
        """
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


def register_codec(codec: SchemeCodec, *, replace: bool = False) -> None:
    """Make ``codec`` the serialiser of the scheme named ``codec.scheme_name``.

    A scheme's package calls this once, when it is imported. Registering another codec for a
    name that has one raises :class:`~hennframework.exceptions.InputError` unless ``replace``.
    """
    name = getattr(codec, "scheme_name", None)
    if not isinstance(name, str) or not name:
        raise InputError("a codec needs a scheme_name (the scheme's registered name)")
    with _LOCK:
        if name in _CODECS and not replace and _CODECS[name] is not codec:
            raise InputError(
                f"a codec for scheme {name!r} is already registered; pass replace=True"
            )
        _CODECS[name] = codec


def registered_codec(name: str) -> SchemeCodec | None:
    """The codec registered for the scheme ``name``, or None (nothing is imported to find one)."""
    return _CODECS.get(name)


def registered_codecs() -> dict[str, SchemeCodec]:
    """The codecs known so far (by scheme name)."""
    return dict(_CODECS)


def parameter_record(
    parameters: Mapping[str, Any], fields: Sequence[str], scheme: str
) -> tuple[str, Mapping[str, Any]]:
    """The ``name`` and ``values`` of a parameter set as a codec wrote them (``parameters()``).

    Checks the shape every codec's ``make_scheme`` needs before reading the values: a string
    name and exactly the fields ``fields``; raises :class:`SerializationError` otherwise.
    """
    name = parameters.get("name")
    values = parameters.get("values")
    if not isinstance(name, str) or not isinstance(values, Mapping) or set(values) != set(fields):
        raise SerializationError(
            f"the file's {scheme} parameter set is incomplete (it needs name and values "
            f"{', '.join(fields)}); the file is corrupted."
        )
    return name, values
