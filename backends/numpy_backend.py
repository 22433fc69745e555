"""The NumPy (CPU) backend: the default, and the reference every other backend must match bit for bit.

It is the array-module-generic backend (:mod:`._xp_backend`) with ``xp = numpy``, using what NumPy
has and a GPU lacks: an exact wrapping int64 ``matmul`` and the ordered ``numpy.add.at``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._xp_backend import XpBackend

__all__ = ["NumpyBackend"]

#: ``matmul_small_left`` uses NumPy's integer ``matmul`` for keys of at most this many columns
#: (measured faster than the float limbs at every batch size) ...
INT_MATMUL_COLUMNS = 3
#: ... or when the product has at most this many multiply-adds (rows x inner x columns).
INT_MATMUL_WORK = 8192


class NumpyBackend(XpBackend):
    """Arrays are ``numpy.ndarray``; integer GEMMs are NumPy's wrapping int64 ``matmul`` where
    that is faster (narrow keys, small products), exact float64 BLAS on limbs otherwise."""

    name = "numpy"

    def __init__(self) -> None:
        super().__init__(np)

    def describe(self) -> str:
        return f"NumPy {np.__version__} on the CPU"

    def broadcast_to(self, array: Any, shape: Any) -> Any:
        """``numpy.broadcast_to``; an array that already has the shape is returned as it is
        (a broadcast view is read-only, so no caller writes to what this returns)."""
        if type(array) is np.ndarray and array.shape == tuple(shape):
            return array
        return np.broadcast_to(array, tuple(shape))

    def moveaxis(self, array: Any, source: int, destination: int) -> Any:
        """``numpy.moveaxis`` of one axis, as the transposed view it returns, without its
        general axis normalisation (a few microseconds per call on the small ciphertexts of a
        training step); out-of-range axes go to ``numpy.moveaxis`` for its error."""
        if type(array) is not np.ndarray or not (
            -array.ndim <= source < array.ndim and -array.ndim <= destination < array.ndim
        ):
            return np.moveaxis(array, source, destination)
        ndim = array.ndim
        source %= ndim
        order = [axis for axis in range(ndim) if axis != source]
        order.insert(destination % ndim, source)
        return array.transpose(order)

    def index_add(self, target: Any, indices: Any, values: Any) -> None:
        """``numpy.add.at`` (exact for integers, in order of appearance for floats).

        Row indices into a contiguous target of several axes go through the one-dimensional
        ``add.at`` on flat element indices, which NumPy runs several times faster: every
        element still receives its values one at a time, in the order its row appears in
        ``indices``, so integer and float results are the same bits.
        """
        flat = _flat_rows(target, indices, values)
        if flat is None:
            np.add.at(target, indices, values)
            return
        flat_index, flat_values = flat
        np.add.at(target.reshape(-1), flat_index, flat_values)

    def matmul_int_wrap(self, left: Any, right: Any) -> Any:
        with np.errstate(over="ignore"):
            return np.matmul(left, right)  # int64 arithmetic wraps modulo 2**64

    def matmul_small_left(self, small: Any, right: Any, small_bound: int) -> Any:
        """NumPy's own int64 ``matmul`` (exact modulo 2**64) where it is the faster of the two.

        NumPy multiplies integer matrices without BLAS, about a nanosecond per multiply-add,
        while the float-limb path (``XpBackend.matmul_small_left``) costs a few microseconds of
        splitting and recombining per call whatever the size. A key switch of small ciphertexts
        (a product key has ``m + k`` columns: 2 with the default set) is all fixed cost, so
        narrow keys and small products go straight to ``matmul``; both paths are exact modulo
        2**64, so the results are the same bits.
        """
        if (
            small.ndim == 2
            and right.ndim == 2
            and small.dtype == np.int64
            and right.dtype == np.int64
            and (
                right.shape[1] <= INT_MATMUL_COLUMNS
                or small.size * right.shape[1] <= INT_MATMUL_WORK
            )
        ):
            return np.matmul(small, right)  # integer matmul wraps silently modulo 2**64
        return super().matmul_small_left(small, right, small_bound)


def _flat_rows(target: Any, indices: Any, values: Any) -> tuple[Any, Any] | None:
    """``(element indices, values)`` of ``target.reshape(-1)`` for adding ``values`` at the
    rows ``indices`` of ``target``, or None where ``index_add`` keeps the general ``add.at``
    (not plain in-range row indices, a target that is not one contiguous block, values of
    another type or shape)."""
    if not (
        type(target) is np.ndarray
        and type(indices) is np.ndarray
        and target.ndim >= 2
        and target.flags.c_contiguous
        and target.flags.writeable
        and indices.ndim == 1
        and indices.dtype.kind in "iu"
        and indices.size
    ):
        return None
    values = np.asarray(values)
    item_shape = target.shape[1:]
    if values.dtype != target.dtype or values.shape != (indices.size, *item_shape):
        return None
    rows = target.shape[0]
    if int(indices.min()) < 0 or int(indices.max()) >= rows:
        return None  # negative or out of range: add.at's own handling and errors
    width = math.prod(item_shape)
    element = indices.astype(np.int64)[:, None] * width + np.arange(width, dtype=np.int64)
    return element.reshape(-1), values.reshape(-1)
