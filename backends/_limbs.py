"""Exact int64 matrix products through float64 GEMMs on limbs, shared by the NumPy and CuPy backends.

float64 products and sums are exact while every partial sum stays below 2**53. A gadget-digit
matrix ``D`` (|D| <= d) times an arbitrary int64 matrix ``R`` is computed exactly modulo 2**64 by
splitting ``R`` (read as unsigned 64-bit) into limbs small enough that ``K * d * 2**limb_bits`` stays
below 2**53 (K is the inner dimension), running one float GEMM against all limbs side by side,
and recombining the limb products with unsigned shifts (which wrap modulo 2**64, as intended).
"""

from __future__ import annotations

import weakref
from typing import Any

FLOAT_EXACT_BITS = 53

#: Float limbs of key matrices, computed once per (matrix, limb width) and dropped with the
#: matrix: a key-switching matrix is reused for every operation, and splitting it on each call
#: made single-ciphertext operations cost time proportional to the key size.
_LIMB_CACHE: dict[tuple[int, int], tuple[Any, tuple[Any, Any]]] = {}
#: Read-only matrices smaller than this are cached only if they own their memory (a key
#: matrix); small read-only *views* (``broadcast_to`` results) are temporaries, cheaper to split
#: than to cache. Caching small keys matters: for products of small batches, splitting the key
#: on every call cost more than the GEMM.
CACHE_MIN_ELEMENTS = 4096


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
    # Exactness: |small| <= small_bound (the caller's promise: balanced gadget digits) and every
    # limb is in [0, 2**limb_bits), so every product and every partial sum, in any order (BLAS
    # blocking, FMA), is an integer of magnitude <= inner * small_bound * (2**limb_bits - 1),
    # which limb_plan keeps below 2**53; small_bound < 2**45 also makes small exact in float64.
    # One GEMM against all limbs side by side (columns l N .. (l + 1) N - 1 hold limb l), so
    # every result column is still one exact product of ``small`` with one limb column.
    limbs, shifts = _float_limbs(xp, right, limb_bits)
    partial = xp.matmul(small.astype(xp.float64, copy=False), limbs)  # exact: sums < 2**53
    # float -> int64 is exact; the view as uint64 keeps two's complement for negatives.
    terms = partial.astype(xp.int64).view(xp.uint64)
    terms = terms.reshape(*terms.shape[:-1], shifts.shape[0], right.shape[1]) << shifts
    # limb l lands at bit l * limb_bits; the uint64 sum wraps modulo 2**64, as intended
    return terms.sum(axis=-2, dtype=xp.uint64).view(xp.int64)


def _split(xp: Any, right: Any, limb_bits: int) -> tuple[Any, Any]:
    """The limbs of ``right`` (K x N) side by side as one K x (L N) float64 matrix, and their
    shifts ``l * limb_bits`` as an L x 1 uint64 array."""
    unsigned = right.astype(xp.int64).view(xp.uint64)
    mask = xp.uint64((1 << limb_bits) - 1)
    starts = range(0, 64, limb_bits)
    limbs = [((unsigned >> xp.uint64(shift)) & mask).astype(xp.float64) for shift in starts]
    shifts = xp.asarray([[shift] for shift in starts], dtype=xp.uint64)
    return xp.concatenate(limbs, axis=1), shifts


def _float_limbs(xp: Any, right: Any, limb_bits: int) -> tuple[Any, Any]:
    """``_split(xp, right, limb_bits)``, cached for matrices that are never written to: large
    ones, and small ones that own their memory (see ``CACHE_MIN_ELEMENTS``)."""
    if getattr(right.flags, "writeable", True) or (
        right.size < CACHE_MIN_ELEMENTS and getattr(right, "base", None) is not None
    ):
        return _split(xp, right, limb_bits)
    key = (id(right), limb_bits)
    cached = _LIMB_CACHE.get(key)
    if cached is not None and cached[0]() is right:
        return cached[1]
    limbs = _split(xp, right, limb_bits)

    def forget(_reference: Any, key: tuple[int, int] = key) -> None:
        _LIMB_CACHE.pop(key, None)

    try:
        reference = weakref.ref(right, forget)
    except TypeError:  # an array type without weak references: no caching
        return limbs
    _LIMB_CACHE[key] = (reference, limbs)
    return limbs


#: Bits per limb in the general product: two 16-bit limbs multiply to < 2**32, so an inner
#: dimension up to WRAP_CHUNK keeps every float64 partial sum below 2**52 (exact).
WRAP_LIMB_BITS = 16
#: Inner-dimension chunk for the general product; longer products are summed chunk by chunk
#: (modulo 2**64), so any inner dimension stays exact.
WRAP_CHUNK = 1 << 20


def _unsigned_limbs(xp: Any, values: Any) -> list[Any]:
    """The four 16-bit limbs of ``values`` read as unsigned 64-bit, as exact float64 arrays."""
    unsigned = values.astype(xp.int64).view(xp.uint64)
    mask = xp.uint64((1 << WRAP_LIMB_BITS) - 1)
    return [
        ((unsigned >> xp.uint64(shift)) & mask).astype(xp.float64)
        for shift in range(0, 64, WRAP_LIMB_BITS)
    ]


def matmul_wrap_limbs(xp: Any, left: Any, right: Any, chunk: int = WRAP_CHUNK) -> Any:
    """``left @ right`` exact modulo 2**64 for *arbitrary* int64 operands, through float64 GEMMs.

    For GPUs, whose BLAS (cuBLAS) has no int64 GEMM. Both operands are read as unsigned 64-bit
    and split into four 16-bit limbs; limb ``i`` of ``left`` times limb ``j`` of ``right`` lands
    at bit ``16 (i + j)``, so only the ten pairs with ``i + j < 4`` matter modulo 2**64. Each
    pair is one float64 GEMM whose partial sums stay below ``K * 2**32 <= 2**52`` (exact); the
    products are recombined in uint64, where shifts and sums wrap modulo 2**64 as intended.
    ``left`` and ``right`` have ``ndim >= 2`` and follow ``matmul`` broadcasting; inner
    dimensions above ``chunk`` (at most ``WRAP_CHUNK``) are split and summed modulo 2**64.
    """
    if not 1 <= chunk <= WRAP_CHUNK:
        raise ValueError(f"chunk must be in 1..{WRAP_CHUNK}, got {chunk}")
    inner = left.shape[-1]
    if inner > chunk:
        total: Any = None
        for start in range(0, inner, chunk):
            stop = start + chunk
            part = matmul_wrap_limbs(xp, left[..., start:stop], right[..., start:stop, :], chunk)
            total = part.view(xp.uint64) if total is None else total + part.view(xp.uint64)
        return total.view(xp.int64)
    left_limbs = _unsigned_limbs(xp, left)
    right_limbs = _unsigned_limbs(xp, right)
    count = len(left_limbs)
    result: Any = None
    for i in range(count):
        for j in range(count - i):
            partial = xp.matmul(left_limbs[i], right_limbs[j])  # exact: every sum < 2**52
            term = partial.astype(xp.int64).view(xp.uint64)  # non-negative and < 2**53
            shift = WRAP_LIMB_BITS * (i + j)
            if shift:
                term = term << xp.uint64(shift)
            result = term if result is None else result + term
    return result.view(xp.int64)
