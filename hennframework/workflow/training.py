"""Party-side training of a loaded model, with owner refreshes or a clean stop when none is possible.

One loop serves both model types: a *step* is one SGD step on one mini-batch (for XOR: all four
rows) and returns the encrypted loss ``1/2 sum((output - target)**2)``, which goes into the
history for the owner to decrypt later. Before each step the loop checks the weights' noise
budget: if ``budget - 1.5 * step_cost`` would fall below ``min_noise_budget`` it asks the refresh
provider (the owner, through a file exchange) for fresh encryptions. With no provider, or when the
owner does not answer in time, it stops *before* the step, so the weights are still decryptable,
and reports ``needs-refresh``; ``training`` state saved with the model lets the next
``henn train --resume`` continue where this one stopped.

``step_cost`` is the budget drop of the *last* step (kept in the training state). Not the largest
drop seen so far: the first step after a refresh costs far more bits than later ones (a fresh
ciphertext's tiny noise is swamped by the first product's key-switching noise), and using it
would refresh every few steps. Costs then grow slowly as the weights' noise compounds, which the
factor 1.5 covers. For a model that has never been trained here, the first step is taken only if
the budget has at least ``FIRST_STEP_MARGIN`` bits to spare. The encrypted loss, computed from the
weights, has less budget than they do (``loss_gap`` bits less, measured on the last step); the
loop also refreshes when the next loss would otherwise come out undecryptable.

Weights that have a fresh encryption's budget (stated by the scheme, e.g. CKKS's top level, or
learned from the refreshes seen, ``fresh_budget_bits`` in the training state) are never sent
for a refresh: it could not give more. So a step that uses most of a fresh budget (a CKKS step
may use every level) is still taken, and ``--resume`` after an owner refresh always progresses.
A step that cannot fit even in a fresh budget stops the run once with status ``refused``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hennframework.exceptions import InputError, NoiseBudgetExhaustedError, OverflowRiskError
from hennframework.io.models import ModelBundle
from hennframework.nn.model import (
    History,
    Refresher,
    Sequential,
    TrainingRecord,
    fresh_noise_budget,
    refresh_due,
)
from hennframework.nn.ops import is_encrypted, multiply_constant
from hennframework.nn.sentiment import BagOfWordsBatch, SentimentNetwork

__all__ = ["FIRST_STEP_MARGIN", "TrainOutcome", "train_bundle"]

#: Bits of budget (above the minimum) a model needs before its first step here, when the cost of
#: a step is not known yet.
FIRST_STEP_MARGIN = 8.0


@dataclass
class TrainOutcome:
    """What a training run did: ``status`` is ``"complete"``, ``"needs-refresh"``, or
    ``"refused"`` (a step refused by the scheme even on freshly refreshed weights: the inputs are
    too large for the parameter set; the model is kept as it was before that step)."""

    status: str
    steps: int
    completed_steps: int
    planned_steps: int
    refreshes: int
    seconds: float
    noise_budget: float | None
    message: str


def _weights(model: Any) -> tuple[list[Any], Callable[[list[Any]], None]]:
    """The model's trainable tensors and a function that puts replacements back."""
    if isinstance(model, SentimentNetwork):

        def put_sentiment(values: list[Any]) -> None:
            model.weights_0_1, model.weights_1_2 = values

        return [model.weights_0_1, model.weights_1_2], put_sentiment
    slots = [(index, name) for index, name, value in model.parameters() if value is not None]

    def put_sequential(values: list[Any]) -> None:
        for (index, name), value in zip(slots, values, strict=True):
            model.layers[index].set_parameters({name: value})

    return [value for _, _, value in model.parameters() if value is not None], put_sequential


def _check_refreshed(old: Sequence[Any], new: Sequence[Any]) -> None:
    if len(old) != len(new):
        raise InputError(f"the refresh returned {len(new)} tensors for {len(old)}")
    for before, after in zip(old, new, strict=True):
        if tuple(before.shape) != tuple(after.shape):
            raise InputError(
                f"the refresh returned a tensor of shape {after.shape} for {before.shape}"
            )


def _refresh_model(model: Any, refresh: Refresher, history: History) -> None:
    """Replace the model's weights by the owner's fresh encryptions and count the refresh.

    Raises what the refresher raises (NoiseBudgetExhaustedError when the owner refuses); the
    weights are unchanged then.
    """
    tensors, put = _weights(model)
    renewed = refresh(tensors)
    _check_refreshed(tensors, renewed)
    put(list(renewed))
    history.refreshes += 1
    if isinstance(model, SentimentNetwork):
        model.history.refreshes += 1


def _min_budget(model: Any) -> float | None:
    return model.min_noise_budget()  # type: ignore[no-any-return]


def _learn_fresh(
    state: dict[str, Any], known: float | None, refreshed: float | None
) -> float | None:
    """The fresh budget after a refresh: the scheme's figure if it states one, else the largest
    budget a refresh has given (kept in the training state for ``--resume``)."""
    if refreshed is None or not math.isfinite(refreshed):
        return known
    learned = state.get("fresh_budget_bits")
    best = max(refreshed, float(learned)) if isinstance(learned, int | float) else refreshed
    state["fresh_budget_bits"] = best
    return known if known is not None and known >= best else best


def train_bundle(
    bundle: ModelBundle,
    batches: Sequence[Any],
    *,
    epochs: int,
    learning_rate: float,
    refresh: Refresher | None = None,
    resume: bool = False,
    min_noise_budget: float | None = None,
    log_every: int = 1,
    max_steps: int | None = None,
    progress: Callable[[int, int, TrainingRecord | None, str], None] | None = None,
) -> TrainOutcome:
    """Train ``bundle.model`` on ``batches`` (``(x, y)`` pairs or :class:`BagOfWordsBatch`).

    ``progress(done, total, record, note)`` is called after every step and around refreshes.
    The bundle's ``history`` and ``training`` state are updated in place. ``min_noise_budget``
    defaults to the scheme's ``min_noise_budget`` (CKKS: 0 levels), else 2 bits.
    """
    model = bundle.model
    if epochs < 1 or learning_rate <= 0 or log_every < 1:
        raise InputError("epochs and log_every must be >= 1 and the learning rate > 0")
    if not batches:
        raise InputError("no training data")
    state = bundle.training
    per_epoch = len(batches)
    if resume:
        if state.get("steps_per_epoch") != per_epoch or not isinstance(
            state.get("planned_steps"), int
        ):
            raise InputError(
                "--resume continues a stopped run with the same data and batch size: this model has "
                f"no unfinished plan for {per_epoch} steps per epoch. Drop --resume to start a new run."
            )
        planned = int(state["planned_steps"])
        done = int(state.get("completed_steps", 0))
        learning_rate = float(state.get("learning_rate", learning_rate))
    else:
        planned, done = epochs * per_epoch, 0
    if max_steps is not None:
        planned = min(planned, done + max_steps)
    state.update(
        {
            "planned_steps": planned,
            "completed_steps": done,
            "steps_per_epoch": per_epoch,
            "learning_rate": learning_rate,
            "needs_refresh": False,
        }
    )
    history: History = bundle.history
    encrypted = bool(model.encrypted)
    cost = state.get("step_cost_bits")
    step_cost: float | None = float(cost) if isinstance(cost, int | float) else None
    gap = state.get("loss_gap_bits")
    loss_gap: float | None = float(gap) if isinstance(gap, int | float) else None
    weights = _weights(model)[0] if encrypted else []
    if min_noise_budget is None:
        scheme = getattr(weights[0], "scheme", None) if weights else None
        floor = getattr(scheme, "min_noise_budget", None)
        min_noise_budget = float(floor) if isinstance(floor, int | float) else 2.0
    # what a refresh gives: stated by the scheme, else learned from the refreshes seen so far
    fresh_budget = fresh_noise_budget(weights)
    learned = state.get("fresh_budget_bits")
    if fresh_budget is None and isinstance(learned, int | float):
        fresh_budget = float(learned)
    started = time.perf_counter()
    steps_here = refreshes_here = 0
    retrying = False  # the weights were refreshed because the step was refused
    status, message = "complete", f"trained {planned} steps"
    while done < planned:
        budget = _min_budget(model) if encrypted else None
        fresh = budget is not None and fresh_budget is not None and budget >= fresh_budget
        if (
            fresh
            and step_cost is not None
            and fresh_budget is not None
            and step_cost > fresh_budget - min_noise_budget
        ):
            status = "refused"
            message = (
                f"stopped after {done} of {planned} steps: one step uses {step_cost:g} of the "
                f"{fresh_budget:g} bits (levels) of noise budget a fresh encryption has, which "
                f"would leave the weights below the minimum of {min_noise_budget:g}; no refresh "
                "can make room. The model is saved and still decryptable. Use a parameter set "
                "with more budget (levels), a smaller batch or network, or a lower-degree "
                "activation."
            )
            break
        if budget is not None and not fresh:
            # the encrypted loss needs ``loss_gap`` more bits than the weights to stay decryptable
            loss_short = loss_gap is not None and budget - 1.25 * loss_gap < 1.0
            if (
                refresh_due(budget, step_cost, min_noise_budget, FIRST_STEP_MARGIN, fresh_budget)
                or loss_short
            ):
                if refresh is None:
                    status = "needs-refresh"
                    message = (
                        f"stopped after {done} of {planned} steps: the noise budget ({budget:.1f} bits) "
                        "will not carry another step, and no owner refresh is available. The model "
                        "is saved and still decryptable; it needs an owner refresh (`henn refresh`, "
                        "or run `henn train --exchange DIR` while the owner runs `henn serve-refresh`), "
                        "then `henn train --resume` continues."
                    )
                    break
                if progress is not None:
                    progress(done, planned, None, "waiting for owner refresh")
                try:
                    _refresh_model(model, refresh, history)
                except NoiseBudgetExhaustedError as exc:
                    status = "needs-refresh"
                    message = f"stopped after {done} of {planned} steps: {exc}"
                    break
                refreshes_here += 1
                budget = _min_budget(model)
                fresh_budget = _learn_fresh(state, fresh_budget, budget)
        epoch, position = divmod(done, per_epoch)
        step_started = time.perf_counter()
        try:
            loss, samples = _step(model, batches[position], learning_rate)
        except (OverflowRiskError, NoiseBudgetExhaustedError) as exc:
            # the step changed no weight; unless they were just refreshed, ask for a refresh
            # first (before the step is taken again), as the budget rule would have
            if fresh and isinstance(exc, NoiseBudgetExhaustedError):
                status = "refused"  # no refresh gives more budget than these weights have
                message = (
                    f"stopped after {done} of {planned} steps: step {done + 1} needs more noise "
                    f"budget (levels) than a fresh encryption has ({exc}). The model is saved and "
                    "still decryptable. Use a parameter set with more levels, or a shallower "
                    "network or lower-degree activation."
                )
                break
            if refresh is None or retrying:
                status = "needs-refresh" if refresh is None else "refused"
                message = (
                    f"stopped after {done} of {planned} steps: step {done + 1} was refused by "
                    f"the encryption scheme ({exc}). The model is saved and still decryptable. "
                    + (
                        "It needs an owner refresh (`henn refresh`), then `henn train --resume` "
                        "continues; if the step is refused again on fresh weights, the inputs "
                        "are too large: standardise the features."
                        if refresh is None
                        else "It was refused on freshly refreshed weights, so the inputs are too "
                        "large for the parameter set: standardise the features (see "
                        "docs/numerics.md)."
                    )
                )
                break
            try:
                _refresh_model(model, refresh, history)
            except NoiseBudgetExhaustedError as refused:
                status = "needs-refresh"
                message = f"stopped after {done} of {planned} steps: {refused}"
                break
            fresh_budget = _learn_fresh(state, fresh_budget, _min_budget(model))
            refreshes_here += 1
            retrying = True
            step_cost = None
            continue
        retrying = False
        seconds = time.perf_counter() - step_started
        after = _min_budget(model) if encrypted else None
        if budget is not None and after is not None:
            step_cost = max(budget - after, 0.0)
            state["step_cost_bits"] = step_cost
            loss_budget = getattr(loss, "noise_budget", None)
            if isinstance(loss_budget, int | float) and math.isfinite(loss_budget):
                loss_gap = max(budget - float(loss_budget), 0.0)
                state["loss_gap_bits"] = loss_gap
        done += 1
        steps_here += 1
        history.steps += 1
        history.samples += samples
        history.seconds += seconds
        record = None
        if history.steps % log_every == 0:
            record = TrainingRecord(
                history.steps,
                epoch,
                loss if is_encrypted(loss) else None,
                None if is_encrypted(loss) else float(loss),
                seconds,
                after,
            )
            history.records.append(record)
        state["completed_steps"] = done
        if progress is not None:
            progress(done, planned, record, "")
    if status == "needs-refresh":
        state["needs_refresh"] = True
    elapsed = time.perf_counter() - started
    if isinstance(model, SentimentNetwork):
        model.history.steps = history.steps
        model.history.reviews = history.samples
        model.history.seconds = history.seconds
    return TrainOutcome(
        status,
        steps_here,
        done,
        planned,
        refreshes_here,
        elapsed,
        _min_budget(model) if encrypted else None,
        message,
    )


def _step(model: Any, batch: Any, learning_rate: float) -> tuple[Any, int]:
    """One SGD step; returns (loss, samples). The loss is encrypted for encrypted models."""
    if isinstance(model, SentimentNetwork):
        if not isinstance(batch, BagOfWordsBatch):
            raise InputError("a sentiment network trains on reviews (BagOfWordsBatch)")
        output = model.train_step(batch, learning_rate)
        error = output - batch.labels
        return multiply_constant((error * error).sum(), 0.5), batch.size
    if not isinstance(model, Sequential):
        raise InputError(f"cannot train a {type(model).__name__}")
    inputs, targets = batch
    loss, grads = model.loss_and_gradients(inputs, targets)
    model.apply_gradients(grads, learning_rate)
    if not is_encrypted(loss):
        loss = float(np.asarray(loss))
    return loss, int(inputs.shape[0])
