"""The NumPy (CPU) backend: the default, and the reference every other backend must match bit for bit.

It is the array-module-generic backend (:mod:`._xp_backend`) with ``xp = numpy``, using what NumPy
has and a GPU lacks: an exact wrapping int64 ``matmul`` and the ordered ``numpy.add.at``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._xp_backend import XpBackend

__all__ = ["NumpyBackend"]


class NumpyBackend(XpBackend):
    """Arrays are ``numpy.ndarray``; integer GEMMs go through exact float64 BLAS on limbs."""

    name = "numpy"

    def __init__(self) -> None:
        super().__init__(np)

    def describe(self) -> str:
        return f"NumPy {np.__version__} on the CPU"

    def index_add(self, target: Any, indices: Any, values: Any) -> None:
        np.add.at(target, indices, values)  # exact for integers, in order for floats

    def matmul_int_wrap(self, left: Any, right: Any) -> Any:
        with np.errstate(over="ignore"):
            return np.matmul(left, right)  # int64 arithmetic wraps modulo 2**64
