"""Pieces shared by the demos: scheme construction, fingerprints of ciphertexts, progress bars,
and the key holder's predictions after training."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

import hennframework
from hennframework import config
from hennframework.codec import EntrySink
from hennframework.exceptions import NoiseBudgetExhaustedError, OverflowRiskError
from hennframework.io.codecs import codec_for

T = TypeVar("T")


def make_scheme(scheme: str | None, params: str | None, backend: str | None) -> Any:
    """An instance of the configured (or named) scheme with a parameter set, on the chosen backend."""
    scheme_choice = config.resolve("scheme", scheme)
    backend_choice = config.resolve("backend", backend)
    instance = hennframework.get_scheme(
        scheme_choice.value, params=params, backend=backend_choice.value
    )
    return instance


def describe_scheme(scheme: Any) -> dict[str, Any]:
    """Scheme, parameter set, its security label and backend, for demo summaries."""
    parameter_set = getattr(getattr(scheme, "params", None), "name", None)
    return {
        "scheme": scheme.name,
        "parameter_set": parameter_set,
        "security": scheme.get_parameter_set(parameter_set).security_label(),
        "backend": getattr(getattr(scheme, "backend", None), "name", "n/a"),
    }


def fingerprint(tensor: Any) -> str:
    """A short hex digest of a ciphertext (of what its codec writes), to show it is opaque."""
    sink = EntrySink()
    codec_for(tensor.scheme).write_tensors([tensor], sink, "")
    digest = hashlib.sha256()
    for name in sorted(sink.arrays):
        digest.update(np.ascontiguousarray(sink.arrays[name]).tobytes())
    for name in sorted(sink.blobs):
        digest.update(sink.blobs[name])
    return digest.hexdigest()[:10]


def progress_bar(total: int, description: str, enabled: bool) -> Any:
    """A tqdm bar on stderr (disabled for --json or when asked)."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=description, disable=not enabled, file=sys.stderr, dynamic_ncols=True
    )


def refresh_if_refused(
    model: Any, refresh: Callable[[list[Any]], list[Any]], action: Callable[[], T]
) -> T:
    """``action()`` (the key holder's predictions or evaluation of an encrypted ``model``), with
    the model refreshed first only if it must be.

    Training usually leaves enough noise budget for a forward pass (integer-vector weights), so
    the owner's refresh after training is spent only when ``action`` is refused: a decryption
    whose noise bound could have corrupted it, a level that is not there, or a value range a
    low level cannot hold (CKKS ends training with few levels, and level 0 and 1 hold the
    smallest values). A refusal changes nothing; ``action`` then runs again on refreshed
    weights, and a second refusal is raised.
    """
    try:
        return action()
    except (NoiseBudgetExhaustedError, OverflowRiskError):
        model.refresh(refresh)
    return action()
