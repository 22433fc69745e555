"""Products: ciphertext times plaintext (scalars, elementwise arrays) and ciphertext times
ciphertext (elementwise, broadcasting, chained up to the ``max_depth`` fixture)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import strategies as st

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

__all__ = ["BaseCipherProductTests", "BasePlainProductTests"]


class BasePlainProductTests(SchemeFixtures):
    """Dec(k a) ~ k x for plaintext scalars and elementwise (over the batch) plaintext arrays."""

    @kit_given()
    def test_scalar_product(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, value_range: float, data: Data
    ) -> None:
        require_capabilities(scheme, Capability.MUL_PLAIN)
        x = data.draw(hst.real_arrays(hst.batch_shapes(), value_range), label="x")
        k = data.draw(hst.reals(PLAIN_BOUND), label="k")
        a, ta = self.encrypt(scheme, keys, x), errors.fresh(x)
        k_array = np.full(x.shape, k)
        self.assert_decrypts(scheme, keys, a * k, errors.mul_plain(ta, k_array), "Dec(a * k)")
        self.assert_decrypts(scheme, keys, k * a, errors.mul_plain(ta, k_array), "Dec(k * a)")

    @kit_given()
    def test_integer_scalar_product(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, value_range: float, data: Data
    ) -> None:
        require_capabilities(scheme, Capability.MUL_PLAIN)
        x = data.draw(hst.real_arrays(hst.batch_shapes(), value_range), label="x")
        k = data.draw(st.integers(-3, 3), label="k")
        a = self.encrypt(scheme, keys, x)
        expected = errors.mul_plain(errors.fresh(x), np.full(x.shape, float(k)))
        self.assert_decrypts(scheme, keys, a * k, expected, "Dec(a * int k)")

    @kit_given()
    def test_elementwise_product(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, value_range: float, data: Data
    ) -> None:
        require_capabilities(scheme, Capability.MUL_PLAIN)
        shape = data.draw(hst.batch_shapes(), label="shape")
        x = data.draw(hst.real_arrays(shape, value_range), label="x")
        p = data.draw(hst.real_arrays(shape, PLAIN_BOUND), label="p")
        a, ta = self.encrypt(scheme, keys, x), errors.fresh(x)
        self.assert_decrypts(scheme, keys, a * p, errors.mul_plain(ta, p), "Dec(a * p)")
        self.assert_decrypts(scheme, keys, p * a, errors.mul_plain(ta, p), "Dec(p * a)")


class BaseCipherProductTests(SchemeFixtures):
    """Dec(a b) ~ x y for two ciphertexts (elementwise, broadcasting, chained to max_depth)."""

    @kit_given()
    def test_product(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, value_range: float, data: Data
    ) -> None:
        require_capabilities(scheme, Capability.MUL_CIPHER)
        shape = data.draw(hst.batch_shapes(), label="shape")
        x = data.draw(hst.real_arrays(shape, value_range), label="x")
        y = data.draw(hst.real_arrays(shape, value_range), label="y")
        a, b = self.encrypt(scheme, keys, x), self.encrypt(scheme, keys, y)
        ta, tb = errors.fresh(x), errors.fresh(y)
        self.assert_decrypts(scheme, keys, a * b, errors.mul(ta, tb), "Dec(a * b)")
        self.assert_decrypts(scheme, keys, a * a, errors.mul(ta, ta), "Dec(a * a)")

    @kit_given()
    def test_product_broadcasts(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, value_range: float, data: Data
    ) -> None:
        require_capabilities(scheme, Capability.MUL_CIPHER)
        left, right = data.draw(hst.broadcast_pairs(), label="shapes")
        x = data.draw(hst.real_arrays(left, value_range), label="x")
        y = data.draw(hst.real_arrays(right, value_range), label="y")
        result = self.encrypt(scheme, keys, x) * self.encrypt(scheme, keys, y)
        assert tuple(result.shape) == np.broadcast_shapes(left, right)
        self.assert_decrypts(
            scheme,
            keys,
            result,
            errors.mul(errors.fresh(x), errors.fresh(y)),
            "Dec(a * b) broadcast",
        )

    @kit_given()
    def test_product_chain(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        max_depth: int,
        data: Data,
    ) -> None:
        require_capabilities(scheme, Capability.MUL_CIPHER, Capability.ADD)
        if max_depth < 2:
            pytest.skip(f"max_depth {max_depth} < 2 for {scheme.name}")
        shape = data.draw(hst.batch_shapes(), label="shape")
        x, y, z = (data.draw(hst.real_arrays(shape, value_range), label=n) for n in "xyz")
        a, b, c = (self.encrypt(scheme, keys, v) for v in (x, y, z))
        ta, tb, tc = (errors.fresh(v) for v in (x, y, z))
        result = (a * b) * c + a * b
        expected = errors.add(errors.mul(errors.mul(ta, tb), tc), errors.mul(ta, tb))
        self.assert_decrypts(scheme, keys, result, expected, "Dec((a * b) * c + a * b)")
