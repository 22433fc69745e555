"""The .henn container: round trips, and a refusal (SerializationError) for every kind of bad file."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import stat
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hennframework.cli import main as henn
from hennframework.exceptions import DiskFullError, SerializationError
from hennframework.io import container
from hennframework.io.bundles import save_history
from hennframework.io.container import (
    FORMAT_VERSION,
    Limits,
    canonical_json,
    read_bundle,
    read_manifest,
    write_bundle,
)
from hennframework.nn import History


def _write(path: Path, **kwargs: Any) -> Path:
    arrays = kwargs.pop(
        "arrays", {"a": np.arange(6, dtype=np.int64).reshape(2, 3), "b": np.array([0.5, -1.0])}
    )
    return write_bundle(
        path, kwargs.pop("kind", "ciphertexts"), arrays=arrays, metadata={"x": 1}, **kwargs
    )


def _entries(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _rezip(path: Path, entries: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> None:
    """Write ``entries`` as a new zip at ``path`` (a forger's tool: any content, valid zip)."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


def _resign(entries: dict[str, bytes]) -> dict[str, bytes]:
    """Recompute every checksum after editing entries (what a careful forger would do)."""
    manifest = json.loads(entries["manifest.json"])
    for name, data in entries.items():
        if name != "manifest.json" and name in manifest["entries"]:
            manifest["entries"][name]["sha256"] = hashlib.sha256(data).hexdigest()
            manifest["entries"][name]["size"] = len(data)
    manifest.pop("checksum")
    body = {k: v for k, v in entries.items() if k != "manifest.json"}
    manifest["checksum"] = {
        "algorithm": "sha256",
        "value": container._overall_checksum(manifest, body),
    }
    return {"manifest.json": canonical_json(manifest), **body}


def _snapshot(folder: Path) -> dict[str, tuple[int, float]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}


# ------------------------------------------------------------------------------------------
# round trips
# ------------------------------------------------------------------------------------------
def test_round_trip_and_manifest(tmp_path: Path) -> None:
    path = write_bundle(
        tmp_path / "f.henn",
        "ciphertexts",
        arrays={"a": np.arange(6, dtype=np.int64).reshape(2, 3)},
        blobs={"raw": b"\x00\x01opaque"},
        metadata={"hello": [1, 2.5, "x", None, True]},
        scheme="integer-vector",
        parameter_set={"name": "default", "values": {"w": 2**40}},
        key_id="abc123",
    )
    bundle = read_bundle(path, kinds=("ciphertexts",))
    assert (
        bundle.kind == "ciphertexts"
        and bundle.key_id == "abc123"
        and bundle.scheme == "integer-vector"
    )
    assert bundle.metadata == {"hello": [1, 2.5, "x", None, True]}
    np.testing.assert_array_equal(bundle.arrays["a"], np.arange(6).reshape(2, 3))
    assert bundle.arrays["a"].dtype == np.int64
    assert bundle.blobs["raw"] == b"\x00\x01opaque"
    manifest = bundle.manifest
    assert manifest["format"] == "hennframework" and manifest["format_version"] == FORMAT_VERSION
    assert manifest["created_with"].startswith("hennframework ")
    assert manifest["entries"]["arrays/a.npy"]["dtype"] == "<i8"
    assert manifest["entries"]["arrays/a.npy"]["shape"] == [2, 3]
    assert manifest["checksum"]["algorithm"] == "sha256"
    assert read_manifest(path)["kind"] == "ciphertexts"
    # every entry is stored uncompressed, the manifest first
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    assert infos[0].filename == "manifest.json"
    assert all(info.compress_type == zipfile.ZIP_STORED for info in infos)


@given(
    hnp.arrays(
        dtype=st.sampled_from([np.int64, np.float64, np.int32, np.uint8, np.bool_]),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    )
)
def test_any_numeric_array_round_trips(
    tmp_path_factory: pytest.TempPathFactory, array: np.ndarray
) -> None:
    path = tmp_path_factory.mktemp("rt") / "a.henn"
    write_bundle(path, "ciphertexts", arrays={"x": array})
    loaded = read_bundle(path).arrays["x"]
    assert loaded.dtype == array.dtype and loaded.shape == array.shape
    np.testing.assert_array_equal(loaded, array)


def test_big_endian_arrays_are_stored_little_endian(tmp_path: Path) -> None:
    array = np.arange(4, dtype=">i8")
    path = write_bundle(tmp_path / "f.henn", "ciphertexts", arrays={"x": array})
    loaded = read_bundle(path).arrays["x"]
    assert loaded.dtype.str == "<i8"
    np.testing.assert_array_equal(loaded, np.arange(4))


def test_identical_content_gives_identical_bytes(tmp_path: Path) -> None:
    first = _write(tmp_path / "1.henn").read_bytes()
    second = _write(tmp_path / "2.henn").read_bytes()
    assert first == second


# ------------------------------------------------------------------------------------------
# permissions and atomic writes
# ------------------------------------------------------------------------------------------
@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_private_kinds_are_0600_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        secret = write_bundle(
            tmp_path / "s.henn", "secret-key", arrays={"t": np.ones((2, 1), np.int64)}
        )
        plain = write_bundle(tmp_path / "p.henn", "plain-model", arrays={"w": np.ones(2)})
        public = write_bundle(tmp_path / "pub.henn", "public-key", arrays={"m": np.ones(2)})
    finally:
        os.umask(old)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(plain.stat().st_mode) == 0o600
    assert stat.S_IMODE(public.stat().st_mode) == 0o666 & ~umask


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_overwriting_a_public_file_with_a_secret_one_leaves_0600(tmp_path: Path) -> None:
    target = tmp_path / "key.henn"
    write_bundle(target, "public-key", arrays={"m": np.ones(2)})
    os.chmod(target, 0o644)
    write_bundle(target, "secret-key", arrays={"t": np.ones((1, 1), np.int64)})
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _write(tmp_path / "f.henn")
    before = target.read_bytes()

    def broken(self: zipfile.ZipFile, *args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", broken)
    with pytest.raises(OSError, match="disk full"):
        _write(target, arrays={"a": np.zeros(3)})
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["f.henn"]


def test_writing_into_a_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SerializationError, match="does not exist"):
        _write(tmp_path / "nope" / "f.henn")


def test_writer_refuses_object_arrays_and_bad_names(tmp_path: Path) -> None:
    with pytest.raises(SerializationError, match="object"):
        write_bundle(
            tmp_path / "f.henn", "ciphertexts", arrays={"x": np.array([{"a": 1}], dtype=object)}
        )
    with pytest.raises(SerializationError, match="bad array name"):
        write_bundle(tmp_path / "f.henn", "ciphertexts", arrays={"../evil": np.zeros(1)})
    with pytest.raises(SerializationError, match="unknown file kind"):
        write_bundle(tmp_path / "f.henn", "pickle", arrays={})
    with pytest.raises(SerializationError, match="plain JSON"):
        write_bundle(tmp_path / "f.henn", "ciphertexts", metadata={"x": object()})
    with pytest.raises(SerializationError, match="plain JSON"):
        write_bundle(tmp_path / "f.henn", "ciphertexts", metadata={"x": float("nan")})
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------
# rejections
# ------------------------------------------------------------------------------------------
def _assert_refused(path: Path, match: str, **kwargs: Any) -> None:
    folder = path.parent
    before = _snapshot(folder)
    with pytest.raises(SerializationError, match=match):
        read_bundle(path, **kwargs)
    assert _snapshot(folder) == before  # loading failure touches nothing


@pytest.mark.parametrize("keep", [0, 1, 10, 100, 0.5, -22, -1])
def test_truncated_files_are_refused(tmp_path: Path, keep: float) -> None:
    path = _write(tmp_path / "f.henn")
    data = path.read_bytes()
    cut = (
        int(len(data) * keep)
        if isinstance(keep, float)
        else (keep if keep >= 0 else len(data) + keep)
    )
    path.write_bytes(data[:cut])
    _assert_refused(path, "truncated|corrupted|not a complete")


def test_every_single_byte_flip_is_detected_or_harmless(tmp_path: Path) -> None:
    """A flipped byte is refused, unless it sits in zip bookkeeping that does not change content
    (timestamps, "version made by", file attributes): then the content read is exactly the same."""
    path = _write(tmp_path / "f.henn", blobs={"b": b"opaque bytes"})
    original = path.read_bytes()
    reference = read_bundle(path)
    refused = 0
    for position in range(len(original)):
        damaged = bytearray(original)
        damaged[position] ^= 0x41
        path.write_bytes(bytes(damaged))
        try:
            bundle = read_bundle(path)
        except SerializationError:
            refused += 1
            continue
        assert bundle.manifest == reference.manifest and bundle.blobs == reference.blobs
        assert bundle.arrays.keys() == reference.arrays.keys()
        for name, array in reference.arrays.items():
            np.testing.assert_array_equal(bundle.arrays[name], array)
    assert refused > len(original) // 2


def test_tampered_entry_with_matching_entry_hash_fails_the_overall_checksum(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.henn")
    entries = _entries(path)
    buffer = io.BytesIO()
    np.save(buffer, np.arange(6, dtype=np.int64).reshape(2, 3) + 1, allow_pickle=False)
    entries["arrays/a.npy"] = buffer.getvalue()
    manifest = json.loads(entries["manifest.json"])
    manifest["entries"]["arrays/a.npy"]["sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    entries["manifest.json"] = canonical_json(manifest)
    _rezip(path, entries)
    _assert_refused(path, "overall checksum")


def test_tampered_entry_without_manifest_update_fails_its_sha256(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.henn")
    entries = _entries(path)
    data = bytearray(entries["arrays/a.npy"])
    data[-1] ^= 1
    entries["arrays/a.npy"] = bytes(data)
    _rezip(path, entries)
    _assert_refused(path, "sha256")


def test_tampered_metadata_fails_the_overall_checksum(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.henn", kind="public-key")
    entries = _entries(path)
    manifest = json.loads(entries["manifest.json"])
    manifest["key_id"] = "someone-else"
    entries["manifest.json"] = canonical_json(manifest)
    _rezip(path, entries)
    _assert_refused(path, "overall checksum")


@pytest.mark.parametrize("version", [0, 2, 99, "1", None])
def test_wrong_version_names_found_and_supported(tmp_path: Path, version: Any) -> None:
    path = _write(tmp_path / "f.henn")
    entries = _entries(path)
    manifest = json.loads(entries["manifest.json"])
    manifest["format_version"] = version
    entries["manifest.json"] = canonical_json(manifest)
    _rezip(path, _resign(entries))
    with pytest.raises(SerializationError) as info:
        read_bundle(path)
    assert repr(version) in str(info.value) and "reads version 1" in str(info.value)


def test_other_format_name_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.henn")
    entries = _entries(path)
    manifest = json.loads(entries["manifest.json"])
    manifest["format"] = "something-else"
    entries["manifest.json"] = canonical_json(manifest)
    _rezip(path, _resign(entries))
    _assert_refused(path, "not a hennframework file")


def test_wrong_kind_is_refused_and_a_secret_key_is_named(tmp_path: Path) -> None:
    secret = write_bundle(
        tmp_path / "s.henn", "secret-key", arrays={"t": np.ones((1, 1), np.int64)}
    )
    _assert_refused(
        secret, "holds a secret-key, but a public-key was expected.*SECRET", kinds=("public-key",)
    )
    model = _write(tmp_path / "m.henn", kind="encrypted-model")
    _assert_refused(
        model, "holds a encrypted-model|holds an? encrypted-model", kinds=("switch-key",)
    )


def test_object_dtype_arrays_are_refused_before_any_unpickling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "f.henn")
    entries = _entries(path)
    buffer = io.BytesIO()
    np.save(buffer, np.array([print], dtype=object), allow_pickle=True)  # a pickled callable
    entries["arrays/a.npy"] = buffer.getvalue()
    manifest = json.loads(entries["manifest.json"])
    manifest["entries"]["arrays/a.npy"].update({"dtype": "|O", "shape": [1]})
    entries["manifest.json"] = canonical_json(manifest)
    _rezip(path, _resign(entries))
    import pickle

    def no_unpickling(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the loader tried to unpickle")

    monkeypatch.setattr(pickle, "loads", no_unpickling)
    monkeypatch.setattr(pickle, "load", no_unpickling)
    _assert_refused(path, "pickle|not allowed")


@pytest.mark.parametrize(
    "name", ["evil.py", "arrays/../x.npy", "arrays/a.pkl", "blobs/x.exe", "dir/", "arrays/b c.npy"]
)
def test_unexpected_entries_are_refused(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path / "f.henn")
    entries = _entries(path)
    entries[name] = b"import os; os.system('echo pwned')"
    _rezip(path, entries)
    _assert_refused(path, "unexpected entry|tampered")


def test_undeclared_array_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.henn")
    entries = _entries(path)
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3), allow_pickle=False)
    entries["arrays/extra.npy"] = buffer.getvalue()
    _rezip(path, entries)
    _assert_refused(path, "do not match the manifest")


def test_duplicate_entries_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.henn")
    entries = _entries(path)
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(path, "a") as archive:
        archive.writestr("arrays/a.npy", entries["arrays/a.npy"])
    _assert_refused(path, "duplicate")


def test_compressed_entries_are_refused_no_zip_bombs(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.henn")
    entries = _entries(path)
    entries["arrays/a.npy"] = entries["arrays/a.npy"]
    _rezip(path, entries, compression=zipfile.ZIP_DEFLATED)
    _assert_refused(path, "compressed")


def test_size_limits(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.henn")
    _assert_refused(path, "limit", limits=Limits(max_file_bytes=100))
    _assert_refused(path, "entries, above the limit", limits=Limits(max_entries=2))
    _assert_refused(path, "manifest is larger", limits=Limits(max_manifest_bytes=10))


def test_array_header_must_match_the_manifest(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.henn")
    entries = _entries(path)
    manifest = json.loads(entries["manifest.json"])
    manifest["entries"]["arrays/a.npy"]["shape"] = [3, 2]
    entries["manifest.json"] = canonical_json(manifest)
    _rezip(path, _resign(entries))
    _assert_refused(path, "manifest says")


def test_array_with_missing_data_bytes_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.henn")
    entries = _entries(path)
    entries["arrays/a.npy"] = entries["arrays/a.npy"][:-8]
    _rezip(path, _resign(entries))
    _assert_refused(path, "truncated or corrupted")


@pytest.mark.parametrize(
    "manifest_text",
    [
        b'{"format": "hennframework", "format": "x"}',  # duplicate keys
        b'{"format": NaN}',
        b'{"format": 1e999}',  # infinity without the word
        b"[1, 2]",
        b"\xff\xfe not json",
    ],
)
def test_malformed_manifests_are_refused(tmp_path: Path, manifest_text: bytes) -> None:
    path = tmp_path / "f.henn"
    _rezip(path, {"manifest.json": manifest_text})
    _assert_refused(path, "manifest|not a hennframework")


def test_other_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.henn").write_bytes(b"")
    _assert_refused(tmp_path / "empty.henn", "not a complete")
    (tmp_path / "random.henn").write_bytes(os.urandom(4096))
    _assert_refused(tmp_path / "random.henn", "not a complete")
    (tmp_path / "folder.henn").mkdir()
    _assert_refused(tmp_path / "folder.henn", "folder")
    with pytest.raises(SerializationError, match="does not exist"):
        read_bundle(tmp_path / "missing.henn")
    plain_zip = tmp_path / "other.zip"
    _rezip(plain_zip, {"hello.txt": b"hi"})
    _assert_refused(plain_zip, "unexpected entry|no manifest")


# ------------------------------------------------------------------------------------------
# layout: nothing before, between or after the entries
# ------------------------------------------------------------------------------------------
def _peak_bytes(action: Any) -> int:
    tracemalloc.start()
    try:
        action()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("garbage", [b"X", b"PK\x03\x04", b"#!/bin/sh\nexit 0\n" * 10])
def test_leading_bytes_are_refused(tmp_path: Path, garbage: bytes) -> None:
    """The zip module skips bytes before the first entry (self-extracting archives); we refuse."""
    path = _write(tmp_path / "f.henn")
    path.write_bytes(garbage + path.read_bytes())
    _assert_refused(path, "not a complete hennframework file")


def test_trailing_bytes_and_comments_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.henn")
    original = path.read_bytes()
    path.write_bytes(original + b"\0" * 7)
    _assert_refused(path, "end record")
    with zipfile.ZipFile(io.BytesIO(original)) as source:
        entries = {info.filename: source.read(info) for info in source.infolist()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        archive.comment = b"hello"
    path.write_bytes(buffer.getvalue())
    _assert_refused(path, "end record")


def test_bytes_hidden_between_entries_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.henn")
    data = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        infos = sorted(archive.infolist(), key=lambda info: info.header_offset)
    cut = infos[1].header_offset  # push every later entry and the directory 5 bytes back
    forged = bytearray(data[:cut] + b"hide!" + data[cut:])
    eocd = len(forged) - 22
    cd_offset = int.from_bytes(forged[eocd + 16 : eocd + 20], "little") + 5
    forged[eocd + 16 : eocd + 20] = cd_offset.to_bytes(4, "little")
    position = cd_offset
    while forged[position : position + 4] == b"PK\x01\x02":
        name_length = int.from_bytes(forged[position + 28 : position + 30], "little")
        extra_length = int.from_bytes(forged[position + 30 : position + 32], "little")
        comment_length = int.from_bytes(forged[position + 32 : position + 34], "little")
        offset = int.from_bytes(forged[position + 42 : position + 46], "little")
        if offset >= cut:
            forged[position + 42 : position + 46] = (offset + 5).to_bytes(4, "little")
        position += 46 + name_length + extra_length + comment_length
    path.write_bytes(bytes(forged))
    with zipfile.ZipFile(path) as archive:  # a valid zip for the zip module...
        assert archive.testzip() is None
    _assert_refused(path, "unexpected bytes")  # ...but not a hennframework file


def test_the_manifest_must_come_first(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.henn")
    entries = _entries(path)
    manifest = entries.pop("manifest.json")
    _rezip(path, {**entries, "manifest.json": manifest})
    _assert_refused(path, "not the first entry")


# ------------------------------------------------------------------------------------------
# hostile manifests: bounded memory, no recursion, every field's type checked
# ------------------------------------------------------------------------------------------
def test_a_60_mb_manifest_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "f.henn"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(container._zip_info("manifest.json"), b"[" + b"0," * (30 << 20) + b"0]")

    def read() -> None:
        _assert_refused(path, "manifest is larger than 16,777,216 bytes")

    assert _peak_bytes(read) < 4 << 20  # about 1.5 GB when it used to be parsed


def test_too_many_json_values_are_refused_before_parsing(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.henn")
    entries = _entries(path)
    text = entries["manifest.json"].replace(
        b'"metadata":{', b'"metadata":{"h":[' + b"{}," * 1_100_000 + b"{}],", 1
    )
    _rezip(path, {**entries, "manifest.json": text})
    assert _peak_bytes(lambda: _assert_refused(path, "JSON values, above the limit")) < 16 << 20


@pytest.mark.parametrize("depth", [65, 2_000, 200_000])
def test_deep_nesting_is_a_serialization_error_not_a_recursion_error(
    tmp_path: Path, depth: int
) -> None:
    path = _write(tmp_path / "f.henn")
    entries = _entries(path)
    text = entries["manifest.json"].replace(
        b'"metadata":{', b'"metadata":{"d":' + b"[" * depth + b"]" * depth + b",", 1
    )
    _rezip(path, {**entries, "manifest.json": text})
    _assert_refused(path, "nested")


def _forge_manifest(path: Path, edit: Any, *, resign: bool = True) -> None:
    entries = _entries(path)
    manifest = json.loads(entries["manifest.json"])
    edit(manifest)
    entries["manifest.json"] = canonical_json(manifest)
    _rezip(path, _resign(entries) if resign else entries)


BAD_FIELDS: list[tuple[str, Any, str]] = [
    ("kind", ["secret-key"], "unknown kind"),
    ("kind", {"a": 1}, "unknown kind"),
    ("format_version", True, "format version True"),
    ("format_version", 1.0, "format version 1.0"),
    ("created_with", ["x"], "created_with must be a short string"),
    ("scheme", ["integer-vector"], "scheme must be a scheme name"),
    ("scheme", "../../etc", "scheme must be a scheme name"),
    ("parameter_set", [1], "parameter_set must be a JSON object"),
    ("key_id", {"id": 1}, "key_id must be a short string"),
    ("key_id", "", "key_id must be a short string"),
    ("metadata", [1, 2], "metadata must be a JSON object"),
    ("metadata", "x", "metadata must be a JSON object"),
    ("entries", [], "entries must be a JSON object"),
    ("checksum", "abc", "checksum must be"),
    ("checksum", {"algorithm": "md5", "value": "0" * 64}, "checksum must be"),
]


@pytest.mark.parametrize(("field", "value", "match"), BAD_FIELDS)
def test_every_container_field_has_its_type(
    tmp_path: Path, field: str, value: Any, match: str
) -> None:
    path = _write(tmp_path / "f.henn")
    resign = field not in ("checksum", "entries")  # re-signing would repair or need them
    _forge_manifest(path, lambda manifest: manifest.__setitem__(field, value), resign=resign)
    _assert_refused(path, match)
    with pytest.raises(SerializationError, match=match):
        read_manifest(path)


BAD_SPECS: list[tuple[Any, str]] = [
    ([1], "must be an object with exactly"),
    ({"sha256": "0" * 64, "size": 1}, "must be an object with exactly"),  # keys missing
    ({"size": "²"}, "malformed size"),
    ({"size": -1}, "malformed size"),
    ({"size": True}, "malformed size"),
    ({"sha256": 5}, "malformed sha256"),
    ({"dtype": "|O"}, "not allowed"),
    ({"dtype": ["<i8"]}, "not allowed"),
    ({"shape": "2,3"}, "malformed shape"),
    ({"shape": [2, -3]}, "malformed shape"),
    ({"shape": [2, True]}, "malformed shape"),
    ({"shape": [1 << 40, 1 << 40]}, "needs"),  # a product that would wrap in int64
    ({"shape": [1] * 33}, "malformed shape"),
]


@pytest.mark.parametrize(("change", "match"), BAD_SPECS)
def test_every_entry_field_has_its_type(tmp_path: Path, change: Any, match: str) -> None:
    path = _write(tmp_path / "f.henn")

    def edit(manifest: dict[str, Any]) -> None:
        spec = manifest["entries"]["arrays/a.npy"]
        if isinstance(change, dict) and len(change) == 1:
            spec.update(change)
        else:
            manifest["entries"]["arrays/a.npy"] = change

    entries = _entries(path)
    manifest = json.loads(entries["manifest.json"])
    edit(manifest)
    entries["manifest.json"] = canonical_json(manifest)
    body = {k: v for k, v in entries.items() if k != "manifest.json"}
    manifest.pop("checksum")
    manifest["checksum"] = {
        "algorithm": "sha256",
        "value": container._overall_checksum(manifest, body),
    }
    _rezip(path, {"manifest.json": canonical_json(manifest), **body})
    _assert_refused(path, match)


def test_the_writer_never_writes_what_the_reader_refuses(tmp_path: Path) -> None:
    deep: Any = []
    for _ in range(70):
        deep = [deep]
    with pytest.raises(SerializationError, match=r"would not load back.*nested"):
        write_bundle(tmp_path / "f.henn", "history", metadata={"deep": deep})
    with pytest.raises(SerializationError, match=r"would not load back.*key_id"):
        write_bundle(tmp_path / "f.henn", "history", key_id="")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------
# files that are not files, full disks
# ------------------------------------------------------------------------------------------
@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_link_to_dev_zero_fails_at_once_with_small_memory(tmp_path: Path) -> None:
    (tmp_path / "model.henn").symlink_to("/dev/zero")
    assert _peak_bytes(lambda: _assert_refused(tmp_path / "model.henn", "symbolic link")) < 1 << 20
    with pytest.raises(SerializationError, match="character device"):
        read_bundle("/dev/zero")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_fails_at_once(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "f.henn")
    _assert_refused(tmp_path / "f.henn", "named pipe")  # would block forever if opened plainly


def test_a_full_disk_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _write(tmp_path / "f.henn")
    before = target.read_bytes()

    def full(self: zipfile.ZipFile, *args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(zipfile.ZipFile, "writestr", full)
    with pytest.raises(DiskFullError, match=r"^disk full: could not write .*f\.henn \("):
        _write(target, arrays={"a": np.zeros(50_000)})
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["f.henn"]


# ------------------------------------------------------------------------------------------
# henn inspect
# ------------------------------------------------------------------------------------------
def _inspect(*paths: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = henn(["inspect", *map(str, paths)])
    return status, out.getvalue(), err.getvalue()


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_inspect_dev_zero_fails_at_once(tmp_path: Path) -> None:
    (tmp_path / "zero.henn").symlink_to("/dev/zero")
    result: dict[str, Any] = {}
    peak = _peak_bytes(
        lambda: result.update(
            zip(("status", "out", "err"), _inspect(Path("/dev/zero")), strict=True)
        )
    )
    assert result["status"] == 1 and peak < 8 << 20  # it reached 9.5 GB in 15 s
    assert "character device, not a regular file" in result["err"]
    status, _, err = _inspect(tmp_path / "zero.henn")
    assert status == 1 and "symbolic link" in err and "internal error" not in err


def test_inspect_never_says_ok_for_a_file_the_loaders_refuse(tmp_path: Path) -> None:
    path = write_bundle(
        tmp_path / "k.henn",
        "public-key",
        metadata={"public_key": ["not", "a", "key"]},
        scheme="integer-vector",
        parameter_set={"name": "default", "values": {}},
        key_id="k1",
    )
    status, out, err = _inspect(path)
    assert status == 1 and "checksum ok" not in out
    assert err.startswith("henn: error: ") and "internal error" not in err
    good = save_history(tmp_path / "c.henn", History())
    status, out, err = _inspect(good)
    assert status == 0 and "checksum ok, contents ok" in out, err


def test_zip64_end_records_are_understood(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files over 4 GiB get zip64 end records; force them on a small file to check the reader."""
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)  # more than 1 entry: zip64 records
    path = _write(tmp_path / "f.henn")
    monkeypatch.undo()
    data = path.read_bytes()
    assert b"PK\x06\x06" in data[-100:] and b"PK\x06\x07" in data[-100:]
    bundle = read_bundle(path)
    np.testing.assert_array_equal(bundle.arrays["a"], np.arange(6).reshape(2, 3))
    locator = data.rindex(b"PK\x06\x07")
    path.write_bytes(data[: locator - 56] + b"!" + data[locator - 56 :])  # a byte before them
    _assert_refused(path, "not a complete hennframework file")
