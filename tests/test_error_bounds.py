"""The test kit's error bounds: no NaN bound that would let any decryption pass."""

from __future__ import annotations

import numpy as np
import pytest

from hennframework.testing.bounds import ErrorModel, Tracked, assert_within

MODEL = ErrorModel(tolerance=1e-5, op_tolerance=1e-5)


def test_an_exact_zero_times_an_infinite_bound_is_exactly_zero() -> None:
    a = Tracked(np.array([0.0, 2.0]), np.array([0.0, 0.0]), np.array([0.0, 2.0]))
    b = Tracked(np.array([3.0, 3.0]), np.array([np.inf, np.inf]), np.array([3.0, 3.0]))
    product = MODEL.mul(a, b)
    assert product.error[0] == MODEL.op_tolerance  # 0 * anything: only the rounding
    assert product.error[1] == np.inf  # 2 * (3 +- inf): no bound, and it says so
    scaled = MODEL.mul_plain(b, np.array([0.0, 1.0]))
    assert not np.isnan(scaled.error).any()


def test_repeated_squaring_never_gives_a_nan_bound() -> None:
    """Squaring [1, 0.5, 0] until float64 overflows: bounds become infinite, never NaN."""
    tracked = MODEL.fresh([1.0, 0.5, 0.0])
    with np.errstate(over="ignore"):
        for _ in range(40):
            tracked = MODEL.mul(tracked, tracked)
    assert np.isinf(tracked.error[0])  # (1 +- e)**(2**40): no useful bound
    assert not np.isnan(tracked.error).any() and not np.isnan(tracked.value).any()


def test_a_nan_bound_fails_and_says_why() -> None:
    broken = Tracked(np.array([1.0, 0.0]), np.array([1e-5, np.nan]), np.array([1.0, 0.0]))
    with pytest.raises(AssertionError, match=r"reference error bound is NaN at index \(1,\)"):
        assert_within(np.array([1.0, 123.0]), broken, "Dec(x)")
    no_value = Tracked(np.array([np.nan]), np.array([1.0]), np.array([1.0]))
    with pytest.raises(AssertionError, match="reference value is NaN"):
        assert_within(np.array([0.0]), no_value, "Dec(x)")


def test_assert_within_holds_at_the_bound_and_fails_just_past_it() -> None:
    expected = Tracked(np.array([1.0, -2.0]), np.array([0.25, 0.5]), np.array([1.0, 2.0]))
    assert_within(np.array([1.25, -2.5]), expected, "at the bound")
    with pytest.raises(AssertionError, match=r"past the bound: decrypted .* at index \(1,\)"):
        assert_within(np.array([1.25, -2.5001]), expected, "past the bound")
    with pytest.raises(AssertionError, match="NaN or infinity"):
        assert_within(np.array([1.0, np.inf]), expected, "infinite")
