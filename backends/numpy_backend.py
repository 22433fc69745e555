"""The NumPy (CPU) backend: the default, and the reference every other backend must match bit for bit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._limbs import matmul_small_left_limbs

__all__ = ["NumpyBackend"]


class NumpyBackend:
    """Arrays are ``numpy.ndarray``; integer GEMMs go through exact float64 BLAS on limbs."""

    name = "numpy"

    def is_available(self) -> tuple[bool, str]:
        return True, "ok"

    def describe(self) -> str:
        return f"NumPy {np.__version__} on the CPU"

    def asarray(self, data: Any, dtype: str | None = None) -> Any:
        return np.asarray(data, dtype=dtype)

    def to_numpy(self, array: Any) -> Any:
        return np.asarray(array)

    def zeros(self, shape: Sequence[int], dtype: str = "int64") -> Any:
        return np.zeros(tuple(shape), dtype=dtype)

    def concatenate(self, arrays: Sequence[Any], axis: int = 0) -> Any:
        return np.concatenate(list(arrays), axis=axis)

    def stack(self, arrays: Sequence[Any], axis: int = 0) -> Any:
        return np.stack(list(arrays), axis=axis)

    def broadcast_to(self, array: Any, shape: Sequence[int]) -> Any:
        return np.broadcast_to(array, tuple(shape))

    def moveaxis(self, array: Any, source: int, destination: int) -> Any:
        return np.moveaxis(array, source, destination)

    def index_add(self, target: Any, indices: Any, values: Any) -> None:
        np.add.at(target, indices, values)

    def matmul_int_wrap(self, left: Any, right: Any) -> Any:
        with np.errstate(over="ignore"):
            return np.matmul(left, right)

    def matmul_small_left(self, small: Any, right: Any, small_bound: int) -> Any:
        with np.errstate(over="ignore"):
            return matmul_small_left_limbs(np, small, right, small_bound)

    def matmul_float(self, left: Any, right: Any) -> Any:
        return np.matmul(left, right)

    def abs_max(self, array: Any) -> int:
        if array.size == 0:
            return 0
        if array.dtype.kind in "iu":
            # |INT64_MIN| does not fit int64: take max and min separately, as Python ints.
            return max(abs(int(array.max())), abs(int(array.min())))
        return int(np.ceil(np.abs(array).max()))

    def synchronize(self) -> None:
        return None
