"""The plugin-author kit (hennframework.testing) run against the CKKS plugin: the identities (at
n8192) and the codec (at n4096, the quickest parameter set).

Tolerances, from the measured precision of each parameter set (docs/plugins-ckks.md, "Precision"):
a fresh public-key encryption decrypts with an error of standard deviation about ``N / (6 * scale)``
per slot (4.0e-5 at n8192), and one rescale adds an error of the same size; CKKS errors are sums of
many independent terms (Gaussian), so 10 standard deviations bound them with overwhelming
probability. Keys cannot be seeded (SEAL takes its randomness from the OS), so the ``keys`` and
``other_keys`` fixtures are overridden to call ``keygen()`` without a seed (the codec tests use the
session's n4096 keys).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hennframework.scheme import KeySet
from hennframework.testing import BaseCodecTests, ErrorModel, SchemeIdentityTests, Tracked

from hennframework_ckks import CKKSScheme


def precision(scheme: CKKSScheme) -> float:
    """Standard deviation of a fresh encryption's (and of one rescale's) error, per slot."""
    return scheme.params.poly_modulus_degree / (6.0 * scheme.params.scale)


class TestCKKSIdentities(SchemeIdentityTests):
    @pytest.fixture(scope="class")
    @classmethod
    def scheme(cls) -> CKKSScheme:
        return CKKSScheme("n8192")

    @pytest.fixture(scope="class")
    @classmethod
    def keys(cls, scheme: CKKSScheme) -> KeySet:
        return scheme.keygen()

    @pytest.fixture(scope="class")
    @classmethod
    def other_keys(cls, scheme: CKKSScheme) -> KeySet:
        return scheme.keygen()

    @pytest.fixture(scope="class")
    @classmethod
    def tolerance(cls, scheme: CKKSScheme) -> float:
        return 10.0 * precision(scheme)

    @pytest.fixture(scope="class")
    @classmethod
    def op_tolerance(cls, scheme: CKKSScheme) -> float:
        return 10.0 * precision(scheme)

    def polyval_bound(self, errors: ErrorModel, x: Tracked, coefficients: list[float]) -> Tracked:
        return ckks_polyval_bound(errors, x, coefficients)


class TestCKKSCodec(BaseCodecTests):
    """The kit's codec tests: keys and tensors through the codec and ``.henn`` files, secrets
    refused, damaged bytes refused."""

    @pytest.fixture(scope="class")
    @classmethod
    def scheme(cls, scheme4096: CKKSScheme) -> CKKSScheme:
        return scheme4096

    @pytest.fixture(scope="class")
    @classmethod
    def keys(cls, keys4096: KeySet) -> KeySet:
        return keys4096

    @pytest.fixture(scope="class")
    @classmethod
    def tolerance(cls, scheme: CKKSScheme) -> float:
        return 10.0 * precision(scheme)

    def assert_same_decryption(
        self,
        actual: npt.NDArray[np.float64],
        expected: npt.NDArray[np.float64],
        errors: ErrorModel,
        what: str,
    ) -> None:
        """Products are relinearised and rescaled lazily; the codec completes a pending rescale
        when it writes, which rounds once more: within one rescale's error of the original."""
        assert actual.shape == expected.shape, what
        np.testing.assert_allclose(
            actual, expected, rtol=0.0, atol=errors.op_tolerance, err_msg=what
        )


def ckks_polyval_bound(errors: ErrorModel, x: Tracked, coefficients: list[float]) -> Tracked:
    """The plugin's order: powers x**(2**j) by squaring, ``c_k`` times the lowest power of two in
    ``k``, then the other powers; a constant polynomial is a fresh zero plus ``c_0``."""
    coeffs = [float(c) for c in coefficients]
    while len(coeffs) > 1 and coeffs[-1] == 0.0:
        coeffs.pop()
    shape = x.value.shape
    powers = [x]
    total: Tracked | None = None
    for k, c in enumerate(coeffs):
        if k == 0 or c == 0.0:
            continue
        bits = [b for b in range(k.bit_length()) if k >> b & 1]
        while len(powers) <= bits[-1]:
            powers.append(errors.mul(powers[-1], powers[-1]))
        term = errors.mul_plain(powers[bits[0]], np.full(shape, c))
        for b in bits[1:]:
            term = errors.mul(term, powers[b])
        total = term if total is None else errors.add(total, term)
    if total is None:
        total = errors.fresh(np.zeros(shape))
    return errors.add_plain(total, np.full(shape, coeffs[0]))


def test_kit_tolerance_matches_measured_precision(scheme8192: CKKSScheme, keys8192: KeySet) -> None:
    """The stated precision is not optimistic: over 4096 slots the error's std is within it."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, scheme8192.params.slots)
    decrypted = scheme8192.decrypt_tensor(
        scheme8192.encrypt_tensor(x, keys8192.public), keys8192.secret
    )
    error = decrypted - x
    assert error.std() <= 1.5 * precision(scheme8192)
    assert np.abs(error).max() <= 10.0 * precision(scheme8192)
