"""The compiled kernels compute what the NumPy paths compute, bit for bit, at the edges.

Each kernel is compared with exact Python integers (the words) and with the NumPy path it
replaces (the float noise norms and bounds): values next to 2**62, wrapping key products,
rounding ties of both signs, repeated and negative row indices, empty runs, NaN bounds. Then
whole operations and training steps are compared with the kernels on and off. Bad input to
a kernel raises a Python error; it never reads or writes out of bounds.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hennframework.schemes.integer_vector import IntegerVectorScheme, native
from hennframework.schemes.integer_vector.ciphertext import (
    FAILURE_PROBABILITY_BITS,
    SAFETY,
    Ciphertext,
    tail_factor,
)
from hennframework.schemes.integer_vector.keys import KeySwitchKey
from hennframework.testing.integer_vector import ciphertext_fields

pytestmark = [
    pytest.mark.filterwarnings("ignore::hennframework.exceptions.InsecureParametersWarning"),
    pytest.mark.skipif(not native.built(), reason=f"compiled kernels: {native.status()}"),
]

#: These tests turn the kernels on and off themselves (``tests/schemes/conftest.py``).
COMPARES_BOTH_PATHS = True

LIMIT = (1 << 62) - 1
#: Values a ciphertext coefficient can take, the edges often.
coefficients = st.one_of(
    st.integers(-LIMIT, LIMIT),
    st.sampled_from([0, 1, -1, LIMIT, -LIMIT, 1 << 61, -(1 << 61), 255, -256, 127, -128]),
)


def both(function: Callable[[], Any]) -> tuple[Any, Any]:
    """``function()`` with the kernels, then without."""
    with_kernels = function()
    with native.disabled():
        without = function()
    return with_kernels, without


def same_bits(left: Any, right: Any) -> bool:
    """The same types, shapes and bytes (floats compared bit for bit, NaNs included)."""
    if isinstance(left, tuple | list):
        return len(left) == len(right) and all(map(same_bits, left, right))
    if isinstance(left, Ciphertext):
        return ciphertext_fields(left) == ciphertext_fields(right)
    return (
        type(left) is type(right)
        and np.shape(left) == np.shape(right)
        and np.asarray(left).dtype == np.asarray(right).dtype
        and np.asarray(left).tobytes() == np.asarray(right).tobytes()
    )


def round_half_away(numerator: int, divisor: int) -> int:
    magnitude = (abs(numerator) + divisor // 2) // divisor
    return magnitude if numerator >= 0 else -magnitude


# -- key switching: digits, the key product modulo 2**64, the noise norms -----------------------
@pytest.fixture(scope="module", params=["default", "vhe"])
def digit_scheme(request: pytest.FixtureRequest) -> IntegerVectorScheme:
    """Base-256 digits (``default``) and sign-and-magnitude bits (``vhe``)."""
    return IntegerVectorScheme(request.param)


def random_key(scheme: IntegerVectorScheme, columns: int, out: int, seed: int) -> KeySwitchKey:
    """A key matrix of arbitrary int64 entries: every product and sum wraps modulo 2**64."""
    rng = np.random.default_rng(seed)
    matrix = rng.integers(-(1 << 63), (1 << 63) - 1, (columns * scheme.params.digits, out))
    return KeySwitchKey("switch", columns, out, matrix, "a", "b")


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(coefficients, min_size=1, max_size=24),
    shape=st.sampled_from(["one", "flat", "grid"]),
    out=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_switch_gives_the_numpy_words_and_norms(
    digit_scheme: IntegerVectorScheme, values: list[int], shape: str, out: int, seed: int
) -> None:
    """The same ``M c*`` (wrapping) and the same float L1 and L2 norms, for one vector (NumPy
    scalars), a batch and a batch of two axes."""
    columns = 3
    source = np.resize(np.array(values, dtype=np.int64), 12)
    source = {
        "one": source[:columns],
        "flat": source.reshape(4, 3),
        "grid": source.reshape(2, 2, 3),
    }[shape]
    key = random_key(digit_scheme, columns, out, seed)
    fast, numpy = both(lambda: digit_scheme._switch(source, key, LIMIT))
    assert same_bits(fast, numpy)
    # and the words are c* M modulo 2**64, in Python integers
    digits = digit_scheme.decompose(source).reshape(-1, columns * digit_scheme.params.digits)
    matrix = key.matrix_t.tolist()
    for row, words in zip(
        digits.tolist(), np.asarray(fast[0]).reshape(-1, out).tolist(), strict=True
    ):
        expected = [sum(d * matrix[i][o] for i, d in enumerate(row)) for o in range(out)]
        wrapped = [((value + (1 << 63)) % (1 << 64)) - (1 << 63) for value in expected]
        assert words == wrapped


@pytest.mark.parametrize("rows", [15, 16, 17, 37])
@pytest.mark.parametrize("out", [2, 3, 7])
def test_switch_in_blocks_of_rows(digit_scheme: IntegerVectorScheme, rows: int, out: int) -> None:
    """Batches past one block of rows (16), with a partial last block, for keys of two
    columns (kept in registers) and wider ones: the NumPy path's words and norms."""
    rng = np.random.default_rng(rows * out)
    source = rng.integers(-LIMIT, LIMIT, (rows, 3))
    source[::5] = rng.integers(-300, 300, (len(source[::5]), 3))  # small values: zero digits
    key = random_key(digit_scheme, 3, out, rows)
    fast, numpy = both(lambda: digit_scheme._switch(source, key, LIMIT))
    assert same_bits(fast, numpy)


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(coefficients, min_size=1, max_size=40),
    seed=st.integers(0, 2**16),
    out=st.sampled_from([1, 2, 3, 17]),
)
def test_nibble_table_gives_the_bit_by_bit_sums(values: list[int], seed: int, out: int) -> None:
    """Bit digits into two key columns (sums kept in registers) and into other widths: the
    nibble table's sums are the key rows' sums."""
    scheme = IntegerVectorScheme("vhe")
    count = scheme.params.digits
    source = np.resize(np.array(values, dtype=np.int64), 40).reshape(8, 5)
    key = random_key(scheme, 5, out, seed)
    table = native.nibble_table(key.matrix_t, 5, count)
    assert table.shape == (5, 16, 16, out)
    plan = native.SwitchPlan(key.matrix_t, count, 1, 0, 1.25, 1.5)
    plain = native.switch_digits(source, plan)
    tabled = native.switch_digits(source, dataclasses.replace(plan, nibbles=table))
    assert plain is not None and tabled is not None
    assert same_bits(plain, tabled)


def test_switch_takes_views_and_declines_other_layouts() -> None:
    """A strided or transposed source is switched as its copy; other item types, a key of
    another height or a table of another size are declined (None: the NumPy path switches);
    one vector gives NumPy scalars for its norms, as the NumPy path does."""
    scheme = IntegerVectorScheme("vhe")
    count = scheme.params.digits
    key = random_key(scheme, 3, 2, 7)
    plan = scheme._switch_plan(key, 3)
    assert plan is not None
    grid = np.random.default_rng(1).integers(-LIMIT, LIMIT, (6, 3))
    for view in (grid[::2], grid.T.copy().T, grid[:, :3][1:]):
        found = native.switch_digits(view, plan)
        assert found is not None and same_bits(found, native.switch_digits(view.copy(), plan))
    one = native.switch_digits(grid[0], plan)
    assert one is not None and one[0].shape == (2,)
    assert isinstance(one[1], np.float64) and isinstance(one[2], np.float64)
    assert native.switch_digits(grid.astype(np.int32), plan) is None
    assert native.switch_digits(grid.astype(np.float64), plan) is None
    assert native.switch_digits(grid[:, :2], plan) is None  # 2 columns: not the key's height
    short = dataclasses.replace(plan, matrix_t=plan.matrix_t[:-1])
    assert native.switch_digits(grid, short) is None
    table = native.nibble_table(key.matrix_t, 3, count)
    assert native.switch_digits(grid, dataclasses.replace(plan, nibbles=table[:2])) is None
    module = native._module
    assert module is not None
    with pytest.raises(TypeError, match="takes 8 arguments"):
        module.switch_digits(grid)
    with pytest.raises(ValueError, match="nibble table is for bit digits"):
        module.switch_digits(grid, key.matrix_t, table, 8, 8, 0, 1.0, 1.0)
    with pytest.raises(ValueError, match="unsupported digit width"):
        module.switch_digits(grid, key.matrix_t, None, 33, count, 0, 1.0, 1.0)


@pytest.mark.parametrize("rows", [1, 15, 23, 24, 37, 63, 64, 65, 88, 130])
@pytest.mark.parametrize("out", [3, 7])
def test_bit_switches_without_a_nibble_table_go_in_blocks_of_rows(
    monkeypatch: pytest.MonkeyPatch, rows: int, out: int
) -> None:
    """Bit digits into a key too wide for a kept nibble table (past ``NIBBLE_TABLE_BYTES``): the
    kernel switches blocks of 64 rows with tables made on the spot, and blocks of fewer than
    24 rows (a small batch, a last block of 1 to 23) one set bit at a time; both give the
    NumPy path's words and norms."""
    monkeypatch.setattr(native, "NIBBLE_TABLE_BYTES", 0)
    scheme = IntegerVectorScheme("vhe")
    rng = np.random.default_rng(rows * out)
    source = rng.integers(-LIMIT, LIMIT, (rows, 3))
    source[::5] = rng.integers(-300, 300, (len(source[::5]), 3))  # small values: few set bits
    source[::7, 1] = 0
    key = random_key(scheme, 3, out, rows)
    plan = scheme._switch_plan(key, 3)
    assert plan is not None and plan.nibbles is None
    fast, numpy = both(lambda: scheme._switch(source, key, LIMIT))
    assert same_bits(fast, numpy)


def test_a_nibble_table_is_kept_for_narrow_keys_only() -> None:
    """Bit digits: a table for two key columns whatever its size, for wider keys while it is
    at most ``NIBBLE_TABLE_BYTES``; none for base-2**b digits."""
    bits = IntegerVectorScheme("vhe")
    narrow = bits._switch_plan(random_key(bits, 3, 5, 1), 3)
    assert narrow is not None and narrow.nibbles is not None
    columns = native.NIBBLE_TABLE_BYTES // (16 * 16 * 5 * 8) + 1
    wide = bits._switch_plan(random_key(bits, columns, 5, 1), columns)
    assert wide is not None and wide.nibbles is None
    two = bits._switch_plan(random_key(bits, columns, 2, 1), columns)
    assert two is not None and two.nibbles is not None
    digits = IntegerVectorScheme("default")
    based = digits._switch_plan(random_key(digits, 3, 5, 1), 3)
    assert based is not None and based.nibbles is None


# -- products: exact 128-bit sums of two products, rounded ---------------------------------------
@settings(max_examples=150, deadline=None)
@given(
    factors=st.lists(coefficients, min_size=4, max_size=4),
    second=st.booleans(),
    shift=st.integers(1, 125),
)
def test_tensor_entries_are_the_exact_rounded_sums(
    factors: list[int], second: bool, shift: int
) -> None:
    a0, a1, b0, b1 = factors
    total = a0 * b0 + (a1 * b1 if second else 0)
    expected = round_half_away(total, 1 << shift)
    if abs(expected) >= 1 << 62:  # out of the caller's proof: not asked of the kernel
        return
    left = np.array([[a0, a1]], dtype=np.int64)
    right = np.array([[b0, b1]], dtype=np.int64)
    index = np.array([[0], [1]], dtype=np.int64)
    used = np.array([[1], [int(second)]], dtype=np.int64)
    out = native.tensor_round_div(left, right, (1,), (index, index, used), shift)
    assert out is not None and out.tolist() == [[expected]]


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("shift", [1, 2, 40, 52, 62, 100])
def test_tensor_ties_round_away_from_zero(sign: int, shift: int) -> None:
    """An exact half (odd multiples of 2**(shift - 1)) goes away from zero, both signs."""
    low = min(shift - 1, 58)  # a * b = odd * 2**(shift - 1), both factors below 2**62
    for odd in (1, 3, 5, 7):
        a, b = sign * odd << low, 1 << (shift - 1 - low)
        left = np.array([[a]], dtype=np.int64)
        right = np.array([[b]], dtype=np.int64)
        zero = np.zeros((2, 1), dtype=np.int64)
        out = native.tensor_round_div(left, right, (1,), (zero, zero, zero), shift)
        assert out is not None
        assert out.tolist() == [[round_half_away(a * b, 1 << shift)]]
        assert abs(out[0, 0]) == (odd + 1) // 2


def test_tensor_broadcasts_batches() -> None:
    rng = np.random.default_rng(4)
    left = rng.integers(-(1 << 50), 1 << 50, (5, 1, 3))
    right = rng.integers(-(1 << 50), 1 << 50, (1, 4, 3))
    index = np.array([[0, 1, 2], [2, 0, 1]], dtype=np.int64)
    used = np.array([[1, 1, 1], [1, 0, 1]], dtype=np.int64)
    out = native.tensor_round_div(left, right, (5, 4), (index, index, used), 40)
    assert out is not None and out.shape == (5, 4, 3)
    for i in range(5):
        for j in range(4):
            for t in range(3):
                a, b = left[i, 0].tolist(), right[0, j].tolist()
                total = a[index[0, t]] * b[index[0, t]]
                total += int(used[1, t]) * a[index[1, t]] * b[index[1, t]]
                assert int(out[i, j, t]) == round_half_away(total, 1 << 40)


@settings(max_examples=150, deadline=None)
@given(
    value=coefficients,
    factor=coefficients,
    divisor=st.one_of(
        st.integers(1, (1 << 63) - 1),
        st.sampled_from([1, 2, 3, 1 << 40, (1 << 40) + 1, 1000, 999, (1 << 62) + 1]),
    ),
)
def test_products_by_one_factor_round_exactly(value: int, factor: int, divisor: int) -> None:
    expected = round_half_away(value * factor, divisor)
    if abs(expected) >= 1 << 63:
        return
    out = native.mul_round_div(
        np.array([[value, -value]], dtype=np.int64), np.array([[factor]], dtype=np.int64), divisor
    )
    assert out is not None and out.tolist() == [[expected, -expected]]


@pytest.mark.parametrize("divisor", [2, 4, 6, 1000, 1 << 40])
def test_product_ties_round_away_from_zero(divisor: int) -> None:
    values = np.array([[divisor // 2, -(divisor // 2), 3 * (divisor // 2), -3 * (divisor // 2)]])
    out = native.mul_round_div(values.astype(np.int64), np.ones(1, dtype=np.int64), divisor)
    expected = [round_half_away(v, divisor) for v in values[0].tolist()]
    assert out is not None and out[0].tolist() == expected


def test_products_decline_factors_of_another_shape() -> None:
    values = np.ones((2, 3), dtype=np.int64)
    assert native.mul_round_div(values, np.ones((2, 3), dtype=np.int64), 2) is None
    assert native.mul_round_div(values, np.ones((2, 1), dtype=np.float64), 2) is None
    assert native.mul_round_div(values, np.ones(1, dtype=np.int64), 0) is None


# -- decryption -------------------------------------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(
    top=st.lists(st.integers(-(1 << 60), 1 << 60), min_size=3, max_size=3),
    bottom=st.integers(-(1 << 40), 1 << 40),
    t=st.lists(st.integers(-1000, 1000), min_size=3, max_size=3),
    shift=st.integers(1, 62),
)
def test_decryption_rounds_half_up(top: list[int], bottom: int, t: list[int], shift: int) -> None:
    data = np.array([[*top, bottom]], dtype=np.int64)
    # the key's T has more rows than the vectors: the kernel reads the first m
    t_matrix = np.array([*t, 999, -999], dtype=np.int64).reshape(5, 1)
    out = decrypt_kernel()(data, t_matrix, 3, shift, np.zeros(1), None, None, False, 64, SAFETY)
    expected = [(top[i] + t[i] * bottom + (1 << (shift - 1))) >> shift for i in range(3)]
    assert out is not None and out.tolist() == [expected]


def decrypt_kernel() -> Callable[..., Any]:
    kernel = native.decrypt_pow2
    assert kernel is not None
    return kernel


def numpy_bound(noise: Any, det: Any, sg: Any, factor: float) -> float:
    """``Ciphertext.decryption_bound``'s NumPy path."""
    if det is None:
        return float(np.asarray(noise).max())
    return float(np.minimum(noise, (det + sg * factor) * SAFETY).max())


bound_values = st.one_of(
    st.floats(0, 2.0**60, allow_nan=False),
    st.sampled_from([0.0, 2.0**39, np.nextafter(2.0**39, 0), 2.0**39 + 1, np.inf, np.nan]),
)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.tuples(bound_values, bound_values, bound_values), min_size=1, max_size=6),
    tracked=st.booleans(),
)
def test_noise_bounds_are_numpys_floats(
    rows: list[tuple[float, float, float]], tracked: bool
) -> None:
    """The largest bound, bit for bit NumPy's (NaN where any value is NaN), and decryption
    refuses exactly where twice it is not below w = 2**40 (the general path then raises)."""
    noise, det, sg = (np.array(column) for column in zip(*rows, strict=True))
    if not tracked:
        det = sg = None
    count = len(rows) * 3
    factor = tail_factor(count)
    expected = numpy_bound(noise, det, sg, factor)
    found = native.decryption_bound(noise, det, sg, factor, SAFETY)
    assert found is not None and np.array_equal(found, expected, equal_nan=True)
    assert np.float64(found).tobytes() == np.float64(expected).tobytes() or np.isnan(expected)
    data = np.zeros((len(rows), 4), dtype=np.int64)
    t_matrix = np.ones((3, 1), dtype=np.int64)
    out = decrypt_kernel()(data, t_matrix, 3, 40, noise, det, sg, False, 64, SAFETY)
    assert (out is not None) == bool(expected * 2 < 2**40)


def test_the_noise_check_at_its_edge() -> None:
    """A bound of exactly w/2 refuses, the float below it decrypts; the high-probability bound
    counts where it is the smaller, the worst-case one where it is, or where the scheme asks
    for the worst case alone."""
    data = np.zeros((1, 4), dtype=np.int64)
    t_matrix = np.ones((3, 1), dtype=np.int64)
    kernel = decrypt_kernel()
    half = float(2**39)
    assert kernel(data, t_matrix, 3, 40, np.array([half]), None, None, False, 64, SAFETY) is None
    below = np.array([np.nextafter(half, 0)])
    assert kernel(data, t_matrix, 3, 40, below, None, None, False, 64, SAFETY) is not None
    # worst case too large, the high-probability one (det + z sg) safety below w/2
    z = tail_factor(3)
    fits = np.array([half / SAFETY / 2]), np.array([half / SAFETY / 4 / z])
    assert kernel(data, t_matrix, 3, 40, np.array([2 * half]), *fits, False, 64, SAFETY) is not None
    assert kernel(data, t_matrix, 3, 40, np.array([np.nan]), *fits, False, 64, SAFETY) is None
    # a scheme with worst_case=True decrypts on the worst-case bound alone
    assert kernel(data, t_matrix, 3, 40, np.array([2 * half]), *fits, True, 64, SAFETY) is None
    assert kernel(data, t_matrix, 3, 40, below, *fits, True, 64, SAFETY) is not None


@pytest.mark.parametrize(
    "count", [0, 1, 2, 3, 4, 7, 100, 256, 1000, 4096, 10**6, 2**31 + 5, 2**40, 3 * 2**40 + 1]
)
def test_the_kernels_tail_factor_is_pythons(count: int) -> None:
    """The decryption kernel computes ``tail_factor`` itself: the same float."""
    assert native._module is not None
    found = native._module.tail_factor(count, FAILURE_PROBABILITY_BITS)
    assert np.float64(found).tobytes() == np.float64(tail_factor(count)).tobytes()


def test_decryption_declines_layouts_it_does_not_read() -> None:
    """None (the NumPy path decides) for a view, another type or shape, a short key."""
    kernel = decrypt_kernel()
    data = np.arange(16, dtype=np.int64).reshape(4, 4)
    t_matrix = np.ones((3, 1), dtype=np.int64)
    noise = np.zeros(4)
    assert kernel(data, t_matrix, 3, 40, noise, None, None, False, 64, SAFETY) is not None
    declined = [
        (data[::2], t_matrix, 3, noise[::2]),  # strided rows
        (data.astype(np.int32), t_matrix, 3, noise),
        (data.astype(">i8"), t_matrix, 3, noise),  # not native byte order
        (data, t_matrix[:2], 3, noise),  # T shorter than m
        (data, t_matrix, 2, noise),  # rows of m + k = 3 expected
        (data, t_matrix, 3, np.zeros(3)),  # noise of another shape
        (data, t_matrix, 3, np.zeros((4, 1))),
        (data, t_matrix, 3, noise[::-1]),  # a reversed view
        (data, t_matrix.astype(np.float64), 3, noise),
        (data, t_matrix, 3, noise.astype(np.float32)),
        (data.tolist(), t_matrix, 3, noise),
    ]
    for array, key, m, bounds in declined:
        assert kernel(array, key, m, 40, bounds, None, None, False, 64, SAFETY) is None
    assert kernel(data, t_matrix, 3, 40, noise, np.zeros(4), np.zeros(3), False, 64, SAFETY) is None
    assert native.decryption_bound(np.zeros(0), None, None, 1.0, SAFETY) is None
    assert native.decryption_bound(noise, noise[::-1], noise, 1.0, SAFETY) is None
    # empty batches, and a scalar ciphertext (no batch axes)
    empty = kernel(
        np.zeros((0, 4), dtype=np.int64),
        t_matrix,
        3,
        40,
        np.zeros(0),
        None,
        None,
        False,
        64,
        SAFETY,
    )
    assert empty is None
    scalar = kernel(
        np.array([1, 2, 3, 4], dtype=np.int64),
        t_matrix,
        3,
        40,
        np.zeros(()),
        None,
        None,
        False,
        64,
        SAFETY,
    )
    assert scalar is not None and scalar.shape == (3,)


def test_one_vector_decryption_needs_no_kept_bound() -> None:
    """A fresh ciphertext decrypts through the kernel, its bound computed in the call (not
    kept), to the messages the NumPy path gives; a noisy one still raises."""
    scheme = IntegerVectorScheme("vhe")
    keys = scheme.keygen(seed=2, dims=(4,), products=())
    x = np.array([[46, -89, 77, 2]])
    fresh = scheme.encrypt(x, keys.public, dim=4, seed=5)
    with_kernels, without = both(lambda: scheme.decrypt(fresh, keys))
    assert same_bits(with_kernels, without) and with_kernels.tolist() == x.tolist()
    noisy = fresh.derive(fresh.data, fresh.noise + scheme.params.w, coeff_bound=fresh.coeff_bound)
    with pytest.raises(Exception, match="refusing to decrypt"):
        scheme.decrypt(noisy, keys)


# -- scatter_add and segment_sum: exact words, the same float bits -------------------------------
@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.integers(0, 5), min_size=0, max_size=20),
    seed=st.integers(0, 2**16),
    touched=st.booleans(),
)
def test_index_add_is_add_at(rows: list[int], seed: int, touched: bool) -> None:
    """int64 sums wrap like ``numpy.add.at``; float64 sums in the same order give its bits;
    the touched rows are scaled as ``total[rows] *= margin`` scales them."""
    rng = np.random.default_rng(seed)
    index = np.array(rows, dtype=np.int64)
    words = rng.integers(-(1 << 63), (1 << 63) - 1, (6, 2, 3))
    added = rng.integers(-(1 << 63), (1 << 63) - 1, (len(rows), 2, 3))
    expected = words.copy()
    with np.errstate(over="ignore"):
        np.add.at(expected, index, added)
    assert native.index_add(words, index, added)
    assert words.tobytes() == expected.tobytes()
    floats = rng.uniform(0, 1e12, (6, 4)) * rng.choice([1e-9, 1.0, 1e9], (6, 4))
    float_added = rng.uniform(0, 1e6, (len(rows), 4))
    expected_floats = floats.copy()
    np.add.at(expected_floats, index, float_added)
    marked = np.unique(index) if touched else None
    if marked is not None:
        expected_floats[marked] *= 1.0000001
    assert native.index_add(floats, index, float_added, marked, 1.0000001)
    assert floats.tobytes() == expected_floats.tobytes()


def test_index_add_refuses_rows_out_of_range_and_changes_nothing() -> None:
    target = np.zeros((3, 2), dtype=np.int64)
    with pytest.raises(IndexError, match="out of range"):
        native.index_add(target, np.array([0, 3]), np.ones((2, 2), dtype=np.int64))
    with pytest.raises(IndexError, match="out of range"):
        native.index_add(target, np.array([-1]), np.ones((1, 2), dtype=np.int64))
    assert not target.any()
    # other types and layouts are declined (the NumPy path runs), not misread
    assert not native.index_add(target.T, np.array([0]), np.ones((1, 3), dtype=np.int64))
    assert not native.index_add(target, np.array([0]), np.ones((1, 2), dtype=np.float64))
    assert not native.index_add(target, np.array([0]), np.ones((1, 2), dtype=np.int64), [0], 2.0)


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 4), min_size=1, max_size=8),
    seed=st.integers(0, 2**16),
    special=st.sampled_from([None, np.nan, np.inf]),
)
def test_segment_sums_are_the_prefix_differences(
    lengths: list[int], seed: int, special: float | None
) -> None:
    """int64 runs are exact (modulo 2**64); float64 runs are ``Ciphertext.segment_sum``'s
    prefix differences with its slack, NaN and infinite bounds included."""
    rng = np.random.default_rng(seed)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    rows = int(offsets[-1])
    words = rng.integers(-(1 << 63), (1 << 63) - 1, (rows, 3))
    out = native.segment_sum(words, offsets, SAFETY)
    assert out is not None
    for i in range(len(lengths)):
        run = words[offsets[i] : offsets[i + 1]].tolist()
        expected = [sum(column) for column in zip(*run, strict=True)] if run else [0, 0, 0]
        assert out[i].tolist() == [((v + (1 << 63)) % (1 << 64)) - (1 << 63) for v in expected]
    floats = rng.uniform(0, 1e9, (rows, 3)) * rng.choice([1e-12, 1.0, 1e12], (rows, 3))
    if special is not None and rows:
        floats[rng.integers(rows), 1] = special
    prefix = np.zeros((rows + 1, 3))
    np.cumsum(floats, axis=0, out=prefix[1:])
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, as in the library's NumPy path
        runs = prefix[offsets[1:]] - prefix[offsets[:-1]]
    if rows:
        slack = prefix[-1].max() * 2.0**-50 * rows
        expected_floats = runs * SAFETY + slack
    else:
        expected_floats = runs * SAFETY + 0.0
    found = native.segment_sum(floats, offsets, SAFETY)
    assert found is not None and found.tobytes() == expected_floats.tobytes()


def test_segment_sum_refuses_offsets_that_do_not_rise_to_the_rows() -> None:
    values = np.zeros((4, 2), dtype=np.int64)
    for offsets in ([0, 3], [1, 4], [0, 3, 2, 4]):
        with pytest.raises(ValueError, match="offsets"):
            native.segment_sum(values, np.array(offsets, dtype=np.int64), SAFETY)


# -- bad arguments to the module itself -----------------------------------------------------------
def test_kernels_check_their_buffers() -> None:
    """Wrong item types, sizes or layouts raise; nothing is read past a buffer."""
    module = native._module
    assert module is not None
    ints = np.zeros((2, 3), dtype=np.int64)
    out = np.zeros((2, 3), dtype=np.int64)
    with pytest.raises(TypeError, match="int64"):
        module.mul_round_div(ints.astype(np.int32), np.ones(1, dtype=np.int64), 2, 3, 1, 2, out)
    with pytest.raises(ValueError, match="items"):
        module.mul_round_div(ints, np.ones(1, dtype=np.int64), 3, 3, 1, 2, out)
    with pytest.raises(TypeError, match="contiguous"):
        module.mul_round_div(ints.T, np.ones(1, dtype=np.int64), 2, 3, 1, 2, out.T)
    with pytest.raises(TypeError, match="writable"):
        readonly = out.copy()
        readonly.flags.writeable = False
        module.mul_round_div(ints, np.ones(1, dtype=np.int64), 2, 3, 1, 2, readonly)
    with pytest.raises(ValueError, match="negative"):
        module.decrypt_pow2(
            ints, np.zeros((2, 1), dtype=np.int64), -1, 2, None, None, None, False, 64, 1.0
        )
    with pytest.raises(ValueError, match="shift must be"):
        module.decrypt_pow2(
            ints, np.zeros((2, 1), dtype=np.int64), 2, 63, None, None, None, False, 64, 1.0
        )
    with pytest.raises(TypeError, match="takes 10 arguments"):
        module.decrypt_pow2(ints)
    with pytest.raises(TypeError, match="takes 5 arguments"):
        module.decryption_bound(ints)
    with pytest.raises(TypeError):
        module.decryption_bound(np.zeros(2), None, None, "z", 1.0)
    with pytest.raises(ValueError, match="sizes too large"):
        module.mul_round_div(ints, np.ones(1, dtype=np.int64), 2**62, 2**62, 1, 2, out)
    with pytest.raises(IndexError, match="second-product flag"):
        index = np.zeros((2, 1), dtype=np.int64)
        module.tensor_round_div(
            ints,
            ints,
            2,
            3,
            3,
            1,
            index,
            index,
            np.full(1, 2, dtype=np.int64),
            4,
            np.zeros((2, 1), dtype=np.int64),
        )
    with pytest.raises(IndexError, match="factor index"):
        bad = np.array([[5], [0]], dtype=np.int64)
        module.tensor_round_div(
            ints,
            ints,
            2,
            3,
            3,
            1,
            bad,
            bad,
            np.zeros(1, dtype=np.int64),
            4,
            np.zeros((2, 1), dtype=np.int64),
        )


# -- whole operations and training steps, with the kernels and without ---------------------------
def _operation_keys(scheme: IntegerVectorScheme) -> tuple[IntegerVectorScheme, Any, Any]:
    keys = scheme.keygen(seed=5, max_dim=4, dims=(1, 3, 4), products=(1, 3))
    scheme.add_dot_key(keys, 3)
    scheme.add_dot_key(keys, 3, np.array([[1, -2, 0], [0, 1, 3], [2, 0, -1]]))
    scheme.add_linear_key(keys, np.array([[1, 2, 0], [0, -1, 1], [2, 0, 1]]))
    other = scheme.keygen(seed=6, max_dim=4, dims=(3,))
    return scheme, keys, other


@pytest.fixture(scope="module", params=["default", "vhe", "seed"])
def scheme_and_keys(request: pytest.FixtureRequest) -> tuple[IntegerVectorScheme, Any, Any]:
    return _operation_keys(IntegerVectorScheme(request.param))


@pytest.mark.parametrize(
    ("batch", "tables"),
    [((), True), ((1,), True), ((7,), True), ((3, 5), True), ((37,), True), ((70,), False)],
)
def test_operations_give_the_same_ciphertexts(
    scheme_and_keys: tuple[IntegerVectorScheme, Any, Any],
    batch: tuple[int, ...],
    tables: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every operation, kernels on and off. Without kept nibble tables (``tables`` False: keys
    as wide as a large m's), bit-digit switches and products go through the blocks of rows:
    tables made on the spot for a full block of 64, one set bit at a time for the last 6 and
    for the products' blocks of 16."""
    scheme, keys, other = scheme_and_keys
    if not tables:
        monkeypatch.setattr(native, "NIBBLE_TABLE_BYTES", 0)
        # new keys: the fixture's keep the switch plans (and tables) earlier tests made
        scheme, keys, other = _operation_keys(IntegerVectorScheme(scheme.params.name))
        if scheme.params.gadget_bits == 1:
            key = keys.public.encryption[3]
            plan = scheme._switch_plan(key, key.source_columns)
            assert plan is not None and plan.nibbles is None
    rng = np.random.default_rng(len(batch))
    x = rng.integers(-50, 50, (*batch, 3))
    y = rng.integers(-50, 50, (*batch, 3))
    reals = rng.uniform(-2, 2, batch)
    switch = scheme.make_switch_key(keys, other, dim=3)
    h = np.array([[1, -2, 0], [0, 1, 3], [2, 0, -1]])
    g = np.array([[1, 2, 0], [0, -1, 1], [2, 0, 1]])

    def run() -> list[Any]:
        cx = scheme.encrypt(x, keys.public, dim=3, seed=1)
        cy = scheme.encrypt(y, keys.public, dim=3, seed=2)
        cr = scheme.encrypt_tensor(reals, keys.public, seed=3)
        results: list[Any] = [cx, cy, cr, scheme.encrypt(x, keys, dim=3, seed=4)]
        results.append(scheme.switch_key(cx, switch))
        results.append(scheme.linear_transform(cx, g))
        results.append(scheme.multiply(cx, cy))
        results.append(scheme.dot(cx, cy))
        results.append(scheme.dot(cx, cy, h))
        results.append(scheme.multiply_plain(cx, 3))
        # broadcasting: one vector against the batch, both ways round
        results.append(scheme.multiply(cx, cy[(0,) * len(batch)] if batch else cy))
        results.append(scheme.dot(cx[(0,) * len(batch)] if batch else cx, cy, h))
        product = scheme.multiply(cr, cr)
        results += [
            product,
            scheme.multiply_plain(cr, 0.37),
            scheme.polyval(cr, [0.5, 0.25, 0, -0.02]),
        ]
        if scheme.params.scale > 1:
            results.append(scheme.rescale(scheme.multiply_plain(cr, 5.0)))
        results += [scheme.decrypt(c, keys) for i, c in enumerate(results[:9]) if i != 4]
        results.append(scheme.decrypt(results[4], other))
        return results

    fast, numpy = both(run)
    for index, (a, b) in enumerate(zip(fast, numpy, strict=True)):
        assert same_bits(a, b), f"result {index} differs"


@pytest.mark.parametrize("rows", [[0, 2, 2, -1, 5], [1], [], list(range(12)) * 2])
def test_scatter_and_segment_sums_give_the_same_ciphertexts(
    scheme_and_keys: tuple[IntegerVectorScheme, Any, Any], rows: list[int]
) -> None:
    """Repeated, negative and no rows; sparse (few of many rows) and dense updates."""
    scheme, keys, _ = scheme_and_keys
    rng = np.random.default_rng(len(rows))
    table = scheme.encrypt_tensor(rng.uniform(-1, 1, (12, 2)), keys.public, seed=1)
    values = scheme.encrypt_tensor(rng.uniform(-1, 1, (len(rows), 2)), keys.public, seed=2)
    noisy = table * table  # uneven noise bounds across rows

    def run() -> list[Any]:
        updated = noisy.scatter_add(rows, values)
        offsets = [0, 3, 3, 7, 12]
        return [updated, updated.segment_sum(offsets), noisy.segment_sum([0, 12])]

    fast, numpy = both(run)
    assert same_bits(fast, numpy)


def test_training_gives_the_same_weights() -> None:
    """A few sentiment-style steps (gather, segment sums, products, scatter updates) and an
    XOR network: the same encrypted weights with the kernels as without."""
    from hennframework.nn import BagOfWords, Sequential, make_batches

    scheme = IntegerVectorScheme("default")
    keys = scheme.keygen(seed=8)
    rng = np.random.default_rng(8)
    lengths = rng.integers(1, 6, 40)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    indices = rng.integers(0, 30, int(offsets[-1]))
    labels = rng.integers(0, 2, 40).astype(float)
    batches = make_batches(BagOfWords(indices, offsets), labels, 8)
    xor_x = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
    xor_y = np.array([[0], [1], [1], [0]], dtype=float)

    # public-key encryption draws from the operating system: encrypt once, train copies
    words = Sequential.bag_of_words(30, 4, seed=1).encrypt(keys)
    xor = Sequential.mlp([3, 4, 1], seed=2).encrypt(keys)
    initial = (words.weights(), xor.weights())

    def run() -> list[Any]:
        words.set_weights(initial[0])
        words.fit(batches, learning_rate=0.1)
        xor.set_weights(initial[1])
        xor.fit(xor_x, xor_y, epochs=3, learning_rate=0.5)
        return [*words.weights(), *xor.weights()]

    fast, numpy = both(run)
    assert len(fast) == len(numpy) > 0
    assert same_bits(fast, numpy)


# -- the switch itself: status, turning off, CI's guard ------------------------------------------
def test_status_says_what_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert native.available()
    assert "in use" in native.status()
    with native.disabled():
        assert not native.available()
        assert "turned off" in native.status() and "HENN_NATIVE=0" in native.status()
    assert native.available()
    with pytest.raises(RuntimeError), native.disabled():
        raise RuntimeError("restored on the way out")
    assert native.available()
    monkeypatch.setattr(native, "_module", None)
    monkeypatch.setattr(native, "_enabled", False)
    assert not native.built() and "not built" in native.status()


@pytest.mark.parametrize("value", ["0", "off", "False"])
def test_the_environment_variable_turns_them_off(value: str) -> None:
    code = "from hennframework.schemes.integer_vector import native; print(native.available())"
    env = {**os.environ, native.ENVIRONMENT_VARIABLE: value}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


def test_an_unknown_setting_warns_and_keeps_them_on() -> None:
    code = "from hennframework.schemes.integer_vector import native; print(native.available())"
    env = {**os.environ, native.ENVIRONMENT_VARIABLE: "fast please"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.stdout.strip() == "True"
    assert "HENN_NATIVE='fast please' is not understood" in done.stderr
    assert "HENN_NATIVE=0" in done.stderr


def test_a_module_built_from_other_sources_is_not_called(monkeypatch: pytest.MonkeyPatch) -> None:
    """An editable install not rebuilt after the kernels' arguments changed: refused with a
    warning that says how to rebuild, and the NumPy paths run (never a call that misreads)."""
    import types

    stale = types.ModuleType("hennframework.schemes.integer_vector._kernels")
    stale.API_VERSION = native.API_VERSION - 1  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "hennframework.schemes.integer_vector._kernels", stale)
    monkeypatch.setattr(native, "_stale", None)
    with pytest.warns(RuntimeWarning, match=r"pip install -e \."):
        assert native._load() is None
    assert "built from other sources" in native.status()
    assert native.built()  # the real module is still the one in use in this process
