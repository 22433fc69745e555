"""Exact 128-bit integer arithmetic on int64 arrays, written with array operators only.

The tensor step of a ciphertext product needs ``round(c1_i * c2_j / d)`` exactly, where the
product itself reaches ~2**124 and only the quotient fits in int64; a plaintext matrix times
ciphertexts, rescaled, needs ``round((P @ C) / f)`` where ``P @ C`` can pass 2**63. float64 would
lose bits above 2**53 and int64 would wrap silently (the 2017 notebook's failure: an inner product
of encryptions of 1000.0 decrypted to -1.1e12 instead of 4e12). Here a 128-bit value is a pair
``(hi, lo)``: ``hi`` int64, ``lo`` uint64, value = hi * 2**64 + lo (two's complement).

Every function states the bounds its inputs must satisfy and why each intermediate fits:

* ``mul_wide``: |a|, |b| < 2**62 (checked by the caller from tracked bounds); 31-bit limbs make
  every partial product < 2**62 and the middle sum < 2**63.
* ``wide_add``: exact modulo 2**128, so a sum of several terms is exact whenever the *final*
  value lies in (-2**127, 2**127), whatever the intermediate sums.
* ``sum_products_round_div``: at most 7 products of magnitude < 2**124, so |sum| < 2**127.
* ``wide_matmul_round_div``: both operands are split into limbs whose widths are chosen from the
  proven bounds (``plan_matmul``) so that every limb GEMM is below 2**63 (exact in int64), and the
  sum of all shifted limb products is proved below 2**127 before anything runs.
* ``round_div_wide``: divides by ``2**s * odd`` (odd < 2**32): a shift, then a long division on
  32-bit chunks (every step < 2**64); a quotient of 63 bits or more raises.

These functions work on NumPy and CuPy arrays alike: they only use operators and ``.astype`` /
``.view``, so they stay on the device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hennframework.exceptions import OverflowRiskError

__all__ = [
    "LimbSplit",
    "Wide",
    "mul_wide",
    "plan_matmul",
    "round_div_wide",
    "sum_products_round_div",
    "wide_add",
    "wide_matmul_round_div",
]

Wide = tuple[Any, Any]  # (hi: int64 array, lo: uint64 array)

MASK31 = (1 << 31) - 1
MASK32 = (1 << 32) - 1
LIMIT = 1 << 62
#: A limb GEMM is exact in int64 (and so in any backend's ``matmul_int_wrap``, exact modulo
#: 2**64) when every result is proved to have a magnitude below this.
GEMM_LIMIT = 1 << 63
#: A 128-bit result is read correctly (two's complement) when its magnitude is below this.
WIDE_LIMIT = 1 << 127
#: ``mul_wide`` needs both factors below 2**62 in magnitude, so a product is below 2**124 and
#: at most this many products can be summed in 128 bits (7 * 2**124 < 2**127).
MAX_PRODUCTS = 7


def _u64(array: Any) -> Any:
    return array.astype("int64").view("uint64")


def _negate(hi: Any, lo: Any) -> Wide:
    """Two's-complement negation of a 128-bit value."""
    lo_neg = (~lo) + 1  # wraps modulo 2**64
    borrow = (lo == 0).astype("int64")
    hi_neg = (~hi) + borrow
    return hi_neg, lo_neg


def wide_add(x: Wide, y: Wide) -> Wide:
    """x + y for 128-bit values, exact modulo 2**128 (so exact when the result fits)."""
    lo = x[1] + y[1]
    carry = (lo < x[1]).astype("int64")
    return x[0] + y[0] + carry, lo


def mul_wide(a: Any, b: Any) -> Wide:
    """Exact signed 128-bit product of int64 arrays with |a|, |b| < 2**62 (broadcasting).

    The caller proves the bounds (ciphertext coefficients are below 2**62 by invariant, encoded
    plaintexts below 2**53). With 31-bit limbs ``a = a1 2**31 + a0`` (a1, a0 < 2**31): a0 b0 and
    a1 b1 are below 2**62 and a1 b0 + a0 b1 below 2**63, so nothing wraps.
    """
    negative = (a < 0) ^ (b < 0)
    abs_a = abs(a)
    abs_b = abs(b)
    a0, a1 = abs_a & MASK31, abs_a >> 31
    b0, b1 = abs_b & MASK31, abs_b >> 31
    low = _u64(a0 * b0)  # < 2**62
    mid = a1 * b0 + a0 * b1  # < 2**63
    top = a1 * b1  # < 2**62
    # magnitude = top * 2**62 + mid * 2**31 + low
    mid_lo = _u64(mid) << 31
    mid_hi = mid >> 33
    lo = low + mid_lo
    hi = mid_hi + (lo < low).astype("int64")
    top_lo = _u64(top) << 62
    lo2 = lo + top_lo
    hi = hi + (top >> 2) + (lo2 < lo).astype("int64")
    neg_hi, neg_lo = _negate(hi, lo2)
    sign = negative.astype("int64")
    # select without ``where`` so the same code runs on any array library
    keep = 1 - sign
    hi_out = hi * keep + neg_hi * sign
    lo_out = lo2 * _u64(keep) + neg_lo * _u64(sign)
    return hi_out, lo_out


def round_div_wide(value: Wide, divisor: int) -> Any:
    """round(value / divisor) to int64, halves away from zero; raises if the result does not fit.

    ``value`` must lie in (-2**127, 2**127) (two's complement); adding ``divisor // 2`` to its
    magnitude stays below 2**128 because the divisor is below 2**127.
    """
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
    hi, lo = value
    negative = hi < 0
    sign = negative.astype("int64")
    neg_hi, neg_lo = _negate(hi, lo)
    keep = 1 - sign
    mag_hi = hi * keep + neg_hi * sign
    mag_lo = lo * _u64(keep) + neg_lo * _u64(sign)
    # add divisor // 2 for rounding half away from zero
    half = divisor // 2
    # a uint64 scalar, not a Python int: CuPy passes Python ints to kernels as int64
    new_lo = mag_lo + mag_lo.dtype.type(half & ((1 << 64) - 1))
    mag_hi = mag_hi + (half >> 64) + (new_lo < mag_lo).astype("int64")
    mag_lo = new_lo
    # shift right by ``shift`` (floor of the magnitude)
    if shift:
        if shift >= 64:
            mag_lo = _u64(mag_hi >> (shift - 64))
            mag_hi = mag_hi * 0
        else:
            mag_lo = (mag_lo >> shift) | (_u64(mag_hi) << (64 - shift))
            mag_hi = mag_hi >> shift
    if odd > 1:
        # remainder < odd < 2**32, so (remainder << 32) | chunk < 2**64: no step wraps
        chunks = [_u64(mag_hi) >> 32, _u64(mag_hi) & MASK32, mag_lo >> 32, mag_lo & MASK32]
        remainder = chunks[0] * 0
        quotient = []
        for chunk in chunks:
            current = (remainder << 32) | chunk
            quotient.append(current // odd)
            remainder = current % odd
        mag_hi = ((quotient[0] << 32) | quotient[1]).view("int64")
        mag_lo = (quotient[2] << 32) | quotient[3]
    too_big = (mag_hi != 0) | ((mag_lo >> 63) != 0)
    if bool(too_big.any()):
        raise OverflowRiskError(
            "a rounded quotient does not fit in 63 bits; the operation was refused rather than "
            "wrapped. Use smaller values, a smaller scale, or a parameter set with a smaller w."
        )
    result = mag_lo.view("int64")
    return result * (1 - 2 * sign)


def sum_products_round_div(pairs: list[tuple[Any, Any]], divisor: int) -> Any:
    """round(sum(a * b for a, b in pairs) / divisor), exactly, as int64.

    Every factor must be below 2**62 in magnitude (``mul_wide``), so each product is below
    2**124 and up to ``MAX_PRODUCTS`` of them sum below 2**127 (exact in 128 bits).
    """
    if not 1 <= len(pairs) <= MAX_PRODUCTS:
        raise OverflowRiskError(
            f"sum_products_round_div takes 1 to {MAX_PRODUCTS} products (more could pass 2**127), "
            f"got {len(pairs)}"
        )
    total: Wide | None = None
    for a, b in pairs:
        product = mul_wide(a, b)
        total = product if total is None else wide_add(total, product)
    assert total is not None
    return round_div_wide(total, divisor)


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
    left_split, right_split = plan_matmul(inner, left_bound, right_bound)
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
