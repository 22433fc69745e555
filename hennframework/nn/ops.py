"""Operations that differ between plain NumPy arrays and encrypted tensors, in one place.

Layers are written once, with operators (``+ - * @``, ``.T``, ``.sum``), and run on either plain
arrays (the unencrypted model) or :class:`~hennframework.scheme.EncryptedTensor` (the encrypted one:
only members that protocol declares are used, which ``tests/nn/test_tensor_protocol.py`` checks).
The few operations that are spelled differently live here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "is_encrypted",
    "multiply_constant",
    "polyval",
    "scatter_add",
    "segment_sum",
    "sum_of_squares",
]


def is_encrypted(value: Any) -> bool:
    """True for an encrypted tensor (anything that is not a NumPy array or a Python number)."""
    return not isinstance(value, np.ndarray | float | int | np.floating | np.integer)


def polyval(value: Any, coefficients: Sequence[float]) -> Any:
    """sum_i c_i value**i, elementwise, on arrays or encrypted tensors."""
    if is_encrypted(value):
        return value.polyval(list(coefficients))
    return np.polynomial.polynomial.polyval(value, list(coefficients))


def multiply_constant(value: Any, constant: float) -> Any:
    """value * constant (a scheme keeps extra fixed-point precision for small constants)."""
    return value.multiply_constant(constant) if is_encrypted(value) else value * constant


def sum_of_squares(value: Any) -> Any:
    """sum(value**2) over every element (the squared-error loss's sum).

    On an encrypted tensor this is the inner product of its flattened values with themselves,
    ``flat @ flat``: the same sum, and a scheme that sums products before its key switch (the
    integer-vector scheme) then switches once instead of once per element, with less noise.
    """
    if not is_encrypted(value):
        return (value * value).sum()
    flat = value.reshape(-1)
    return flat @ flat


def segment_sum(value: Any, offsets: Any) -> Any:
    """Sums of consecutive row runs ``value[offsets[i]:offsets[i+1]]`` (offsets from 0 to len)."""
    if is_encrypted(value):
        return value.segment_sum(offsets)
    prefix = np.concatenate([np.zeros((1, *value.shape[1:])), np.cumsum(value, axis=0)])
    bounds = np.asarray(offsets)
    return prefix[bounds[1:]] - prefix[bounds[:-1]]


def scatter_add(target: Any, rows: Any, values: Any) -> Any:
    """A copy of ``target`` with ``values[i]`` added to row ``rows[i]`` (repeats accumulate)."""
    if not is_encrypted(target):
        out = np.array(target, copy=True)
        np.add.at(out, np.asarray(rows), values)
        return out
    return target.scatter_add(rows, values)
