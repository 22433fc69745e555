"""What every test class of the kit shares: the fixtures, the key seeds and two helpers.

:class:`SchemeFixtures` holds the class-scoped fixtures a plugin overrides (``scheme``,
``tolerance``, ...; described in :mod:`hennframework.testing.base`) and the ``encrypt`` /
``decrypt`` helpers the tests go through, so a plugin can change how the suite encrypts in one
place. :func:`kit_settings` and :func:`require_capabilities` are for plugin authors' own tests too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeAlias, TypeVar, cast

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hennframework.scheme import Capability, EncryptedTensor, HEScheme, KeySet
from hennframework.testing.bounds import ErrorModel, Tracked, assert_within

__all__ = [
    "KEY_SEED",
    "MAX_CHAIN",
    "OTHER_KEY_SEED",
    "PLAIN_BOUND",
    "Data",
    "SchemeFixtures",
    "kit_given",
    "kit_settings",
    "missing_fixture",
    "require_capabilities",
]

F = TypeVar("F", bound=Callable[..., Any])
#: The ``data`` argument of a :func:`kit_given` test: it draws the test's inputs.
Data: TypeAlias = st.DataObject

#: Seeds of the two key sets (reproducible keys for tests only: a known seed is a known key).
KEY_SEED = 1_000_003
OTHER_KEY_SEED = 2_000_003
#: Magnitude of plaintext operands (scalars, matrices, polynomial coefficients) the suite uses.
PLAIN_BOUND = 2.0
#: Longest chain of squarings the suite tries before expecting the scheme to refuse.
MAX_CHAIN = 48


def kit_settings(**changes: Any) -> Callable[[F], F]:
    """Hypothesis settings for kit tests: no deadline (HE is slow), fixtures are read-only,
    and a test may run on several instances of its class (pytest makes one per parametrised
    case: several schemes, parameter sets or code paths); kit tests keep no state on ``self``."""
    return settings(
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.differing_executors,
        ],
        **changes,
    )


def kit_given(**changes: Any) -> Callable[[F], F]:
    """:func:`kit_settings` with ``@given(data=st.data())``: a kit test draws its inputs from
    ``data`` (interactively, so later draws can depend on the scheme and on earlier ones)."""

    def decorate(test: F) -> F:
        return cast(F, kit_settings(**changes)(given(data=st.data())(test)))

    return decorate


def missing_fixture(cls: type, name: str, what: str = "") -> NoReturn:
    """Fail, without a traceback, the test of a kit class whose subclass did not override the
    class-scoped fixture ``name`` (``what``: what the override returns)."""
    pytest.fail(
        f"{cls.__name__} must override the class-scoped `{name}` fixture {what}".rstrip(),
        pytrace=False,
    )


def require_capabilities(scheme: HEScheme, *needed: Capability) -> None:
    """Skip the running test, naming the capability, unless the scheme declares all of ``needed``."""
    declared = type(scheme).capabilities
    for capability in needed:
        if capability not in declared:
            pytest.skip(f"{scheme.name} does not declare {capability.value}")


class SchemeFixtures:
    """The fixtures of the kit and small helpers every test class shares (see
    :mod:`hennframework.testing.base` for the fixtures)."""

    @pytest.fixture(scope="class")
    @classmethod
    def scheme(cls) -> HEScheme:
        missing_fixture(cls, "scheme", "with an instance of the scheme under test")

    @pytest.fixture(scope="class")
    @classmethod
    def keygen_options(cls) -> dict[str, Any]:
        return {}

    @pytest.fixture(scope="class")
    @classmethod
    def keys(cls, scheme: HEScheme, keygen_options: dict[str, Any]) -> KeySet:
        return scheme.keygen(seed=KEY_SEED, **keygen_options)

    @pytest.fixture(scope="class")
    @classmethod
    def other_keys(cls, scheme: HEScheme, keygen_options: dict[str, Any]) -> KeySet:
        return scheme.keygen(seed=OTHER_KEY_SEED, **keygen_options)

    @pytest.fixture(scope="class")
    @classmethod
    def tolerance(cls, scheme: HEScheme) -> float:
        missing_fixture(
            cls,
            "tolerance",
            "with the absolute error of a fresh encryption, derived from the scheme's stated "
            "precision",
        )

    @pytest.fixture(scope="class")
    @classmethod
    def op_tolerance(cls, tolerance: float) -> float:
        return 2.0 * tolerance

    @pytest.fixture(scope="class")
    @classmethod
    def value_range(cls) -> float:
        return 1.0

    @pytest.fixture(scope="class")
    @classmethod
    def max_depth(cls) -> int:
        return 2

    @pytest.fixture(scope="class")
    @classmethod
    def errors(cls, tolerance: float, op_tolerance: float) -> ErrorModel:
        return ErrorModel(float(tolerance), float(op_tolerance))

    # -- helpers a plugin may override ----------------------------------------------------------
    def encrypt(self, scheme: HEScheme, keys: KeySet, values: Any) -> EncryptedTensor:
        """Encrypt with the public key when the scheme has public-key encryption, else the secret key."""
        key = keys.public if Capability.ENCRYPT_PUBLIC in type(scheme).capabilities else keys.secret
        tensor: EncryptedTensor = scheme.encrypt_tensor(np.asarray(values), key)
        return tensor

    def decrypt(
        self, scheme: HEScheme, keys: KeySet, tensor: EncryptedTensor
    ) -> npt.NDArray[np.float64]:
        return np.asarray(scheme.decrypt_tensor(tensor, keys.secret), dtype=np.float64)

    def assert_decrypts(
        self, scheme: HEScheme, keys: KeySet, tensor: EncryptedTensor, expected: Tracked, what: str
    ) -> None:
        """``tensor`` decrypts (through :meth:`decrypt`) within ``expected``'s error bound."""
        assert_within(self.decrypt(scheme, keys, tensor), expected, what)

    def polyval_bound(self, errors: ErrorModel, x: Tracked, coefficients: list[float]) -> Tracked:
        """Error bound of ``polyval``; override for an evaluation order other than a power tree."""
        return errors.polyval(x, coefficients)
