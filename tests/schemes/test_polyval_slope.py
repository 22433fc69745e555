"""``polyval`` bounds its input's noise through the polynomial's slope, and the bound holds.

The input's noise is set by hand (``S c = w mu + e`` with a chosen ``e`` of 2**30, signed to do
the most harm), the true noise of the result is measured exactly with the secret key against
the exact message the operations define, and both tracked bounds must cover it. Past the
degree-3 Taylor sigmoid's turning point (|x| = 2) the slope bound is well below the sum of the
terms' bounds that the operations alone would give.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from hennframework.schemes.integer_vector import IntegerVectorScheme
from hennframework.schemes.integer_vector.ciphertext import Ciphertext
from hennframework.testing.chains import encode, fine_scale, plain_product
from hennframework.testing.integer_vector import measured_noise_exact

pytestmark = pytest.mark.filterwarnings(
    "ignore::hennframework.exceptions.InsecureParametersWarning"
)

TAYLOR3 = [0.5, 0.25, 0.0, -1.0 / 48.0]
TAYLOR3_SLOPE = [0.25, 0.0, -1.0 / 16.0]
LSQ_LIKE = [0.5, 0.2, 0.0, -0.004, 0.0, 0.00003]


def noisy(scheme: IntegerVectorScheme, keys: Any, values: Any, noise: Any) -> Ciphertext:
    """Fixed-point ciphertexts of ``values`` whose noise is exactly ``noise`` (a key holder's
    construction: ``top = w mu + e - T a``), with that noise as both tracked bounds."""
    p = scheme.params
    mu = np.rint(np.asarray(values, dtype=np.float64) * p.scale).astype(np.int64)
    e = np.asarray(noise, dtype=np.int64)
    rng = np.random.default_rng(0)
    a = rng.integers(-p.a_bound, p.a_bound, (*mu.shape, p.k))
    t = np.asarray(keys.secret.t_for(1), dtype=np.int64)
    top = mu[..., None] * p.w + e[..., None] - a @ t.T
    data = scheme.backend.asarray(np.concatenate([top, a], axis=-1))
    bound = np.abs(e).astype(np.float64)
    return Ciphertext(
        scheme, data, 1, p.scale, bound, keys.key_id, noise_det=bound, noise_sg=bound * 0.0
    )


def exact_messages(
    scheme: IntegerVectorScheme, ciphertext: Ciphertext, mu: Any, coefficients: list[float]
) -> Any:
    """The message ``polyval`` defines: the tree of the scheme on the exact message (Fractions)."""
    p = scheme.params
    coeffs = list(coefficients)
    while len(coeffs) > 1 and coeffs[-1] == 0.0:
        coeffs.pop()
    shift = scheme.polyval_shift(ciphertext, len(coeffs) - 1)
    base = mu
    if shift:
        encoded, divisor, _ = plain_product(p, p.scale, 2.0**-shift, fine_scale(p))
        base = mu * encoded / divisor
    total = encode(coeffs[0], p.scale)
    for d in range(1, len(coeffs)):
        if coeffs[d] == 0.0:
            continue
        power = mu if d == 1 else base**d / p.scale ** (d - 1)
        coefficient = coeffs[d] if d == 1 else coeffs[d] * 2.0 ** (d * shift)
        encoded, divisor, _ = plain_product(p, p.scale, coefficient, fine_scale(p))
        total = total + power * encoded / divisor
    return total


@pytest.mark.parametrize("params", ["default", "vhe", "seed"])
@pytest.mark.parametrize("coefficients", [TAYLOR3, TAYLOR3_SLOPE, LSQ_LIKE])
def test_slope_bound_covers_the_true_noise(params: str, coefficients: list[float]) -> None:
    scheme = IntegerVectorScheme(params)
    keys = scheme.keygen(seed=3)
    values = np.array([0.0, 0.5, -1.5, 2.0, -3.0, 4.0, -5.0, 5.0, 12.0, -12.0])
    size = float(min(2**30, scheme.params.w // 64))
    # the sign of the noise that the slope carries furthest: both signs, at every value
    for sign in (1, -1):
        x = noisy(scheme, keys, values, np.full(values.shape, sign * size))
        mu = np.array([Fraction(int(v)) for v in np.rint(values * scheme.params.scale)])
        y = x.polyval(coefficients)
        true = measured_noise_exact(
            y, exact_messages(scheme, x, mu, coefficients)[:, None], keys.secret
        )
        worst = scheme.backend.to_numpy(y.noise)
        probable = scheme.backend.to_numpy(y.decryption_bounds())
        for index in np.ndindex(*y.shape):
            assert true[index] <= Fraction(float(worst[index])), (index, float(true[index]))
            assert true[index] <= Fraction(float(probable[index])), (index, float(true[index]))


def test_slope_bound_is_tighter_past_the_turning_point() -> None:
    scheme = IntegerVectorScheme("default")
    keys = scheme.keygen(seed=3)
    size = 2.0**30
    values = np.array([2.0, 5.0])
    x = noisy(scheme, keys, values, np.full(values.shape, size))
    y = x.polyval(TAYLOR3)
    bound = scheme.backend.to_numpy(y.noise) / size
    # the terms' bounds: |1/4| + 3 |1/48| x**2 = 0.5 at 2 and 1.81 at 5; the slope's largest
    # magnitude on [-x, x]: 1/4 at 2 (p' = 0 there) and |1/4 - 25/16| = 1.31 at 5
    assert bound[0] < 0.26
    assert bound[1] < 1.32
    # noise from the operations themselves (key switches, rounding) stays tiny next to 2**30
    assert (bound > np.array([0.25, 1.3125])).all()


def test_powers_are_shared_and_integer_inputs_keep_the_operations_bounds() -> None:
    scheme = IntegerVectorScheme("default")
    keys = scheme.keygen(seed=3)
    x = noisy(scheme, keys, np.array([1.0, -4.0]), np.array([2**20, -(2**20)]))
    first = x.polyval(TAYLOR3)
    again = x.polyval(TAYLOR3_SLOPE)  # the backward pass: the same powers, kept on x
    assert x.polyval_powers and 0 in x.polyval_powers
    fresh = noisy(scheme, keys, np.array([1.0, -4.0]), np.array([2**20, -(2**20)]))
    np.testing.assert_array_equal(
        scheme.backend.to_numpy(again.noise),
        scheme.backend.to_numpy(fresh.polyval(TAYLOR3_SLOPE).noise),
    )
    assert first.noise_budget > 0
    integers = scheme.encrypt(np.array([3, -2]), keys.secret)  # scale 1: no fixed point
    assert not scheme._slope_bounded(integers)
    assert scheme._slope_bounded(x)
