"""The .henn container: round trips, and a refusal (SerializationError) for every kind of bad file."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hennframework.exceptions import SerializationError
from hennframework.io import container
from hennframework.io.container import (
    FORMAT_VERSION,
    Limits,
    canonical_json,
    read_bundle,
    read_manifest,
    write_bundle,
)


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
