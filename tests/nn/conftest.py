"""Fixtures shared by the model and training tests."""

from __future__ import annotations

import warnings

import pytest

from hennframework.registry import get_backend
from hennframework.schemes.integer_vector import IntegerVectorScheme


@pytest.fixture(scope="module")
def scheme() -> IntegerVectorScheme:
    """The integer-vector scheme at its default (test-sized, insecure) parameters, on NumPy."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return IntegerVectorScheme("default", backend=get_backend("numpy"))
