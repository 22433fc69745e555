"""scikit-learn classifiers whose weights are trained encrypted.

:class:`EncryptedMLPClassifier` and :class:`EncryptedLogisticRegression` follow scikit-learn's
estimator contract (constructor arguments stored as given, ``fit``/``predict``/``predict_proba``/
``decision_function``/``score``, ``get_params``/``set_params``, ``clone``), so they work inside
``Pipeline``, ``cross_val_score`` and ``GridSearchCV``. Training is the model API's own loop
(:meth:`hennframework.nn.Sequential.fit`): plain SGD on squared error with polynomial sigmoids,
on weights encrypted under keys that the fitted estimator holds as a single owner would (it
refreshes the weights in-process and decrypts the scores it predicts).

Classes: one output unit with a sigmoid for two classes; one unit per class (one-vs-rest) for
more. ``decision_function`` is the last layer's pre-activation, decrypted; ``predict_proba`` is
the exact logistic function of it (normalised over the classes for one-vs-rest), so it is
consistent with ``predict`` and ``decision_function`` and always lies in [0, 1], which the
polynomial that training used does not guarantee.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted

from hennframework.exceptions import (
    InputError,
    NoiseBudgetExhaustedError,
    OverflowRiskError,
    SerializationError,
)
from hennframework.nn import OwnerRefresher, Progress, Sequential
from hennframework.nn.activations import SIGMOID_APPROXIMATIONS, sigmoid
from hennframework.nn.training import lowest_noise_budget

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # pragma: no cover - scikit-learn 1.4 and 1.5
    _sk_validate_data = None

__all__ = ["EncryptedLogisticRegression", "EncryptedMLPClassifier"]

PathLike = str | os.PathLike[str]


def _validate_data(estimator: Any, *args: Any, **kwargs: Any) -> Any:
    """scikit-learn's own input validation (``validate_data``, or the 1.4/1.5 method)."""
    if _sk_validate_data is not None:
        return _sk_validate_data(estimator, *args, **kwargs)
    return estimator._validate_data(*args, **kwargs)  # pragma: no cover


def _key_id_of(path: Path) -> str | None:
    """The key id a .henn file's manifest records (None if it cannot be read)."""
    from hennframework.io import read_manifest

    try:
        key_id = read_manifest(path).get("key_id")
    except (OSError, SerializationError):
        return None
    return key_id if isinstance(key_id, str) else None


class _EncryptedClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Shared implementation; the public classes differ only in their hidden layers."""

    # set by fit; declared for type checkers
    classes_: npt.NDArray[Any]
    n_features_in_: int
    model_: Sequential
    encrypted_model_: Sequential | None
    scheme_: Any
    key_id_: str | None
    history_: Any
    loss_curve_: list[float]
    n_iter_: int

    # these are scikit-learn parameters: __init__ stores them unchanged (see _store)
    activation: str
    learning_rate: float
    epochs: int
    batch_size: int | None
    scheme: str | None
    params: str | None
    backend: str | None
    encrypt: bool
    init_scale: float
    random_state: Any
    verbose: bool | int

    def __init__(
        self,
        *,
        activation: str = "lsq3",
        learning_rate: float = 0.01,
        epochs: int = 100,
        batch_size: int | None = 128,
        scheme: str | None = None,
        params: str | None = None,
        backend: str | None = None,
        encrypt: bool = True,
        init_scale: float = 1.0,
        random_state: Any = None,
        verbose: bool | int = False,
    ) -> None:
        self._store(locals())

    def _store(self, arguments: dict[str, Any]) -> None:
        """Keep ``__init__``'s ``arguments`` (its ``locals()``) unchanged under their names.

        scikit-learn reads the parameters from ``__init__``'s signature and expects each stored
        as given; the checks belong in ``fit``.
        """
        for name, value in arguments.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    def _hidden_sizes(self) -> list[int]:
        return []

    # -- parameter checks (in fit, as scikit-learn requires) -------------------------------
    def _check_settings(self) -> tuple[list[int], int | None]:
        name = type(self).__name__
        hidden = self._hidden_sizes()
        if not isinstance(self.encrypt, bool | np.bool_):
            raise InputError(f"{name}: encrypt must be True or False, got {self.encrypt!r}.")
        allowed = list(SIGMOID_APPROXIMATIONS) + ([] if self.encrypt else ["exact"])
        if self.activation not in allowed:
            extra = (
                " ('exact' only with encrypt=False: encrypted weights need a polynomial)"
                if self.activation == "exact"
                else ""
            )
            raise InputError(
                f"{name}: activation must be one of {', '.join(allowed)}, got "
                f"{self.activation!r}{extra}."
            )
        for label, value in (
            ("learning_rate", self.learning_rate),
            ("init_scale", self.init_scale),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise InputError(f"{name}: {label} must be a positive number, got {value!r}.")
            if not np.isfinite(value) or value <= 0:
                raise InputError(f"{name}: {label} must be a positive number, got {value!r}.")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int | np.integer):
            raise InputError(f"{name}: epochs must be a positive integer, got {self.epochs!r}.")
        if self.epochs < 1:
            raise InputError(f"{name}: epochs must be a positive integer, got {self.epochs!r}.")
        batch = self.batch_size
        if batch is not None and (
            isinstance(batch, bool) or not isinstance(batch, int | np.integer) or batch < 1
        ):
            raise InputError(
                f"{name}: batch_size must be a positive integer or None (the whole training set "
                f"per step), got {batch!r}."
            )
        return hidden, None if batch is None else int(batch)

    # -- scheme and keys -------------------------------------------------------------------
    def _make_scheme(self) -> Any:
        import hennframework

        return hennframework.get_scheme(self.scheme, params=self.params, backend=self.backend)

    def _overflow(
        self, exc: OverflowRiskError, during: str, X: npt.NDArray[Any], scheme: Any
    ) -> OverflowRiskError:
        """The scheme's overflow error in the estimator's terms: which input, what to change."""
        largest = float(np.abs(X).max()) if X.size else 0.0
        scheme_name = getattr(scheme, "name", str(self.scheme))
        params_name = getattr(getattr(scheme, "params", None), "name", self.params or "default")
        headroom = (
            "params='vhe'"
            if scheme_name == "integer-vector"
            else "`henn schemes` lists the parameter sets"
        )
        return OverflowRiskError(
            f"{type(self).__name__}: {during} with encrypted weights left the exact range of the "
            f"{scheme_name} parameter set {params_name!r} ({str(exc).rstrip('.')}). "
            "The largest |feature| "
            f"value in X is {largest:.3g}: inputs this large, or weights that grew large during "
            "training, leave the range that encrypted fixed-point values can hold. Scale the "
            "features (StandardScaler in a Pipeline, and clip outliers), lower learning_rate (now "
            f"{self.learning_rate:g}), "
            + ("use a smaller batch_size (sums over fewer rows), " if during == "training" else "")
            + f"or choose a parameter set with more headroom ({headroom})."
        )

    # -- fit -------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> _EncryptedClassifier:
        """Train on (X, y): a fresh key pair, the weights encrypted under it, SGD on ciphertexts.

        With ``encrypt=False`` the same network trains on plain weights (for comparison).
        """
        X, y = _validate_data(self, X, y, dtype=np.float64, y_numeric=False)
        check_classification_targets(y)
        target_type = type_of_target(y, input_name="y")
        if target_type not in ("binary", "multiclass"):
            raise InputError(
                f"{type(self).__name__} needs a 1-D array of class labels; got {target_type!r} "
                "targets."
            )
        hidden, batch = self._check_settings()
        classes, encoded = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise InputError(
                f"{type(self).__name__} needs samples of at least 2 classes; y has only 1 class "
                f"({classes[0]!r})."
            )
        n_outputs = 1 if len(classes) == 2 else len(classes)
        targets = (
            encoded.reshape(-1, 1).astype(np.float64)
            if n_outputs == 1
            else np.eye(n_outputs)[encoded]
        )

        # random_state: initial weights and the order of the rows. Never key material: keys
        # and encryption noise always come from the scheme's CSPRNG. Without it, the weights
        # come from the CSPRNG too (Sequential.mlp with seed=None).
        seed: int | None = None
        if self.random_state is not None:
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        shuffle_seed = secrets.randbits(63) if seed is None else seed
        order = np.random.default_rng([shuffle_seed, 1]).permutation(X.shape[0])
        inputs, targets = X[order], targets[order]
        plain = Sequential.mlp(
            [X.shape[1], *hidden, n_outputs],
            activation=self.activation,
            init_scale=float(self.init_scale),
            seed=seed,
            bias=True,
        )

        scheme: Any = None
        keys: Any = None
        refresher = None
        monitor = None
        if self.encrypt:
            scheme = self._make_scheme()
            keys = scheme.keygen()  # always from the scheme's CSPRNG
            model = plain.encrypt(keys)
            refresher = OwnerRefresher(scheme, keys)

            def monitor(encrypted_loss: Any) -> float:
                try:
                    values = scheme.decrypt_tensor(encrypted_loss, keys.secret)
                except NoiseBudgetExhaustedError:
                    return float("nan")  # unknown, never a possibly wrong number
                return float(np.asarray(values).sum())

        else:
            model = plain

        steps_per_epoch = -(-X.shape[0] // (batch or X.shape[0]))
        epoch_losses: list[float] = []
        running: list[float] = []

        def on_progress(report: Progress) -> None:
            record = report.record
            if record is None:  # a note around a refresh, not a step
                return
            running.append(float("nan") if record.loss is None else float(record.loss))
            record.encrypted_loss = None  # decrypted by the monitor: do not keep ciphertexts
            if record.step % steps_per_epoch == 0:
                epoch_losses.append(float(np.sum(running)) / X.shape[0])
                running.clear()
                if self.verbose:
                    print(f"Iteration {len(epoch_losses)}, loss = {epoch_losses[-1]:.8f}")

        try:
            history = model.fit(
                inputs,
                targets,
                epochs=int(self.epochs),
                learning_rate=float(self.learning_rate),
                batch_size=batch,
                refresh=refresher,
                monitor=monitor,
                progress=on_progress,
            )
            if refresher is not None:
                # fresh weights with the most noise budget (all levels, for CKKS: not the
                # training refresher's "levels a step uses") for predictions and for a party
                # that receives the exported model; kept only if they have more budget than
                # the trained weights (integer-vector weights whose noise was absorbed have
                # none to gain, and a refresh would round them to the fixed-point unit)
                weights = model.weights()
                fresh = [scheme.refresh(t, keys) for t in weights]
                gained = lowest_noise_budget(fresh), lowest_noise_budget(weights)
                if gained[0] is not None and (gained[1] is None or gained[0] > gained[1]):
                    model.refresh(lambda tensors: fresh)
        except OverflowRiskError as exc:
            raise self._overflow(exc, "training", X, scheme) from exc
        # fitted state, all at once (a failed refit leaves the previous fit usable)
        self.__dict__.pop("_keys", None)
        if keys is not None:
            self._keys = keys  # the secret key: private, never in get_params, repr or pickle
        self.classes_ = classes
        self.scheme_ = scheme
        self.key_id_ = None if keys is None else keys.key_id
        self.model_ = model
        self.encrypted_model_ = model if self.encrypt else None
        self.history_ = history
        self.loss_curve_ = epoch_losses
        self.n_iter_ = int(self.epochs)
        return self

    # -- prediction ------------------------------------------------------------------------
    def decision_function(self, X: Any) -> npt.NDArray[np.float64]:
        """The output units' pre-activations, decrypted: shape (n,) for two classes, else (n, k).

        Positive means the class (the second class, for two) is predicted.
        """
        check_is_fitted(self)
        X = _validate_data(self, X, dtype=np.float64, reset=False)
        out = X
        try:
            for layer in self.model_.layers[:-1]:  # all but the output sigmoid
                out = layer.forward(out, {})
            if self.encrypted_model_ is not None:
                out = self.scheme_.decrypt_tensor(out, self._keys.secret)
        except OverflowRiskError as exc:
            raise self._overflow(exc, "prediction", X, self.scheme_) from exc
        except NoiseBudgetExhaustedError as exc:
            largest = float(np.abs(X).max()) if X.size else 0.0
            raise NoiseBudgetExhaustedError(
                f"{type(self).__name__}: the predicted scores cannot be decrypted exactly "
                f"({str(exc).rstrip('.')}). The largest |feature| value in X is {largest:.3g}; "
                "the noise of a prediction grows with its inputs. Scale the features as in "
                "training (a Pipeline does this), or choose a parameter set with a larger w."
            ) from exc
        scores = np.asarray(out, dtype=np.float64).reshape(X.shape[0], -1)
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict_proba(self, X: Any) -> npt.NDArray[np.float64]:
        """Class probabilities, shape (n, n_classes): the logistic function of the scores."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            positive = sigmoid(scores)
            return np.stack([1.0 - positive, positive], axis=1)
        # one-vs-rest: each unit's sigmoid, normalised over the classes (in log space, so very
        # negative scores cannot underflow to 0 / 0)
        log_per_class = -np.logaddexp(0.0, -scores)
        log_total = np.logaddexp.reduce(log_per_class, axis=1, keepdims=True)
        return np.exp(log_per_class - log_total)  # type: ignore[no-any-return]

    def predict(self, X: Any) -> npt.NDArray[Any]:
        """Predicted class labels (from ``classes_``)."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]  # type: ignore[no-any-return]
        return self.classes_[np.argmax(scores, axis=1)]  # type: ignore[no-any-return]

    # -- the owner's operations ------------------------------------------------------------
    def decrypted_model(self) -> Sequential:
        """The trained network with plain weights (the estimator is the key holder)."""
        check_is_fitted(self)
        if self.encrypted_model_ is None:
            return self.model_
        return self.encrypted_model_.decrypt(self._keys.secret)

    def export_model(
        self, directory: PathLike, *, secret_key: bool = True, overwrite: bool = False
    ) -> dict[str, Path]:
        """Write the encrypted model and its keys for the party workflow (``henn`` commands).

        ``DIRECTORY/model.henn`` (the encrypted model) and ``DIRECTORY/public.henn`` go to a
        party; ``DIRECTORY/secret.henn`` (mode 0600, only with ``secret_key=True``) stays with the
        owner, who needs it to serve refreshes and to decrypt. Output unit ``i`` is class
        ``classes_[i]`` (for two classes, the single unit scores ``classes_[1]``); inputs must be
        preprocessed as in training (a Pipeline's scaler is not part of the file).
        """
        from hennframework.io import save_model, save_public_key, save_secret_key

        check_is_fitted(self)
        if self.encrypted_model_ is None:
            raise InputError(
                f"this {type(self).__name__} was fitted with encrypt=False, so it has no "
                "encrypted model to export; fit it with encrypt=True."
            )
        folder = Path(directory)
        paths = {"model": folder / "model.henn", "public": folder / "public.henn"}
        if secret_key:
            paths["secret"] = folder / "secret.henn"
        stale_secret = folder / "secret.henn"
        if not secret_key and stale_secret.exists() and _key_id_of(stale_secret) != self.key_id_:
            raise SerializationError(
                f"{stale_secret} exists and would not match the exported model's key; export to "
                "a directory without a secret key, or pass secret_key=True."
            )
        existing = [str(p) for p in paths.values() if p.exists()]
        if existing and not overwrite:
            raise SerializationError(
                f"refusing to overwrite {', '.join(existing)} (files encrypted under the old key "
                "would become undecryptable); choose another directory or pass overwrite=True."
            )
        folder.mkdir(parents=True, exist_ok=True)
        save_model(paths["model"], self.encrypted_model_)
        save_public_key(paths["public"], self._keys)
        if secret_key:
            save_secret_key(paths["secret"], self._keys)
        return paths

    # -- pickling: the secret key never leaves through pickle ------------------------------
    def __getstate__(self) -> dict[str, Any]:
        if "_keys" in self.__dict__:
            raise SerializationError(
                f"a fitted {type(self).__name__} holds its secret key, and pickle (also joblib "
                "and cloudpickle) would write it into a file that does not look secret. Use "
                "export_model(directory) instead: the encrypted model and public key to share, "
                "the secret key in its own mode-0600 file. Inside scikit-learn this happens with "
                "n_jobs > 1 and return_estimator=True: use n_jobs=1 there. (Unfitted estimators, "
                "and estimators fitted with encrypt=False, pickle normally.)"
            )
        state: dict[str, Any] = super().__getstate__()
        return state

    def __deepcopy__(self, memo: dict[int, Any]) -> _EncryptedClassifier:
        """An in-process copy that shares the keys and the scheme (no key leaves the process)."""
        import copy

        for shared in (self.__dict__.get("_keys"), self.__dict__.get("scheme_")):
            if shared is not None:
                memo[id(shared)] = shared
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        for name, value in self.__dict__.items():
            setattr(clone, name, copy.deepcopy(value, memo))
        return clone

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags


class EncryptedMLPClassifier(_EncryptedClassifier):
    """A multi-layer perceptron classifier whose weights are trained encrypted.

    :param hidden_layer_sizes: units of each hidden layer (an int for one layer).
    :param activation: the polynomial sigmoid of every layer (``hennframework.nn``'s names:
        ``lsq3``, ``lsq5``, ``taylor3``, ...; ``"exact"`` only with ``encrypt=False``).
    :param learning_rate: SGD step size; the loss is the squared error *summed* over a batch,
        as in the model API, so larger batches take larger steps.
    :param epochs: passes over the training set (``n_iter_``).
    :param batch_size: rows per step (None: the whole training set per step).
    :param scheme: the encryption scheme's name (None: the configured default).
    :param params: the scheme's parameter set (None: the scheme's default).
    :param backend: the array backend (None: the configured default).
    :param encrypt: False trains the same network on plain weights, for comparison.
    :param init_scale: initial weights are uniform on ``±init_scale / sqrt(fan_in)``.
    :param random_state: initial weights and row order (never keys: those come from a CSPRNG).
    :param verbose: print the decrypted mean loss per sample after each epoch.
    """

    hidden_layer_sizes: int | Sequence[int]

    def __init__(
        self,
        hidden_layer_sizes: int | Sequence[int] = (8,),
        *,
        activation: str = "lsq3",
        learning_rate: float = 0.01,
        epochs: int = 100,
        batch_size: int | None = 128,
        scheme: str | None = None,
        params: str | None = None,
        backend: str | None = None,
        encrypt: bool = True,
        init_scale: float = 1.0,
        random_state: Any = None,
        verbose: bool | int = False,
    ) -> None:
        self._store(locals())

    def _hidden_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        values = [sizes] if isinstance(sizes, int | np.integer) else sizes
        try:
            result = [int(v) for v in values]
            ok = all(
                isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= 1
                for v in values
            )
        except TypeError:
            ok = False
        if not ok:
            raise InputError(
                f"{type(self).__name__}: hidden_layer_sizes must be a positive integer or a "
                f"sequence of them, e.g. (8,) or (16, 8); got {sizes!r}."
            )
        return result


class EncryptedLogisticRegression(_EncryptedClassifier):
    """Logistic regression (one dense layer and a polynomial sigmoid) trained encrypted.

    Trained by SGD on squared error, the model API's loss, rather than log-loss; one-vs-rest
    for more than two classes. Parameters as for :class:`EncryptedMLPClassifier`, without
    hidden layers.
    """
