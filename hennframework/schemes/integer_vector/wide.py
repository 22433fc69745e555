"""Exact 128-bit integer arithmetic on int64 arrays, written with array operators only.

The tensor step of a ciphertext product needs ``round(c1_i * c2_j / d)`` exactly, where the
product itself reaches ~2**124 and only the quotient fits in int64. float64 would lose bits above
2**53 and int64 would wrap silently (the seed's failure: an inner product of encryptions of 1000.0
decrypted to -1.1e12 instead of 4e12). Here a 128-bit value is a pair ``(hi, lo)``: ``hi`` int64,
``lo`` uint64, value = hi * 2**64 + lo (two's complement). Products are built from 31-bit limbs
(every partial product < 2**62), divisions by ``2**s * odd`` shift first and then run a long
division on 32-bit chunks (every step < 2**64).

These functions work on NumPy and CuPy arrays alike: they only use operators and ``.astype`` /
``.view``, so they stay on the device.
"""

from __future__ import annotations

from typing import Any

from hennframework.exceptions import OverflowRiskError

__all__ = ["Wide", "mul_wide", "round_div_wide", "sum_products_round_div", "wide_add"]

Wide = tuple[Any, Any]  # (hi: int64 array, lo: uint64 array)

MASK31 = (1 << 31) - 1
MASK32 = (1 << 32) - 1
LIMIT = 1 << 62


def _u64(array: Any) -> Any:
    return array.astype("int64").view("uint64")


def _negate(hi: Any, lo: Any) -> Wide:
    """Two's-complement negation of a 128-bit value."""
    lo_neg = (~lo) + 1  # wraps modulo 2**64
    borrow = (lo == 0).astype("int64")
    hi_neg = (~hi) + borrow
    return hi_neg, lo_neg


def wide_add(x: Wide, y: Wide) -> Wide:
    """x + y for 128-bit values (exact while the sum fits in 128 bits)."""
    lo = x[1] + y[1]
    carry = (lo < x[1]).astype("int64")
    return x[0] + y[0] + carry, lo


def mul_wide(a: Any, b: Any) -> Wide:
    """Exact signed 128-bit product of int64 arrays with |a|, |b| < 2**62 (broadcasting)."""
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
    """round(value / divisor) to int64, halves away from zero; raises if the result does not fit."""
    if divisor < 1:
        raise ValueError("divisor must be a positive integer")
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
    """round(sum(a * b for a, b in pairs) / divisor), exactly, as int64."""
    total: Wide | None = None
    for a, b in pairs:
        product = mul_wide(a, b)
        total = product if total is None else wide_add(total, product)
    assert total is not None
    return round_div_wide(total, divisor)
