"""The kit for scheme-plugin authors: a reusable Hypothesis suite of homomorphic identities.

Import it only from tests (it imports pytest and Hypothesis; ``import hennframework`` never
imports this package). A plugin's test module subclasses :class:`SchemeIdentityTests` (or a
selection of the ``Base*`` classes) and overrides the class-scoped fixtures ``scheme`` and
``tolerance`` (and, if needed, ``op_tolerance``, ``value_range``, ``max_depth``,
``keygen_options``); tests of capabilities the scheme does not declare are skipped with the reason.
See :mod:`hennframework.testing.identities` for the fixtures and the guide "Writing a scheme
plugin" in the docs.

Schemes with exact integer messages and the integer-vector API (``encrypt(values, key, dim=m)``,
``decrypt``, ``dot``, ``linear_transform``, key switching) can also run
:class:`hennframework.testing.integer_vector.IntegerVectorExactTests` (exactness, measured noise
against the tracked bound, overflow refusal); it is imported on demand, not here.
"""

from __future__ import annotations

from hennframework.testing.bounds import ErrorModel, Tracked, assert_within
from hennframework.testing.identities import (
    BaseArithmeticTests,
    BaseBatchTests,
    BaseCipherProductTests,
    BaseEncryptionTests,
    BaseErrorTests,
    BaseIndexingTests,
    BaseMagnitudeTests,
    BaseMatmulTests,
    BaseNoiseTests,
    BasePlainProductTests,
    BasePolynomialTests,
    BaseRefreshTests,
    SchemeFixtures,
    SchemeIdentityTests,
    kit_settings,
    require_capabilities,
)

__all__ = [
    "BaseArithmeticTests",
    "BaseBatchTests",
    "BaseCipherProductTests",
    "BaseEncryptionTests",
    "BaseErrorTests",
    "BaseIndexingTests",
    "BaseMagnitudeTests",
    "BaseMatmulTests",
    "BaseNoiseTests",
    "BasePlainProductTests",
    "BasePolynomialTests",
    "BaseRefreshTests",
    "ErrorModel",
    "SchemeFixtures",
    "SchemeIdentityTests",
    "Tracked",
    "assert_within",
    "kit_settings",
    "require_capabilities",
]
