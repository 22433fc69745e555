"""The shortcuts of a batched training step compute what the general code computes, bit for bit.

* A product's tensor with a power-of-two divisor (``w`` and the scale powers of two) is read
  off the low words of the int64 sums and a float64 estimate (``wide.stacked_round_div_pow2``)
  instead of 128-bit arithmetic, where ``wide.estimate_applies`` proves the estimate close
  enough; it is compared with the 128-bit path at the edges of that proof (the largest
  magnitudes it accepts, ties, quotients near 2**62) and through whole products, refusals
  included.
* ``segment_sum`` sums the noise bounds of one shape as one stacked array; it is compared with
  the sums of each bound on its own.
* ``broadcast_batch`` keeps NumPy's broadcast shape per pair of shapes.
* Indexing without arrays (the views of a matrix product) skips the conversion of index arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hennframework.exceptions import InputError, OverflowRiskError
from hennframework.schemes.integer_vector import IntegerVectorScheme, native, wide
from hennframework.schemes.integer_vector.ciphertext import (
    SAFETY,
    Ciphertext,
    broadcast_batch,
)
from hennframework.testing.integer_vector import ciphertext_fields

pytestmark = pytest.mark.filterwarnings(
    "ignore::hennframework.exceptions.InsecureParametersWarning"
)

#: Everything a ciphertext carries (compared exactly).
fields = ciphertext_fields


def largest_accepted(count: int, shift: int) -> int:
    """The largest magnitude ``estimate_applies`` accepts (bisection on its integer test)."""
    low, high = 0, 1 << 130
    while low < high:
        middle = (low + high + 1) // 2
        if wide.estimate_applies(count, middle, shift):
            low = middle
        else:
            high = middle - 1
    return low


def both_paths(left: Any, right: Any, shift: int) -> tuple[Any, Any]:
    return (
        wide.stacked_round_div_pow2(left, right, shift),
        wide.stacked_products_round_div(left, right, 1 << shift),
    )


def assert_same_words(left: Any, right: Any, shift: int) -> None:
    fast, general = both_paths(left, right, shift)
    assert fast.dtype == general.dtype == np.int64
    assert fast.shape == general.shape
    assert fast.tobytes() == general.tobytes()


def in_range(left: Any, right: Any, shift: int) -> bool:
    """Whether ``stacked_round_div_pow2``'s preconditions hold: the estimate applies to the
    largest sum of magnitudes, and every rounded quotient is below 2**62."""
    products = np.abs(left.astype(object) * right.astype(object)).sum(axis=-2)
    magnitude = int(products.max()) if products.size else 0
    count = left.shape[-2]
    return wide.estimate_applies(count, magnitude, shift) and magnitude >> shift < (1 << 62) - 1


# -- the estimate against the 128-bit path -------------------------------------------------------
def test_estimate_applies_only_where_it_is_proved() -> None:
    assert not wide.estimate_applies(2, 1, 0)  # a divisor of 1: nothing to estimate
    assert not wide.estimate_applies(2, 1, 63)
    assert not wide.estimate_applies(0, 1, 40)
    assert not wide.estimate_applies(wide.MAX_PRODUCTS + 1, 1, 40)
    assert not wide.estimate_applies(2, -1, 40)
    assert wide.estimate_applies(2, 0, 52)
    for count, shift in [(1, 40), (2, 52), (2, 40), (3, 62), (2, 1)]:
        largest = largest_accepted(count, shift)
        assert wide.estimate_applies(count, largest, shift)
        assert not wide.estimate_applies(count, largest + 1, shift)
    # the default set's product (w f = 2**52): every tensor entry below 2**62 that two
    # coefficient bounds can prove is covered, save the last fraction of a bit
    assert largest_accepted(2, 52) > 2 ** (52 + 61)


@settings(max_examples=300, deadline=None)
@given(
    shift=st.integers(1, 62),
    count=st.integers(1, 3),
    left_bits=st.integers(0, 62),
    seed=st.integers(0, 2**32 - 1),
)
def test_estimate_is_the_128_bit_rounding(
    shift: int, count: int, left_bits: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    left = rng.integers(-(1 << left_bits), 1 << left_bits, (5, count, 3), endpoint=True)
    accepted_bits = largest_accepted(count, shift).bit_length()
    right_bits = max(min(62, accepted_bits - left_bits - 2, shift + 59 - left_bits), 0)
    right = rng.integers(-(1 << right_bits), 1 << right_bits, (5, count, 3), endpoint=True)
    if in_range(left, right, shift):
        assert_same_words(left, right, shift)


@pytest.mark.parametrize("shift", [1, 12, 24, 40, 52, 61, 62])
def test_estimate_rounds_ties_and_their_neighbours_halves_away_from_zero(shift: int) -> None:
    half = 1 << (shift - 1)
    values = [
        q * (1 << shift) + sign * half + offset
        for q in range(-3, 4)
        for sign in (-1, 1)
        for offset in (-1, 0, 1)
    ]
    values += [0, 1, -1, (1 << 62) - 1, -(1 << 62) + 1]
    column = np.array([v for v in values if abs(v) < 1 << 62], dtype=np.int64).reshape(-1, 1, 1)
    assert_same_words(column, np.ones_like(column), shift)
    assert_same_words(column, -np.ones_like(column), shift)


@pytest.mark.parametrize("shift", [40, 52])
def test_estimate_at_the_largest_magnitudes_it_accepts(shift: int) -> None:
    """Factors whose float64 roundings are as far off as they get (odd values near 2**62),
    summed up to the largest magnitude ``estimate_applies`` accepts, rounding to quotients up
    to 2**62: the words of the 128-bit path."""
    largest = min(largest_accepted(2, shift), ((1 << 62) - 2) << shift)
    big = (1 << 62) - 1
    other = largest // (2 * big)
    rows = []
    for a, b in [(big, other), (big - 2, other - 1), (big // 3 | 1, 3 * other - 7)]:
        for signs in [(1, 1), (1, -1), (-1, -1)]:
            rows.append(([signs[0] * a, signs[1] * a], [b, b]))
            rows.append(([a, -a + 1], [b, b]))
            rows.append(([signs[0] * a, 0], [signs[1] * b, 0]))
    left = np.array([[[x] for x in row[0]] for row in rows], dtype=np.int64)
    right = np.array([[[x] for x in row[1]] for row in rows], dtype=np.int64)
    assert in_range(left, right, shift)
    assert_same_words(left, right, shift)


def test_estimate_broadcasts_as_the_128_bit_path() -> None:
    rng = np.random.default_rng(3)
    left = rng.integers(-(1 << 61), 1 << 61, (6, 4, 1, 2, 3))
    right = rng.integers(-(1 << 40), 1 << 40, (1, 4, 1, 2, 3))
    assert in_range(left, right, 52)
    assert_same_words(left, right, 52)


# -- whole products: the estimate against the general code ---------------------------------------
@pytest.fixture(scope="module", params=["default", "vhe", "seed"])
def scheme_and_keys(request: pytest.FixtureRequest) -> tuple[IntegerVectorScheme, Any]:
    scheme = IntegerVectorScheme(request.param)
    return scheme, scheme.keygen(seed=21, max_dim=2, dims=(1, 2), products=(1, 2))


def product_outcome(left: Ciphertext, right: Ciphertext) -> Any:
    try:
        return fields(left * right)
    except OverflowRiskError as error:
        return type(error), str(error)


@pytest.mark.parametrize(
    ("left_shape", "right_shape"),
    [((32, 1), (32, 1)), ((24, 1), (24, 1)), ((32, 8, 1), (1, 8, 1)), ((3, 40), (40,)), ((5,), ())],
)
@pytest.mark.parametrize("spread", [1.0, 24.0, 40.0, 200.0])
def test_products_give_the_words_of_the_general_code(
    scheme_and_keys: tuple[IntegerVectorScheme, Any],
    monkeypatch: pytest.MonkeyPatch,
    left_shape: tuple[int, ...],
    right_shape: tuple[int, ...],
    spread: float,
) -> None:
    """Fixed-point products (divisor w f), from small values to ones whose tensor entries
    need the actual magnitudes or are refused: the same words, noise bounds and refusals
    with the estimate as without it."""
    scheme, keys = scheme_and_keys
    rng = np.random.default_rng(len(left_shape) + int(spread))
    left = scheme.encrypt_tensor(rng.uniform(-spread, spread, left_shape), keys.public, seed=1)
    right = scheme.encrypt_tensor(rng.uniform(-spread, spread, right_shape), keys.public, seed=2)
    square = left * left if left.coeff_bound < 1 << 50 else left
    estimates: list[int] = []
    with monkeypatch.context() as patch:
        patch.setattr(wide, "stacked_round_div_pow2", counted(estimates))
        fast = [product_outcome(left, right), product_outcome(square, left)]
    with monkeypatch.context() as patch, native.disabled():
        patch.setattr(wide, "estimate_applies", lambda *args: False)
        general = [product_outcome(left, right), product_outcome(square, left)]
    assert fast == general
    if native.available():
        assert not estimates  # the compiled kernel forms every tensor entry
    elif scheme.params.name == "default" and spread == 1.0 and left.size >= 32:
        assert estimates  # the estimate ran (w f = 2**52, many products)
    if scheme.params.name == "vhe":
        assert not estimates  # f = 1000: no power of two to estimate


def counted(calls: list[int]) -> Any:
    """``stacked_round_div_pow2`` counting its calls."""
    estimate = wide.stacked_round_div_pow2

    def run(left: Any, right: Any, shift: int) -> Any:
        calls.append(shift)
        return estimate(left, right, shift)

    return run


@pytest.mark.parametrize("m", [1, 2])
def test_integer_products_give_the_words_of_the_general_code(
    scheme_and_keys: tuple[IntegerVectorScheme, Any], monkeypatch: pytest.MonkeyPatch, m: int
) -> None:
    """Integer products (divisor w) of m-vectors, up to the largest plaintexts."""
    scheme, keys = scheme_and_keys
    limit = scheme.params.max_plaintext
    rng = np.random.default_rng(m)
    for bound in (3, 1 << 20, limit):
        x = rng.integers(-bound, bound, (40, m), endpoint=True)
        y = rng.integers(-bound, bound, (40, m), endpoint=True)
        left = scheme.encrypt(x, keys.public, dim=m, seed=3)
        right = scheme.encrypt(y, keys.public, dim=m, seed=4)
        fast = product_outcome(left, right)
        with monkeypatch.context() as patch:
            patch.setattr(wide, "estimate_applies", lambda *args: False)
            general = product_outcome(left, right)
        assert fast == general
        if bound == 3:
            assert np.array_equal(scheme.decrypt(left * right, keys), x * y)


# -- segment sums --------------------------------------------------------------------------------
def run_sums_alone(values: Any, bounds: Any, rows: int, size: int) -> Any:
    """The run sums of one noise bound on its own (widened for the float prefix sums)."""
    prefix = np.concatenate([np.zeros((1, *values.shape[1:])), values.cumsum(axis=0)], axis=0)
    sums = prefix[bounds[1:]] - prefix[bounds[:-1]]
    slack = float(prefix[-1].max()) * 2.0**-50 * max(rows, 1) if size else 0.0
    return sums * SAFETY + slack


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf - inf
def test_segment_sum_bounds_are_each_bounds_run_sums(
    scheme_and_keys: tuple[IntegerVectorScheme, Any],
) -> None:
    scheme, keys = scheme_and_keys
    rng = np.random.default_rng(5)
    tensor = scheme.encrypt_tensor(rng.normal(0, 1, (9, 3)), keys.public, seed=6)
    tensor = tensor * tensor  # noise bounds that differ per item
    noise = tensor.noise.copy()
    noise[4, 1] = np.inf
    det = tensor.noise_det.copy()
    det[2, 0] = np.nan
    cases = {
        "tracked": (tensor.noise, tensor.noise_det, tensor.noise_sg),
        "infinite and NaN": (noise, det, tensor.noise_sg),
        "untracked": (tensor.noise, None, None),
        "parts of another shape": (tensor.noise, tensor.noise_det[:, :1], tensor.noise_sg),
    }
    for name, (worst, part_det, part_sg) in cases.items():
        source = Ciphertext(
            scheme, tensor.data, 1, tensor.scale_int, worst, tensor.key_id,
            tensor.coeff_bound, part_det, part_sg,
        )  # fmt: skip
        for offsets in ([0, 4, 4, 9], [0, 9], [0, 0, 9], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]):
            result = source.segment_sum(offsets)
            bounds = np.asarray(offsets)
            expected = [run_sums_alone(worst, bounds, 9, source.size)]
            if part_det is not None and part_sg is not None:
                expected += [
                    run_sums_alone(part, bounds, 9, source.size) for part in (part_det, part_sg)
                ]
            got = [result.noise, result.noise_det, result.noise_sg][: len(expected)]
            assert [g.tobytes() for g in got] == [e.tobytes() for e in expected], name
            assert [g.shape for g in got] == [e.shape for e in expected], name
            if part_det is None:
                assert result.noise_det is None and result.noise_sg is None
            sums = np.add.reduceat(tensor.data, bounds[:-1], axis=0)
            sums[np.diff(bounds) == 0] = 0
            assert np.array_equal(result.data, sums)


def test_segment_sums_of_no_rows_and_bad_offsets(
    scheme_and_keys: tuple[IntegerVectorScheme, Any],
) -> None:
    scheme, keys = scheme_and_keys
    tensor = scheme.encrypt_tensor(np.ones((4, 2)), keys.public, seed=7)
    empty = tensor[:0].segment_sum([0, 0, 0])
    assert empty.shape == (2, 2) and not empty.data.any()
    assert empty.noise.tobytes() == (np.zeros((2, 2)) * SAFETY + 0.0).tobytes()
    for offsets in ([0, 3, 2, 4], [1, 4], [0, 3], [[0, 4]], []):
        with pytest.raises(InputError, match="offsets must rise"):
            tensor.segment_sum(offsets)


# -- broadcast shapes ----------------------------------------------------------------------------
def test_broadcast_batch_is_numpys_shape_and_refuses_every_time() -> None:
    for left, right in [((3, 1), (1, 4)), ((2, 1, 5), (4, 1)), ((1,), (6,)), ((3, 1), (1, 4))]:
        assert broadcast_batch(left, right, "combine") == np.broadcast_shapes(left, right)
    for _ in range(2):
        with pytest.raises(InputError, match=r"cannot combine batches of shapes \(3,\) and \(4,\)"):
            broadcast_batch((3,), (4,), "combine")


# -- indexing ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "index",
    [
        (slice(None), slice(None), None),
        (None, slice(None)),
        1,
        (slice(1, 3), 0),
        np.array([2, 0, 2]),
        (np.array([1, 0]), slice(None)),
        [0, 2],
        (Ellipsis, None),
    ],
    ids=repr,
)
def test_indexing_indexes_every_array_alike(
    scheme_and_keys: tuple[IntegerVectorScheme, Any], index: Any
) -> None:
    scheme, keys = scheme_and_keys
    tensor = scheme.encrypt_tensor(np.arange(12.0).reshape(3, 4), keys.public, seed=8)
    tensor = tensor * tensor
    view = tensor[index]
    key = index if isinstance(index, tuple) else (index,)
    assert view.data.tobytes() == tensor.data[(*key, slice(None))].tobytes()
    for got, source in [
        (view.noise, tensor.noise),
        (view.noise_det, tensor.noise_det),
        (view.noise_sg, tensor.noise_sg),
    ]:
        assert got.shape == source[key].shape and got.tobytes() == source[key].tobytes()
    assert view.message_bound().tobytes() == tensor.message_bound()[key].tobytes()
    untracked = Ciphertext(
        scheme, tensor.data, 1, tensor.scale_int, tensor.noise, tensor.key_id, tensor.coeff_bound
    )
    assert untracked[index].noise_det is None and untracked[index].noise_sg is None


def test_indexing_with_a_ciphertext_is_refused(
    scheme_and_keys: tuple[IntegerVectorScheme, Any],
) -> None:
    scheme, keys = scheme_and_keys
    tensor = scheme.encrypt_tensor(np.ones(3), keys.public, seed=9)
    for index in (tensor, (slice(None), tensor), (np.array([0]), tensor)):
        with pytest.raises(InputError, match="cannot index with a ciphertext"):
            tensor[index]
