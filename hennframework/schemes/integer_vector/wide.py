"""Exact 128-bit integer arithmetic on int64 arrays, written with array operators only.

The tensor step of a ciphertext product needs ``round(c1_i * c2_j / d)`` exactly, where the
product itself reaches ~2**124 and only the quotient fits in int64; a plaintext matrix times
ciphertexts, rescaled, needs ``round((P @ C) / f)`` where ``P @ C`` can pass 2**63. float64 would
lose bits above 2**53 and int64 would wrap silently (the 2017 notebook's failure: an inner product
of encryptions of 1000.0 decrypted to -1.1e12 instead of 4e12). Here a 128-bit value is a pair
``(hi, lo)``: ``hi`` int64, ``lo`` uint64, value = hi * 2**64 + lo (two's complement).

Every function states the bounds its inputs must satisfy and why each intermediate fits:

* ``mul_wide``: |a|, |b| < 2**62 (checked by the caller from tracked bounds); 32-bit limbs make
  the low partial product < 2**64 (read as unsigned) and the middle sum < 2**63.
* ``wide_add``: exact modulo 2**128, so a sum of several terms is exact whenever the *final*
  value lies in (-2**127, 2**127), whatever the intermediate sums.
* ``sum_products_round_div``: at most 7 products of magnitude < 2**124, so |sum| < 2**127.
* ``wide_matmul_round_div``: both operands are split into limbs whose widths are chosen from the
  proven bounds (``plan_matmul``) so that every limb GEMM is below 2**63 (exact in int64), and the
  sum of all shifted limb products is proved below 2**127 before anything runs.
* ``round_div_wide``: divides by ``2**s * odd`` (odd < 2**32): a shift, then a long division on
  32-bit chunks (every step < 2**64); a quotient of 63 bits or more raises.
* ``mul_round_div`` with a proved product bound, one factor and a divisor ``2**s``: int64 pieces
  proved below 2**63 (``_scalar_round_div_pow2``), no 128-bit value at all.
* ``stacked_round_div_pow2`` (sums of products over ``2**s``, NumPy): the low ``64 - s`` bits of
  each quotient from the int64 sums (exact modulo 2**64), the rest from a float64 estimate whose
  error ``estimate_applies`` proves below ``2**(63 - s) - 1``, so only one quotient fits both.

These functions work on NumPy and CuPy arrays alike: they only use operators and ``.astype`` /
``.view``, so they stay on the device. For a few values in NumPy arrays (batch-1 training),
the same results come from Python integers, which have no width limit, at a fraction of the
fixed cost of the thirty-odd array operations (``SMALL_PRODUCTS``); both paths round and
refuse alike, and the tests compare them word for word.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np

from hennframework.exceptions import OverflowRiskError

__all__ = [
    "LimbSplit",
    "Wide",
    "estimate_applies",
    "mul_round_div",
    "mul_wide",
    "plan_accepts",
    "plan_matmul",
    "round_div_wide",
    "stacked_products_round_div",
    "stacked_round_div_pow2",
    "sum_products_round_div",
    "terms_round_div_small",
    "wide_add",
    "wide_matmul_round_div",
]

Wide = tuple[Any, Any]  # (hi: int64 array, lo: uint64 array)

MASK32 = (1 << 32) - 1
#: The one int64 value whose magnitude is 2**63 (a quotient that must be refused).
INT64_MIN = -(1 << 63)
LIMIT = 1 << 62
#: A limb GEMM is exact in int64 (and so in any backend's ``matmul_int_wrap``, exact modulo
#: 2**64) when every result is proved to have a magnitude below this.
GEMM_LIMIT = 1 << 63
#: A 128-bit result is read correctly (two's complement) when its magnitude is below this.
WIDE_LIMIT = 1 << 127
#: ``mul_wide`` needs both factors below 2**62 in magnitude, so a product is below 2**124 and
#: at most this many products can be summed in 128 bits (7 * 2**124 < 2**127).
MAX_PRODUCTS = 7


def wide_add(x: Wide, y: Wide) -> Wide:
    """x + y for 128-bit values, exact modulo 2**128 (so exact when the result fits)."""
    lo = x[1] + y[1]
    carry = (lo < x[1]).astype("int64")
    return x[0] + y[0] + carry, lo


def mul_wide(a: Any, b: Any) -> Wide:
    """Exact signed 128-bit product of int64 arrays with |a|, |b| < 2**62 (broadcasting).

    The caller proves the bounds (ciphertext coefficients are below 2**62 by invariant, encoded
    plaintexts below 2**53). Signed 32-bit limbs ``a = a1 2**32 + a0`` with ``a0 = a & (2**32 -
    1)`` in [0, 2**32) and ``a1 = a >> 32`` in [-2**30, 2**30): ``a0 b0`` is below 2**64 (its
    int64 product wraps, but read as uint64 it is exact), ``a1 b0 + a0 b1`` below 2**63 and
    ``a1 b1`` below 2**60 in magnitude. ``a b = a1 b1 2**64 + (a1 b0 + a0 b1) 2**32 + a0 b0``:
    the middle term is split into a high word (arithmetic shift) and a low one (wrapping
    shift), so the sum needs one carry and no sign handling.
    """
    a0, a1 = a & MASK32, a >> 32
    b0, b1 = b & MASK32, b >> 32
    low = (a0 * b0).view("uint64")  # exact: below 2**64
    mid = a1 * b0 + a0 * b1  # |mid| < 2**63
    # mid * 2**32 = (mid >> 32) * 2**64 + ((mid << 32) mod 2**64)
    lo = low + (mid.view("uint64") << 32)
    # the carry of the low-word addition (a bool array adds to int64 as 0 or 1)
    hi = a1 * b1 + (mid >> 32) + (lo < low)
    return hi, lo


def round_div_wide(value: Wide, divisor: int) -> Any:
    """round(value / divisor) to int64, halves away from zero; raises if the result does not fit.

    ``value`` (``hi`` int64, ``lo`` uint64) must lie in (-2**127, 2**127) (two's complement);
    adding ``divisor // 2`` to its magnitude stays below 2**128 because the divisor is below
    2**127.
    """
    shift, odd = _divisor_parts(divisor)
    hi, lo = value
    # the magnitude: a conditional two's-complement negation, x -> (x ^ mask) - mask with
    # mask = -1 for negative values and 0 otherwise (the low word borrows into the high one)
    mask = hi >> 63
    mask_lo = mask.view("uint64")
    flipped = lo ^ mask_lo
    mag_lo = flipped - mask_lo  # ~lo + 1 when negative, wrapping modulo 2**64
    mag_hi = (hi ^ mask) + (mag_lo < flipped)  # carry: ~lo + 1 wrapped exactly when lo == 0
    # add divisor // 2 for rounding half away from zero
    half = divisor // 2
    half_lo, half_hi = half & ((1 << 64) - 1), half >> 64
    if half_lo:
        # a uint64 scalar, not a Python int: CuPy passes Python ints to kernels as int64
        new_lo = mag_lo + mag_lo.dtype.type(half_lo)
        mag_hi = mag_hi + (new_lo < mag_lo)
        mag_lo = new_lo
    if half_hi:
        mag_hi = mag_hi + half_hi
    # shift right by ``shift`` (floor of the magnitude)
    if shift:
        if shift >= 64:
            mag_lo = (mag_hi >> (shift - 64)).view("uint64")
            mag_hi = mag_hi * 0
        else:
            mag_lo = (mag_lo >> shift) | (mag_hi.view("uint64") << (64 - shift))
            mag_hi = mag_hi >> shift
    if odd > 1:
        # remainder < odd < 2**32, so (remainder << 32) | chunk < 2**64: no step wraps
        unsigned_hi = mag_hi.view("uint64")
        chunks = [unsigned_hi >> 32, unsigned_hi & MASK32, mag_lo >> 32, mag_lo & MASK32]
        current = chunks[0]  # the remainder before the first chunk is 0
        quotient = []
        for chunk in chunks[1:]:
            quotient.append(current // odd)
            current = ((current % odd) << 32) | chunk
        quotient.append(current // odd)
        mag_hi = ((quotient[0] << 32) | quotient[1]).view("int64")
        mag_lo = (quotient[2] << 32) | quotient[3]
    if bool((mag_hi.view("uint64") | (mag_lo >> 63)).any()):
        raise OverflowRiskError(QUOTIENT_TOO_LARGE)
    # the sign back: the same conditional negation, on a magnitude below 2**63
    return (mag_lo.view("int64") ^ mask) - mask


QUOTIENT_TOO_LARGE = (
    "a rounded quotient does not fit in 63 bits; the operation was refused rather than "
    "wrapped. Use smaller values, a smaller scale, or a parameter set with a smaller w."
)


def _divisor_parts(divisor: int) -> tuple[int, int]:
    """``(s, odd)`` with ``divisor = 2**s * odd``; refuses divisors ``round_div_wide`` cannot take."""
    if divisor < 1:
        raise ValueError("divisor must be a positive integer")
    if divisor >= WIDE_LIMIT:
        raise OverflowRiskError(
            f"divisor 2**{divisor.bit_length() - 1} is too large for 128-bit division; rescale by "
            "smaller steps."
        )
    shift = (divisor & -divisor).bit_length() - 1
    odd = divisor >> shift
    if odd >= 1 << 32:
        raise OverflowRiskError(
            f"divisor {divisor} has an odd part of {odd.bit_length()} bits; at most 32 are supported. "
            "Use a power-of-two w or a smaller scale."
        )
    return shift, odd


#: Up to this many products, they are formed with Python integers on the host
#: (``_products_round_div_ints``): for a handful of values, the thirty-odd array operations of
#: the 128-bit path cost far more than the arithmetic (per-review training multiplies a few
#: ciphertexts at a time).
SMALL_PRODUCTS = 64
#: The same for the tensor of a ciphertext product (``terms_round_div_small``), which reads
#: each operand once and forms its products with C-level ``map`` calls: faster up to here.
SMALL_TENSOR_PRODUCTS = 192
#: ... and up to here where ``stacked_round_div_pow2`` applies (cheaper than the 128-bit path).
ESTIMATE_SMALL_PRODUCTS = 96


def _small_on_host(left: Any, right: Any) -> tuple[int, ...] | None:
    """The broadcast shape of two operands if the Python-integer path applies to them (NumPy
    arrays, at most ``SMALL_PRODUCTS`` products), else None."""
    if not (
        type(left) is np.ndarray  # host arrays (a device array type may subclass ndarray)
        and type(right) is np.ndarray
        and left.size <= SMALL_PRODUCTS
        and right.size <= SMALL_PRODUCTS
    ):
        return None
    if left.shape == right.shape or (right.size == 1 and right.ndim <= left.ndim):
        shape = left.shape  # the common cases, without NumPy's general rule
    else:
        shape = np.broadcast_shapes(left.shape, right.shape)
    return shape if math.prod(shape) <= SMALL_PRODUCTS else None


def _products_round_div_ints(
    left: Any, right: Any, shape: tuple[int, ...], divisor: int, axis: bool
) -> Any:
    """What ``stacked_products_round_div`` (``axis``) or ``round_div_wide(mul_wide(...))``
    returns, computed with Python integers (exact: no width limit), for NumPy arrays.

    Rounds halves away from zero and refuses quotients of 63 bits or more, as
    ``round_div_wide`` does, with the same errors; the bounds its callers prove keep both the
    products and the quotients in range, so the two paths give the same int64 results.
    """
    a = left if left.shape == shape else _broadcast_copy(left, shape)
    if not axis and right.size == 1:  # a scalar factor (multiply_plain)
        factor = int(right.reshape(-1)[0])
        totals = list(map(operator.mul, a.ravel().tolist(), itertools.repeat(factor)))
        return _round_div_ints(totals, divisor).reshape(shape)
    b = right if right.shape == shape else _broadcast_copy(right, shape)
    if axis:
        count = shape[-2]
        _check_count(count)
        out_shape = (*shape[:-2], shape[-1])
        rows_a = np.moveaxis(a, -2, 0).reshape(count, -1).tolist()
        rows_b = np.moveaxis(b, -2, 0).reshape(count, -1).tolist()
        totals = [0] * math.prod(out_shape)
        for row_a, row_b in zip(rows_a, rows_b, strict=True):
            totals = [t + x * y for t, x, y in zip(totals, row_a, row_b, strict=True)]
    else:
        out_shape = shape
        totals = list(map(operator.mul, a.ravel().tolist(), b.ravel().tolist()))
    return _round_div_ints(totals, divisor).reshape(out_shape)


def _broadcast_copy(array: Any, shape: tuple[int, ...]) -> Any:
    """A new NumPy array of ``shape`` holding ``array`` broadcast to it (the values
    ``numpy.broadcast_to`` gives, at a third of its cost for a few values). The callers pass
    shapes that broadcast (the batch shape both operands were checked against)."""
    full = np.empty(shape, dtype=array.dtype)
    full[...] = array
    return full


def _round_div_ints(values: list[int], divisor: int) -> Any:
    """round(v / divisor) of Python integers, halves away from zero, as a flat int64 array;
    refuses quotients of 63 bits or more (``round_div_wide``'s rule and error)."""
    shift, odd = _divisor_parts(divisor)
    half = divisor // 2
    if odd == 1:  # a power of two: a shift is the floor division, and cheaper
        quotients = [(v + half) >> shift if v >= 0 else -((half - v) >> shift) for v in values]
    else:
        quotients = [(v + half) // divisor if v >= 0 else -((half - v) // divisor) for v in values]
    # NumPy refuses every value outside [-2**63, 2**63) (OverflowError) while converting, so
    # only -2**63 itself is left to look for: |quotient| < 2**63 as round_div_wide demands
    try:
        array = np.array(quotients, dtype=np.int64)
    except OverflowError:
        raise OverflowRiskError(QUOTIENT_TOO_LARGE) from None
    if INT64_MIN in quotients:
        raise OverflowRiskError(QUOTIENT_TOO_LARGE)
    return array


def terms_round_div_small(
    left: Any,
    right: Any,
    batch: tuple[int, ...],
    terms: tuple[tuple[tuple[int, int], ...], ...],
    divisor: int,
    limit: int | None = None,
) -> Any | None:
    """``round(sum(left[..., i] * right[..., j] for i, j in term) / divisor)`` for every term,
    over the broadcast ``batch`` (the last axis holds the terms), with Python integers: for a
    few NumPy ciphertexts (at most ``limit`` products, ``SMALL_TENSOR_PRODUCTS`` unless
    given); None otherwise, where an array path
    (``stacked_products_round_div``, or ``stacked_round_div_pow2`` where it applies, whose
    caller lowers the limit) is the faster.

    A term has at most ``MAX_PRODUCTS`` products of factors below 2**62 (its sum is then below
    2**127, as on the array path); results are rounded and refused as ``round_div_wide``
    does, so both paths give the same int64 words or the same error.
    """
    products, longest = _term_counts(terms)
    if (
        type(left) is not np.ndarray
        or type(right) is not np.ndarray
        or math.prod(batch) * products > (SMALL_TENSOR_PRODUCTS if limit is None else limit)
    ):
        return None
    _check_count(longest)
    width_a, width_b = left.shape[-1], right.shape[-1]
    # one list per ciphertext entry (a column), so each product is one C-level map
    full_a = left if left.shape[:-1] == batch else _broadcast_copy(left, (*batch, width_a))
    full_b = right if right.shape[:-1] == batch else _broadcast_copy(right, (*batch, width_b))
    columns_a = full_a.reshape(-1, width_a).T.tolist()
    columns_b = full_b.reshape(-1, width_b).T.tolist()
    sums: list[int] = []
    for (i, j), *more in terms:
        total = list(map(operator.mul, columns_a[i], columns_b[j]))
        for i_more, j_more in more:
            total = list(
                map(operator.add, total, map(operator.mul, columns_a[i_more], columns_b[j_more]))
            )
        sums += total
    by_term = _round_div_ints(sums, divisor).reshape(len(terms), -1)
    return np.ascontiguousarray(by_term.T).reshape(*batch, len(terms))


@functools.lru_cache(maxsize=64)
def _term_counts(terms: tuple[tuple[tuple[int, int], ...], ...]) -> tuple[int, int]:
    """The number of products in ``terms`` and the most in one term (1 if there is none):
    the same few tuples come with every product, so they are counted once."""
    return sum(len(term) for term in terms), max((len(term) for term in terms), default=1)


def mul_round_div(a: Any, b: Any, divisor: int, product_bound: int | None = None) -> Any:
    """round(a * b / divisor) exactly, as int64 (broadcasting): ``mul_wide`` then
    ``round_div_wide``, with their preconditions (|a|, |b| < 2**62).

    ``product_bound``, where the caller has proved ``|a * b| <= product_bound``, lets a single
    factor ``b`` and a divisor ``2**s`` take ``_scalar_round_div_pow2``: a few int64 operations
    instead of the 128-bit ones (the results are the same); it is taken before the Python
    integers of a small array from ``SCALAR_INT_VALUES`` values up, where it costs less.
    """
    shift = divisor.bit_length() - 1
    scalar = (
        product_bound is not None
        and b.size == 1
        and divisor == 1 << shift
        and 1 <= shift <= SCALAR_SHIFT_LIMIT
        and product_bound >> shift < LIMIT
    )
    shape = None if scalar and a.size > SCALAR_INT_VALUES else _small_on_host(a, b)
    if shape is not None:
        return _products_round_div_ints(a, b, shape, divisor, axis=False)
    if scalar:
        factor = int(b.reshape(-1)[0])
        result = _scalar_round_div_pow2(a, abs(factor), shift)
        return -result if factor < 0 else result
    return round_div_wide(mul_wide(a, b), divisor)


#: Up to this many values, a product by one factor and a rounded division by ``2**s``
#: (``mul_round_div`` with a product bound) costs less in Python integers than in the int64
#: operations of ``_scalar_round_div_pow2`` (16 values: 4.5 against 8.3 microseconds; 64:
#: 11.7 against 8.5, on a 2-core AMD EPYC).
SCALAR_INT_VALUES = 32


#: The largest ``s`` for which ``_scalar_round_div_pow2`` keeps every intermediate in int64.
SCALAR_SHIFT_LIMIT = 30


def _scalar_round_div_pow2(c: Any, p: int, s: int) -> Any:
    """round(c * p / 2**s), halves away from zero, for int64 ``|c| < 2**62``, an integer
    ``0 <= p < 2**62``, ``1 <= s <= 30`` and ``|c p| / 2**s < 2**62`` (the caller's proof).

    With ``p = ph 2**s + pl`` (``0 <= pl < 2**s``) and ``c = c1 2**32 + c0`` (``c0 = c &
    (2**32 - 1)``, ``c1 = c >> 32``): ``c p / 2**s = I + L / 2**s`` with ``I = c ph + c1 pl
    2**(32 - s)`` and ``L = c0 pl``. Each piece fits int64: ``|c ph| <= |c p| / 2**s < 2**62``,
    ``|c1 pl 2**(32 - s)| < 2**30 2**s 2**(32 - s) = 2**62``, so ``|I| < 2**63``;
    ``0 <= L < 2**(32 + s) <= 2**62``. Rounding half up is ``I + ((L + 2**(s - 1)) >> s)``;
    halves away from zero differ only at a tie (``L mod 2**s = 2**(s - 1)``) of a negative
    value, which is exactly a tie whose half-up result is <= 0: there the result is one less.
    """
    high, low_factor = divmod(p, 1 << s)
    whole = c * high + ((c >> 32) * low_factor << (32 - s))
    low = (c & MASK32) * low_factor
    half = 1 << (s - 1)
    rounded = whole + ((low + half) >> s)
    tie = ((low & ((1 << s) - 1)) == half) & (rounded <= 0)
    return rounded - tie


def _check_count(count: int) -> None:
    if not 1 <= count <= MAX_PRODUCTS:
        raise OverflowRiskError(
            f"sum_products_round_div takes 1 to {MAX_PRODUCTS} products (more could pass 2**127), "
            f"got {count}"
        )


def sum_products_round_div(pairs: list[tuple[Any, Any]], divisor: int) -> Any:
    """round(sum(a * b for a, b in pairs) / divisor), exactly, as int64.

    Every factor must be below 2**62 in magnitude (``mul_wide``), so each product is below
    2**124 and up to ``MAX_PRODUCTS`` of them sum below 2**127 (exact in 128 bits).
    """
    _check_count(len(pairs))
    total: Wide | None = None
    for a, b in pairs:
        product = mul_wide(a, b)
        total = product if total is None else wide_add(total, product)
    assert total is not None
    return round_div_wide(total, divisor)


def stacked_products_round_div(left: Any, right: Any, divisor: int) -> Any:
    """round(sum_i left[..., i, :] * right[..., i, :] / divisor) exactly, as int64.

    The products a sum is made of lie along the second-to-last axis (at most ``MAX_PRODUCTS``;
    a zero factor contributes nothing), so any number of such sums cost one pass of array
    operations: ``mul_wide`` once over everything, the sums, one ``round_div_wide``. Factors
    below 2**62 in magnitude, as for ``sum_products_round_div``; the result drops that axis.
    """
    shape = _small_on_host(left, right)
    if shape is not None:
        return _products_round_div_ints(left, right, shape, divisor, axis=True)
    hi, lo = mul_wide(left, right)
    count = int(hi.shape[-2])
    _check_count(count)
    total: Wide = (hi[..., 0, :], lo[..., 0, :])
    for index in range(1, count):
        total = wide_add(total, (hi[..., index, :], lo[..., index, :]))
    return round_div_wide(total, divisor)


def estimate_applies(count: int, magnitude: int, shift: int) -> bool:
    """Whether ``stacked_round_div_pow2`` is exact for sums of ``count`` products whose
    magnitudes add up to at most ``magnitude`` (each sum), divided by ``2**shift``.

    The float64 estimate of a sum of products (factors rounded to float64, products, a sum in
    any order) is off by at most ``gamma(count + 2) * magnitude`` (``gamma(n) = n u / (1 - n
    u) < 1.01 n u`` with ``u = 2**-53``, the standard bound of forward error analysis), so the
    estimated quotient is off by that over ``2**shift``; the integer nearest to it is then
    within that plus 1 of the rounded quotient, which must stay below half the modulus
    ``2**(64 - shift)`` of the exactly known low bits. In integers: ``101 (count + 2)
    magnitude < 100 * 2**(53 + shift) * (2**(63 - shift) - 1)``.
    """
    if not 1 <= shift <= 62 or not 1 <= count <= MAX_PRODUCTS or magnitude < 0:
        return False
    return 101 * (count + 2) * magnitude < 100 * (1 << (53 + shift)) * ((1 << (63 - shift)) - 1)


def stacked_round_div_pow2(left: Any, right: Any, shift: int) -> Any:
    """What ``stacked_products_round_div(left, right, 2**shift)`` returns, for NumPy int64
    arrays whose products the caller has proved in range: with ``magnitude`` a bound on each
    sum of the products' magnitudes, ``estimate_applies(count, magnitude, shift)`` for the
    stacked product count, and ``magnitude / 2**shift`` below 2**62 (so every quotient and
    its estimate fit in int64, and none is refused).

    A quotient is not formed in 128 bits but read off two cheaper pieces: its low ``64 -
    shift`` bits exactly, from the int64 sum of the products (exact modulo 2**64, which
    2**(64 - shift) divides), and its size from the float64 sum of the products, close enough
    (``estimate_applies``) that one quotient has both. With ``h = 2**(shift - 1)``, ``F =
    floor((v + h) / 2**shift)`` is the rounding half up; it differs from rounding halves away
    from zero only at the tie of a negative value, where F is at most 0 and is one too large
    (as in ``_scalar_round_div_pow2``).
    """
    modulus = 1 << (64 - shift)
    centre = modulus >> 1
    half = 1 << (shift - 1)
    # the exact low words: int64 products and sums wrap modulo 2**64
    words = _sum_rows(left * right).view(np.uint64)
    floor_low = ((words + np.uint64(half)) >> np.uint64(shift)).view(np.int64)  # F mod modulus
    tie = (words & np.uint64((1 << shift) - 1)) == np.uint64(half)
    totals = _sum_rows(left.astype(np.float64) * right.astype(np.float64))
    estimate = np.rint(totals * 2.0**-shift).astype(np.int64)
    # F is the one value of its residue class within half the modulus of the estimate; the
    # int64 steps may wrap, but only modulo 2**64, which the modulus divides
    floor = estimate + (((floor_low - estimate + centre) & (modulus - 1)) - centre)
    return floor - (tie & (floor <= 0))


def _sum_rows(stacked: Any) -> Any:
    """The sum over the second-to-last axis, one row at a time (NumPy's reduction over a
    short inner axis costs several times more on the small arrays of a product)."""
    total = stacked[..., 0, :]
    for index in range(1, stacked.shape[-2]):
        total = total + stacked[..., index, :]
    return total


# -- plaintext matrix @ ciphertexts, exactly ----------------------------------------------------
@dataclass(frozen=True)
class LimbSplit:
    """How to split int64 values with ``|v| <= bound`` into ``count`` limbs of ``width`` bits.

    ``v = sum_i limb_i 2**(i width)`` with ``limb_i = (v >> i width) & (2**width - 1)`` for the
    low limbs (in [0, 2**width)) and the arithmetic shift ``v >> (count - 1) width`` for the top
    one, so ``|top| <= ceil(bound / 2**((count - 1) width))``. ``bounds`` holds each limb's bound.
    """

    width: int
    count: int
    bounds: tuple[int, ...]

    @classmethod
    def of(cls, bound: int, width: int) -> LimbSplit:
        bits = max(bound.bit_length(), 1)
        count = max(-(-bits // width), 1)
        top_shift = width * (count - 1)
        top = -(-bound >> top_shift)  # ceil(bound / 2**top_shift)
        return cls(width, count, (*([(1 << width) - 1] * (count - 1)), top))

    @property
    def shifts(self) -> tuple[int, ...]:
        return tuple(self.width * i for i in range(self.count))

    @property
    def largest(self) -> int:
        return max(self.bounds)

    def split(self, values: Any) -> list[Any]:
        """The limbs of an int64 array (operators only, so any array library works)."""
        if self.count == 1:
            return [values]
        mask = (1 << self.width) - 1
        limbs = [(values >> shift) & mask for shift in self.shifts[:-1]]
        limbs.append(values >> self.shifts[-1])
        return limbs


def _split_bound(left: LimbSplit, right: LimbSplit, inner: int) -> int:
    """Bound on the sum of |every shifted limb product| of a split matmul with ``inner`` terms."""
    return inner * sum(
        lb * rb << (ls + rs)
        for lb, ls in zip(left.bounds, left.shifts, strict=True)
        for rb, rs in zip(right.bounds, right.shifts, strict=True)
    )


def plan_matmul(inner: int, left_bound: int, right_bound: int) -> tuple[LimbSplit, LimbSplit]:
    """Limb splits of both operands with the fewest limb GEMMs such that every one is exact.

    A limb GEMM sums ``inner`` products of limbs, so it is below ``inner * lb * rb``; the plan
    keeps that below 2**63 for every pair of limbs (checked with Python integers, not assumed).
    Raises OverflowRiskError if the sum of all shifted limb products could reach 2**127.
    """
    if inner < 0 or left_bound < 0 or right_bound < 0:
        raise ValueError("inner dimension and bounds must be non-negative")
    inner = max(inner, 1)
    bits_left = max(left_bound.bit_length(), 1)
    bits_right = max(right_bound.bit_length(), 1)
    best: tuple[LimbSplit, LimbSplit] | None = None
    for count_left in range(1, bits_left + 1):
        width_left = -(-bits_left // count_left)
        left = LimbSplit.of(left_bound, width_left)
        if left.count != count_left:
            continue  # the same width as a smaller count
        if best is not None and left.count >= best[0].count * best[1].count:
            break
        # the widest right limbs whose every GEMM stays below 2**63
        room = (GEMM_LIMIT - 1) // (inner * left.largest) if left.largest else GEMM_LIMIT
        for width_right in range(min(bits_right, max(room.bit_length(), 1)), 0, -1):
            right = LimbSplit.of(right_bound, width_right)
            if inner * left.largest * right.largest < GEMM_LIMIT:
                break
        else:
            continue
        if best is None or left.count * right.count < best[0].count * best[1].count:
            best = (left, right)
    if best is None or _split_bound(*best, inner) >= WIDE_LIMIT:
        raise OverflowRiskError(
            f"a matrix product of {inner} terms of values up to 2**{bits_left} and "
            f"2**{bits_right} could reach 2**127; refused rather than wrapped. Use smaller values "
            "or a shorter inner dimension."
        )
    return best


def plan_accepts(inner: int, left_bound: int, right_bound: int) -> bool:
    """True where ``plan_matmul(inner, left_bound, right_bound)`` is certain to return a plan
    (not to raise), from two products instead of its search: the Python-integer path of a
    small matrix product needs no limbs, only the same refusals. False: ask ``plan_matmul``.

    Why it holds (``n = max(inner, 1)``): with one-bit left limbs every limb is at most 2, so
    the search always finds a pair of splits once ``4 n < 2**63`` (one-bit right limbs keep
    ``n * 2 * 2`` below 2**63). Any split of a bound B into limbs has ``sum_i limb_bound_i
    2**shift_i <= 3 B`` (0 for B = 0; otherwise the low limbs sum to below ``2**top_shift``,
    the top one to below ``B + 2**top_shift``, and ``2**top_shift <= B``), so
    ``_split_bound`` is at most ``9 n L R`` for every plan: below 2**127 when that is.
    """
    if inner < 0 or left_bound < 0 or right_bound < 0:
        return False  # plan_matmul raises ValueError
    count = max(inner, 1)
    return 4 * count < GEMM_LIMIT and 9 * count * left_bound * right_bound < WIDE_LIMIT


def _shifted(product: Any, shift: int) -> Wide:
    """``product * 2**shift`` as a 128-bit value, exact modulo 2**128 (0 <= shift < 128)."""
    unsigned = product.view("uint64")
    if shift == 0:
        return product >> 63, unsigned
    if shift < 64:
        return product >> (64 - shift), unsigned << shift
    return (unsigned << (shift - 64)).view("int64"), unsigned * 0


def wide_matmul_round_div(
    backend: Any, left: Any, right: Any, divisor: int, left_bound: int, right_bound: int
) -> Any:
    """round((left @ right) / divisor) exactly, for int64 matrices ``|left| <= left_bound``,
    ``|right| <= right_bound`` (``left``: J x K, ``right``: K x N).

    Both operands are split into limbs (``plan_matmul``) so that every limb GEMM is proved to
    stay below 2**63 and is therefore exact in int64 (``matmul_int_wrap`` is exact modulo
    2**64); the shifted limb products are summed modulo 2**128, exact because their total is
    proved below 2**127. One GEMM when the plain int64 product is already safe.
    """
    inner = int(left.shape[-1])
    small = (
        type(left) is np.ndarray
        and type(right) is np.ndarray
        and left.ndim == right.ndim == 2
        and left.shape[0] * inner * right.shape[1] <= SMALL_PRODUCTS * 4
    )
    if small and plan_accepts(inner, left_bound, right_bound):
        return _matmul_round_div_ints(left, right, divisor)  # plan_matmul would not refuse
    left_split, right_split = plan_matmul(inner, left_bound, right_bound)  # refuses as always
    if small:
        return _matmul_round_div_ints(left, right, divisor)
    left_limbs = left_split.split(left)
    right_limbs = right_split.split(right)
    total: Wide | None = None
    for left_limb, left_shift in zip(left_limbs, left_split.shifts, strict=True):
        for right_limb, right_shift in zip(right_limbs, right_split.shifts, strict=True):
            product = backend.matmul_int_wrap(left_limb, right_limb)  # proved < 2**63: exact
            term = _shifted(product, left_shift + right_shift)
            total = term if total is None else wide_add(total, term)
    assert total is not None
    return round_div_wide(total, divisor)


def _matmul_round_div_ints(left: Any, right: Any, divisor: int) -> Any:
    """``wide_matmul_round_div`` of small NumPy matrices with Python integers (exact: no
    width limit; ``plan_matmul`` has already refused what the limb path would refuse), rounded
    and refused as ``round_div_wide`` does."""
    columns = right.T.tolist()
    sums = [sum(map(operator.mul, row, column)) for row in left.tolist() for column in columns]
    return _round_div_ints(sums, divisor).reshape(left.shape[0], right.shape[1])
