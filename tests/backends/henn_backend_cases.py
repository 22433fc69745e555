"""The backend cases of the conformance suite (see conftest.py), importable by the tests too."""

from __future__ import annotations

import functools
import warnings
from typing import Any

import pytest
from henn_fake_cupy import emulated_cupy_backend
from hennframework_backends._xp_backend import XpBackend

from hennframework import registry

#: Names of entry-point backends that need a GPU (their cases carry the ``gpu`` marker).
GPU_BACKENDS = frozenset({"cupy"})


@functools.cache
def declared_backends() -> tuple[Any, ...]:
    """``henn backends``: every declared backend with whether it is usable here and why not."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tuple(registry.list_plugins("backend"))


def build_backend_cases(statuses: Any) -> tuple[Any, ...]:
    """``pytest.param`` objects: one per usable declared backend, plus the two CPU runs of the
    CuPy backend's code.

    Unusable declared backends are left out (one skip per test would bury the report);
    ``test_declared_backend_is_usable_or_says_why`` lists each of them once, skipped with the
    reason.
    """
    cases: list[Any] = []
    for status in statuses:
        if status.usable:
            marks = [pytest.mark.gpu] if status.name in GPU_BACKENDS else []
            backend = registry.get_backend(status.name)
            cases.append(pytest.param(backend, id=status.name, marks=marks))
    cases.append(pytest.param(XpBackend(name="xp-numpy"), id="xp-numpy"))
    cases.append(pytest.param(emulated_cupy_backend(), id="cupy-emulated"))
    return tuple(cases)


@functools.cache
def backend_cases() -> tuple[Any, ...]:
    """The suite's backend cases, computed once per session from the installed entry points."""
    return build_backend_cases(declared_backends())
