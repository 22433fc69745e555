"""The ``.henn`` container: a versioned, checksummed zip of JSON and raw ``.npy`` arrays.

Why a custom container: what crosses a party boundary must load without running code (so no
pickle, and ``np.load(..., allow_pickle=False)``), must say what it is (so a secret key is never
mistaken for a public one), and must fail loudly when damaged. Layout (format version 1):

* a zip archive whose entries are all *stored* (uncompressed), so the file size bounds every
  entry's size and a zip bomb is impossible; the entries follow each other from byte 0 with
  nothing before, between or after them (no archive comment, no data descriptors);
* ``manifest.json`` (first entry): ``format`` ("hennframework"), ``format_version``, ``kind``,
  ``created_with``, ``scheme``, ``parameter_set`` (name and full values), ``key_id``,
  ``metadata`` (kind-specific JSON), ``entries`` (per entry: ``sha256``, ``size`` and, for arrays,
  ``dtype`` and ``shape``) and ``checksum`` (sha256 over the canonical manifest without the
  checksum, then every entry's name, length and bytes in sorted name order);
* ``arrays/<name>.npy``: NumPy arrays (numeric dtypes only, little-endian, C order), written with
  ``allow_pickle=False`` and read with ``allow_pickle=False``;
* ``blobs/<name>.bin``: opaque bytes for scheme plugins whose objects serialise themselves (for
  example TenSEAL's ``.serialize()``); they are checksummed like arrays.

Nothing else may be in the archive. Reading opens the file without following links and only if
it is a regular file (:mod:`hennframework.io.safe_files`), then checks, in order: the size limit;
the zip's layout (end record, central directory and every local header, before the zip module
parses anything: no leading or trailing bytes, no gaps); only the expected entry names; the
manifest's size, JSON nesting depth and number of values *before* it is parsed; it parses (no
duplicate keys, no NaN); the format name and version are supported, the kind is the expected
one; every manifest field has its type (strings, objects, integers where the format says so);
every entry's sha256 and the overall checksum match; every array's header agrees with the
manifest. Any failure raises :class:`~hennframework.exceptions.SerializationError` and nothing is
created or changed.

Writing goes through :func:`hennframework.io.safe_files.atomic_write`: a new file with a random
name in the target's folder, flushed to disk, then renamed over the target, so a crash leaves
either the old file or the new one, never half of one, and a full disk leaves nothing behind
(:class:`~hennframework.exceptions.DiskFullError`). Private kinds (``secret-key``,
``plain-model``) are created with mode 0600 from the start (checked, so no umask can widen it).

The sha256 checksums detect corruption and edits by anyone who does not also rewrite the
manifest; they are not signatures: a party that rewrites the whole file can recompute them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import math
import os
import re
import struct
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
import numpy.typing as npt

import hennframework
from hennframework.exceptions import HennError, SerializationError
from hennframework.io.safe_files import atomic_write, open_for_reading

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "KINDS",
    "PRIVATE_KINDS",
    "SUPPORTED_VERSIONS",
    "Bundle",
    "Limits",
    "read_bundle",
    "read_manifest",
    "untrusted_loader",
    "write_bundle",
]

FORMAT_NAME = "hennframework"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)

#: Every kind of file the format knows.
KINDS = frozenset(
    {
        "public-key",
        "secret-key",
        "ciphertexts",
        "encrypted-model",
        "plain-model",
        "history",
        "switch-key",
        "predictions",
        "refresh-request",
        "refresh-response",
    }
)
#: Kinds written with mode 0600: the secret key, and the owner's plaintext model.
PRIVATE_KINDS = frozenset({"secret-key", "plain-model"})

#: Array dtypes a file may hold (little-endian or byte-sized; never object).
ALLOWED_DTYPES = frozenset({"<i8", "<i4", "<u8", "<f8", "|u1", "|i1", "|b1"})

MANIFEST = "manifest.json"
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
_ARRAY_ENTRY = re.compile(rf"arrays/({_NAME})\.npy")
_BLOB_ENTRY = re.compile(rf"blobs/({_NAME})\.bin")
_ENTRY_NAME = re.compile(_NAME)


@dataclass(frozen=True)
class Limits:
    """Upper bounds checked before anything large is read (defaults suit models of a few GiB).

    The manifest bounds keep the memory that parsing a hostile manifest can take bounded (about
    130 MiB at most with the defaults, measured; a 60 MB manifest is refused before it is read):
    its size, its JSON nesting depth and its number of JSON values (counted as commas and
    opening brackets, before parsing).
    """

    max_file_bytes: int = 8 << 30
    max_manifest_bytes: int = 16 << 20
    max_entries: int = 10_000
    max_manifest_depth: int = 64
    max_manifest_values: int = 1_000_000


DEFAULT_LIMITS = Limits()


@dataclass
class Bundle:
    """A loaded, verified file: its manifest, arrays and blobs (by entry name, without folder)."""

    path: str
    manifest: dict[str, Any]
    arrays: dict[str, npt.NDArray[Any]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])

    @property
    def metadata(self) -> dict[str, Any]:
        value = self.manifest.get("metadata") or {}
        if not isinstance(value, dict):
            raise SerializationError(f"{self.path}: the manifest's metadata is not a JSON object.")
        return value

    @property
    def scheme(self) -> str | None:
        value = self.manifest.get("scheme")
        return value if isinstance(value, str) else None

    @property
    def key_id(self) -> str | None:
        value = self.manifest.get("key_id")
        return value if isinstance(value, str) else None


# ------------------------------------------------------------------------------------------
# JSON helpers
# ------------------------------------------------------------------------------------------
def canonical_json(value: Any) -> bytes:
    """The one byte string a JSON value is hashed as (sorted keys, no spaces, ASCII, no NaN)."""
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
        ).encode("ascii")
    except (TypeError, ValueError) as exc:
        raise SerializationError(
            f"cannot write this file: its metadata is not plain JSON ({exc}). This is a bug in the "
            "caller or the scheme plugin's codec: metadata must be dicts, lists, str, int, float "
            "(finite) and bool only."
        ) from exc


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> None:
    raise ValueError(f"non-standard JSON constant {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses as infinity without passing parse_constant
        raise ValueError(f"number {text[:20]} out of range")
    return value


def _json_depth(value: Any) -> int:
    """The nesting depth of a parsed JSON value (iteratively: no recursion on hostile input)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            stack.extend((sub, depth + 1) for sub in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((sub, depth + 1) for sub in item)
    return deepest


def check_json_budget(data: bytes, where: str, limits: Limits = DEFAULT_LIMITS) -> None:
    """Refuse manifest bytes that would take too much memory or recursion to parse.

    Counts commas and opening brackets (an upper bound on the number of JSON values; commas
    inside strings count too, which only makes the bound stricter) without parsing anything.
    """
    if len(data) > limits.max_manifest_bytes:
        raise SerializationError(
            f"{where}: the manifest is {len(data):,} bytes, larger than the "
            f"{limits.max_manifest_bytes:,}-byte limit; the file was not written by hennframework "
            "or was tampered with (store large data as arrays, not metadata)."
        )
    values = data.count(b",") + data.count(b"[") + data.count(b"{")
    if values > limits.max_manifest_values:
        raise SerializationError(
            f"{where}: the manifest holds about {values:,} JSON values, above the limit of "
            f"{limits.max_manifest_values:,}; the file was not written by hennframework or was "
            "tampered with (store large data as arrays, not metadata)."
        )


def _parse_manifest(data: bytes, where: str, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    check_json_budget(data, where, limits)
    try:
        text = data.decode("utf-8")
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except RecursionError:
        raise SerializationError(
            f"{where}: the manifest's JSON is nested too deeply (more than "
            f"{limits.max_manifest_depth} levels); the file is corrupted or was tampered with."
        ) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise SerializationError(
            f"{where}: the manifest is not valid JSON ({exc}); the file is corrupted. Ask the "
            "sender for a new copy."
        ) from None
    if not isinstance(value, dict):
        raise SerializationError(
            f"{where}: the manifest is not a JSON object; the file is corrupted."
        )
    if _json_depth(value) > limits.max_manifest_depth:
        raise SerializationError(
            f"{where}: the manifest's JSON is nested more than {limits.max_manifest_depth} levels "
            "deep; the file is corrupted or was tampered with."
        )
    return value


# ------------------------------------------------------------------------------------------
# arrays
# ------------------------------------------------------------------------------------------
def _normalise_array(name: str, array: Any) -> npt.NDArray[Any]:
    """A C-ordered, little-endian copy of ``array``; refuses object and other non-numeric dtypes."""
    value = np.asarray(array)
    if value.dtype.hasobject or value.dtype.kind not in "biuf":
        raise SerializationError(
            f"array {name!r} has dtype {value.dtype}, which the format does not store (only "
            "numeric dtypes; never Python objects). Convert it to int64 or float64 first."
        )
    value = np.array(value, order="C")  # (np.ascontiguousarray would turn 0-d into 1-d)
    if value.dtype.byteorder == ">":
        value = value.astype(value.dtype.newbyteorder("<"))
    if value.dtype.str not in ALLOWED_DTYPES:
        raise SerializationError(
            f"array {name!r} has dtype {value.dtype.str}; allowed: {', '.join(sorted(ALLOWED_DTYPES))}."
        )
    return value


def _npy_bytes(array: npt.NDArray[Any]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _load_npy(data: bytes, name: str, declared: Mapping[str, Any], where: str) -> npt.NDArray[Any]:
    """Parse an ``.npy`` entry, checking its header against the manifest before reading data."""
    buffer = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buffer)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(buffer)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(buffer)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except Exception as exc:  # NumPy raises ValueError, TypeError, SyntaxError on odd headers
        raise SerializationError(
            f"{where}: array {name!r} has a malformed header ({exc}); the file is corrupted or "
            "was tampered with."
        ) from None
    if dtype.hasobject or dtype.str not in ALLOWED_DTYPES:
        raise SerializationError(
            f"{where}: array {name!r} has dtype {dtype.str}, which is not allowed (object arrays "
            "would need pickle; only numeric dtypes are accepted). The file was not written by "
            "hennframework or was tampered with."
        )
    if fortran:
        raise SerializationError(
            f"{where}: array {name!r} is Fortran-ordered; only C order is written."
        )
    if list(shape) != declared.get("shape") or dtype.str != declared.get("dtype"):
        raise SerializationError(
            f"{where}: array {name!r} is {dtype.str} {tuple(shape)} but the manifest says "
            f"{declared.get('dtype')} {declared.get('shape')}; the file was tampered with."
        )
    expected = math.prod(int(n) for n in shape) * dtype.itemsize  # Python ints: no wrap-around
    if len(data) - buffer.tell() != expected:
        raise SerializationError(
            f"{where}: array {name!r} holds {len(data) - buffer.tell()} data bytes, "
            f"{expected} expected; the file is truncated or corrupted."
        )
    buffer.seek(0)
    try:
        loaded = np.load(buffer, allow_pickle=False)
    except ValueError as exc:  # pragma: no cover - the checks above catch what np.load would
        raise SerializationError(f"{where}: array {name!r} cannot be read ({exc}).") from None
    return np.asarray(loaded)


# ------------------------------------------------------------------------------------------
# checksums
# ------------------------------------------------------------------------------------------
def _overall_checksum(
    manifest_without_checksum: Mapping[str, Any], entries: Mapping[str, bytes]
) -> str:
    digest = hashlib.sha256()
    digest.update(canonical_json(dict(manifest_without_checksum)))
    for name in sorted(entries):
        data = entries[name]
        digest.update(b"\x00" + name.encode("ascii") + b"\x00" + len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------
def write_bundle(
    path: str | os.PathLike[str],
    kind: str,
    *,
    arrays: Mapping[str, Any] | None = None,
    blobs: Mapping[str, bytes] | None = None,
    metadata: Mapping[str, Any] | None = None,
    scheme: str | None = None,
    parameter_set: Mapping[str, Any] | None = None,
    key_id: str | None = None,
    private: bool | None = None,
) -> Path:
    """Write a ``.henn`` file atomically and return its path.

    ``private`` (default: True for :data:`PRIVATE_KINDS`) creates the file with mode 0600;
    other files get the usual ``0666 & ~umask``.
    """
    if kind not in KINDS:
        raise SerializationError(
            f"unknown file kind {kind!r}; known kinds: {', '.join(sorted(KINDS))}."
        )
    target = Path(path)
    if target.is_dir() and not target.is_symlink():  # a link is replaced, never followed
        raise SerializationError(
            f"{target} is a directory; give a file name (for example {target / 'out.henn'})."
        )
    private = kind in PRIVATE_KINDS if private is None else private
    entries: dict[str, bytes] = {}
    declared: dict[str, dict[str, Any]] = {}
    for name, value in (arrays or {}).items():
        if not _ENTRY_NAME.fullmatch(name):
            raise SerializationError(
                f"bad array name {name!r}: use letters, digits, '_', '.', '-'."
            )
        array = _normalise_array(name, value)
        data = _npy_bytes(array)
        entry = f"arrays/{name}.npy"
        entries[entry] = data
        declared[entry] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "dtype": array.dtype.str,
            "shape": list(array.shape),
        }
    for name, data in (blobs or {}).items():
        if not _ENTRY_NAME.fullmatch(name):
            raise SerializationError(f"bad blob name {name!r}: use letters, digits, '_', '.', '-'.")
        if not isinstance(data, bytes | bytearray | memoryview):
            raise SerializationError(f"blob {name!r} must be bytes, got {type(data).__name__}.")
        raw = bytes(data)
        entry = f"blobs/{name}.bin"
        entries[entry] = raw
        declared[entry] = {"sha256": hashlib.sha256(raw).hexdigest(), "size": len(raw)}
    if len(entries) + 1 > DEFAULT_LIMITS.max_entries:
        raise SerializationError(
            f"this file would have {len(entries) + 1} entries, above the reader's limit of "
            f"{DEFAULT_LIMITS.max_entries}; store fewer, larger arrays."
        )
    manifest: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "created_with": f"hennframework {hennframework.__version__}",
        "scheme": scheme,
        "parameter_set": dict(parameter_set) if parameter_set is not None else None,
        "key_id": key_id,
        "metadata": dict(metadata or {}),
        "entries": declared,
    }
    manifest["checksum"] = {"algorithm": "sha256", "value": _overall_checksum(manifest, entries)}
    manifest_bytes = canonical_json(manifest)
    try:  # never write what the reader would refuse (size, number of values, depth, types)
        _check_manifest(_parse_manifest(manifest_bytes, str(target)), str(target))
    except SerializationError as exc:
        raise SerializationError(
            f"cannot write {target}: it would not load back ({exc}). Keep metadata small and "
            "plain; store large data as arrays."
        ) from None

    expected = len(manifest_bytes) + sum(len(d) for d in entries.values())
    expected += 128 * (len(entries) + 1) + 22  # local and central headers, end record
    with (
        atomic_write(target, private=private, expected_size=expected) as handle,
        zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive,
    ):
        archive.writestr(_zip_info(MANIFEST), manifest_bytes)
        for name in sorted(entries):
            archive.writestr(_zip_info(name), entries[name])
    return target


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # reproducible bytes
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o600 << 16
    return info


# ------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------
def _describe_kinds(kinds: Iterable[str]) -> str:
    names = sorted(kinds)
    return names[0] if len(names) == 1 else " or ".join(names)


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters (values from a hostile file can be huge)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_header(manifest: Mapping[str, Any], where: str, kinds: Iterable[str] | None) -> None:
    if manifest.get("format") != FORMAT_NAME:
        raise SerializationError(
            f"{where} is not a hennframework file (format {_short(manifest.get('format'))})."
        )
    version = manifest.get("format_version")
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
        writer = manifest.get("created_with")
        writer = writer if isinstance(writer, str) and len(writer) <= 100 else "an unknown program"
        raise SerializationError(
            f"{where} has format version {_short(version)}, but this hennframework "
            f"({hennframework.__version__}) reads version {supported} only. It was written by "
            f"{writer}; read it with that version, or ask the sender to write it with a version "
            "that matches yours."
        )
    kind = manifest.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise SerializationError(f"{where} declares an unknown kind {_short(kind)}.")
    wanted = set(kinds) if kinds is not None else None
    if wanted is not None and kind not in wanted:
        hint = ""
        if kind == "secret-key":
            hint = " This is a SECRET key: never give it to another party."
        raise SerializationError(
            f"{where} holds a {kind}, but a {_describe_kinds(wanted)} was expected. Check which "
            f"file you passed.{hint}"
        )


_FIELDS = frozenset(
    {
        "format",
        "format_version",
        "kind",
        "created_with",
        "scheme",
        "parameter_set",
        "key_id",
        "metadata",
        "entries",
        "checksum",
    }
)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SCHEME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_MAX_TEXT = 256
_MAX_RANK = 32


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_manifest(manifest: Mapping[str, Any], where: str) -> None:
    """Every container field has the type and form the format defines (after _check_header)."""

    def bad(message: str) -> SerializationError:
        return SerializationError(
            f"{where}: the manifest's {message}; the file is corrupted or was tampered with."
        )

    unknown = sorted(set(manifest) - _FIELDS)
    missing = sorted(_FIELDS - set(manifest))
    if unknown or missing:
        parts = [f"unknown field(s) {_short(unknown)}"] if unknown else []
        parts += [f"missing field(s) {missing}"] if missing else []
        raise bad(" and ".join(parts))
    created_with = manifest["created_with"]
    if not isinstance(created_with, str) or len(created_with) > _MAX_TEXT:
        raise bad(f"created_with must be a short string, not {_short(created_with)}")
    scheme, parameter_set = manifest["scheme"], manifest["parameter_set"]
    if scheme is not None and not (isinstance(scheme, str) and _SCHEME_NAME.fullmatch(scheme)):
        raise bad(f"scheme must be a scheme name or null, not {_short(scheme)}")
    if parameter_set is not None and not isinstance(parameter_set, dict):
        raise bad(f"parameter_set must be a JSON object or null, not {_short(parameter_set)}")
    if (scheme is None) != (parameter_set is None):
        raise bad("scheme and parameter_set must both be given or both be null")
    key_id = manifest["key_id"]
    if key_id is not None and not (isinstance(key_id, str) and 0 < len(key_id) <= _MAX_TEXT):
        raise bad(f"key_id must be a short string or null, not {_short(key_id)}")
    if not isinstance(manifest["metadata"], dict):
        raise bad(f"metadata must be a JSON object, not {_short(manifest['metadata'])}")
    checksum = manifest["checksum"]
    if (
        not isinstance(checksum, dict)
        or set(checksum) != {"algorithm", "value"}
        or checksum["algorithm"] != "sha256"
        or not isinstance(checksum["value"], str)
        or not _SHA256.fullmatch(checksum["value"])
    ):
        raise bad("checksum must be {'algorithm': 'sha256', 'value': <64 hex digits>}")
    entries = manifest["entries"]
    if not isinstance(entries, dict):
        raise bad(f"entries must be a JSON object, not {_short(entries)}")
    for name, spec in entries.items():
        is_array = bool(_ARRAY_ENTRY.fullmatch(name))
        if not is_array and not _BLOB_ENTRY.fullmatch(name):
            raise bad(f"entry list names {_short(name)}, which is not an array or blob entry")
        fields = {"sha256", "size", "dtype", "shape"} if is_array else {"sha256", "size"}
        if not isinstance(spec, dict) or set(spec) != fields:
            raise bad(f"entry {name!r} must be an object with exactly {sorted(fields)}")
        if not isinstance(spec["sha256"], str) or not _SHA256.fullmatch(spec["sha256"]):
            raise bad(f"entry {name!r} has a malformed sha256 {_short(spec['sha256'])}")
        size = spec["size"]
        if not _is_int(size) or size < 0:
            raise bad(f"entry {name!r} has a malformed size {_short(size)}")
        if is_array:
            dtype, shape = spec["dtype"], spec["shape"]
            if not isinstance(dtype, str) or dtype not in ALLOWED_DTYPES:
                raise bad(f"entry {name!r} has dtype {_short(dtype)}, which is not allowed")
            if (
                not isinstance(shape, list)
                or len(shape) > _MAX_RANK
                or not all(_is_int(n) and n >= 0 for n in shape)
            ):
                raise bad(f"entry {name!r} has a malformed shape {_short(shape)}")
            data_bytes = math.prod(shape) * np.dtype(dtype).itemsize
            if data_bytes > size:
                raise bad(
                    f"entry {name!r} declares shape {_short(shape)}, which needs {data_bytes} "
                    f"bytes, more than its size {size}"
                )


# zip records (PKWARE APPNOTE 4.3): end of central directory, zip64 locator and end record,
# local file header. Python's zipfile writes exactly these for our files.
_EOCD = struct.Struct("<4s4H2LH")
_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_LOCAL = struct.Struct("<4s5H3L2H")
_CENTRAL_BYTES_PER_ENTRY = 512  # 46-byte header + name (< 150) + zip64 extra (< 32), generously


def _incomplete(where: str, why: str) -> SerializationError:
    return SerializationError(
        f"{where} is not a complete hennframework file ({why}): it is truncated, corrupted or "
        "of another type. Ask the sender for a new copy."
    )


def _read_at(handle: Any, offset: int, count: int, where: str) -> bytes:
    handle.seek(offset)
    data: bytes = handle.read(count)
    if len(data) != count:
        raise _incomplete(where, f"it ends before byte {offset + count}")
    return data


def _check_layout(handle: Any, size: int, where: str, limits: Limits) -> tuple[int, int]:
    """(entry count, central directory offset) after checking the zip's end records.

    Done before the zip module parses anything, so a hostile central directory cannot make it
    allocate much, and so bytes before the first entry (which the zip module would skip) or after
    the end record are refused.
    """
    if size < _EOCD.size + _LOCAL.size:
        raise _incomplete(where, f"only {size} bytes")
    if _read_at(handle, 0, 4, where) != b"PK\x03\x04":
        raise _incomplete(where, "it does not start with a zip entry: leading bytes or not a zip")
    (signature, disk, cd_disk, disk_entries, count, cd_size, cd_offset, comment) = _EOCD.unpack(
        _read_at(handle, size - _EOCD.size, _EOCD.size, where)
    )
    if signature != b"PK\x05\x06" or comment != 0:
        raise _incomplete(where, "no zip end record at the very end: truncated or bytes appended")
    end = size - _EOCD.size
    locator_at = end - _LOCATOR.size
    if locator_at >= 0 and _read_at(handle, locator_at, 4, where) == b"PK\x06\x07":
        _, z_disk, z_offset, z_disks = _LOCATOR.unpack(
            _read_at(handle, locator_at, _LOCATOR.size, where)
        )
        record_at = locator_at - _EOCD64.size
        if z_offset != record_at or z_disk != 0 or z_disks != 1 or record_at < 0:
            raise _incomplete(where, "malformed zip64 end records")
        (signature, record_size, _, _, disk, cd_disk, disk_entries, count, cd_size, cd_offset) = (
            _EOCD64.unpack(_read_at(handle, record_at, _EOCD64.size, where))
        )
        if signature != b"PK\x06\x06" or record_size != _EOCD64.size - 12:
            raise _incomplete(where, "malformed zip64 end record")
        end = record_at
    if disk != 0 or cd_disk != 0 or disk_entries != count:
        raise _incomplete(where, "a multi-part zip")
    if count > limits.max_entries:
        raise SerializationError(
            f"{where} has {count} entries, above the limit of {limits.max_entries}."
        )
    if count == 0:
        raise SerializationError(f"{where} has no manifest.json; it is not a hennframework file.")
    if cd_offset + cd_size != end:
        raise _incomplete(where, "bytes between the entries and the zip end record")
    if cd_size > count * _CENTRAL_BYTES_PER_ENTRY:
        raise _incomplete(where, "an oversized zip directory")
    return count, cd_offset


def _check_tiling(handle: Any, infos: list[zipfile.ZipInfo], cd_offset: int, where: str) -> None:
    """The entries follow each other from byte 0 to the central directory: no gaps, no overlap."""
    position = 0
    for info in sorted(infos, key=lambda item: item.header_offset):
        if info.header_offset != position:
            raise _incomplete(where, f"unexpected bytes or overlap at entry {info.filename!r}")
        header = _LOCAL.unpack(_read_at(handle, position, _LOCAL.size, where))
        signature, flags, name_length, extra_length = header[0], header[2], header[9], header[10]
        if signature != b"PK\x03\x04" or flags & 0x08:
            raise _incomplete(where, f"a malformed local header for {info.filename!r}")
        name = _read_at(handle, position + _LOCAL.size, name_length, where)
        if name != info.filename.encode("ascii"):  # names are ASCII (checked before)
            raise _incomplete(where, f"local and central names of {info.filename!r} differ")
        position += _LOCAL.size + name_length + extra_length + info.compress_size
    if position != cd_offset:
        raise _incomplete(where, "unexpected bytes after the last entry")


def _check_entries(
    archive: zipfile.ZipFile, where: str, limits: Limits, file_size: int
) -> list[zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        raise SerializationError(
            f"{where} has {len(infos)} entries, above the limit of {limits.max_entries}."
        )
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        raise SerializationError(f"{where} contains duplicate entries; the file was tampered with.")
    if MANIFEST not in names:
        raise SerializationError(f"{where} has no manifest.json; it is not a hennframework file.")
    total = 0
    for info in infos:
        name = info.filename
        if name != MANIFEST and not (_ARRAY_ENTRY.fullmatch(name) or _BLOB_ENTRY.fullmatch(name)):
            raise SerializationError(
                f"{where} contains an unexpected entry {_short(name)}; only manifest.json, "
                "arrays/*.npy and blobs/*.bin are allowed. The file was not written by "
                "hennframework or was tampered with."
            )
        if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
            raise SerializationError(
                f"{where}: entry {name!r} is compressed; this format stores entries uncompressed "
                "(which rules out zip bombs). The file was not written by hennframework."
            )
        if info.flag_bits & 0x1:
            raise SerializationError(
                f"{where}: entry {name!r} is encrypted (zip encryption); not supported."
            )
        total += info.file_size
    if total > file_size:
        raise SerializationError(
            f"{where} declares {total} bytes of entries in a {file_size}-byte file; it is corrupted."
        )
    if min(infos, key=lambda item: item.header_offset).filename != MANIFEST:
        raise SerializationError(
            f"{where}: manifest.json is not the first entry; the file was not written by "
            "hennframework or was tampered with."
        )
    return infos


@contextlib.contextmanager
def _open_archive(
    path: Path, limits: Limits
) -> Iterator[tuple[zipfile.ZipFile, list[zipfile.ZipInfo], int]]:
    """(archive, its checked entries, file size): opened safely, layout and names checked."""
    where = str(path)
    with open_for_reading(path, max_bytes=limits.max_file_bytes, what="hennframework file") as (
        handle,
        size,
    ):
        _, cd_offset = _check_layout(handle, size, where, limits)
        try:
            archive = zipfile.ZipFile(handle)
        except Exception as exc:  # zipfile raises many types on damaged input
            raise _incomplete(where, str(exc) or type(exc).__name__) from None
        with archive:
            infos = _check_entries(archive, where, limits, size)
            _check_tiling(handle, infos, cd_offset, where)
            yield archive, infos, size


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> bytes:
    try:
        with archive.open(info) as entry:
            data = entry.read(info.file_size + 1)
    except Exception as exc:  # BadZipFile, CRC errors, NotImplementedError, OSError, ...
        raise SerializationError(
            f"{where}: entry {info.filename!r} cannot be read ({exc}); the file is truncated or "
            "corrupted."
        ) from None
    if len(data) != info.file_size:
        raise SerializationError(
            f"{where}: entry {info.filename!r} has the wrong length; the file is corrupted."
        )
    return data


def _read_manifest_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, limits: Limits
) -> dict[str, Any]:
    if info.file_size > limits.max_manifest_bytes:
        raise SerializationError(
            f"{where}: the manifest is larger than {limits.max_manifest_bytes:,} bytes "
            f"({info.file_size:,}); the file was not written by hennframework or was tampered "
            "with. Nothing was read."
        )
    return _parse_manifest(_read_entry(archive, info, where), where, limits)


def read_manifest(
    path: str | os.PathLike[str],
    *,
    kinds: Iterable[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> dict[str, Any]:
    """Only the manifest: layout, format, version, kind and field types checked (entries and
    checksums NOT verified; use :func:`read_bundle` for that)."""
    where = str(path)
    with _open_archive(Path(path), limits) as (archive, infos, _):
        info = next(i for i in infos if i.filename == MANIFEST)
        manifest = _read_manifest_entry(archive, info, where, limits)
    _check_header(manifest, where, kinds)
    _check_manifest(manifest, where)
    return manifest


def read_bundle(
    path: str | os.PathLike[str],
    *,
    kinds: Iterable[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Bundle:
    """Read and fully verify a ``.henn`` file (see the module docstring for the checks)."""
    where = str(path)
    with _open_archive(Path(path), limits) as (archive, infos, _):
        by_name = {info.filename: info for info in infos}
        manifest = _read_manifest_entry(archive, by_name[MANIFEST], where, limits)
        _check_header(manifest, where, kinds)
        _check_manifest(manifest, where)
        declared: dict[str, dict[str, Any]] = manifest["entries"]
        checksum: dict[str, Any] = manifest["checksum"]
        present = set(by_name) - {MANIFEST}
        if set(declared) != present:
            missing = sorted(set(declared) - present)
            extra = sorted(present - set(declared))
            raise SerializationError(
                f"{where}: the entries do not match the manifest (missing {_short(missing)}, "
                f"undeclared {_short(extra)}); the file is truncated or was tampered with."
            )
        entries: dict[str, bytes] = {}
        for name in sorted(present):
            info = by_name[name]
            spec = declared[name]
            if spec["size"] != info.file_size:
                raise SerializationError(
                    f"{where}: entry {name!r} does not have the size the manifest declares."
                )
            data = _read_entry(archive, info, where)
            if hashlib.sha256(data).hexdigest() != spec["sha256"]:
                raise SerializationError(
                    f"{where}: entry {name!r} fails its sha256 check; the file is corrupted or was "
                    "tampered with. Ask the sender for a new copy."
                )
            entries[name] = data
    without = {key: value for key, value in manifest.items() if key != "checksum"}
    if checksum["value"] != _overall_checksum(without, entries):
        raise SerializationError(
            f"{where} fails its overall checksum; the manifest or an entry was changed after "
            "writing (corruption or tampering). Ask the sender for a new copy."
        )
    bundle = Bundle(where, manifest)
    for name, data in entries.items():
        array_match = _ARRAY_ENTRY.fullmatch(name)
        if array_match:
            bundle.arrays[array_match.group(1)] = _load_npy(data, name, declared[name], where)
        else:
            blob_match = _BLOB_ENTRY.fullmatch(name)
            assert blob_match is not None  # checked in _check_entries
            bundle.blobs[blob_match.group(1)] = data
    return bundle


# ------------------------------------------------------------------------------------------
# loaders of files from others
# ------------------------------------------------------------------------------------------
_P = ParamSpec("_P")
_R = TypeVar("_R")

#: What decoding a hostile but well-checksummed manifest can raise where a check is missing.
_DECODING_ERRORS = (
    TypeError,
    ValueError,
    KeyError,
    IndexError,
    AttributeError,
    ArithmeticError,
    RecursionError,
    MemoryError,
)


def untrusted_loader(load: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorate a loader whose first argument is the file's path: malformed content it meets
    becomes a :class:`SerializationError` naming the file, never a ``TypeError`` or the like.

    The container checks everything it knows (layout, checksums, the types of its own fields);
    the kind-specific metadata is checked by the loaders and the scheme codecs. Anyone can
    write a file with valid checksums and any JSON in it, so a check missing there must still
    end in the project's error: this is that backstop. Project errors pass through unchanged.
    """

    @functools.wraps(load)
    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return load(*args, **kwargs)
        except HennError:
            raise
        except _DECODING_ERRORS as exc:
            where = args[0] if args else kwargs.get("path", "the file")
            raise SerializationError(
                f"{where}: its content is malformed ({type(exc).__name__}: "
                f"{_short(str(exc), 120)}); the file is corrupted or was tampered with. Ask the "
                "sender for a new copy (run with --debug to see where it failed)."
            ) from exc

    return guarded
