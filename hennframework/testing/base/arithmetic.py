"""Sums, differences and negation of ciphertexts and plaintexts, with broadcasting."""

from __future__ import annotations

import numpy as np

from hennframework.scheme import Capability, HEScheme, KeySet
from hennframework.testing import strategies as hst
from hennframework.testing.base.base import Data, SchemeFixtures, kit_given, require_capabilities
from hennframework.testing.bounds import ErrorModel

__all__ = ["BaseArithmeticTests"]


class BaseArithmeticTests(SchemeFixtures):
    """Addition, subtraction and negation, with ciphertexts and plaintexts, with broadcasting."""

    @kit_given()
    def test_add_sub_neg(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, value_range: float, data: Data
    ) -> None:
        require_capabilities(scheme, Capability.ADD)
        shape = data.draw(hst.batch_shapes(), label="shape")
        x = data.draw(hst.real_arrays(shape, value_range), label="x")
        y = data.draw(hst.real_arrays(shape, value_range), label="y")
        a, b = self.encrypt(scheme, keys, x), self.encrypt(scheme, keys, y)
        ta, tb = errors.fresh(x), errors.fresh(y)
        self.assert_decrypts(scheme, keys, a + b, errors.add(ta, tb), "Dec(a + b)")
        self.assert_decrypts(scheme, keys, a - b, errors.sub(ta, tb), "Dec(a - b)")
        self.assert_decrypts(scheme, keys, -a, errors.neg(ta), "Dec(-a)")
        self.assert_decrypts(scheme, keys, a + a, errors.add(ta, ta), "Dec(a + a)")
        self.assert_decrypts(scheme, keys, a - a, errors.sub(ta, ta), "Dec(a - a)")

    @kit_given()
    def test_add_broadcasts(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, value_range: float, data: Data
    ) -> None:
        require_capabilities(scheme, Capability.ADD)
        left, right = data.draw(hst.broadcast_pairs(), label="shapes")
        x = data.draw(hst.real_arrays(left, value_range), label="x")
        y = data.draw(hst.real_arrays(right, value_range), label="y")
        result = self.encrypt(scheme, keys, x) + self.encrypt(scheme, keys, y)
        assert tuple(result.shape) == np.broadcast_shapes(left, right)
        expected = errors.add(errors.fresh(x), errors.fresh(y))
        self.assert_decrypts(scheme, keys, result, expected, "Dec(a + b) broadcast")

    @kit_given()
    def test_plaintext_add_sub(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, value_range: float, data: Data
    ) -> None:
        require_capabilities(scheme, Capability.ADD)
        shape = data.draw(hst.batch_shapes(), label="shape")
        x = data.draw(hst.real_arrays(shape, value_range), label="x")
        p = data.draw(hst.real_arrays(shape, value_range), label="p")
        k = data.draw(hst.reals(value_range), label="k")
        a, ta = self.encrypt(scheme, keys, x), errors.fresh(x)
        self.assert_decrypts(scheme, keys, a + p, errors.add_plain(ta, p), "Dec(a + p)")
        self.assert_decrypts(scheme, keys, p + a, errors.add_plain(ta, p), "Dec(p + a)")
        self.assert_decrypts(scheme, keys, a - p, errors.add_plain(ta, -p), "Dec(a - p)")
        self.assert_decrypts(scheme, keys, p - a, errors.add_plain(errors.neg(ta), p), "Dec(p - a)")
        self.assert_decrypts(
            scheme, keys, a + k, errors.add_plain(ta, np.full(shape, k)), "Dec(a + scalar)"
        )
        self.assert_decrypts(
            scheme,
            keys,
            k - a,
            errors.add_plain(errors.neg(ta), np.full(shape, k)),
            "Dec(scalar - a)",
        )
