"""The CSPRNG's integer draws: exactly uniform, whatever word size they read."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from hennframework.randomness import RandomSource


def _scripted(words: list[int], itemsize: int) -> object:
    """An ``os.urandom`` that returns ``words`` (then zeros) as little-endian words."""
    stream = b"".join(w.to_bytes(itemsize, "little") for w in words)

    def urandom(count: int) -> bytes:
        nonlocal stream
        head, stream = stream[:count], stream[count:]
        return head + bytes(count - len(head))

    return urandom


@pytest.mark.parametrize(
    ("span", "itemsize"),
    [(2, 2), (2001, 2), (2**14, 2), (2**14 + 1, 4), (2**30, 4), (2**30 + 1, 8), (3 << 40, 8)],
)
def test_unseeded_draws_reject_exactly_above_the_last_whole_multiple(
    monkeypatch: pytest.MonkeyPatch, span: int, itemsize: int
) -> None:
    """The narrowest word with at most a quarter rejected: the largest accepted word gives the
    top of the range, the first rejected one is skipped."""
    bits = 8 * itemsize
    limit = (2**bits // span) * span
    words = [limit, limit - 1, 0] if limit < 2**bits else [limit - 1, 0]
    monkeypatch.setattr("hennframework.randomness.os.urandom", _scripted(words, itemsize))
    low = -(span // 2)
    drawn = RandomSource().integers(low, low + span - 1, 2)
    assert drawn.tolist() == [low + span - 1, low]


def test_unseeded_draws_are_uniform_and_in_range() -> None:
    drawn = RandomSource().integers(-1000, 1000, 200_000)
    assert drawn.min() == -1000 and drawn.max() == 1000
    counts = np.bincount(drawn + 1000, minlength=2001)
    expected = drawn.size / 2001
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 2000 + 6 * np.sqrt(2 * 2000)  # 2,000 degrees of freedom, six sigma


def test_a_seed_reads_the_same_64_bit_words_as_always() -> None:
    """Seeded streams keep 64-bit words whatever the range, so a seed's keys never change."""
    digest = hashlib.shake_256(b"7|" + (1).to_bytes(8, "little")).digest(8 * (5 + 0 + 8))
    words = np.frombuffer(digest, dtype=np.uint64)[:5]
    expected = (words % np.uint64(9)).astype(np.int64) - 4
    assert RandomSource(7).integers(-4, 4, 5).tolist() == expected.tolist()
