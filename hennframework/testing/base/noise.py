"""The visible noise budget, and no silently wrong answer when it runs out (repeated squaring)."""

from __future__ import annotations

import numpy as np
import pytest

from hennframework.exceptions import HennError, NoiseBudgetExhaustedError
from hennframework.scheme import Capability, HEScheme, KeySet
from hennframework.testing import strategies as hst
from hennframework.testing.base.base import (
    MAX_CHAIN,
    Data,
    SchemeFixtures,
    kit_given,
    require_capabilities,
)
from hennframework.testing.bounds import ErrorModel, assert_within

__all__ = ["BaseNoiseTests"]


class BaseNoiseTests(SchemeFixtures):
    """The visible noise budget, and no silently wrong answer when the budget runs out."""

    def test_fresh_noise_budget(self, scheme: HEScheme, keys: KeySet) -> None:
        require_capabilities(scheme, Capability.NOISE_TRACKING)
        budget = self.encrypt(scheme, keys, [0.5, 1.0]).noise_budget
        assert np.isfinite(budget) and budget > 0, f"fresh noise budget {budget} bits"

    def test_noise_budget_decreases_after_multiplication(
        self, scheme: HEScheme, keys: KeySet
    ) -> None:
        require_capabilities(scheme, Capability.NOISE_TRACKING, Capability.MUL_CIPHER)
        a = self.encrypt(scheme, keys, [0.5, -1.0])
        b = self.encrypt(scheme, keys, [0.75, 1.0])
        product = a * b
        assert product.noise_budget < min(a.noise_budget, b.noise_budget)
        assert (product * a).noise_budget < product.noise_budget

    def test_noise_budget_does_not_grow_with_addition(self, scheme: HEScheme, keys: KeySet) -> None:
        require_capabilities(scheme, Capability.NOISE_TRACKING, Capability.ADD)
        a = self.encrypt(scheme, keys, [0.5, -1.0])
        b = self.encrypt(scheme, keys, [0.75, 1.0])
        assert (a + b).noise_budget <= min(a.noise_budget, b.noise_budget)

    @kit_given(max_examples=5)
    def test_repeated_squaring_is_right_or_refused(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, data: Data
    ) -> None:
        """Square until the scheme refuses: every decryption before that is within its bound."""
        require_capabilities(scheme, Capability.MUL_CIPHER)
        x = np.concatenate([[1.0], data.draw(hst.real_arrays((2,), 1.0), label="x")])
        tensor, tracked = self.encrypt(scheme, keys, x), errors.fresh(x)
        for step in range(1, MAX_CHAIN + 1):
            try:
                tensor = tensor * tensor
            except HennError:
                return  # refused at evaluation (overflow risk, out of levels): fine
            with np.errstate(over="ignore"):  # an infinite bound is still a (useless) bound
                tracked = errors.mul(tracked, tracked)
            try:
                decrypted = self.decrypt(scheme, keys, tensor)
            except NoiseBudgetExhaustedError:
                return
            assert_within(decrypted, tracked, f"Dec(a ** (2 ** {step}))")
        if Capability.UNLIMITED_DEPTH not in type(scheme).capabilities:
            pytest.fail(
                f"{MAX_CHAIN} repeated squarings were neither refused nor exhausted the "
                "noise budget, yet the scheme does not declare unlimited-depth"
            )
