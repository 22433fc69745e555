"""Party-side operations: train or use an encrypted model with only public files and own data.

Nothing here loads a secret key. ``train`` and ``predict`` need the model file, the public key it
is encrypted under and the party's data; ``switch_model`` needs the model and a switching key
(made by the owner), and no key of either party.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from hennframework.exceptions import (
    InputError,
    KeyMismatchError,
    NoiseBudgetExhaustedError,
    OverflowRiskError,
)
from hennframework.io.bundles import (
    KeyFile,
    load_model,
    load_public_key,
    load_switch_key,
    save_history,
    save_model,
    save_predictions,
)
from hennframework.io.models import ModelBundle
from hennframework.nn import (
    Batch,
    Progress,
    TrainingState,
    TrainOutcome,
    make_batches,
    word_model_defaults,
)
from hennframework.nn import train as nn_train
from hennframework.nn.training import count_correct, fresh_noise_budget
from hennframework.scheme import Capability, noise_budget_unit, require
from hennframework.workflow.data import load_review_subset, load_tabular, review_batches
from hennframework.workflow.exchange import FileRefresher

__all__ = ["DataOptions", "load_for_party", "predict", "switch_model", "train"]

PathLike = str | os.PathLike[str]


class DataOptions:
    """How to read the party's data (see :mod:`hennframework.workflow.data`)."""

    def __init__(
        self,
        spec: str,
        *,
        data_format: str = "auto",
        encoding: str | None = None,
        skip: int = 0,
        limit: int | None = None,
        target_columns: int = 1,
        header: bool | None = None,
        skip_empty: bool = False,
        tokenizer: str = "auto",
        lowercase: bool | None = None,
    ) -> None:
        self.spec, self.data_format, self.encoding = spec, data_format, encoding
        self.skip, self.limit, self.target_columns = skip, limit, target_columns
        self.header, self.skip_empty = header, skip_empty
        self.tokenizer, self.lowercase = tokenizer, lowercase


def load_for_party(
    model_path: PathLike, public_path: PathLike | None, *, backend: str | None = None
) -> tuple[ModelBundle, KeyFile | None]:
    """The model and (for an encrypted model) its public key, checked to belong together."""
    if public_path is None:
        bundle = load_model(model_path, backend=backend)
        if bundle.encrypted:
            raise InputError(
                f"{model_path} is encrypted: pass --public with the public key it is encrypted under."
            )
        return bundle, None
    public = load_public_key(public_path, backend=backend)  # verifies the key's fingerprint
    bundle = load_model(model_path, scheme=public.scheme, expect_key=public)
    return bundle, public


def _batches(
    bundle: ModelBundle, data: DataOptions, batch_size: int | None
) -> tuple[list[Batch], dict[str, Any]]:
    """The party's data as mini-batches in the form the model reads (word indices or numbers)."""
    model = bundle.model
    if model.reads_words:
        if bundle.vocabulary is None:
            raise InputError("this model carries no vocabulary, so reviews cannot be encoded.")
        reviews = load_review_subset(
            data.spec,
            data_format=data.data_format,
            encoding=data.encoding,
            header=data.header,
            skip_empty=data.skip_empty,
            skip=data.skip,
            limit=data.limit,
        )
        batches = review_batches(
            reviews,
            bundle.vocabulary,
            word_model_defaults(_scheme_name(bundle), batch_size)[0],
            tokenizer=data.tokenizer,
            lowercase=data.lowercase,
        )
        return batches, {"data": reviews.source, "rows": len(reviews)}
    table = load_tabular(data.spec, target_columns=data.target_columns)
    if model.input_width not in (None, table.inputs.shape[1]):
        raise InputError(
            f"the data has {table.inputs.shape[1]} input columns but the model expects "
            f"{model.input_width}."
        )
    return make_batches(table.inputs, table.targets, batch_size), {
        "data": table.source,
        "rows": table.rows,
    }


def training_defaults(
    bundle: ModelBundle, batch_size: int | None, learning_rate: float | None
) -> tuple[int | None, float]:
    """The batch size (None: all rows in one step) and learning rate a party trains with: those
    given, else a word model's defaults for the model's scheme
    (:func:`~hennframework.nn.word_model_defaults`: 32 reviews at 0.1, 256 at 0.025 under CKKS),
    else all rows at 0.1."""
    if bundle.model.reads_words:
        return word_model_defaults(_scheme_name(bundle), batch_size, learning_rate)
    return batch_size, 0.1 if learning_rate is None else learning_rate


def _scheme_name(bundle: ModelBundle) -> str | None:
    """The scheme of an encrypted model (None: a plain one)."""
    return bundle.scheme.name if bundle.encrypted and bundle.scheme else None


def train(
    model_path: PathLike,
    public_path: PathLike | None,
    data: DataOptions,
    out: PathLike,
    *,
    epochs: int = 1,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    exchange: PathLike | None = None,
    refresh_timeout: float = 600.0,
    final_refresh: bool = True,
    resume: bool = False,
    max_steps: int | None = None,
    log_every: int = 1,
    history_out: PathLike | None = None,
    backend: str | None = None,
    progress: Callable[[Progress], None] | None = None,
    absorb_noise: bool = True,
) -> tuple[TrainOutcome, dict[str, Any]]:
    """Train a model on the party's data and write the result (see :func:`hennframework.nn.train`).

    Stops cleanly (the model saved and still decryptable, ``--resume`` continues) when the noise
    budget runs out and the owner cannot refresh. ``learning_rate`` and ``batch_size`` None:
    :func:`training_defaults`. With an ``exchange``, ``final_refresh`` (default) has the owner
    refresh the trained weights once more where training left them with less budget than a fresh
    encryption (CKKS leaves too few levels for a prediction); the summary's ``final_refresh`` says
    whether it was done.
    """
    bundle, _ = load_for_party(model_path, public_path, backend=backend)
    batch_size, learning_rate = training_defaults(bundle, batch_size, learning_rate)
    batches, info = _batches(bundle, data, batch_size)
    refresher = None
    if exchange is not None and bundle.encrypted:
        assert bundle.key_id is not None
        refresher = FileRefresher(
            exchange, scheme=bundle.scheme, key_id=bundle.key_id, timeout=refresh_timeout
        )
    outcome = nn_train(
        bundle.model,
        batches,
        epochs=epochs,
        learning_rate=learning_rate,
        refresh=refresher,
        resume=resume,
        max_steps=max_steps,
        log_every=log_every,
        progress=progress,
        history=bundle.history,
        state=bundle.training,
        when_exhausted="stop",
        absorb_noise=absorb_noise,
        finish_fresh=final_refresh,
    )
    save_model(out, bundle)
    if history_out is not None:
        save_history(history_out, bundle.history)
    summary = {
        **{f.name: getattr(outcome, f.name) for f in fields(outcome) if f.name != "history"},
        "model": str(out),
        "key_id": bundle.key_id,
        "encrypted": bundle.encrypted,
        "batches_per_epoch": len(batches),
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        **info,
        "total_steps": bundle.history.steps,
        "absorbed_noise": bundle.history.absorbed_summary(),
        "total_refreshes": bundle.history.refreshes,
        "waited_for_owner_s": round(refresher.waited, 3) if refresher is not None else 0.0,
    }
    return outcome, summary


def predict(
    model_path: PathLike,
    public_path: PathLike | None,
    data: DataOptions,
    out: PathLike | None,
    *,
    backend: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Predictions on the party's data: encrypted for an encrypted model (only the owner reads them).

    ``progress(rows_done, rows)`` is called after each batch."""
    bundle, _ = load_for_party(model_path, public_path, backend=backend)
    model = bundle.model
    batches, info = _batches(bundle, data, 256 if model.reads_words else None)
    rows, done = sum(batch.size for batch in batches), 0
    outputs: list[Any] = []
    try:
        for batch in batches:
            outputs.append(model.predict(batch.inputs))
            done += batch.size
            if progress is not None:
                progress(done, rows)
    except (OverflowRiskError, NoiseBudgetExhaustedError) as exc:
        hint = _used_weights_hint(model, model_path)
        if not hint:
            raise
        raise type(exc)(f"{exc} {hint}") from exc
    targets = np.concatenate([batch.targets for batch in batches])
    labels = targets.reshape(-1) if targets.shape[1] == 1 else None
    summary: dict[str, Any] = {"encrypted": bundle.encrypted, **info}
    if out is not None:
        save_predictions(
            out, outputs, metadata={"model_key_id": bundle.key_id, "rows": info["rows"]}
        )
        summary["predictions_file"] = str(out)
    if not bundle.encrypted:
        values = np.concatenate([np.asarray(o, dtype=np.float64).reshape(-1) for o in outputs])
        summary["predictions"] = [float(v) for v in values]
        if labels is not None and labels.size == values.size:
            summary["accuracy"] = count_correct(values, labels) / values.size
    return summary


def _used_weights_hint(model: Any, model_path: PathLike) -> str:
    """Why a prediction may have run short, where the weights have less budget than a fresh
    encryption (CKKS training leaves them with the levels its last step did not use), and what
    the party does about it; "" where they are fresh."""
    weights = model.weights() if model.encrypted else []
    left, fresh = model.min_noise_budget(), fresh_noise_budget(weights)
    if not weights or left is None or fresh is None or left >= fresh:
        return ""
    unit = noise_budget_unit(weights[0].scheme)
    return (
        f"The model's weights have {left:g} of a fresh encryption's {fresh:g} {unit} left "
        "(training used the rest): ask the key owner to refresh the model (henn refresh --secret "
        f"SECRET --model {model_path} --out FRESH.henn) and predict with the refreshed file."
    )


def switch_model(
    model_path: PathLike,
    switch_key_path: PathLike,
    out: PathLike,
    *,
    keep_history: bool = False,
    backend: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Move an encrypted model to another key without decrypting it (no secret needed).

    The history and training state are dropped unless ``keep_history`` (they describe the previous
    party's training: its step count, sample count and timings). Kept encrypted losses are switched
    too, so the new key's owner can read them.
    """
    key_file = load_switch_key(switch_key_path, backend=backend)
    scheme = key_file.scheme
    require(scheme, (Capability.KEY_SWITCH,), "switching a model to another key")
    key = key_file.key
    bundle = load_model(model_path, kinds=("encrypted-model",), scheme=scheme)
    from_id = getattr(key, "from_key_id", None)
    to_id = getattr(key, "to_key_id", None)
    if bundle.key_id != from_id:
        raise KeyMismatchError(
            f"{switch_key_path} switches from key {from_id}, but {model_path} is under key "
            f"{bundle.key_id}; ask the owner for a switching key from {bundle.key_id}."
        )
    tensors = bundle.model.weights()
    switched = []
    for index, tensor in enumerate(tensors):
        switched.append(scheme.switch_key(tensor, key))
        if progress is not None:
            progress(index + 1, len(tensors))
    bundle.model.set_weights(switched)
    bundle.model.key_id = to_id
    if keep_history:
        for record in bundle.history.records:
            if record.encrypted_loss is not None:
                record.encrypted_loss = scheme.switch_key(record.encrypted_loss, key)
        bundle.history.records = list(bundle.history.records)
    else:
        bundle.drop_history()
    bundle.model.state = TrainingState()
    save_model(out, bundle)
    return {
        "model": str(out),
        "from_key_id": from_id,
        "to_key_id": to_id,
        "tensors": len(tensors),
        "noise_budget": bundle.model.min_noise_budget(),
        "history_kept": keep_history,
        "path": str(Path(out)),
    }
