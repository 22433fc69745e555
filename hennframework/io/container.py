"""The ``.henn`` container: a versioned, checksummed zip of JSON and raw ``.npy`` arrays.

Why a custom container: what crosses a party boundary must load without running code (so no
pickle, and ``np.load(..., allow_pickle=False)``), must say what it is (so a secret key is never
mistaken for a public one), and must fail loudly when damaged. Layout (format version 1):

* a zip archive whose entries are all *stored* (uncompressed), so the file size bounds every
  entry's size and a zip bomb is impossible;
* ``manifest.json`` (first entry): ``format`` ("hennframework"), ``format_version``, ``kind``,
  ``created_with``, ``scheme``, ``parameter_set`` (name and full values), ``key_id``,
  ``metadata`` (kind-specific JSON), ``entries`` (per entry: ``sha256``, ``size`` and, for arrays,
  ``dtype`` and ``shape``) and ``checksum`` (sha256 over the canonical manifest without the
  checksum, then every entry's name, length and bytes in sorted name order);
* ``arrays/<name>.npy``: NumPy arrays (numeric dtypes only, little-endian, C order), written with
  ``allow_pickle=False`` and read with ``allow_pickle=False``;
* ``blobs/<name>.bin``: opaque bytes for scheme plugins whose objects serialise themselves (for
  example TenSEAL's ``.serialize()``); they are checksummed like arrays.

Nothing else may be in the archive. Reading checks, in order: it is a zip with only the expected
entry names, the manifest parses (no duplicate keys, no NaN), the format name and version are
supported, the kind is the expected one, the declared sizes are within limits, every entry's
sha256 and the overall checksum match, every array's header agrees with the manifest. Any failure
raises :class:`~hennframework.exceptions.SerializationError` and nothing is created or changed.

Writing goes to a temporary file in the target's directory, is flushed to disk, and then
atomically renamed over the target (``os.replace``): a crash leaves either the old file or the new
one, never half of one. Private kinds (``secret-key``, ``plain-model``) are created with mode
0600 from the start (``os.open(..., 0o600)``; the mode is set again with ``fchmod`` and checked,
so no umask can widen it).

The sha256 checksums detect corruption and edits by anyone who does not also rewrite the
manifest; they are not signatures: a party that rewrites the whole file can recompute them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import stat
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import hennframework
from hennframework.exceptions import SerializationError

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
    """Upper bounds checked before anything large is read (defaults suit models of a few GiB)."""

    max_file_bytes: int = 8 << 30
    max_manifest_bytes: int = 64 << 20
    max_entries: int = 10_000


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


def _parse_manifest(data: bytes, where: str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise SerializationError(
            f"{where}: the manifest is not valid JSON ({exc}); the file is corrupted. Ask the "
            "sender for a new copy."
        ) from None
    if not isinstance(value, dict):
        raise SerializationError(
            f"{where}: the manifest is not a JSON object; the file is corrupted."
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
    except ValueError as exc:
        raise SerializationError(
            f"{where}: array {name!r} has a malformed header ({exc})."
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
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
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
def _current_umask() -> int:
    """The process umask (read from /proc where possible, else by setting and restoring it)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not supported on every platform/file system
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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
    if target.is_dir():
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
    if len(manifest_bytes) > DEFAULT_LIMITS.max_manifest_bytes:
        raise SerializationError(
            f"the manifest would be {len(manifest_bytes)} bytes, above the {DEFAULT_LIMITS.max_manifest_bytes}-byte "
            "limit; store large data as arrays, not metadata."
        )

    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise SerializationError(
            f"cannot write {target}: the folder {directory} does not exist; create it first."
        )
    temporary = directory / f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    flags = (
        os.O_WRONLY
        | os.O_CREAT
        | os.O_EXCL
        | getattr(os, "O_NOFOLLOW", 0)
        | getattr(os, "O_BINARY", 0)
    )
    try:
        fd = os.open(temporary, flags, 0o600)
    except OSError as exc:
        raise SerializationError(f"cannot create a file in {directory}: {exc}.") from exc
    try:
        mode = 0o600 if private else (0o666 & ~_current_umask())
        with contextlib.suppress(OSError, AttributeError):  # no fchmod on some platforms
            os.fchmod(fd, mode)
        if private and os.name == "posix":
            actual = stat.S_IMODE(os.fstat(fd).st_mode)
            if actual & 0o077:
                raise SerializationError(
                    f"could not restrict {target} to its owner (mode {actual:o}); refusing to "
                    "write private material. Check the file system's permission support."
                )
        with os.fdopen(fd, "wb") as handle:
            fd = -1
            with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
                archive.writestr(_zip_info(MANIFEST), manifest_bytes)
                for name in sorted(entries):
                    archive.writestr(_zip_info(name), entries[name])
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)
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


def _check_header(manifest: Mapping[str, Any], where: str, kinds: Iterable[str] | None) -> None:
    if manifest.get("format") != FORMAT_NAME:
        raise SerializationError(
            f"{where} is not a hennframework file (format {manifest.get('format')!r})."
        )
    version = manifest.get("format_version")
    if version not in SUPPORTED_VERSIONS:
        supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
        raise SerializationError(
            f"{where} has format version {version!r}, but this hennframework "
            f"({hennframework.__version__}) reads version {supported} only. It was written by "
            f"{manifest.get('created_with', 'an unknown program')!s}; read it with that version, "
            "or ask the sender to write it with a version that matches yours."
        )
    kind = manifest.get("kind")
    if kind not in KINDS:
        raise SerializationError(f"{where} declares an unknown kind {kind!r}.")
    wanted = set(kinds) if kinds is not None else None
    if wanted is not None and kind not in wanted:
        hint = ""
        if kind == "secret-key":
            hint = " This is a SECRET key: never give it to another party."
        raise SerializationError(
            f"{where} holds a {kind}, but a {_describe_kinds(wanted)} was expected. Check which "
            f"file you passed.{hint}"
        )


def _open_archive(path: Path, limits: Limits) -> tuple[zipfile.ZipFile, Any]:
    where = str(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise SerializationError(f"{where} does not exist; check the path.") from None
    except OSError as exc:
        raise SerializationError(f"cannot read {where}: {exc}.") from exc
    if path.is_dir():
        raise SerializationError(f"{where} is a folder, not a .henn file.")
    if size > limits.max_file_bytes:
        raise SerializationError(
            f"{where} is {size} bytes, above the {limits.max_file_bytes}-byte limit; raise "
            "Limits.max_file_bytes if you trust it."
        )
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise SerializationError(f"cannot read {where}: {exc}.") from exc
    try:
        archive = zipfile.ZipFile(handle)
    except Exception as exc:  # zipfile raises many types on damaged input (NotImplementedError too)
        handle.close()
        raise SerializationError(
            f"{where} is not a complete hennframework file ({exc}): it is truncated, corrupted or "
            "of another type. Ask the sender for a new copy."
        ) from None
    return archive, handle


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
                f"{where} contains an unexpected entry {name!r}; only manifest.json, arrays/*.npy "
                "and blobs/*.bin are allowed. The file was not written by hennframework or was "
                "tampered with."
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
    return infos


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


def read_manifest(
    path: str | os.PathLike[str],
    *,
    kinds: Iterable[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> dict[str, Any]:
    """Only the manifest (format, version and kind checked; entries and checksums NOT verified)."""
    where = str(path)
    archive, handle = _open_archive(Path(path), limits)
    with handle, archive:
        infos = _check_entries(archive, where, limits, Path(path).stat().st_size)
        info = next(i for i in infos if i.filename == MANIFEST)
        if info.file_size > limits.max_manifest_bytes:
            raise SerializationError(
                f"{where}: the manifest is larger than {limits.max_manifest_bytes} bytes."
            )
        manifest = _parse_manifest(_read_entry(archive, info, where), where)
    _check_header(manifest, where, kinds)
    return manifest


def read_bundle(
    path: str | os.PathLike[str],
    *,
    kinds: Iterable[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Bundle:
    """Read and fully verify a ``.henn`` file (see the module docstring for the checks)."""
    where = str(path)
    file_path = Path(path)
    archive, handle = _open_archive(file_path, limits)
    with handle, archive:
        infos = _check_entries(archive, where, limits, file_path.stat().st_size)
        by_name = {info.filename: info for info in infos}
        manifest_info = by_name[MANIFEST]
        if manifest_info.file_size > limits.max_manifest_bytes:
            raise SerializationError(
                f"{where}: the manifest is larger than {limits.max_manifest_bytes} bytes."
            )
        manifest = _parse_manifest(_read_entry(archive, manifest_info, where), where)
        _check_header(manifest, where, kinds)
        declared = manifest.get("entries")
        checksum = manifest.get("checksum")
        if not isinstance(declared, dict) or not isinstance(checksum, dict):
            raise SerializationError(
                f"{where}: the manifest lacks its entry list or checksum; the file is corrupted."
            )
        present = set(by_name) - {MANIFEST}
        if set(declared) != present:
            missing = sorted(set(declared) - present)
            extra = sorted(present - set(declared))
            raise SerializationError(
                f"{where}: the entries do not match the manifest (missing {missing}, undeclared "
                f"{extra}); the file is truncated or was tampered with."
            )
        entries: dict[str, bytes] = {}
        for name in sorted(present):
            info = by_name[name]
            spec = declared[name]
            if not isinstance(spec, dict) or spec.get("size") != info.file_size:
                raise SerializationError(
                    f"{where}: entry {name!r} does not have the size the manifest declares."
                )
            data = _read_entry(archive, info, where)
            if hashlib.sha256(data).hexdigest() != spec.get("sha256"):
                raise SerializationError(
                    f"{where}: entry {name!r} fails its sha256 check; the file is corrupted or was "
                    "tampered with. Ask the sender for a new copy."
                )
            entries[name] = data
    without = {key: value for key, value in manifest.items() if key != "checksum"}
    if checksum.get("algorithm") != "sha256" or checksum.get("value") != _overall_checksum(
        without, entries
    ):
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
