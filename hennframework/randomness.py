"""Randomness for keys and noise: a CSPRNG, unless a seed is passed on purpose.

Without a seed, bytes come from ``os.urandom`` (the operating system's CSPRNG). With a seed, they
come from SHAKE-256 of the seed and a counter: a cryptographic, deterministic stream, *for
reproducible tests and demos only*: anyone who knows the seed knows the keys.

NumPy's ``np.random`` is never used for key material or noise (PCG64/MT19937 are not
cryptographic).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["RandomSource"]


class RandomSource:
    """Uniform integers from a CSPRNG (``seed=None``) or a seeded SHAKE-256 stream."""

    def __init__(self, seed: int | bytes | str | None = None) -> None:
        self.seeded = seed is not None
        if seed is None:
            self._seed = b""
        elif isinstance(seed, bytes):
            self._seed = seed
        else:
            self._seed = str(seed).encode()
        self._counter = 0

    def random_bytes(self, count: int) -> bytes:
        if not self.seeded:
            return os.urandom(count)
        self._counter += 1
        shake = hashlib.shake_256(self._seed + b"|" + self._counter.to_bytes(8, "little"))
        return shake.digest(count)

    def integers(self, low: int, high: int, shape: tuple[int, ...] | int) -> npt.NDArray[np.int64]:
        """Uniform int64 values in the closed interval ``[low, high]``, without modulo bias.

        Rejection sampling on 64-bit words: a word is kept only if it falls below the largest
        multiple of the range size, so every value is exactly equally likely.
        """
        if high < low:
            raise ValueError(f"empty range [{low}, {high}]")
        shape_tuple = (shape,) if isinstance(shape, int) else tuple(shape)
        count = int(np.prod(shape_tuple, dtype=np.int64)) if shape_tuple else 1
        span = high - low + 1
        if span > 2**63:
            raise ValueError("range too wide for int64 sampling")
        limit = (2**64 // span) * span  # accept words below this
        out = np.empty(count, dtype=np.int64)
        filled = 0
        while filled < count:
            need = count - filled
            words = np.frombuffer(self.random_bytes(8 * (need + need // 16 + 8)), dtype=np.uint64)
            if limit < 2**64:
                words = words[words < np.uint64(limit)]
            take = words[:need]
            values = (take % np.uint64(span)).astype(np.int64) + np.int64(low)
            out[filled : filled + take.size] = values
            filled += take.size
        return out.reshape(shape_tuple)

    def token_hex(self, nbytes: int = 16) -> str:
        return self.random_bytes(nbytes).hex()

    def __repr__(self) -> str:
        kind = "seeded SHAKE-256 (reproducibility only)" if self.seeded else "os.urandom"
        return f"RandomSource({kind})"


def as_random_source(seed: Any) -> RandomSource:
    """A :class:`RandomSource` from a seed, an existing source, or None (CSPRNG)."""
    if isinstance(seed, RandomSource):
        return seed
    return RandomSource(seed)
