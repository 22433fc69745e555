"""The array-module-generic backend behind the CuPy backend, testable on the CPU.

:class:`XpBackend` implements :class:`hennframework.backend.ArrayBackend` on any NumPy-compatible
array module ``xp`` (``cupy`` on a GPU, ``numpy`` on the CPU). The CuPy backend
(``cupy_backend.py``) is this class with ``xp = cupy`` plus a few device-specific hooks. Because
this module never imports CuPy, CI without a GPU runs the *same* code with ``xp = numpy`` and
checks it bit for bit against the NumPy reference backend (``tests/backends``).

Exactness without integer BLAS (cuBLAS has no int64 GEMM):

* ``matmul_small_left`` (gadget digits times key matrices, the hot path of every key switch) uses
  exact float64 GEMMs on limbs of the right operand (``_limbs.matmul_small_left_limbs``);
* ``matmul_int_wrap`` measures both operands and uses the same path when either side is small,
  otherwise splits *both* sides into 16-bit limbs (``_limbs.matmul_wrap_limbs``); every path is
  exact modulo 2**64, so the result equals NumPy's wrapping int64 ``matmul`` bit for bit;
* ``index_add`` on integers is a scatter-add (order-free: modular addition commutes); on floats
  it applies repeated indices in order of appearance, as ``numpy.add.at`` does, so float sums
  round identically (atomic float adds on a GPU would round in a random order).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ._limbs import limb_plan, matmul_small_left_limbs, matmul_wrap_limbs

__all__ = ["XpBackend"]


class XpBackend:
    """An :class:`~hennframework.backend.ArrayBackend` on the array module ``xp``.

    Subclasses adapt it to a device by overriding the hooks ``_to_host``,
    ``_scatter_add_integers``, ``synchronize``, ``is_available`` and ``describe``.
    """

    name = "xp"
    #: Above this many repeats of one index, ordered float ``index_add`` runs on the host (one
    #: copy each way) instead of one device pass per repeat.
    ordered_repeat_limit = 32

    def __init__(self, xp: Any = np, name: str | None = None) -> None:
        self.xp = xp
        if name is not None:
            self.name = name

    def __deepcopy__(self, memo: dict[int, Any]) -> XpBackend:
        return self  # stateless apart from the array module: copies of tensors share it

    # -- device hooks ----------------------------------------------------------------------
    def is_available(self) -> tuple[bool, str]:
        return True, "ok"

    def describe(self) -> str:
        module = getattr(self.xp, "__name__", type(self.xp).__name__)
        version = getattr(self.xp, "__version__", "?")
        return f"generic array backend on {module} {version}"

    def synchronize(self) -> None:
        return None

    def _to_host(self, array: Any) -> npt.NDArray[Any]:
        """Copy to a NumPy array (``cupy.asnumpy`` on a GPU)."""
        return np.asarray(array)

    def _scatter_add_integers(self, target: Any, indices: Any, values: Any) -> bool:
        """Unordered ``target[indices] += values`` for integer arrays; False if unsupported.

        Integer addition modulo 2**64 commutes, so any order (GPU atomics included) gives the
        exact result. ``indices`` is a flat, non-negative, in-range int64 array.
        """
        self.xp.add.at(target, indices, values)
        return True

    # -- creation and conversion -----------------------------------------------------------
    def asarray(self, data: Any, dtype: str | None = None) -> Any:
        return self.xp.asarray(data, dtype=dtype)

    def to_numpy(self, array: Any) -> npt.NDArray[Any]:
        return self._to_host(array)

    def zeros(self, shape: Sequence[int], dtype: str = "int64") -> Any:
        return self.xp.zeros(tuple(shape), dtype=dtype)

    def concatenate(self, arrays: Sequence[Any], axis: int = 0) -> Any:
        xp = self.xp
        return xp.concatenate([xp.asarray(a) for a in arrays], axis=axis)

    def stack(self, arrays: Sequence[Any], axis: int = 0) -> Any:
        xp = self.xp
        return xp.stack([xp.asarray(a) for a in arrays], axis=axis)

    def broadcast_to(self, array: Any, shape: Sequence[int]) -> Any:
        return self.xp.broadcast_to(self.xp.asarray(array), tuple(shape))

    def moveaxis(self, array: Any, source: int, destination: int) -> Any:
        return self.xp.moveaxis(array, source, destination)

    # -- scatter -----------------------------------------------------------------------------
    def index_add(self, target: Any, indices: Any, values: Any) -> None:
        xp = self.xp
        if isinstance(indices, int | slice):  # no repeats possible: a plain in-place add is exact
            target[indices] += values
            return
        if isinstance(indices, tuple):
            self._index_add_general(target, indices, values)
            return
        index = xp.asarray(indices)
        if index.dtype.kind == "b":
            target[index] += values
            return
        if index.dtype.kind not in "iu":
            raise IndexError(
                f"index_add needs integer or boolean indices, got dtype {index.dtype}; convert "
                "the indices with .astype('int64')."
            )
        if target.ndim == 0:
            raise IndexError("index_add needs a target with at least one axis")
        rows = int(target.shape[0])
        count = int(index.size)
        item_shape = tuple(target.shape[1:])
        value_array = xp.asarray(values)
        if value_array.dtype.kind in "fc" and target.dtype.kind in "iub":
            raise TypeError(
                f"index_add cannot add {value_array.dtype} values to a {target.dtype} target "
                "(numpy.add.at refuses the same cast); round and convert the values first."
            )
        value_array = xp.broadcast_to(value_array.astype(target.dtype), (*index.shape, *item_shape))
        if count == 0:
            return
        low, high = (int(v) for v in self._to_host(xp.stack([index.min(), index.max()])))
        if low < -rows or high >= rows:
            bad = high if high >= rows else low
            raise IndexError(f"index {bad} is out of bounds for axis 0 with size {rows}")
        flat_index = index.reshape(count).astype(xp.int64)
        if low < 0:
            flat_index = flat_index + (flat_index < 0).astype(xp.int64) * rows
        flat_values = value_array.reshape(count, *item_shape)
        if target.dtype.kind in "iu" and self._scatter_add_integers(
            target, flat_index, flat_values
        ):
            return
        self._index_add_ordered(target, flat_index, flat_values)

    def _index_add_general(self, target: Any, indices: Any, values: Any) -> None:
        """Tuple indices: the module's unbuffered add (float sums in device order on a GPU)."""
        self.xp.add.at(target, indices, values)

    def _index_add_ordered(self, target: Any, index: Any, values: Any) -> None:
        """``numpy.add.at`` order: the r-th occurrences of all indices are added in pass r.

        Within one pass every index is unique, so ``target[i] += v`` is a plain, exact fancy
        update; pass after pass, each entry receives its values in order of appearance, which is
        exactly NumPy's sequential order (so float rounding matches bit for bit).
        """
        xp = self.xp
        count = int(index.shape[0])
        rows = int(target.shape[0])
        if rows * count >= 2**63:  # the sort key below would overflow: do it on the host
            self._index_add_on_host(target, index, values)
            return
        # Sort by (index, position): unique keys, so any sort algorithm gives the stable order
        # (CuPy's argsort takes no ``kind``; NumPy's default is not stable).
        positions = xp.arange(count, dtype=xp.int64)
        order = xp.argsort(index * count + positions)
        sorted_index = index[order]
        new_run = xp.concatenate([xp.ones(1, dtype=bool), sorted_index[1:] != sorted_index[:-1]])
        run_starts = xp.flatnonzero(new_run)
        run_of = xp.cumsum(new_run.astype(xp.int64)) - 1
        rank_sorted = positions - run_starts[run_of]
        passes = int(rank_sorted.max()) + 1
        if passes == 1:
            target[index] += values
            return
        if passes > self.ordered_repeat_limit:
            self._index_add_on_host(target, index, values)
            return
        rank = xp.empty_like(rank_sorted)
        rank[order] = rank_sorted
        for step in range(passes):
            chosen = xp.flatnonzero(rank == step)
            target[index[chosen]] += values[chosen]

    def _index_add_on_host(self, target: Any, index: Any, values: Any) -> None:
        """``numpy.add.at`` on host copies, written back (one transfer each way)."""
        host = np.array(self._to_host(target))
        np.add.at(host, self._to_host(index), self._to_host(values))
        target[...] = self.xp.asarray(host)

    # -- exact integer and float arithmetic ------------------------------------------------
    def _as_int64(self, array: Any, what: str) -> Any:
        array = self.xp.asarray(array)
        if array.dtype.kind not in "biu":
            raise TypeError(f"{what} must hold integers, got dtype {array.dtype}")
        return array.astype(self.xp.int64, copy=False)

    def matmul_int_wrap(self, left: Any, right: Any) -> Any:
        xp = self.xp
        left = self._as_int64(left, "matmul_int_wrap: left")
        right = self._as_int64(right, "matmul_int_wrap: right")
        if left.ndim == 0 or right.ndim == 0:
            raise ValueError("matmul_int_wrap: operands must have at least one dimension")
        vector_left, vector_right = left.ndim == 1, right.ndim == 1
        if vector_left:
            left = left[None, :]
        if vector_right:
            right = right[:, None]
        if left.shape[-1] != right.shape[-2]:
            raise ValueError(
                f"matmul_int_wrap: shapes {tuple(left.shape)} and {tuple(right.shape)} do not "
                "align (inner dimensions differ)"
            )
        inner = int(left.shape[-1])
        with np.errstate(over="ignore"):
            left_bound = self.abs_max(left)
            if right.ndim == 2 and limb_plan(inner, left_bound) is not None:
                out = matmul_small_left_limbs(xp, left, right, left_bound)
            else:
                right_bound = self.abs_max(right)
                if left.ndim == 2 and limb_plan(inner, right_bound) is not None:
                    # (L R)^T = R^T L^T with the small operand on the left
                    swapped = matmul_small_left_limbs(
                        xp, xp.swapaxes(right, -1, -2), left.T, right_bound
                    )
                    out = xp.swapaxes(swapped, -1, -2)
                else:
                    out = matmul_wrap_limbs(xp, left, right)
        if vector_right:
            out = out[..., 0]
        if vector_left:
            out = out[..., 0] if vector_right else out[..., 0, :]
        return out

    def matmul_small_left(self, small: Any, right: Any, small_bound: int) -> Any:
        xp = self.xp
        small = xp.asarray(small)
        if small.dtype != xp.float64:  # float64 digits go to the float GEMM as they are
            small = self._as_int64(small, "matmul_small_left: small")
        right = self._as_int64(right, "matmul_small_left: right")
        if (
            small.ndim >= 1
            and right.ndim == 2
            and small.shape[-1] == right.shape[0]
            and limb_plan(int(right.shape[0]), small_bound) is not None
        ):
            with np.errstate(over="ignore"):
                return matmul_small_left_limbs(xp, small, right, small_bound)
        return self.matmul_int_wrap(small.astype(xp.int64, copy=False), right)

    def matmul_float(self, left: Any, right: Any) -> Any:
        return self.xp.matmul(left, right)

    def abs_max(self, array: Any) -> int:
        xp = self.xp
        array = xp.asarray(array)
        if array.size == 0:
            return 0
        if array.dtype.kind in "iub":
            # |INT64_MIN| does not fit int64: fetch max and min together, compare as Python ints.
            high, low = (int(v) for v in self._to_host(xp.stack([array.max(), array.min()])))
            return max(abs(high), abs(low))
        return math.ceil(float(xp.abs(array).max()))
