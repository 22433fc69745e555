"""The refresh exchange folder under attack: links, FIFOs and folders planted by whoever can write.

Each test reproduces one attack on the owner's processes (the party can write into the shared
folder) and checks that the owner's files stay untouched and the server never blocks.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hennframework import io as hio
from hennframework.cli import main as henn
from hennframework.exceptions import DiskFullError, SerializationError
from hennframework.io import safe_files
from hennframework.registry import get_backend
from hennframework.schemes.integer_vector import IntegerVectorScheme
from hennframework.workflow import exchange
from hennframework.workflow.exchange import (
    PROTOCOL,
    FileRefresher,
    ServeSummary,
    request_stop,
    serve_refresh,
)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="links and FIFOs are POSIX")

SECRET_BYTES = b"PK... the owner's secret key"


@pytest.fixture(scope="module")
def owner(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheme = IntegerVectorScheme("default", backend=get_backend("numpy"))
        keys = scheme.keygen(seed=41, max_dim=4)
    root = tmp_path_factory.mktemp("owner")
    hio.save_keys(root / "keys", keys)
    secret = hio.load_secret_key(root / "keys" / "secret.henn", scheme=scheme)
    return {"scheme": scheme, "keys": keys, "secret": secret}


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file the owner must never have overwritten (stands for ``secret.henn``)."""
    path = tmp_path / "secret.henn"
    path.write_bytes(SECRET_BYTES)
    return path


def _in_thread(action: Callable[[], Any]) -> Any:
    """Run ``action`` in a thread and wait for it: a liveness guard (it must end), not a timing."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                outcome["value"] = action()
            except BaseException as exc:
                outcome["error"] = exc
            outcome["warnings"] = [str(w.message) for w in caught]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the server never returned"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"], outcome["warnings"]


def _request(owner: dict[str, Any], folder: Path, request_id: str) -> Path:
    tensor = owner["scheme"].encrypt_tensor(np.array([0.5, -1.5]), owner["keys"].public)
    return hio.save_ciphertexts(
        folder / f"{request_id}.request.henn",
        {"t0": tensor},
        kind="refresh-request",
        metadata={"protocol": PROTOCOL, "request_id": request_id},
    )


def _henn(*args: str) -> tuple[int, str]:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        status = henn(list(args))
    return status, stderr.getvalue()


# ------------------------------------------------------------------------------------------
# the reproducers
# ------------------------------------------------------------------------------------------
def test_stop_through_a_planted_link_leaves_its_target_alone(tmp_path: Path, victim: Path) -> None:
    folder = tmp_path / "exchange"
    folder.mkdir()
    (folder / "STOP").symlink_to(victim)
    status, stderr = _henn("serve-refresh", "--stop", "--exchange", str(folder))
    assert status == 0, stderr
    assert victim.read_bytes() == SECRET_BYTES
    assert not (folder / "STOP").is_symlink() and (folder / "STOP").read_text() == "stop\n"
    assert sorted(p.name for p in folder.iterdir()) == ["STOP"]


def test_planted_server_file_temporaries_are_not_followed(
    tmp_path: Path, victim: Path, owner: dict[str, Any]
) -> None:
    folder = tmp_path / "exchange"
    folder.mkdir()
    pid = os.getpid()
    planted = [folder / f".server.json.{n}.tmp" for n in range(pid - 2, pid + 3)]
    planted.append(folder / "server.json")
    for link in planted:
        link.symlink_to(victim)
    request_stop(folder)
    summary = serve_refresh(owner["secret"], folder, idle_timeout=5, poll=0.01)
    assert summary.stopped_by == "stop file"
    assert victim.read_bytes() == SECRET_BYTES
    assert all(link.is_symlink() for link in planted[:-1])
    assert not (folder / "server.json").exists()  # the link was replaced, then removed


def test_server_file_is_written_afresh_and_read_safely(
    tmp_path: Path, victim: Path, owner: dict[str, Any]
) -> None:
    folder = tmp_path / "exchange"
    folder.mkdir()
    (folder / "server.json").symlink_to(victim)
    seen: list[Any] = []

    def on_request(summary: ServeSummary) -> None:
        seen.append(json.loads((folder / "server.json").read_text()))

    _request(owner, folder, "1-00000001")
    serve_refresh(owner["secret"], folder, max_requests=1, poll=0.01, on_request=on_request)
    assert seen[0]["key_id"] == owner["secret"].key_id and seen[0]["pid"] == os.getpid()
    assert victim.read_bytes() == SECRET_BYTES
    # a party never follows a planted server file either
    (folder / "server.json").symlink_to("/dev/zero")
    assert exchange._server_info(folder) is None


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_request_never_blocks_the_server(tmp_path: Path, owner: dict[str, Any]) -> None:
    """A FIFO named like a request used to hang serve-refresh forever, idle timeout or not."""
    folder = tmp_path / "exchange"
    folder.mkdir()
    os.mkfifo(folder / "1-0000000f.request.henn")
    summary, caught = _in_thread(
        lambda: serve_refresh(owner["secret"], folder, idle_timeout=0.2, poll=0.01)
    )
    assert summary.stopped_by == "idle timeout"
    assert summary.skipped == ["1-0000000f.request.henn"] and summary.requests == 0
    assert sum("named pipe" in message for message in caught) == 1  # warned once, not per poll


def test_links_folders_and_junk_as_requests(
    tmp_path: Path, victim: Path, owner: dict[str, Any]
) -> None:
    folder = tmp_path / "exchange"
    folder.mkdir()
    (folder / "1-00000001.request.henn").symlink_to(victim)
    (folder / "1-00000002.request.henn").mkdir()
    (folder / "1-00000003.request.henn").symlink_to("/dev/zero")
    (folder / "1-00000004.request.henn").write_bytes(os.urandom(300))  # junk: an error response
    _request(owner, folder, "1-00000005")
    summary, caught = _in_thread(
        lambda: serve_refresh(owner["secret"], folder, idle_timeout=0.2, poll=0.01)
    )
    assert summary.skipped == [f"1-0000000{n}.request.henn" for n in (1, 2, 3)]
    assert summary.requests == 2 and summary.refused == 1 and summary.tensors == 1
    assert "not a complete hennframework file" in summary.errors[0]
    assert victim.read_bytes() == SECRET_BYTES
    error = hio.container.read_manifest(folder / "1-00000004.response.henn")["metadata"]
    assert error["status"] == "error"
    fresh, meta = hio.load_ciphertexts(
        folder / "1-00000005.response.henn", kind="refresh-response", scheme=owner["scheme"]
    )
    assert meta["status"] == "ok"
    np.testing.assert_allclose(
        owner["scheme"].decrypt_tensor(fresh["t0"], owner["keys"].secret), [0.5, -1.5]
    )
    assert len(caught) == 3


def test_a_planted_response_link_is_replaced(
    tmp_path: Path, victim: Path, owner: dict[str, Any]
) -> None:
    folder = tmp_path / "exchange"
    folder.mkdir()
    _request(owner, folder, "1-00000001")
    (folder / "1-00000001.response.henn").symlink_to(victim)
    summary = serve_refresh(owner["secret"], folder, max_requests=1, poll=0.01)
    assert summary.tensors == 1 and victim.read_bytes() == SECRET_BYTES
    assert not (folder / "1-00000001.response.henn").is_symlink()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_the_party_does_not_block_on_a_planted_response(
    tmp_path: Path, owner: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "exchange"
    folder.mkdir()
    monkeypatch.setattr(exchange, "_new_request_id", lambda: "1-0000abcd")
    os.mkfifo(folder / "1-0000abcd.response.henn")
    refresher = FileRefresher(
        folder, scheme=owner["scheme"], key_id=owner["keys"].key_id, timeout=5, poll=0.01
    )
    tensor = owner["scheme"].encrypt_tensor(np.array([1.0]), owner["keys"].public)
    with pytest.raises(SerializationError, match="named pipe"):
        _in_thread(lambda: refresher([tensor]))
    assert list(folder.iterdir()) == []  # its request and the planted FIFO are gone


def test_exchange_paths_that_are_not_folders(tmp_path: Path, owner: dict[str, Any]) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(SerializationError, match="not a folder"):
        serve_refresh(owner["secret"], tmp_path / "file", idle_timeout=0.1)
    with pytest.raises(SerializationError, match="does not exist"):
        request_stop(tmp_path / "missing")
    (tmp_path / "exchange").mkdir()
    (tmp_path / "exchange" / "STOP").mkdir()
    status, stderr = _henn("serve-refresh", "--stop", "--exchange", str(tmp_path / "exchange"))
    assert status == 1 and "is a folder" in stderr and "internal error" not in stderr


def test_a_full_disk_is_reported_plainly_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "exchange"
    folder.mkdir()

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(safe_files.os, "fsync", fsync)
    status, stderr = _henn("serve-refresh", "--stop", "--exchange", str(folder))
    assert status == 1
    assert stderr.startswith("henn: error: disk full: could not write") and stderr.count("\n") == 1
    assert list(folder.iterdir()) == []
    with pytest.raises(DiskFullError):
        request_stop(folder)


def test_the_cli_reports_any_full_disk_plainly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ENOSPC from code that does not use the helpers is still no "internal error ... bug"."""

    def full(path: Any) -> Path:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(exchange, "request_stop", full)
    status, stderr = _henn("serve-refresh", "--stop", "--exchange", str(tmp_path))
    assert status == 1 and stderr.startswith("henn: error: disk full:") and "bug" not in stderr
