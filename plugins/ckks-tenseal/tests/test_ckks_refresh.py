"""Refresh providers and the byte containers they exchange (in-process and between two processes)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hennframework import io as hio
from hennframework.exceptions import (
    InputError,
    KeyMismatchError,
    NoiseBudgetExhaustedError,
    SerializationError,
)
from hennframework.io.container import read_manifest
from hennframework.scheme import KeySet
from hennframework.workflow.exchange import PROTOCOL

from hennframework_ckks import (
    CKKSPublicKey,
    CKKSScheme,
    CKKSSecretKey,
    FileRefresher,
    FileRefreshOwner,
    OwnerRefresher,
    RefreshProvider,
    tensors_from_bytes,
    tensors_to_bytes,
)


def test_owner_refresher_restores_levels_and_counts(
    scheme4096: CKKSScheme, keys4096: KeySet
) -> None:
    refresher = OwnerRefresher(scheme4096, keys4096)
    assert isinstance(refresher, RefreshProvider)
    w = scheme4096.encrypt_tensor(np.array([[0.5, -0.75], [0.25, 1.0]]), keys4096.public)
    worn = w * w
    assert worn.levels_left == 0
    fresh = refresher([worn, w])
    assert refresher.calls == 1 and refresher.tensors == 2 and refresher.ciphertexts == 2
    assert [t.levels_left for t in fresh] == [scheme4096.params.levels] * 2
    assert fresh[0].layout == worn.layout
    np.testing.assert_allclose(
        scheme4096.decrypt_tensor(fresh[0], keys4096.secret),
        scheme4096.decrypt_tensor(worn, keys4096.secret),
        atol=5e-3,
    )


def test_tensor_container_roundtrip_and_checks(scheme4096: CKKSScheme, keys4096: KeySet) -> None:
    values = np.linspace(-1, 1, 6).reshape(3, 2)
    tensor = scheme4096.encrypt_tensor(values, keys4096.public)
    data = tensors_to_bytes([tensor, tensor * tensor])
    back = tensors_from_bytes(data, keys4096.public)
    np.testing.assert_allclose(
        scheme4096.decrypt_tensor(back[0], keys4096.secret), values, atol=5e-3
    )
    assert back[1].levels_left == 0
    corrupted = bytearray(data)
    corrupted[len(corrupted) // 2] ^= 0x01
    with pytest.raises(SerializationError, match="checksum"):
        tensors_from_bytes(bytes(corrupted), keys4096.public)
    with pytest.raises(SerializationError):
        tensors_from_bytes(data[:-100], keys4096.public)
    with pytest.raises(SerializationError, match="not a hennframework"):
        tensors_from_bytes(b"PK\x03\x04" + data[4:], keys4096.public)
    other = scheme4096.keygen(rotations="none")
    with pytest.raises(KeyMismatchError):
        tensors_from_bytes(data, other.public)


def test_keys_roundtrip_through_bytes(scheme4096: CKKSScheme, keys4096: KeySet) -> None:
    public = CKKSPublicKey.from_bytes(keys4096.public.to_bytes())
    secret = CKKSSecretKey.from_bytes(keys4096.secret.to_bytes())
    assert public.key_id == secret.key_id == keys4096.key_id
    assert public.rotation_steps == keys4096.public.rotation_steps
    tensor = scheme4096.encrypt_tensor(np.array([0.125, -0.5, 0.75]), public)
    summed = tensor.sum()  # rotations with the loaded keys
    np.testing.assert_allclose(scheme4096.decrypt_tensor(summed, secret), 0.375, atol=5e-3)
    with pytest.raises(SerializationError):
        CKKSPublicKey.from_bytes(keys4096.secret.to_bytes())


def test_file_refresher_times_out_clearly(
    tmp_path: Path, scheme4096: CKKSScheme, keys4096: KeySet
) -> None:
    refresher = FileRefresher(tmp_path, keys4096.public, timeout=0.2, poll=0.01)
    tensor = scheme4096.encrypt_tensor(np.array([0.5]), keys4096.public)
    with pytest.raises(NoiseBudgetExhaustedError, match="serve"):
        refresher([tensor])
    assert not list(tmp_path.glob("*.request*"))


def _request(folder: Path, tensors: list[Any], request_id: str = "1a2b-0badc0de") -> Path:
    """A refresh request as the party's FileRefresher writes it (hennframework-refresh/1)."""
    return hio.save_ciphertexts(
        folder / f"{request_id}.request.henn",
        {f"t{i}": t for i, t in enumerate(tensors)},
        kind="refresh-request",
        metadata={"protocol": PROTOCOL, "request_id": request_id},
    )


def test_owner_rejects_foreign_ciphertexts(
    tmp_path: Path, scheme4096: CKKSScheme, keys4096: KeySet
) -> None:
    """A request under another key set gets an error response, and the party a clear error."""
    stranger = scheme4096.keygen(rotations="none")
    tensor = scheme4096.encrypt_tensor(np.array([0.5]), stranger.public)
    request = _request(tmp_path, [tensor])
    owner = FileRefreshOwner(tmp_path, keys4096)
    assert owner.serve_pending() == 0
    meta = read_manifest(tmp_path / "1a2b-0badc0de.response.henn")["metadata"]
    assert meta["status"] == "error" and keys4096.key_id in meta["message"]
    assert not request.exists() and owner.summary.refused == 1


def test_owner_never_writes_through_planted_links(
    tmp_path: Path, scheme4096: CKKSScheme, keys4096: KeySet
) -> None:
    """Links planted at the response name and at the temporary names the plugin used to write
    (``.<stem>.response.<pid>.tmp``, ``.<stem>.error.<pid>.tmp``) leave their target untouched."""
    victim = tmp_path / "secret.henn"
    victim.write_bytes(b"the owner's secret key")
    exchange_dir = tmp_path / "exchange"
    exchange_dir.mkdir()
    good = scheme4096.encrypt_tensor(np.array([0.25, -0.5]), keys4096.public)
    foreign = scheme4096.encrypt_tensor(np.array([1.0]), scheme4096.keygen(rotations="none").public)
    _request(exchange_dir, [good], "1a2b-00000001")
    _request(exchange_dir, [foreign], "1a2b-00000002")
    pid = os.getpid()
    planted = []
    for stem in ("1a2b-00000001", "1a2b-00000002"):
        for name in (
            f".{stem}.response.{pid}.tmp",
            f".{stem}.error.{pid}.tmp",
            f".{stem}.response.henn.{pid}.tmp",
        ):
            (exchange_dir / name).symlink_to(victim)
            planted.append(exchange_dir / name)
    (exchange_dir / "1a2b-00000002.response.henn").symlink_to(victim)
    owner = FileRefreshOwner(exchange_dir, keys4096)
    assert owner.serve_pending() == 1
    assert victim.read_bytes() == b"the owner's secret key"
    assert all(link.is_symlink() and link.resolve() == victim for link in planted)
    response = exchange_dir / "1a2b-00000002.response.henn"
    assert not response.is_symlink()  # the planted link was replaced, its target untouched
    assert read_manifest(response)["metadata"]["status"] == "error"
    leftovers = {p.name for p in exchange_dir.iterdir()} - {p.name for p in planted}
    assert leftovers == {"1a2b-00000001.response.henn", "1a2b-00000002.response.henn"}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_owner_skips_a_fifo_request_without_blocking(
    tmp_path: Path, scheme4096: CKKSScheme, keys4096: KeySet
) -> None:
    os.mkfifo(tmp_path / "1a2b-0000000f.request.henn")
    owner = FileRefreshOwner(tmp_path, keys4096)
    with pytest.warns(UserWarning, match="named pipe"):
        assert owner.serve(timeout=0.3, poll=0.01) == 0
    assert owner.summary.skipped == ["1a2b-0000000f.request.henn"]
    assert owner.summary.stopped_by == "timeout"


def test_seal_scratch_files_stay_in_a_private_folder(
    scheme4096: CKKSScheme, keys4096: KeySet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SEAL's (de)serialisation goes through files: in a 0700 folder, random names, none left."""
    from hennframework_ckks import _seal

    tensor = scheme4096.encrypt_tensor(np.array([0.5]), keys4096.public)
    data = tensors_to_bytes([tensor])
    folder = Path(_seal._private_folder())
    assert folder.stat().st_mode & 0o777 == 0o700
    seen: list[str] = []
    original = _seal.write_file

    def spy(path: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(_seal, "write_file", spy)
    tensors_from_bytes(data, keys4096.public)
    keys4096.secret.to_bytes()
    assert seen and all(Path(p).parent == folder for p in seen)
    assert len(set(seen)) == len(seen)  # a fresh random name every time
    assert list(folder.iterdir()) == []


PARTY = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import numpy as np
    from hennframework_ckks import CKKSPublicKey, CKKSScheme, FileRefresher, tensors_to_bytes

    folder = Path(sys.argv[1])
    public = CKKSPublicKey.from_bytes((folder / "public.key").read_bytes())
    scheme = CKKSScheme(public.params)
    x = scheme.encrypt_tensor(np.array([0.5, -0.75, 0.9]), public)
    square = x * x                      # uses the only level of n4096
    refresher = FileRefresher(folder / "exchange", public, timeout=120)
    (fresh,) = refresher([square])      # the owner process decrypts and re-encrypts
    fourth = fresh * fresh              # possible again
    (folder / "result.bin").write_bytes(tensors_to_bytes([fourth]))
    print("party done", refresher.calls)
    """
)


def test_two_processes_exchange_a_refresh(
    tmp_path: Path, scheme4096: CKKSScheme, keys4096: KeySet
) -> None:
    """The owner (secret key) and the party (public key only) run as separate processes."""
    (tmp_path / "public.key").write_bytes(keys4096.public.to_bytes())
    (tmp_path / "secret.key").write_bytes(keys4096.secret.to_bytes())
    (tmp_path / "party.py").write_text(PARTY)
    owner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hennframework_ckks.refresh",
            "serve",
            str(tmp_path / "exchange"),
            "--secret-key",
            str(tmp_path / "secret.key"),
            "--count",
            "1",
            "--timeout",
            "120",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    party = subprocess.run(
        [sys.executable, str(tmp_path / "party.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    owner_out, owner_err = owner.communicate(timeout=180)
    assert party.returncode == 0, party.stderr
    assert owner.returncode == 0, owner_err
    assert "party done 1" in party.stdout
    assert "answered 1 refresh request" in owner_out
    (result,) = tensors_from_bytes((tmp_path / "result.bin").read_bytes(), keys4096.public)
    np.testing.assert_allclose(
        scheme4096.decrypt_tensor(result, keys4096.secret),
        np.array([0.5, -0.75, 0.9]) ** 4,
        atol=1e-2,
    )
    assert not list((tmp_path / "exchange").glob("*.re*"))  # request and response consumed


def test_refresh_to_a_chosen_or_learned_level(scheme8192: CKKSScheme, keys8192: KeySet) -> None:
    """level=int refreshes to that level; level="auto" to what the last round used plus margin."""
    top = scheme8192.params.levels
    w = scheme8192.encrypt_tensor(np.array([0.5, -0.25]), keys8192.public)
    fixed = OwnerRefresher(scheme8192, keys8192, level=2)
    assert fixed([w])[0].levels_left == 2
    auto = OwnerRefresher(scheme8192, keys8192, level="auto", margin=1)
    (first,) = auto([w])
    assert first.levels_left == top  # nothing observed yet
    (second,) = auto([first * first * first])  # this round used 2 levels
    assert second.levels_left == 3
    np.testing.assert_allclose(
        scheme8192.decrypt_tensor(second, keys8192.secret), [0.125, -0.015625], atol=2e-3
    )
    # sent back unused (a refused step): nothing was consumed, the retry gets the top level,
    # and the rounds after keep one level more
    (third,) = auto([second])
    assert third.levels_left == top and auto.margin == 2
    (fourth,) = auto([third * third])  # this round used 1 level
    assert fourth.levels_left == 3
    # an empty round refreshes nothing and is no round: it neither counts nor teaches
    assert auto([]) == [] and OwnerRefresher(scheme8192, keys8192, level="auto")([]) == []
    calls = auto.calls
    (fifth,) = auto([fourth * fourth])
    assert fifth.levels_left == 3 and auto.calls == calls + 1


def test_the_default_refresher_learns_the_margin_a_model_needs(
    scheme8192: CKKSScheme, keys8192: KeySet
) -> None:
    """The training loops' refresher gives exactly the levels the last step used; a step refused
    at that level (its values need a higher level's range) is retried on top-level weights and
    the later rounds keep a level more: one refused step in all, and training goes on."""
    provider = scheme8192.owner_refresher(keys8192)
    assert isinstance(provider, OwnerRefresher) and provider.margin == 0
    top = scheme8192.params.levels
    w = scheme8192.encrypt_tensor(np.array([0.5, -0.25]), keys8192.public)
    (first,) = provider([w])
    (second,) = provider([first * first])  # used 1 level: gets exactly 1
    assert second.levels_left == 1
    (retry,) = provider([second])  # refused, sent back unused
    assert retry.levels_left == top and provider.margin == 1
    (after,) = provider([retry * retry])
    assert after.levels_left == 2
    with pytest.raises(InputError, match="margin"):
        OwnerRefresher(scheme8192, keys8192, level="auto", margin=-1)


def test_values_near_a_levels_range_get_a_level_more(
    scheme8192: CKKSScheme, keys8192: KeySet
) -> None:
    """Weights whose values already reach half of what level 0 holds (about 128 at ``n8192``)
    would likely be refused there by the next step: the refresher gives one level more than the
    last step used, without waiting for the refusal (the XOR network's weights are such)."""
    for values, expected in (([40.0, -20.0], 1), ([80.0, -40.0], 2)):
        provider = scheme8192.owner_refresher(keys8192)
        w = scheme8192.encrypt_tensor(np.array(values), keys8192.public)
        (first,) = provider([w])
        (second,) = provider([first * 1.5])  # one level used
        assert second.levels_left == expected, values
        np.testing.assert_allclose(
            scheme8192.decrypt_tensor(second, keys8192.secret), 1.5 * np.array(values), rtol=1e-4
        )
        assert provider.margin == 0  # nothing was refused


def test_serve_refresh_gives_the_levels_the_partys_steps_use(
    scheme8192: CKKSScheme, keys8192: KeySet, tmp_path: Path
) -> None:
    """``henn serve-refresh`` (``serve_refresh``) refreshes CKKS tensors through the scheme's own
    provider, as in-process training does: to the top first, then to the levels the party's
    last step used, in the same packing."""
    import threading

    from hennframework.workflow import FileRefresher as PartyRefresher
    from hennframework.workflow import serve_refresh

    secret_path = hio.save_secret_key(tmp_path / "owner.key.henn", keys8192)
    secret = hio.load_secret_key(secret_path)
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    served: list[Any] = []
    server = threading.Thread(
        target=lambda: served.append(serve_refresh(secret, exchange, max_requests=2, poll=0.01)),
        daemon=True,
    )
    server.start()
    party = PartyRefresher(exchange, scheme=scheme8192, key_id=keys8192.key_id, timeout=60)
    values = np.array([[0.5, -0.25], [0.125, 1.0]])
    w = scheme8192.encrypt_tensor(values, keys8192.public)
    (first,) = party([w])
    assert first.levels_left == scheme8192.params.levels and first.layout == w.layout
    (second,) = party([first * first])  # the party's "step" used one level
    assert second.levels_left == 1
    np.testing.assert_allclose(
        scheme8192.decrypt_tensor(second, keys8192.secret), values**2, atol=2e-3
    )
    server.join(timeout=60)
    assert served and served[0].requests == 2 and not served[0].errors


def test_the_plugins_file_owner_gives_the_levels_the_partys_steps_use(
    scheme8192: CKKSScheme, keys8192: KeySet, tmp_path: Path
) -> None:
    """``FileRefreshOwner`` (``python -m hennframework_ckks.refresh serve``) refreshes as
    ``henn serve-refresh`` and in-process training do: the top first, then the levels used."""
    import threading

    owner = FileRefreshOwner(tmp_path / "exchange", keys8192)
    server = threading.Thread(target=lambda: owner.serve(count=2, timeout=60), daemon=True)
    server.start()
    party = FileRefresher(tmp_path / "exchange", keys8192.public, timeout=60)
    w = scheme8192.encrypt_tensor(np.array([0.5, -0.25]), keys8192.public)
    (first,) = party([w])
    assert first.levels_left == scheme8192.params.levels
    (second,) = party([first * first * first])  # two levels used
    assert second.levels_left == 2
    np.testing.assert_allclose(
        scheme8192.decrypt_tensor(second, keys8192.secret), [0.125, -0.015625], atol=2e-3
    )
    server.join(timeout=60)
    assert owner.refreshes == 2


def test_a_first_round_counts_the_levels_used_from_the_top(
    scheme8192: CKKSScheme, keys8192: KeySet
) -> None:
    """Weights are encrypted at the top level at most: a first round on weights that went
    through a step gives the levels below the top it used plus the margin, not the top."""
    top = scheme8192.params.levels
    w = scheme8192.encrypt_tensor(np.array([0.5, -0.25]), keys8192.public)
    auto = OwnerRefresher(scheme8192, keys8192, level="auto", margin=1)
    (first,) = auto([w * w])  # one level used since the encryption
    assert first.levels_left == 2 < top
    (second,) = auto([first * first])
    assert second.levels_left == 2
    # encrypted below the top: the estimate is too high, never too low
    from hennframework_ckks.tensor import encrypt_array

    low = encrypt_array(keys8192.public, np.array([0.5]), level=3)
    (again,) = OwnerRefresher(scheme8192, keys8192, level="auto", margin=0)([low * low])
    assert again.levels_left == top - 2 >= 1
