"""Ciphertexts of the integer-vector scheme: a batch of encrypted m-vectors with operators.

``data`` has shape ``(*batch, m + k)``: the leading axes are the batch (the logical tensor shape)
and the last axis holds one ciphertext. Each ciphertext ``c`` of message ``mu`` satisfies
``S c = w mu + e`` where ``mu`` is the *exact* rational value that the operations define (integer
operations keep it an integer; a rescale divides it exactly) and ``|e| <= noise`` elementwise.
Decryption returns ``round(S c / w)``, which is within 1/2 + noise/w of ``mu`` and equal to it when
``mu`` is an integer, and refuses (raises) when the noise bound could reach w/2.

Operators work on the batch like NumPy: ``+ - *`` broadcast elementwise, ``@`` is a matrix
product over the batch axes, ``sum``, indexing, ``reshape`` and ``transpose`` act on the batch.
Slot-level operations of m-vectors (``dot``, ``linear_transform``) are methods.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from hennframework.backend import Array
from hennframework.exceptions import InputError, KeyMismatchError, OverflowRiskError
from hennframework.schemes.integer_vector import wide
from hennframework.schemes.integer_vector.params import INT_BITS

if TYPE_CHECKING:
    from hennframework.schemes.integer_vector.scheme import IntegerVectorScheme

__all__ = ["Ciphertext"]

LIMIT = 1 << INT_BITS
#: Relative margin applied to float64 noise bounds so rounding in the bound itself never undercounts.
SAFETY = 1.0 + 1e-9


class Ciphertext:
    """A batch of integer-vector ciphertexts (see the module docstring)."""

    __array_priority__ = 1000
    __array_ufunc__ = (
        None  # make ``ndarray * Ciphertext`` / ``ndarray @ Ciphertext`` use our reflected ops
    )

    def __init__(
        self,
        scheme: IntegerVectorScheme,
        data: Array,
        dim: int,
        scale: int,
        noise: Array,
        key_id: str,
        coeff_bound: int | None = None,
    ) -> None:
        self.scheme = scheme
        self.data = data
        self.dim = dim
        self.scale_int = scale
        self.noise = noise  # float64 array of the batch shape: |e| <= noise, elementwise
        self.key_id = key_id
        self.coeff_bound = coeff_bound if coeff_bound is not None else scheme.backend.abs_max(data)
        if self.coeff_bound >= LIMIT:
            raise OverflowRiskError(
                f"ciphertext coefficients reach 2**{self.coeff_bound.bit_length() - 1}, beyond the "
                "exact range; use smaller values or a parameter set with a smaller w."
            )

    # -- properties ----------------------------------------------------------------------------
    @property
    def params(self) -> Any:
        return self.scheme.params

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape[:-1])

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))

    @property
    def scale(self) -> float:
        return float(self.scale_int)

    @property
    def max_noise(self) -> float:
        backend = self.scheme.backend
        return float(backend.to_numpy(self.noise).max()) if self.size else 0.0

    @property
    def noise_budget(self) -> float:
        """Bits left before the largest noise bound reaches w/2 (negative: decryption refuses)."""
        return float(self.params.noise_budget_bits(self.max_noise))

    def __len__(self) -> int:
        return self.shape[0] if self.shape else 1

    def __repr__(self) -> str:
        return (
            f"Ciphertext(shape={self.shape}, dim={self.dim}, scale={self.scale_int}, "
            f"noise_budget={self.noise_budget:.1f} bits, params={self.params.name!r})"
        )

    # -- helpers -----------------------------------------------------------------------------
    def _new(
        self,
        data: Array,
        noise: Array,
        scale: int | None = None,
        coeff_bound: int | None = None,
        dim: int | None = None,
        key_id: str | None = None,
    ) -> Ciphertext:
        return Ciphertext(
            self.scheme,
            data,
            self.dim if dim is None else dim,
            self.scale_int if scale is None else scale,
            noise,
            self.key_id if key_id is None else key_id,
            coeff_bound,
        )

    def _check_compatible(self, other: Ciphertext, what: str) -> None:
        if other.scheme.params != self.params:
            raise KeyMismatchError(
                f"cannot {what}: the ciphertexts use different parameter sets "
                f"({self.params.name!r} and {other.params.name!r})."
            )
        if other.key_id != self.key_id:
            raise KeyMismatchError(
                f"cannot {what}: the ciphertexts are under different keys ({self.key_id} and "
                f"{other.key_id}). Switch one to the other's key first (switch_key)."
            )
        if other.dim != self.dim:
            raise InputError(f"cannot {what}: vector lengths differ ({self.dim} and {other.dim}).")

    def _bounded(self, bound: int) -> int:
        if bound >= LIMIT:
            raise OverflowRiskError(
                f"the result could reach 2**{bound.bit_length() - 1} and leave the exact range "
                "(2**62); refused rather than wrapped. Rescale, use smaller values, or a "
                "parameter set with a smaller w."
            )
        return bound

    def _slot_plaintext(self, values: Any, scale: int, per_item: bool = False) -> tuple[Array, int]:
        """Encode a plaintext at ``scale`` and shape it to ``(*batch, m)`` for broadcasting.

        ``per_item``: one value per batch item, broadcast over the slots (products); otherwise
        (sums) a plaintext for m-vectors may also give one value per slot.
        """
        encoded = self.scheme.encode(values, scale)
        if self.dim == 1 or encoded.ndim == 0 or per_item:
            encoded = encoded[..., None]
        elif encoded.shape[-1] not in (1, self.dim):
            raise InputError(
                f"plaintext with last axis {encoded.shape[-1]} does not match vectors of length "
                f"{self.dim}; give one value per item (broadcast over slots) or {self.dim} per item."
            )
        bound = int(np.abs(encoded).max()) if encoded.size else 0
        return self.scheme.backend.asarray(encoded, dtype="int64"), bound

    def _message_bound(self) -> Array:
        """Elementwise |mu| <= (|c_top| + k t_bound |c_bottom| + noise) / w (float64, batch shape)."""
        m = self.dim
        top = abs(self.data[..., :m]).max(axis=-1).astype("float64")
        bottom = abs(self.data[..., m:]).max(axis=-1).astype("float64")
        p = self.params
        return (top + p.k * p.t_bound * bottom + self.noise) * (SAFETY / p.w)

    # -- addition and subtraction ------------------------------------------------------------
    def __add__(self, other: Any) -> Ciphertext:
        if isinstance(other, Ciphertext):
            self._check_compatible(other, "add")
            if other.scale_int != self.scale_int:
                raise InputError(
                    f"cannot add ciphertexts of different fixed-point scales ({self.scale_int} and "
                    f"{other.scale_int}); rescale one of them first."
                )
            broadcast_batch(self.shape, other.shape, "add")
            bound = self._bounded(self.coeff_bound + other.coeff_bound)
            return self._new(self.data + other.data, self.noise + other.noise, coeff_bound=bound)
        encoded, pbound = self._slot_plaintext(other, self.scale_int)
        broadcast_batch(self.shape, tuple(encoded.shape[:-1]), "add a plaintext to")
        w = self.params.w
        bound = self._bounded(self.coeff_bound + pbound * w)
        top = self.data[..., : self.dim] + encoded * w
        data = self.scheme.backend.concatenate(
            [
                top,
                self.scheme.backend.broadcast_to(
                    self.data[..., self.dim :], (*top.shape[:-1], self.params.k)
                ),
            ],
            axis=-1,
        )
        noise = self.scheme.backend.broadcast_to(self.noise, top.shape[:-1]) + 0.0
        return self._new(data, noise, coeff_bound=bound)

    def __radd__(self, other: Any) -> Ciphertext:
        return self.__add__(other)

    def __neg__(self) -> Ciphertext:
        return self._new(-self.data, self.noise, coeff_bound=self.coeff_bound)

    def __sub__(self, other: Any) -> Ciphertext:
        if isinstance(other, Ciphertext):
            return self + (-other)
        plain = np.asarray(other)
        if plain.dtype.kind in "ub":  # negating unsigned values would wrap
            plain = plain.astype(np.int64)
        negated: Ciphertext = self + (
            -plain.astype(np.float64) if not _is_int_like(plain) else -plain
        )
        return negated

    def __rsub__(self, other: Any) -> Ciphertext:
        return (-self).__add__(other)

    # -- multiplication ------------------------------------------------------------------------
    def __mul__(self, other: Any) -> Ciphertext:
        if isinstance(other, Ciphertext):
            return self.scheme.multiply(self, other)
        return self.scheme.multiply_plain(self, other)

    def __rmul__(self, other: Any) -> Ciphertext:
        return self.__mul__(other)

    def __matmul__(self, other: Any) -> Ciphertext:
        if isinstance(other, Ciphertext):
            return self.scheme.matmul_cipher(self, other)
        return self.scheme.matmul_plain(self, other, plain_on_left=False)

    def __rmatmul__(self, other: Any) -> Ciphertext:
        return self.scheme.matmul_plain(self, other, plain_on_left=True)

    def multiply_constant(self, constant: float) -> Ciphertext:
        """``self * constant`` with the constant encoded at the fine scale (f**2) for precision."""
        return self.scheme.multiply_plain(self, constant, encode_scale=self.scheme.fine_scale)

    def square(self) -> Ciphertext:
        return self.scheme.multiply(self, self)

    def polyval(self, coefficients: Sequence[float]) -> Ciphertext:
        """sum_i coefficients[i] * x**i, elementwise (powers by a balanced product tree)."""
        return self.scheme.polyval(self, coefficients)

    def rescale(self, divisor: int | None = None) -> Ciphertext:
        return self.scheme.rescale(self, divisor)

    # -- slot operations (m-vectors) -----------------------------------------------------------
    def dot(self, other: Ciphertext, weight: npt.ArrayLike | None = None) -> Ciphertext:
        """x^T H y per batch item (H = identity by default); needs the matching evaluation key."""
        return self.scheme.dot(self, other, weight)

    def linear_transform(self, matrix: npt.ArrayLike) -> Ciphertext:
        """G x per batch item (G integer, shape out x m); needs the matching evaluation key."""
        return self.scheme.linear_transform(self, matrix)

    def switch_key(self, switch_key: Any) -> Ciphertext:
        return self.scheme.switch_key(self, switch_key)

    # -- batch-shape operations ----------------------------------------------------------------
    def __getitem__(self, index: Any) -> Ciphertext:
        idx = index if isinstance(index, tuple) else (index,)
        if any(isinstance(i, Ciphertext) for i in idx):
            raise InputError("cannot index with a ciphertext")
        backend = self.scheme.backend
        idx = tuple(backend.asarray(i) if isinstance(i, np.ndarray) else i for i in idx)
        data = self.data[(*idx, slice(None))]
        noise = self.noise[idx]
        return self._new(data, noise, coeff_bound=self.coeff_bound)

    def sum(self, axis: int | None = None, keepdims: bool = False) -> Ciphertext:
        if axis is None:
            flat = self.reshape(-1)
            return flat.sum(axis=0, keepdims=keepdims)
        if not -self.ndim <= axis < self.ndim:
            raise InputError(f"axis {axis} is out of range for a batch of {self.ndim} dimensions")
        axis = axis % self.ndim
        count = self.shape[axis]
        bound = self._bounded(self.coeff_bound * max(count, 1))
        data = self.data.sum(axis=axis, keepdims=keepdims)
        noise = self.noise.sum(axis=axis, keepdims=keepdims)
        return self._new(data, noise, coeff_bound=bound)

    def reshape(self, *shape: Any) -> Ciphertext:
        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        data = self.data.reshape(*shape, self.data.shape[-1])
        return self._new(data, self.noise.reshape(*shape), coeff_bound=self.coeff_bound)

    def transpose(self, *axes: int) -> Ciphertext:
        order = list(axes) if axes else list(reversed(range(self.ndim)))
        data = self.data.transpose(*order, self.ndim)
        return self._new(data, self.noise.transpose(*order), coeff_bound=self.coeff_bound)

    @property
    def T(self) -> Ciphertext:
        return self.transpose()

    def broadcast_to(self, shape: Sequence[int]) -> Ciphertext:
        backend = self.scheme.backend
        data = backend.broadcast_to(self.data, (*shape, self.data.shape[-1]))
        return self._new(
            data, backend.broadcast_to(self.noise, tuple(shape)), coeff_bound=self.coeff_bound
        )

    def copy(self) -> Ciphertext:
        return self._new(self.data.copy(), self.noise.copy(), coeff_bound=self.coeff_bound)

    def scatter_add(self, rows: Any, values: Any) -> Ciphertext:
        """A copy with ``values[i]`` added to row ``rows[i]`` of axis 0 (repeats accumulate)."""
        if not isinstance(values, Ciphertext):
            raise InputError("scatter_add needs encrypted values under the same key")
        self._check_compatible(values, "scatter_add")
        if values.scale_int != self.scale_int:
            raise InputError(
                f"cannot scatter_add values of scale {values.scale_int} into a tensor of scale "
                f"{self.scale_int}; encode both at the same fixed-point scale."
            )
        backend = self.scheme.backend
        rows_np = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows_np.size and (rows_np.min() < -self.shape[0] or rows_np.max() >= self.shape[0]):
            raise InputError(f"row indices out of range for {self.shape[0]} rows")
        if values.shape != (rows_np.size, *self.shape[1:]):
            raise InputError(
                f"scatter_add needs values of shape {(rows_np.size, *self.shape[1:])} for "
                f"{rows_np.size} row indices, got {values.shape}"
            )
        repeats = int(np.bincount(rows_np % self.shape[0]).max()) if rows_np.size else 0
        bound = self._bounded(self.coeff_bound + repeats * values.coeff_bound)
        data = self.data.copy()
        noise = self.noise.copy()
        index = backend.asarray(rows_np)
        backend.index_add(data, index, values.data)
        backend.index_add(noise, index, values.noise)
        return self._new(data, noise, coeff_bound=bound)

    def segment_sum(self, offsets: Any) -> Ciphertext:
        """Sums of consecutive runs along axis 0: run i is ``self[offsets[i]:offsets[i+1]]``.

        ``offsets`` starts at 0 and ends at ``len(self)``. Exact: int64 prefix sums wrap modulo
        2**64 but their differences (the run sums) are proved to fit.
        """
        backend = self.scheme.backend
        bounds = np.asarray(offsets, dtype=np.int64)
        if (
            bounds.ndim != 1
            or bounds.size < 1
            or bounds[0] != 0
            or bounds[-1] != self.shape[0]
            or (np.diff(bounds) < 0).any()
        ):
            raise InputError("offsets must rise from 0 to the number of rows")
        longest = int(np.diff(bounds).max()) if bounds.size > 1 else 0
        bound = self._bounded(self.coeff_bound * max(longest, 1))
        zero_data = backend.zeros((1, *self.data.shape[1:]), dtype="int64")
        zero_noise = backend.zeros((1, *self.noise.shape[1:]), dtype="float64")
        prefix = backend.concatenate([zero_data, self.data.cumsum(axis=0)], axis=0)
        noise_prefix = backend.concatenate([zero_noise, self.noise.cumsum(axis=0)], axis=0)
        index = backend.asarray(bounds)
        data = prefix[index[1:]] - prefix[index[:-1]]
        noise = noise_prefix[index[1:]] - noise_prefix[index[:-1]]
        # float prefix sums round: widen by the largest possible accumulated rounding error
        slack = (
            float(backend.to_numpy(noise_prefix[-1]).max()) * 2.0**-50 * max(self.shape[0], 1)
            if self.size
            else 0.0
        )
        return self._new(data, noise * SAFETY + slack, coeff_bound=bound)

    def decrypt(self, secret_key: Any) -> npt.NDArray[np.float64]:
        """Decrypt with the secret key (real values: the integer message divided by the scale)."""
        return self.scheme.decrypt_tensor(self, secret_key)


def broadcast_batch(left: tuple[int, ...], right: tuple[int, ...], what: str) -> tuple[int, ...]:
    """The broadcast batch shape, or an InputError naming both shapes."""
    try:
        return tuple(np.broadcast_shapes(left, right))
    except ValueError:
        raise InputError(
            f"cannot {what} batches of shapes {left} and {right}: they do not broadcast together "
            "(NumPy rules); reshape or index one of them first."
        ) from None


def _is_int_like(value: Any) -> bool:
    return isinstance(value, int) or (isinstance(value, np.ndarray) and value.dtype.kind in "iu")


def wide_matmul_round_div(
    backend: Any, left: Array, right: Array, divisor: int, left_bound: int
) -> Array:
    """round((left @ right) / divisor) exactly, where ``right`` may be near 2**62 (split in 31-bit halves).

    ``left`` is a small integer matrix (|left| <= left_bound); ``right`` holds ciphertext
    coefficients. Each half-product fits in int64; the halves are joined in 128 bits.
    """
    high = right >> 31
    low = right & ((1 << 31) - 1)
    prod_high = backend.matmul_int_wrap(left, high)
    prod_low = backend.matmul_int_wrap(left, low)
    value = wide.wide_add(
        (prod_high >> 33, prod_high.view("uint64") << 31),
        (prod_low >> 63, prod_low.view("uint64")),
    )
    return wide.round_div_wide(value, divisor)
