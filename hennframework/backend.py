"""The array-backend interface: exactly the array operations the schemes need.

A backend is a small class (one module per backend under ``backends/``) that satisfies
:class:`ArrayBackend`. Arrays themselves are the backend's native arrays (``numpy.ndarray``,
``cupy.ndarray``); scheme code uses their operators (``+ - * // >> & @``, ``.sum``, ``.reshape``,
indexing) and calls the backend for everything that is a *function* in NumPy/CuPy, so schemes
never import numpy or cupy on their hot paths.

Exactness contract: ``int64`` arithmetic is exact modulo 2**64 (two's-complement wraparound),
which the schemes exploit: an expression whose true value is known to fit in 63 bits may
overflow in between and still come out exact. Callers, not backends, prove that the final values
fit (see ``hennframework.schemes.integer_vector.bounds``).

A scheme is given its backend instance; with none, it computes on :func:`default_backend` (the
NumPy reference). Choosing a backend by name or from the configuration is the plugin registry's
job (:func:`hennframework.get_backend`), above the schemes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy.typing as npt

# shipped in this distribution (``backends/``); mypy checks that folder under its own name
from hennframework_backends.numpy_backend import (  # type: ignore[import-not-found, unused-ignore]
    NumpyBackend,
)

__all__ = ["Array", "ArrayBackend", "default_backend"]

#: A backend-native array (``numpy.ndarray`` or ``cupy.ndarray``).
Array = Any


@runtime_checkable
class ArrayBackend(Protocol):
    """What a backend must provide. See ``backends/numpy_backend.py`` for the reference."""

    #: The name the backend is registered under (entry point ``hennframework.backends``).
    name: str

    def is_available(self) -> tuple[bool, str]:
        """Whether the backend can run here, and if not, why (for ``henn backends``)."""
        ...

    def describe(self) -> str:
        """A one-line description of the device and library versions."""
        ...

    # -- creation and conversion -------------------------------------------------------------
    def asarray(self, data: Any, dtype: str | None = None) -> Array:
        """Convert Python/NumPy data (or an array of this backend) to a backend array."""
        ...

    def to_numpy(self, array: Array) -> npt.NDArray[Any]:
        """Copy a backend array to host memory as a NumPy array (only on decrypt/export)."""
        ...

    def zeros(self, shape: Sequence[int], dtype: str = "int64") -> Array:
        """A new array of zeros."""
        ...

    def concatenate(self, arrays: Sequence[Array], axis: int = 0) -> Array:
        """Join arrays along an existing axis."""
        ...

    def stack(self, arrays: Sequence[Array], axis: int = 0) -> Array:
        """Join arrays along a new axis."""
        ...

    def broadcast_to(self, array: Array, shape: Sequence[int]) -> Array:
        """``array`` broadcast to ``shape`` (a view, or ``array`` itself when it has that shape):
        callers must not write to it."""
        ...

    def moveaxis(self, array: Array, source: int, destination: int) -> Array:
        """Move one axis to another position."""
        ...

    def index_add(self, target: Array, indices: Array, values: Array) -> None:
        """Unbuffered ``target[indices] += values`` (repeated indices accumulate)."""
        ...

    # -- exact integer and float arithmetic ----------------------------------------------------
    def matmul_int_wrap(self, left: Array, right: Array) -> Array:
        """``left @ right`` on int64, exact modulo 2**64 (any sizes)."""
        ...

    def matmul_small_left(self, small: Array, right: Array, small_bound: int) -> Array:
        """``small @ right`` exact modulo 2**64, where ``|small| <= small_bound`` (gadget digits).

        ``right`` may hold any int64 values (read modulo 2**64). ``small`` holds integers, as
        int64 or as float64 (digits made as floats for the GEMM need no conversion). Backends
        use exact float64 GEMMs on limbs of ``right`` (BLAS / cuBLAS) where that is exact and
        faster.
        """
        ...

    def matmul_float(self, left: Array, right: Array) -> Array:
        """float64 matrix product."""
        ...

    def abs_max(self, array: Array) -> int:
        """max(|array|) as a Python int (0 for an empty array). Exact for int64."""
        ...

    def synchronize(self) -> None:
        """Wait for queued device work to finish (no-op on the CPU); used by benchmarks."""
        ...


@functools.cache
def default_backend() -> ArrayBackend:
    """The NumPy reference backend (one instance per process): what a scheme given no backend uses."""
    backend: ArrayBackend = NumpyBackend()
    return backend
