"""Writing and reading files safely in folders that other people can write to.

The refresh exchange folder is shared with a party, and a ``.henn`` file may come from anyone, so
every file that hennframework (or a plugin) writes or reads goes through this module:

* :func:`atomic_write` / :func:`write_file`: the bytes go to a new file with a random name
  (``secrets.token_hex``) in the target's folder, created exclusively (``O_CREAT | O_EXCL |
  O_NOFOLLOW``, mode 0600 until the final mode is set with ``fchmod``), are flushed to disk
  (``fsync``) and renamed over the target, and the folder is synced. ``rename`` replaces a
  symbolic link at the target rather than following it, so a link planted in a shared folder
  cannot redirect a write to another file (``secret.henn``, for example); the random temporary
  name cannot be planted in advance. On any failure the temporary file is removed and the old
  target is left as it was; a full disk (``ENOSPC``/``EDQUOT``) raises
  :class:`~hennframework.exceptions.DiskFullError`, which says so plainly.
* :func:`open_for_reading` / :func:`read_file`: the file is opened with ``O_NOFOLLOW |
  O_NONBLOCK``, ``fstat`` of that descriptor must say "regular file" (so a FIFO cannot block the
  reader and ``/dev/zero`` cannot exhaust its memory), the size limit is checked before anything
  is read, and all reads go through that descriptor and stop at the size ``fstat`` reported.
  Failures raise :class:`~hennframework.exceptions.SerializationError`.

Symbolic links are refused when reading for the same reason: a link is how a planted file points
at a device or at the owner's secret key. Pass the file itself.

This module imports nothing but the exceptions, so scheme plugins can use it without cycles.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from hennframework.exceptions import DiskFullError, SerializationError

__all__ = [
    "atomic_write",
    "current_umask",
    "is_disk_full",
    "open_for_reading",
    "read_file",
    "write_file",
]

PathLike = str | os.PathLike[str]

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_NOCTTY = getattr(os, "O_NOCTTY", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
# renameat/unlinkat/openat relative to the folder's descriptor: a folder swapped for a link
# between our checks and our writes cannot redirect them.
_DIR_FD = (
    os.name == "posix"
    and os.open in os.supports_dir_fd
    and os.rename in os.supports_dir_fd
    and os.unlink in os.supports_dir_fd
)
_DISK_FULL = frozenset(code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if code)


def is_disk_full(exc: BaseException) -> bool:
    """True if ``exc`` is an ``OSError`` saying that the disk or the user's quota is full."""
    return isinstance(exc, OSError) and exc.errno in _DISK_FULL


def current_umask() -> int:
    """The process umask (read from /proc where possible, else by setting and restoring it)."""
    with (
        contextlib.suppress(OSError, ValueError),
        open("/proc/self/status", encoding="ascii", errors="replace") as status,
    ):
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _free_bytes(folder: Path) -> int | None:
    try:
        info = os.statvfs(folder)
    except (OSError, AttributeError):  # no statvfs on some platforms
        return None
    return int(info.f_bavail) * int(info.f_frsize)


def _disk_full(exc: OSError, target: Path, needed: int | None) -> DiskFullError:
    folder = target.parent if str(target.parent) else Path(".")
    free = _free_bytes(folder)
    need = f"{needed:,} bytes needed" if needed else "more space needed"
    have = f", {free:,} bytes free" if free is not None else ""
    error = DiskFullError(
        f"disk full: could not write {target} ({need}{have} in {folder}). Nothing was written "
        "and any previous file of that name is unchanged; free some space or write to another "
        "disk, then run the command again."
    )
    error.errno = exc.errno
    error.filename = str(target)
    return error


def _open_folder(folder: Path, target: Path) -> int | None:
    """A descriptor of ``folder`` (POSIX), after checking that it is a folder."""
    try:
        info = os.stat(folder)
    except FileNotFoundError:
        raise SerializationError(
            f"cannot write {target}: the folder {folder} does not exist; create it first."
        ) from None
    except OSError as exc:
        raise SerializationError(f"cannot write {target}: {folder}: {exc.strerror}.") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise SerializationError(
            f"cannot write {target}: {folder} is not a folder. Give a path inside a folder."
        )
    if not _DIR_FD:
        return None
    try:
        return os.open(folder, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    except OSError as exc:
        raise SerializationError(f"cannot write {target}: {folder}: {exc.strerror}.") from exc


def _temporary_name(name: str) -> str:
    # The target's name (shortened, to stay below NAME_MAX) says what the file is for; 64 random
    # bits make the name impossible to plant in advance.
    return f".{name[:96]}.{secrets.token_hex(8)}.tmp"


@contextlib.contextmanager
def atomic_write(
    path: PathLike,
    *,
    private: bool = False,
    mode: int | None = None,
    durable: bool = True,
    expected_size: int | None = None,
) -> Iterator[BinaryIO]:
    """Yield a binary file whose content replaces ``path`` atomically when the block ends.

    ``private`` creates the file with mode 0600 (checked, whatever the umask); otherwise ``mode``
    (default ``0o666 & ~umask``). ``durable=False`` skips the ``fsync`` calls (for scratch files
    that never outlive the process). ``expected_size`` is only for the "disk full" message.
    If the block raises, nothing at ``path`` changes and no temporary file is left.
    """
    target = Path(path)
    if not target.name or target.name in (".", ".."):
        raise SerializationError(f"cannot write {target}: give a file name, not a folder.")
    with contextlib.suppress(OSError):
        if stat.S_ISDIR(os.lstat(target).st_mode):
            raise SerializationError(
                f"{target} is a folder; give a file name (for example {target / 'out.henn'})."
            )
    folder = target.parent if str(target.parent) else Path(".")
    dir_fd = _open_folder(folder, target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC | _O_BINARY
    final_mode = 0o600 if private else (mode if mode is not None else 0o666 & ~current_umask())
    temporary = ""
    fd = -1
    handle: BinaryIO | None = None
    try:
        for _ in range(8):  # a name collision is astronomically unlikely; retry anyway
            temporary = _temporary_name(target.name)
            try:
                fd = (
                    os.open(temporary, flags, 0o600, dir_fd=dir_fd)
                    if dir_fd is not None
                    else os.open(folder / temporary, flags, 0o600)
                )
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - eight collisions of 64-bit random names
            raise SerializationError(f"cannot create a temporary file in {folder}.")
        handle = os.fdopen(fd, "wb")
        fd = -1
        with contextlib.suppress(OSError, AttributeError, NotImplementedError):  # no fchmod
            os.fchmod(handle.fileno(), final_mode)
        if private and os.name == "posix":
            actual = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
            if actual & 0o077:
                raise SerializationError(
                    f"could not restrict {target} to its owner (mode {actual:o}); refusing to "
                    "write private material. Check the file system's permission support."
                )
        yield handle
        handle.flush()
        if durable:
            os.fsync(handle.fileno())
        handle.close()
        if dir_fd is not None:
            os.rename(temporary, target.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        else:
            os.replace(folder / temporary, target)
        temporary = ""
        if durable:
            _fsync_folder(folder, dir_fd)
    except BaseException as exc:
        needed = expected_size
        if handle is not None:
            with contextlib.suppress(OSError, ValueError):
                needed = needed or handle.tell()
            with contextlib.suppress(OSError, ValueError):
                handle.close()  # a full disk can fail the final flush too
        elif fd >= 0:
            os.close(fd)
        if temporary:
            with contextlib.suppress(OSError):
                if dir_fd is not None:
                    os.unlink(temporary, dir_fd=dir_fd)
                else:
                    os.unlink(folder / temporary)
        if is_disk_full(exc):
            assert isinstance(exc, OSError)
            raise _disk_full(exc, target, needed) from exc
        if isinstance(exc, IsADirectoryError):
            raise SerializationError(
                f"{target} is a folder; give a file name (for example {target / 'out.henn'})."
            ) from exc
        raise
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


def _fsync_folder(folder: Path, dir_fd: int | None) -> None:
    with contextlib.suppress(OSError):  # not supported on every platform/file system
        if dir_fd is not None:
            os.fsync(dir_fd)
            return
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_file(
    path: PathLike,
    data: bytes | bytearray | memoryview | str,
    *,
    private: bool = False,
    mode: int | None = None,
    durable: bool = True,
) -> Path:
    """Write ``data`` (text is UTF-8) to ``path`` with :func:`atomic_write`; returns the path.

    Binary data is written from its buffer without a copy (large keys are hundreds of MB)."""
    raw = data.encode("utf-8") if isinstance(data, str) else memoryview(data).cast("B")
    with atomic_write(
        path, private=private, mode=mode, durable=durable, expected_size=len(raw)
    ) as handle:
        handle.write(raw)
    return Path(path)


# ------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------
_TYPE_NAMES = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind_of(mode: int) -> str:
    for check, name in _TYPE_NAMES:
        if check(mode):
            return name
    return "not a regular file"


class _FixedSizeFile(io.RawIOBase):
    """A read-only, seekable view of the first ``size`` bytes of an open file descriptor.

    Whatever happens to the file after ``fstat`` (it grows, a link is swapped in), nothing beyond
    the size that was checked is ever read.
    """

    def __init__(self, fd: int, size: int) -> None:
        super().__init__()
        self._fd, self.size, self._position = fd, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise OSError(errno.EINVAL, "negative seek position")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        count = min(len(buffer), self.size - self._position)
        if count <= 0:
            return 0
        os.lseek(self._fd, self._position, os.SEEK_SET)
        data = os.read(self._fd, count)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        super().close()


def _open_checked(path: Path, max_bytes: int, what: str) -> tuple[int, int]:
    """(descriptor, size) of a regular file of at most ``max_bytes``, or SerializationError."""
    where = str(path)
    flags = os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC | _O_NOCTTY | _O_BINARY
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise SerializationError(f"{where} does not exist; check the path.") from None
    except OSError as exc:
        if os.path.islink(path):
            target = os.path.realpath(path)
            raise SerializationError(
                f"{where} is a symbolic link (to {target}); hennframework does not follow links "
                f"when reading {what}s, because a link planted in a shared folder can point at a "
                f"secret key or a device. Pass the file itself ({target}) if you trust it."
            ) from None
        if exc.errno == errno.ENXIO:  # a socket, or a FIFO on some systems
            raise SerializationError(
                f"{where} is not a regular file (a socket or pipe); refusing to read it as a "
                f"{what}."
            ) from None
        raise SerializationError(f"cannot read {where}: {exc.strerror or exc}.") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SerializationError(
                f"{where} is {_kind_of(info.st_mode)}, not a regular file; refusing to read it "
                f"as a {what}. Pass the path of a {what}."
            )
        if info.st_size > max_bytes:
            raise SerializationError(
                f"{where} is {info.st_size:,} bytes, above the {max_bytes:,}-byte limit for a "
                f"{what}; it is not a {what} written by hennframework, or it is larger than "
                "this reader allows."
            )
    except BaseException:
        os.close(fd)
        raise
    return fd, int(info.st_size)


@contextlib.contextmanager
def open_for_reading(
    path: PathLike, *, max_bytes: int, what: str = "file"
) -> Iterator[tuple[BinaryIO, int]]:
    """Yield (binary file, size) for a regular file of at most ``max_bytes`` (see module docs).

    ``what`` names the file in messages ("hennframework file", "server file"). The file object
    is seekable and reads at most ``size`` bytes, through the descriptor that was checked.
    """
    fd, size = _open_checked(Path(path), max_bytes, what)
    raw = _FixedSizeFile(fd, size)
    reader = io.BufferedReader(raw, buffer_size=1 << 16)
    try:
        yield reader, size
    finally:
        reader.close()


def read_file(path: PathLike, *, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (see :func:`open_for_reading`)."""
    with open_for_reading(path, max_bytes=max_bytes, what=what) as (handle, size):
        try:
            data = handle.read(size)
        except OSError as exc:
            raise SerializationError(f"cannot read {path}: {exc.strerror or exc}.") from exc
    if len(data) != size:
        raise SerializationError(
            f"{path} changed while it was being read ({len(data)} of {size} bytes); try again."
        )
    return data
