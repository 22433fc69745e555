"""Every integer-vector scheme test runs twice: with the compiled kernels (what an
installation with a C compiler runs) and with the NumPy paths alone (what one without runs,
or ``HENN_NATIVE=0``). Both must give the same words, bounds and errors. A module that
compares both paths itself sets ``COMPARES_BOTH_PATHS = True`` and runs once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hennframework.schemes.integer_vector import native


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "kernels" in metafunc.fixturenames and not getattr(
        metafunc.module, "COMPARES_BOTH_PATHS", False
    ):
        metafunc.parametrize("kernels", ["native", "numpy"], indirect=True)


@pytest.fixture(autouse=True)
def kernels(request: pytest.FixtureRequest) -> Iterator[str]:
    """``native``: the compiled kernels where built (skipped otherwise); ``numpy``: off."""
    mode = getattr(request, "param", "as written")
    if mode == "native" and not native.available():
        pytest.skip(f"compiled kernels not in use: {native.status()}")
    if mode == "numpy":
        with native.disabled():
            yield mode
        return
    yield mode
