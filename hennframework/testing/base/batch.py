"""Batching: a batch of n items decrypts to what n single-item encryptions give, op by op."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
from hennframework.testing.bounds import ErrorModel, Tracked

__all__ = ["BaseBatchTests"]


class BaseBatchTests(SchemeFixtures):
    """A batch of n items gives what n separate single-item encryptions give, op by op."""

    @kit_given()
    def test_batched_equals_itemwise(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, value_range: float, data: Data
    ) -> None:
        require_capabilities(scheme, Capability.ADD)
        caps = type(scheme).capabilities
        n = data.draw(st.integers(2, hst.MAX_SIDE), label="n")
        x = data.draw(hst.real_arrays((n,), value_range), label="x")
        y = data.draw(hst.real_arrays((n,), value_range), label="y")
        p = data.draw(hst.real_arrays((n,), PLAIN_BOUND), label="p")
        operations: list[tuple[str, Callable[..., Any], Callable[..., Tracked]]] = [
            ("a + b", lambda a, b, q: a + b, lambda ta, tb, q: errors.add(ta, tb)),
        ]
        if Capability.MUL_PLAIN in caps:
            operations.append(
                ("a * p", lambda a, b, q: a * q, lambda ta, tb, q: errors.mul_plain(ta, q))
            )
        if Capability.MUL_CIPHER in caps:
            operations.append(
                ("a * b", lambda a, b, q: a * b, lambda ta, tb, q: errors.mul(ta, tb))
            )
        batch_a, batch_b = self.encrypt(scheme, keys, x), self.encrypt(scheme, keys, y)
        items = [
            (self.encrypt(scheme, keys, x[i : i + 1]), self.encrypt(scheme, keys, y[i : i + 1]))
            for i in range(n)
        ]
        for name, operation, bound in operations:
            batched = self.decrypt(scheme, keys, operation(batch_a, batch_b, p))
            expected = bound(errors.fresh(x), errors.fresh(y), p)
            for i, (item_a, item_b) in enumerate(items):
                single = self.decrypt(scheme, keys, operation(item_a, item_b, p[i : i + 1]))
                # both approximate the same exact value, each within its bound
                limit = 2.0 * expected.error[i] + 1e-12 * (1.0 + expected.magnitude[i])
                assert single.shape == (1,)
                assert abs(float(batched[i]) - float(single[0])) <= limit, (
                    f"{name}: batch item {i} decrypted {batched[i]!r}, alone {single[0]!r}; "
                    f"they may differ by at most {limit:.3g}"
                )
