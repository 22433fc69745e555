"""Tensors as bytes: a self-describing container for ciphertexts crossing a party boundary.

Layout of a file (no pickle anywhere)::

    b"HENNCKKS-TENSORS\\x01"          magic and format version
    uint64 little-endian              length of the JSON header
    JSON header                       key id, parameter set, per tensor: layout, cleanliness,
                                      magnitude bounds (per element, public: one rounded value
                                      per tensor, see tensor.public_bounds; and per ciphertext on
                                      its padding and its error; null: unknown) and the byte length
                                      of each ciphertext
    ciphertexts                       SEAL's serialisation in the compact form of
                                      _seal.compact_seal_bytes (files from earlier versions:
                                      SEAL's own, header + zstd-compressed body; both load)
    SHA-256 of everything above       integrity check (corruption, truncation, tampering)

On load the checksum is verified, the key id must match the receiving key set
(:class:`~hennframework.exceptions.KeyMismatchError` otherwise) and SEAL validates every
ciphertext against the parameter set (:class:`~hennframework.exceptions.SerializationError`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from hennframework.plugin import InputError, KeyMismatchError, SerializationError

from hennframework_ckks._seal import sa, seal_from_bytes, seal_to_bytes
from hennframework_ckks.keys import pack_container, unpack_container
from hennframework_ckks.layout import Layout
from hennframework_ckks.tensor import CKKSTensor, Deferred, _object_array, public_bounds

__all__ = ["tensors_from_bytes", "tensors_to_bytes"]

MAGIC = b"HENNCKKS-TENSORS\x01"
FORMAT = "hennframework-ckks-tensors"


def tensors_to_bytes(tensors: Sequence[Any], *, purpose: str = "tensors") -> bytes:
    """Serialise encrypted tensors of one key set (a refresh request, a model's weights...)."""
    items = [t.materialize() if isinstance(t, Deferred) else t for t in tensors]
    if not items:
        raise InputError("nothing to serialise")
    if any(not isinstance(t, CKKSTensor) for t in items):
        raise InputError("only CKKS tensors can be serialised here")
    key = items[0].key
    if any(t.key_id != key.key_id for t in items):
        raise KeyMismatchError(
            "the tensors belong to different key sets; serialise them separately"
        )
    parts: dict[str, bytes] = {}
    described = []
    for number, tensor in enumerate(items):
        cts = []
        for index, ct in enumerate(tensor.ciphertexts):
            blob = seal_to_bytes(tensor.context.settle(ct, key.relin_keys))
            parts[f"{number}.{index}"] = blob
            cts.append(len(blob))
        described.append(
            {
                "layout": tensor.layout.to_json(),
                "clean": tensor.clean,
                "bounds": _finite(public_bounds(tensor)),
                "garbage": _finite(tensor.garbage),
                "errors": _finite(tensor.errors),
                "ciphertexts": cts,
            }
        )
    header = {
        "format": FORMAT,
        "version": 1,
        "purpose": purpose,
        "key_id": key.key_id,
        "params": key.params.name,
        "tensors": described,
    }
    return pack_container(MAGIC, header, parts)


def tensors_from_bytes(data: bytes, key: Any) -> list[CKKSTensor]:
    """Load tensors serialised by :func:`tensors_to_bytes` for the key set ``key`` (public part)."""
    header, parts = unpack_container(MAGIC, data, "tensor file")
    if header.get("format") != FORMAT or header.get("version") != 1:
        raise SerializationError(
            f"unsupported tensor file format {header.get('format')!r} version {header.get('version')!r}"
        )
    if header["key_id"] != key.key_id:
        raise KeyMismatchError(
            f"the tensors were encrypted under key set {header['key_id']!r}, not {key.key_id!r}; "
            "load them with the matching keys."
        )
    if header["params"] != key.params.name:
        raise SerializationError(
            f"the tensors use parameter set {header['params']!r}, the key uses {key.params.name!r}"
        )
    out = []
    for number, entry in enumerate(header["tensors"]):
        layout = Layout.from_json(entry["layout"])
        count = len(entry["ciphertexts"])
        expected = 1
        for size in layout.grid_shape:
            expected *= size
        if count != expected:
            raise SerializationError("the tensor file's ciphertext count does not match its layout")
        cts = [
            seal_from_bytes(sa.Ciphertext, key.context, parts[f"{number}.{index}"], "ciphertext")
            for index in range(count)
        ]
        out.append(
            CKKSTensor(
                key,
                layout,
                _object_array(layout.grid_shape, cts),
                bool(entry["clean"]),
                _bounds(entry.get("bounds"), math.prod(layout.shape)),
                _bounds(entry.get("garbage"), count),
                _bounds(entry.get("errors"), count),
            )
        )
    return out


def _finite(values: Any) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values.flat]


def _bounds(value: Any, count: int) -> list[float]:
    """The per-ciphertext magnitude bounds of a tensor entry (absent or null: unknown, infinite;
    such a tensor is refused at decryption)."""
    if value is None:
        return [math.inf] * count
    if not isinstance(value, list) or len(value) != count:
        raise SerializationError("the tensor file's magnitude bounds do not match its layout")
    bounds = []
    for bound in value:
        if bound is None:
            bounds.append(math.inf)
        elif isinstance(bound, int | float) and not isinstance(bound, bool) and bound >= 0:
            bounds.append(float(bound))
        else:
            raise SerializationError(f"the tensor file holds a malformed magnitude bound {bound!r}")
    return bounds
