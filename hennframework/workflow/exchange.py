"""The file-based refresh exchange between a training party and the key owner.

Encrypted training eventually exhausts the weights' noise budget; only the key holder can give
them a fresh one (decrypt and re-encrypt). When the party and the owner share nothing but a
folder, this module is the protocol (``hennframework-refresh/1``):

1. The party writes ``<id>.request.henn`` into the exchange folder: a ``refresh-request`` file
   holding the encrypted tensors (metadata: ``protocol``, ``request_id``, ``names``). ``<id>`` is
   ``<time in ns, hex>-<8 random hex digits>``. The file appears atomically (written under a
   random dot-name, then renamed), so the owner never reads half of it.
2. The owner (``henn serve-refresh``) picks requests up in name order, checks that every tensor
   is under its key, and writes ``<id>.response.henn``: a ``refresh-response`` file with metadata
   ``status`` ``"ok"`` and fresh encryptions of the same values under the same names, or
   ``status`` ``"error"`` and a ``message`` (no tensors). Then it deletes the request.
3. The party waits for the response (up to its timeout), checks it (request id, names, shapes,
   key), deletes it and trains on. If no response comes in time it deletes its request and stops
   cleanly (the model is saved, still decryptable, and marked as needing a refresh).

While it serves, the owner keeps ``server.json`` in the folder (protocol, key id, process id),
so a party can tell at once that the wrong key holder is listening. The owner stops when an
entry named ``STOP`` appears (``henn serve-refresh --stop``), after ``idle_timeout`` seconds
without a request, after ``timeout`` seconds in all, or after ``max_requests`` requests.

The folder is shared, so whoever else can write to it is treated as hostile: every file is
written through :mod:`hennframework.io.safe_files` (random temporary names, exclusive creation,
rename over the target: a symbolic link planted at ``STOP``, ``server.json`` or a response name
is replaced, never followed) and read through it (no links followed, regular files only, sizes
checked first). Entries that are not regular files (links, FIFOs, folders, devices) are skipped
with a warning and never block the server; a request that cannot be read gets an error response.

What the parties learn: the party gets ciphertexts only. The owner learns the model's weights at
every refresh, and so how they changed since the last one - which says something about the
party's data (as the trained model itself does). A secure scheme is needed for the ciphertexts
to hide anything (see docs/parties.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hennframework.exceptions import (
    DiskFullError,
    HennError,
    KeyMismatchError,
    NoiseBudgetExhaustedError,
    SerializationError,
)
from hennframework.io.bundles import KeyFile, load_ciphertexts, save_ciphertexts
from hennframework.io.codecs import codec_for
from hennframework.io.container import read_manifest, write_bundle
from hennframework.io.safe_files import read_file, write_file

__all__ = [
    "PROTOCOL",
    "FileRefresher",
    "RefreshServer",
    "ServeSummary",
    "request_stop",
    "serve_refresh",
]

PROTOCOL = "hennframework-refresh/1"
_REQUEST = re.compile(r"([0-9a-f]{1,20}-[0-9a-f]{8})\.request\.henn")
STOP_FILE = "STOP"
SERVER_FILE = "server.json"
_SERVER_FILE_BYTES = 64 << 10


def _new_request_id() -> str:
    return f"{time.time_ns():x}-{os.urandom(4).hex()}"


def _server_info(exchange: Path) -> dict[str, Any] | None:
    """The owner's ``server.json``, or None if there is none or it is not a small JSON object."""
    try:
        data = read_file(exchange / SERVER_FILE, max_bytes=_SERVER_FILE_BYTES, what="server file")
        info = json.loads(data.decode("utf-8"))
    except (SerializationError, ValueError, RecursionError):
        return None
    return info if isinstance(info, dict) else None


def _exists(path: Path) -> bool:
    """Whether anything (a link or a FIFO included) has this name; never follows a link."""
    return os.path.lexists(path)


class FileRefresher:
    """Party side: a refresh provider (``Refresher``) that asks the owner through a folder.

    Raises :class:`NoiseBudgetExhaustedError` when the owner does not answer within ``timeout``
    seconds (the training loop then stops cleanly), :class:`KeyMismatchError` when the owner
    serving the folder holds another key, and ``HennError`` subclasses for refused requests.
    """

    def __init__(
        self,
        exchange: str | os.PathLike[str],
        *,
        scheme: Any,
        key_id: str,
        timeout: float = 600.0,
        poll: float = 0.02,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self.exchange = Path(exchange)
        if not self.exchange.is_dir():
            raise SerializationError(
                f"the exchange folder {self.exchange} does not exist; create it (the owner's "
                "`henn serve-refresh --exchange` must use the same folder)."
            )
        self.scheme, self.key_id, self.timeout, self.poll, self.on_wait = (
            scheme,
            key_id,
            timeout,
            poll,
            on_wait,
        )
        self.calls = 0
        self.waited = 0.0

    def __call__(self, tensors: list[Any]) -> list[Any]:
        server = _server_info(self.exchange)
        if server is not None and server.get("key_id") not in (None, self.key_id):
            raise KeyMismatchError(
                f"the owner serving {self.exchange} holds key {server.get('key_id')}, but this model "
                f"is under key {self.key_id}; ask the owner of key {self.key_id} to serve refreshes."
            )
        request_id = _new_request_id()
        request = self.exchange / f"{request_id}.request.henn"
        response = self.exchange / f"{request_id}.response.henn"
        names = [f"t{i}" for i in range(len(tensors))]
        save_ciphertexts(
            request,
            dict(zip(names, tensors, strict=True)),
            kind="refresh-request",
            metadata={"protocol": PROTOCOL, "request_id": request_id},
        )
        started = time.monotonic()
        try:
            while not _exists(response):
                waited = time.monotonic() - started
                if waited > self.timeout:
                    raise NoiseBudgetExhaustedError(
                        f"no owner refresh arrived in {self.timeout:.0f} s (request {request.name} in "
                        f"{self.exchange}); is the owner running `henn serve-refresh --exchange "
                        f"{self.exchange}`?"
                    )
                if self.on_wait is not None:
                    self.on_wait(waited)
                time.sleep(self.poll)
        finally:
            with contextlib.suppress(OSError):
                request.unlink()  # the owner deletes it too; whoever is first
        self.waited += time.monotonic() - started
        try:
            manifest = read_manifest(response, kinds=("refresh-response",))
            meta = manifest["metadata"]
            if meta.get("request_id") != request_id or meta.get("protocol") != PROTOCOL:
                raise SerializationError(f"{response} does not answer request {request_id}.")
            if meta.get("status") != "ok":
                message = meta.get("message")
                raise KeyMismatchError(
                    "the owner refused the refresh: "
                    f"{message if isinstance(message, str) else 'no reason given'}"
                )
            fresh, _ = load_ciphertexts(response, kind="refresh-response", scheme=self.scheme)
        finally:
            with contextlib.suppress(OSError):
                response.unlink()
        if list(fresh) != names:
            raise SerializationError(f"{response} holds tensors {list(fresh)}, expected {names}.")
        result = [fresh[name] for name in names]
        codec = codec_for(self.scheme)
        for before, after in zip(tensors, result, strict=True):
            if tuple(before.shape) != tuple(after.shape) or codec.key_id(after) != self.key_id:
                raise SerializationError(
                    f"{response}: a refreshed tensor has the wrong shape or key."
                )
        self.calls += 1
        return result


@dataclass
class ServeSummary:
    """What a refresh server did (``skipped``: folder entries that are not regular files)."""

    requests: int = 0
    refused: int = 0
    tensors: int = 0
    seconds: float = 0.0
    stopped_by: str = ""
    errors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def request_stop(exchange: str | os.PathLike[str]) -> Path:
    """Ask a running server on ``exchange`` to stop (creates ``STOP``, replacing any link)."""
    folder = Path(exchange)
    if not folder.is_dir():
        raise SerializationError(
            f"the exchange folder {folder} does not exist (or is not a folder), so no refresh "
            "server can be running on it; check --exchange."
        )
    return write_file(folder / STOP_FILE, "stop\n")


def _file_type(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


class RefreshServer:
    """Owner side: answers ``<id>.request.henn`` files in a folder (the loop of ``serve_refresh``).

    ``refresh(tensors) -> fresh tensors`` re-encrypts (same order, shapes and key); tensors not
    under ``key_id`` are refused before it is called. Scheme plugins with their own re-encryption
    (the CKKS plugin keeps each tensor's slot packing) pass theirs.
    """

    def __init__(
        self,
        exchange: str | os.PathLike[str],
        *,
        scheme: Any,
        key_id: str,
        refresh: Callable[[list[Any]], list[Any]],
    ) -> None:
        self.folder = Path(exchange)
        if _exists(self.folder) and not self.folder.is_dir():
            raise SerializationError(
                f"the exchange folder {self.folder} is not a folder; give --exchange a folder."
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        self.scheme, self.key_id, self.refresh = scheme, key_id, refresh
        self.summary = ServeSummary()
        self.on_request: Callable[[ServeSummary], None] | None = None
        self._seen: set[str] = set()  # answered or skipped: never handled twice

    # -- one request ---------------------------------------------------------------------------
    def _candidates(self) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(self.folder) as entries:
                found = [
                    e for e in entries if _REQUEST.fullmatch(e.name) and e.name not in self._seen
                ]
        except OSError as exc:
            raise SerializationError(
                f"cannot list the exchange folder {self.folder}: {exc}"
            ) from exc
        return sorted(found, key=lambda entry: entry.name)

    def _skip(self, entry: os.DirEntry[str]) -> None:
        self._seen.add(entry.name)
        try:
            kind = _file_type(entry.stat(follow_symlinks=False).st_mode)
        except OSError:
            return  # gone already
        self.summary.skipped.append(entry.name)
        warnings.warn(
            f"{self.folder / entry.name} is {kind}, not a request file; skipped (requests are "
            "regular files written by `henn train`). Remove it, and check who can write to the "
            "exchange folder.",
            UserWarning,
            stacklevel=3,
        )

    def _next_request(self) -> Path | None:
        for entry in self._candidates():
            try:
                regular = entry.is_file(follow_symlinks=False)
            except OSError:
                continue
            if regular:
                return Path(entry.path)
            self._skip(entry)
        return None

    def _refresh_file(self, request: Path, request_id: str) -> dict[str, Any]:
        tensors, meta = load_ciphertexts(request, kind="refresh-request", scheme=self.scheme)
        if meta.get("protocol") != PROTOCOL or meta.get("request_id") != request_id:
            raise SerializationError(
                f"{request.name} is not a {PROTOCOL} request for id {request_id}."
            )
        codec = codec_for(self.scheme)
        for name, tensor in tensors.items():
            if codec.key_id(tensor) != self.key_id:
                raise KeyMismatchError(
                    f"tensor {name} is under key {codec.key_id(tensor)}, but this owner holds key "
                    f"{self.key_id}; send it to the owner of that key."
                )
        names = list(tensors)
        fresh = self.refresh([tensors[name] for name in names])
        if len(fresh) != len(names):
            raise SerializationError(
                f"the refresh returned {len(fresh)} tensors for {len(names)}; this is a bug in "
                "the scheme's refresh function."
            )
        return dict(zip(names, fresh, strict=True))

    def _answer(self, request: Path) -> bool:
        """Answer one request; True if it was refreshed (False: refused or withdrawn)."""
        match = _REQUEST.fullmatch(request.name)
        assert match is not None
        request_id = match.group(1)
        response = self.folder / f"{request_id}.response.henn"
        self._seen.add(request.name)
        refreshed = False
        try:
            fresh = self._refresh_file(request, request_id)
            save_ciphertexts(
                response,
                fresh,
                kind="refresh-response",
                metadata={"protocol": PROTOCOL, "request_id": request_id, "status": "ok"},
            )
            self.summary.tensors += len(fresh)
            refreshed = True
        except DiskFullError:
            raise  # the owner must hear about it: no answer can be written
        except (HennError, OSError) as exc:
            if not _exists(request):
                return False  # the party gave up and removed it
            self.summary.refused += 1
            self.summary.errors.append(f"{request.name}: {exc}")
            _write_error(response, request_id, str(exc))
        with contextlib.suppress(OSError):
            request.unlink()
        self.summary.requests += 1
        if self.on_request is not None:
            self.on_request(self.summary)
        return refreshed

    # -- loops ---------------------------------------------------------------------------------
    def serve_pending(self) -> int:
        """Answer every request present now; returns how many were refreshed."""
        refreshed = 0
        while (request := self._next_request()) is not None:
            refreshed += self._answer(request)
        return refreshed

    def serve(
        self,
        *,
        idle_timeout: float | None = 600.0,
        timeout: float | None = None,
        max_requests: int | None = None,
        poll: float = 0.05,
    ) -> ServeSummary:
        """Answer requests until ``STOP`` appears or a limit is reached (see the module docs)."""
        summary = self.summary
        info = {"protocol": PROTOCOL, "key_id": self.key_id, "pid": os.getpid()}
        write_file(self.folder / SERVER_FILE, json.dumps(info))
        stop = self.folder / STOP_FILE
        started = last_activity = time.monotonic()
        try:
            while True:
                if _exists(stop):
                    summary.stopped_by = "stop file"
                    with contextlib.suppress(OSError):
                        stop.unlink()  # removes a link itself, never its target
                    break
                now = time.monotonic()
                if timeout is not None and now - started > timeout:
                    summary.stopped_by = "timeout"
                    break
                if idle_timeout is not None and now - last_activity > idle_timeout:
                    summary.stopped_by = "idle timeout"
                    break
                if max_requests is not None and summary.requests >= max_requests:
                    summary.stopped_by = "max requests"
                    break
                request = self._next_request()
                if request is None:
                    time.sleep(poll)
                    continue
                self._answer(request)
                last_activity = time.monotonic()
        finally:
            with contextlib.suppress(OSError):
                if (_server_info(self.folder) or {}).get("pid") == os.getpid():
                    (self.folder / SERVER_FILE).unlink()
            summary.seconds += time.monotonic() - started
        return summary


def _write_error(path: Path, request_id: str, message: str) -> None:
    try:
        write_bundle(
            path,
            "refresh-response",
            metadata={
                "protocol": PROTOCOL,
                "request_id": request_id,
                "status": "error",
                "message": message[:2000],
            },
        )
    except DiskFullError:
        raise
    except (HennError, OSError):
        pass  # e.g. a folder planted at the response's name: the party times out instead


def serve_refresh(
    secret: KeyFile,
    exchange: str | os.PathLike[str],
    *,
    public: KeyFile | None = None,
    idle_timeout: float | None = 600.0,
    timeout: float | None = None,
    max_requests: int | None = None,
    poll: float = 0.05,
    on_request: Callable[[ServeSummary], None] | None = None,
) -> ServeSummary:
    """Owner side: answer refresh requests in ``exchange`` until told to stop (see module docs).

    A scheme with its own refresh provider (``scheme.owner_refresher``) refreshes through
    it, as in-process training does: CKKS re-encrypts only to the levels the party's last step
    used (plus what the values' range needs), so the party's next step is cheaper. Otherwise
    each tensor is re-encrypted with ``public`` when given, else with the secret key itself (the
    scheme must support secret-key encryption; the integer-vector scheme does).
    """
    if public is not None and public.key_id != secret.key_id:
        raise KeyMismatchError(
            f"the public key ({public.key_id}) and the secret key ({secret.key_id}) are not a pair."
        )
    scheme = secret.scheme
    encrypt_key = public.key if public is not None else secret.key
    own = getattr(scheme, "owner_refresher", None)  # plugins built before it have none
    provider = own(secret.keyset(public.key if public is not None else None)) if own else None

    def refresh(tensors: list[Any]) -> list[Any]:
        if provider is not None:
            return list(provider(tensors))
        return [
            scheme.encrypt_like(scheme.decrypt_tensor(t, secret.key), t, encrypt_key)
            for t in tensors
        ]

    server = RefreshServer(exchange, scheme=scheme, key_id=secret.key_id, refresh=refresh)
    server.on_request = on_request
    return server.serve(
        idle_timeout=idle_timeout, timeout=timeout, max_requests=max_requests, poll=poll
    )
