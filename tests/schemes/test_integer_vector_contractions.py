"""Encrypted @ encrypted sums the products' tensor entries before one key switch: the result
is the exact sum of the products' messages within its tracked bound (measured exactly with the
key), with less noise than switching every product, and the products are switched one by one
where the summed entries could leave the switch's range."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from hennframework.exceptions import OverflowRiskError
from hennframework.schemes.integer_vector import Ciphertext, IntegerVectorScheme
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
    single = h[0, :1] @ w[:1, 0]  # vectors of one entry: a scalar, the product itself
    assert single.shape == ()
    np.testing.assert_array_equal(np.asarray(single.data), np.asarray((h[0, 0] * w[0, 0]).data))
    outer = h[:, :1] @ w[:1, :]
    np.testing.assert_array_equal(
        np.asarray(outer.data), np.asarray((h[:, :1, None] * w[None, :1, :]).sum(axis=1).data)
    )


def with_bottoms_near(ciphertext: Ciphertext, keys: Any, u: int) -> Ciphertext:
    """The same messages and noise with every bottom coefficient shifted by ``u``: ``c + [-T
    u; u]`` (S maps the added vector to 0), so a switched tensor entry (a top times a bottom)
    is as large as a top-by-top one."""
    m = ciphertext.dim
    t = keys.secret.t_for(m)[:, 0].astype(object)
    data = np.asarray(ciphertext.data).astype(object)
    data[..., :m] -= t * u
    data[..., m] += u
    scheme = ciphertext.scheme
    shifted = scheme.backend.asarray(np.array(data.tolist(), dtype=np.int64))
    return Ciphertext(scheme, shifted, m, ciphertext.scale_int, ciphertext.noise, ciphertext.key_id)


def test_sums_past_the_switch_range_switch_every_product() -> None:
    """Bottoms near 2**50 (a kernel shift; the default set's T is at most 4): 32 switched
    entries of about 2**58 could pass the 2**62 a switch source may have, so every product is
    switched and then summed; the result is that one, bit for bit, and exact."""
    scheme = IntegerVectorScheme("default")
    keys = scheme.keygen(seed=6)
    rng = np.random.default_rng(7)
    x = rng.integers(-3, 4, (2, 32))
    y = rng.integers(-200, 201, (32, 2))
    a = with_bottoms_near(scheme.encrypt(x, keys.public), keys, 1 << 50)
    b = scheme.encrypt(y, keys.public)
    top_a, bottom_a = (int(abs(np.asarray(a.data)[..., i]).max()) for i in (0, 1))
    top_b, bottom_b = (int(abs(np.asarray(b.data)[..., i]).max()) for i in (0, 1))
    switched = (top_a * bottom_b + bottom_a * top_b) // scheme.params.w
    assert 32 * switched >= 1 << 62  # even the actual magnitudes cannot prove the sum fits
    fused = a @ b
    unfused = (a[:, :, None] * b[None, :, :]).sum(axis=1)
    np.testing.assert_array_equal(np.asarray(fused.data), np.asarray(unfused.data))
    np.testing.assert_array_equal(np.asarray(fused.noise), np.asarray(unfused.noise))
    assert scheme.decrypt(fused, keys.secret)[..., 0].tolist() == (x @ y).tolist()


@pytest.mark.parametrize("backend", ["numpy", "xp"])
def test_large_tops_are_summed_before_one_switch(backend: str) -> None:
    """One product near 2**58 and 31 small ones (vhe, integers): the coefficient bound alone
    would let 32 tensor entries pass 2**62, but only the entries with a bottom factor are
    switched, and their actual magnitudes prove that sum fits; the tops' products are added
    as they are. One switch: exact, within the bound (measured with the key), and less noise
    than switching each product."""
    scheme = IntegerVectorScheme("vhe", backend=xp_backend() if backend == "xp" else None)
    keys = scheme.keygen(seed=6)
    rng = np.random.default_rng(7)
    x = rng.integers(-3, 4, (2, 32))
    y = rng.integers(-3, 4, (32, 2))
    x[:, 0], y[0, :] = 500, -500
    a = scheme.encrypt(x, keys.public)
    b = scheme.encrypt(y, keys.public)
    product = a[:, :, None] * b[None, :, :]
    assert 32 * product.coeff_bound >= 1 << 62  # what the coefficient bound alone allows
    fused = a @ b
    unfused = product.sum(axis=1)
    assert scheme.decrypt(fused, keys.secret)[..., 0].tolist() == (x @ y).tolist()
    exact = np.array([[[Fraction(int(v))] for v in row] for row in (x @ y)], dtype=object)
    true = measured_noise_exact(fused, exact, keys.secret)
    tracked = np.asarray(scheme.backend.to_numpy(fused.noise))
    assert all(t <= Fraction(float(b)) for t, b in zip(true.ravel(), tracked.ravel(), strict=True))
    assert (tracked < np.asarray(scheme.backend.to_numpy(unfused.noise))).all()


@pytest.mark.parametrize("backend", ["numpy", "xp"])
def test_contractions_whose_tops_could_pass_int64_are_refused(backend: str) -> None:
    """Tops near 2**60 with bottoms near 2**50 (a kernel shift under vhe's large T): each top
    product is in range and the switched sums fit, but the 32 tops' products add up past
    2**63. The message bound covers every top (|top| / w), so the result's bound passes 2**62
    and the contraction is refused: the tops' sums of an accepted one never wrap."""
    scheme = IntegerVectorScheme("vhe", backend=xp_backend() if backend == "xp" else None)
    keys = scheme.keygen(seed=4)
    assert abs(int(keys.secret.t_for(1)[0, 0])) > 500  # tops ~|t| times the bottoms
    rng = np.random.default_rng(8)
    x = rng.integers(-2, 3, (2, 32))
    y = rng.integers(1, 3, (32, 2))  # one sign: the tops' products add up, never cancel
    a = with_bottoms_near(scheme.encrypt(x, keys.public), keys, 1 << 50)
    b = scheme.encrypt(y, keys.public)
    w = scheme.params.w
    tops_a = np.asarray(scheme.backend.to_numpy(a.data))[..., 0].astype(object)
    tops_b = np.asarray(scheme.backend.to_numpy(b.data))[..., 0].astype(object)
    sums = [
        [sum(tops_a[i, k] * tops_b[k, j] // w for k in range(32)) for j in range(2)]
        for i in range(2)
    ]
    assert max(abs(v) for row in sums for v in row) >= 1 << 63  # an int64 sum would wrap
    with pytest.raises(OverflowRiskError, match="could exceed 62 bits"):
        a @ b
