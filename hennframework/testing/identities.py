"""The homomorphic-identity suite: base test classes that any scheme plugin's tests subclass.

Modelled on pandas' ``tests/extension/base``: the tests are written once, against the abstract
interface only (:meth:`HEScheme.keygen`, :meth:`HEScheme.encrypt_tensor`,
:meth:`HEScheme.decrypt_tensor`, :meth:`HEScheme.refresh` and the operators of
:class:`~hennframework.scheme.EncryptedTensor`), and a plugin runs them by subclassing and
overriding a few class-scoped fixtures::

    import pytest
    from hennframework.testing import SchemeIdentityTests

    class TestMyScheme(SchemeIdentityTests):
        @pytest.fixture(scope="class")
        @classmethod
        def scheme(cls):
            return MyScheme("my-params")

        @pytest.fixture(scope="class")
        @classmethod
        def tolerance(cls, scheme):
            return 2.0**-20          # |Dec(Enc(x)) - x| for a fresh encryption

Fixtures (all class-scoped, so keys are generated once per class; override any of them with
``@pytest.fixture(scope="class")``):

``scheme``
    an instance of the scheme under test (required).
``tolerance``
    absolute error of a fresh encryption and of encoding a plaintext operand (required; derive it
    from the scheme's stated precision, e.g. ``1 / (2 * scale)`` for fixed point at ``scale``).
``op_tolerance``
    absolute error one operation adds when its result is rounded or rescaled (default
    ``2 * tolerance``).
``value_range``
    the suite draws plaintexts from ``[-value_range, value_range]`` (default 1.0); choose it so
    that depth-``max_depth`` products of such values stay inside the scheme's range.
``max_depth``
    the multiplicative depth the suite may use (default 2; polynomials up to degree
    ``2**max_depth``, at most 4).
``keygen_options``
    keyword arguments for ``scheme.keygen`` (default none); ``keys`` and ``other_keys`` are two
    independent key sets made with them.

Each test first checks the capabilities the scheme *declares* (``type(scheme).capabilities``) and
is skipped, with the reason, when one is missing; nothing else is skipped. A scheme that declares
``noise-tracking`` or ``magnitude-tracking`` promises never to return a silently wrong decryption:
:class:`BaseMagnitudeTests` runs random chains of operations (with plaintext factors large enough
to reach any limit) in which every step either is refused with ``OverflowRiskError`` or
``NoiseBudgetExhaustedError`` (at the operation or at decryption) or decrypts within its bound,
and, for ``magnitude-tracking``, checks the tracked bound against the decryptions and that a value
just past the limit is refused. Error bounds come from
:class:`~hennframework.testing.bounds.ErrorModel` (no hard-coded tolerances). The Hypothesis
settings suppress the function-scoped-fixture health check because every fixture here is read-only
(keys are never modified by a test); example counts follow the active Hypothesis profile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hennframework.exceptions import (
    HennError,
    InputError,
    KeyMismatchError,
    NoiseBudgetExhaustedError,
    OverflowRiskError,
)
from hennframework.scheme import Capability, EncryptedTensor, HEScheme, KeySet, MagnitudeTracked
from hennframework.testing import strategies as hst
from hennframework.testing.bounds import ErrorModel, Tracked, assert_within

__all__ = [
    "BaseArithmeticTests",
    "BaseBatchTests",
    "BaseCipherProductTests",
    "BaseEncryptionTests",
    "BaseErrorTests",
    "BaseIndexingTests",
    "BaseMagnitudeTests",
    "BaseMatmulTests",
    "BaseNoiseTests",
    "BasePlainProductTests",
    "BasePolynomialTests",
    "BaseRefreshTests",
    "SchemeFixtures",
    "SchemeIdentityTests",
    "kit_settings",
    "require_capabilities",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Seeds of the two key sets (reproducible keys for tests only: a known seed is a known key).
KEY_SEED = 1_000_003
OTHER_KEY_SEED = 2_000_003
#: Magnitude of plaintext operands (scalars, matrices, polynomial coefficients) the suite uses.
PLAIN_BOUND = 2.0
#: Longest chain of squarings the suite tries before expecting the scheme to refuse.
MAX_CHAIN = 48
#: Operations in one random chain, and the largest plaintext factor or addend a chain uses (with
#: squarings, enough to reach any limit within a chain).
CHAIN_STEPS = 8
CHAIN_FACTOR = 64.0
#: The errors a scheme that tracks noise or magnitudes raises instead of a wrong decryption.
REFUSALS = (OverflowRiskError, NoiseBudgetExhaustedError)


def kit_settings(**changes: Any) -> Callable[[F], F]:
    """Hypothesis settings for kit tests: no deadline (HE is slow), fixtures are read-only."""
    return settings(
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
        **changes,
    )


def require_capabilities(scheme: HEScheme, *needed: Capability) -> None:
    """Skip the running test, naming the capability, unless the scheme declares all of ``needed``."""
    declared = type(scheme).capabilities
    for capability in needed:
        if capability not in declared:
            pytest.skip(f"{scheme.name} does not declare {capability.value}")


class SchemeFixtures:
    """The fixtures of the kit and small helpers every test class shares (see the module doc)."""

    @pytest.fixture(scope="class")
    @classmethod
    def scheme(cls) -> HEScheme:
        pytest.fail(
            f"{cls.__name__} must override the class-scoped `scheme` fixture with an "
            "instance of the scheme under test",
            pytrace=False,
        )

    @pytest.fixture(scope="class")
    @classmethod
    def keygen_options(cls) -> dict[str, Any]:
        return {}

    @pytest.fixture(scope="class")
    @classmethod
    def keys(cls, scheme: HEScheme, keygen_options: dict[str, Any]) -> KeySet:
        return scheme.keygen(seed=KEY_SEED, **keygen_options)

    @pytest.fixture(scope="class")
    @classmethod
    def other_keys(cls, scheme: HEScheme, keygen_options: dict[str, Any]) -> KeySet:
        return scheme.keygen(seed=OTHER_KEY_SEED, **keygen_options)

    @pytest.fixture(scope="class")
    @classmethod
    def tolerance(cls, scheme: HEScheme) -> float:
        pytest.fail(
            f"{cls.__name__} must override the class-scoped `tolerance` fixture: the "
            "absolute error of a fresh encryption, derived from the scheme's stated precision",
            pytrace=False,
        )

    @pytest.fixture(scope="class")
    @classmethod
    def op_tolerance(cls, tolerance: float) -> float:
        return 2.0 * tolerance

    @pytest.fixture(scope="class")
    @classmethod
    def value_range(cls) -> float:
        return 1.0

    @pytest.fixture(scope="class")
    @classmethod
    def max_depth(cls) -> int:
        return 2

    @pytest.fixture(scope="class")
    @classmethod
    def errors(cls, tolerance: float, op_tolerance: float) -> ErrorModel:
        return ErrorModel(float(tolerance), float(op_tolerance))

    # -- helpers a plugin may override ----------------------------------------------------------
    def encrypt(self, scheme: HEScheme, keys: KeySet, values: Any) -> EncryptedTensor:
        """Encrypt with the public key when the scheme has public-key encryption, else the secret key."""
        key = keys.public if Capability.ENCRYPT_PUBLIC in type(scheme).capabilities else keys.secret
        tensor: EncryptedTensor = scheme.encrypt_tensor(np.asarray(values), key)
        return tensor

    def decrypt(
        self, scheme: HEScheme, keys: KeySet, tensor: EncryptedTensor
    ) -> npt.NDArray[np.float64]:
        return np.asarray(scheme.decrypt_tensor(tensor, keys.secret), dtype=np.float64)

    def polyval_bound(self, errors: ErrorModel, x: Tracked, coefficients: list[float]) -> Tracked:
        """Error bound of ``polyval``; override for an evaluation order other than a power tree."""
        return errors.polyval(x, coefficients)


class BaseEncryptionTests(SchemeFixtures):
    """Dec(Enc(x)) ~ x with either key; the tensor keeps the shape and reports a scale."""

    @kit_settings()
    @given(data=st.data())
    def test_roundtrip_public_key(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        data: st.DataObject,
    ) -> None:
        require_capabilities(scheme, Capability.ENCRYPT_PUBLIC)
        x = data.draw(hst.real_arrays(hst.batch_shapes(), value_range), label="x")
        tensor = scheme.encrypt_tensor(x, keys.public)
        assert tuple(tensor.shape) == x.shape
        assert_within(self.decrypt(scheme, keys, tensor), errors.fresh(x), "Dec(Enc_pk(x))")

    @kit_settings()
    @given(data=st.data())
    def test_roundtrip_secret_key(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        data: st.DataObject,
    ) -> None:
        require_capabilities(scheme, Capability.ENCRYPT_SECRET)
        x = data.draw(hst.real_arrays(hst.batch_shapes(), value_range), label="x")
        tensor = scheme.encrypt_tensor(x, keys.secret)
        assert tuple(tensor.shape) == x.shape
        assert_within(self.decrypt(scheme, keys, tensor), errors.fresh(x), "Dec(Enc_sk(x))")

    def test_tensor_protocol(self, scheme: HEScheme, keys: KeySet) -> None:
        tensor = self.encrypt(scheme, keys, [0.5, -0.25, 1.0])
        assert isinstance(tensor, EncryptedTensor), "encrypt_tensor must return an EncryptedTensor"
        assert tensor.scale > 0
        decrypted = scheme.decrypt_tensor(tensor, keys.secret)
        assert isinstance(decrypted, np.ndarray) and decrypted.dtype == np.float64
        assert decrypted.shape == (3,)

    @kit_settings()
    @given(data=st.data())
    def test_integer_valued_input(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        data: st.DataObject,
    ) -> None:
        bound = max(int(value_range), 1)
        x = data.draw(hst.integer_arrays(hst.batch_shapes(), bound), label="x")
        tensor = self.encrypt(scheme, keys, x)
        assert_within(self.decrypt(scheme, keys, tensor), errors.fresh(x), "Dec(Enc(int x))")


class BaseArithmeticTests(SchemeFixtures):
    """Addition, subtraction and negation, with ciphertexts and plaintexts, with broadcasting."""

    @kit_settings()
    @given(data=st.data())
    def test_add_sub_neg(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        data: st.DataObject,
    ) -> None:
        require_capabilities(scheme, Capability.ADD)
        shape = data.draw(hst.batch_shapes(), label="shape")
        x = data.draw(hst.real_arrays(shape, value_range), label="x")
        y = data.draw(hst.real_arrays(shape, value_range), label="y")
        a, b = self.encrypt(scheme, keys, x), self.encrypt(scheme, keys, y)
        ta, tb = errors.fresh(x), errors.fresh(y)
        assert_within(self.decrypt(scheme, keys, a + b), errors.add(ta, tb), "Dec(a + b)")
        assert_within(self.decrypt(scheme, keys, a - b), errors.sub(ta, tb), "Dec(a - b)")
        assert_within(self.decrypt(scheme, keys, -a), errors.neg(ta), "Dec(-a)")
        assert_within(self.decrypt(scheme, keys, a + a), errors.add(ta, ta), "Dec(a + a)")
        assert_within(self.decrypt(scheme, keys, a - a), errors.sub(ta, ta), "Dec(a - a)")

    @kit_settings()
    @given(data=st.data())
    def test_add_broadcasts(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        data: st.DataObject,
    ) -> None:
        require_capabilities(scheme, Capability.ADD)
        left, right = data.draw(hst.broadcast_pairs(), label="shapes")
        x = data.draw(hst.real_arrays(left, value_range), label="x")
        y = data.draw(hst.real_arrays(right, value_range), label="y")
        result = self.encrypt(scheme, keys, x) + self.encrypt(scheme, keys, y)
        assert tuple(result.shape) == np.broadcast_shapes(left, right)
        expected = errors.add(errors.fresh(x), errors.fresh(y))
        assert_within(self.decrypt(scheme, keys, result), expected, "Dec(a + b) broadcast")

    @kit_settings()
    @given(data=st.data())
    def test_plaintext_add_sub(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        data: st.DataObject,
    ) -> None:
        require_capabilities(scheme, Capability.ADD)
        shape = data.draw(hst.batch_shapes(), label="shape")
        x = data.draw(hst.real_arrays(shape, value_range), label="x")
        p = data.draw(hst.real_arrays(shape, value_range), label="p")
        k = data.draw(hst.reals(value_range), label="k")
        a, ta = self.encrypt(scheme, keys, x), errors.fresh(x)
        assert_within(self.decrypt(scheme, keys, a + p), errors.add_plain(ta, p), "Dec(a + p)")
        assert_within(self.decrypt(scheme, keys, p + a), errors.add_plain(ta, p), "Dec(p + a)")
        assert_within(self.decrypt(scheme, keys, a - p), errors.add_plain(ta, -p), "Dec(a - p)")
        assert_within(
            self.decrypt(scheme, keys, p - a), errors.add_plain(errors.neg(ta), p), "Dec(p - a)"
        )
        assert_within(
            self.decrypt(scheme, keys, a + k),
            errors.add_plain(ta, np.full(shape, k)),
            "Dec(a + scalar)",
        )
        assert_within(
            self.decrypt(scheme, keys, k - a),
            errors.add_plain(errors.neg(ta), np.full(shape, k)),
            "Dec(scalar - a)",
        )


class BasePlainProductTests(SchemeFixtures):
    """Dec(k a) ~ k x for plaintext scalars and elementwise (over the batch) plaintext arrays."""

    @kit_settings()
    @given(data=st.data())
    def test_scalar_product(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        data: st.DataObject,
    ) -> None:
        require_capabilities(scheme, Capability.MUL_PLAIN)
        x = data.draw(hst.real_arrays(hst.batch_shapes(), value_range), label="x")
        k = data.draw(hst.reals(PLAIN_BOUND), label="k")
        a, ta = self.encrypt(scheme, keys, x), errors.fresh(x)
        k_array = np.full(x.shape, k)
        assert_within(
            self.decrypt(scheme, keys, a * k), errors.mul_plain(ta, k_array), "Dec(a * k)"
        )
        assert_within(
            self.decrypt(scheme, keys, k * a), errors.mul_plain(ta, k_array), "Dec(k * a)"
        )

    @kit_settings()
    @given(data=st.data())
    def test_integer_scalar_product(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        data: st.DataObject,
    ) -> None:
        require_capabilities(scheme, Capability.MUL_PLAIN)
        x = data.draw(hst.real_arrays(hst.batch_shapes(), value_range), label="x")
        k = data.draw(st.integers(-3, 3), label="k")
        a = self.encrypt(scheme, keys, x)
        expected = errors.mul_plain(errors.fresh(x), np.full(x.shape, float(k)))
        assert_within(self.decrypt(scheme, keys, a * k), expected, "Dec(a * int k)")

    @kit_settings()
    @given(data=st.data())
    def test_elementwise_product(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        data: st.DataObject,
    ) -> None:
        require_capabilities(scheme, Capability.MUL_PLAIN)
        shape = data.draw(hst.batch_shapes(), label="shape")
        x = data.draw(hst.real_arrays(shape, value_range), label="x")
        p = data.draw(hst.real_arrays(shape, PLAIN_BOUND), label="p")
        a, ta = self.encrypt(scheme, keys, x), errors.fresh(x)
        assert_within(self.decrypt(scheme, keys, a * p), errors.mul_plain(ta, p), "Dec(a * p)")
        assert_within(self.decrypt(scheme, keys, p * a), errors.mul_plain(ta, p), "Dec(p * a)")


class BaseCipherProductTests(SchemeFixtures):
    """Dec(a b) ~ x y for two ciphertexts (elementwise, broadcasting, chained to max_depth)."""

    @kit_settings()
    @given(data=st.data())
    def test_product(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        data: st.DataObject,
    ) -> None:
        require_capabilities(scheme, Capability.MUL_CIPHER)
        shape = data.draw(hst.batch_shapes(), label="shape")
        x = data.draw(hst.real_arrays(shape, value_range), label="x")
        y = data.draw(hst.real_arrays(shape, value_range), label="y")
        a, b = self.encrypt(scheme, keys, x), self.encrypt(scheme, keys, y)
        ta, tb = errors.fresh(x), errors.fresh(y)
        assert_within(self.decrypt(scheme, keys, a * b), errors.mul(ta, tb), "Dec(a * b)")
        assert_within(self.decrypt(scheme, keys, a * a), errors.mul(ta, ta), "Dec(a * a)")

    @kit_settings()
    @given(data=st.data())
    def test_product_broadcasts(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        data: st.DataObject,
    ) -> None:
        require_capabilities(scheme, Capability.MUL_CIPHER)
        left, right = data.draw(hst.broadcast_pairs(), label="shapes")
        x = data.draw(hst.real_arrays(left, value_range), label="x")
        y = data.draw(hst.real_arrays(right, value_range), label="y")
        result = self.encrypt(scheme, keys, x) * self.encrypt(scheme, keys, y)
        assert tuple(result.shape) == np.broadcast_shapes(left, right)
        assert_within(
            self.decrypt(scheme, keys, result),
            errors.mul(errors.fresh(x), errors.fresh(y)),
            "Dec(a * b) broadcast",
        )

    @kit_settings()
    @given(data=st.data())
    def test_product_chain(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        max_depth: int,
        data: st.DataObject,
    ) -> None:
        require_capabilities(scheme, Capability.MUL_CIPHER, Capability.ADD)
        if max_depth < 2:
            pytest.skip(f"max_depth {max_depth} < 2 for {scheme.name}")
        shape = data.draw(hst.batch_shapes(), label="shape")
        x, y, z = (data.draw(hst.real_arrays(shape, value_range), label=n) for n in "xyz")
        a, b, c = (self.encrypt(scheme, keys, v) for v in (x, y, z))
        ta, tb, tc = (errors.fresh(v) for v in (x, y, z))
        result = (a * b) * c + a * b
        expected = errors.add(errors.mul(errors.mul(ta, tb), tc), errors.mul(ta, tb))
        assert_within(self.decrypt(scheme, keys, result), expected, "Dec((a * b) * c + a * b)")


class BaseMatmulTests(SchemeFixtures):
    """Plaintext matrix @ encrypted batch, encrypted batch @ plaintext matrix, encrypted @ encrypted."""

    @kit_settings()
    @given(data=st.data())
    def test_plain_matrix_at_encrypted(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        data: st.DataObject,
    ) -> None:
        require_capabilities(scheme, Capability.MATMUL_PLAIN)
        inner = data.draw(st.integers(1, hst.MAX_SIDE), label="K")
        rows = data.draw(st.integers(1, hst.MAX_SIDE), label="J")
        trailing = data.draw(st.sampled_from([(), (1,), (3,)]), label="trailing")
        x = data.draw(hst.real_arrays((inner, *trailing), value_range), label="x")
        p = data.draw(hst.real_matrices(rows, inner, PLAIN_BOUND), label="P")
        result = p @ self.encrypt(scheme, keys, x)
        assert tuple(result.shape) == (rows, *trailing)
        assert_within(
            self.decrypt(scheme, keys, result),
            errors.matmul_plain_left(p, errors.fresh(x)),
            "Dec(P @ a)",
        )

    @kit_settings()
    @given(data=st.data())
    def test_encrypted_at_plain_matrix(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        data: st.DataObject,
    ) -> None:
        require_capabilities(scheme, Capability.MATMUL_PLAIN)
        inner = data.draw(st.integers(1, hst.MAX_SIDE), label="K")
        cols = data.draw(st.integers(1, hst.MAX_SIDE), label="J")
        leading = data.draw(st.sampled_from([(), (1,), (3,)]), label="leading")
        x = data.draw(hst.real_arrays((*leading, inner), value_range), label="x")
        p = data.draw(hst.real_matrices(inner, cols, PLAIN_BOUND), label="P")
        result = self.encrypt(scheme, keys, x) @ p
        assert tuple(result.shape) == (*leading, cols)
        assert_within(
            self.decrypt(scheme, keys, result),
            errors.matmul_plain_right(errors.fresh(x), p),
            "Dec(a @ P)",
        )

    @kit_settings()
    @given(data=st.data())
    def test_integer_matrix(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        data: st.DataObject,
    ) -> None:
        require_capabilities(scheme, Capability.MATMUL_PLAIN)
        inner = data.draw(st.integers(1, hst.MAX_SIDE), label="K")
        x = data.draw(hst.real_arrays((inner, 2), value_range), label="x")
        p = data.draw(hst.integer_matrices(3, inner, 3), label="P")
        result = p @ self.encrypt(scheme, keys, x)
        assert_within(
            self.decrypt(scheme, keys, result),
            errors.matmul_plain_left(p, errors.fresh(x)),
            "Dec(int P @ a)",
        )

    @kit_settings()
    @given(data=st.data())
    def test_encrypted_at_encrypted(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        data: st.DataObject,
    ) -> None:
        require_capabilities(scheme, Capability.MUL_CIPHER, Capability.ADD)
        inner = data.draw(st.integers(1, hst.MAX_SIDE), label="K")
        two_d = data.draw(st.booleans(), label="2-D")
        left_shape = (data.draw(st.integers(1, 3)), inner) if two_d else (inner,)
        right_shape = (inner, data.draw(st.integers(1, 3))) if two_d else (inner,)
        x = data.draw(hst.real_arrays(left_shape, value_range), label="x")
        y = data.draw(hst.real_arrays(right_shape, value_range), label="y")
        result = self.encrypt(scheme, keys, x) @ self.encrypt(scheme, keys, y)
        expected = errors.matmul(errors.fresh(x), errors.fresh(y))
        assert tuple(result.shape) == expected.shape
        assert_within(self.decrypt(scheme, keys, result), expected, "Dec(a @ b)")


class BaseIndexingTests(SchemeFixtures):
    """Batch-shape operations: sum(axis), indexing, reshape, transpose, scatter_add."""

    @kit_settings()
    @given(data=st.data())
    def test_sum(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        data: st.DataObject,
    ) -> None:
        require_capabilities(scheme, Capability.ADD)
        x = data.draw(hst.real_arrays(hst.batch_shapes(), value_range), label="x")
        a, ta = self.encrypt(scheme, keys, x), errors.fresh(x)
        for axis in sorted({None, 0, x.ndim - 1}, key=str):
            assert_within(
                self.decrypt(scheme, keys, a.sum(axis=axis)),
                errors.sum(ta, axis),
                f"Dec(a.sum(axis={axis}))",
            )

    @kit_settings()
    @given(data=st.data())
    def test_indexing(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        data: st.DataObject,
    ) -> None:
        x = data.draw(hst.real_arrays(hst.batch_shapes(), value_range), label="x")
        a, ta = self.encrypt(scheme, keys, x), errors.fresh(x)
        n = x.shape[0]
        i = data.draw(st.integers(-n, n - 1), label="i")
        rows = data.draw(hst.index_arrays(n), label="rows")
        assert_within(self.decrypt(scheme, keys, a[i]), ta[i], "Dec(a[i])")
        assert_within(self.decrypt(scheme, keys, a[1:]), ta[1:], "Dec(a[1:])")
        assert_within(self.decrypt(scheme, keys, a[rows]), ta[rows], "Dec(a[rows])")

    @kit_settings()
    @given(data=st.data())
    def test_reshape_transpose(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        data: st.DataObject,
    ) -> None:
        x = data.draw(hst.real_arrays(hst.batch_shapes(), value_range), label="x")
        a, ta = self.encrypt(scheme, keys, x), errors.fresh(x)
        assert_within(
            self.decrypt(scheme, keys, a.reshape(-1)), ta.reshape(-1), "Dec(a.reshape(-1))"
        )
        assert_within(
            self.decrypt(scheme, keys, a.transpose()), ta.transpose(), "Dec(a.transpose())"
        )

    @kit_settings()
    @given(data=st.data())
    def test_scatter_add(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        data: st.DataObject,
    ) -> None:
        require_capabilities(scheme, Capability.ADD)
        shape = data.draw(hst.batch_shapes(), label="shape")
        x = data.draw(hst.real_arrays(shape, value_range), label="x")
        rows = data.draw(hst.index_arrays(shape[0], min_count=1), label="rows")
        y = data.draw(hst.real_arrays((rows.size, *shape[1:]), value_range), label="values")
        result = self.encrypt(scheme, keys, x).scatter_add(rows, self.encrypt(scheme, keys, y))
        expected = errors.scatter_add(errors.fresh(x), rows, errors.fresh(y))
        assert_within(self.decrypt(scheme, keys, result), expected, "Dec(a.scatter_add(rows, b))")


class BasePolynomialTests(SchemeFixtures):
    """Dec(polyval(a, c)) ~ sum c_i x**i up to degree 2**max_depth (at most 4)."""

    @kit_settings()
    @given(data=st.data())
    def test_polyval(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        max_depth: int,
        data: st.DataObject,
    ) -> None:
        require_capabilities(scheme, Capability.POLYNOMIAL)
        max_degree = min(2**max_depth, 4)
        x = data.draw(hst.real_arrays(hst.batch_shapes(), value_range), label="x")
        coefficients = data.draw(hst.coefficients(max_degree, PLAIN_BOUND), label="coefficients")
        result = self.encrypt(scheme, keys, x).polyval(coefficients)
        expected = self.polyval_bound(errors, errors.fresh(x), coefficients)
        assert_within(
            self.decrypt(scheme, keys, result), expected, f"Dec(polyval(a, {coefficients}))"
        )


class BaseBatchTests(SchemeFixtures):
    """A batch of n items gives what n separate single-item encryptions give, op by op."""

    @kit_settings()
    @given(data=st.data())
    def test_batched_equals_itemwise(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        data: st.DataObject,
    ) -> None:
        require_capabilities(scheme, Capability.ADD)
        caps = type(scheme).capabilities
        n = data.draw(st.integers(2, hst.MAX_SIDE), label="n")
        x = data.draw(hst.real_arrays((n,), value_range), label="x")
        y = data.draw(hst.real_arrays((n,), value_range), label="y")
        p = data.draw(hst.real_arrays((n,), PLAIN_BOUND), label="p")
        operations: list[tuple[str, Callable[..., Any], Callable[..., Tracked]]] = [
            ("a + b", lambda a, b, q: a + b, lambda ta, tb, q: errors.add(ta, tb)),
        ]
        if Capability.MUL_PLAIN in caps:
            operations.append(
                ("a * p", lambda a, b, q: a * q, lambda ta, tb, q: errors.mul_plain(ta, q))
            )
        if Capability.MUL_CIPHER in caps:
            operations.append(
                ("a * b", lambda a, b, q: a * b, lambda ta, tb, q: errors.mul(ta, tb))
            )
        batch_a, batch_b = self.encrypt(scheme, keys, x), self.encrypt(scheme, keys, y)
        items = [
            (self.encrypt(scheme, keys, x[i : i + 1]), self.encrypt(scheme, keys, y[i : i + 1]))
            for i in range(n)
        ]
        for name, operation, bound in operations:
            batched = self.decrypt(scheme, keys, operation(batch_a, batch_b, p))
            expected = bound(errors.fresh(x), errors.fresh(y), p)
            for i, (item_a, item_b) in enumerate(items):
                single = self.decrypt(scheme, keys, operation(item_a, item_b, p[i : i + 1]))
                # both approximate the same exact value, each within its bound
                limit = 2.0 * expected.error[i] + 1e-12 * (1.0 + expected.magnitude[i])
                assert single.shape == (1,)
                assert abs(float(batched[i]) - float(single[0])) <= limit, (
                    f"{name}: batch item {i} decrypted {batched[i]!r}, alone {single[0]!r}; "
                    f"they may differ by at most {limit:.3g}"
                )


class BaseErrorTests(SchemeFixtures):
    """Bad input raises the framework's errors: wrong keys, NaN/inf, shape mismatch, bad dtypes."""

    def test_decrypt_with_wrong_key_raises(
        self, scheme: HEScheme, keys: KeySet, other_keys: KeySet
    ) -> None:
        tensor = self.encrypt(scheme, keys, [0.5, -1.0])
        with pytest.raises(KeyMismatchError):
            scheme.decrypt_tensor(tensor, other_keys.secret)

    def test_mixing_keys_in_addition_raises(
        self, scheme: HEScheme, keys: KeySet, other_keys: KeySet
    ) -> None:
        require_capabilities(scheme, Capability.ADD)
        a = self.encrypt(scheme, keys, [0.5, -1.0])
        b = self.encrypt(scheme, other_keys, [0.25, 1.0])
        with pytest.raises(KeyMismatchError):
            _ = a + b

    def test_mixing_keys_in_product_raises(
        self, scheme: HEScheme, keys: KeySet, other_keys: KeySet
    ) -> None:
        require_capabilities(scheme, Capability.MUL_CIPHER)
        a = self.encrypt(scheme, keys, [0.5, -1.0])
        b = self.encrypt(scheme, other_keys, [0.25, 1.0])
        with pytest.raises(KeyMismatchError):
            _ = a * b

    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    def test_non_finite_input_raises(self, scheme: HEScheme, keys: KeySet, bad: float) -> None:
        with pytest.raises(InputError):
            self.encrypt(scheme, keys, [1.0, bad, 0.5])

    @pytest.mark.parametrize("bad", [np.nan, np.inf])
    def test_non_finite_plaintext_operand_raises(
        self, scheme: HEScheme, keys: KeySet, bad: float
    ) -> None:
        a = self.encrypt(scheme, keys, [1.0, 0.5])
        checked = 0
        caps = type(scheme).capabilities
        if Capability.ADD in caps:
            with pytest.raises(InputError):
                _ = a + np.array([bad, 1.0])
            checked += 1
        if Capability.MUL_PLAIN in caps:
            with pytest.raises(InputError):
                _ = a * bad
            checked += 1
        if Capability.MATMUL_PLAIN in caps:
            with pytest.raises(InputError):
                _ = np.array([[bad, 1.0]]) @ a
            checked += 1
        if not checked:
            pytest.skip(f"{scheme.name} declares no operation with plaintext operands")

    @pytest.mark.parametrize(
        "bad",
        [np.array([1.0, None], dtype=object), np.array(["1.0", "2"]), np.array([1 + 2j])],
        ids=["object", "str", "complex"],
    )
    def test_non_numeric_input_raises(self, scheme: HEScheme, keys: KeySet, bad: Any) -> None:
        key = keys.public if Capability.ENCRYPT_PUBLIC in type(scheme).capabilities else keys.secret
        with pytest.raises(InputError):
            scheme.encrypt_tensor(bad, key)

    def test_shape_mismatch_in_addition_raises(self, scheme: HEScheme, keys: KeySet) -> None:
        require_capabilities(scheme, Capability.ADD)
        a = self.encrypt(scheme, keys, [1.0, 2.0])
        b = self.encrypt(scheme, keys, [1.0, 2.0, 3.0])
        with pytest.raises(InputError):
            _ = a + b

    def test_shape_mismatch_with_plaintext_raises(self, scheme: HEScheme, keys: KeySet) -> None:
        require_capabilities(scheme, Capability.ADD, Capability.MUL_PLAIN)
        a = self.encrypt(scheme, keys, [1.0, 2.0])
        with pytest.raises(InputError):
            _ = a + np.array([1.0, 2.0, 3.0])
        with pytest.raises(InputError):
            _ = a * np.array([1.0, 2.0, 3.0])

    def test_shape_mismatch_in_product_raises(self, scheme: HEScheme, keys: KeySet) -> None:
        require_capabilities(scheme, Capability.MUL_CIPHER)
        a = self.encrypt(scheme, keys, [1.0, 2.0])
        b = self.encrypt(scheme, keys, [1.0, 2.0, 3.0])
        with pytest.raises(InputError):
            _ = a * b

    def test_shape_mismatch_in_matmul_raises(self, scheme: HEScheme, keys: KeySet) -> None:
        require_capabilities(scheme, Capability.MATMUL_PLAIN)
        a = self.encrypt(scheme, keys, [1.0, 2.0])
        with pytest.raises(InputError):
            _ = np.ones((2, 3)) @ a
        with pytest.raises(InputError):
            _ = a @ np.ones((3, 2))


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

    @kit_settings(max_examples=5)
    @given(data=st.data())
    def test_repeated_squaring_is_right_or_refused(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, data: st.DataObject
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
        data: st.DataObject,
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

    @kit_settings()
    @given(data=st.data())
    def test_random_chains_are_right_or_refused(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        data: st.DataObject,
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
        assert_within(
            self.decrypt(scheme, keys, tensor + half),
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
            assert_within(
                self.decrypt(scheme, keys, inside * inside),
                errors.mul(tracked_inside, tracked_inside),
                "Dec(a * a) at a quarter of the limit",
            )


class BaseRefreshTests(SchemeFixtures):
    """The owner's refresh returns a fresh encryption of the same values."""

    @kit_settings()
    @given(data=st.data())
    def test_refresh(
        self,
        scheme: HEScheme,
        keys: KeySet,
        errors: ErrorModel,
        value_range: float,
        data: st.DataObject,
    ) -> None:
        require_capabilities(scheme, Capability.REFRESH, Capability.MUL_PLAIN)
        x = data.draw(hst.real_arrays(hst.batch_shapes(), value_range), label="x")
        a = self.encrypt(scheme, keys, x)
        worn = a * 0.5
        tracked = errors.mul_plain(errors.fresh(x), np.full(x.shape, 0.5))
        refreshed = scheme.refresh(worn, keys)
        assert tuple(refreshed.shape) == x.shape
        # re-encoding the decrypted value adds at most one fresh-encryption error
        expected = Tracked(tracked.value, tracked.error + errors.tolerance, tracked.magnitude)
        assert_within(self.decrypt(scheme, keys, refreshed), expected, "Dec(refresh(a * 0.5))")
        if Capability.NOISE_TRACKING in type(scheme).capabilities:
            # a refresh is a fresh encryption: its budget is that of one (the bound may depend on
            # the values by a fraction of a bit)
            assert refreshed.noise_budget >= a.noise_budget - 1.0


class SchemeIdentityTests(
    BaseEncryptionTests,
    BaseArithmeticTests,
    BasePlainProductTests,
    BaseCipherProductTests,
    BaseMatmulTests,
    BaseIndexingTests,
    BasePolynomialTests,
    BaseBatchTests,
    BaseErrorTests,
    BaseNoiseTests,
    BaseMagnitudeTests,
    BaseRefreshTests,
):
    """Every identity of the kit. Subclass it (or a selection of the Base* classes) in a plugin."""
