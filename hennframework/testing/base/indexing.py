"""Operations on the batch axes: ``sum(axis)``, indexing, reshape, transpose, ``scatter_add``."""

from __future__ import annotations

from hypothesis import strategies as st

from hennframework.scheme import Capability, HEScheme, KeySet
from hennframework.testing import strategies as hst
from hennframework.testing.base.base import Data, SchemeFixtures, kit_given, require_capabilities
from hennframework.testing.bounds import ErrorModel

__all__ = ["BaseIndexingTests"]


class BaseIndexingTests(SchemeFixtures):
    """Batch-shape operations: sum(axis), indexing, reshape, transpose, scatter_add."""

    @kit_given()
    def test_sum(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, value_range: float, data: Data
    ) -> None:
        require_capabilities(scheme, Capability.ADD)
        x = data.draw(hst.real_arrays(hst.batch_shapes(), value_range), label="x")
        a, ta = self.encrypt(scheme, keys, x), errors.fresh(x)
        for axis in sorted({None, 0, x.ndim - 1}, key=str):
            self.assert_decrypts(
                scheme, keys, a.sum(axis=axis), errors.sum(ta, axis), f"Dec(a.sum(axis={axis}))"
            )

    @kit_given()
    def test_indexing(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, value_range: float, data: Data
    ) -> None:
        x = data.draw(hst.real_arrays(hst.batch_shapes(), value_range), label="x")
        a, ta = self.encrypt(scheme, keys, x), errors.fresh(x)
        n = x.shape[0]
        i = data.draw(st.integers(-n, n - 1), label="i")
        rows = data.draw(hst.index_arrays(n), label="rows")
        self.assert_decrypts(scheme, keys, a[i], ta[i], "Dec(a[i])")
        self.assert_decrypts(scheme, keys, a[1:], ta[1:], "Dec(a[1:])")
        self.assert_decrypts(scheme, keys, a[rows], ta[rows], "Dec(a[rows])")

    @kit_given()
    def test_reshape_transpose(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, value_range: float, data: Data
    ) -> None:
        x = data.draw(hst.real_arrays(hst.batch_shapes(), value_range), label="x")
        a, ta = self.encrypt(scheme, keys, x), errors.fresh(x)
        self.assert_decrypts(scheme, keys, a.reshape(-1), ta.reshape(-1), "Dec(a.reshape(-1))")
        self.assert_decrypts(scheme, keys, a.transpose(), ta.transpose(), "Dec(a.transpose())")

    @kit_given()
    def test_scatter_add(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, value_range: float, data: Data
    ) -> None:
        require_capabilities(scheme, Capability.ADD)
        shape = data.draw(hst.batch_shapes(), label="shape")
        x = data.draw(hst.real_arrays(shape, value_range), label="x")
        rows = data.draw(hst.index_arrays(shape[0], min_count=1), label="rows")
        y = data.draw(hst.real_arrays((rows.size, *shape[1:]), value_range), label="values")
        result = self.encrypt(scheme, keys, x).scatter_add(rows, self.encrypt(scheme, keys, y))
        expected = errors.scatter_add(errors.fresh(x), rows, errors.fresh(y))
        self.assert_decrypts(scheme, keys, result, expected, "Dec(a.scatter_add(rows, b))")
