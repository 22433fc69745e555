"""``henn train --resume`` on CKKS makes progress after every owner refresh.

A CKKS step can use every level a fresh encryption has (here: 5 of 5 at n8192 for a one-layer
network with a degree-3 activation). The refresh rule used to ask for 1.5 times the last step's
cost (and 8 bits for a first step), which no fresh ciphertext has, so a resumed run stopped again
before its first step, forever.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hennframework import io as hio
from hennframework.io.models import ModelBundle
from hennframework.nn import Batch, Sequential, TrainOutcome, train
from hennframework.nn.training import refresh_due
from hennframework.scheme import KeySet
from hennframework.workflow import owner

from hennframework_ckks import CKKSScheme

X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
Y = np.array([[0], [1], [1], [0]], dtype=float)


def party_training(bundle: ModelBundle, batches: list[Batch], **options: object) -> TrainOutcome:
    """The party's run: the one loop, stopping cleanly when the budget runs out."""
    model = bundle.model
    return train(
        model, batches, history=model.history, state=model.state, when_exhausted="stop", **options
    )


def assert_trained_as_plaintext(model: Sequential, plain: Sequential, keys: KeySet) -> None:
    """``model`` (encrypted) decrypts to the weights of ``plain``, trained the same way
    unencrypted, within CKKS's error."""
    got = model.decrypt(keys.secret)
    for (_, _, a), (_, _, b) in zip(got.parameters(), plain.parameters(), strict=True):
        np.testing.assert_allclose(a, b, atol=2e-3)


@pytest.fixture(scope="module")
def key_files(tmp_path_factory: pytest.TempPathFactory, keys8192: KeySet) -> tuple[Path, Path]:
    return hio.save_keys(tmp_path_factory.mktemp("ckks-resume"), keys8192)


def test_every_resume_after_an_owner_refresh_takes_a_step(
    tmp_path: Path, key_files: tuple[Path, Path], scheme8192: CKKSScheme, keys8192: KeySet
) -> None:
    secret, public = key_files
    plain = Sequential.mlp([3, 1], activation="taylor3", seed=0, init_scale=1.0)
    model = hio.save_model(tmp_path / "m0.henn", plain.encrypt(keys8192, scheme8192))
    key = hio.load_public_key(public)
    bundle = hio.load_model(model, scheme=key.scheme, expect_key=key)
    fresh = bundle.model.min_noise_budget()
    assert fresh == scheme8192.fresh_noise_budget(bundle.model.weights()[0]) == 5.0

    outcome = party_training(bundle, [Batch(X, Y)], epochs=3, learning_rate=0.3)
    # a fresh model takes its first step even though it uses every level
    assert (outcome.status, outcome.steps, outcome.completed_steps) == ("needs-refresh", 1, 1)
    assert bundle.training.step_cost == fresh and bundle.model.min_noise_budget() == 0.0
    path = hio.save_model(tmp_path / "m1.henn", bundle)
    for done in (2, 3):
        refreshed = owner.refresh_model(secret, path, tmp_path / f"r{done}.henn")
        assert refreshed["noise_budget_after"] == fresh
        bundle = hio.load_model(tmp_path / f"r{done}.henn", scheme=key.scheme, expect_key=key)
        outcome = party_training(bundle, [Batch(X, Y)], epochs=3, learning_rate=0.3, resume=True)
        assert outcome.steps == 1 and outcome.completed_steps == done, outcome.message
        path = hio.save_model(tmp_path / f"m{done}.henn", bundle)
    assert outcome.status == "complete" and bundle.history.steps == 3
    plain.fit(X, Y, epochs=3, learning_rate=0.3)
    assert_trained_as_plaintext(bundle.model, plain, keys8192)


def test_a_step_that_never_fits_is_refused_once_and_clearly(
    scheme8192: CKKSScheme, keys8192: KeySet
) -> None:
    """Two layers of degree 3 need more than n8192's 5 levels: no refresh is asked for."""
    model = Sequential.mlp([3, 2, 1], activation="taylor3", seed=0).encrypt(keys8192, scheme8192)
    calls: list[int] = []

    def refresh(tensors: list[object]) -> list[object]:
        calls.append(len(tensors))
        return [scheme8192.refresh(t, keys8192) for t in tensors]

    bundle = hio.ModelBundle(model, None)
    for provider in (None, refresh):
        outcome = party_training(
            bundle, [Batch(X, Y)], epochs=2, learning_rate=0.3, refresh=provider
        )
        assert outcome.status == "refused" and outcome.steps == 0
        assert "more noise budget (levels) than a fresh encryption has" in outcome.message
        assert "parameter set with more levels" in outcome.message
    assert calls == []


def test_refresh_due_keeps_its_margins() -> None:
    """Weights with a fresh budget are never sent for a refresh (the tests above run the loop);
    for the others ``refresh_due`` keeps its margins."""
    assert refresh_due(12.0, 11.0, 0.0, 8.0)  # 12 - 16.5 < 0
    assert not refresh_due(12.0, 11.0, 0.0, 8.0, fresh_budget=12.0)  # a refresh gives no more
    assert not refresh_due(12.0, None, 0.0, 8.0, fresh_budget=12.0)
    assert refresh_due(11.0, 11.0, 0.0, 8.0, fresh_budget=12.0)  # not fresh: margins apply
    assert refresh_due(5.0, None, 2.0, 8.0) and not refresh_due(5.0, None, 2.0, 0.0)
    assert refresh_due(11.9, 0.1, 11.8, 8.0)
    assert not refresh_due(40.0, 10.0, 2.0, 8.0)  # 40 - 15 >= 2
    assert refresh_due(16.0, 10.0, 2.0, 8.0)  # 16 - 15 < 2
    assert not refresh_due(17.0, 10.0, 2.0, 8.0)
    assert refresh_due(None, 1.0, 0.0, 8.0) is False


def test_predicting_with_used_weights_says_to_refresh_first(
    tmp_path: Path,
    key_files: tuple[Path, Path],
    scheme8192: CKKSScheme,
    keys8192: KeySet,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Training leaves CKKS weights with the levels its last step did not use; a prediction
    with them is refused (never wrong), and the error tells the party to have them refreshed."""
    from hennframework.cli import main as henn

    secret, public = key_files
    plain = Sequential.mlp([3, 1], activation="taylor3", seed=0, init_scale=1.0)
    model = hio.save_model(tmp_path / "m0.henn", plain.encrypt(keys8192, scheme8192))
    key = hio.load_public_key(public)
    bundle = hio.load_model(model, scheme=key.scheme, expect_key=key)
    party_training(bundle, [Batch(X, Y)], epochs=1, learning_rate=0.3)
    trained = hio.save_model(tmp_path / "trained.henn", bundle)
    predict = ["predict", "--public", str(public), "--data", "xor"]
    capsys.readouterr()
    assert henn([*predict, "--model", str(trained), "--out", str(tmp_path / "p.henn")]) == 1
    error = capsys.readouterr().err
    assert "0 of a fresh encryption's 5 levels left" in error
    assert f"henn refresh --secret SECRET --model {trained}" in error
    assert not (tmp_path / "p.henn").exists()
    summary = owner.refresh_model(secret, trained, tmp_path / "fresh.henn")
    assert (summary["noise_budget_after"], summary["noise_budget_unit"]) == (5.0, "levels")
    fresh = str(tmp_path / "fresh.henn")
    assert henn([*predict, "--model", fresh, "--out", str(tmp_path / "p.henn")]) == 0


@pytest.mark.parametrize("mode", ["refreshed", "skipped", "owner gone"])
def test_training_over_the_exchange_leaves_a_model_that_predicts(
    tmp_path: Path,
    key_files: tuple[Path, Path],
    scheme8192: CKKSScheme,
    keys8192: KeySet,
    capsys: pytest.CaptureFixture[str],
    mode: str,
) -> None:
    """``henn train --exchange`` has the owner refresh the trained weights once more while it is
    answering, so ``henn predict`` works on the saved model. ``--no-final-refresh`` leaves them
    as the last step did, and so does an owner that stopped answering before the end (the
    trained model is saved all the same, with a warning); a prediction is then refused and
    names the fix."""
    import json
    import threading

    from hennframework.cli import main as henn
    from hennframework.workflow import request_stop, serve_refresh

    secret, public = key_files
    plain = Sequential.mlp([3, 1], activation="taylor3", seed=0, init_scale=1.0)
    model = hio.save_model(tmp_path / "m0.henn", plain.encrypt(keys8192, scheme8192))
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    owner_key = hio.load_secret_key(secret)
    # the owner that leaves answers the two refreshes the steps need, not the final one
    answers = 2 if mode == "owner gone" else None
    server = threading.Thread(
        target=lambda: serve_refresh(
            owner_key, exchange, poll=0.01, idle_timeout=120, max_requests=answers
        ),
        daemon=True,
    )
    server.start()
    try:
        train = ["train", "--json", "--model", str(model), "--public", str(public)]
        train += ["--data", "xor", "--epochs", "3", "--learning-rate", "0.3"]
        train += ["--exchange", str(exchange), "--out", str(tmp_path / "trained.henn")]
        train += {"skipped": ["--no-final-refresh"], "owner gone": ["--refresh-timeout", "1"]}.get(
            mode, []
        )
        capsys.readouterr()
        assert henn(train) == 0
        output = capsys.readouterr()
        summary = json.loads(output.out)
    finally:
        request_stop(exchange)
        server.join(timeout=30)
    assert summary["status"] == "complete" and summary["completed_steps"] == 3
    # a step uses all 5 levels: one refresh before each later step, and the final one
    assert summary["refreshes"] == (3 if mode == "refreshed" else 2)
    if mode == "owner gone":
        assert summary["final_refresh"].startswith("failed: ")
        assert "henn: warning: the final refresh failed" in output.err
        assert f"runs `henn refresh --secret SECRET.henn --model {tmp_path}" in output.err
    else:
        assert summary["final_refresh"] == ("done" if mode == "refreshed" else "")
        assert "warning" not in output.err
    trained = hio.load_model(tmp_path / "trained.henn", scheme=scheme8192)
    assert trained.model.min_noise_budget() == (5.0 if mode == "refreshed" else 0.0)
    plain.fit(X, Y, epochs=3, learning_rate=0.3)  # the refresh changed no value
    assert_trained_as_plaintext(trained.model, plain, keys8192)
    predict = ["predict", "--public", str(public), "--data", "xor", "--no-progress"]
    predict += ["--model", str(tmp_path / "trained.henn"), "--out", str(tmp_path / "p.henn")]
    assert henn(predict) == (0 if mode == "refreshed" else 1)
    assert (tmp_path / "p.henn").exists() == (mode == "refreshed")


def test_a_failed_final_refresh_keeps_the_trained_weights(
    scheme8192: CKKSScheme, keys8192: KeySet
) -> None:
    """The owner gone before the final refresh: the run still completes with the trained
    weights, and the outcome says that the refresh failed and what to do."""
    from hennframework.exceptions import NoiseBudgetExhaustedError

    model = Sequential.mlp([3, 1], activation="taylor3", seed=0).encrypt(keys8192, scheme8192)
    calls: list[int] = []

    def owner_leaves_after_two(tensors: list[object]) -> list[object]:
        calls.append(len(tensors))
        if len(calls) > 2:
            raise NoiseBudgetExhaustedError("no answer from the owner within 600 s")
        return [scheme8192.refresh(t, keys8192) for t in tensors]

    bundle = hio.ModelBundle(model, None)
    outcome = party_training(
        bundle,
        [Batch(X, Y)],
        epochs=3,
        learning_rate=0.3,
        refresh=owner_leaves_after_two,
        finish_fresh=True,
    )
    assert outcome.status == "complete" and outcome.completed_steps == 3 and len(calls) == 3
    assert outcome.final_refresh == "failed: no answer from the owner within 600 s"
    assert "have the key holder refresh the model before predicting" in outcome.message
    assert outcome.refreshes == 2 and model.min_noise_budget() == 0.0
    plain = Sequential.mlp([3, 1], activation="taylor3", seed=0)
    plain.fit(X, Y, epochs=3, learning_rate=0.3)
    assert_trained_as_plaintext(model, plain, keys8192)


def test_fit_can_finish_with_weights_that_predict(scheme8192: CKKSScheme, keys8192: KeySet) -> None:
    """``fit(..., finish_fresh=True)``: the last step leaves no level, the final refresh gives
    them back, and the encrypted prediction equals plaintext training's."""
    from hennframework.nn import OwnerRefresher

    model = Sequential.mlp([3, 1], activation="taylor3", seed=0).encrypt(keys8192, scheme8192)
    refresher = OwnerRefresher(scheme8192, keys8192)
    model.fit(X, Y, epochs=2, learning_rate=0.3, refresh=refresher, finish_fresh=True)
    assert model.history.refreshes == 2 and model.min_noise_budget() > 0
    plain = Sequential.mlp([3, 1], activation="taylor3", seed=0)
    plain.fit(X, Y, epochs=2, learning_rate=0.3)
    predicted = scheme8192.decrypt_tensor(model.predict(X), keys8192.secret)
    np.testing.assert_allclose(predicted, plain.predict(X), atol=2e-3)
