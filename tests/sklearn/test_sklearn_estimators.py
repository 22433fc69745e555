"""hennframework.sklearn: the estimators in Pipeline, cross-validation and grid search; keys,
pickling, export for the party workflow, errors."""

from __future__ import annotations

import copy
import os
import pickle
import re
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sklearn")

import joblib
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_iris, make_classification
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from hennframework.exceptions import (
    InputError,
    InsecureParametersWarning,
    NoiseBudgetExhaustedError,
    OverflowRiskError,
    SerializationError,
    TrainingDivergedError,
)
from hennframework.io import load_model, load_public_key, load_secret_key
from hennframework.nn import Sequential
from hennframework.sklearn import (
    EncryptedLogisticRegression,
    EncryptedMLPClassifier,
)


@pytest.fixture(autouse=True)
def _quiet_insecure_warning() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureParametersWarning)
        yield


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    """120 rows of breast_cancer (both classes), standardised and clipped to |x| <= 3."""
    X, y = load_breast_cancer(return_X_y=True)
    rows = np.random.default_rng(0).permutation(len(X))[:120]
    scaled = StandardScaler().fit_transform(X[rows])
    return np.clip(scaled, -3, 3), y[rows]


@pytest.fixture(scope="module")
def fitted(cancer: tuple[np.ndarray, np.ndarray]) -> EncryptedMLPClassifier:
    X, y = cancer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureParametersWarning)
        return EncryptedMLPClassifier(
            epochs=15, batch_size=32, learning_rate=0.05, random_state=0
        ).fit(X, y)


# -- the estimator contract --------------------------------------------------------------------
def test_constructor_stores_parameters_as_given_and_clone_copies_them() -> None:
    sizes = [4, 3]  # a list stays a list: no validation or conversion in __init__
    est = EncryptedMLPClassifier(sizes, learning_rate=-5.0, activation="nonsense", epochs=0)
    assert est.hidden_layer_sizes is sizes
    params = est.get_params()
    assert params["learning_rate"] == -5.0 and params["activation"] == "nonsense"
    assert set(params) == {
        "hidden_layer_sizes",
        "activation",
        "learning_rate",
        "epochs",
        "batch_size",
        "scheme",
        "params",
        "backend",
        "encrypt",
        "init_scale",
        "random_state",
        "verbose",
    }
    twin = clone(est.set_params(epochs=3))
    assert twin.get_params() == est.get_params() and twin is not est
    assert "hidden_layer_sizes" not in EncryptedLogisticRegression().get_params()


def test_secret_key_is_not_a_parameter_and_not_in_repr(fitted: EncryptedMLPClassifier) -> None:
    secret = fitted._keys.secret
    assert all(value is not secret for value in fitted.get_params(deep=True).values())
    assert "secret" not in repr(fitted).lower() and "_keys" not in repr(fitted)
    assert not any(
        name.endswith("_") and "key" in name and name != "key_id_" for name in vars(fitted)
    )
    assert isinstance(fitted.key_id_, str) and fitted.key_id_ == fitted._keys.key_id


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes"),
        ({"hidden_layer_sizes": "8"}, "hidden_layer_sizes"),
        ({"activation": "relu"}, "activation must be one of"),
        ({"activation": "exact"}, "only with encrypt=False"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": 2.5}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"encrypt": "yes"}, "encrypt must be True or False"),
        ({"init_scale": -1}, "init_scale"),
    ],
)
def test_bad_parameters_are_refused_in_fit_with_their_names(
    settings: dict[str, Any], message: str, cancer: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = cancer
    est = EncryptedMLPClassifier(**settings)  # construction never validates
    with pytest.raises(InputError, match=message):
        est.fit(X[:10], y[:10])


def test_exact_sigmoid_trains_only_unencrypted(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = cancer
    est = EncryptedMLPClassifier(activation="exact", encrypt=False, epochs=30, random_state=0)
    assert est.fit(X, y).score(X, y) > 0.9


def test_targets_must_be_class_labels(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = cancer
    with pytest.raises(ValueError, match="Unknown label type"):
        EncryptedMLPClassifier().fit(X, X[:, 0])
    with pytest.raises(InputError, match="at least 2 classes"):
        EncryptedMLPClassifier().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match=r"y should be a 1d array|1-D array of class labels"):
        EncryptedMLPClassifier().fit(X, np.stack([y, 1 - y], axis=1))


# -- learning, encrypted against plain ----------------------------------------------------------
def test_encrypted_training_matches_plain_training(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = cancer
    settings: dict[str, Any] = {"epochs": 15, "batch_size": 32, "learning_rate": 0.05}
    encrypted = EncryptedMLPClassifier(**settings, random_state=3).fit(X, y)
    plain = EncryptedMLPClassifier(**settings, random_state=3, encrypt=False).fit(X, y)
    assert encrypted.encrypted_model_ is encrypted.model_ and plain.encrypted_model_ is None
    # same initial weights and row order; only fixed-point rounding differs
    np.testing.assert_allclose(
        encrypted.decision_function(X), plain.decision_function(X), atol=5e-3
    )
    assert encrypted.score(X, y) > 0.9
    assert encrypted.n_iter_ == 15 and len(encrypted.loss_curve_) == 15
    np.testing.assert_allclose(encrypted.loss_curve_, plain.loss_curve_, rtol=1e-2, atol=1e-4)
    assert encrypted.loss_curve_[-1] < encrypted.loss_curve_[0]
    # the weights' noise was absorbed after every step: no refresh, not even the final one
    # (it would give no budget and round the weights to the fixed-point unit)
    history = encrypted.history_
    assert history.refreshes == 0 and history.absorbed_steps == history.steps > 0


def test_same_random_state_same_model_but_fresh_keys(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = cancer
    first = EncryptedLogisticRegression(epochs=5, random_state=7).fit(X, y)
    second = EncryptedLogisticRegression(epochs=5, random_state=7).fit(X, y)
    assert first.key_id_ != second.key_id_  # keys never come from random_state
    np.testing.assert_array_equal(first.decision_function(X), second.decision_function(X))
    third = EncryptedLogisticRegression(epochs=5, random_state=8).fit(X, y)
    assert not np.array_equal(first.decision_function(X), third.decision_function(X))


def test_without_random_state_initial_weights_differ(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = cancer
    runs = [EncryptedLogisticRegression(epochs=1, encrypt=False).fit(X, y) for _ in range(2)]
    assert not np.array_equal(runs[0].decision_function(X), runs[1].decision_function(X))


def test_probabilities_agree_with_decision_and_predict(fitted: EncryptedMLPClassifier) -> None:
    X = np.random.default_rng(1).normal(size=(40, fitted.n_features_in_))
    scores = fitted.decision_function(X)
    proba = fitted.predict_proba(X)
    assert scores.shape == (40,) and proba.shape == (40, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_array_equal(fitted.predict(X), fitted.classes_[(scores > 0).astype(int)])
    np.testing.assert_array_equal(np.argsort(scores), np.argsort(proba[:, 1]))


def test_decision_is_the_output_pre_activation(fitted: EncryptedMLPClassifier) -> None:
    X = np.random.default_rng(2).normal(size=(10, fitted.n_features_in_))
    plain = fitted.decrypted_model()
    assert isinstance(plain, Sequential) and not plain.encrypted
    output_sigmoid = plain.layers[-1].approximation
    assert output_sigmoid is not None
    np.testing.assert_allclose(
        output_sigmoid(fitted.decision_function(X)), plain.predict(X)[:, 0], atol=5e-3
    )


def test_multiclass_one_vs_rest_with_string_labels() -> None:
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    est = EncryptedLogisticRegression(epochs=30, random_state=0).fit(X, names)
    assert list(est.classes_) == ["setosa", "versicolor", "virginica"]
    scores, proba = est.decision_function(X), est.predict_proba(X)
    assert scores.shape == (150, 3) and proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    predicted = est.predict(X)
    np.testing.assert_array_equal(predicted, est.classes_[np.argmax(scores, axis=1)])
    np.testing.assert_array_equal(predicted, est.classes_[np.argmax(proba, axis=1)])
    assert est.score(X, names) > 0.8
    # one output unit per class
    assert est.model_.output_units() == 3


def test_predict_refuses_other_feature_counts(fitted: EncryptedMLPClassifier) -> None:
    with pytest.raises(ValueError, match="features"):
        fitted.predict(np.zeros((3, fitted.n_features_in_ + 1)))


def test_verbose_prints_the_decrypted_loss(
    cancer: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    X, y = cancer
    est = EncryptedLogisticRegression(epochs=2, verbose=True, random_state=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"Iteration {i + 1}, loss = {est.loss_curve_[i]:.8f}" for i in range(2)]


# -- scikit-learn's tools -----------------------------------------------------------------------
def test_pipeline_cross_val_score_and_grid_search() -> None:
    X, y = make_classification(
        n_samples=90,
        n_features=6,
        n_informative=4,
        n_clusters_per_class=1,
        class_sep=1.5,
        random_state=0,
    )
    mlp = EncryptedMLPClassifier(epochs=20, learning_rate=0.05, batch_size=16, random_state=0)
    pipeline = make_pipeline(StandardScaler(), mlp)
    scores = cross_val_score(pipeline, X, y, cv=3, error_score="raise")
    assert scores.shape == (3,) and scores.mean() > 0.85
    search = GridSearchCV(
        pipeline,
        {"encryptedmlpclassifier__learning_rate": [0.0005, 0.05]},
        cv=2,
        error_score="raise",
    )
    search.fit(X, y)
    # a learning rate 100 times too small barely moves the weights in 20 epochs
    assert search.best_params_["encryptedmlpclassifier__learning_rate"] == 0.05
    assert search.best_estimator_[-1].encrypted_model_ is not None
    assert search.score(X, y) > 0.85


def test_cross_val_score_in_worker_processes() -> None:
    # n_jobs=2 pickles the unfitted pipeline to the workers; only scores come back
    X, y = make_classification(n_samples=60, n_features=4, random_state=1)
    pipeline = make_pipeline(StandardScaler(), EncryptedLogisticRegression(epochs=5))
    scores = cross_val_score(pipeline, X, y, cv=2, n_jobs=2, error_score="raise")
    assert np.isfinite(scores).all()


# -- keys: pickling, copies, export ---------------------------------------------------------------
def test_fitted_encrypted_estimator_refuses_pickle_and_joblib(
    fitted: EncryptedMLPClassifier, tmp_path: Path
) -> None:
    with pytest.raises(SerializationError, match=r"secret key.*export_model"):
        pickle.dumps(fitted)
    target = tmp_path / "model.joblib"
    with pytest.raises(SerializationError, match="secret key"):
        joblib.dump(fitted, target)
    assert not target.exists() or b"secret" not in target.read_bytes()


def test_unfitted_and_plain_estimators_pickle(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = cancer
    unfitted = pickle.loads(pickle.dumps(EncryptedMLPClassifier(epochs=3)))
    assert unfitted.get_params()["epochs"] == 3
    plain = EncryptedMLPClassifier(epochs=3, encrypt=False, random_state=0).fit(X, y)
    restored = pickle.loads(pickle.dumps(plain))
    np.testing.assert_array_equal(restored.decision_function(X), plain.decision_function(X))


def test_deepcopy_shares_keys_and_predicts_the_same(fitted: EncryptedMLPClassifier) -> None:
    twin = copy.deepcopy(fitted)
    assert twin._keys is fitted._keys and twin.encrypted_model_ is not fitted.encrypted_model_
    X = np.random.default_rng(3).normal(size=(5, fitted.n_features_in_))
    np.testing.assert_array_equal(twin.decision_function(X), fitted.decision_function(X))


def test_export_model_for_the_party_workflow(
    fitted: EncryptedMLPClassifier, cancer: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    paths = fitted.export_model(tmp_path / "owner")
    assert sorted(paths) == ["model", "public", "secret"]
    bundle = load_model(paths["model"], kinds=("encrypted-model",))
    assert bundle.encrypted and bundle.key_id == fitted.key_id_
    assert load_public_key(paths["public"]).key_id == fitted.key_id_
    secret = load_secret_key(paths["secret"])
    assert stat.S_IMODE(os.stat(paths["secret"]).st_mode) == 0o600
    X = np.random.default_rng(4).normal(size=(6, fitted.n_features_in_))
    predictions = bundle.scheme.decrypt_tensor(bundle.model.predict(X), secret.key)
    np.testing.assert_allclose(
        predictions[:, 0], fitted.decrypted_model().predict(X)[:, 0], atol=2e-3
    )
    with pytest.raises(SerializationError, match="overwrite"):
        fitted.export_model(tmp_path / "owner")
    fitted.export_model(tmp_path / "owner", overwrite=True)
    shared = fitted.export_model(tmp_path / "party", secret_key=False)
    assert "secret" not in shared and not (tmp_path / "party" / "secret.henn").exists()
    # the owner's own secret key may stay beside a re-export; another key pair's may not
    fitted.export_model(tmp_path / "owner", secret_key=False, overwrite=True)
    other = EncryptedLogisticRegression(epochs=1).fit(*cancer)  # a fit makes a new key pair
    with pytest.raises(SerializationError, match="would not match"):
        other.export_model(tmp_path / "owner", secret_key=False, overwrite=True)


def test_export_needs_an_encrypted_fit(
    cancer: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    X, y = cancer
    plain = EncryptedLogisticRegression(epochs=1, encrypt=False).fit(X, y)
    with pytest.raises(InputError, match="encrypt=True"):
        plain.export_model(tmp_path)


# -- errors that say what to do -------------------------------------------------------------------
def test_inputs_too_large_for_the_parameter_set_give_a_clear_error(
    cancer: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = cancer
    est = EncryptedLogisticRegression(epochs=1, params="seed", random_state=0).fit(X, y)
    before = (est.key_id_, est.decision_function(X))
    pattern = r"largest \|feature\| value in X is 3e\+0?5"
    with pytest.raises(OverflowRiskError, match=pattern) as info:
        est.fit(X * 1e5, y)
    message = str(info.value)
    assert "StandardScaler" in message and "params='vhe'" in message and "batch_size" in message
    # the failed refit left the previous fit whole: same key, same model, same scores
    assert est.key_id_ == before[0]
    np.testing.assert_array_equal(est.decision_function(X), before[1])
    # a prediction on inputs far larger than in training: refused, never a wrong number. This
    # close to the edge of the range, which check refuses first depends on the weights'
    # encryption noise (from the operating system's CSPRNG): the noise bound in 98 of 105 fits
    # measured, the coefficient bound in the other 7; both refusals name the inputs
    with pytest.raises((NoiseBudgetExhaustedError, OverflowRiskError)) as refused:
        est.predict(X * 1e7)
    text = str(refused.value)
    assert re.search(r"3e\+0?7", text), text
    if refused.type is NoiseBudgetExhaustedError:
        assert "cannot be decrypted exactly" in text
    else:
        assert "prediction with encrypted weights" in text
    with pytest.raises(OverflowRiskError, match=r"prediction with encrypted weights") as info:
        est.predict(X * 1e12)
    assert "batch_size" not in str(info.value)


def test_plain_divergence_is_reported(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = cancer
    with pytest.raises(TrainingDivergedError, match=r"diverged at step \d+.*learning rate"):
        EncryptedMLPClassifier(encrypt=False, learning_rate=50.0, epochs=20).fit(X * 10, y)


def test_feature_names_are_kept_and_checked() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [0.1, 0.9, 0.2, 0.8], "b": [1.0, 0.0, 0.9, 0.1]})
    est = EncryptedLogisticRegression(epochs=2).fit(frame, ["x", "y", "x", "y"])
    assert list(est.feature_names_in_) == ["a", "b"]
    with pytest.raises(ValueError, match="feature names"):
        est.predict(frame.rename(columns={"a": "c"}))


@pytest.mark.slow
def test_ckks_scheme_trains_like_plain_weights() -> None:
    pytest.importorskip("hennframework_ckks")
    X, y = make_classification(
        n_samples=24, n_features=3, n_informative=2, n_redundant=0, random_state=2
    )
    X = StandardScaler().fit_transform(X)
    settings: dict[str, Any] = {"epochs": 2, "batch_size": None, "learning_rate": 0.05}
    encrypted = EncryptedMLPClassifier((2,), scheme="ckks", random_state=0, **settings).fit(X, y)
    plain = EncryptedMLPClassifier((2,), encrypt=False, random_state=0, **settings).fit(X, y)
    assert encrypted.scheme_.name == "ckks" and encrypted.history_.refreshes >= 1
    np.testing.assert_allclose(
        encrypted.decision_function(X), plain.decision_function(X), atol=1e-3
    )
    np.testing.assert_allclose(encrypted.loss_curve_, plain.loss_curve_, rtol=1e-3)
