"""Backend conformance: a backend gives the NumPy backend's results, bit for bit.

An array backend (``hennframework.backends`` entry point, :class:`~hennframework.backend.ArrayBackend`)
is checked by subclassing :class:`BaseBackendTests` and overriding one class-scoped fixture,
``backend``, that returns an instance::

    import pytest
    from hennframework.testing import BaseBackendTests
    from my_backend import MyBackend

    class TestMyBackend(BaseBackendTests):
        @pytest.fixture(scope="class")
        @classmethod
        def backend(cls):
            return MyBackend()

Integer results are compared exactly, against the NumPy backend (the ``reference`` fixture) and
against Python integers reduced modulo 2**64 (the exactness contract of
:mod:`hennframework.backend`); float results bit for bit where the operands make them exact. The
integer-vector scheme is then run end to end on the backend with fixed seeds, and its ciphertexts
must be identical word for word to the NumPy backend's (noise bounds, float64 sums, up to the
summation order). Nothing is skipped: a backend that cannot run here fails
``test_satisfies_protocol`` with its own reason.
"""

from __future__ import annotations

import warnings
import zlib
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hennframework import registry
from hennframework.backend import ArrayBackend
from hennframework.testing.base.base import missing_fixture

__all__ = [
    "BaseBackendTests",
    "assert_same",
    "host",
    "python_matmul_mod",
    "scheme_workload",
    "signed",
    "wide_int64",
]

#: What :func:`scheme_workload` returns: ``name -> (ciphertext data, noise bounds, decryption)``.
Workload = dict[str, tuple[Any, Any, npt.NDArray[Any]]]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MOD = 2**64


# -- helpers ---------------------------------------------------------------------------------
def wide_int64(rng: np.random.Generator, shape: tuple[int, ...]) -> npt.NDArray[np.int64]:
    """int64 values that stress exactness: full range, near +-2**62, extremes, small."""
    full = rng.integers(INT64_MIN, INT64_MAX, size=shape, dtype=np.int64, endpoint=True)
    near = (rng.choice([-1, 1], size=shape) * (2**62 - rng.integers(0, 2**20, size=shape))).astype(
        np.int64
    )
    small = rng.integers(-5, 6, size=shape, dtype=np.int64)
    pick = rng.integers(0, 4, size=shape)
    out = np.where(pick == 0, full, np.where(pick == 1, near, small))
    flat = out.reshape(-1)
    if flat.size >= 2:
        flat[0], flat[-1] = INT64_MIN, INT64_MAX
    return out.astype(np.int64)


def signed(value: int) -> int:
    """Python int reduced modulo 2**64 into int64 range."""
    value %= MOD
    return value - MOD if value >= 2**63 else value


def python_matmul_mod(left: npt.NDArray[Any], right: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Exact ``left @ right`` with Python integers, reduced modulo 2**64 (the contract)."""
    exact = np.matmul(left.astype(object), right.astype(object))
    if not isinstance(exact, np.ndarray):
        return np.array(signed(int(exact)), dtype=np.int64)
    wrapped = np.vectorize(lambda v: signed(int(v)), otypes=[np.int64])(exact)
    return np.asarray(wrapped, dtype=np.int64)


def host(backend: ArrayBackend, array: Any) -> npt.NDArray[Any]:
    result = backend.to_numpy(array)
    assert isinstance(result, np.ndarray)
    return result


def assert_same(actual: npt.NDArray[Any], expected: npt.NDArray[Any]) -> None:
    """Same shape, dtype and bytes (bit-identical, NaN payloads and -0.0 included)."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    assert np.ascontiguousarray(actual).tobytes() == np.ascontiguousarray(expected).tobytes()


def assert_index_add(
    backend: ArrayBackend, target: npt.NDArray[Any], indices: Any, values: npt.NDArray[Any]
) -> npt.NDArray[Any]:
    """``backend.index_add`` on ``target`` is bit-identical to ``numpy.add.at``; returns the sum."""
    expected = target.copy()
    np.add.at(expected, indices, values)
    device = backend.asarray(target)
    backend.index_add(device, backend.asarray(indices), backend.asarray(values))
    assert_same(host(backend, device), expected)
    return expected


# -- exact integer matrix products -------------------------------------------------------------
MATMUL_SHAPES = [
    ((3, 4), (4, 5)),
    ((1, 1), (1, 1)),
    ((7, 300), (300, 2)),
    ((2, 3, 6), (6, 4)),  # batched left, 2-D right
    ((5, 6), (2, 6, 3)),  # 2-D left, batched right
    ((2, 3, 6), (2, 6, 3)),  # batched both
    ((4,), (4, 3)),  # vector @ matrix
    ((3, 4), (4,)),  # matrix @ vector
    ((4,), (4,)),  # inner product
    ((3, 0), (0, 2)),  # empty inner dimension
]


# -- the integer-vector scheme end to end ----------------------------------------------------
SEED = 20240611
G = np.array([[1, -2, 0, 3, 1, 0, -1, 2], [0, 1, 1, -1, 2, 2, 0, 1], [4, 0, 0, 0, 0, 0, 0, -4]])


def scheme_workload(backend: ArrayBackend) -> Workload:
    """Fixed-seed keys, encryptions and operations; ``name -> (data, noise, decryption)``."""
    from hennframework.schemes.integer_vector import IntegerVectorScheme

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheme = IntegerVectorScheme("default", backend=backend)
    keys = scheme.keygen(seed=SEED, max_dim=8, dims=(1, 8), products=(1, 8))
    scheme.add_dot_key(keys, 8)
    scheme.add_linear_key(keys, G)
    other = scheme.keygen(seed=SEED + 1, max_dim=8, dims=(8,), products=())
    switch = scheme.make_switch_key(keys, other, dim=8)

    x = (np.arange(24).reshape(3, 8) * 37 % 201 - 100).astype(np.int64)
    y = (np.arange(24).reshape(3, 8) * 53 % 157 - 80).astype(np.int64)
    cx = scheme.encrypt(x, keys.secret, dim=8, seed=1)  # secret-key encryption
    cy = scheme.encrypt(y, keys.public, dim=8, seed=2)  # public-key encryption
    reals = np.array([[0.5, -1.25, 2.0], [3.5, 0.0, -0.75], [1.0, 1.5, -2.0], [0.25, -3.0, 4.0]])
    plain_real = np.array([[1.5, -0.5], [0.25, 2.0], [-1.0, 0.125]])
    plain_int = np.array([[1, 2, 0, -1], [3, 0, -2, 1]])
    t = scheme.encrypt_tensor(reals, keys.public, seed=3)

    results: dict[str, tuple[Any, Any, Any]] = {}

    def record(name: str, ciphertext: Any, secret: Any) -> None:
        results[name] = (ciphertext.data, ciphertext.noise, scheme.decrypt(ciphertext, secret))

    record("encrypt-secret", cx, keys)
    record("encrypt-public", cy, keys)
    record("add", cx + cy, keys)
    record("product", cx * cy, keys)
    record("dot", cx.dot(cy), keys)
    record("linear", cx.linear_transform(G), keys)
    record("switch", cx.switch_key(switch), other)
    record("tensor-product", t * t, keys)
    record("matmul-plain-right", t @ plain_real, keys)
    record("matmul-plain-left", plain_int @ t, keys)
    record("scatter-add", t.scatter_add([0, 2, 0], t[np.array([1, 2, 3])]), keys)
    record("sum", t.sum(axis=0), keys)
    expected = {
        "encrypt-secret": x,
        "encrypt-public": y,
        "add": x + y,
        "product": x * y,
        "dot": (x * y).sum(axis=1, keepdims=True),
        "linear": x @ G.T,
        "switch": x,
    }
    for name, plain in expected.items():
        assert np.array_equal(results[name][2], plain), name
    return results


class BaseBackendTests:
    """Every check of a backend against the NumPy reference. Override the ``backend`` fixture."""

    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls) -> ArrayBackend:
        missing_fixture(cls, "backend", "with an instance of the backend under test")

    @pytest.fixture(scope="class")
    @classmethod
    def reference(cls) -> ArrayBackend:
        """The NumPy backend: the reference every backend must match bit for bit."""
        return registry.get_backend("numpy")

    @pytest.fixture(scope="class")
    @classmethod
    def reference_workload(cls, reference: ArrayBackend) -> Workload:
        return scheme_workload(reference)

    # -- interface, creation, conversion ---------------------------------------------------------
    def test_satisfies_protocol(self, backend: ArrayBackend) -> None:
        assert isinstance(backend, ArrayBackend)
        ok, why = backend.is_available()
        assert ok, why
        assert isinstance(backend.describe(), str) and backend.describe()
        synchronize: Any = backend.synchronize
        assert synchronize() is None

    def test_asarray_and_to_numpy_round_trip(self, backend: ArrayBackend) -> None:
        rng = np.random.default_rng(1)
        values = wide_int64(rng, (3, 5))
        device = backend.asarray(values)
        assert_same(host(backend, device), values)
        again = backend.asarray(device)  # an array of the backend itself is accepted
        assert_same(host(backend, again), values)
        assert_same(
            host(backend, backend.asarray([[1, 2], [3, 4]], dtype="int64")),
            np.array([[1, 2], [3, 4]], dtype=np.int64),
        )
        floats = np.array([0.5, -0.0, np.inf, 1e300])
        assert_same(host(backend, backend.asarray(floats)), floats)
        assert_same(
            host(backend, backend.asarray(values, dtype="float64")), values.astype(np.float64)
        )
        # a NumPy array passed to to_numpy comes back unchanged
        assert_same(host(backend, backend.asarray(values[:, 1])), values[:, 1].copy())

    def test_zeros(self, backend: ArrayBackend) -> None:
        assert_same(host(backend, backend.zeros((2, 3))), np.zeros((2, 3), dtype=np.int64))
        assert_same(host(backend, backend.zeros([4], dtype="float64")), np.zeros(4))
        assert_same(host(backend, backend.zeros((0, 5))), np.zeros((0, 5), dtype=np.int64))

    def test_concatenate_and_stack(self, backend: ArrayBackend, reference: ArrayBackend) -> None:
        rng = np.random.default_rng(2)
        parts = [wide_int64(rng, (2, 3)) for _ in range(3)]
        device = [backend.asarray(p) for p in parts]
        for axis in (0, 1, -1):
            assert_same(
                host(backend, backend.concatenate(device, axis=axis)),
                reference.concatenate(parts, axis=axis),
            )
            assert_same(
                host(backend, backend.stack(device, axis=axis)), reference.stack(parts, axis=axis)
            )

    def test_broadcast_to_and_moveaxis(
        self, backend: ArrayBackend, reference: ArrayBackend
    ) -> None:
        rng = np.random.default_rng(3)
        values = wide_int64(rng, (3, 1, 4))
        device = backend.asarray(values)
        assert_same(
            host(backend, backend.broadcast_to(device, (2, 3, 5, 4))),
            reference.broadcast_to(values, (2, 3, 5, 4)),
        )
        for source, destination in ((0, -1), (-1, 0), (1, 2)):
            assert_same(
                host(backend, backend.moveaxis(device, source, destination)),
                reference.moveaxis(values, source, destination),
            )

    @pytest.mark.parametrize("magnitude", ["wide", "small-left", "small-right", "tiny"])
    @pytest.mark.parametrize(("left_shape", "right_shape"), MATMUL_SHAPES)
    def test_matmul_int_wrap_exact_modulo_2_64(
        self,
        backend: ArrayBackend,
        reference: ArrayBackend,
        left_shape: tuple[int, ...],
        right_shape: tuple[int, ...],
        magnitude: str,
    ) -> None:
        rng = np.random.default_rng(zlib.crc32(repr((left_shape, right_shape, magnitude)).encode()))
        left = wide_int64(rng, left_shape)
        right = wide_int64(rng, right_shape)
        if magnitude in ("small-left", "tiny"):
            left = rng.integers(-128, 129, size=left_shape, dtype=np.int64)
        if magnitude in ("small-right", "tiny"):
            right = rng.integers(-(2**20), 2**20, size=right_shape, dtype=np.int64)
        expected = python_matmul_mod(left, right)
        result = host(
            backend, backend.matmul_int_wrap(backend.asarray(left), backend.asarray(right))
        )
        assert_same(result, expected)
        assert_same(reference.matmul_int_wrap(left, right), expected)

    @settings(max_examples=25, deadline=None)
    @given(data=st.data())
    def test_matmul_int_wrap_property(self, backend: ArrayBackend, data: st.DataObject) -> None:
        rows, inner, cols = (
            data.draw(st.integers(1, 5), label=n) for n in ("rows", "inner", "cols")
        )
        elements = st.one_of(
            st.integers(INT64_MIN, INT64_MAX),
            st.integers(-3, 3),
            st.sampled_from([INT64_MIN, INT64_MAX]),
        )
        left = data.draw(hnp.arrays(np.int64, (rows, inner), elements=elements), label="left")
        right = data.draw(hnp.arrays(np.int64, (inner, cols), elements=elements), label="right")
        result = host(
            backend, backend.matmul_int_wrap(backend.asarray(left), backend.asarray(right))
        )
        assert_same(result, python_matmul_mod(left, right))

    @pytest.mark.parametrize("inner", [1, 9, 72, 648, 4104])
    @pytest.mark.parametrize("bound", [1, 128, 2**20, 2**40])
    def test_matmul_small_left_exact(
        self, backend: ArrayBackend, reference: ArrayBackend, inner: int, bound: int
    ) -> None:
        rng = np.random.default_rng(inner * 7 + bound.bit_length())
        rows, cols = (3, 2) if inner > 1000 else (5, 4)
        small = rng.integers(-bound, bound + 1, size=(rows, inner), dtype=np.int64)
        small[0, 0] = -bound  # reach the bound exactly
        right = wide_int64(rng, (inner, cols))
        expected = python_matmul_mod(small, right)
        result = backend.matmul_small_left(backend.asarray(small), backend.asarray(right), bound)
        assert_same(host(backend, result), expected)
        assert_same(reference.matmul_small_left(small, right, bound), expected)

    def test_matmul_small_left_batched_digits(self, backend: ArrayBackend) -> None:
        """Gadget digits with batch axes, as key switching passes them."""
        rng = np.random.default_rng(11)
        small = rng.integers(-128, 129, size=(2, 3, 16), dtype=np.int64)
        right = wide_int64(rng, (16, 5))
        result = backend.matmul_small_left(backend.asarray(small), backend.asarray(right), 128)
        assert_same(host(backend, result), python_matmul_mod(small, right))

    def test_matmul_float(self, backend: ArrayBackend) -> None:
        rng = np.random.default_rng(12)
        left = rng.integers(-1000, 1000, size=(4, 6)).astype(np.float64)
        right = rng.integers(-1000, 1000, size=(6, 3)).astype(np.float64)
        # integer-valued operands: the float product is exact, so every BLAS must agree
        result = host(backend, backend.matmul_float(backend.asarray(left), backend.asarray(right)))
        assert_same(result, left @ right)

    # -- reductions and elementwise --------------------------------------------------------------
    @pytest.mark.parametrize(
        ("values", "expected"),
        [
            (np.array([INT64_MIN, 5], dtype=np.int64), 2**63),
            (np.array([[3, -7], [INT64_MAX, 0]], dtype=np.int64), INT64_MAX),
            (np.array([-(2**62), 2**62 - 1], dtype=np.int64), 2**62),
            (np.zeros((0, 3), dtype=np.int64), 0),
            (np.array([2**64 - 1], dtype=np.uint64), 2**64 - 1),
            (np.array([0.25, -7.0]), 7),
            (np.array([-2.5, 1.0]), 3),
            (np.array([True, False]), 1),
        ],
    )
    def test_abs_max(
        self, backend: ArrayBackend, reference: ArrayBackend, values: Any, expected: int
    ) -> None:
        result = backend.abs_max(backend.asarray(values))
        assert type(result) is int
        assert result == expected == reference.abs_max(values)

    # -- scatter ---------------------------------------------------------------------------------
    def test_index_add_int64_repeats_wrap(self, backend: ArrayBackend) -> None:
        rng = np.random.default_rng(14)
        target = wide_int64(rng, (5, 3))
        indices = np.array([0, 4, 0, 0, 2, -1, 4], dtype=np.int64)
        values = wide_int64(rng, (7, 3))
        values[:3] = INT64_MAX  # repeated huge values: sums wrap modulo 2**64
        assert_index_add(backend, target, indices, values)

    def test_index_add_float_matches_numpy_order(self, backend: ArrayBackend) -> None:
        """Repeated float indices are added in order of appearance, as numpy.add.at does."""
        target = np.zeros((3, 2))
        indices = np.array([1, 0, 1, 1, 2, 1, 0], dtype=np.int64)
        column = np.array([1e16, 0.5, 1.0, -1e16, 3.0, 1.0, 2.0**-30])
        values = np.stack([column, column[::-1] * 3.0], axis=1)
        expected = assert_index_add(backend, target, indices, values)
        # the order matters for these values (a different order rounds differently)
        assert expected[1, 0] != (1e16 - 1e16) + 1.0 + 1.0

    def test_index_add_float_order_on_long_index_lists(self, backend: ArrayBackend) -> None:
        """Hundreds of indices with repeats: still NumPy's order (any unstable sort would show)."""
        rng = np.random.default_rng(16)
        indices = rng.integers(0, 40, size=500)
        values = rng.standard_normal((500, 2)) * 10.0 ** rng.integers(-12, 12, (500, 1))
        target = rng.standard_normal((40, 2))
        assert_index_add(backend, target, indices, values)

    def test_index_add_many_repeats(self, backend: ArrayBackend) -> None:
        """More repeats than the device passes allow (host fallback for floats)."""
        rng = np.random.default_rng(15)
        indices = np.concatenate([np.zeros(50, dtype=np.int64), np.arange(4), np.full(40, 3)])
        rng.shuffle(indices)
        values = rng.standard_normal(indices.size) * 10.0 ** rng.integers(-8, 8, indices.size)
        target = rng.standard_normal(4)
        assert_index_add(backend, target, indices, values)
        assert_index_add(backend, wide_int64(rng, (4,)), indices, wide_int64(rng, (indices.size,)))

    def test_index_add_other_index_forms(self, backend: ArrayBackend) -> None:
        target = np.arange(12, dtype=np.int64).reshape(4, 3)
        device = backend.asarray(target.copy())
        backend.index_add(device, 2, backend.asarray(np.array([1, 1, 1], dtype=np.int64)))
        backend.index_add(device, slice(0, 2), backend.asarray(np.ones((2, 3), dtype=np.int64)))
        mask = np.array([True, False, False, True])
        backend.index_add(
            device, backend.asarray(mask), backend.asarray(np.full((2, 3), 10, dtype=np.int64))
        )
        backend.index_add(
            device,
            backend.asarray(np.zeros(0, dtype=np.int64)),
            backend.asarray(np.zeros((0, 3), dtype=np.int64)),
        )
        expected = target.copy()
        expected[2] += 1
        expected[0:2] += 1
        expected[mask] += 10
        assert_same(host(backend, device), expected)

    def test_index_add_out_of_range_raises(self, backend: ArrayBackend) -> None:
        device = backend.asarray(np.zeros((3, 2), dtype=np.int64))
        ones = backend.asarray(np.ones((2, 2), dtype=np.int64))
        with pytest.raises(IndexError):
            backend.index_add(device, backend.asarray(np.array([0, 3])), ones)
        with pytest.raises(IndexError):
            backend.index_add(device, backend.asarray(np.array([-4, 0])), ones)
        assert_same(host(backend, device), np.zeros((3, 2), dtype=np.int64))

    def test_scheme_bit_identical(
        self, backend: ArrayBackend, reference_workload: Workload
    ) -> None:
        """Same keys and inputs => the same ciphertext words and decryptions as the NumPy backend."""
        results = scheme_workload(backend)
        assert results.keys() == reference_workload.keys()
        for name, (data, noise, decrypted) in results.items():
            ref_data, ref_noise, ref_decrypted = reference_workload[name]
            assert_same(host(backend, data), ref_data)
            assert_same(np.asarray(decrypted), ref_decrypted)
            # noise bounds are float64 sums: equal up to the summation order of the device
            np.testing.assert_allclose(
                host(backend, noise), ref_noise, rtol=1e-12, atol=0.0, err_msg=name
            )
