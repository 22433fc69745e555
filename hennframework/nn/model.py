"""A sequential model that trains and predicts with plain or encrypted weights.

``model.encrypt(keys)`` returns a copy whose weights are encrypted; ``fit`` and ``predict`` then run
entirely on ciphertexts (forward pass, squared-error loss, backward pass and SGD update) and never
need the secret key: inputs and targets are plaintext, everything computed from the weights is
encrypted. ``model.decrypt(secret_key)`` gives the plain model back to the key holder.

The same object trains unencrypted (weights as NumPy arrays), so the two can be compared on the
same data and initial weights.
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from hennframework.exceptions import (
    InputError,
    NoiseBudgetExhaustedError,
    OverflowRiskError,
    TrainingDivergedError,
)
from hennframework.nn.initialisation import weight_random
from hennframework.nn.layers import Dense, Layer, Sigmoid
from hennframework.nn.ops import is_encrypted, multiply_constant
from hennframework.scheme import Capability, KeySet, require

__all__ = ["History", "Refresher", "Sequential", "TrainingRecord"]

#: A refresh provider: given encrypted tensors, returns fresh encryptions of the same values.
#: The key holder runs it (in-process callback, or a file/socket exchange with the owner).
Refresher = Callable[[list[Any]], list[Any]]

NEEDED_FOR_TRAINING = (
    Capability.ADD,
    Capability.MUL_PLAIN,
    Capability.MATMUL_PLAIN,
    Capability.MUL_CIPHER,
    Capability.POLYNOMIAL,
)


@dataclass
class TrainingRecord:
    """One logged step: the encrypted loss (as computed by the party) and, if known, its value."""

    step: int
    epoch: int
    encrypted_loss: Any
    loss: float | None
    seconds: float
    noise_budget: float | None


@dataclass
class History:
    """Training history. ``decrypt(secret_key)`` fills in the losses for the key holder."""

    records: list[TrainingRecord] = field(default_factory=list)
    refreshes: int = 0
    steps: int = 0
    seconds: float = 0.0
    samples: int = 0

    @property
    def losses(self) -> list[float | None]:
        return [record.loss for record in self.records]

    def decrypt(
        self, secret_key: Any, scheme: Any, *, skip_undecryptable: bool = False
    ) -> list[float]:
        """Decrypt every encrypted loss (key holder only) and store the values.

        A loss whose noise bound could have corrupted it raises, unless ``skip_undecryptable``,
        which reports it as NaN instead (never as a possibly wrong number).
        """
        values = []
        for record in self.records:
            if record.loss is None and record.encrypted_loss is not None:
                try:
                    record.loss = float(
                        np.asarray(scheme.decrypt_tensor(record.encrypted_loss, secret_key)).sum()
                    )
                except NoiseBudgetExhaustedError:
                    if not skip_undecryptable:
                        raise
            values.append(float(record.loss) if record.loss is not None else float("nan"))
        return values


def _as_2d(values: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise InputError(f"{name} must be a 1-D or 2-D array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InputError(f"{name} contains NaN or infinity")
    return array


#: How many times the last step's budget cost must still fit before a step is taken.
REFRESH_SAFETY = 1.5


def refresh_due(
    budget: float | None,
    step_cost: float | None,
    minimum: float,
    first_step_margin: float | None = None,
    fresh_budget: float | None = None,
) -> bool:
    """Whether the weights need a refresh before the next training step.

    ``budget`` is the weights' noise budget (bits, or levels for leveled schemes), ``step_cost``
    the budget the last step used (None before the first step: then only ``first_step_margin``,
    if given, is required). ``fresh_budget``, when known, is what a refresh gives: weights that
    have it are never sent for a refresh, since it could not give more. Without that, a step that
    uses most of a fresh ciphertext's budget (a CKKS step may use all its levels) could never
    meet the margin, and a resumed run would stop again before its first step. Whether such a
    step fits at all is the training loop's (and the scheme's) to say. Shared by every training
    loop so they refresh by the same rule.
    """
    if budget is None:
        return False
    if fresh_budget is not None and budget >= fresh_budget:
        return False
    if step_cost is None:
        return first_step_margin is not None and budget - first_step_margin < minimum
    return budget - REFRESH_SAFETY * step_cost < minimum


def fresh_noise_budget(tensors: Sequence[Any]) -> float | None:
    """The budget a refresh gives these weights, where their scheme says (else None).

    A scheme states it with ``fresh_noise_budget(tensor)`` (CKKS: the top level of the modulus
    chain); the training loops also learn it from the budget the refreshes they receive have.
    """
    values = []
    for tensor in tensors:
        fresh = getattr(getattr(tensor, "scheme", None), "fresh_noise_budget", None)
        if not callable(fresh):
            return None
        values.append(float(fresh(tensor)))
    return min(values) if values else None


def check_target_shape(given: tuple[int, ...], as_2d: tuple[int, ...], outputs: int | None) -> None:
    """Refuse targets whose width differs from the model's output (plain and encrypted alike).

    Without this, broadcasting would silently grow an output layer of width 1 to the target's
    width (encrypted) or fail later with a NumPy broadcasting error (plain).
    """
    if outputs is None or as_2d[1] == outputs:
        return
    wanted = f"({as_2d[0]},) or ({as_2d[0]}, 1)" if outputs == 1 else f"({as_2d[0]}, {outputs})"
    raise InputError(
        f"y has shape {tuple(given)} but the model has {outputs} output unit"
        f"{'s' if outputs != 1 else ''}, so y must have shape {wanted}. Pass one target column "
        f"per output unit, or build the model with {as_2d[1]} outputs."
    )


class Sequential:
    """Layers applied in order. Plain after construction; ``encrypt`` makes an encrypted copy."""

    def __init__(self, layers: Sequence[Layer]) -> None:
        if not layers:
            raise InputError("a model needs at least one layer")
        self.layers = list(layers)
        self.scheme: Any = None  # set on encrypted models
        self.key_id: str | None = None
        self.history = History()

    # -- construction helpers ---------------------------------------------------------------
    @classmethod
    def mlp(
        cls,
        sizes: Sequence[int],
        *,
        activation: str = "taylor3",
        output_activation: str | None = None,
        init_scale: float = 1.0,
        seed: int | None = None,
        bias: bool = False,
    ) -> Sequential:
        """Dense layers of ``sizes`` with sigmoid activations (a polynomial approximation).

        Initial weights come from the OS CSPRNG, or from ``default_rng(seed)`` when ``seed`` is
        given (reproducible experiments only: whoever has the seed has the starting weights).
        """
        rng = weight_random(seed)
        layers: list[Layer] = []
        for index, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            layers.append(Dense(fan_in, fan_out, bias=bias, init_scale=init_scale, rng=rng))
            last = index == len(sizes) - 2
            layers.append(Sigmoid(output_activation or activation if last else activation))
        return cls(layers)

    @property
    def encrypted(self) -> bool:
        return self.scheme is not None

    def config(self) -> list[dict[str, Any]]:
        return [layer.config() for layer in self.layers]

    def parameters(self) -> list[tuple[int, str, Any]]:
        return [
            (index, name, value)
            for index, layer in enumerate(self.layers)
            for name, value in layer.parameters().items()
        ]

    # -- encryption ------------------------------------------------------------------------
    def encrypt(self, keys: KeySet, scheme: Any = None) -> Sequential:
        """An encrypted copy of this model (weights encrypted with ``keys.public``)."""
        if self.encrypted:
            raise InputError("this model is already encrypted")
        scheme = scheme or keys.scheme
        if scheme is None:
            raise InputError("pass the scheme that made the keys: model.encrypt(keys, scheme)")
        require(scheme, NEEDED_FOR_TRAINING, "training an encrypted-weight network")
        for layer in self.layers:
            if isinstance(layer, Sigmoid) and layer.approximation is None:
                raise InputError(
                    "the exact sigmoid cannot run on encrypted values; build the model with a "
                    "polynomial approximation (e.g. activation='taylor3' or 'lsq3')"
                )
        clone = copy.deepcopy(self)
        clone.history = History()
        for index, name, value in clone.parameters():
            if value is not None:
                clone.layers[index].set_parameters(
                    {name: scheme.encrypt_tensor(value, keys.public)}
                )
        clone.scheme = scheme
        clone.key_id = keys.key_id
        return clone

    def decrypt(self, secret_key: Any) -> Sequential:
        """The plain model (key holder only): every encrypted weight decrypted."""
        if not self.encrypted:
            raise InputError("this model is not encrypted")
        plain = copy.copy(self)
        plain.layers = [copy.copy(layer) for layer in self.layers]
        for index, name, value in self.parameters():
            if value is not None:
                plain.layers[index].set_parameters(
                    {name: self.scheme.decrypt_tensor(value, secret_key)}
                )
        plain.scheme = None
        plain.key_id = None
        plain.history = self.history
        return plain

    def weights(self) -> list[Any]:
        return [value for _, _, value in self.parameters() if value is not None]

    def output_units(self) -> int | None:
        """Width of the model's output: the last Dense layer's ``outputs`` (None if unknown)."""
        for layer in reversed(self.layers):
            if isinstance(layer, Dense):
                return layer.outputs
            if not isinstance(layer, Sigmoid):  # a layer that may change the width
                return None
        return None

    def min_noise_budget(self) -> float | None:
        if not self.encrypted:
            return None
        budgets = [float(getattr(v, "noise_budget", float("inf"))) for v in self.weights()]
        return min(budgets) if budgets else None

    # -- forward / backward ----------------------------------------------------------------
    def forward(self, inputs: Any, caches: list[dict[str, Any]] | None = None) -> Any:
        out = inputs
        for layer in self.layers:
            cache: dict[str, Any] = {}
            out = layer.forward(out, cache)
            if caches is not None:
                caches.append(cache)
        return out

    def predict(self, inputs: npt.ArrayLike) -> Any:
        """Predictions: a plain array, or an encrypted tensor for an encrypted model."""
        return self.forward(_as_2d(inputs, "X"))

    def loss_and_gradients(self, inputs: Any, targets: Any) -> tuple[Any, list[dict[str, Any]]]:
        """Squared-error loss 1/2 * sum((prediction - target)**2) and its gradients per layer."""
        caches: list[dict[str, Any]] = []
        outputs = self.forward(inputs, caches)
        error = outputs - targets
        loss = multiply_constant((error * error).sum(), 0.5)
        delta = error
        grads: list[dict[str, Any]] = [{} for _ in self.layers]
        for index in range(len(self.layers) - 1, -1, -1):
            need_input_delta = index > 0
            delta, grads[index] = self.layers[index].backward(
                delta, caches[index], need_input_delta
            )
        return loss, grads

    def apply_gradients(self, grads: list[dict[str, Any]], learning_rate: float) -> None:
        # every update is computed before any is stored: an operation refused half-way (an
        # overflow risk) leaves all the weights as they were
        all_updates = [
            {
                name: getattr(layer, name) - multiply_constant(grad, learning_rate)
                for name, grad in layer_grads.items()
            }
            for layer, layer_grads in zip(self.layers, grads, strict=True)
        ]
        for layer, updates in zip(self.layers, all_updates, strict=True):
            layer.set_parameters(updates)

    # -- training --------------------------------------------------------------------------
    def fit(
        self,
        inputs: npt.ArrayLike,
        targets: npt.ArrayLike,
        *,
        epochs: int = 1,
        learning_rate: float = 0.1,
        batch_size: int | None = None,
        refresh: Refresher | None = None,
        monitor: Callable[[Any], float] | None = None,
        log_every: int = 1,
        progress: bool | Callable[[TrainingRecord], None] = False,
        min_noise_budget: float = 2.0,
    ) -> History:
        """Train with plain SGD on squared error (scikit-learn-like; returns the history).

        ``batch_size=None`` uses the whole set per step. For encrypted models, ``refresh`` is the
        key holder's refresh provider (called when the weights' noise budget would not carry
        another step) and ``monitor`` a key-holder callback that decrypts the loss for display.
        """
        x = _as_2d(inputs, "X")
        y = _as_2d(targets, "y")
        if x.shape[0] != y.shape[0]:
            raise InputError(f"X has {x.shape[0]} rows but y has {y.shape[0]}")
        first = self.layers[0]
        if isinstance(first, Dense) and x.shape[1] != first.inputs:
            raise InputError(
                f"X has {x.shape[1]} columns but the first layer expects {first.inputs}"
            )
        check_target_shape(np.shape(targets), y.shape, self.output_units())
        if epochs < 1 or learning_rate <= 0:
            raise InputError("epochs must be >= 1 and learning_rate > 0")
        if self.encrypted:
            require(self.scheme, NEEDED_FOR_TRAINING, "training an encrypted-weight network")
        size = batch_size or x.shape[0]
        history = self.history
        step_cost: float | None = None
        started = time.perf_counter()
        for epoch in range(epochs):
            for start in range(0, x.shape[0], size):
                step_started = time.perf_counter()
                budget_before = self.min_noise_budget()
                if self.encrypted and refresh_due(
                    budget_before,
                    step_cost,
                    min_noise_budget,
                    fresh_budget=fresh_noise_budget(self.weights()),
                ):
                    self._refresh(refresh, history)
                    budget_before = self.min_noise_budget()
                if self.encrypted:
                    refreshes_before = history.refreshes
                    loss = self._encrypted_step(
                        x[start : start + size],
                        y[start : start + size],
                        learning_rate,
                        refresh,
                        history,
                    )
                    if history.refreshes != refreshes_before:  # refreshed before a retry
                        budget_before = None
                else:
                    loss = self._plain_step(
                        x[start : start + size],
                        y[start : start + size],
                        learning_rate,
                        history.steps + 1,
                        epoch,
                    )
                history.steps += 1
                history.samples += min(size, x.shape[0] - start)
                budget_after = self.min_noise_budget()
                if budget_after is not None and is_encrypted(loss):
                    # the loss is computed deeper than the weights: keep it decryptable too
                    budget_after = min(
                        budget_after, float(getattr(loss, "noise_budget", budget_after))
                    )
                if budget_after is not None and budget_before is None:
                    step_cost = None  # the weights were refreshed inside the step: cost unknown
                if budget_before is not None and budget_after is not None:
                    # the cost of the last step predicts the next one (the cost after a refresh
                    # is lower than late in a refresh period; the largest cost seen over-refreshes)
                    step_cost = max(budget_before - budget_after, 0.0)
                    if budget_after < min_noise_budget and refresh is None:
                        raise NoiseBudgetExhaustedError(
                            f"the encrypted weights' noise budget is down to {budget_after:.1f} bits "
                            f"after {history.steps} steps; more training could make them undecryptable. "
                            "Pass refresh= (the key holder's refresher, e.g. "
                            "hennframework.nn.OwnerRefresher(scheme, keys)), train fewer steps, or use a "
                            "parameter set with a larger w."
                        )
                if history.steps % log_every == 0:
                    value = None
                    if not is_encrypted(loss):
                        value = float(loss)
                    elif monitor is not None:
                        value = float(monitor(loss))
                    record = TrainingRecord(
                        history.steps,
                        epoch,
                        loss if is_encrypted(loss) else None,
                        value,
                        time.perf_counter() - step_started,
                        budget_after,
                    )
                    history.records.append(record)
                    if callable(progress):
                        progress(record)
        history.seconds += time.perf_counter() - started
        return history

    def _encrypted_step(
        self,
        inputs: Any,
        targets: Any,
        learning_rate: float,
        refresh: Refresher | None,
        history: History,
    ) -> Any:
        """One SGD step on encrypted weights; returns the encrypted loss.

        A step that the scheme refuses (a value or a noise bound that could leave its range) has
        changed nothing. If the weights are not fresh and a refresh provider is given, they are
        refreshed and the step is taken again: the refresh comes *before* the step that needs
        it. A step that fails on fresh weights raises, naming the inputs and the fixes.
        """
        refreshed = False
        while True:
            try:
                loss, grads = self.loss_and_gradients(inputs, targets)
                self.apply_gradients(grads, learning_rate)
                return loss
            except (OverflowRiskError, NoiseBudgetExhaustedError) as error:
                if refresh is not None and not refreshed:
                    self._refresh(refresh, history)
                    refreshed = True
                    continue
                largest = float(np.abs(np.asarray(inputs)).max()) if np.size(inputs) else 0.0
                raise type(error)(
                    f"training step {history.steps + 1} was refused by the encryption scheme "
                    f"(the encrypted weights are unchanged and still usable): {error} The "
                    f"inputs of this batch reach |x| = {largest:.3g}"
                    + (" even on freshly refreshed weights" if refreshed else "")
                    + ". Standardise the features (and clip outliers, e.g. to +-8), lower the "
                    "learning rate, use smaller batches, or a parameter set with more value "
                    "range (see docs/numerics.md)."
                ) from error

    def _plain_step(
        self, inputs: Any, targets: Any, learning_rate: float, step: int, epoch: int
    ) -> Any:
        """One SGD step on plain weights; stops with a clear error if the model diverges.

        A polynomial sigmoid grows without bound outside its interval, so a learning rate or
        inputs that are too large send the weights to infinity within a few steps, and NaN from
        then on. The step is refused (weights left as they were before it) instead.
        """
        before = [layer.parameters() for layer in self.layers]  # updates make new arrays
        with np.errstate(over="ignore", invalid="ignore"):  # reported below, not as warnings
            loss, grads = self.loss_and_gradients(inputs, targets)
            if np.isfinite(loss):
                self.apply_gradients(grads, learning_rate)
        if np.isfinite(loss) and all(np.isfinite(w).all() for w in self.weights()):
            return loss
        for layer, values in zip(self.layers, before, strict=True):
            layer.set_parameters(values)
        last = next((r.loss for r in reversed(self.history.records) if r.loss is not None), None)
        what = "the loss" if not np.isfinite(loss) else "the updated weights"
        raise TrainingDivergedError(
            f"training diverged at step {step} (epoch {epoch + 1}): {what} became NaN or "
            f"infinite" + (f" (last logged loss {last:.4g})" if last is not None else "") + ". "
            f"Lower the learning rate (it is {learning_rate:g}) or scale the inputs (e.g. "
            "standardise them): polynomial sigmoids grow without bound outside their interval. "
            "The weights are left as they were before that step."
        )

    def refresh(self, refresh: Refresher) -> None:
        """Replace the encrypted weights by fresh encryptions from the key holder's provider.

        Useful before inference on a scheme with a level budget (CKKS): training leaves the weights
        with only the levels the last step did not use.
        """
        if not self.encrypted:
            raise InputError("only an encrypted model can be refreshed")
        self._refresh(refresh, self.history)

    def _refresh(self, refresh: Refresher | None, history: History) -> None:
        if refresh is None:
            raise NoiseBudgetExhaustedError(
                "the encrypted weights need a refresh before the next step (noise budget too low) "
                "and no refresh provider was given. Pass refresh=OwnerRefresher(scheme, keys) "
                "(key holder) or use a parameter set with a larger w."
            )
        params = [
            (index, name, value) for index, name, value in self.parameters() if value is not None
        ]
        fresh = refresh([value for _, _, value in params])
        if len(fresh) != len(params):
            raise InputError("the refresh provider returned a different number of tensors")
        for (index, name, _), value in zip(params, fresh, strict=True):
            self.layers[index].set_parameters({name: value})
        history.refreshes += 1


class OwnerRefresher:
    """In-process refresh by the key holder: decrypt and re-encrypt (counts its calls).

    The party sends ciphertexts and gets fresh encryptions of the same values back; it learns
    nothing new. The owner learns its own model's current weights, nothing about the party's data
    beyond what those weights reveal.
    """

    def __init__(self, scheme: Any, keys: KeySet) -> None:
        self.scheme, self.keys, self.calls = scheme, keys, 0

    def __call__(self, tensors: list[Any]) -> list[Any]:
        self.calls += 1
        return [self.scheme.refresh(tensor, self.keys) for tensor in tensors]
