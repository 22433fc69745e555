"""The whole identity suite in one class, for a plugin that runs every concern at once."""

from __future__ import annotations

from hennframework.testing.base.arithmetic import BaseArithmeticTests
from hennframework.testing.base.batch import BaseBatchTests
from hennframework.testing.base.encryption import BaseEncryptionTests
from hennframework.testing.base.errors import BaseErrorTests
from hennframework.testing.base.indexing import BaseIndexingTests
from hennframework.testing.base.magnitude import BaseMagnitudeTests
from hennframework.testing.base.matmul import BaseMatmulTests
from hennframework.testing.base.noise import BaseNoiseTests
from hennframework.testing.base.polynomial import BasePolynomialTests
from hennframework.testing.base.products import BaseCipherProductTests, BasePlainProductTests
from hennframework.testing.base.refresh import BaseRefreshTests

__all__ = ["SchemeIdentityTests"]


class SchemeIdentityTests(
    BaseEncryptionTests,
    BaseArithmeticTests,
    BasePlainProductTests,
    BaseCipherProductTests,
    BaseMatmulTests,
    BaseIndexingTests,
    BasePolynomialTests,
    BaseBatchTests,
    BaseErrorTests,
    BaseNoiseTests,
    BaseMagnitudeTests,
    BaseRefreshTests,
):
    """Every identity of the kit. Subclass it (or a selection of the Base* classes) in a plugin."""
