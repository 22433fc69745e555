"""The kit for plugin authors: base test classes for schemes, their codecs and array backends.

Import it only from tests (it imports pytest and Hypothesis; ``import hennframework`` never
imports this package). The classes live in :mod:`hennframework.testing.base`, one module per
concern (encryption, arithmetic, products, matmul, ..., codec, backend), and are all importable
from here. A scheme plugin's test module subclasses :class:`SchemeIdentityTests` (or a selection
of the ``Base*`` classes) and :class:`BaseCodecTests`, overriding the class-scoped fixtures
``scheme`` and ``tolerance`` (and, if needed, ``op_tolerance``, ``value_range``, ``max_depth``,
``keygen_options``); tests of capabilities the scheme does not declare are skipped with the
reason. An array backend subclasses :class:`BaseBackendTests` and overrides ``backend``. See
:mod:`hennframework.testing.base` for the fixtures and the guide "Writing a scheme plugin" in the
docs.

Schemes with exact integer messages and the integer-vector API (``encrypt(values, key, dim=m)``,
``decrypt``, ``dot``, ``linear_transform``, key switching) can also run
:class:`hennframework.testing.integer_vector.IntegerVectorExactTests` (exactness, measured noise
against the tracked bound, overflow refusal); it is imported on demand, not here.
"""

from __future__ import annotations

from hennframework.testing.base import (
    BaseArithmeticTests,
    BaseBackendTests,
    BaseBatchTests,
    BaseCipherProductTests,
    BaseCodecTests,
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
from hennframework.testing.bounds import ErrorModel, Tracked, assert_within

__all__ = [
    "BaseArithmeticTests",
    "BaseBackendTests",
    "BaseBatchTests",
    "BaseCipherProductTests",
    "BaseCodecTests",
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
