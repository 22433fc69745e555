"""Shared fixtures of the CKKS plugin's tests: one scheme and key set per parameter set and session.

Key generation costs 0.3 s (n8192) to 2.5 s (n16384), so keys are session-scoped and read-only.
Hypothesis: the kit's identities run real encryptions (tens of milliseconds each), so this test
folder uses its own small profiles ("ckks-ci", derandomised, when CI is set; "ckks-dev"
otherwise; HYPOTHESIS_PROFILE overrides both; "ckks-thorough" runs 150 examples per test). In a
session together with the main test suite, the main suite's profile is left in place.
"""

from __future__ import annotations

import os

import pytest
from hennframework.scheme import KeySet
from hypothesis import settings
from hypothesis.errors import InvalidArgument

try:
    from hennframework_ckks import CKKSScheme
except ImportError:  # plugin not installed: the repository's root conftest reports it
    CKKSScheme = None  # type: ignore[assignment,misc]
    collect_ignore_glob = ["test_*.py"]

settings.register_profile(
    "ckks-ci", derandomize=True, deadline=None, max_examples=6, print_blob=True
)
settings.register_profile("ckks-dev", deadline=None, max_examples=6)
settings.register_profile("ckks-thorough", deadline=None, max_examples=150)

try:  # in a session with the main test suite, keep its profile (its conftest registers "dev")
    settings.get_profile("dev")
except InvalidArgument:
    settings.load_profile(
        os.environ.get("HYPOTHESIS_PROFILE") or ("ckks-ci" if os.environ.get("CI") else "ckks-dev")
    )


@pytest.fixture(scope="session")
def scheme8192() -> CKKSScheme:
    return CKKSScheme("n8192")


@pytest.fixture(scope="session")
def keys8192(scheme8192: CKKSScheme) -> KeySet:
    return scheme8192.keygen()


@pytest.fixture(scope="session")
def scheme4096() -> CKKSScheme:
    return CKKSScheme("n4096")


@pytest.fixture(scope="session")
def keys4096(scheme4096: CKKSScheme) -> KeySet:
    return scheme4096.keygen()


@pytest.fixture(scope="session")
def scheme16384() -> CKKSScheme:
    return CKKSScheme("n16384")


@pytest.fixture(scope="session")
def keys16384(scheme16384: CKKSScheme) -> KeySet:
    return scheme16384.keygen()
