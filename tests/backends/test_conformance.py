"""Backend conformance: every backend gives the NumPy backend's results, bit for bit.

The checks are the kit's (:class:`hennframework.testing.BaseBackendTests`, which a third-party
backend subclasses in its own tests); here they run once per backend case (see conftest.py):
every installed, usable backend from the entry points, plus the CuPy backend's code on the CPU
(``xp-numpy``, ``cupy-emulated``). This module adds what only this repository can check: that
every declared backend is in the suite or says why not, that installing a backend is all it
takes to join, and that the suite catches an inexact one.
"""

from __future__ import annotations

from typing import Any

import pytest
from henn_backend_cases import backend_cases, build_backend_cases
from hennframework_backends._limbs import limb_plan

from hennframework import registry
from hennframework.backend import ArrayBackend
from hennframework.testing import BaseBackendTests


class TestBackendConformance(BaseBackendTests):
    """The kit's backend checks, once per backend case."""

    @pytest.fixture(scope="class", params=backend_cases())
    @classmethod
    def backend(cls, request: pytest.FixtureRequest) -> ArrayBackend:
        backend: ArrayBackend = request.param
        return backend


def test_declared_backend_is_usable_or_says_why(declared_backend: Any) -> None:
    """Each declared backend is in the suite, or is listed here once, skipped with the reason."""
    assert declared_backend.detail
    if not declared_backend.usable:
        pytest.skip(
            f"backend {declared_backend.name!r} is not usable here: {declared_backend.detail}"
        )
    assert declared_backend.name in {case.id for case in backend_cases()}


def test_matmul_small_left_covers_both_paths() -> None:
    """The kit's parameters include exact-float plans and plans the float path cannot serve."""
    assert limb_plan(9, 128) is not None
    assert limb_plan(4104, 2**40) is None  # falls back to the general exact product


# -- a third backend is checked by installing it ------------------------------------------------
THIRD_PARTY_BACKENDS = """
import numpy as np
from hennframework_backends.numpy_backend import NumpyBackend


class ThirdBackend(NumpyBackend):
    name = "third"

    def describe(self):
        return "a third-party backend (test double)"


class SloppyBackend(NumpyBackend):
    # integer products through float64 GEMMs without limbs: bits above 2**53 are lost
    name = "sloppy"

    def matmul_int_wrap(self, left, right):
        with np.errstate(invalid="ignore", over="ignore"):
            product = np.asarray(left, dtype=np.float64) @ np.asarray(right, dtype=np.float64)
            return np.rint(product).astype(np.int64)
"""


def test_an_installed_backend_joins_the_suite(plugin_sandbox: Any, reference: Any) -> None:
    """Declaring an entry point is all it takes; and the suite catches an inexact backend."""
    plugin_sandbox.module("henn_third_backends", THIRD_PARTY_BACKENDS)
    for name, target in (("third", "ThirdBackend"), ("sloppy", "SloppyBackend")):
        plugin_sandbox.entry_point("hennframework.backends", name, f"henn_third_backends:{target}")
    statuses = registry.list_plugins("backend")
    cases = {case.id: case.values[0] for case in build_backend_cases(statuses)}
    assert {"numpy", "third", "sloppy", "xp-numpy", "cupy-emulated"} <= cases.keys()
    shapes = ((7, 300), (300, 2))
    suite = TestBackendConformance()
    suite.test_matmul_int_wrap_exact_modulo_2_64(cases["third"], reference, *shapes, "wide")
    with pytest.raises(AssertionError):
        suite.test_matmul_int_wrap_exact_modulo_2_64(cases["sloppy"], reference, *shapes, "wide")
