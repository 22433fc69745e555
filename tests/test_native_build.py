"""The compiled kernels were built where CI requires them.

CI sets ``HENN_REQUIRE_NATIVE=1``: an installation that lost its kernels without a word (a
compiler missing, a build step skipped) would pass every test on the NumPy paths alone and
ship the slow path; it fails here instead. Elsewhere the kernels are optional.
"""

from __future__ import annotations

import os

import pytest

from hennframework.schemes.integer_vector import native


def test_built_where_required() -> None:
    if os.environ.get("HENN_REQUIRE_NATIVE") != "1":
        pytest.skip("HENN_REQUIRE_NATIVE is not set: the kernels are optional here")
    assert native.built(), native.status()
    assert native.available(), native.status()
