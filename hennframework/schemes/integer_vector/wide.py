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
    "stacked_products_round_div",
    "sum_products_round_div",
    "wide_add",
    "wide_matmul_round_div",
]

Wide = tuple[Any, Any]  # (hi: int64 array, lo: uint64 array)

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
        raise OverflowRiskError(
            "a rounded quotient does not fit in 63 bits; the operation was refused rather than "
            "wrapped. Use smaller values, a smaller scale, or a parameter set with a smaller w."
        )
    # the sign back: the same conditional negation, on a magnitude below 2**63
    return (mag_lo.view("int64") ^ mask) - mask


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
    hi, lo = mul_wide(left, right)
    count = int(hi.shape[-2])
    _check_count(count)
    total: Wide = (hi[..., 0, :], lo[..., 0, :])
    for index in range(1, count):
        total = wide_add(total, (hi[..., index, :], lo[..., index, :]))
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
