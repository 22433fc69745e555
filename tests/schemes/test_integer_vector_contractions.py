"""Encrypted @ encrypted sums the products' tensor entries before one key switch: the result
is the exact sum of the products' messages within its tracked bound (measured exactly with the
key), with less noise than switching every product, and the products are switched one by one
where the summed entries could leave the switch's range."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from hennframework.schemes.integer_vector import IntegerVectorScheme
from hennframework.testing.integer_vector import measured_noise_exact

pytestmark = pytest.mark.filterwarnings(
    "ignore::hennframework.exceptions.InsecureParametersWarning"
)


def xp_backend() -> Any:
    from hennframework_backends._xp_backend import XpBackend

    return XpBackend()


def exact_matmul(a: Any, b: Any, scale: int) -> Any:
    """The messages of a fixed-point product summed: sum_l mu_a mu_b / f, as Fractions."""
    rows, inner = a.shape
    cols = b.shape[1]
    out = np.empty((rows, cols, 1), dtype=object)
    for i in range(rows):
        for j in range(cols):
            out[i, j, 0] = sum(
                (Fraction(int(a[i, k])) * int(b[k, j]) / scale for k in range(inner)), Fraction(0)
            )
    return out


@pytest.mark.parametrize("params", ["default", "vhe", "seed"])
@pytest.mark.parametrize("backend", ["numpy", "xp"])
def test_matmul_is_the_exact_sum_within_its_bound(params: str, backend: str) -> None:
    scheme = IntegerVectorScheme(params, backend=xp_backend() if backend == "xp" else None)
    keys = scheme.keygen(seed=4)
    rng = np.random.default_rng(5)
    h = scheme.encrypt_tensor(rng.uniform(-1, 1, (5, 8)), keys.public)
    w = scheme.encrypt_tensor(rng.uniform(-1, 1, (8, 3)), keys.public)
    fused = h @ w
    unfused = (h[:, :, None] * w[None, :, :]).sum(axis=1)
    f = scheme.params.scale
    mu_h = scheme.decrypt(h, keys.secret)[..., 0]
    mu_w = scheme.decrypt(w, keys.secret)[..., 0]
    exact = exact_matmul(mu_h, mu_w, f)
    for result in (fused, unfused):
        true = measured_noise_exact(result, exact, keys.secret)
        tracked = np.asarray(scheme.backend.to_numpy(result.noise))
        assert all(
            t <= Fraction(float(b)) for t, b in zip(true.ravel(), tracked.ravel(), strict=True)
        )
    # one switch instead of eight: less noise tracked, and the same values within one unit
    assert (np.asarray(fused.noise) < np.asarray(unfused.noise)).all()
    got, other = (scheme.decrypt(c, keys.secret) for c in (fused, unfused))
    assert np.abs(got - other).max() <= 1
    # vectors on either side, and an inner axis of one entry (the product path)
    np.testing.assert_allclose(
        scheme.decrypt_tensor(h[0] @ w, keys.secret),
        scheme.decrypt_tensor(fused[0], keys.secret),
        atol=1.0 / f,
    )
    column = w[:, :1]
    np.testing.assert_allclose(
        scheme.decrypt_tensor(h @ column[:, 0], keys.secret),
        scheme.decrypt_tensor(fused[:, 0], keys.secret),
        atol=1.0 / f,
    )
    outer = h[:, :1] @ w[:1, :]
    np.testing.assert_array_equal(
        np.asarray(outer.data), np.asarray((h[:, :1, None] * w[None, :1, :]).sum(axis=1).data)
    )


def test_sums_past_the_switch_range_switch_every_product() -> None:
    """One product near 2**58 and 31 small ones (vhe, integers): 32 entries of up to 2**58
    could pass the 2**62 a switch source may have, so every product is switched and then
    summed (whose bound, the actual sum of magnitudes, fits); the result is that one, bit for
    bit."""
    scheme = IntegerVectorScheme("vhe")
    keys = scheme.keygen(seed=6)
    rng = np.random.default_rng(7)
    x = rng.integers(-3, 4, (2, 32))
    y = rng.integers(-3, 4, (32, 2))
    x[:, 0], y[0, :] = 500, -500
    a = scheme.encrypt(x, keys.public)
    b = scheme.encrypt(y, keys.public)
    product = a[:, :, None] * b[None, :, :]
    assert 32 * product.coeff_bound >= 1 << 62  # the entries' sum could leave the range
    fused = a @ b
    unfused = product.sum(axis=1)
    np.testing.assert_array_equal(np.asarray(fused.data), np.asarray(unfused.data))
    np.testing.assert_array_equal(np.asarray(fused.noise), np.asarray(unfused.noise))
    assert scheme.decrypt(fused, keys.secret)[..., 0].tolist() == (x @ y).tolist()
