"""The owner's refresh: a fresh encryption of the same values."""

from __future__ import annotations

import numpy as np

from hennframework.scheme import Capability, HEScheme, KeySet
from hennframework.testing import strategies as hst
from hennframework.testing.base.base import Data, SchemeFixtures, kit_given, require_capabilities
from hennframework.testing.bounds import ErrorModel, Tracked

__all__ = ["BaseRefreshTests"]


class BaseRefreshTests(SchemeFixtures):
    """The owner's refresh returns a fresh encryption of the same values."""

    @kit_given()
    def test_refresh(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, value_range: float, data: Data
    ) -> None:
        require_capabilities(scheme, Capability.REFRESH, Capability.MUL_PLAIN)
        x = data.draw(hst.real_arrays(hst.batch_shapes(), value_range), label="x")
        a = self.encrypt(scheme, keys, x)
        worn = a * 0.5
        tracked = errors.mul_plain(errors.fresh(x), np.full(x.shape, 0.5))
        refreshed = scheme.refresh(worn, keys)
        assert tuple(refreshed.shape) == x.shape
        # re-encoding the decrypted value adds at most one fresh-encryption error
        expected = Tracked(tracked.value, tracked.error + errors.tolerance, tracked.magnitude)
        self.assert_decrypts(scheme, keys, refreshed, expected, "Dec(refresh(a * 0.5))")
        if Capability.NOISE_TRACKING in type(scheme).capabilities:
            # a refresh is a fresh encryption: its budget is that of one (the bound may depend on
            # the values by a fraction of a bit)
            assert refreshed.noise_budget >= a.noise_budget - 1.0
