"""Flower's deployment engine: a SuperLink, two SuperNodes and ``flwr run`` as separate processes.

Everything listens on 127.0.0.1 only, on free ports; every process is stopped when the test ends,
passed or not. The owner's ServerApp runs in the SuperLink's ``flwr-serverapp`` process and the
parties' ClientApps in the SuperNodes' processes: what crosses between them are Flower messages.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("flwr", reason='needs Flower: pip install -e ".[federated]"')

APP_TOML = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "henn-federated"
version = "1.0.0"
description = "Encrypted FedAvg with hennframework"
license = "Apache-2.0"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "hennframework"

[tool.flwr.app.components]
serverapp = "hennframework.federated.apps:server_app"
clientapp = "hennframework.federated.apps:client_app"

[tool.flwr.app.config]
parties = 2
rounds = 2
local-steps = 2
seed = 5
limit = 600
data = ""
summary-out = "{summary}"
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip(f"{name} is not installed next to {sys.executable}")
    return found


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    # each was started in its own process group: stop it with the helpers it spawned
    for process in reversed(started):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@pytest.mark.slow
def test_two_parties_as_separate_processes(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    home, app = tmp_path / "flwr-home", tmp_path / "app"
    home.mkdir()
    app.mkdir()
    summary = tmp_path / "summary.json"
    link = _free_port()
    (app / "pyproject.toml").write_text(APP_TOML.format(summary=summary), encoding="utf-8")
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "local-test"\n\n[superlink.local-test]\n'
        f'address = "127.0.0.1:{link}"\ninsecure = true\n',
        encoding="utf-8",
    )
    # the SuperLink starts Flower's helpers (flower-superexec) by name: find them next to this
    # Python, as in an activated environment, also when the tests run through its full path
    tools = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "FLWR_HOME": str(home),
        "PATH": os.pathsep.join([tools, os.environ.get("PATH", "")]),
    }

    def start(args: list[str], log: str) -> None:
        with open(tmp_path / log, "wb") as out:
            processes.append(
                subprocess.Popen(
                    args,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=tmp_path,
                    start_new_session=True,
                )
            )

    start(
        [_tool("flower-superlink"), "--insecure", "--host", "127.0.0.1", "--port", str(link),
         "--disable-runtime-dependency-installation", "--database", ":flwr-in-memory-state:"],
        "superlink.log",
    )  # fmt: skip
    for party in (0, 1):
        start(
            [_tool("flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{link}",
             "--host", "127.0.0.1", "--port", str(_free_port()),
             "--node-config", f"partition-id={party} num-partitions=2"],
            f"supernode-{party}.log",
        )  # fmt: skip
    deadline = time.monotonic() + 240
    done = None
    while time.monotonic() < deadline:  # the SuperLink may still be starting: retry the submission
        done = subprocess.run(
            [_tool("flwr"), "run", str(app), "local-test", "--stream"],
            capture_output=True,
            env=env,
            cwd=tmp_path,
            timeout=max(10.0, deadline - time.monotonic()),
            check=False,
        )
        if done.returncode == 0 or b"Successfully started run" in done.stdout:
            break
        time.sleep(2)
    assert done is not None and done.returncode == 0, (
        done.stdout[-3000:] if done else b"",
        (tmp_path / "superlink.log").read_text(errors="replace")[-3000:],
    )
    while not summary.exists() and time.monotonic() < deadline:
        time.sleep(1)
    assert summary.exists(), (tmp_path / "superlink.log").read_text(errors="replace")[-3000:]
    result = json.loads(summary.read_text(encoding="utf-8"))
    assert result["scheme"] == "integer-vector"
    assert len(result["rounds"]) == 2
    for row in result["rounds"]:
        assert row["parties"] == 2 and not row["failures"]
        assert row["samples"] == 2 * 2 * 32
        assert row["bytes_from_parties"] > 0 and 0.0 <= row["accuracy"] <= 1.0
