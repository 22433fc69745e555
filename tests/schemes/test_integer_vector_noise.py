"""The two noise bounds of the integer-vector scheme, the refresh, and the range of ordinary data.

* the worst-case bound of a key switch uses the ciphertext's actual gadget digits;
* the high-probability bound (2**-64 per decryption) decides decryption unless the scheme was
  made with ``worst_case=True``, and the refusal says which bound refused;
* the chain checker counts a high-probability bound below the true noise as a failure;
* the owner refresh re-encrypts with the secret key (noise ``e_bound``), exactly;
* large inputs: polynomials of |x| = 12 and long sums stay exact instead of being refused.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from hennframework.exceptions import NoiseBudgetExhaustedError, OverflowRiskError
from hennframework.schemes.integer_vector import IntegerVectorScheme
from hennframework.schemes.integer_vector import ciphertext as ciphertext_module
from hennframework.schemes.integer_vector.ciphertext import Ciphertext, tail_factor
from hennframework.testing import chains

pytestmark = pytest.mark.filterwarnings(
    "ignore::hennframework.exceptions.InsecureParametersWarning"
)


def keys_for(scheme: IntegerVectorScheme, seed: int = 7) -> Any:
    return scheme.keygen(seed=seed, max_dim=3, dims=(1, 3), products=(1, 3))


def true_noise(ciphertext: Ciphertext, keys: Any, messages: Any) -> float:
    """max |S c - w mu| over the batch, exactly (Python integers and Fractions)."""
    w = ciphertext.params.w
    t = np.asarray(keys.secret.t_for(ciphertext.dim)).astype(object)
    data = np.asarray(ciphertext.data).astype(object)
    m = ciphertext.dim
    s_c = data[..., :m] + (data[..., None, m:] * t).sum(axis=-1)
    worst = max(
        abs(Fraction(int(v)) - w * Fraction(mu))
        for v, mu in zip(s_c.flat, messages.flat, strict=True)
    )
    return float(worst)


def test_tail_factor_meets_the_failure_probability() -> None:
    for values in (1, 4, 10**6, 10**9):
        z = tail_factor(values)
        # union bound over the values: values * 2 exp(-z**2 / 2) <= 2**-64
        assert math.log2(values) + 1 - z * z / 2 / math.log(2) <= -64
    assert 9.4 < tail_factor(1) < 9.6
    assert tail_factor(10**6) > tail_factor(1)


@pytest.mark.parametrize("params", ["default", "seed", "vhe"])
def test_public_encryption_bound_uses_the_actual_digits(params: str) -> None:
    scheme = IntegerVectorScheme(params)
    keys = keys_for(scheme)
    p = scheme.params
    values = np.array([[0.5, -3.0, 7.25], [0.0, 1.0, -1.0]])
    ct = scheme.encrypt(values, keys.public, dim=3, scale=p.scale)
    old_bound = p.fresh_noise_public(3)  # the digit-blind bound used before
    assert (ct.noise < old_bound).all()
    assert (ct.noise >= p.e_bound).all()
    messages = np.rint(values * p.scale).astype(np.int64)
    for row in range(2):
        assert true_noise(ct[row], keys, messages[row]) <= float(ct.noise[row])


def test_secret_encryption_noise_is_e_bound() -> None:
    scheme = IntegerVectorScheme("default")
    keys = keys_for(scheme)
    ct = scheme.encrypt_tensor(np.array([1.0, -2.0]), keys.secret)
    assert (ct.noise == scheme.params.e_bound).all()
    assert ct.decryption_bound == scheme.params.e_bound  # the smaller bound wins


def forged(scheme: IntegerVectorScheme, keys: Any, worst: float, det: float, sg: float) -> Any:
    """A fresh encryption carrying chosen noise bounds (its true noise is at most e_bound)."""
    ct = scheme.encrypt_tensor(np.array([1.5, -0.25]), keys.secret)
    shape = ct.noise.shape
    return Ciphertext(
        scheme,
        ct.data,
        ct.dim,
        ct.scale_int,
        np.full(shape, worst),
        ct.key_id,
        noise_det=np.full(shape, det),
        noise_sg=np.full(shape, sg),
    )


def test_decryption_uses_the_high_probability_bound_unless_worst_case() -> None:
    scheme = IntegerVectorScheme("default")
    keys = keys_for(scheme)
    w = scheme.params.w
    ct = forged(scheme, keys, worst=float(w), det=100.0, sg=1000.0)
    expected = (100.0 + 1000.0 * tail_factor(2)) * ciphertext_module.SAFETY
    assert ct.decryption_bound == pytest.approx(expected)
    assert ct.noise_budget == pytest.approx(math.log2(w / 2) - math.log2(expected))
    np.testing.assert_array_equal(scheme.decrypt_tensor(ct, keys.secret), [1.5, -0.25])

    strict = IntegerVectorScheme("default", worst_case=True)
    strict.register_public_key(keys.public)
    strict_ct = forged(strict, keys, worst=float(w), det=100.0, sg=1000.0)
    assert strict_ct.decryption_bound == float(w)
    with pytest.raises(NoiseBudgetExhaustedError, match="worst-case noise bound"):
        strict.decrypt_tensor(strict_ct, keys.secret)


def test_high_probability_refusal_names_both_bounds() -> None:
    scheme = IntegerVectorScheme("default")
    keys = keys_for(scheme)
    w = scheme.params.w
    # the high-probability bound reaches w/2 through its sub-Gaussian part
    ct = forged(scheme, keys, worst=float(w), det=0.0, sg=w / 2 / tail_factor(2))
    with pytest.raises(NoiseBudgetExhaustedError, match="2\\*\\*-64 high-probability"):
        scheme.decrypt_tensor(ct, keys.secret)


def test_operations_keep_the_high_probability_bound_at_most_linear() -> None:
    """x + x adds the parameters (shared history): never less than twice one of them."""
    scheme = IntegerVectorScheme("default")
    keys = keys_for(scheme)
    x = scheme.encrypt_tensor(np.array([0.5, 2.0]), keys.public)
    doubled = x + x
    assert doubled.noise_sg is not None and x.noise_sg is not None
    assert (doubled.noise_sg >= 2 * x.noise_sg).all()
    assert (doubled.noise_det >= 2 * x.noise_det).all()


def test_chain_checker_counts_a_bound_that_is_too_small(monkeypatch: pytest.MonkeyPatch) -> None:
    """With z = 0 the 'high-probability' bound is only the deterministic part: the checker
    must report violations (it would be blind to a wrong bound otherwise)."""
    monkeypatch.setattr(ciphertext_module, "tail_factor", lambda values: 0.0)
    report = chains.run_chains(150, seed=11, parameter_sets=("default",))
    assert report.probable_bound_violations > 0
    assert not report.ok


def test_chain_checker_reports_tightness_per_set() -> None:
    report = chains.run_chains(80, seed=5, parameter_sets=("default", "seed"))
    assert report.ok, report.summary()
    stats = report.tightness_summary()
    for name in ("default", "seed"):
        for kind in ("worst-case", "decryption"):
            assert stats[name][kind]["median"] >= 1.0  # a bound never below the true noise
            assert stats[name][kind]["max"] >= stats[name][kind]["median"]
        assert stats[name]["decryption"]["median"] <= stats[name]["worst-case"]["median"]


@pytest.mark.parametrize("dim", [1, 3])
def test_refresh_re_encrypts_with_the_secret_key_exactly(dim: int) -> None:
    scheme = IntegerVectorScheme("default")
    keys = keys_for(scheme)
    values = np.array([[0.75, -1.5, 3.0], [2.0, 0.0, -0.125]])
    if dim == 1:
        ct = scheme.encrypt_tensor(values, keys.public)
        worn = ct * ct  # noisier, scale f after the rescale
    else:
        ct = scheme.encrypt(values, keys.public, dim=3, scale=scheme.params.scale)
        worn = ct * ct
    before = scheme.decrypt(worn, keys.secret)
    fresh = scheme.refresh(worn, keys)
    assert fresh.scale_int == worn.scale_int and fresh.dim == worn.dim
    assert fresh.shape == worn.shape
    np.testing.assert_array_equal(scheme.decrypt(fresh, keys.secret), before)
    assert (fresh.noise == scheme.params.e_bound).all()
    assert fresh.noise_budget > worn.noise_budget


def test_polyval_of_large_inputs_is_exact_not_refused() -> None:
    """|x| = 12 (a standardised outlier times a weight): x**3 = 1728 does not fit the default
    set's range at scale f, so the powers are formed on x / 2**k."""
    scheme = IntegerVectorScheme("default")
    keys = keys_for(scheme)
    coefficients = [0.5, 0.197, 0.0, -0.004]
    x = np.array([-12.0, -3.5, 0.0, 1.25, 11.75])
    ct = scheme.encrypt_tensor(x, keys.public)
    assert scheme.polyval_shift(ct, 3) > 0
    assert scheme.polyval_shift(scheme.encrypt_tensor(x / 8, keys.public), 3) == 0
    got = scheme.decrypt_tensor(ct.polyval(coefficients), keys.secret)
    want = np.polynomial.polynomial.polyval(x, coefficients)
    # fixed point at 2**12 with two bits fewer for the powers: well within 2**-6 here
    np.testing.assert_allclose(got, want, atol=2.0**-6)


def test_long_sum_uses_the_actual_magnitudes() -> None:
    """One large value and many small ones: coeff_bound * count passes 2**62 though the sum
    does not; the sum is exact instead of refused."""
    scheme = IntegerVectorScheme("default")
    keys = keys_for(scheme)
    values = np.full(4096, 0.001)
    values[0] = 200.0
    ct = scheme.encrypt_tensor(values, keys.public)
    assert ct.coeff_bound * 4096 >= ciphertext_module.LIMIT
    total = scheme.decrypt(ct.sum(), keys.secret)
    assert int(total[0]) == int(np.rint(values * scheme.params.scale).sum())
    too_big = scheme.encrypt_tensor(np.full(4096, 200.0), keys.public)
    with pytest.raises(OverflowRiskError):
        too_big.sum()
