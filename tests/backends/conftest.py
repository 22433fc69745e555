"""Which backends the conformance suite checks: every installed one, plus the CuPy logic on the CPU.

The conformance class (``test_conformance.py``) runs once per case:

* every backend declared under the ``hennframework.backends`` entry points (``henn backends``)
  that is usable here. A third-party backend is checked by installing it, nothing else. The real
  CuPy backend carries the ``gpu`` marker. Declared but unusable backends are listed once each
  (``test_declared_backend_is_usable_or_says_why``), skipped with the reason;
* ``xp-numpy``: the array-module-generic class behind the CuPy backend
  (``hennframework_backends._xp_backend.XpBackend``) with ``xp = numpy``;
* ``cupy-emulated``: ``backends/cupy_backend.py`` itself, imported against a NumPy-backed fake
  CuPy that refuses host/device mixing and over-wide Python integers like CuPy does
  (``henn_fake_cupy.py``).

The last two run every code path of the GPU backend on the CPU, in CI.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from henn_backend_cases import GPU_BACKENDS, declared_backends
from hennframework_backends.numpy_backend import NumpyBackend

from hennframework import registry

CUPY_MODULE = "hennframework_backends.cupy_backend"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "declared_backend" in metafunc.fixturenames:
        metafunc.parametrize(
            "declared_backend",
            [
                pytest.param(
                    status,
                    id=status.name,
                    marks=[pytest.mark.gpu] if status.name in GPU_BACKENDS else [],
                )
                for status in declared_backends()
            ],
        )


@pytest.fixture(scope="session")
def reference() -> NumpyBackend:
    """The NumPy backend: the reference every backend must match bit for bit."""
    return NumpyBackend()


@pytest.fixture
def clean_registry() -> Iterator[Any]:
    """A test that fakes CuPy imports the CuPy backend module afresh, and nothing outlives it.

    The module (``hennframework_backends.cupy_backend``) is taken out of ``sys.modules`` before the
    test and put back as it was afterwards: a module imported against a fake CuPy must not make
    later tests find a "working" GPU backend. The registry's caches are cleared both times.
    """
    saved = sys.modules.pop(CUPY_MODULE, None)
    registry.clear_cache()
    yield registry
    sys.modules.pop(CUPY_MODULE, None)
    if saved is not None:
        sys.modules[CUPY_MODULE] = saved
    registry.clear_cache()
