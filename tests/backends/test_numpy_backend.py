"""The NumPy backend's fast paths give the bits of the general ones (backends/numpy_backend.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hennframework_backends._xp_backend import XpBackend
from hennframework_backends.numpy_backend import NumpyBackend
from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 40),
    count=st.integers(1, 300),
    item=st.sampled_from([(), (3,), (8,), (8, 2), (2, 3, 2)]),
    dtype=st.sampled_from(["int64", "float64"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_index_add_matches_add_at(
    rows: int, count: int, item: tuple[int, ...], dtype: str, seed: int
) -> None:
    """Row indices with many repeats: the flat path adds every element's values in the same
    order as ``numpy.add.at``, so floats round the same way (compared as bytes)."""
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, rows, count)
    if dtype == "int64":
        target = rng.integers(-(2**62), 2**62, (rows, *item))
        values = rng.integers(-(2**62), 2**62, (count, *item))  # sums wrap: modulo 2**64
    else:
        target = rng.random((rows, *item)) * 10.0 ** rng.integers(-3, 12, (rows, *item))
        values = rng.random((count, *item)) * 10.0 ** rng.integers(-3, 12, (count, *item))
    want = target.copy()
    np.add.at(want, indices, values)
    got = target.copy()
    NumpyBackend().index_add(got, indices, values)
    assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


def test_index_add_keeps_add_at_rules() -> None:
    """Negative and out-of-range indices and non-contiguous targets take ``add.at`` itself."""
    backend = NumpyBackend()
    target = np.zeros((4, 2))
    backend.index_add(target, np.array([-1, 0, -1]), np.ones((3, 2)))
    assert target[:, 0].tolist() == [1.0, 0.0, 0.0, 2.0]
    with pytest.raises(IndexError):
        backend.index_add(np.zeros((4, 2)), np.array([4]), np.ones((1, 2)))
    strided = np.zeros((4, 4))[:, ::2]
    backend.index_add(strided, np.array([1, 1]), np.ones((2, 2)))
    assert strided[1].tolist() == [2.0, 2.0]


@pytest.mark.parametrize(
    ("rows", "inner", "columns"),
    [(1, 24, 2), (256, 24, 2), (64, 40, 3), (4, 264, 17), (300, 64, 5)],
)
def test_matmul_small_left_matches_the_limb_path(rows: int, inner: int, columns: int) -> None:
    """Integer ``matmul`` where it is faster, float limbs elsewhere: the same int64 words."""
    rng = np.random.default_rng(rows * inner + columns)
    digits = rng.integers(-128, 128, (rows, inner))
    key = rng.integers(-(2**63), 2**63 - 1, (inner, columns), endpoint=True)
    key.setflags(write=False)
    want = XpBackend(np).matmul_small_left(digits, key, 128)
    got = NumpyBackend().matmul_small_left(digits, key, 128)
    assert got.dtype == np.int64 and np.array_equal(got, want)
