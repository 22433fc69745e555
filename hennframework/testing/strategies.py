"""Hypothesis strategies for homomorphic-encryption tests: bounded reals, small shapes, matrices.

Every strategy is *bounded* (no NaN, no infinity, no subnormals, magnitudes at most ``bound``) and
*small* (a few elements per axis), because each example runs real encryptions: the point is many
varied small cases, not large ones. Bounds come from the scheme under test (the kit's
``value_range`` fixture), so strategies that depend on them are drawn inside a test with
``data.draw(...)`` rather than fixed at decoration time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = [
    "batch_shapes",
    "broadcast_pairs",
    "coefficients",
    "index_arrays",
    "integer_arrays",
    "integer_matrices",
    "real_arrays",
    "real_matrices",
    "reals",
]

#: The largest side of a generated batch axis: enough to exercise broadcasting and reductions.
MAX_SIDE = 4


def reals(bound: float) -> st.SearchStrategy[float]:
    """Finite float64 values in ``[-bound, bound]`` (no NaN, infinity or subnormals)."""
    return st.floats(
        min_value=-bound,
        max_value=bound,
        allow_nan=False,
        allow_infinity=False,
        allow_subnormal=False,
        width=64,
    )


def batch_shapes(
    min_dims: int = 1, max_dims: int = 2, min_side: int = 1, max_side: int = MAX_SIDE
) -> st.SearchStrategy[tuple[int, ...]]:
    """Small batch shapes, e.g. ``(3,)`` or ``(2, 4)``."""
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def real_arrays(
    shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]], bound: float
) -> st.SearchStrategy[npt.NDArray[np.float64]]:
    """float64 arrays of ``shape`` with entries in ``[-bound, bound]``."""
    return hnp.arrays(np.float64, shape, elements=reals(bound))


def integer_arrays(
    shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]], bound: int
) -> st.SearchStrategy[npt.NDArray[np.int64]]:
    """int64 arrays of ``shape`` with entries in ``[-bound, bound]``.

    Hypothesis shrinks towards 0 and tries the extremes, so the boundary values are covered.
    """
    return hnp.arrays(np.int64, shape, elements=st.integers(-bound, bound))


def real_matrices(rows: int, cols: int, bound: float) -> st.SearchStrategy[npt.NDArray[np.float64]]:
    """A ``rows x cols`` float64 plaintext matrix with entries in ``[-bound, bound]``."""
    return real_arrays((rows, cols), bound)


def integer_matrices(rows: int, cols: int, bound: int) -> st.SearchStrategy[npt.NDArray[np.int64]]:
    """A ``rows x cols`` int64 plaintext matrix with entries in ``[-bound, bound]``."""
    return integer_arrays((rows, cols), bound)


def coefficients(max_degree: int, bound: float) -> st.SearchStrategy[list[float]]:
    """Polynomial coefficients, lowest degree first, degree 0..``max_degree``."""
    return st.lists(reals(bound), min_size=1, max_size=max_degree + 1)


def index_arrays(
    size: int, min_count: int = 0, max_count: int = 2 * MAX_SIDE
) -> st.SearchStrategy[npt.NDArray[np.int64]]:
    """Row indices into an axis of length ``size`` (repeats and negative indices included)."""
    if size < 1:
        return st.just(np.zeros(0, dtype=np.int64))
    return hnp.arrays(
        np.int64, st.integers(min_count, max_count), elements=st.integers(-size, size - 1)
    )


@st.composite
def broadcast_pairs(draw: Any, max_dims: int = 2) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two shapes that broadcast together (NumPy rules), e.g. ``(3, 1)`` and ``(1, 4)``."""
    shapes = draw(
        hnp.mutually_broadcastable_shapes(
            num_shapes=2, min_dims=1, max_dims=max_dims, min_side=1, max_side=MAX_SIDE
        )
    )
    left, right = shapes.input_shapes
    return tuple(left), tuple(right)
