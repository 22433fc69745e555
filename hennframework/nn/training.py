"""The training loop: every model, every caller, plain or encrypted weights.

:func:`train` runs SGD steps of a :class:`Trainable` (such as :class:`~hennframework.nn.Sequential`)
over mini-batches. It owns what is the same for every model: the noise-budget rule that refreshes
the encrypted weights *before* a step that would not fit, the measured cost of a step, the
encrypted loss kept decryptable, the retry on freshly refreshed weights when the scheme refuses
a step, the history, progress reports, and what happens when the budget runs out and nobody can
refresh: ``when_exhausted="raise"`` (an error naming the fixes) or ``"stop"`` (a clean stop, the
weights still decryptable, with a resumable :class:`TrainingState`).

The refresh rule: with ``step_cost`` the budget the last step used, the weights are refreshed when
``budget - 1.5 * step_cost`` would fall below ``min_noise_budget``. The last step's cost, not the
largest seen: the first step after a refresh costs far more bits than later ones (a fresh
ciphertext's tiny noise is swamped by the first product's), and using it would refresh every few
steps; the factor 1.5 covers the slow growth after it. Before the first step of a plan, when the
cost is not known, ``FIRST_STEP_MARGIN`` bits must be spare. The encrypted loss is computed
deeper than the weights (``loss_gap`` bits less budget, measured): the loop also refreshes when
the next loss would otherwise be undecryptable, if that loss is kept (a step that is logged,
every ``log_every``-th); the loss of a step that is not logged is not computed at all
(``train_step(..., with_loss=False)``: for CKKS that saves a squaring, a relinearisation and
rotations per step), so it needs no budget. The gap is measured on the first step of a plan
and on the step just before each logged one (a gap measured longer ago, e.g. on just-refreshed
weights where the step's own noise dominates, overstates it). Weights that have a fresh
encryption's budget (stated by the scheme, e.g. CKKS's top level, or learned from refreshes) are
never sent for a refresh: it could not give more; a step that does not fit in a fresh budget
stops as ``"refused"``.

After every step the weights' noise is absorbed where their scheme can (:func:`absorb_weight_noise`;
``absorb_noise=False`` keeps it): each weight is re-read as an exact encryption of its current
value, so the next step starts from no noise and the run is exactly SGD whose updates were each
moved by at most the recorded ``History.largest_absorbed`` (a backward error). With the
integer-vector scheme that leaves the refresh rule little to do: a forward bound of the weights'
noise compounds by ``1 + lr |H|`` per step, a step's own noise does not.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from hennframework.exceptions import (
    HennError,
    InputError,
    NoiseBudgetExhaustedError,
    OverflowRiskError,
    SerializationError,
)
from hennframework.nn.batches import Batch
from hennframework.nn.ops import is_encrypted
from hennframework.scheme import noise_budget_unit

__all__ = [
    "FIRST_STEP_MARGIN",
    "REFRESH_SAFETY",
    "History",
    "Progress",
    "Refresher",
    "StepResult",
    "TrainOutcome",
    "Trainable",
    "TrainingRecord",
    "TrainingState",
    "absorb_weight_noise",
    "describe_absorbed",
    "train",
]

#: A refresh provider: given encrypted tensors, returns fresh encryptions of the same values.
#: The key holder runs it (in-process callback, or a file exchange with the owner).
Refresher = Callable[[list[Any]], list[Any]]

#: How many times the last step's budget cost must still fit before a step is taken.
REFRESH_SAFETY = 1.5

#: Bits of budget (above the minimum) needed before the first step of a plan, when the cost of a
#: step is not known yet.
FIRST_STEP_MARGIN = 8.0


@dataclass
class StepResult:
    """What one training step gives back: the loss (encrypted for encrypted weights) and outputs.

    ``loss`` is None when the step was asked not to compute it (``with_loss=False``).
    """

    loss: Any
    outputs: Any


@runtime_checkable
class Trainable(Protocol):
    """What the loop needs from a model: its weights, and one SGD step on a batch.

    ``train_step`` must change no weight when it raises (a step refused half-way by the scheme
    leaves the model as it was), so the loop can refresh and take the step again. With
    ``with_loss=False`` the loop will not read the loss, so the step may skip computing it
    (returning ``loss=None``); the weights must be updated exactly as with the loss. A model whose
    ``train_step`` takes no ``with_loss`` keyword is still trained (always asked for the loss).
    """

    @property
    def encrypted(self) -> bool: ...

    def weights(self) -> list[Any]: ...

    def set_weights(self, values: Sequence[Any]) -> None: ...

    def train_step(
        self, batch: Batch, learning_rate: float, *, with_loss: bool = True
    ) -> StepResult: ...


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
    """Training history. ``decrypt(secret_key, scheme)`` fills in the losses for the key holder."""

    records: list[TrainingRecord] = field(default_factory=list)
    refreshes: int = 0
    steps: int = 0
    seconds: float = 0.0
    samples: int = 0
    #: Steps after which the weights' noise was absorbed (:func:`absorb_weight_noise`), the
    #: farthest one such step moved a weight, and the sum over those steps of that farthest
    #: move: no weight moved farther in all (in the weights' own units).
    absorbed_steps: int = 0
    largest_absorbed: float = 0.0
    total_absorbed: float = 0.0

    @property
    def losses(self) -> list[float | None]:
        return [record.loss for record in self.records]

    def absorbed_summary(self) -> dict[str, Any] | None:
        """The absorbed-noise figures as JSON (None where no step's noise was absorbed)."""
        if not self.absorbed_steps:
            return None
        return {
            "steps": self.absorbed_steps,
            "largest_per_step": self.largest_absorbed,
            "total": self.total_absorbed,
        }

    def restore_absorbed(self, figures: Mapping[str, Any]) -> None:
        """Set the absorbed-noise figures from :meth:`absorbed_summary`'s JSON; ValueError (or
        KeyError, TypeError) for figures no run can have produced."""
        steps = int(figures["steps"])
        largest, total = float(figures["largest_per_step"]), float(figures["total"])
        if steps < 0 or not 0.0 <= largest <= total < math.inf:
            raise ValueError("bad absorbed-noise figures")
        self.absorbed_steps, self.largest_absorbed, self.total_absorbed = steps, largest, total

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds else 0.0

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


def describe_absorbed(figures: Mapping[str, Any] | None) -> str:
    """One line on the noise absorbed into the weights (:meth:`History.absorbed_summary`'s
    figures; "" where none was absorbed)."""
    if not figures:
        return ""

    def power(value: float) -> str:
        return f"2**{math.log2(value):.1f}" if value > 0 else "0"

    return (
        f"weights' noise absorbed after {figures['steps']} steps: each moved a weight by at "
        f"most {power(figures['largest_per_step'])}, {power(figures['total'])} in all "
        "(docs/numerics.md, 'Absorbing the noise')"
    )


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


@dataclass
class TrainingState:
    """A training plan and what the loop has measured, saved with a model to resume it.

    ``step_cost``, ``loss_gap`` and ``fresh_budget`` are noise-budget figures (bits, or levels for
    a leveled scheme): the last step's cost, how much less budget the encrypted loss has than the
    weights, and the budget a refresh gives.
    """

    planned_steps: int = 0
    completed_steps: int = 0
    steps_per_epoch: int = 0
    learning_rate: float | None = None
    needs_refresh: bool = False
    step_cost: float | None = None
    loss_gap: float | None = None
    fresh_budget: float | None = None

    @property
    def unfinished(self) -> bool:
        return self.completed_steps < self.planned_steps

    def learn_fresh_budget(self, refreshed: float | None) -> None:
        """Record the budget refreshed weights have (the largest seen is what a refresh gives)."""
        if refreshed is not None and math.isfinite(refreshed):
            self.fresh_budget = max(refreshed, self.fresh_budget or refreshed)

    def to_json(self) -> dict[str, Any]:
        """JSON for a file (empty for a model that was never trained in a plan)."""
        if not self.planned_steps and self.fresh_budget is None:
            return {}
        items = {
            "planned_steps": self.planned_steps,
            "completed_steps": self.completed_steps,
            "steps_per_epoch": self.steps_per_epoch,
            "learning_rate": self.learning_rate,
            "needs_refresh": self.needs_refresh,
            "step_cost_bits": self.step_cost,
            "loss_gap_bits": self.loss_gap,
            "fresh_budget_bits": self.fresh_budget,
        }
        return {key: value for key, value in items.items() if value is not None}

    @classmethod
    def from_json(cls, meta: Mapping[str, Any], where: str) -> TrainingState:
        """The state :meth:`to_json` wrote; a malformed one raises :class:`SerializationError`."""
        counts = {}
        for key in ("planned_steps", "completed_steps", "steps_per_epoch"):
            value = meta.get(key, 0)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise SerializationError(f"{where}: training state {key!r} is malformed.")
            counts[key] = value
        return cls(
            **counts,
            learning_rate=_number(meta.get("learning_rate")),
            needs_refresh=meta.get("needs_refresh") is True,
            step_cost=_number(meta.get("step_cost_bits")),
            loss_gap=_number(meta.get("loss_gap_bits")),
            fresh_budget=_number(meta.get("fresh_budget_bits")),
        )


@dataclass(frozen=True)
class Progress:
    """A progress report: after every step (with its record if logged) and around refreshes."""

    done: int
    total: int
    record: TrainingRecord | None = None
    note: str = ""
    batch: Batch | None = None
    outputs: Any = None
    #: the unit of ``record.noise_budget`` (:func:`hennframework.scheme.noise_budget_unit`)
    budget_unit: str = "bits"


@dataclass
class TrainOutcome:
    """What a run did: ``status`` is ``"complete"``, ``"needs-refresh"`` (no refresh available,
    stopped before a step the budget would not carry) or ``"refused"`` (a step the scheme refused
    even on fresh weights). The model is as it was after the last completed step."""

    status: str
    steps: int
    completed_steps: int
    planned_steps: int
    refreshes: int
    seconds: float
    noise_budget: float | None
    message: str
    history: History
    #: what stopped a run that did not complete, without the advice ``message`` gives to Python
    #: callers (the command line phrases its own)
    reason: str = ""
    #: the lowest budget the weights had after any step of this run (before its noise was
    #: absorbed): with the budget at the start, what the run used (None for plain weights)
    lowest_noise_budget: float | None = None
    #: the refresh after the last step that ``finish_fresh`` asks for: ``""`` (none was due or
    #: asked for), ``"done"``, or ``"failed: "`` and the reason (the trained weights are kept)
    final_refresh: str = ""


def lowest_noise_budget(tensors: Sequence[Any]) -> float | None:
    """The smallest noise budget of encrypted tensors (None for plain ones)."""
    budgets = [float(getattr(t, "noise_budget", math.inf)) for t in tensors if is_encrypted(t)]
    return min(budgets) if budgets else None


def count_correct(outputs: Any, targets: Any) -> int:
    """Samples whose 0/1 predictions (output >= 0.5) all equal their targets (>= 0.5)."""
    expected = np.asarray(targets) >= 0.5
    predicted = np.asarray(outputs).reshape(expected.shape) >= 0.5
    return int((predicted == expected).reshape(expected.shape[0], -1).all(axis=1).sum())


def fresh_noise_budget(tensors: Sequence[Any]) -> float | None:
    """The budget a refresh gives these weights, where their scheme states it (else None)."""
    values = []
    for tensor in tensors:
        fresh = getattr(getattr(tensor, "scheme", None), "fresh_noise_budget", None)
        if not callable(fresh):
            return None
        values.append(float(fresh(tensor)))
    return min(values) if values else None


def takes_with_loss(step: Callable[..., Any]) -> bool:
    """Whether a ``train_step`` accepts the ``with_loss`` keyword (a model written before it
    existed does not, and is then always asked for the loss)."""
    try:
        parameters = inspect.signature(step).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.kind is p.VAR_KEYWORD
        or (p.name == "with_loss" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
        for p in parameters
    )


def absorb_weight_noise(model: Trainable, history: History) -> bool:
    """Re-read each encrypted weight as an exact encryption of its current value, where its
    scheme can (``scheme.absorb_noise(tensor)``, e.g. the integer-vector scheme), and record
    how far that moved a weight in ``history``. Returns whether any weight was absorbed.

    The weights' noise bound, tracked forward from the start, grows every step by the factor
    ``1 + lr |H|`` (``|H|``: the loss's Hessian with every entry made positive, since a party
    cannot know the signs) although SGD does not amplify errors that way; absorbing it after
    every step leaves each step only its own noise. The run is then exactly SGD with every
    update moved by at most ``history.largest_absorbed`` (a backward error, proved by the
    worst-case bound), and the weights need an owner refresh only when values grow or where a
    step's own noise is too large to absorb (the scheme then returns None and the weight keeps it).
    """
    renewed, moved, absorbed = [], 0.0, False
    for tensor in model.weights():
        absorb = getattr(getattr(tensor, "scheme", None), "absorb_noise", None)
        result = absorb(tensor) if callable(absorb) and is_encrypted(tensor) else None
        if result is None:
            renewed.append(tensor)
            continue
        renewed.append(result[0])
        moved, absorbed = max(moved, float(result[1])), True
    if absorbed:
        model.set_weights(renewed)
        history.absorbed_steps += 1
        history.largest_absorbed = max(history.largest_absorbed, moved)
        history.total_absorbed += moved
    return absorbed


def refresh_weights(model: Trainable, refresh: Refresher, history: History) -> None:
    """Replace the weights by the key holder's fresh encryptions of them (counted in ``history``).

    Checks that the same number of tensors of the same shapes came back; raises what the
    refresher raises, with the weights unchanged.
    """
    tensors = model.weights()
    renewed = list(refresh(tensors))
    if len(renewed) != len(tensors):
        raise InputError(f"the refresh returned {len(renewed)} tensors for {len(tensors)}")
    for before, after in zip(tensors, renewed, strict=True):
        if tuple(before.shape) != tuple(after.shape):
            raise InputError(
                f"the refresh returned a tensor of shape {after.shape} for {before.shape}"
            )
    model.set_weights(renewed)
    history.refreshes += 1


def _scheme_floor(weights: Sequence[Any]) -> float:
    scheme = getattr(weights[0], "scheme", None) if weights else None
    floor = getattr(scheme, "min_noise_budget", None)
    return float(floor) if isinstance(floor, int | float) else 2.0


def _largest_input(batch: Batch) -> str:
    inputs = batch.inputs
    if isinstance(inputs, np.ndarray) and inputs.size:
        return f" The inputs of this batch reach |x| = {float(np.abs(inputs).max()):.3g}."
    return ""


def _refused_on_fresh_weights(batch_size: int, done: int) -> str:
    """What to change when a step is refused on freshly refreshed weights."""
    update = (
        f" (a step adds up the gradients of its whole batch, so a batch of {batch_size} can move "
        f"the weights {batch_size} times as far as one sample does)"
        if batch_size > 1
        else ""
    )
    diverging = (
        f" After {done} accepted step{'s' if done > 1 else ''}, a refusal often means that "
        "training diverges."
        if done
        else ""
    )
    return (
        "It was refused on freshly refreshed weights, so this step's values are too large for "
        "the parameter set: the inputs (standardise the features and clip outliers, e.g. to "
        f"+-8), or the weights and their update{update}: lower the learning rate or use smaller "
        "batches. A parameter set with more value range also helps (see docs/numerics.md)."
        + diverging
    )


def _plan(
    state: TrainingState, per_epoch: int, epochs: int, learning_rate: float, resume: bool
) -> float:
    """Set up the plan in ``state``; returns the learning rate to use."""
    if resume:
        if state.steps_per_epoch != per_epoch or not state.unfinished:
            raise InputError(
                "resuming continues a stopped run with the same data and batch size: this model "
                f"has no unfinished plan of {per_epoch} steps per epoch. Start a new run instead "
                "(on the command line: drop --resume)."
            )
        return state.learning_rate if state.learning_rate is not None else learning_rate
    state.planned_steps, state.completed_steps = epochs * per_epoch, 0
    state.steps_per_epoch, state.learning_rate = per_epoch, learning_rate
    state.step_cost = state.loss_gap = None
    return learning_rate


def train(
    model: Trainable,
    batches: Sequence[Batch],
    *,
    epochs: int = 1,
    learning_rate: float = 0.1,
    refresh: Refresher | None = None,
    history: History | None = None,
    state: TrainingState | None = None,
    resume: bool = False,
    min_noise_budget: float | None = None,
    log_every: int = 1,
    max_steps: int | None = None,
    monitor: Callable[[Any], float] | None = None,
    progress: Callable[[Progress], None] | None = None,
    when_exhausted: Literal["raise", "stop"] = "raise",
    absorb_noise: bool = True,
    finish_fresh: bool = False,
) -> TrainOutcome:
    """Train ``model`` with SGD over ``batches`` for ``epochs`` (or resume a stopped plan).

    ``refresh`` is the key holder's refresh provider (None: nobody can refresh); ``history`` and
    ``state`` are updated in place (new ones if not given); ``monitor`` (key holder only)
    decrypts the loss for the records; ``max_steps`` caps the steps of this run.
    ``min_noise_budget`` defaults to the scheme's (CKKS: 0 levels), else 2 bits. With
    ``when_exhausted="raise"`` a run that cannot go on raises
    :class:`~hennframework.exceptions.NoiseBudgetExhaustedError` (or the scheme's refusal);
    with ``"stop"`` it returns with that status; either way no weight is left half-updated.
    ``absorb_noise`` (default) absorbs the weights' noise after every step where the scheme can
    (:func:`absorb_weight_noise`); False tracks it forward from the last refresh instead.
    ``finish_fresh``: after a run that completes, refresh once more where the weights have less
    budget than a fresh encryption (as the scheme states it, or as a refresh of this run gave),
    while the key holder is still answering, so the trained model predicts (or goes to the next
    party) without another trip to the owner: CKKS training leaves the weights with the levels
    its last step did not use, fewer than a prediction needs. A final refresh that fails keeps
    the trained weights and says so in ``final_refresh`` and ``message``.

    >>> import numpy as np
    >>> from hennframework.nn import Sequential, make_batches
    >>> model = Sequential.mlp([2, 1], activation="exact", seed=0)
    >>> batches = make_batches(np.eye(2), [1.0, 0.0], batch_size=1)
    >>> outcome = train(model, batches, epochs=3, learning_rate=0.5)
    >>> outcome.status, outcome.completed_steps, len(outcome.history.records)
    ('complete', 6, 6)
    """
    if epochs < 1 or not learning_rate > 0 or log_every < 1:
        raise InputError("epochs and log_every must be >= 1 and the learning rate > 0")
    if not batches:
        raise InputError("no training data")
    history = History() if history is None else history
    state = TrainingState() if state is None else state
    learning_rate = _plan(state, len(batches), epochs, learning_rate, resume)
    planned, done = state.planned_steps, state.completed_steps
    if max_steps is not None:
        planned = min(planned, done + max_steps)
    state.needs_refresh = False
    encrypted = model.encrypted
    skips_loss = takes_with_loss(model.train_step)
    weights = model.weights() if encrypted else []
    floor = _scheme_floor(weights) if min_noise_budget is None else min_noise_budget
    stated_fresh = fresh_noise_budget(weights)
    fresh_budget = stated_fresh if stated_fresh is not None else state.fresh_budget
    scheme = next((w.scheme for w in weights if getattr(w, "scheme", None) is not None), None)
    budget_unit = "bits" if scheme is None else noise_budget_unit(scheme)
    started = time.perf_counter()
    refreshes_before, steps_here = history.refreshes, 0
    retrying = False  # the weights were refreshed because the step was refused
    status, message = "complete", f"trained {planned} steps"
    reason = ""  # what stopped the run, without advice (callers phrase their own)
    lowest: float | None = None  # the lowest budget after a step
    failure: Exception | None = None  # the scheme's refusal that stopped the run, if any

    def do_refresh() -> None:
        nonlocal fresh_budget
        if progress is not None:
            progress(Progress(done, planned, note="waiting for owner refresh"))
        refresh_weights(model, refresh, history)  # type: ignore[arg-type]
        state.learn_fresh_budget(min_noise_budget_of(model))
        if stated_fresh is None:
            fresh_budget = state.fresh_budget

    while done < planned:
        step_started = time.perf_counter()
        budget = min_noise_budget_of(model) if encrypted else None
        fresh = budget is not None and fresh_budget is not None and budget >= fresh_budget
        cost = state.step_cost
        if fresh and cost is not None and fresh_budget is not None and cost > fresh_budget - floor:
            status = "refused"
            message = (
                f"stopped after {done} of {planned} steps: one step uses {cost:g} of the "
                f"{fresh_budget:g} bits (levels) of noise budget a fresh encryption has, which "
                f"would leave the weights below the minimum of {floor:g}; no refresh can make "
                "room. The model is still decryptable. Use a parameter set with more budget "
                "(levels), a smaller batch or network, or a lower-degree activation."
            )
            break
        logged = (history.steps + 1) % log_every == 0  # only a logged loss is kept
        # the loss is computed where it is read: logged steps, and the steps that measure the
        # gap the loss rule uses: the first, and the one before each logged step (a gap
        # measured further back, e.g. on fresh weights, where the step's own noise dominates,
        # overstates it and would ask for a refresh at every logged step)
        measures_gap = state.loss_gap is None or (history.steps + 2) % log_every == 0
        with_loss = logged or measures_gap
        if budget is not None and not fresh:
            gap = state.loss_gap
            loss_short = logged and gap is not None and budget - 1.25 * gap < 1.0
            if refresh_due(budget, cost, floor, FIRST_STEP_MARGIN, fresh_budget) or loss_short:
                if refresh is None:
                    status = "needs-refresh"
                    reason = f"the noise budget ({budget:.1f} bits) will not carry another step"
                    message = (
                        f"stopped after {done} of {planned} steps: the noise budget "
                        f"({budget:.1f} bits) will not carry another step, and no refresh "
                        "provider was given. The weights are still decryptable. Pass the key "
                        "holder's refresher (refresh=OwnerRefresher(scheme, keys)); on the "
                        "command line, `henn refresh` (or `henn train --exchange DIR` while the "
                        "owner runs `henn serve-refresh`), then `henn train --resume`."
                    )
                    break
                try:
                    do_refresh()
                except NoiseBudgetExhaustedError as exc:
                    status, reason = "needs-refresh", str(exc)
                    message = f"stopped after {done} of {planned} steps: {exc}"
                    break
                budget = min_noise_budget_of(model)
        epoch, position = divmod(done, len(batches))
        batch = batches[position]
        try:
            if skips_loss:
                result = model.train_step(batch, learning_rate, with_loss=with_loss)
            else:
                result = model.train_step(batch, learning_rate)
        except (OverflowRiskError, NoiseBudgetExhaustedError) as exc:
            # the step changed no weight; unless they were just refreshed, refresh and retry
            failure = exc
            if fresh and isinstance(exc, NoiseBudgetExhaustedError):
                status = "refused"
                message = (
                    f"stopped after {done} of {planned} steps: step {done + 1} needs more noise "
                    f"budget (levels) than a fresh encryption has ({exc}). The model is still "
                    "decryptable. Use a parameter set with more levels, or a shallower network "
                    "or lower-degree activation."
                )
                break
            if refresh is None or retrying:
                status = "needs-refresh" if refresh is None else "refused"
                reason = (
                    f"step {done + 1} was refused by the encryption scheme: "
                    f"{exc}{_largest_input(batch)}"
                )
                message = (
                    f"stopped after {done} of {planned} steps: step {done + 1} was refused by "
                    f"the encryption scheme (the weights are unchanged and still decryptable): "
                    f"{exc}{_largest_input(batch)} "
                    + (
                        "It needs a refresh by the key holder (refresh=..., on the command line "
                        "`henn refresh`), then training can go on (`henn train --resume`); if the "
                        "step is refused again on fresh weights, the inputs are too large."
                        if refresh is None
                        else _refused_on_fresh_weights(batch.size, done)
                    )
                )
                break
            try:
                do_refresh()
            except NoiseBudgetExhaustedError as refused:
                status, reason = "needs-refresh", str(refused)
                message = f"stopped after {done} of {planned} steps: {refused}"
                break
            retrying, state.step_cost, failure = True, None, None
            history.seconds += time.perf_counter() - step_started
            continue
        retrying = False
        after = min_noise_budget_of(model) if encrypted else None
        if after is not None:
            lowest = after if lowest is None else min(lowest, after)
        if budget is not None and after is not None:
            state.step_cost = max(budget - after, 0.0)
            loss_budget = _number(getattr(result.loss, "noise_budget", None))
            if loss_budget is not None:
                state.loss_gap = max(budget - loss_budget, 0.0)
        if encrypted and absorb_noise:
            absorb_weight_noise(model, history)
        done += 1
        steps_here += 1
        state.completed_steps = done
        seconds = time.perf_counter() - step_started
        history.steps += 1
        history.samples += batch.size
        history.seconds += seconds
        record = None
        if history.steps % log_every == 0:
            loss = result.loss
            value = None
            if loss is not None and not is_encrypted(loss):
                value = float(np.asarray(loss).sum())
            elif monitor is not None:
                value = float(monitor(loss))
            record = TrainingRecord(
                history.steps, epoch, loss if is_encrypted(loss) else None, value, seconds, after
            )
            history.records.append(record)
        if progress is not None:
            progress(Progress(done, planned, record, "", batch, result.outputs, budget_unit))
    final_refresh = ""
    if finish_fresh and status == "complete" and steps_here and refresh is not None:
        left = min_noise_budget_of(model)
        # only where a refresh gives more (the fresh budget stated, or learned from a refresh)
        if left is not None and fresh_budget is not None and left < fresh_budget:
            try:
                do_refresh()
            except HennError as exc:  # the trained weights are kept whatever went wrong
                final_refresh = f"failed: {exc}"
                message += (
                    f"; the final refresh failed ({exc}), so the weights are as the last step "
                    "left them: have the key holder refresh the model before predicting"
                )
            else:
                final_refresh = "done"
                message += "; the weights were refreshed once more at the end"
    state.needs_refresh = status == "needs-refresh"
    outcome = TrainOutcome(
        status,
        steps_here,
        done,
        planned,
        history.refreshes - refreshes_before,
        time.perf_counter() - started,
        min_noise_budget_of(model) if encrypted else None,
        message,
        history,
        reason,
        lowest,
        final_refresh,
    )
    if status != "complete" and when_exhausted == "raise":
        if failure is not None:
            raise type(failure)(message) from failure
        raise NoiseBudgetExhaustedError(message)
    return outcome


def min_noise_budget_of(model: Trainable) -> float | None:
    """The smallest noise budget of the model's encrypted weights (None for a plain model)."""
    return lowest_noise_budget(model.weights()) if model.encrypted else None


def refresh_due(
    budget: float | None,
    step_cost: float | None,
    minimum: float,
    first_step_margin: float,
    fresh_budget: float | None = None,
) -> bool:
    """Whether weights with ``budget`` need a refresh before a step costing ``step_cost``.

    ``step_cost`` None (the first step of a plan, or after a refused step) requires
    ``first_step_margin`` spare bits instead. Weights that already have ``fresh_budget`` (a
    fresh encryption's budget, when known) never do: a refresh cannot give more, so asking for
    the margin would stop a resumed run before every step (a CKKS step may use 11 of 12 levels).
    The step is tried instead, and a refusal stops the run cleanly.
    """
    if budget is None or (fresh_budget is not None and budget >= fresh_budget):
        return False
    if step_cost is None:
        return budget - first_step_margin < minimum
    return budget - REFRESH_SAFETY * step_cost < minimum
