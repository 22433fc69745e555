"""Exact int64 matrix products through float64 GEMMs on limbs, shared by the NumPy and CuPy backends.

float64 products and sums are exact while every partial sum stays below 2**53. A gadget-digit
matrix ``D`` (|D| <= d) times an arbitrary int64 matrix ``R`` is computed exactly modulo 2**64 by
splitting ``R`` (read as unsigned 64-bit) into limbs small enough that ``K * d * 2**limb_bits`` stays
below 2**53 (K is the inner dimension), running one float GEMM per limb, and recombining the
limb products with unsigned shifts (which wrap modulo 2**64, as intended).
"""

from __future__ import annotations

from typing import Any

FLOAT_EXACT_BITS = 53


def limb_plan(inner_dim: int, small_bound: int) -> int | None:
    """Bits per limb so that one float GEMM is exact, or None if float GEMMs cannot be exact."""
    headroom = FLOAT_EXACT_BITS - max(inner_dim * max(small_bound, 1), 1).bit_length()
    if headroom < 8:
        return None
    return min(headroom, 32)


def matmul_small_left_limbs(xp: Any, small: Any, right: Any, small_bound: int) -> Any:
    """``small @ right`` exact modulo 2**64 using float64 GEMMs; ``xp`` is numpy or cupy."""
    inner = right.shape[0]
    limb_bits = limb_plan(inner, small_bound)
    if limb_bits is None:
        return xp.matmul(small, right)  # integer GEMM: slow but exact modulo 2**64
    unsigned = right.astype(xp.int64).view(xp.uint64)
    small_f = small.astype(xp.float64)
    mask = xp.uint64((1 << limb_bits) - 1)
    result = xp.zeros((*small.shape[:-1], right.shape[1]), dtype=xp.uint64)
    shift = 0
    while shift < 64:
        limb = ((unsigned >> xp.uint64(shift)) & mask).astype(xp.float64)
        partial = xp.matmul(small_f, limb)  # exact: every partial sum < 2**53
        # float -> int64 is exact; the view as uint64 keeps two's complement for negatives.
        result += partial.astype(xp.int64).view(xp.uint64) << xp.uint64(shift)
        shift += limb_bits
    return result.view(xp.int64)
