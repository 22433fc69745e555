"""The exact layer of the kit, for schemes with exact integer messages and the integer-vector API.

The generic suite (:mod:`hennframework.testing.base`) checks decryptions against error
bounds. Schemes whose messages are exact integers (the integer-vector scheme on any array backend,
or a future modulus-q variant) can promise much more, and :class:`IntegerVectorExactTests` checks it:

* ``Dec(Enc(x)) == x``, ``Dec(a + b) == x + y``, ``Dec(k a) == k x``, ``Dec(a * b) == x * y``,
  ``Dec(dot(a, b, H)) == x^T H y``, ``Dec(lin(G, a)) == G x``, ``P @ a == P x``, *exactly*;
* key switching keeps the plaintext, and the result no longer decrypts under the old key;
* the tracked noise is a **true upper bound** of the noise measured with the secret key,
  ``e = S c - w mu`` computed in Python integers (``mu`` the exact, possibly rational, message),
  after every operation and along chains of products;
* fixed-point results stay within their documented bound ``(1/2 + noise/w)/f`` plus the
  propagated encoding errors;
* plaintext matrices with large entries times tiny encryptions (``P @ a``, ``a @ P``, long inner
  dimensions, results near 2**62) are exact or refused, never wrapped;
* decryption refuses (``NoiseBudgetExhaustedError``) exactly when the bound reaches ``w/2``, and
  results that cannot be represented raise ``OverflowRiskError`` instead of wrapping;
* a batch gives, bit for bit, the ciphertexts its items give alone.

Subclass it and override the class-scoped ``scheme`` fixture (for example with another array
backend); the API used is ``keygen(seed=, max_dim=, dims=, products=)``, ``encrypt(values, key,
dim=, scale=)``, ``decrypt``, ``add_dot_key``, ``add_linear_key``, ``make_switch_key``,
``switch_key``, ``Ciphertext.data / noise / dim / scale_int``, ``SecretKey.matrix(m)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hennframework.exceptions import (
    KeyMismatchError,
    NoiseBudgetExhaustedError,
    OverflowRiskError,
)
from hennframework.scheme import KeySet
from hennframework.testing import strategies as hst
from hennframework.testing.base.base import (
    KEY_SEED,
    OTHER_KEY_SEED,
    kit_settings,
    missing_fixture,
)

__all__ = [
    "MAX_DIM",
    "IntegerVectorExactTests",
    "ciphertext_fields",
    "exact_messages",
    "measured_noise",
    "measured_noise_exact",
]

#: Vector lengths m the layer covers (1..MAX_DIM); keys hold encryption and product keys for each.
MAX_DIM = 4
#: Inner dimensions of the long plaintext matrix products (hundreds to thousands).
LONG_INNER = (100, 257, 1000, 2048)


def ciphertext_fields(ciphertext: Any) -> tuple[Any, ...]:
    """Everything an integer-vector ciphertext carries, as types, bytes and ints: two results
    are the same bit for bit exactly when these tuples are equal (fast paths against the
    general code)."""
    parts = (ciphertext.data, ciphertext.noise, ciphertext.noise_det, ciphertext.noise_sg)
    return (
        *(type(part).__name__ for part in parts),
        *(np.asarray(part).tobytes() for part in parts),
        *(np.shape(part) for part in parts),
        ciphertext.coeff_bound,
        ciphertext.scale_int,
        ciphertext.dim,
        ciphertext.key_id,
    )


def _ints(array: Any) -> Any:
    """A backend array as nested Python ints."""
    return np.asarray(array).astype(np.int64).tolist()


def measured_noise_exact(ciphertext: Any, messages: Any, secret: Any) -> npt.NDArray[Any]:
    """``max_i |(S c)_i - w mu_i|`` per batch item as exact Fractions (an object array).

    ``messages`` has shape ``(*batch, m)`` (or broadcasts to it) and holds the exact messages:
    ints, or :class:`fractions.Fraction` for fixed-point results such as ``mu_a mu_b / f``.
    """
    m = ciphertext.dim
    w = ciphertext.params.w
    key = _ints(secret.matrix(m))
    data = np.asarray(ciphertext.scheme.backend.to_numpy(ciphertext.data))
    mu = np.broadcast_to(np.asarray(messages, dtype=object), (*data.shape[:-1], m))
    out = np.empty(data.shape[:-1], dtype=object)
    for index in np.ndindex(*data.shape[:-1]):
        c = [int(v) for v in data[index]]
        worst = Fraction(0)
        for i in range(m):
            s_c = sum(key[i][j] * c[j] for j in range(len(c)))
            worst = max(worst, abs(s_c - w * Fraction(mu[index][i])))
        out[index] = worst
    return out


def measured_noise(ciphertext: Any, messages: Any, secret: Any) -> npt.NDArray[np.float64]:
    """:func:`measured_noise_exact` rounded to float64 (for reports and plots)."""
    exact = measured_noise_exact(ciphertext, messages, secret)
    return np.vectorize(float, otypes=[np.float64])(exact) if exact.size else exact.astype(float)


def exact_messages(values: Any) -> npt.NDArray[Any]:
    """An object array of Python ints (exact, no int64 wraparound) from an integer array."""
    array = np.asarray(values)
    out = np.empty(array.shape, dtype=object)
    for index in np.ndindex(*array.shape):
        out[index] = int(array[index])
    return out


class IntegerVectorExactTests:
    """Exactness, true noise bounds and overflow refusal (see the module doc). Class-scoped fixtures:
    ``scheme`` (required), ``keys`` and ``other_keys`` (made with ``keygen_options``)."""

    @pytest.fixture(scope="class")
    @classmethod
    def scheme(cls) -> Any:
        missing_fixture(cls, "scheme")

    @pytest.fixture(scope="class")
    @classmethod
    def keygen_options(cls) -> dict[str, Any]:
        dims = tuple(range(1, MAX_DIM + 1))
        return {"max_dim": MAX_DIM, "dims": dims, "products": dims}

    @pytest.fixture(scope="class")
    @classmethod
    def keys(cls, scheme: Any, keygen_options: dict[str, Any]) -> KeySet:
        return scheme.keygen(seed=KEY_SEED, **keygen_options)  # type: ignore[no-any-return]

    @pytest.fixture(scope="class")
    @classmethod
    def other_keys(cls, scheme: Any, keygen_options: dict[str, Any]) -> KeySet:
        return scheme.keygen(seed=OTHER_KEY_SEED, **keygen_options)  # type: ignore[no-any-return]

    @pytest.fixture(scope="class")
    @classmethod
    def product_bound(cls, scheme: Any) -> int:
        """|x| for integer factors whose products stay in range and whose product noise
        (about 2 |x| e_fresh + E c*, four times that in ``3 a b + a a``) stays below w/2."""
        p = scheme.params
        by_size = math.isqrt((1 << 57) // p.w)
        by_noise = p.w // (64 * p.fresh_noise_public(MAX_DIM))
        return max(min(by_size, int(by_noise)), 1)

    # -- helpers --------------------------------------------------------------------------------
    def encrypt_vectors(self, scheme: Any, values: Any, key: Any, m: int) -> Any:
        """Encrypt ``values`` of shape ``(*batch, m)`` as a batch of m-vector ciphertexts.

        For m = 1 the values go in as scalars (``dim=None``): the scheme's ``encrypt(..., dim=1)``
        currently treats dim 1 like scalars and adds a batch axis (shape ``(*batch, 1)``).
        """
        values = np.asarray(values)
        if m == 1:
            return scheme.encrypt(values[..., 0], key)
        return scheme.encrypt(values, key, dim=m)

    # -- checks ---------------------------------------------------------------------------------
    def assert_noise_bounded(self, ciphertext: Any, messages: Any, secret: Any, what: str) -> None:
        """Both tracked bounds, the worst-case ``ciphertext.noise`` and the one decryption uses
        (``decryption_bounds()``: high-probability, 2**-64 per decryption), are at least the
        measured noise, elementwise, compared exactly (the float64 bound as the Fraction it
        represents: no slack). A high-probability bound below the noise is a failure too."""
        measured = measured_noise_exact(ciphertext, messages, secret)
        backend = ciphertext.scheme.backend
        bounds = {"worst-case": ciphertext.noise, "decryption": ciphertext.decryption_bounds()}
        for name, values in bounds.items():
            tracked = np.asarray(backend.to_numpy(values), dtype=np.float64)
            tracked = np.broadcast_to(tracked, measured.shape)
            for index in np.ndindex(*measured.shape):
                if measured[index] > Fraction(float(tracked[index])):
                    raise AssertionError(
                        f"{what}: measured noise {float(measured[index]):.6g} exceeds the "
                        f"{name} bound {float(tracked[index]):.6g} at batch index {index}"
                    )

    def assert_exact(
        self, scheme: Any, ciphertext: Any, keys: KeySet, expected: Any, what: str
    ) -> None:
        """Decryption equals the exact integer messages, and the noise bound holds."""
        got = scheme.decrypt(ciphertext, keys.secret)
        want = exact_messages(expected).reshape(got.shape)
        assert [int(v) for v in got.ravel()] == [int(v) for v in want.ravel()], (
            f"{what}: decrypted {got.tolist()} instead of {want.tolist()}"
        )
        self.assert_noise_bounded(ciphertext, want, keys.secret, what)

    # -- exact identities -------------------------------------------------------------------------
    @kit_settings()
    @given(data=st.data())
    def test_roundtrip_exact(self, scheme: Any, keys: KeySet, data: st.DataObject) -> None:
        m = data.draw(st.integers(1, MAX_DIM), label="m")
        limit = scheme.params.max_plaintext
        x = data.draw(hst.integer_arrays((data.draw(st.integers(1, 3)), m), limit), label="x")
        self.assert_exact(
            scheme, self.encrypt_vectors(scheme, x, keys.public, m), keys, x, "Enc_pk"
        )
        self.assert_exact(
            scheme, self.encrypt_vectors(scheme, x, keys.secret, m), keys, x, "Enc_sk"
        )

    @kit_settings()
    @given(data=st.data())
    def test_linear_operations_exact(self, scheme: Any, keys: KeySet, data: st.DataObject) -> None:
        m = data.draw(st.integers(1, MAX_DIM), label="m")
        limit = scheme.params.max_plaintext // 8
        shape = (data.draw(st.integers(1, 3)), m)
        x = data.draw(hst.integer_arrays(shape, limit), label="x")
        y = data.draw(hst.integer_arrays(shape, limit), label="y")
        k = data.draw(st.integers(-4, 4), label="k")
        a, b = (
            self.encrypt_vectors(scheme, x, keys.public, m),
            self.encrypt_vectors(scheme, y, keys.public, m),
        )
        mx, my = exact_messages(x), exact_messages(y)
        self.assert_exact(scheme, a + b, keys, mx + my, "a + b")
        self.assert_exact(scheme, a - b, keys, mx - my, "a - b")
        self.assert_exact(scheme, -a, keys, -mx, "-a")
        self.assert_exact(scheme, a * k, keys, mx * k, "a * k")
        self.assert_exact(scheme, a + b + a - b, keys, 2 * mx, "a + b + a - b")
        per_item = data.draw(hst.integer_arrays((shape[0], 1), 4), label="per-item k")
        # one factor per batch item: the batch shape (n,), broadcast over the slots
        factor = per_item[:, 0]
        self.assert_exact(scheme, a * factor, keys, mx * exact_messages(per_item), "a * per-item k")
        self.assert_exact(scheme, a.sum(axis=0), keys, mx.sum(axis=0), "a.sum(axis=0)")

    @kit_settings()
    @given(data=st.data())
    def test_product_exact(
        self, scheme: Any, keys: KeySet, product_bound: int, data: st.DataObject
    ) -> None:
        m = data.draw(st.integers(1, MAX_DIM), label="m")
        shape = (data.draw(st.integers(1, 3)), m)
        x = data.draw(hst.integer_arrays(shape, product_bound), label="x")
        y = data.draw(hst.integer_arrays(shape, product_bound), label="y")
        a, b = (
            self.encrypt_vectors(scheme, x, keys.public, m),
            self.encrypt_vectors(scheme, y, keys.public, m),
        )
        mx, my = exact_messages(x), exact_messages(y)
        self.assert_exact(scheme, a * b, keys, mx * my, "a * b")
        self.assert_exact(scheme, a * a, keys, mx * mx, "a * a")
        self.assert_exact(scheme, (a * b) * 3 + a * a, keys, mx * my * 3 + mx * mx, "3 a b + a a")

    @kit_settings()
    @given(data=st.data())
    def test_product_chain_noise(self, scheme: Any, keys: KeySet, data: st.DataObject) -> None:
        """Chains of several products stay exact and under the tracked bound, or are refused."""
        m = data.draw(st.integers(1, MAX_DIM), label="m")
        factors = [data.draw(hst.integer_arrays((2, m), 6), label=f"x{i}") for i in range(5)]
        product = self.encrypt_vectors(scheme, factors[0], keys.public, m)
        expected = exact_messages(factors[0])
        for step, factor in enumerate(factors[1:], start=1):
            try:
                product = product * self.encrypt_vectors(scheme, factor, keys.public, m)
            except OverflowRiskError:
                return
            expected = expected * exact_messages(factor)
            self.assert_noise_bounded(product, expected, keys.secret, f"product of {step + 1}")
            if product.decryption_bound * 2 >= scheme.params.w:
                with pytest.raises(NoiseBudgetExhaustedError):
                    scheme.decrypt(product, keys.secret)
                return
            self.assert_exact(scheme, product, keys, expected, f"product of {step + 1}")

    @kit_settings()
    @given(data=st.data())
    def test_absorb_noise_moves_no_message_farther_than_stated(
        self, scheme: Any, keys: KeySet, data: st.DataObject
    ) -> None:
        """``absorb_noise`` after a product: the new messages ``S c / w`` (exact Fractions) are
        within the stated distance of the exact product, the result has no noise, and a later
        product from it stays under its tracked bound against those messages."""
        m = data.draw(st.integers(1, MAX_DIM), label="m")
        x = data.draw(hst.integer_arrays((2, m), 6), label="x")
        y = data.draw(hst.integer_arrays((2, m), 6), label="y")
        try:
            product = self.encrypt_vectors(scheme, x, keys.public, m) * self.encrypt_vectors(
                scheme, y, keys.public, m
            )
        except OverflowRiskError:
            return
        result = scheme.absorb_noise(product, most=0.5)
        if result is None:  # more noise than half a unit: nothing to check
            assert product.max_noise / scheme.params.w > 0.5
            return
        absorbed, moved = result
        assert absorbed.max_noise == 0.0 and absorbed.decryption_bound == 0.0
        exact = exact_messages(x) * exact_messages(y)
        w = scheme.params.w
        # S c / w per item and slot, exactly: the noise against the exact product over w
        distance = measured_noise_exact(product, exact, keys.secret)
        allowed = Fraction(moved) * product.scale_int
        for index in np.ndindex(*distance.shape):
            assert distance[index] / w <= allowed, (
                f"absorb_noise moved a message by {float(distance[index] / w):.6g} > stated "
                f"{float(allowed):.6g} at {index}"
            )
        # the absorbed messages, exactly: S c / w (the noise against them is 0)
        data_ints = np.asarray(scheme.backend.to_numpy(absorbed.data))
        key = _ints(keys.secret.matrix(m))
        messages = np.empty((*absorbed.shape, m), dtype=object)
        for index in np.ndindex(*absorbed.shape):
            c = [int(v) for v in data_ints[index]]
            for i in range(m):
                messages[(*index, i)] = Fraction(sum(key[i][j] * c[j] for j in range(len(c))), w)
        self.assert_noise_bounded(absorbed, messages, keys.secret, "absorbed")
        try:
            again = absorbed * self.encrypt_vectors(scheme, x, keys.public, m)
        except OverflowRiskError:
            return
        self.assert_noise_bounded(again, messages * exact_messages(x), keys.secret, "after")

    @kit_settings()
    @given(data=st.data())
    def test_dot_exact(
        self, scheme: Any, keys: KeySet, product_bound: int, data: st.DataObject
    ) -> None:
        m = data.draw(st.integers(1, MAX_DIM), label="m")
        shape = (data.draw(st.integers(1, 3)), m)
        bound = max(product_bound // (2 * m * m), 1)  # sum |H| <= 2 m**2
        x = data.draw(hst.integer_arrays(shape, bound), label="x")
        y = data.draw(hst.integer_arrays(shape, bound), label="y")
        h = data.draw(st.one_of(st.none(), hst.integer_matrices(m, m, 2)), label="H")
        scheme.add_dot_key(keys, m, h)
        a, b = (
            self.encrypt_vectors(scheme, x, keys.public, m),
            self.encrypt_vectors(scheme, y, keys.public, m),
        )
        weight = exact_messages(np.eye(m, dtype=np.int64) if h is None else h)
        expected = np.array(
            [[(exact_messages(x)[i] @ weight @ exact_messages(y)[i])] for i in range(shape[0])],
            dtype=object,
        )
        self.assert_exact(scheme, a.dot(b, h), keys, expected, "dot(a, b, H)")

    @kit_settings()
    @given(data=st.data())
    def test_linear_transform_exact(self, scheme: Any, keys: KeySet, data: st.DataObject) -> None:
        m = data.draw(st.integers(1, MAX_DIM), label="m")
        out = data.draw(st.integers(1, MAX_DIM), label="out")
        g = data.draw(hst.integer_matrices(out, m, 5), label="G")
        x = data.draw(
            hst.integer_arrays(
                (data.draw(st.integers(1, 3)), m), scheme.params.max_plaintext // 32
            ),
            label="x",
        )
        scheme.add_linear_key(keys, g)
        a = self.encrypt_vectors(scheme, x, keys.public, m)
        self.assert_exact(
            scheme,
            a.linear_transform(g),
            keys,
            exact_messages(x) @ exact_messages(g).T,
            "lin(G, a)",
        )

    @kit_settings()
    @given(data=st.data())
    def test_key_switch(
        self, scheme: Any, keys: KeySet, other_keys: KeySet, data: st.DataObject
    ) -> None:
        m = data.draw(st.integers(1, MAX_DIM), label="m")
        x = data.draw(
            hst.integer_arrays((data.draw(st.integers(1, 3)), m), scheme.params.max_plaintext // 4),
            label="x",
        )
        switch = scheme.make_switch_key(keys, other_keys, dim=m)
        a = self.encrypt_vectors(scheme, x, keys.public, m)
        moved = a.switch_key(switch)
        self.assert_exact(scheme, moved, other_keys, x, "switch_key")
        with pytest.raises(KeyMismatchError):
            scheme.decrypt(moved, keys.secret)
        with pytest.raises(KeyMismatchError):
            moved.switch_key(switch)  # it is no longer under the source key

    @kit_settings()
    @given(data=st.data())
    def test_matmul_plain_exact(self, scheme: Any, keys: KeySet, data: st.DataObject) -> None:
        inner = data.draw(st.integers(1, hst.MAX_SIDE), label="K")
        x = data.draw(hst.integer_arrays((inner, 2), scheme.params.max_plaintext // 64), label="x")
        left = data.draw(hst.integer_matrices(3, inner, 8), label="P")
        right = data.draw(hst.integer_matrices(2, 3, 8), label="Q")
        a = scheme.encrypt(x, keys.public)  # scalar ciphertexts, batch (K, 2)
        mx = exact_messages(x)
        self.assert_exact(scheme, left @ a, keys, (exact_messages(left) @ mx)[..., None], "P @ a")
        self.assert_exact(scheme, a @ right, keys, (mx @ exact_messages(right))[..., None], "a @ Q")

    @kit_settings()
    @given(data=st.data())
    def test_matmul_plain_large_operands_exact_or_refused(
        self, scheme: Any, keys: KeySet, data: st.DataObject
    ) -> None:
        """Large real or integer P times encryptions of a few fixed-point units, over inner
        dimensions up to thousands and both operand orders, with results sized near 2**62 (where
        the products need 128 bits): exact to the bit, or OverflowRiskError; never wrapped."""
        p = scheme.params
        f = p.scale
        inner = data.draw(st.one_of(st.integers(1, 9), st.sampled_from(LONG_INNER)), label="K")
        on_left = data.draw(st.booleans(), label="P on the left")
        integer_p = data.draw(st.booleans(), label="integer P")
        seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
        rng = np.random.default_rng(seed)
        units = data.draw(st.integers(1, 3), label="units")
        x = rng.integers(-units, units, (inner, 2) if on_left else (2, inner), endpoint=True)
        a = scheme.encrypt(x / f, keys.public, scale=f)  # messages x (fixed point at f)
        # |P| so that coeff_bound * K * |P_enc| (/ f) reaches about 2**bits
        bits = data.draw(st.integers(48, 64), label="result bits")
        top = bits + (0 if integer_p else f.bit_length() - 1)
        top -= a.coeff_bound.bit_length() + inner.bit_length() - 1
        top = max(min(top, 52), 1)
        shape = (2, inner) if on_left else (inner, 2)
        p_enc = rng.integers(-(2**top), 2**top, shape, endpoint=True)
        # real P on a fixed-point ciphertext is encoded at f and the product rescaled by f
        plain = p_enc if integer_p else p_enc / f
        try:
            result = plain @ a if on_left else a @ plain
        except OverflowRiskError:
            return
        exact = (
            exact_messages(p_enc) @ exact_messages(x)
            if on_left
            else (exact_messages(x) @ exact_messages(p_enc))
        )
        messages = exact if integer_p else np.vectorize(lambda v: Fraction(v, f))(exact)
        messages = np.asarray(messages, dtype=object)[..., None]
        self.assert_noise_bounded(result, messages, keys.secret, "P @ a (large P)")
        try:
            got = scheme.decrypt(result, keys.secret)
        except NoiseBudgetExhaustedError:
            assert result.decryption_bound * 2 >= p.w
            return
        tracked = np.broadcast_to(
            np.asarray(
                result.scheme.backend.to_numpy(result.decryption_bounds()), dtype=np.float64
            ),
            result.shape,
        )
        for index in np.ndindex(*got.shape):
            allowed = Fraction(1, 2) + Fraction(float(tracked[index[:-1]])) / p.w
            mu: Any = messages[index]
            assert abs(int(got[index]) - mu) <= allowed, (
                f"P @ a (large P): decrypted {int(got[index])}, exact {mu}"
            )

    # -- fixed point ----------------------------------------------------------------------------
    @kit_settings()
    @given(data=st.data())
    def test_fixed_point_within_documented_bounds(
        self, scheme: Any, keys: KeySet, data: st.DataObject
    ) -> None:
        """Decoded = exact rational message rounded: error <= (1/2 + noise/w)/f + encoding terms."""
        p = scheme.params
        f, w = p.scale, p.w
        x = data.draw(hst.real_arrays((3,), 4.0), label="x")
        y = data.draw(hst.real_arrays((3,), 4.0), label="y")
        k = data.draw(hst.reals(2.0), label="k")
        mat = data.draw(hst.real_matrices(2, 3, 2.0), label="P")
        a, b = scheme.encrypt_tensor(x, keys.public), scheme.encrypt_tensor(y, keys.public)
        ex = [Fraction(int(v)) for v in np.rint(x * f)]
        ey = [Fraction(int(v)) for v in np.rint(y * f)]
        ek = Fraction(int(np.rint(k * f)))
        emat = [[Fraction(int(v)) for v in row] for row in np.rint(mat * f)]

        def check(
            result: Any,
            messages: list[Fraction],
            reference: npt.NDArray[np.float64],
            encoding: npt.NDArray[np.float64],
            what: str,
        ) -> None:
            mu = np.array(messages, dtype=object)[:, None]
            self.assert_noise_bounded(result, mu, keys.secret, what)
            noise = np.asarray(result.noise, dtype=np.float64)
            decoded = scheme.decrypt_tensor(result, keys.secret)
            rounding = (0.5 + noise / w) / f
            # the decoded integer is within 1/2 + noise/w of f * mu (exact rational)
            exact = np.array([float(v) / f for v in messages])
            assert (np.abs(decoded - exact) <= rounding * (1 + 1e-9) + 1e-15).all(), what
            bound = rounding + encoding
            assert (np.abs(decoded - reference) <= bound * (1 + 1e-9) + 1e-12).all(), (
                f"{what}: decoded {decoded}, reference {reference}, bound {bound}"
            )

        half = 1 / (2 * f)
        ax, ay = np.abs(x), np.abs(y)
        check(
            a * b,
            [u * v / f for u, v in zip(ex, ey, strict=True)],
            x * y,
            (ax + ay) * half + half * half,
            "a * b",
        )
        check(a * k, [u * ek / f for u in ex], x * k, (abs(k) + ax) * half + half * half, "a * k")
        matmul = [sum((emat[j][i] * ex[i] for i in range(3)), Fraction(0)) / f for j in range(2)]
        check(
            mat @ a,
            matmul,
            mat @ x,
            (np.abs(mat) @ np.full(3, half) + np.ones((2, 3)) @ (ax + half) * half),
            "P @ a",
        )
        check(
            a + b,
            [u + v for u, v in zip(ex, ey, strict=True)],
            x + y,
            np.full(3, 2 * half),
            "a + b",
        )
        # a small constant encoded at the fine scale (polynomial coefficients, learning rates)
        fine = getattr(scheme, "fine_scale", None)
        if fine is not None:
            k_fine = Fraction(int(np.rint(k * fine)))
            check(
                a.multiply_constant(k),
                [u * k_fine / fine for u in ex],
                x * k,
                abs(k) * half + (ax + half) / (2 * fine),
                "a.multiply_constant(k)",
            )
        # an exact rescale of a scale-f**2 encryption
        fine_x = x / (4 * f)  # |x f**2| stays within max_plaintext for every named set
        wide = scheme.encrypt(fine_x, keys.public, scale=f * f)
        ewide = [Fraction(int(v)) for v in np.rint(fine_x * f * f)]
        check(
            wide.rescale(), [u / f for u in ewide], fine_x, np.full(3, 1 / (2 * f * f)), "rescale"
        )

    # -- refusing instead of lying ----------------------------------------------------------------
    def test_noise_exhaustion_raises(self, scheme: Any, keys: KeySet) -> None:
        """Square 1 until the bound reaches w/2: exact before, NoiseBudgetExhaustedError then."""
        a = scheme.encrypt(np.array([1, -1]), keys.public)
        expected = exact_messages([[1], [-1]])
        for _ in range(64):
            a = a * a
            expected = expected * expected
            self.assert_noise_bounded(a, expected, keys.secret, "repeated squaring")
            if a.decryption_bound * 2 >= scheme.params.w:
                with pytest.raises(NoiseBudgetExhaustedError):
                    scheme.decrypt(a, keys.secret)
                assert a.noise_budget <= 0
                return
            assert a.noise_budget > 0
            self.assert_exact(scheme, a, keys, expected, "repeated squaring")
        pytest.fail("64 squarings never exhausted the noise budget")

    @kit_settings()
    @given(data=st.data())
    def test_large_products_right_or_refused(
        self, scheme: Any, keys: KeySet, data: st.DataObject
    ) -> None:
        """Products of encryptions of large values are exact, or raise; never wrap."""
        m = data.draw(st.integers(1, MAX_DIM), label="m")
        limit = scheme.params.max_plaintext
        bits = data.draw(st.integers(0, limit.bit_length()), label="bits")
        magnitude = st.integers(-min(limit, 1 << bits), min(limit, 1 << bits))
        x = np.array(data.draw(st.lists(magnitude, min_size=m, max_size=m), label="x"))[None, :]
        y = np.array(data.draw(st.lists(magnitude, min_size=m, max_size=m), label="y"))[None, :]
        a, b = (
            self.encrypt_vectors(scheme, x, keys.public, m),
            self.encrypt_vectors(scheme, y, keys.public, m),
        )
        scheme.add_dot_key(keys, m)
        cases = [
            ("a * b", lambda: a * b, exact_messages(x) * exact_messages(y)),
            (
                "dot(a, b)",
                lambda: a.dot(b),
                np.array([[exact_messages(x)[0] @ exact_messages(y)[0]]], dtype=object),
            ),
        ]
        for what, operation, expected in cases:
            self.assert_right_or_refused(scheme, keys, operation, expected, what)

    def assert_right_or_refused(
        self, scheme: Any, keys: KeySet, operation: Any, expected: Any, what: str
    ) -> None:
        """``operation()`` decrypts to ``expected`` exactly, or raises a refusal error."""
        try:
            result = operation()
        except OverflowRiskError:
            return
        self.assert_noise_bounded(result, expected, keys.secret, what)
        try:
            got = scheme.decrypt(result, keys.secret)
        except NoiseBudgetExhaustedError:
            assert result.decryption_bound * 2 >= scheme.params.w
            return
        assert [int(v) for v in got.ravel()] == [int(v) for v in np.ravel(expected)], (
            f"{what}: decrypted {got.tolist()} instead of {np.asarray(expected).tolist()}"
        )

    # -- batches ----------------------------------------------------------------------------------
    @kit_settings()
    @given(data=st.data())
    def test_batch_is_bitwise_itemwise(
        self, scheme: Any, keys: KeySet, product_bound: int, data: st.DataObject
    ) -> None:
        """Every operation on a batch gives, bit for bit, what it gives on each item alone."""
        m = data.draw(st.integers(1, MAX_DIM), label="m")
        n = data.draw(st.integers(2, 4), label="n")
        x = data.draw(hst.integer_arrays((n, m), product_bound // 4), label="x")
        y = data.draw(hst.integer_arrays((n, m), product_bound // 4), label="y")
        scheme.add_dot_key(keys, m)
        a, b = (
            self.encrypt_vectors(scheme, x, keys.public, m),
            self.encrypt_vectors(scheme, y, keys.public, m),
        )
        operations: list[tuple[str, Callable[[Any, Any], Any]]] = [
            ("a * b", lambda u, v: u * v),
            ("dot", lambda u, v: u.dot(v)),
            ("a + b", lambda u, v: u + v),
            ("a * 3", lambda u, v: u * 3),
        ]
        backend = scheme.backend
        for what, operation in operations:
            batched = operation(a, b)
            for i in range(n):
                alone = operation(a[i : i + 1], b[i : i + 1])
                assert np.array_equal(
                    backend.to_numpy(batched.data)[i : i + 1], backend.to_numpy(alone.data)
                ), f"{what}: item {i} differs"
                assert np.array_equal(
                    backend.to_numpy(batched.noise)[i : i + 1], backend.to_numpy(alone.noise)
                ), f"{what}: item {i} noise"
