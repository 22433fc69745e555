"""End to end: the owner, party A and party B as separate processes that share only files.

The owner makes keys A and B, encrypts a model under A and hands party A the model and the public
key A. A trains it on its own data (only public files), asking the owner for noise refreshes
through a shared exchange folder. The owner switches the returned model from key A to key B
without decrypting it (the switching is run from a folder that holds no key at all), B trains it
further the same way, and the owner decrypts B's model and checks that it learned. At the end,
nothing any party or relay holds is secret: no file of kind secret-key, and the bytes of either
key's T appear in none of their files.

Every step is ``python -c "...main()" <command> --json`` in its role's own working directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hennframework.exceptions import SerializationError
from hennframework.io import load_model, load_secret_key, read_manifest

CLI = [
    sys.executable,
    "-c",
    "import sys; from hennframework.cli import main; sys.exit(main(sys.argv[1:]))",
]
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "rt-polarity"
TIMEOUT = 180


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HENN_")}
    env["XDG_CONFIG_HOME"] = str(root / "xdg")  # no user config file changes the choices
    return env


def henn(cwd: Path, *args: str, expect: int = 0) -> dict[str, Any]:
    """Run one ``henn`` command as its own process in ``cwd``; return its JSON output."""
    proc = subprocess.run(
        [*CLI, *args, "--json"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_env(cwd.parent),
    )
    assert proc.returncode == expect, f"henn {' '.join(args)} -> {proc.returncode}\n{proc.stderr}"
    if expect != 0:
        return {"stderr": proc.stderr}
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


class RefreshServer:
    """``henn serve-refresh`` running in the background for one key and one exchange folder."""

    def __init__(self, owner: Path, secret: str, exchange: Path) -> None:
        exchange.mkdir(exist_ok=True)
        self.owner, self.exchange = owner, exchange
        self.process = subprocess.Popen(
            [
                *CLI,
                "serve-refresh",
                "--secret",
                secret,
                "--exchange",
                str(exchange),
                "--idle-timeout",
                "120",
                "--json",
            ],
            cwd=owner,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(owner.parent),
        )

    def stop(self) -> dict[str, Any]:
        henn(self.owner, "serve-refresh", "--stop", "--exchange", str(self.exchange))
        try:
            out, err = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()  # our own child, by its handle
            out, err = self.process.communicate()
            raise AssertionError(f"serve-refresh did not stop\n{err}") from None
        assert self.process.returncode == 0, err
        return json.loads(out)  # type: ignore[no-any-return]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def send(source: Path, folder: Path, name: str | None = None) -> Path:
    """Hand a file to another party (a copy into its folder)."""
    folder.mkdir(exist_ok=True)
    return Path(shutil.copy(source, folder / (name or source.name)))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The owner's folder with key pairs A and B (T of 16 rows, so its bytes are recognisable)."""
    root = tmp_path_factory.mktemp("parties")
    owner = root / "owner"
    owner.mkdir()
    keys = {}
    for name in ("A", "B"):
        summary = henn(owner, "keygen", "--out", f"key{name}", "--max-dim", "16")
        assert (owner / f"key{name}" / "secret.henn").stat().st_mode & 0o077 == 0
        assert re.fullmatch(r"iv-[0-9a-f]{32}", summary["key_id"])  # the key's fingerprint
        keys[name] = summary["key_id"]  # what the owner publishes out of band
    yield {"root": root, "owner": owner, "key_ids": keys}


def _t_bytes(owner: Path) -> list[bytes]:
    return [
        np.ascontiguousarray(
            load_secret_key(owner / f"key{name}" / "secret.henn").key.t_matrix, dtype="<i8"
        ).tobytes()
        for name in ("A", "B")
    ]


def assert_no_secret_material(owner: Path, *folders: Path) -> int:
    """No file in ``folders`` is a secret key or contains the bytes of T (for key A or B)."""
    secrets = _t_bytes(owner)
    assert all(len(t) == 16 * 8 for t in secrets)
    assert secrets[0] in (owner / "keyA" / "secret.henn").read_bytes()  # the check can see T
    checked = 0
    for folder in folders:
        for path in folder.rglob("*"):
            if not path.is_file():
                continue
            data = path.read_bytes()
            for t in secrets:
                assert t not in data, f"{path} contains the bytes of a secret T"
            assert b'"kind":"secret-key"' not in data, path
            with contextlib.suppress(SerializationError):  # files that are not .henn files
                assert read_manifest(path)["kind"] != "secret-key", path
            checked += 1
    return checked


def _run_flow(
    world: dict[str, Any],
    tag: str,
    encrypt_args: list[str],
    train_a: list[str],
    train_b: list[str],
    predict_b: list[str],
) -> dict[str, Any]:
    """Owner -> A (train) -> owner (switch) -> B (train) -> owner (decrypt). Returns what the owner sees."""
    root, owner, key_ids = world["root"], world["owner"], world["key_ids"]
    party_a, party_b, relay = root / f"{tag}-A", root / f"{tag}-B", root / f"{tag}-relay"
    exchange_a, exchange_b = root / f"{tag}-exchange-A", root / f"{tag}-exchange-B"
    for folder in (party_a, party_b, relay):
        folder.mkdir()

    # owner encrypts the model under A and sends it with the public key A
    encrypted = henn(
        owner,
        "encrypt-model",
        "--public",
        "keyA/public.henn",
        *encrypt_args,
        "--out",
        f"{tag}-model-A.henn",
    )
    assert encrypted["key_id"] == key_ids["A"]
    send(owner / "keyA" / "public.henn", party_a)
    send(owner / f"{tag}-model-A.henn", party_a, "model.henn")
    # before training, A checks the public key against the fingerprint the owner published
    inspected = henn(party_a, "inspect", "public.henn")
    assert inspected["fingerprint_verified"] is True and inspected["key_id"] == key_ids["A"]

    # party A trains with only public files and its data; the owner serves refreshes (A
    # tracks the noise forward, so that it needs them; B absorbs it, the default)
    server = RefreshServer(owner, "keyA/secret.henn", exchange_a)
    try:
        trained_a = henn(
            party_a,
            "train",
            "--model",
            "model.henn",
            "--public",
            "public.henn",
            "--track-noise",
            *train_a,
            "--exchange",
            str(exchange_a),
            "--out",
            "trained.henn",
        )
        served_a = server.stop()
    finally:
        server.kill()
    assert trained_a["status"] == "complete" and trained_a["key_id"] == key_ids["A"]
    assert trained_a["refreshes"] >= 1 and served_a["requests"] == trained_a["refreshes"]
    assert served_a["refused"] == 0

    # back to the owner, who reads A's losses, then makes switching material A -> B
    send(party_a / "trained.henn", owner, f"{tag}-from-A.henn")
    history_a = henn(
        owner, "decrypt", "--secret", "keyA/secret.henn", "--history", f"{tag}-from-A.henn"
    )
    assert history_a["steps"] == trained_a["steps"] and history_a["undecryptable_losses"] == 0
    henn(
        owner,
        "make-switch-key",
        "--from",
        "keyA/secret.henn",
        "--to",
        "keyB/secret.henn",
        "--out",
        f"{tag}-AtoB.henn",
    )

    # the switch is applied where there is no key at all
    send(owner / f"{tag}-from-A.henn", relay, "model.henn")
    send(owner / f"{tag}-AtoB.henn", relay, "AtoB.henn")
    switched = henn(
        relay,
        "switch-key",
        "--model",
        "model.henn",
        "--switch-key",
        "AtoB.henn",
        "--out",
        "for-B.henn",
    )
    assert switched["from_key_id"] == key_ids["A"] and switched["to_key_id"] == key_ids["B"]
    send(relay / "for-B.henn", owner, f"{tag}-for-B.henn")
    refused = henn(
        owner, "decrypt", "--secret", "keyA/secret.henn", "--model", f"{tag}-for-B.henn", expect=1
    )
    assert "encrypted under key " + key_ids["B"] in refused["stderr"]

    # party B trains further, with B's public key; the owner serves B's refreshes
    send(owner / "keyB" / "public.henn", party_b)
    send(relay / "for-B.henn", party_b, "model.henn")
    server = RefreshServer(owner, "keyB/secret.henn", exchange_b)
    try:
        trained_b = henn(
            party_b,
            "train",
            "--model",
            "model.henn",
            "--public",
            "public.henn",
            *train_b,
            "--exchange",
            str(exchange_b),
            "--out",
            "trained.henn",
        )
        server.stop()
    finally:
        server.kill()
    assert trained_b["status"] == "complete" and trained_b["key_id"] == key_ids["B"]
    assert trained_b["total_steps"] == trained_b["steps"]  # A's history did not travel to B
    # B absorbs its weights' noise after every step once they can be: A tracked its noise
    # forward and the switch carried it over, so B's first steps (until its first refresh) may
    # have more than the 2**-16 of a unit that absorbing allows. Those come first; every step
    # after an absorbed one or a refresh starts from noiseless weights and adds only its own
    # noise (more than 15 bits of budget left, far above A's). Where even B's first step could
    # be absorbed, that step started from A's noise: its budget only had to leave the noise
    # absorbable (15.9 to 33 bits in 8 runs here)
    history_b = load_model(party_b / "trained.henn").model.history
    budgets = [record.noise_budget for record in history_b.records]
    assert len(budgets) == trained_b["steps"]  # one record per step
    unabsorbed = trained_b["steps"] - trained_b["absorbed_noise"]["steps"]
    assert 0 <= unabsorbed < trained_b["steps"]
    first_from_noiseless = unabsorbed if unabsorbed else 1
    assert all(budget is not None for budget in budgets)
    assert all(budget > 15 for budget in budgets[first_from_noiseless:])

    # B's encrypted predictions: only the owner can read them
    predictions = henn(
        party_b,
        "predict",
        "--model",
        "trained.henn",
        "--public",
        "public.henn",
        *predict_b,
        "--out",
        "predictions.henn",
    )
    assert predictions["encrypted"] and "predictions" not in predictions

    # the owner decrypts B's model
    send(party_b / "trained.henn", owner, f"{tag}-from-B.henn")
    send(party_b / "predictions.henn", owner, f"{tag}-predictions-B.henn")
    decrypted = henn(
        owner,
        "decrypt",
        "--secret",
        "keyB/secret.henn",
        "--model",
        f"{tag}-from-B.henn",
        "--out",
        f"{tag}-plain-B.henn",
    )
    assert (owner / f"{tag}-plain-B.henn").stat().st_mode & 0o077 == 0
    decrypted_predictions = henn(
        owner,
        "decrypt",
        "--secret",
        "keyB/secret.henn",
        "--predictions",
        f"{tag}-predictions-B.henn",
    )

    checked = assert_no_secret_material(owner, party_a, party_b, relay, exchange_a, exchange_b)
    assert checked >= 6
    return {
        "history_a": history_a,
        "decrypted": decrypted,
        "predictions": decrypted_predictions["predictions"],
    }


def test_xor_owner_party_a_party_b(world: dict[str, Any]) -> None:
    seen = _run_flow(
        world,
        "xor",
        ["--arch", "xor", "--seed", "0"],
        ["--data", "xor", "--epochs", "250", "--lr", "0.1"],
        ["--data", "xor", "--epochs", "250", "--lr", "0.1"],
        ["--data", "xor"],
    )
    losses_a = [r["loss"] for r in seen["history_a"]["records"]]
    assert losses_a[-1] < losses_a[0]
    owner = world["owner"]
    evaluated = henn(owner, "predict", "--model", "xor-plain-B.henn", "--data", "xor")
    assert [round(v) for v in evaluated["predictions"]] == [0, 1, 1, 0]
    assert evaluated["accuracy"] == 1.0
    # B's encrypted predictions, decrypted by the owner, are the plain model's predictions
    np.testing.assert_allclose(seen["predictions"], evaluated["predictions"], atol=2e-3)
    assert seen["decrypted"]["final_loss"] < losses_a[-1]


@pytest.mark.data
@pytest.mark.skipif(not DATA.is_dir(), reason=f"the shared rt-polarity dataset is not at {DATA}")
def test_sentiment_owner_party_a_party_b(world: dict[str, Any]) -> None:
    data = str(DATA)
    seen = _run_flow(
        world,
        "sentiment",
        [
            *("--arch", "sentiment", "--vocabulary-from", data, "--limit", "1000"),
            *("--hidden", "8", "--seed", "0"),  # the accuracy bound below is for seed 0
        ],
        ["--data", data, "--skip", "1000", "--limit", "1500", "--epochs", "2"],
        ["--data", data, "--skip", "2500", "--limit", "1500", "--epochs", "2"],
        ["--data", data, "--skip", "4000", "--limit", "1000"],
    )
    assert seen["decrypted"]["architecture"].startswith("sequential words ")
    owner = world["owner"]
    held_out = henn(
        owner,
        "predict",
        "--model",
        "sentiment-plain-B.henn",
        "--data",
        data,
        "--skip",
        "4000",
        "--limit",
        "1000",
    )
    assert held_out["rows"] == 1000
    assert held_out["accuracy"] > 0.58  # chance is 0.5; the same run in plaintext gives about 0.63
    # B's encrypted predictions on the held-out reviews, decrypted by the owner, agree with the plain model
    np.testing.assert_allclose(seen["predictions"], held_out["predictions"], atol=2e-3)


def test_a_stopped_run_says_what_to_run_and_resumes(world: dict[str, Any]) -> None:
    """Without --exchange, a run that tracks its noise stops cleanly (exit status 3); the message
    names the commands that continue it, never a Python call, and they do continue it."""
    root, owner = world["root"], world["owner"]
    party = root / "stop-A"
    party.mkdir()
    henn(owner, "encrypt-model", "--public", "keyA/public.henn", "--arch", "xor", "--seed", "0",
         "--out", "stop-model.henn")  # fmt: skip
    send(owner / "stop-model.henn", party, "model.henn")
    send(owner / "keyA" / "public.henn", party)
    args = ["--public", "public.henn", "--data", "xor", "--lr", "0.1"]
    stopped = henn(party, "train", "--model", "model.henn", *args, "--epochs", "250",
                   "--track-noise", "--out", "stopped.henn", expect=3)["stderr"]  # fmt: skip
    assert "needs owner refresh: stopped after" in stopped
    assert "henn refresh --secret SECRET.henn --model stopped.henn" in stopped
    assert "henn train --model FRESH.henn --resume" in stopped
    assert "OwnerRefresher" not in stopped and "refresh=" not in stopped
    send(party / "stopped.henn", owner, "stop-stopped.henn")
    henn(owner, "refresh", "--secret", "keyA/secret.henn", "--model", "stop-stopped.henn",
         "--out", "stop-fresh.henn")  # fmt: skip
    send(owner / "stop-fresh.henn", party, "fresh.henn")
    # resumed without --track-noise: the rest of the plan absorbs the noise and completes
    resumed = henn(party, "train", "--model", "fresh.henn", *args, "--resume", "--out",
                   "done.henn")  # fmt: skip
    assert resumed["status"] == "complete" and resumed["completed_steps"] == 250
    assert resumed["absorbed_noise"]["steps"] == resumed["steps"] > 0
