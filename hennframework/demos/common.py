"""Pieces shared by the demos: scheme construction, fingerprints of ciphertexts, progress bars."""

from __future__ import annotations

import hashlib
import sys
from typing import Any

import numpy as np

import hennframework
from hennframework import config


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
    """A short hex digest of a ciphertext, to show that what the party sees is opaque."""
    data = getattr(tensor, "data", None)
    if data is not None:
        backend = getattr(getattr(tensor, "scheme", None), "backend", None)
        raw = backend.to_numpy(data) if backend is not None else np.asarray(data)
        return hashlib.sha256(np.ascontiguousarray(raw).tobytes()).hexdigest()[:10]
    serialize = getattr(tensor, "serialize", None)
    if callable(serialize):
        return hashlib.sha256(serialize()).hexdigest()[:10]
    return hashlib.sha256(repr(tensor).encode()).hexdigest()[:10]


def progress_bar(total: int, description: str, enabled: bool) -> Any:
    """A tqdm bar on stderr (disabled for --json or when asked)."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=description, disable=not enabled, file=sys.stderr, dynamic_ncols=True
    )
