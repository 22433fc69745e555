"""The safe-write and safe-read helpers: no links followed, no blocking, bounded memory, no debris."""

from __future__ import annotations

import errno
import io
import os
import stat
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hennframework.exceptions import DiskFullError, SerializationError
from hennframework.io import safe_files
from hennframework.io.safe_files import atomic_write, open_for_reading, read_file, write_file

posix_only = pytest.mark.skipif(os.name != "posix", reason="links, FIFOs and modes are POSIX")


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _peak_bytes(action: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        action()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def _returns_promptly(action: Callable[[], Any]) -> Any:
    """Run ``action`` in a thread; a liveness guard (it must not block forever), not a timing."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = action()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the call blocked"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


# ------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------
@posix_only
@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_modes_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        secret = write_file(tmp_path / "secret", b"s", private=True)
        shared = write_file(tmp_path / "shared", b"p")
    finally:
        os.umask(old)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(shared.stat().st_mode) == 0o666 & ~umask
    assert _names(tmp_path) == ["secret", "shared"]


@posix_only
def test_a_link_at_the_target_is_replaced_never_followed(tmp_path: Path) -> None:
    victim = tmp_path / "secret.henn"
    victim.write_bytes(b"owner's key")
    link = tmp_path / "STOP"
    link.symlink_to(victim)
    write_file(link, "stop\n")
    assert victim.read_bytes() == b"owner's key"
    assert not link.is_symlink() and link.read_text() == "stop\n"


@posix_only
def test_temporary_names_cannot_be_planted(tmp_path: Path) -> None:
    """Links at every name an attacker could predict (pid-based, as before) stay untouched."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"v")
    planted = [tmp_path / f".out.{os.getpid()}.tmp", tmp_path / f".out.{os.getpid() + 1}.tmp"]
    for link in planted:
        link.symlink_to(victim)
    write_file(tmp_path / "out", b"new")
    assert victim.read_bytes() == b"v"
    assert all(link.is_symlink() for link in planted)
    assert (tmp_path / "out").read_bytes() == b"new"


def test_bad_targets_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(SerializationError, match="does not exist; create it"):
        write_file(tmp_path / "missing" / "f", b"x")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(SerializationError, match="is not a folder"):
        write_file(tmp_path / "file" / "f", b"x")
    (tmp_path / "dir").mkdir()
    with pytest.raises(SerializationError, match="is a folder"):
        write_file(tmp_path / "dir", b"x")
    assert _names(tmp_path) == ["dir", "file"]


def test_an_exception_inside_the_block_leaves_nothing(tmp_path: Path) -> None:
    target = write_file(tmp_path / "f", b"old")
    with pytest.raises(KeyError), atomic_write(target) as handle:
        handle.write(b"half")
        raise KeyError("stop")
    assert target.read_bytes() == b"old" and _names(tmp_path) == ["f"]


class _FullDisk(io.RawIOBase):
    """A file descriptor whose disk fills up after ``room`` bytes."""

    def __init__(self, fd: int, room: int) -> None:
        super().__init__()
        self._fd, self._room = fd, room

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def write(self, data: Any) -> int:
        if len(data) > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return os.write(self._fd, data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def fill_disk_after(monkeypatch: pytest.MonkeyPatch, room: int) -> None:
    """Make every file that safe_files opens for writing hit a full disk after ``room`` bytes."""
    monkeypatch.setattr(
        safe_files.os,
        "fdopen",
        lambda fd, mode="r", **kw: io.BufferedWriter(_FullDisk(fd, room), buffer_size=16),
    )


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_a_full_disk_says_so_and_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    target = write_file(tmp_path / "model.henn", b"old content")
    if where == "write":
        fill_disk_after(monkeypatch, 100)
    else:  # delayed allocation: the error comes at fsync

        def fsync(fd: int) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(safe_files.os, "fsync", fsync)
    with pytest.raises(DiskFullError) as info:
        write_file(target, b"n" * 400_000)
    message = str(info.value)
    assert message.startswith("disk full: could not write") and str(target) in message
    assert "400,000 bytes needed" in message and "bytes free" in message
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)
    assert target.read_bytes() == b"old content"
    assert _names(tmp_path) == ["model.henn"]  # no temporary file left behind


# ------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------
def test_reads_regular_files_within_the_limit(tmp_path: Path) -> None:
    path = write_file(tmp_path / "f", b"12345")
    assert read_file(path, max_bytes=5) == b"12345"
    with pytest.raises(SerializationError, match="5 bytes, above the 4-byte limit"):
        read_file(path, max_bytes=4)
    with pytest.raises(SerializationError, match="does not exist"):
        read_file(tmp_path / "nope", max_bytes=5)
    with pytest.raises(SerializationError, match="is a folder"):
        read_file(tmp_path, max_bytes=5)


@posix_only
def test_links_are_not_followed(tmp_path: Path) -> None:
    secret = write_file(tmp_path / "secret.henn", b"secret")
    (tmp_path / "request.henn").symlink_to(secret)
    with pytest.raises(SerializationError, match=r"symbolic link \(to .*secret.henn\)"):
        read_file(tmp_path / "request.henn", max_bytes=100)


@posix_only
@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_devices_are_refused_at_once_with_small_memory(tmp_path: Path) -> None:
    (tmp_path / "zero.henn").symlink_to("/dev/zero")
    with pytest.raises(SerializationError, match="symbolic link"):
        read_file(tmp_path / "zero.henn", max_bytes=1 << 40)

    def read_device() -> None:
        with pytest.raises(SerializationError, match="character device, not a regular file"):
            read_file("/dev/zero", max_bytes=1 << 40)

    assert _peak_bytes(read_device) < 1 << 20


@posix_only
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "1-00000000.request.henn"
    os.mkfifo(fifo)

    def read_fifo() -> None:
        with pytest.raises(SerializationError, match=r"named pipe \(FIFO\)"):
            read_file(fifo, max_bytes=100)

    _returns_promptly(read_fifo)


def test_the_size_limit_is_checked_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big"
    with open(path, "wb") as handle:
        handle.truncate(64 << 20)  # sparse: 64 MiB that cost nothing to make

    def read_big() -> None:
        with pytest.raises(SerializationError, match="above the"):
            read_file(path, max_bytes=1 << 20)

    assert _peak_bytes(read_big) < 1 << 20


def test_nothing_beyond_the_checked_size_is_read(tmp_path: Path) -> None:
    path = write_file(tmp_path / "f", b"0123456789")
    with open_for_reading(path, max_bytes=100) as (handle, size):
        with open(path, "ab") as grower:  # the file grows after it was checked
            grower.write(b"X" * 1000)
        assert size == 10 and handle.read() == b"0123456789"
        handle.seek(-4, io.SEEK_END)
        assert handle.read(100) == b"6789"


def test_write_file_takes_any_byte_buffer(tmp_path: Path) -> None:
    """bytes, bytearray and memoryviews (of any item size) are written byte for byte."""
    import numpy as np

    words = np.arange(5, dtype=np.uint64)
    for index, data in enumerate(
        [b"abc", bytearray(b"abc"), memoryview(b"xabcx")[1:4], memoryview(words), "text"]
    ):
        target = write_file(tmp_path / f"f{index}", data)
        expected = data.encode() if isinstance(data, str) else bytes(data)
        assert target.read_bytes() == expected
