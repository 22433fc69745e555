"""The refresh exchange and the party's training loop, in one process (threads for the owner)."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hennframework import io as hio
from hennframework.data.bundled import XOR_INPUTS, XOR_TARGETS
from hennframework.exceptions import InputError, KeyMismatchError, NoiseBudgetExhaustedError
from hennframework.io.models import ModelBundle
from hennframework.nn import Batch, Sequential, TrainingState, TrainOutcome, train
from hennframework.registry import get_backend
from hennframework.schemes.integer_vector import IntegerVectorScheme
from hennframework.workflow import owner, party
from hennframework.workflow.exchange import FileRefresher, request_stop, serve_refresh


def party_training(bundle: ModelBundle, batches: list[Batch], **options: Any) -> TrainOutcome:
    """The party's run: the one loop on the bundle's model, stopping cleanly when it must."""
    return train(
        bundle.model,
        batches,
        history=bundle.history,
        state=bundle.training,
        when_exhausted="stop",
        **options,
    )


@pytest.fixture(scope="module")
def scheme() -> IntegerVectorScheme:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return IntegerVectorScheme("default", backend=get_backend("numpy"))


@pytest.fixture
def owner_files(tmp_path: Path, scheme: IntegerVectorScheme) -> dict[str, Any]:
    keys_a, keys_b = scheme.keygen(seed=21), scheme.keygen(seed=22)
    hio.save_keys(tmp_path / "a", keys_a)
    hio.save_keys(tmp_path / "b", keys_b)
    secret_a = hio.load_secret_key(tmp_path / "a" / "secret.henn", scheme=scheme)
    secret_b = hio.load_secret_key(tmp_path / "b" / "secret.henn", scheme=scheme)
    return {
        "keys_a": keys_a,
        "keys_b": keys_b,
        "secret_a": secret_a,
        "secret_b": secret_b,
        "root": tmp_path,
    }


@pytest.fixture
def server(owner_files: dict[str, Any]) -> Iterator[Any]:
    """Start ``serve_refresh`` for key A in a thread; stop it at the end."""
    exchange = owner_files["root"] / "exchange"
    exchange.mkdir()

    def start(secret: Any = None, **kwargs: Any) -> Path:
        def run() -> None:
            serve_refresh(secret or owner_files["secret_a"], exchange, poll=0.01, **kwargs)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        return exchange

    threads: list[threading.Thread] = []
    yield start
    request_stop(exchange)
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive()


def _encrypted_xor(keys: Any) -> ModelBundle:
    return ModelBundle(Sequential.mlp([3, 4, 1], seed=0, init_scale=4.0).encrypt(keys))


def test_refresh_through_the_exchange(
    scheme: IntegerVectorScheme, owner_files: dict[str, Any], server: Any
) -> None:
    exchange = server()
    keys = owner_files["keys_a"]
    tensors = [scheme.encrypt_tensor(np.array([0.5, -2.0]), keys.public)]
    tensors.append(tensors[0] * tensors[0] * tensors[0])
    refresher = FileRefresher(exchange, scheme=scheme, key_id=keys.key_id, timeout=20, poll=0.01)
    fresh = refresher(tensors)
    assert refresher.calls == 1
    for before, after in zip(tensors, fresh, strict=True):
        assert after.shape == before.shape and after.key_id == keys.key_id
        assert after.noise_budget > before.noise_budget
        np.testing.assert_array_equal(
            scheme.decrypt_tensor(after, keys.secret), scheme.decrypt_tensor(before, keys.secret)
        )
    assert sorted(p.name for p in exchange.iterdir()) == [
        "server.json"
    ]  # request and response cleaned up


def test_training_with_the_exchange_matches_in_process_refresh(
    scheme: IntegerVectorScheme, owner_files: dict[str, Any], server: Any
) -> None:
    exchange = server()
    keys = owner_files["keys_a"]
    bundle = _encrypted_xor(keys)
    refresher = FileRefresher(exchange, scheme=scheme, key_id=keys.key_id, timeout=20, poll=0.01)
    batches = [Batch(XOR_INPUTS, XOR_TARGETS)]
    outcome = party_training(
        bundle, batches, epochs=60, learning_rate=0.1, refresh=refresher, absorb_noise=False
    )
    assert outcome.status == "complete" and outcome.completed_steps == 60
    assert outcome.refreshes >= 1 and refresher.calls == outcome.refreshes
    plain = Sequential.mlp([3, 4, 1], seed=0, init_scale=4.0)
    plain.fit(XOR_INPUTS, XOR_TARGETS, epochs=60, learning_rate=0.1)
    decrypted = bundle.model.decrypt(keys.secret).predict(XOR_INPUTS)
    np.testing.assert_allclose(
        decrypted, plain.predict(XOR_INPUTS), atol=0.02
    )  # fixed point vs float
    losses = bundle.history.decrypt(keys.secret, scheme)
    assert len(losses) == 60 and losses[-1] < losses[0]


def test_training_stops_cleanly_without_refresh_and_resumes(
    scheme: IntegerVectorScheme, owner_files: dict[str, Any], tmp_path: Path
) -> None:
    keys = owner_files["keys_a"]
    bundle = _encrypted_xor(keys)
    batches = [Batch(XOR_INPUTS, XOR_TARGETS)]
    outcome = party_training(bundle, batches, epochs=80, learning_rate=0.1, absorb_noise=False)
    assert outcome.status == "needs-refresh" and 0 < outcome.completed_steps < 80
    assert bundle.training.needs_refresh is True and "henn refresh" in outcome.message
    bundle.model.decrypt(keys.secret)  # still decryptable: it stopped before the budget ran out
    path = hio.save_model(tmp_path / "stopped.henn", bundle)
    summary = owner.refresh_model(
        owner_files["root"] / "a" / "secret.henn", path, tmp_path / "fresh.henn"
    )
    assert summary["noise_budget_after"] > summary["noise_budget_before"]
    resumed = hio.load_model(tmp_path / "fresh.henn", scheme=scheme)
    assert resumed.training.needs_refresh is False
    again = party_training(
        resumed, batches, epochs=1, learning_rate=0.5, resume=True
    )  # plan and lr come from the file
    assert again.completed_steps > outcome.completed_steps and resumed.training.learning_rate == 0.1
    with pytest.raises(InputError, match="resume"):
        party_training(resumed, batches * 2, epochs=1, learning_rate=0.1, resume=True)


def test_no_owner_answer_times_out_and_cleans_up(
    scheme: IntegerVectorScheme, owner_files: dict[str, Any], tmp_path: Path
) -> None:
    exchange = tmp_path / "quiet"
    exchange.mkdir()
    keys = owner_files["keys_a"]
    refresher = FileRefresher(exchange, scheme=scheme, key_id=keys.key_id, timeout=0.2, poll=0.01)
    with pytest.raises(NoiseBudgetExhaustedError, match="serve-refresh"):
        refresher([scheme.encrypt_tensor(np.ones(1), keys.public)])
    assert list(exchange.iterdir()) == []
    bundle = _encrypted_xor(keys)
    outcome = party_training(
        bundle,
        [Batch(XOR_INPUTS, XOR_TARGETS)],
        epochs=80,
        learning_rate=0.1,
        refresh=refresher,
        absorb_noise=False,
    )
    assert outcome.status == "needs-refresh"
    with pytest.raises(Exception, match="does not exist"):
        FileRefresher(tmp_path / "missing", scheme=scheme, key_id=keys.key_id)


def test_owner_refuses_ciphertexts_under_another_key(
    scheme: IntegerVectorScheme, owner_files: dict[str, Any], server: Any
) -> None:
    exchange = server(owner_files["secret_b"], max_requests=5)
    keys_a = owner_files["keys_a"]
    tensor = scheme.encrypt_tensor(np.ones(2), keys_a.public)
    early = FileRefresher(exchange, scheme=scheme, key_id=keys_a.key_id, timeout=5, poll=0.01)
    _wait_for(exchange / "server.json")
    (exchange / "server.json").unlink()  # pretend the party cannot see who serves
    with pytest.raises(KeyMismatchError, match=r"refused.*this owner holds key"):
        early([tensor])
    assert not list(exchange.glob("*.henn"))


def _wait_for(path: Path) -> None:
    for _ in range(1000):
        if path.exists():
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"{path} never appeared")


def test_the_party_sees_the_wrong_owner_before_sending(
    scheme: IntegerVectorScheme, owner_files: dict[str, Any], server: Any
) -> None:
    exchange = server(owner_files["secret_b"])
    keys_a = owner_files["keys_a"]
    _wait_for(exchange / "server.json")
    refresher = FileRefresher(exchange, scheme=scheme, key_id=keys_a.key_id, timeout=5)
    with pytest.raises(KeyMismatchError, match="holds key"):
        refresher([scheme.encrypt_tensor(np.ones(1), keys_a.public)])
    assert not list(exchange.glob("*.request.henn"))


def test_server_stops_on_request_and_on_idle(owner_files: dict[str, Any], tmp_path: Path) -> None:
    exchange = tmp_path / "idle"
    summary = serve_refresh(owner_files["secret_a"], exchange, idle_timeout=0.05, poll=0.01)
    assert summary.stopped_by == "idle timeout" and summary.requests == 0
    request_stop(exchange)
    summary = serve_refresh(owner_files["secret_a"], exchange, idle_timeout=10, poll=0.01)
    assert summary.stopped_by == "stop file" and not (exchange / "STOP").exists()
    assert not (exchange / "server.json").exists()
    with pytest.raises(KeyMismatchError, match="not a pair"):
        serve_refresh(
            owner_files["secret_a"],
            exchange,
            public=hio.load_public_key(owner_files["root"] / "b" / "public.henn"),
        )


def test_owner_and_party_functions_on_files(
    scheme: IntegerVectorScheme, owner_files: dict[str, Any], tmp_path: Path
) -> None:
    root = owner_files["root"]
    summary = owner.encrypt_model(
        root / "a" / "public.henn", tmp_path / "m.henn", owner.make_model("mlp:3,4,1", seed=3)
    )
    assert summary["architecture"].startswith("sequential 3-4-1") and summary["parameters"] == 16
    csv = tmp_path / "xor.csv"
    csv.write_text(
        "x1,x2,bias,y\n0,0,1,0\n0,1,1,1\n# comment\n1,0,1,1\n1,1,1,0\n", encoding="utf-8"
    )
    outcome, info = party.train(
        tmp_path / "m.henn",
        root / "a" / "public.henn",
        party.DataOptions(str(csv)),
        tmp_path / "t.henn",
        epochs=5,
        learning_rate=0.1,
    )
    assert outcome.status == "complete" and info["rows"] == 4
    predicted = party.predict(
        tmp_path / "t.henn",
        root / "a" / "public.henn",
        party.DataOptions("xor"),
        tmp_path / "p.henn",
    )
    assert predicted["encrypted"] and "predictions" not in predicted
    values = owner.decrypt_predictions(root / "a" / "secret.henn", tmp_path / "p.henn")[
        "predictions"
    ]
    plain, model_summary = owner.decrypt_model(
        root / "a" / "secret.henn", tmp_path / "t.henn", tmp_path / "plain.henn"
    )
    np.testing.assert_allclose(values, plain.model.predict(XOR_INPUTS).reshape(-1), atol=1e-3)
    assert (
        model_summary["steps"] == 5
        and len(model_summary["losses"]) == 5
        and model_summary["undecryptable_losses"] == 0
    )
    history = owner.decrypt_history(root / "a" / "secret.henn", tmp_path / "t.henn")
    assert [r["loss"] for r in history["records"]] == model_summary["losses"] or np.allclose(
        [r["loss"] for r in history["records"]], model_summary["losses"], atol=1e-6
    )
    # switching: B reads it, A no longer can
    owner.make_switch_key(
        root / "a" / "secret.henn", root / "b" / "secret.henn", tmp_path / "k.henn"
    )
    switched = party.switch_model(tmp_path / "t.henn", tmp_path / "k.henn", tmp_path / "s.henn")
    assert switched["to_key_id"] == owner_files["keys_b"].key_id
    loaded = hio.load_model(tmp_path / "s.henn")
    assert (
        loaded.key_id == owner_files["keys_b"].key_id
        and loaded.history.steps == 0
        and loaded.training == TrainingState()
    )
    with pytest.raises(KeyMismatchError):
        owner.decrypt_model(root / "a" / "secret.henn", tmp_path / "s.henn")
    plain_b, _ = owner.decrypt_model(root / "b" / "secret.henn", tmp_path / "s.henn")
    np.testing.assert_array_equal(
        plain_b.model.predict(XOR_INPUTS), plain.model.predict(XOR_INPUTS)
    )
    with pytest.raises(KeyMismatchError, match="switches from key"):
        party.switch_model(tmp_path / "s.henn", tmp_path / "k.henn", tmp_path / "again.henn")
    with pytest.raises(KeyMismatchError, match="public key"):
        party.train(
            tmp_path / "s.henn",
            root / "a" / "public.henn",
            party.DataOptions("xor"),
            tmp_path / "x.henn",
        )
    kept = party.switch_model(
        tmp_path / "t.henn", tmp_path / "k.henn", tmp_path / "kept.henn", keep_history=True
    )
    assert kept["history_kept"]
    history_b = owner.decrypt_history(root / "b" / "secret.henn", tmp_path / "kept.henn")
    np.testing.assert_allclose(
        [r["loss"] for r in history_b["records"]], model_summary["losses"], atol=1e-6
    )


def test_the_owner_refuses_files_under_a_foreign_key(
    scheme: IntegerVectorScheme,
    owner_files: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A model encrypted under someone else's key is refused by the owner, before decryption."""
    root = owner_files["root"]
    stranger = scheme.keygen(seed=23)
    hio.save_keys(tmp_path / "stranger", stranger)
    owner.encrypt_model(
        tmp_path / "stranger" / "public.henn", tmp_path / "m.henn", owner.make_model("xor", seed=0)
    )
    party.predict(
        tmp_path / "m.henn",
        tmp_path / "stranger" / "public.henn",
        party.DataOptions("xor"),
        tmp_path / "p.henn",
    )
    from hennframework.schemes.integer_vector import IntegerVectorCodec

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a ciphertext was read before the key check")

    monkeypatch.setattr(IntegerVectorCodec, "read_tensors", never)
    secret_a = root / "a" / "secret.henn"
    refusals = (
        lambda: owner.decrypt_model(secret_a, tmp_path / "m.henn"),
        lambda: owner.decrypt_predictions(secret_a, tmp_path / "p.henn"),
        lambda: owner.decrypt_history(secret_a, tmp_path / "m.henn"),
        lambda: owner.refresh_model(secret_a, tmp_path / "m.henn", tmp_path / "r.henn"),
        lambda: party.predict(
            tmp_path / "m.henn", root / "a" / "public.henn", party.DataOptions("xor"), None
        ),
    )
    for refuse in refusals:
        with pytest.raises(KeyMismatchError, match="someone else's key") as caught:
            refuse()
        assert stranger.key_id in str(caught.value)
        assert owner_files["keys_a"].key_id in str(caught.value)
    assert not (tmp_path / "r.henn").exists()


def test_inspect_verifies_key_fingerprints_and_only_then_says_so(
    scheme: IntegerVectorScheme,
    owner_files: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import copy
    import json

    from hennframework.cli import main as henn
    from hennframework.io.codecs import EntrySink
    from hennframework.io.container import write_bundle

    root, key_id = owner_files["root"], owner_files["keys_a"].key_id
    for name in ("public.henn", "secret.henn"):
        assert henn(["inspect", str(root / "a" / name), "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["key_id"] == key_id and info["fingerprint_verified"] is True
        assert info["fingerprint_covers"] == ["encryption:1", "product:1"]
    assert henn(["inspect", str(root / "a" / "public.henn")]) == 0
    assert f"key {key_id} (fingerprint verified)" in capsys.readouterr().out
    owner.encrypt_model(root / "a" / "public.henn", tmp_path / "m.henn", owner.make_model("xor"))
    assert henn(["inspect", str(tmp_path / "m.henn")]) == 0
    out = capsys.readouterr().out
    assert f"key {key_id} (as recorded; not verified)" in out and "fingerprint verified" not in out
    # key B's public key under key A's id: inspect refuses it, and so does every command
    forged = copy.deepcopy(owner_files["keys_b"].public)
    forged.key_id = key_id
    for key in [*forged.encryption.values(), *forged.evaluation.keys.values()]:
        key.to_key_id = key_id
        if key.from_key_id != "identity":
            key.from_key_id = key_id
    codec = hio.codec_for(scheme)
    sink = EntrySink()
    meta = codec.write_public_key(forged, sink, "pk.")
    path = write_bundle(
        tmp_path / "forged.henn",
        "public-key",
        arrays=sink.arrays,
        metadata={"public_key": meta},
        key_id=key_id,
        scheme=codec.scheme_name,
        parameter_set=codec.parameters(scheme),
    )
    assert henn(["inspect", str(path)]) == 1
    err = capsys.readouterr().err
    assert key_id in err and owner_files["keys_b"].key_id in err
    encrypt = ["encrypt-model", "--public", str(path), "--arch", "xor", "--out"]
    assert henn([*encrypt, str(tmp_path / "never.henn")]) == 1
    assert not (tmp_path / "never.henn").exists()


def test_party_training_defaults_follow_the_model_and_its_scheme() -> None:
    """Word models: 32 reviews at 0.1, 256 at 0.025 under CKKS; tables: all rows at 0.1; given
    values always win."""
    from types import SimpleNamespace

    words = Sequential.bag_of_words(20, 4, seed=0)
    table = Sequential.mlp([3, 4, 1], seed=0)
    plain_words = ModelBundle(words)
    assert party.training_defaults(plain_words, None, None) == (32, 0.1)
    assert party.training_defaults(ModelBundle(table), None, None) == (None, 0.1)
    assert party.training_defaults(ModelBundle(table), 4, 0.5) == (4, 0.5)
    ckks_words = SimpleNamespace(  # a bundle of a CKKS word model: only these fields are read
        model=words, encrypted=True, scheme=SimpleNamespace(name="ckks")
    )
    assert party.training_defaults(ckks_words, None, None) == (256, 0.025)  # type: ignore[arg-type]
    assert party.training_defaults(ckks_words, 8, None) == (8, 0.025)  # type: ignore[arg-type]
    iv = IntegerVectorScheme("default")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encrypted_words = ModelBundle(words.encrypt(iv.keygen(seed=3, max_dim=1)))
    assert party.training_defaults(encrypted_words, None, None) == (32, 0.1)
