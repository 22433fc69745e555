"""Never a silently wrong answer: random chains of operations are right within their bound or
refused, and, for ``magnitude-tracking``, a value past the limit is refused."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import strategies as st

from hennframework.exceptions import NoiseBudgetExhaustedError, OverflowRiskError
from hennframework.scheme import Capability, HEScheme, KeySet, MagnitudeTracked
from hennframework.testing import strategies as hst
from hennframework.testing.base.base import (
    MAX_CHAIN,
    PLAIN_BOUND,
    Data,
    SchemeFixtures,
    kit_given,
    require_capabilities,
)
from hennframework.testing.bounds import ErrorModel, Tracked, assert_within

__all__ = ["BaseMagnitudeTests"]

#: Operations in one random chain, and the largest plaintext factor or addend a chain uses (with
#: squarings, enough to reach any limit within a chain).
CHAIN_STEPS = 8
CHAIN_FACTOR = 64.0
#: The errors a scheme that tracks noise or magnitudes raises instead of a wrong decryption.
REFUSALS = (OverflowRiskError, NoiseBudgetExhaustedError)


def _requires_tracking(scheme: HEScheme) -> None:
    declared = type(scheme).capabilities
    if not {Capability.NOISE_TRACKING, Capability.MAGNITUDE_TRACKING} & declared:
        pytest.skip(
            f"{scheme.name} declares neither {Capability.NOISE_TRACKING.value} nor "
            f"{Capability.MAGNITUDE_TRACKING.value}"
        )


class BaseMagnitudeTests(SchemeFixtures):
    """Never a silently wrong answer: right within its bound, or refused with the scheme's error."""

    def chain_step(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        tensor: Any,
        tracked: Tracked,
        data: Data,
        label: str,
    ) -> tuple[Any, Tracked, str]:
        """One random operation on ``tensor`` (among those the scheme declares) and its bound."""
        caps = type(scheme).capabilities
        names = ["add", "sub", "neg", "add_plain"]
        if Capability.MUL_PLAIN in caps:
            names += ["mul_plain", "mul_plain_array", "mul_int"]
        if Capability.MUL_CIPHER in caps:
            names += ["mul", "square"]
        if Capability.MATMUL_PLAIN in caps:
            names += ["matmul_plain"]
        name = data.draw(st.sampled_from(names), label=label)
        shape = tracked.shape
        if name in ("add", "sub", "mul"):
            y = data.draw(hst.real_arrays(shape, value_range), label=f"{label} y")
            other, ty = self.encrypt(scheme, keys, y), errors.fresh(y)
            if name == "add":
                return tensor + other, errors.add(tracked, ty), "a + b"
            if name == "sub":
                return tensor - other, errors.sub(tracked, ty), "a - b"
            return tensor * other, errors.mul(tracked, ty), "a * b"
        if name == "neg":
            return -tensor, errors.neg(tracked), "-a"
        if name == "square":
            return tensor * tensor, errors.mul(tracked, tracked), "a * a"
        if name == "add_plain":
            p = data.draw(hst.real_arrays(shape, CHAIN_FACTOR), label=f"{label} p")
            return tensor + p, errors.add_plain(tracked, p), "a + p"
        if name == "mul_plain":
            k = data.draw(hst.reals(CHAIN_FACTOR), label=f"{label} k")
            return tensor * k, errors.mul_plain(tracked, np.full(shape, k)), f"a * {k!r}"
        if name == "mul_plain_array":
            p = data.draw(hst.real_arrays(shape, CHAIN_FACTOR), label=f"{label} p")
            return tensor * p, errors.mul_plain(tracked, p), "a * p"
        if name == "mul_int":
            k = data.draw(st.integers(-int(CHAIN_FACTOR), int(CHAIN_FACTOR)), label=f"{label} k")
            return tensor * k, errors.mul_plain(tracked, np.full(shape, float(k))), f"a * {k}"
        side = shape[0]
        p = data.draw(hst.real_matrices(side, side, PLAIN_BOUND), label=f"{label} P")
        return p @ tensor, errors.matmul_plain_left(p, tracked), "P @ a"

    @kit_given()
    def test_random_chains_are_right_or_refused(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, value_range: float, data: Data
    ) -> None:
        """Random operations, each decrypted: within the bound, or refused; never wrong."""
        _requires_tracking(scheme)
        require_capabilities(scheme, Capability.ADD)
        magnitudes = Capability.MAGNITUDE_TRACKING in type(scheme).capabilities
        x = data.draw(hst.real_arrays(hst.batch_shapes(), value_range), label="x")
        tensor, tracked = self.encrypt(scheme, keys, x), errors.fresh(x)
        steps = data.draw(st.integers(1, CHAIN_STEPS), label="steps")
        for step in range(steps):
            try:
                tensor, tracked, what = self.chain_step(
                    scheme, keys, errors, value_range, tensor, tracked, data, f"step {step}"
                )
            except REFUSALS:
                return  # refused at evaluation: the chain ends here, as it would for a user
            try:
                decrypted = self.decrypt(scheme, keys, tensor)
            except REFUSALS:
                return
            with np.errstate(over="ignore", invalid="ignore"):
                assert_within(decrypted, tracked, f"step {step} ({what})")
            if magnitudes:
                assert isinstance(tensor, MagnitudeTracked), (
                    f"{scheme.name} declares magnitude-tracking, but its tensors have no "
                    "magnitude_bound / magnitude_limit"
                )
                bound, limit = tensor.magnitude_bound, tensor.magnitude_limit
                worst = float(np.abs(decrypted).max()) if decrypted.size else 0.0
                assert worst <= bound < limit, (
                    f"step {step} ({what}): decrypted |value| up to {worst!r}, tracked bound "
                    f"{bound!r}, limit {limit!r}: the bound must cover the value and stay below "
                    "the limit"
                )

    def test_value_past_the_limit_is_refused(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel
    ) -> None:
        """Past the limit: refused (fresh, after plaintext products, after a ciphertext product);
        half of it: right."""
        require_capabilities(scheme, Capability.MAGNITUDE_TRACKING, Capability.ADD)
        caps = type(scheme).capabilities
        x = np.array([0.5, -0.25, 0.0])
        fresh = self.encrypt(scheme, keys, x)
        assert isinstance(fresh, MagnitudeTracked)
        assert 0.5 <= fresh.magnitude_bound < fresh.magnitude_limit
        with pytest.raises(OverflowRiskError):
            self.encrypt(scheme, keys, np.array([fresh.magnitude_limit * (1 + 2.0**-6), 0.0]))
        # plaintext products as deep as the scheme allows: the limit there is the tightest
        chain: list[tuple[Any, Tracked]] = [(fresh, errors.fresh(x))]
        if Capability.MUL_PLAIN in caps:
            for _ in range(MAX_CHAIN):
                try:
                    deeper = chain[-1][0] * 0.75
                except NoiseBudgetExhaustedError:
                    break
                chain.append((deeper, errors.mul_plain(chain[-1][1], np.full(x.shape, 0.75))))
        tensor, tracked = chain[-1]
        assert isinstance(tensor, MagnitudeTracked)
        limit = tensor.magnitude_limit
        past = np.array([limit * (1 + 2.0**-6), 0.0, 0.0])
        with pytest.raises(OverflowRiskError):
            self.decrypt(scheme, keys, tensor + past)  # refused at the sum or at decryption
        with pytest.raises(OverflowRiskError):
            self.decrypt(scheme, keys, tensor - past)
        half = np.array([limit / 2, 0.0, -limit / 2])
        self.assert_decrypts(
            scheme,
            keys,
            tensor + half,
            errors.add_plain(tracked, half),
            "Dec(a + p) at half the limit",
        )
        if Capability.MUL_CIPHER in caps:
            # a product that lands where the limit is tightest (one step above the deepest)
            base, tracked_base = chain[-2] if len(chain) > 1 else chain[-1]
            root = float(np.sqrt((base * base).magnitude_limit))
            with pytest.raises(OverflowRiskError):
                big = base + (np.array([root * (1 + 2.0**-5), 0.5, 0.0]) - tracked_base.value)
                self.decrypt(scheme, keys, big * big)
            shift = np.array([root / 2, 0.5, 0.0]) - tracked_base.value
            inside, tracked_inside = base + shift, errors.add_plain(tracked_base, shift)
            self.assert_decrypts(
                scheme,
                keys,
                inside * inside,
                errors.mul(tracked_inside, tracked_inside),
                "Dec(a * a) at a quarter of the limit",
            )
