"""The exact 128-bit helpers of the integer-vector scheme (wide.py) against Python integers.

Every helper is checked at the edges its proof relies on: operands at their bounds (both signs),
inner dimensions from 1 to thousands, divisors with large odd parts, and results at the edge of
63 bits, where it must either be exact or raise OverflowRiskError, never wrap.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hennframework.exceptions import OverflowRiskError
from hennframework.registry import get_backend
from hennframework.schemes.integer_vector import wide
from hennframework.schemes.integer_vector.ciphertext import LIMIT

BOUND62 = (1 << 62) - 1


def round_half_away(value: int, divisor: int) -> int:
    magnitude = (abs(value) + divisor // 2) // divisor
    return magnitude if value >= 0 else -magnitude


def to_wide(values: list[int]) -> wide.Wide:
    """Python ints in (-2**127, 2**127) as a (hi, lo) pair of arrays."""
    hi = np.array([v >> 64 for v in values], dtype=np.int64)
    lo = np.array([v & ((1 << 64) - 1) for v in values], dtype=np.uint64)
    return hi, lo


def from_wide(value: wide.Wide) -> list[int]:
    hi, lo = value
    return [(int(h) << 64) + int(low) for h, low in zip(hi.tolist(), lo.tolist(), strict=True)]


def edge_values(bound: int) -> st.SearchStrategy[int]:
    """Integers in [-bound, bound], often exactly at the bound, 0 or +-1."""
    edges = [v for v in (bound, -bound, 0, 1, -1, bound // 2, -(bound // 2)) if abs(v) <= bound]
    return st.one_of(st.sampled_from(edges), st.integers(-bound, bound))


# -- products and sums ---------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(a=st.lists(edge_values(BOUND62), min_size=1, max_size=6), data=st.data())
def test_mul_wide_is_exact_at_the_bounds(a: list[int], data: st.DataObject) -> None:
    b = data.draw(st.lists(edge_values(BOUND62), min_size=len(a), max_size=len(a)))
    got = from_wide(wide.mul_wide(np.array(a, dtype=np.int64), np.array(b, dtype=np.int64)))
    assert got == [x * y for x, y in zip(a, b, strict=True)]


@settings(max_examples=60, deadline=None)
@given(
    value=st.integers(-(2**126), 2**126),
    divisor=st.one_of(
        st.sampled_from([1, 2, 3, 1000, 2**12, 2**40 * 2**12, 2**25 * 1000, 3 * 2**30 * 1000]),
        st.integers(1, 2**32 - 1),
        st.integers(0, 94).map(lambda s: (2**32 - 1) << s),
    ),
)
def test_round_div_wide_is_exact_or_refuses(value: int, divisor: int) -> None:
    want = round_half_away(value, divisor)
    if abs(want) >= 2**63:
        with pytest.raises(OverflowRiskError):
            wide.round_div_wide(to_wide([value]), divisor)
    else:
        assert wide.round_div_wide(to_wide([value]), divisor).tolist() == [want]


def test_round_div_wide_refuses_divisors_it_cannot_handle() -> None:
    with pytest.raises(OverflowRiskError, match="odd part"):
        wide.round_div_wide(to_wide([5]), (1 << 32) + 1)
    with pytest.raises(OverflowRiskError, match="too large"):
        wide.round_div_wide(to_wide([5]), 1 << 127)


def test_sum_products_round_div_refuses_too_many_products() -> None:
    """Eight products of 2**124 could pass 2**127: the helper refuses instead of wrapping."""
    top = np.array([BOUND62], dtype=np.int64)
    pairs = [(top, top)] * 7
    want = round_half_away(7 * BOUND62 * BOUND62, 2**64)
    assert wide.sum_products_round_div(pairs, 2**64).tolist() == [want]
    with pytest.raises(OverflowRiskError, match="1 to 7 products"):
        wide.sum_products_round_div([(top, top)] * 8, 2**64)


# -- limb plans ------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(
    inner=st.one_of(st.integers(1, 4096), st.integers(1, 2**40)),
    left_bound=st.one_of(st.integers(0, 2**53), st.integers(0, BOUND62)),
    right_bound=st.one_of(st.integers(0, 2**45), st.integers(0, BOUND62)),
)
def test_plan_matmul_proves_every_gemm_and_the_sum(
    inner: int, left_bound: int, right_bound: int
) -> None:
    """Every limb GEMM is below 2**63 and the shifted sum below 2**127, or the plan refuses."""
    try:
        left, right = wide.plan_matmul(inner, left_bound, right_bound)
    except OverflowRiskError:
        assert inner * left_bound * right_bound >= 2**123  # the shifted sum is < 9 K L R
        return
    for lb in left.bounds:
        for rb in right.bounds:
            assert inner * lb * rb < 2**63
    total = inner * sum(
        lb * rb << (ls + rs)
        for lb, ls in zip(left.bounds, left.shifts, strict=True)
        for rb, rs in zip(right.bounds, right.shifts, strict=True)
    )
    assert total < 2**127
    if inner * left_bound * right_bound < 2**63:
        assert left.count * right.count == 1  # the plain int64 product when it is already safe


@settings(max_examples=100, deadline=None)
@given(bound=st.integers(0, 2**63 - 1), width=st.integers(1, 63), data=st.data())
def test_limb_split_reconstructs_and_respects_its_bounds(
    bound: int, width: int, data: st.DataObject
) -> None:
    split = wide.LimbSplit.of(bound, width)
    values = data.draw(st.lists(edge_values(bound), min_size=1, max_size=8))
    limbs = split.split(np.array(values, dtype=np.int64))
    for limb, limb_bound in zip(limbs, split.bounds, strict=True):
        assert int(np.abs(limb).max()) <= limb_bound
    rebuilt = [
        sum(int(limb[i]) << shift for limb, shift in zip(limbs, split.shifts, strict=True))
        for i in range(len(values))
    ]
    assert rebuilt == values


# -- plaintext matrix times ciphertext coefficients -----------------------------------------------
def python_matmul_round_div(left: Any, right: Any, divisor: int) -> list[list[int]]:
    exact = left.astype(object) @ right.astype(object)
    return [[round_half_away(int(v), divisor) for v in row] for row in exact]


@pytest.mark.parametrize("backend_name", ["numpy", "xp"])
@settings(max_examples=40, deadline=None)
@given(
    inner=st.one_of(st.integers(1, 12), st.sampled_from([100, 257, 1000, 2048])),
    left_bits=st.integers(0, 53),
    right_bits=st.integers(0, 62),
    divisor=st.sampled_from([1, 1000, 2**12, 2**24, 3 * 1000]),
    extreme=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_wide_matmul_round_div_matches_python(
    backend_name: str,
    inner: int,
    left_bits: int,
    right_bits: int,
    divisor: int,
    extreme: bool,
    seed: int,
) -> None:
    """Exact, or refused when the rounded result cannot fit in 63 bits: never wrapped."""
    backend = _backend(backend_name)
    rng = np.random.default_rng(seed)
    left_bound, right_bound = (1 << left_bits) - 1, (1 << right_bits) - 1
    shape_l, shape_r = (2, inner), (inner, 3)
    if extreme:  # every entry at +-bound: the largest sums the proof allows
        left = rng.choice([-left_bound, left_bound], shape_l).astype(np.int64)
        right = rng.choice([-right_bound, right_bound], shape_r).astype(np.int64)
    else:
        left = rng.integers(-left_bound, left_bound, shape_l, endpoint=True, dtype=np.int64)
        right = rng.integers(-right_bound, right_bound, shape_r, endpoint=True, dtype=np.int64)
    want = python_matmul_round_div(left, right, divisor)
    args = (backend, backend.asarray(left), backend.asarray(right), divisor)
    if max(abs(v) for row in want for v in row) >= 2**63:
        with pytest.raises(OverflowRiskError):
            wide.wide_matmul_round_div(*args, left_bound, right_bound)
        return
    got = wide.wide_matmul_round_div(*args, left_bound, right_bound)
    assert np.asarray(backend.to_numpy(got)).tolist() == want


def test_wide_matmul_the_reported_overflow() -> None:
    """1 x 8 plaintext 2**30 (262144.0 at scale 2**12) times 8 coefficients near 2**40 + 2**31:
    the limb product that used to wrap in int64 (|P| * 2**31 * 8 >= 2**63) is now exact."""
    backend = get_backend("numpy")
    left = np.full((1, 8), 2**30, dtype=np.int64)
    right = np.array([[2**40 + 2**31 - 1 - i, -(2**31) + i] for i in range(8)], dtype=np.int64)
    want = python_matmul_round_div(left, right, 2**12)
    got = wide.wide_matmul_round_div(backend, left, right, 2**12, 2**30, 2**40 + 2**31)
    assert got.tolist() == want


def _backend(name: str) -> Any:
    if name == "xp":
        from hennframework_backends._xp_backend import XpBackend

        return XpBackend()
    return get_backend(name)


# -- the Python-integer path for a few values ---------------------------------------------------
def _both_paths(compute: Any) -> tuple[Any, Any]:
    """``compute()`` on the array path and on the Python-integer path (small inputs): each
    result, or the type of the error it raised."""
    outcomes = []
    for limit in (0, 10**9):  # 0: always the 128-bit array path; 10**9: always Python integers
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(wide, "SMALL_PRODUCTS", limit)
            try:
                result = compute()
            except OverflowRiskError as error:
                outcomes.append(type(error))
            else:
                outcomes.append((result.dtype, result.shape, result.tolist()))
    return outcomes[0], outcomes[1]


DIVISORS = st.sampled_from([1, 3, 2**12, 2**24, 2**52, 2**40 * 1000, 3 * 2**30 * 1000])


@settings(max_examples=150, deadline=None)
@given(
    left=st.lists(edge_values(BOUND62), min_size=6, max_size=6),
    right=st.lists(edge_values(BOUND62), min_size=6, max_size=6),
    batch=st.sampled_from([(1, 1), (2, 1), (1, 2), (2, 2)]),
    divisor=DIVISORS,
)
def test_stacked_products_paths_agree(
    left: list[int], right: list[int], batch: tuple[int, int], divisor: int
) -> None:
    """Both paths of stacked_products_round_div: the same int64 words, or both refuse."""
    a = np.array(left * batch[0], dtype=np.int64).reshape(batch[0], 1, 2, 3)
    b = np.array(right * batch[1], dtype=np.int64).reshape(1, batch[1], 2, 3)
    arrays, integers = _both_paths(lambda: wide.stacked_products_round_div(a, b, divisor))
    assert arrays == integers
    if not isinstance(integers, type):
        first = [
            round_half_away(left[j] * right[j] + left[3 + j] * right[3 + j], divisor)
            for j in range(3)
        ]
        assert integers[2][0][0] == first


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(edge_values(BOUND62), min_size=1, max_size=8),
    factor=st.one_of(edge_values(2**53 - 1), st.integers(-(2**53), 2**53)),
    divisor=DIVISORS,
)
def test_mul_round_div_paths_agree(values: list[int], factor: int, divisor: int) -> None:
    """mul_round_div (a ciphertext times an encoded scalar): same words or both refuse."""
    a = np.array(values, dtype=np.int64)[:, None]
    b = np.array([factor], dtype=np.int64)
    arrays, integers = _both_paths(lambda: wide.mul_round_div(a, b, divisor))
    assert arrays == integers
    want = [round_half_away(v * factor, divisor) for v in values]
    if max(abs(v) for v in want) >= 2**63:
        assert integers is OverflowRiskError
    else:
        assert integers[2] == [[v] for v in want]


@settings(max_examples=150, deadline=None)
@given(
    count=st.integers(1, 80),
    factor=st.integers(-(2**30), 2**30),
    shift=st.integers(1, wide.SCALAR_SHIFT_LIMIT),
    seed=st.integers(0, 2**32 - 1),
)
def test_scalar_products_with_a_proved_bound_agree(
    count: int, factor: int, shift: int, seed: int
) -> None:
    """mul_round_div with a product bound and a divisor 2**s: the int64 path of one factor and
    the Python integers give the rounding of the exact product, whichever the size picks."""
    rng = np.random.default_rng(seed)
    limit = max(1, (LIMIT << shift) // max(abs(factor), 1) // 2)  # |v f| / 2**s below 2**62
    a = rng.integers(-min(limit, 2**62), min(limit, 2**62), (count, 2))
    b = np.array([[factor]], dtype=np.int64)
    bound = int(abs(a).max()) * abs(factor)
    want = [[round_half_away(int(v) * factor, 1 << shift) for v in row] for row in a.tolist()]
    for threshold in (0, 10**9):  # 0: the int64 path from one value; 10**9: Python integers
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(wide, "SCALAR_INT_VALUES", threshold)
            patch.setattr(wide, "SMALL_PRODUCTS", 10**9)
            got = wide.mul_round_div(a, b, 1 << shift, bound)
        assert got.dtype == np.int64 and got.tolist() == want


@settings(max_examples=100, deadline=None)
@given(
    inner=st.integers(1, 6),
    left_bits=st.integers(0, 53),
    right_bits=st.integers(0, 62),
    divisor=st.sampled_from([1, 1000, 2**12, 2**24, 3 * 1000]),
    seed=st.integers(0, 2**32 - 1),
)
def test_wide_matmul_paths_agree(
    inner: int, left_bits: int, right_bits: int, divisor: int, seed: int
) -> None:
    """wide_matmul_round_div of small matrices: limb GEMMs and Python integers agree."""
    rng = np.random.default_rng(seed)
    left_bound, right_bound = (1 << left_bits) - 1, (1 << right_bits) - 1
    left = rng.choice([-left_bound, left_bound, 0], (3, inner)).astype(np.int64)
    right = rng.integers(-right_bound, right_bound, (inner, 4), endpoint=True, dtype=np.int64)
    backend = get_backend("numpy")
    arrays, integers = _both_paths(
        lambda: wide.wide_matmul_round_div(backend, left, right, divisor, left_bound, right_bound)
    )
    assert arrays == integers


def test_small_path_refuses_like_the_array_path() -> None:
    """A divisor the array path cannot take, and too many products, refuse on both paths."""
    a = np.ones((1, 2, 3), dtype=np.int64)
    for compute in (
        lambda: wide.stacked_products_round_div(a, a, (1 << 32) + 1),
        lambda: wide.mul_round_div(a[0, 0], a[0, 0], 1 << 127),
        lambda: wide.stacked_products_round_div(
            np.ones((8, 1), dtype=np.int64), np.ones((8, 1), dtype=np.int64), 2
        ),
    ):
        assert _both_paths(compute) == (OverflowRiskError, OverflowRiskError)


@settings(max_examples=150, deadline=None)
@given(
    left=st.lists(edge_values(BOUND62), min_size=3, max_size=3),
    right=st.lists(edge_values(BOUND62), min_size=3, max_size=3),
    batch=st.sampled_from([(1,), (3,), (2, 2)]),
    divisor=DIVISORS,
)
def test_terms_round_div_small_agrees_with_the_stacked_products(
    left: list[int], right: list[int], batch: tuple[int, ...], divisor: int
) -> None:
    """The tensor of a product (m = 1, k = 2 here) term by term with Python integers, and with
    the factors stacked for the array path: the same words, or both refuse."""
    terms = (((0, 0),), ((0, 1), (1, 0)), ((0, 2), (2, 0)), ((1, 1),), ((2, 2),))
    a = np.array(left, dtype=np.int64) * np.ones((*batch, 1), dtype=np.int64)
    b = np.array(right, dtype=np.int64)  # broadcast over the batch
    first = np.array([term[0] for term in terms])
    second = np.array([term[1] if len(term) == 2 else (0, 0) for term in terms])
    used = np.array([len(term) - 1 for term in terms])
    stacked_a = np.stack([a[..., first[:, 0]], a[..., second[:, 0]] * used], axis=-2)
    stacked_b = np.stack([b[..., first[:, 1]], b[..., second[:, 1]]], axis=-2)
    outcomes = []
    for limit, compute in (
        (10**9, lambda: wide.terms_round_div_small(a, b, batch, terms, divisor)),
        (0, lambda: wide.stacked_products_round_div(stacked_a, stacked_b, divisor)),  # arrays
    ):
        try:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(wide, "SMALL_PRODUCTS", limit)
                result = compute()
        except OverflowRiskError:
            outcomes.append(OverflowRiskError)
        else:
            outcomes.append((result.shape, result.tolist()))
    assert outcomes[0] == outcomes[1]
    with pytest.MonkeyPatch.context() as patch:  # too many products: the caller's array path
        patch.setattr(wide, "SMALL_TENSOR_PRODUCTS", 0)
        assert wide.terms_round_div_small(a, b, batch, terms, divisor) is None


@settings(max_examples=200, deadline=None)
@given(
    shift=st.integers(1, 30),
    factor=st.one_of(st.integers(-(2**53), 2**53), st.sampled_from([0, 1, -1, 3, -(2**52)])),
    seed=st.integers(0, 2**32 - 1),
    ties=st.booleans(),
)
def test_scalar_power_of_two_path_is_exact(shift: int, factor: int, seed: int, ties: bool) -> None:
    """A scalar factor and a divisor 2**s with a proved product bound: the int64 path rounds
    like Python integers (halves away from zero, ties of both signs included) and agrees with
    the 128-bit path word for word."""
    rng = np.random.default_rng(seed)
    divisor = 1 << shift
    # the largest |c| the proof allows: |c * factor| / 2**s below 2**62
    room = min(BOUND62, ((1 << 62) * divisor - 1) // max(abs(factor), 1))
    values = rng.integers(-room, room, 200, endpoint=True, dtype=np.int64)
    values[:4] = [room, -room, 0, 1]
    if ties and factor % 2:  # c * factor = (odd) 2**(s - 1): an exact half, both signs
        half = (1 << (shift - 1)) * pow(factor % divisor, -1, divisor) % divisor
        values[4:8] = [half, -half, half + divisor, -half - divisor]
    a = values[:, None]
    b = np.array([factor], dtype=np.int64)
    bound = int(np.abs(values).max()) * abs(factor)
    got = wide.mul_round_div(a, b, divisor, bound)
    want = [[round_half_away(int(v) * factor, divisor)] for v in values]
    assert got.dtype == np.int64 and got.tolist() == want
    assert got.tolist() == wide.round_div_wide(wide.mul_wide(a, b), divisor).tolist()
