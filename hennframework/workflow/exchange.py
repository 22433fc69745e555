"""The file-based refresh exchange between a training party and the key owner.

Encrypted training eventually exhausts the weights' noise budget; only the key holder can give
them a fresh one (decrypt and re-encrypt). When the party and the owner share nothing but a
folder, this module is the protocol (``hennframework-refresh/1``):

1. The party writes ``<id>.request.henn`` into the exchange folder: a ``refresh-request`` file
   holding the encrypted tensors (metadata: ``protocol``, ``request_id``, ``names``). ``<id>`` is
   ``<time in ns, hex>-<8 random hex digits>``. The file appears atomically (written under a
   dot-name, then renamed), so the owner never reads half of it.
2. The owner (``henn serve-refresh``) picks requests up in name order, checks that every tensor
   is under its key, and writes ``<id>.response.henn``: a ``refresh-response`` file with metadata
   ``status`` ``"ok"`` and fresh encryptions of the same values under the same names, or
   ``status`` ``"error"`` and a ``message`` (no tensors). Then it deletes the request.
3. The party waits for the response (up to its timeout), checks it (request id, names, shapes,
   key), deletes it and trains on. If no response comes in time it deletes its request and stops
   cleanly (the model is saved, still decryptable, and marked as needing a refresh).

While it serves, the owner keeps ``server.json`` in the folder (protocol, key id, process id),
so a party can tell at once that the wrong key holder is listening. The owner stops when a file
named ``STOP`` appears (``henn serve-refresh --stop``), after ``idle_timeout`` seconds without a
request, after ``timeout`` seconds in all, or after ``max_requests`` requests.

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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hennframework.exceptions import (
    HennError,
    KeyMismatchError,
    NoiseBudgetExhaustedError,
    SerializationError,
)
from hennframework.io.bundles import KeyFile, load_ciphertexts, save_ciphertexts
from hennframework.io.codecs import codec_for
from hennframework.io.container import read_manifest, write_bundle

__all__ = ["PROTOCOL", "FileRefresher", "ServeSummary", "request_stop", "serve_refresh"]

PROTOCOL = "hennframework-refresh/1"
_REQUEST = re.compile(r"([0-9a-f]{1,20}-[0-9a-f]{8})\.request\.henn")
STOP_FILE = "STOP"
SERVER_FILE = "server.json"


def _new_request_id() -> str:
    return f"{time.time_ns():x}-{os.urandom(4).hex()}"


def _server_info(exchange: Path) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError):
        info = json.loads((exchange / SERVER_FILE).read_text(encoding="utf-8"))
        if isinstance(info, dict):
            return info
    return None


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
            while not response.exists():
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
            meta = manifest.get("metadata") or {}
            if meta.get("request_id") != request_id or meta.get("protocol") != PROTOCOL:
                raise SerializationError(f"{response} does not answer request {request_id}.")
            if meta.get("status") != "ok":
                raise KeyMismatchError(
                    f"the owner refused the refresh: {meta.get('message', 'no reason given')}"
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
    """What ``serve_refresh`` did."""

    requests: int = 0
    refused: int = 0
    tensors: int = 0
    seconds: float = 0.0
    stopped_by: str = ""
    errors: list[str] = field(default_factory=list)


def request_stop(exchange: str | os.PathLike[str]) -> Path:
    """Ask a running ``serve_refresh`` on ``exchange`` to stop (creates ``STOP``)."""
    path = Path(exchange) / STOP_FILE
    path.write_text("stop\n", encoding="utf-8")
    return path


def _write_error(path: Path, request_id: str, message: str) -> None:
    write_bundle(
        path,
        "refresh-response",
        metadata={
            "protocol": PROTOCOL,
            "request_id": request_id,
            "status": "error",
            "message": message,
        },
    )


def _refresh_one(
    request: Path, request_id: str, secret: KeyFile, encrypt_key: Any
) -> tuple[dict[str, Any], int]:
    tensors, meta = load_ciphertexts(request, kind="refresh-request", scheme=secret.scheme)
    if meta.get("protocol") != PROTOCOL or meta.get("request_id") != request_id:
        raise SerializationError(f"{request.name} is not a {PROTOCOL} request for id {request_id}.")
    codec = codec_for(secret.scheme)
    for name, tensor in tensors.items():
        if codec.key_id(tensor) != secret.key_id:
            raise KeyMismatchError(
                f"tensor {name} is under key {codec.key_id(tensor)}, but this owner holds key "
                f"{secret.key_id}; send it to the owner of that key."
            )
    scheme = secret.scheme
    fresh = {
        name: scheme.encrypt_tensor(scheme.decrypt_tensor(tensor, secret.key), encrypt_key)
        for name, tensor in tensors.items()
    }
    return fresh, len(fresh)


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

    Re-encrypts with ``public`` when given, else with the secret key itself (the scheme must
    support secret-key encryption; the integer-vector scheme does).
    """
    folder = Path(exchange)
    folder.mkdir(parents=True, exist_ok=True)
    if public is not None and public.key_id != secret.key_id:
        raise KeyMismatchError(
            f"the public key ({public.key_id}) and the secret key ({secret.key_id}) are not a pair."
        )
    encrypt_key = public.key if public is not None else secret.key
    summary = ServeSummary()
    info = {"protocol": PROTOCOL, "key_id": secret.key_id, "pid": os.getpid()}
    server_file = folder / SERVER_FILE
    temporary = folder / f".{SERVER_FILE}.{os.getpid()}.tmp"
    temporary.write_text(json.dumps(info), encoding="utf-8")
    os.replace(temporary, server_file)
    started = last_activity = time.monotonic()
    try:
        while True:
            if (folder / STOP_FILE).exists():
                summary.stopped_by = "stop file"
                with contextlib.suppress(OSError):
                    (folder / STOP_FILE).unlink()
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
            requests = sorted(p for p in folder.iterdir() if _REQUEST.fullmatch(p.name))
            if not requests:
                time.sleep(poll)
                continue
            for request in requests:
                match = _REQUEST.fullmatch(request.name)
                assert match is not None
                request_id = match.group(1)
                response = folder / f"{request_id}.response.henn"
                try:
                    fresh, count = _refresh_one(request, request_id, secret, encrypt_key)
                    save_ciphertexts(
                        response,
                        fresh,
                        kind="refresh-response",
                        metadata={
                            "protocol": PROTOCOL,
                            "request_id": request_id,
                            "status": "ok",
                        },
                    )
                    summary.tensors += count
                except FileNotFoundError:
                    continue  # the party gave up and removed it
                except HennError as exc:
                    if not request.exists():
                        continue
                    summary.refused += 1
                    summary.errors.append(f"{request.name}: {exc}")
                    _write_error(response, request_id, str(exc))
                with contextlib.suppress(OSError):
                    request.unlink()
                summary.requests += 1
                last_activity = time.monotonic()
                if on_request is not None:
                    on_request(summary)
                if max_requests is not None and summary.requests >= max_requests:
                    break
    finally:
        with contextlib.suppress(OSError):
            if (_server_info(folder) or {}).get("pid") == os.getpid():
                server_file.unlink()
        summary.seconds = time.monotonic() - started
    return summary


def pending_requests(exchange: str | os.PathLike[str]) -> Sequence[Path]:
    """Request files waiting in ``exchange`` (for status displays and tests)."""
    folder = Path(exchange)
    return (
        sorted(p for p in folder.iterdir() if _REQUEST.fullmatch(p.name)) if folder.is_dir() else []
    )
