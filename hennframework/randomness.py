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

        Rejection sampling on words: a word is kept only if it falls below the largest
        multiple of the range size, so every value is exactly equally likely. A seeded stream
        reads 64-bit words (so a seed always gives the same values); the CSPRNG is read in the
        narrowest words that leave at most a quarter of them rejected (16, 32 or 64 bits),
        which asks the operating system for a quarter of the bytes for the noise ranges.
        """
        if high < low:
            raise ValueError(f"empty range [{low}, {high}]")
        shape_tuple = (shape,) if isinstance(shape, int) else tuple(shape)
        count = int(np.prod(shape_tuple, dtype=np.int64)) if shape_tuple else 1
        span = high - low + 1
        if span > 2**63:
            raise ValueError("range too wide for int64 sampling")
        bits = 64
        if not self.seeded:
            bits = 16 if span <= 2**14 else 32 if span <= 2**30 else 64
        word = np.dtype(f"uint{bits}")
        limit = (2**bits // span) * span  # accept words below this
        out = np.empty(count, dtype=np.int64)
        filled = 0
        while filled < count:
            need = count - filled
            extra = need // 4 if bits < 64 else need // 16  # rejections: < 1/4, < 1/2**62
            raw = self.random_bytes(word.itemsize * (need + extra + 8))
            words = np.frombuffer(raw, dtype=word)
            if limit < 2**bits:
                words = words[words < word.type(limit)]
            take = words[:need]
            # the remainder goes straight into the result (every value below span fits int64),
            # then low is added in place: no int64 temporaries the size of the draw
            dest = out[filled : filled + take.size]
            np.remainder(take, word.type(span), out=dest, casting="unsafe")
            dest += np.int64(low)
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
