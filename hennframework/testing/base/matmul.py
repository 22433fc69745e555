"""Matrix products: plaintext matrix @ encrypted batch, encrypted batch @ plaintext matrix, and
encrypted @ encrypted."""

from __future__ import annotations

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

__all__ = ["BaseMatmulTests"]


class BaseMatmulTests(SchemeFixtures):
    """Plaintext matrix @ encrypted batch, encrypted batch @ plaintext matrix, encrypted @ encrypted."""

    @kit_given()
    def test_plain_matrix_at_encrypted(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, value_range: float, data: Data
    ) -> None:
        require_capabilities(scheme, Capability.MATMUL_PLAIN)
        inner = data.draw(st.integers(1, hst.MAX_SIDE), label="K")
        rows = data.draw(st.integers(1, hst.MAX_SIDE), label="J")
        trailing = data.draw(st.sampled_from([(), (1,), (3,)]), label="trailing")
        x = data.draw(hst.real_arrays((inner, *trailing), value_range), label="x")
        p = data.draw(hst.real_matrices(rows, inner, PLAIN_BOUND), label="P")
        result = p @ self.encrypt(scheme, keys, x)
        assert tuple(result.shape) == (rows, *trailing)
        self.assert_decrypts(
            scheme, keys, result, errors.matmul_plain_left(p, errors.fresh(x)), "Dec(P @ a)"
        )

    @kit_given()
    def test_encrypted_at_plain_matrix(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, value_range: float, data: Data
    ) -> None:
        require_capabilities(scheme, Capability.MATMUL_PLAIN)
        inner = data.draw(st.integers(1, hst.MAX_SIDE), label="K")
        cols = data.draw(st.integers(1, hst.MAX_SIDE), label="J")
        leading = data.draw(st.sampled_from([(), (1,), (3,)]), label="leading")
        x = data.draw(hst.real_arrays((*leading, inner), value_range), label="x")
        p = data.draw(hst.real_matrices(inner, cols, PLAIN_BOUND), label="P")
        result = self.encrypt(scheme, keys, x) @ p
        assert tuple(result.shape) == (*leading, cols)
        self.assert_decrypts(
            scheme, keys, result, errors.matmul_plain_right(errors.fresh(x), p), "Dec(a @ P)"
        )

    @kit_given()
    def test_integer_matrix(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, value_range: float, data: Data
    ) -> None:
        require_capabilities(scheme, Capability.MATMUL_PLAIN)
        inner = data.draw(st.integers(1, hst.MAX_SIDE), label="K")
        x = data.draw(hst.real_arrays((inner, 2), value_range), label="x")
        p = data.draw(hst.integer_matrices(3, inner, 3), label="P")
        result = p @ self.encrypt(scheme, keys, x)
        self.assert_decrypts(
            scheme, keys, result, errors.matmul_plain_left(p, errors.fresh(x)), "Dec(int P @ a)"
        )

    @kit_given()
    def test_encrypted_at_encrypted(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, value_range: float, data: Data
    ) -> None:
        require_capabilities(scheme, Capability.MUL_CIPHER, Capability.ADD)
        inner = data.draw(st.integers(1, hst.MAX_SIDE), label="K")
        two_d = data.draw(st.booleans(), label="2-D")
        left_shape = (data.draw(st.integers(1, 3)), inner) if two_d else (inner,)
        right_shape = (inner, data.draw(st.integers(1, 3))) if two_d else (inner,)
        x = data.draw(hst.real_arrays(left_shape, value_range), label="x")
        y = data.draw(hst.real_arrays(right_shape, value_range), label="y")
        result = self.encrypt(scheme, keys, x) @ self.encrypt(scheme, keys, y)
        expected = errors.matmul(errors.fresh(x), errors.fresh(y))
        assert tuple(result.shape) == expected.shape
        self.assert_decrypts(scheme, keys, result, expected, "Dec(a @ b)")
