"""``henn switch-key --secret OLD --public NEW``: the owner moves a CKKS model to another key.

CKKS has no keyless switching key, so the owner, who holds the model's secret key, decrypts each
weight and encrypts it under the new public key: a fresh encryption the next party cannot link
to the first party's ciphertexts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hennframework import io as hio
from hennframework.cli import main as henn
from hennframework.exceptions import CapabilityError, InputError, KeyMismatchError
from hennframework.io.container import read_bundle
from hennframework.nn import History, Sequential, TrainingRecord, TrainingState
from hennframework.scheme import KeySet
from hennframework.workflow import owner

from hennframework_ckks import CKKSScheme


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, scheme4096: CKKSScheme, keys4096: KeySet
) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("ckks-switch")
    old_secret, old_public = hio.save_keys(folder / "a", keys4096)
    other = scheme4096.keygen(rotations="none")
    new_secret, new_public = hio.save_keys(folder / "b", other)
    plain = Sequential.mlp([3, 2, 1], activation="taylor3", seed=3, init_scale=2.0)
    encrypted = plain.encrypt(keys4096, scheme4096)
    loss = scheme4096.encrypt_tensor(np.array([0.125]), keys4096.public)
    history = History([TrainingRecord(1, 0, loss, None, 0.5, 1.0)], 2, 1, 0.5, 4)
    encrypted.history = history
    encrypted.state = TrainingState(planned_steps=3, completed_steps=1, steps_per_epoch=1)
    model = hio.save_model(folder / "m.henn", encrypted)
    return {
        "folder": folder,
        "plain": plain,
        "other": other,
        "old": (old_secret, old_public),
        "new": (new_secret, new_public),
        "model": model,
    }


def _blobs(path: Path) -> set[bytes]:
    return set(read_bundle(path).blobs.values())


def test_the_owner_re_encrypts_a_model_under_the_new_key(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    out = setup["folder"] / "switched.henn"
    argv = ["switch-key", "--model", str(setup["model"]), "--secret", str(setup["old"][0])]
    argv += ["--public", str(setup["new"][1]), "--out", str(out), "--json"]
    capsys.readouterr()
    assert henn(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    other: KeySet = setup["other"]
    assert summary["to_key_id"] == other.key_id and summary["method"].startswith("re-encryption")
    secret = hio.load_secret_key(setup["new"][0])
    bundle = hio.load_model(out, scheme=secret.scheme, expect_key=secret)
    assert bundle.key_id == other.key_id and bundle.training == TrainingState()
    assert bundle.history.steps == 0 and not bundle.history.records  # nothing of party A's run
    decrypted = bundle.model.decrypt(secret.key)
    for (_, _, got), (_, _, want) in zip(
        decrypted.parameters(), setup["plain"].parameters(), strict=True
    ):
        np.testing.assert_allclose(got, want, atol=1e-3)
    assert not _blobs(out) & _blobs(setup["model"])  # fresh ciphertexts, nothing carried over


def test_kept_history_is_re_encrypted_too(setup: dict[str, Any]) -> None:
    out = setup["folder"] / "kept.henn"
    owner.reencrypt_model(setup["old"][0], setup["new"][1], setup["model"], out, keep_history=True)
    secret = hio.load_secret_key(setup["new"][0])
    bundle = hio.load_model(out, scheme=secret.scheme, expect_key=secret)
    (record,) = bundle.history.records
    assert record.encrypted_loss is not None and record.encrypted_loss.key_id == secret.key_id
    loss = secret.scheme.decrypt_tensor(record.encrypted_loss, secret.key)
    np.testing.assert_allclose(loss, [0.125], atol=1e-3)


def test_mismatched_inputs_are_refused_by_fingerprint(setup: dict[str, Any]) -> None:
    folder: Path = setup["folder"]
    model = setup["model"]
    with pytest.raises(KeyMismatchError, match="encrypted under key"):
        owner.reencrypt_model(setup["new"][0], setup["old"][1], model, folder / "x1.henn")
    with pytest.raises(InputError, match="is the public key of --secret"):
        owner.reencrypt_model(setup["old"][0], setup["old"][1], model, folder / "x2.henn")
    assert not (folder / "x1.henn").exists() and not (folder / "x2.henn").exists()


def test_the_cli_asks_for_one_way_of_switching(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    folder: Path = setup["folder"]
    base = ["switch-key", "--model", str(setup["model"]), "--out", str(folder / "y.henn")]
    assert henn([*base, "--secret", str(setup["old"][0])]) == 1
    assert "both --secret" in capsys.readouterr().err
    both = [*base, "--switch-key", str(setup["model"]), "--secret", str(setup["old"][0])]
    assert henn([*both, "--public", str(setup["new"][1])]) == 1
    assert "not both" in capsys.readouterr().err
    assert not (folder / "y.henn").exists()


def test_make_switch_key_points_the_ckks_owner_to_re_encryption(setup: dict[str, Any]) -> None:
    with pytest.raises(CapabilityError, match=r"henn switch-key --model MODEL --secret"):
        owner.make_switch_key(setup["old"][0], setup["new"][0], setup["folder"] / "k.henn")
    assert not (setup["folder"] / "k.henn").exists()


def test_re_encryption_keeps_each_weights_packing(
    setup: dict[str, Any], scheme4096: CKKSScheme, keys4096: KeySet
) -> None:
    """An embedding model is packed for its uses (column-major table): the owner's switch to
    another key and its refresh (`henn refresh`) keep that packing, so the next party's steps
    keep the cheaper order."""
    folder = setup["folder"]
    plain = Sequential.bag_of_words(100, 4, seed=1)
    encrypted = plain.encrypt(keys4096, scheme4096)
    layouts = [w.layout for w in encrypted.weights()]
    assert layouts[0].groups == ((0, 7), (7, 2))
    path = hio.save_model(folder / "words.henn", encrypted)
    switched = folder / "words-b.henn"
    owner.reencrypt_model(setup["old"][0], setup["new"][1], path, switched)
    refreshed = folder / "words-refreshed.henn"
    owner.refresh_model(setup["old"][0], path, refreshed)
    for out, key in ((switched, setup["new"][0]), (refreshed, setup["old"][0])):
        secret = hio.load_secret_key(key)
        bundle = hio.load_model(out, scheme=secret.scheme, expect_key=secret)
        assert [w.layout for w in bundle.model.weights()] == layouts
        for got, want in zip(
            bundle.model.decrypt(secret.key).weights(), plain.weights(), strict=True
        ):
            # two encryptions at n4096: within the bound the re-encrypted tensors carry
            error = max(float(w.errors.max()) for w in bundle.model.weights())
            np.testing.assert_allclose(got, want, atol=2 * error)
