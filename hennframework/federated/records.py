"""Ciphertexts and public keys as Flower records, made from the `.henn` codecs.

What crosses a party boundary in a federated round is exactly what crosses it as files: an
``encrypted-model`` and a ``public-key`` container (docs/parties.md, "File format"). Each travels as
one Flower :class:`~flwr.app.Array` whose ``data`` is the container's bytes (``stype``
:data:`STYPE`): the integer-vector scheme's ciphertexts are integer arrays inside it, CKKS
ciphertexts are SEAL byte strings. Decoding runs the file loaders on those bytes, so a record gets
the same checks as a file: size limits, checksums, the key's fingerprint recomputed from the key,
and models under another key refused before any ciphertext is read. Nothing is pickled.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from flwr.app import Array, ArrayRecord

from hennframework.exceptions import KeyMismatchError, SerializationError
from hennframework.io.bundles import (
    KeyFile,
    load_model,
    load_public_key,
    save_model,
    save_public_key,
)
from hennframework.io.models import ModelBundle

__all__ = [
    "RECORD",
    "STYPE",
    "decode_model",
    "decode_public_key",
    "encode_model",
    "encode_public_key",
    "record_bytes",
]

#: The ``stype`` of an Array that holds a whole ``.henn`` container.
STYPE = "henn-container/v1"
#: The name of the ArrayRecord that carries the containers in a message.
RECORD = "henn"

_T = TypeVar("_T")


def _to_bytes(write: Callable[[Path], object]) -> bytes:
    with tempfile.TemporaryDirectory(prefix="henn-fl-") as folder:
        path = Path(folder) / "record.henn"
        write(path)
        return path.read_bytes()


def _from_bytes(data: bytes, name: str, read: Callable[[Path], _T]) -> _T:
    with tempfile.TemporaryDirectory(prefix="henn-fl-") as folder:
        path = Path(folder) / f"{name}.henn"
        path.write_bytes(data)
        return read(path)


def _array(data: bytes) -> Array:
    return Array(dtype="uint8", shape=(len(data),), stype=STYPE, data=data)


def _payload(record: ArrayRecord, name: str) -> bytes:
    """The container bytes under ``name``, refusing anything but a `.henn` container."""
    if name not in record:
        raise SerializationError(
            f"the Flower message carries no {name!r} record; the other side runs an incompatible "
            "version of hennframework.federated."
        )
    array = record[name]
    if array.stype != STYPE:
        raise SerializationError(
            f"the {name!r} record is of type {array.stype!r}, not a .henn container ({STYPE}); "
            "refused (only .henn containers are read, never pickles or raw arrays)."
        )
    return bytes(array.data)


def encode_model(bundle: ModelBundle) -> Array:
    """An encrypted model as a record entry (refuses plain models: they never leave the owner)."""
    if not bundle.encrypted:
        raise SerializationError(
            "only an encrypted model may be sent to a party; encrypt it first."
        )
    return _array(_to_bytes(lambda path: save_model(path, bundle)))


def decode_model(
    record: ArrayRecord, expect_key: KeyFile, name: str = "model", *, where: str = "the message"
) -> ModelBundle:
    """The encrypted model under ``name``, refused unless it is under ``expect_key``."""
    data = _payload(record, name)
    try:
        return _from_bytes(
            data,
            name,
            lambda path: load_model(
                path,
                kinds=("encrypted-model",),
                scheme=expect_key.scheme,
                expect_key=expect_key,
            ),
        )
    except (KeyMismatchError, SerializationError) as exc:
        raise type(exc)(f"{where}: {exc}") from exc


def encode_public_key(keys: Any, scheme: Any) -> Array:
    """The public key (encryption and evaluation keys) as a record entry; never the secret key."""
    return _array(_to_bytes(lambda path: save_public_key(path, keys, scheme)))


def decode_public_key(
    record: ArrayRecord,
    name: str = "public-key",
    *,
    expected_id: str | None = None,
    where: str = "the message",
) -> KeyFile:
    """The public key under ``name``, its fingerprint recomputed; ``expected_id``: the key id the
    owner published, refused if the key is another one."""
    data = _payload(record, name)
    key = _from_bytes(data, name, lambda path: load_public_key(path))
    if expected_id is not None and key.key_id != expected_id:
        raise KeyMismatchError(
            f"{where}: the public key received is {key.key_id}, but the owner's published key id "
            f"is {expected_id}; refusing to train under a key that is not the owner's."
        )
    return key


def record_bytes(record: ArrayRecord) -> int:
    """Payload bytes of the containers in ``record`` (what the transport carries, before framing)."""
    return sum(len(array.data) for array in record.values())
