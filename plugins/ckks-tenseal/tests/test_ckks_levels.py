"""Level management: every product uses one level, levels_left says so, running out is refused."""

from __future__ import annotations

import numpy as np
import pytest
from hennframework.exceptions import NoiseBudgetExhaustedError
from hennframework.scheme import KeySet

from hennframework_ckks import CKKSScheme


def test_levels_per_operation(scheme8192: CKKSScheme, keys8192: KeySet) -> None:
    top = scheme8192.params.levels
    x = scheme8192.encrypt_tensor(np.array([0.5, -0.25, 0.75]), keys8192.public)
    assert x.levels_left == top and x.noise_budget == float(top)
    assert (x + x).levels_left == top
    assert (x * 3).levels_left == top  # small integers multiply exactly, without a level
    assert (x * 0.5).levels_left == top - 1
    assert (x * x).levels_left == top - 1
    assert (x * x * x).levels_left == top - 2
    assert x.sum().levels_left == top  # rotations use no level
    assert (x * x + x).levels_left == top - 1  # the fresh operand is brought down to match


@pytest.mark.parametrize(("degree", "depth"), [(1, 1), (2, 2), (3, 2), (4, 3), (7, 3)])
def test_polynomial_depth_is_optimal(
    scheme8192: CKKSScheme, keys8192: KeySet, degree: int, depth: int
) -> None:
    values = np.array([0.3, -0.6, 0.9])
    coefficients = [0.5, -0.25, 0.125, 0.0625, -0.1, 0.05, 0.02, -0.01][: degree + 1]
    x = scheme8192.encrypt_tensor(values, keys8192.public)
    result = x.polyval(coefficients)
    assert result.levels_left == x.levels_left - depth
    expected = np.polynomial.polynomial.polyval(values, coefficients)
    np.testing.assert_allclose(
        scheme8192.decrypt_tensor(result, keys8192.secret), expected, atol=1e-3
    )
    assert result.scale == scheme8192.params.scale  # every term lands on the exact scale


def test_running_out_of_levels_says_refresh(scheme4096: CKKSScheme, keys4096: KeySet) -> None:
    x = scheme4096.encrypt_tensor(np.array([0.5, 0.25]), keys4096.public)
    square = x * x
    assert square.levels_left == 0
    np.testing.assert_allclose(
        scheme4096.decrypt_tensor(square, keys4096.secret), [0.25, 0.0625], atol=5e-3
    )
    with pytest.raises(NoiseBudgetExhaustedError, match="refresh"):
        _ = square * x
    with pytest.raises(NoiseBudgetExhaustedError, match="refresh"):
        _ = square * 0.5
    fresh = scheme4096.refresh(square, keys4096)
    assert fresh.levels_left == scheme4096.params.levels
    np.testing.assert_allclose(
        scheme4096.decrypt_tensor(fresh * x, keys4096.secret), [0.125, 0.015625], atol=5e-3
    )


def test_mismatched_scales_are_aligned_exactly(scheme8192: CKKSScheme, keys8192: KeySet) -> None:
    """A product's scale is s1*s2/q, not the parameter set's scale; sums still come out right."""
    a_plain, b_plain = np.array([0.9, -0.4]), np.array([0.3, 0.8])
    a = scheme8192.encrypt_tensor(a_plain, keys8192.public)
    b = scheme8192.encrypt_tensor(b_plain, keys8192.public)
    product = (a * b) * a  # settled twice: scale differs from scheme8192.params.scale
    total = product + b * 0.5 + a
    expected = a_plain * b_plain * a_plain + 0.5 * b_plain + a_plain
    np.testing.assert_allclose(
        scheme8192.decrypt_tensor(total, keys8192.secret), expected, atol=1e-3
    )
    assert total.levels_left == min(product.levels_left, (b * 0.5).levels_left)
