"""Polynomial evaluation on ciphertexts (``polyval``), up to degree ``2**max_depth`` (at most 4)."""

from __future__ import annotations

from hennframework.scheme import Capability, HEScheme, KeySet
from hennframework.testing import strategies as hst
from hennframework.testing.base.base import (
    PLAIN_BOUND,
    Data,
    SchemeFixtures,
    kit_given,
    require_capabilities,
)
from hennframework.testing.bounds import ErrorModel

__all__ = ["BasePolynomialTests"]


class BasePolynomialTests(SchemeFixtures):
    """Dec(polyval(a, c)) ~ sum c_i x**i up to degree 2**max_depth (at most 4)."""

    @kit_given()
    def test_polyval(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        max_depth: int,
        data: Data,
    ) -> None:
        require_capabilities(scheme, Capability.POLYNOMIAL)
        max_degree = min(2**max_depth, 4)
        x = data.draw(hst.real_arrays(hst.batch_shapes(), value_range), label="x")
        coefficients = data.draw(hst.coefficients(max_degree, PLAIN_BOUND), label="coefficients")
        result = self.encrypt(scheme, keys, x).polyval(coefficients)
        expected = self.polyval_bound(errors, errors.fresh(x), coefficients)
        self.assert_decrypts(scheme, keys, result, expected, f"Dec(polyval(a, {coefficients}))")
