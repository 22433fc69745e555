"""Packed CKKS tensors: NumPy-like encrypted arrays on SEAL ciphertexts.

A :class:`CKKSTensor` is a logical array of real values stored in a grid of ciphertexts with a
:class:`~hennframework_ckks.layout.Layout` (which axes live in slots, which across ciphertexts).
It implements :class:`hennframework.scheme.EncryptedTensor`:

* ``+ - *`` with tensors, NumPy arrays and numbers, broadcasting like NumPy;
* ``@`` in both directions: plaintext-matrix products use the diagonal method
  (:mod:`hennframework_ckks.linear`), encrypted-by-encrypted products multiply and then sum with
  rotations;
* ``sum(axis)``, ``transpose``/``T``, ``reshape``, ``[rows]``, ``scatter_add``, ``polyval``,
  ``multiply_constant`` and ``segment_sum``.

Levels and scales. Every product uses one level (a rescale by the level's prime); ``levels_left``
is the smallest level among the tensor's ciphertexts, read from SEAL. An operation that needs a
level where none is left raises :class:`~hennframework.exceptions.NoiseBudgetExhaustedError`
("needs refresh"). Scales are tracked exactly: products with plaintexts land on the parameter
set's scale by choosing the plaintext's encoding scale; a ciphertext-by-ciphertext product has
scale ``s1 * s2 / q``; adding two ciphertexts of different scales first multiplies the one with
more levels left by a constant 1 encoded to land exactly on the other's level and scale.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from hennframework.exceptions import (
    InputError,
    KeyMismatchError,
    NoiseBudgetExhaustedError,
    OverflowRiskError,
)

from hennframework_ckks._seal import sa
from hennframework_ckks.layout import Layout, ceil_log2
from hennframework_ckks.linear import _zero, apply_linear

__all__ = ["CKKSTensor", "LazyLinear", "encrypt_array"]

Array = npt.NDArray[np.float64]
#: Integer plaintext factors up to this size multiply without using a level.
_MAX_FREE_INTEGER = 1024


def _as_plain(value: Any) -> Array:
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"plaintext values must be real numbers: {exc}") from exc
    if array.dtype.kind not in "biuf":
        raise InputError(
            f"plaintext values must be real numbers (bool, int or float), not dtype {array.dtype}"
        )
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise InputError("plaintext operands must be finite (no NaN or infinity)")
    return array


def _object_array(shape: tuple[int, ...], items: Sequence[Any]) -> npt.NDArray[np.object_]:
    out = np.empty(len(items), dtype=object)
    for index, item in enumerate(items):
        out[index] = item
    return out.reshape(shape)


def _broadcast_shape(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError as exc:
        raise InputError(f"shapes {' and '.join(map(str, shapes))} do not broadcast") from exc


class CKKSTensor:
    """An encrypted real array (see the module docstring). Made by ``CKKSScheme.encrypt_tensor``."""

    __array_ufunc__ = (
        None  # NumPy defers to our reflected operators (array @ tensor, array + tensor)
    )

    def __init__(self, key: Any, layout: Layout, cts: npt.NDArray[np.object_], clean: bool) -> None:
        if cts.shape != layout.grid_shape:
            raise ValueError(f"grid {cts.shape} does not match layout {layout.grid_shape}")
        self.key = key
        self.layout = layout
        self.cts = cts
        self.clean = clean
        self._powers: dict[int, npt.NDArray[np.object_]] = {}
        #: unpinned ciphertexts by pinned bits, shared with views that keep the flat cell order
        self._unpinned: dict[int, list[Any]] = {}

    # ------------------------------------------------------------------------------------
    # properties
    # ------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.layout.shape

    @property
    def ndim(self) -> int:
        return self.layout.ndim

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d encrypted tensor")
        return self.shape[0]

    @property
    def key_id(self) -> str:
        return str(self.key.key_id)

    @property
    def context(self) -> Any:
        return self.key.context

    @property
    def ciphertexts(self) -> list[Any]:
        return list(self.cts.reshape(-1))

    @property
    def ciphertext_count(self) -> int:
        return int(self.cts.size)

    @property
    def scale(self) -> float:
        """Scale of the (first) ciphertext: encoded values are ``round(x * scale)``."""
        if not self.cts.size:
            return float(self.key.params.scale)
        return float(self.cts.reshape(-1)[0].scale)

    @property
    def levels_left(self) -> int:
        """Rescales (multiplicative depth) still possible: the lowest level among the ciphertexts."""
        if not self.cts.size:
            return int(self.context.top_level)
        return min(int(self.context.effective_level(ct)) for ct in self.cts.reshape(-1))

    @property
    def noise_budget(self) -> float:
        """``levels_left`` as a float: CKKS has no decryption-failure noise bound to report, the
        budget that runs out is the modulus chain (see docs/plugins-ckks.md)."""
        return float(self.levels_left)

    @property
    def T(self) -> CKKSTensor:
        return self.transpose()

    def __repr__(self) -> str:
        return (
            f"CKKSTensor(shape={self.shape}, levels_left={self.levels_left}, "
            f"layout='{self.layout.describe()}')"
        )

    # ------------------------------------------------------------------------------------
    # construction helpers
    # ------------------------------------------------------------------------------------
    def _new(self, layout: Layout, cts: npt.NDArray[np.object_], clean: bool) -> CKKSTensor:
        return CKKSTensor(self.key, layout, cts, clean)

    def _check_other(self, other: CKKSTensor) -> None:
        if other.key_id != self.key_id:
            raise KeyMismatchError(
                f"cannot combine tensors of key sets {self.key_id!r} and {other.key_id!r}; "
                "encrypt both with the same keys."
            )

    def _relin(self, ct: Any) -> Any:
        return self.context.relin(ct, self.key.relin_keys)

    def _rotate(self, ct: Any, step: int) -> Any:
        return self.context.rotate(
            ct, step, self.key.galois_keys, self.key.rotation_steps, self.key.relin_keys
        )

    @property
    def _target(self) -> float:
        return float(self.key.params.scale)

    # ------------------------------------------------------------------------------------
    # ciphertext-level arithmetic with exact level/scale alignment
    # ------------------------------------------------------------------------------------
    def _align(self, a: Any, b: Any) -> tuple[Any, Any]:
        ctx = self.context
        if ctx.level_of(a) == ctx.level_of(b) and a.scale == b.scale:
            return a, b  # also pending products of equal scale: summed before their rescale
        a = ctx.settle(a, self.key.relin_keys)
        b = ctx.settle(b, self.key.relin_keys)
        la, lb = ctx.level_of(a), ctx.level_of(b)
        if ctx.same_scale(a.scale, b.scale):
            level = min(la, lb)
            a, b = ctx.mod_to(a, level), ctx.mod_to(b, level)
            if a.scale != b.scale:
                b = ctx.copy(b)
                b.scale = a.scale
            return a, b
        # bring the operand with more levels onto the other's (level, scale) with a constant 1
        swap = la > lb
        high, low = (a, b) if swap else (b, a)
        lh, ll = ctx.level_of(high), ctx.level_of(low)
        if lh > ll:
            high = ctx.mod_to(high, ll + 1)
        else:
            low = ctx.mod_to(low, ll - 1) if ll >= 1 else low
        high = self._mul_plain(high, 1.0, low.scale)
        return (high, low) if swap else (low, high)

    def _add_ct(self, a: Any, b: Any, subtract: bool = False) -> Any:
        a, b = self._align(a, b)
        try:
            return self.context.sub(a, b) if subtract else self.context.add(a, b)
        except (ValueError, RuntimeError) as exc:
            if "transparent" not in str(exc):
                raise
            return _zero(self.key, self.context.level_of(a), a.scale)

    def _mul_plain(self, ct: Any, values: Array | float, target: float) -> Any:
        """``ctx.multiply_plain``; a plaintext that encodes to zero gives a fresh encryption of 0."""
        try:
            return self.context.multiply_plain(ct, values, target, self.key.relin_keys)
        except RuntimeError as exc:
            if "transparent" not in str(exc):
                raise
            level = self.context.effective_level(ct)
            return _zero(self.key, level - 1, target)

    def _mul_plain_ct(self, ct: Any, values: Array | float) -> Any:
        """``ct * values``; integers multiply exactly without a level, zeros give a fresh zero."""
        ctx = self.context
        if isinstance(values, float):
            if values == 0.0:
                return _zero(self.key, ctx.level_of(ct), ct.scale)
            if values == 1.0:
                return ct
            if values == -1.0:
                return ctx.negate(ct)
            if values.is_integer() and abs(values) <= _MAX_FREE_INTEGER:
                return ctx.multiply_integer(ct, int(values))
            return self._mul_plain(ct, values, self._target)
        if not np.any(values):
            level = ctx.require_level(ct, "a product with a plaintext")
            return _zero(self.key, level - 1, self._target)
        return self._mul_plain(ct, values, self._target)

    # ------------------------------------------------------------------------------------
    # layout machinery
    # ------------------------------------------------------------------------------------
    def _view(self, layout: Layout) -> CKKSTensor:
        """The same ciphertexts in the same flat order under another layout (caches shared)."""
        view = self._new(layout, self.cts.reshape(layout.grid_shape), self.clean)
        view._unpinned = self._unpinned
        return view

    def _expand(self, ndim: int) -> CKKSTensor:
        layout = self.layout.expand(ndim)
        if layout is self.layout:
            return self
        return self._view(layout)

    def _mask_invalid(self) -> CKKSTensor:
        """Zero every invalid slot (padding, pinned positions): one level."""
        layout = self.layout
        ones = np.ones(self.shape)
        cts = [
            self._mul_plain_ct(ct, layout.slot_vector(ones, cell))
            for cell, ct in zip(layout.cells(), self.cts.reshape(-1), strict=True)
        ]
        return self._new(layout, _object_array(layout.grid_shape, cts), True)

    def relayout(self, target: Layout) -> CKKSTensor:
        """The same values packed as ``target`` (one level; a plaintext linear map)."""
        if target.shape != self.shape:
            raise ValueError("relayout keeps the shape")
        if target == self.layout:
            return self
        flat = np.arange(self.size, dtype=np.int64)
        cts = apply_linear(
            self.key,
            self.layout,
            self.ciphertexts,
            target,
            flat,
            flat,
            np.ones(self.size),
            self._target,
        )
        return self._new(target, _object_array(target.grid_shape, cts), True)

    def _unpin(self, bits: int) -> CKKSTensor:
        """Make pinned slot bits free again (replicate index 0 across them); cached per tensor."""
        bits &= self.layout.pinned
        if not bits:
            return self
        if bits not in self._unpinned:
            self._unpinned[bits] = self._unpin_uncached(bits).ciphertexts
        layout = self.layout.replace(pinned=self.layout.pinned & ~bits)
        return self._new(layout, _object_array(layout.grid_shape, self._unpinned[bits]), True)

    def _unpin_uncached(self, bits: int) -> CKKSTensor:
        negative = all(
            -(1 << b) in self.key.rotation_steps
            for b in range(self.layout.slot_bits)
            if bits >> b & 1
        )
        if negative:
            source = self if self.clean else self._mask_invalid()
            cts = []
            for ct in source.cts.reshape(-1):
                ct = self._relin(ct)
                for b in range(self.layout.slot_bits):
                    if bits >> b & 1:
                        ct = self.context.add(ct, self._rotate(ct, -(1 << b)))
                cts.append(ct)
            layout = self.layout.replace(pinned=self.layout.pinned & ~bits)
            return self._new(layout, _object_array(layout.grid_shape, cts), True)
        return self.relayout(self.layout.replace(pinned=self.layout.pinned & ~bits))

    @staticmethod
    def _covers(operand: Layout, result: Layout) -> bool:
        """Whether the operand is zero wherever the result is invalid (given it is clean)."""
        if result.pinned & ~operand.pinned:
            return False
        for axis, (size, (_, bits)) in enumerate(zip(result.shape, result.groups, strict=True)):
            if bits and size % (1 << bits) and operand.shape[axis] != size:
                return False
        return True

    def _placement_for(self, base: Layout, other: Layout | None) -> Layout:
        """A layout for ``base``'s shape that is compatible with ``other`` (for relayouts)."""
        groups: list[tuple[int, int]] = [(0, 0)] * base.ndim
        used = 0
        if other is not None:
            for axis in range(base.ndim):
                if other.shape[axis] > 1 and base.shape[axis] > 1:
                    groups[axis] = other.groups[axis]
            used = other.occupied
        for axis in range(base.ndim):
            if base.shape[axis] > 1 and (other is None or other.shape[axis] == 1):
                shift, bits = base.groups[axis]
                mask = ((1 << bits) - 1) << shift
                if bits and not used & mask:
                    groups[axis] = (shift, bits)
                    used |= mask
                    continue
                need = ceil_log2(base.shape[axis])
                probe = Layout(base.shape, tuple((0, 0) for _ in base.shape), base.slot_bits, used)
                place = probe.lowest_free_run(need)
                if place is not None:
                    groups[axis] = (place, need)
                    used |= ((1 << need) - 1) << place
                else:
                    groups[axis] = (0, 0)
        return Layout(base.shape, tuple(groups), base.slot_bits)

    @staticmethod
    def _conflicts(la: Layout, lb: Layout) -> tuple[int, int, bool]:
        """(bits ``la`` must unpin, bits ``lb`` must unpin, whether a hard conflict remains)."""
        unpin_a = unpin_b = 0
        hard = False
        for axis in range(la.ndim):
            sa_, sb_ = la.shape[axis], lb.shape[axis]
            ga, gb = la.groups[axis], lb.groups[axis]
            if sa_ > 1 and sb_ > 1:
                if ga != gb:
                    hard = True
                continue
            for size, (shift, bits), other, other_size in ((sb_, gb, la, sa_), (sa_, ga, lb, sb_)):
                if size > 1 and bits and other_size == 1:
                    mask = ((1 << bits) - 1) << shift
                    if other.occupied & mask:
                        hard = True
                    elif other.pinned & mask:
                        if other is la:
                            unpin_a |= other.pinned & mask
                        else:
                            unpin_b |= other.pinned & mask
        return unpin_a, unpin_b, hard

    def _pair(
        self, other: CKKSTensor, shape: tuple[int, ...]
    ) -> tuple[CKKSTensor, CKKSTensor, Layout]:
        """Both operands in compatible layouts, and the result's layout."""
        a, b = self._expand(len(shape)), other._expand(len(shape))
        for _ in range(3):
            unpin_a, unpin_b, hard = self._conflicts(a.layout, b.layout)
            if hard:
                # convert the operand with more levels to the other's packing
                if a.levels_left > b.levels_left:
                    a = a.relayout(self._placement_for(a.layout, b.layout))
                else:
                    b = b.relayout(self._placement_for(b.layout, a.layout))
                continue
            if unpin_a or unpin_b:
                a, b = a._unpin(unpin_a), b._unpin(unpin_b)
                continue
            groups = tuple(
                a.layout.groups[i] if a.layout.shape[i] > 1 else b.layout.groups[i]
                for i in range(len(shape))
            )
            layout = Layout(shape, groups, a.layout.slot_bits, a.layout.pinned | b.layout.pinned)
            return a, b, layout
        grid = Layout.grid(a.shape, a.layout.slot_bits)
        a = a.relayout(grid)
        grid_b = Layout.grid(b.shape, b.layout.slot_bits)
        b = b.relayout(grid_b)
        return a, b, Layout(shape, tuple((0, 0) for _ in shape), a.layout.slot_bits)

    def _place_plain(self, shape: tuple[int, ...]) -> CKKSTensor:
        """Expand to a broadcast shape: axes that only the plaintext has go to free bits or the grid."""
        a = self._expand(len(shape))
        groups = list(a.layout.groups)
        grid = a.cts
        probe = a.layout
        for axis, size in enumerate(shape):
            if a.shape[axis] == 1 and size > 1:
                need = ceil_log2(size)
                place = probe.lowest_free_run(need)
                if place is not None:
                    groups[axis] = (place, need)
                    probe = Layout(
                        tuple(size if i == axis else s for i, s in enumerate(probe.shape)),
                        tuple(groups),
                        probe.slot_bits,
                        probe.pinned,
                    )
                else:
                    groups[axis] = (0, 0)
                    grid = np.repeat(grid, size, axis=axis)
                    probe = Layout(
                        tuple(size if i == axis else s for i, s in enumerate(probe.shape)),
                        tuple(groups),
                        probe.slot_bits,
                        probe.pinned,
                    )
        layout = Layout(shape, tuple(groups), a.layout.slot_bits, a.layout.pinned)
        clean = a.clean and self._covers(a.layout, layout)
        return self._new(layout, grid.reshape(layout.grid_shape), clean)

    # ------------------------------------------------------------------------------------
    # elementwise operators
    # ------------------------------------------------------------------------------------
    def _binary(self, other: Any, op: str) -> CKKSTensor:
        if isinstance(other, LazyLinear):
            other = other.materialize()
        if isinstance(other, CKKSTensor):
            self._check_other(other)
            shape = _broadcast_shape(self.shape, other.shape)
            if 0 in shape:
                return _empty_tensor(self.key, shape)
            a, b, layout = self._pair(other, shape)
            if op == "mul":
                clean = (a.clean and self._covers(a.layout, layout)) or (
                    b.clean and self._covers(b.layout, layout)
                )
            else:
                clean = (
                    a.clean
                    and b.clean
                    and self._covers(a.layout, layout)
                    and self._covers(b.layout, layout)
                )
            grid_a, grid_b = np.broadcast_arrays(a.cts, b.cts)
            out = []
            for index in np.ndindex(*layout.grid_shape):
                x, y = grid_a[index], grid_b[index]
                if op == "add":
                    out.append(self._add_ct(x, y))
                elif op == "sub":
                    out.append(self._add_ct(x, y, subtract=True))
                elif op == "rsub":
                    out.append(self._add_ct(y, x, subtract=True))
                else:
                    out.append(self.context.multiply(x, y, self.key.relin_keys))
            return self._new(layout, _object_array(layout.grid_shape, out), clean)
        plain = _as_plain(other)
        shape = _broadcast_shape(self.shape, plain.shape)
        if 0 in shape:
            return _empty_tensor(self.key, shape)
        a = self._place_plain(shape)
        values = np.broadcast_to(plain, shape)
        layout = a.layout
        # a constant plaintext multiplies as a scalar (cheap to encode; small integers use no
        # level); invalid slots then keep what they held, so the result is as clean as ``a``
        constant = op == "mul" and values.size > 0 and bool(np.all(values == values.flat[0]))
        out = []
        for cell, ct in zip(layout.cells(), a.cts.reshape(-1), strict=True):
            vector = float(values.flat[0]) if constant else layout.slot_vector(values, cell)
            if op == "mul":
                out.append(self._mul_plain_ct(ct, vector))
            elif op in ("add", "sub"):
                out.append(
                    self.context.add_plain(ct, vector, self.key.relin_keys, negate=op == "sub")
                )
            else:  # plain - ct
                out.append(
                    self.context.add_plain(self.context.negate(ct), vector, self.key.relin_keys)
                )
        # plaintext vectors are zero at invalid slots: products are clean, sums as clean as ``a``
        clean = a.clean if (op != "mul" or constant) else True
        return self._new(layout, _object_array(layout.grid_shape, out), clean)

    def __add__(self, other: Any) -> CKKSTensor:
        return self._binary(other, "add")

    def __radd__(self, other: Any) -> CKKSTensor:
        return self._binary(other, "add")

    def __sub__(self, other: Any) -> CKKSTensor:
        return self._binary(other, "sub")

    def __rsub__(self, other: Any) -> CKKSTensor:
        return self._binary(other, "rsub")

    def __mul__(self, other: Any) -> CKKSTensor:
        return self._binary(other, "mul")

    def __rmul__(self, other: Any) -> CKKSTensor:
        return self._binary(other, "mul")

    def __neg__(self) -> CKKSTensor:
        cts = [self.context.negate(ct) for ct in self.cts.reshape(-1)]
        return self._new(self.layout, _object_array(self.layout.grid_shape, cts), self.clean)

    def __pos__(self) -> CKKSTensor:
        return self

    def multiply_constant(self, constant: float) -> CKKSTensor:
        """``self * constant`` (one level unless the constant is a small integer)."""
        return self._binary(float(constant), "mul")

    # ------------------------------------------------------------------------------------
    # reductions and shape operations
    # ------------------------------------------------------------------------------------
    def sum(self, axis: int | Sequence[int] | None = None) -> CKKSTensor:
        """Sum over an axis (or all axes): ciphertext additions and rotations, no level."""
        if axis is None:
            axes = list(range(self.ndim))
        elif isinstance(axis, int):
            axes = [axis]
        else:
            axes = list(axis)
        normalised = []
        for a in axes:
            if not -self.ndim <= a < self.ndim:
                raise InputError(f"axis {a} is out of range for shape {self.shape}")
            normalised.append(a % self.ndim)
        # sum slot groups from the highest bits down, so that each is "top" when it is summed
        groups = self.layout.groups
        normalised = sorted(
            set(normalised), key=lambda a: -(groups[a][0] + groups[a][1]) if groups[a][1] else 1
        )
        result = self
        remaining = list(normalised)
        while remaining:
            a = remaining.pop(0)
            result = result._sum_axis(a)
            remaining = [b - 1 if b > a else b for b in remaining]
        return result

    def _sum_axis(self, axis: int) -> CKKSTensor:
        layout = self.layout
        size = layout.shape[axis]
        shift, bits = layout.groups[axis]
        source = self
        if bits and size % (1 << bits) and not self.clean:
            source = self._mask_invalid()
        grid = source.cts
        # grid part: add the ciphertexts along the axis
        if grid.shape[axis] > 1:
            parts = np.moveaxis(grid, axis, 0)
            total = parts[0].copy()
            for index in np.ndindex(*total.shape):
                acc = total[index]
                for part in parts[1:]:
                    acc = self._add_ct(acc, part[index])
                total[index] = acc
            grid = np.expand_dims(total, axis)
        top = layout.axis_is_top(axis)
        if bits:
            flat = []
            for ct in grid.reshape(-1):
                ct = self._relin(ct)
                for b in range(shift, shift + bits):
                    ct = self.context.add(ct, self._rotate(ct, 1 << b))
                flat.append(ct)
            grid = _object_array(grid.shape, flat)
        new_layout = layout.drop_axis(axis, pin=bool(bits) and not top)
        clean = source.clean if (top or not bits) else False
        return self._new(new_layout, grid.reshape(new_layout.grid_shape), clean)

    def transpose(self, *axes: int) -> CKKSTensor:
        if not axes:
            order = tuple(range(self.ndim - 1, -1, -1))
        elif len(axes) == 1 and isinstance(axes[0], tuple | list):
            order = tuple(int(a) for a in axes[0])
        else:
            order = tuple(int(a) for a in axes)
        if sorted(a % max(self.ndim, 1) for a in order) != list(range(self.ndim)):
            raise InputError(f"axes {order} are not a permutation of {self.ndim} axes")
        order = tuple(a % self.ndim for a in order)
        layout = self.layout.transpose(order)
        return self._new(layout, np.transpose(self.cts, order), self.clean)

    def reshape(self, *shape: Any) -> CKKSTensor:
        """NumPy's reshape (C order). Free when the packing allows it, else one plaintext linear map."""
        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        try:
            target = tuple(int(s) for s in np.empty(self.shape, dtype=np.int8).reshape(shape).shape)
        except ValueError as exc:
            raise InputError(f"cannot reshape {self.shape} into {shape}") from exc
        if target == self.shape:
            return self
        if 0 in target:
            return _empty_tensor(self.key, target)
        layout = self.layout
        if [s for s in target if s != 1] == [s for s in self.shape if s != 1]:
            kept = iter(g for s, g in zip(self.shape, layout.groups, strict=True) if s != 1)
            groups = tuple(next(kept) if s != 1 else (0, 0) for s in target)
            new = Layout(target, groups, layout.slot_bits, layout.pinned)
            return self._view(new)
        # the same flat-index-to-slot map under a contiguous packing of the new shape: free
        cell, position = layout.canonical
        shifts = [shift for (shift, bits) in layout.groups if bits]
        for start in sorted({0, min(shifts, default=0)}):
            candidate = _contiguous_layout(target, layout.slot_bits, start, layout.pinned)
            if candidate is None or math.prod(candidate.grid_shape) != self.cts.size:
                continue
            c_cell, c_position = candidate.canonical
            if np.array_equal(c_cell, cell) and np.array_equal(c_position, position):
                return self._new(candidate, self.cts.reshape(candidate.grid_shape), self.clean)
        new = Layout.default(target, layout.slot_bits)
        flat = np.arange(self.size, dtype=np.int64)
        return self._linear(new, flat, flat, np.ones(self.size))

    def _expand_dims(self, axis: int) -> CKKSTensor:
        layout = Layout(
            (*self.shape[:axis], 1, *self.shape[axis:]),
            (*self.layout.groups[:axis], (0, 0), *self.layout.groups[axis:]),
            self.layout.slot_bits,
            self.layout.pinned,
        )
        return self._view(layout)

    # ------------------------------------------------------------------------------------
    # plaintext linear maps: matmul with a plaintext, selection, scatter
    # ------------------------------------------------------------------------------------
    def _linear(
        self,
        out_layout: Layout,
        out_flat: npt.NDArray[np.int64],
        in_flat: npt.NDArray[np.int64],
        weights: Array,
    ) -> CKKSTensor:
        cts = apply_linear(
            self.key,
            self.layout,
            self.ciphertexts,
            out_layout,
            out_flat,
            in_flat,
            weights,
            self._target,
        )
        return self._new(out_layout, _object_array(out_layout.grid_shape, cts), True)

    def _layout_replacing(self, axis: int, new_size: int) -> Layout:
        """This layout with ``axis`` resized to ``new_size``, placed where the old axis was."""
        layout = self.layout
        shift, bits = layout.groups[axis]
        shape = (*layout.shape[:axis], new_size, *layout.shape[axis + 1 :])
        groups = list(layout.groups)
        need = ceil_log2(new_size)
        if new_size == 1:
            groups[axis] = (0, 0)
        elif bits == 0:
            probe = layout.drop_axis(axis, pin=False).replace(pinned=0)
            place = probe.lowest_free_run(need)
            groups[axis] = (place, need) if place is not None else (0, 0)
        elif need <= bits:
            groups[axis] = (shift, need)
        else:
            extra = ((1 << need) - 1) << shift
            free_after = layout.drop_axis(axis, pin=False).free
            groups[axis] = (shift, need) if free_after & extra == extra else (shift, bits)
        return Layout(shape, tuple(groups), layout.slot_bits, 0)

    def plain_matmul_left(self, matrix: Array) -> CKKSTensor:
        """``matrix @ self`` for a plaintext 1-D or 2-D matrix (contracting axis -2, or 0 if 1-D)."""
        squeeze = matrix.ndim == 1
        matrix2 = matrix[None, :] if squeeze else matrix
        if self.ndim == 0:
            raise InputError("matmul needs at least one axis")
        if self.ndim == 1:
            base = self._expand_dims(1)
            result = base.plain_matmul_left(matrix2)
            result = result.reshape(result.shape[0])
            return result.reshape(()) if squeeze else result
        rows, inner = matrix2.shape
        axis = self.ndim - 2
        if self.shape[axis] != inner:
            raise InputError(f"matmul: {matrix.shape} @ {self.shape} (inner sizes differ)")
        batch = math.prod(self.shape[:axis])
        cols = self.shape[-1]
        a_idx, k_idx = np.nonzero(matrix2)
        weights = matrix2[a_idx, k_idx]
        beta = np.arange(batch)[None, :, None]
        nu = np.arange(cols)[None, None, :]
        out_flat = ((beta * rows + a_idx[:, None, None]) * cols + nu).reshape(-1)
        in_flat = ((beta * inner + k_idx[:, None, None]) * cols + nu).reshape(-1)
        w = np.broadcast_to(weights[:, None, None], (len(weights), batch, cols)).reshape(-1)
        out_layout = self._layout_replacing(axis, rows)
        result = self._linear(out_layout, out_flat.astype(np.int64), in_flat.astype(np.int64), w)
        if squeeze:
            return result.reshape((*self.shape[:axis], cols))
        return result

    def plain_matmul_right(self, matrix: Array) -> CKKSTensor:
        """``self @ matrix`` for a plaintext 1-D or 2-D matrix (contracting the last axis)."""
        squeeze = matrix.ndim == 1
        matrix2 = matrix[:, None] if squeeze else matrix
        if self.ndim == 0:
            raise InputError("matmul needs at least one axis")
        inner, cols = matrix2.shape
        if self.shape[-1] != inner:
            raise InputError(f"matmul: {self.shape} @ {matrix.shape} (inner sizes differ)")
        lead = math.prod(self.shape[:-1])
        k_idx, n_idx = np.nonzero(matrix2)
        weights = matrix2[k_idx, n_idx]
        mu = np.arange(lead)[None, :]
        out_flat = (mu * cols + n_idx[:, None]).reshape(-1)
        in_flat = (mu * inner + k_idx[:, None]).reshape(-1)
        w = np.broadcast_to(weights[:, None], (len(weights), lead)).reshape(-1)
        out_layout = self._layout_replacing(self.ndim - 1, cols)
        result = self._linear(out_layout, out_flat.astype(np.int64), in_flat.astype(np.int64), w)
        if squeeze:
            return result.reshape(self.shape[:-1])
        return result

    def __matmul__(self, other: Any) -> CKKSTensor:
        if isinstance(other, LazyLinear):
            other = other.materialize()
        if isinstance(other, CKKSTensor):
            return _encrypted_matmul(self, other)
        plain = _as_plain(other)
        if plain.ndim > 2:
            return _encrypted_matmul(self, other)
        return self.plain_matmul_right(plain)

    def __rmatmul__(self, other: Any) -> Any:
        """``plain @ self``; a 2-D plaintext gives a :class:`LazyLinear` (evaluated on first use,
        so that a following ``multiply_constant`` folds into the plaintext for free)."""
        plain = _as_plain(other)
        if plain.ndim > 2 or plain.ndim == 0:
            raise InputError("plaintext @ encrypted needs a 1-D or 2-D plaintext")
        if plain.ndim == 2 and self.ndim <= 2:
            if plain.shape[1] != self.shape[0]:
                raise InputError(f"matmul: {plain.shape} @ {self.shape} (inner sizes differ)")
            return LazyLinear(plain, self)
        return self.plain_matmul_left(plain)

    def __getitem__(self, index: Any) -> Any:
        first, squeeze = _normalise_row_index(index, self.shape)
        if self.layout.groups[0][1] == 0:
            layout = self.layout
            cts = self.cts[first]
            shape = (len(first), *self.shape[1:])
            new = self._new(
                Layout(shape, layout.groups, layout.slot_bits, layout.pinned), cts, self.clean
            )
            if squeeze:
                return new.reshape(self.shape[1:]) if self.ndim > 1 else new.reshape(())
            return new
        if not len(first):
            return _empty_tensor(self.key, (0, *self.shape[1:]))
        matrix = np.zeros((len(first), self.shape[0]))
        matrix[np.arange(len(first)), first] = 1.0
        lazy = LazyLinear(matrix, self)
        if squeeze:
            result = lazy.materialize()
            return result.reshape(self.shape[1:]) if self.ndim > 1 else result.reshape(())
        return lazy

    def segment_sum(self, offsets: npt.ArrayLike) -> CKKSTensor:
        """Sums of consecutive row runs ``self[offsets[i]:offsets[i+1]]`` (a plaintext linear map)."""
        return LazyLinear(np.eye(self.shape[0]), self).segment_sum(offsets).materialize()

    def scatter_add(self, rows: npt.ArrayLike, values: Any) -> CKKSTensor:
        """A copy with ``values[i]`` added to row ``rows[i]`` (repeats accumulate)."""
        indices = np.asarray(rows, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < -self.shape[0] or indices.max() >= self.shape[0]):
            raise InputError(f"rows out of range for {self.shape[0]} rows")
        indices %= max(self.shape[0], 1)
        if not isinstance(values, CKKSTensor | LazyLinear):
            plain = _as_plain(values)
            dense = np.zeros(self.shape)
            np.add.at(dense, indices, np.broadcast_to(plain, (len(indices), *self.shape[1:])))
            return self + dense
        if values.shape != (len(indices), *self.shape[1:]):
            raise InputError(
                f"scatter_add: values of shape {values.shape} for {len(indices)} rows of {self.shape}"
            )
        matrix = np.zeros((self.shape[0], len(indices)))
        np.add.at(matrix, (indices, np.arange(len(indices))), 1.0)
        base = values.base if isinstance(values, LazyLinear) else values
        if isinstance(values, LazyLinear):
            matrix = matrix @ values.matrix
        self._check_other(base)
        update = base._map_rows_into(matrix, self.layout)
        return self + update

    def _map_rows_into(self, matrix: Array, out_layout: Layout) -> CKKSTensor:
        """``matrix @ self`` (contracting axis 0) packed as ``out_layout``."""
        rest = math.prod(self.shape[1:])
        a_idx, k_idx = np.nonzero(matrix)
        weights = matrix[a_idx, k_idx]
        nu = np.arange(rest)[None, :]
        out_flat = (a_idx[:, None] * rest + nu).reshape(-1).astype(np.int64)
        in_flat = (k_idx[:, None] * rest + nu).reshape(-1).astype(np.int64)
        w = np.broadcast_to(weights[:, None], (len(weights), rest)).reshape(-1)
        return self._linear(out_layout, out_flat, in_flat, w)

    # ------------------------------------------------------------------------------------
    # polynomials
    # ------------------------------------------------------------------------------------
    def _power(self, exponent_bit: int) -> npt.NDArray[np.object_]:
        """Ciphertexts of ``x ** (2 ** exponent_bit)`` (cached: forward and derivative share them)."""
        if exponent_bit == 0:
            return self.cts
        if exponent_bit not in self._powers:
            half = self._power(exponent_bit - 1)
            ctx, relin = self.context, self.key.relin_keys
            flat = [ctx.settle(ctx.multiply(ct, ct, relin), relin) for ct in half.reshape(-1)]
            self._powers[exponent_bit] = _object_array(half.shape, flat)
        return self._powers[exponent_bit]

    def polyval(self, coefficients: Sequence[float]) -> CKKSTensor:
        """``sum(c_i * x**i)`` elementwise, lowest degree first, at depth ``ceil(log2(degree + 1))``.

        Each term ``c_k x**k`` multiplies ``c_k`` into the lowest power of two in ``k`` first and
        then the other powers ``x**(2**j)`` (computed by squaring, shared across terms), with the
        plaintext's encoding scale chosen so that every term lands exactly on the target scale.
        """
        coeffs = [float(c) for c in coefficients]
        if not coeffs or not all(math.isfinite(c) for c in coeffs):
            raise InputError("polyval needs a non-empty list of finite coefficients")
        while len(coeffs) > 1 and coeffs[-1] == 0.0:
            coeffs.pop()
        ctx = self.context
        layout = self.layout
        target = self._target
        degree = len(coeffs) - 1
        depth = ceil_log2(degree + 1)
        if degree > 0 and self.levels_left < depth:
            raise NoiseBudgetExhaustedError(
                f"a polynomial of degree {degree} needs {depth} levels but the tensor has "
                f"{self.levels_left} left; it needs refresh: have the key holder refresh it "
                "(CKKSScheme.refresh or a hennframework_ckks.refresh provider) or use a parameter "
                "set with more levels."
            )
        ones = np.ones(self.shape)
        cells = layout.cells()
        results = []
        for index, cell in enumerate(cells):
            mask = layout.slot_vector(ones, cell)
            base_ct = self.cts.reshape(-1)[index]
            terms = []
            for k, c in enumerate(coeffs):
                if k == 0 or c == 0.0:
                    continue
                bits = [b for b in range(k.bit_length()) if k >> b & 1]
                chain = [self._power(b).reshape(-1)[index] for b in bits]
                # simulate levels/scales with an encoding factor of 1 to find the factor needed
                chain = [ctx.settle(ct, self.key.relin_keys) for ct in chain]
                level = ctx.level_of(chain[0])
                first = chain[0].scale / ctx.prime(level)
                factor, lvl = first, level - 1
                for ct in chain[1:]:
                    m = min(lvl, ctx.level_of(ct))
                    factor = factor * ct.scale / ctx.prime(m)
                    lvl = m - 1
                if lvl < 0 or level < 1:
                    ctx.require_level(_zero_level_probe(ctx, chain[0], level), "a polynomial")
                first_target = target * first / factor
                coefficient = c * mask if isinstance(mask, np.ndarray) else c
                term = self._mul_plain(chain[0], coefficient, first_target)
                for ct in chain[1:]:
                    term = ctx.multiply(term, ct, self.key.relin_keys)
                term = ctx.settle(term, self.key.relin_keys)
                term.scale = target
                terms.append(term)
            if not terms:
                level = ctx.effective_level(base_ct)
                zero = _zero(self.key, level, target)
                constant = coeffs[0] * mask if isinstance(mask, np.ndarray) else coeffs[0]
                results.append(ctx.add_plain(zero, constant, self.key.relin_keys))
                continue
            low = min(ctx.level_of(t) for t in terms)
            acc = ctx.mod_to(terms[0], low)
            for term in terms[1:]:
                acc = ctx.add(acc, ctx.mod_to(term, low))
            if coeffs[0] != 0.0:
                constant = coeffs[0] * mask if isinstance(mask, np.ndarray) else coeffs[0]
                acc = ctx.add_plain(acc, constant, self.key.relin_keys)
            results.append(acc)
        return self._new(layout, _object_array(layout.grid_shape, results), True)

    def copy(self) -> CKKSTensor:
        return self._new(self.layout, self.cts.copy(), self.clean)

    def serialize(self) -> bytes:
        """This tensor in the checksummed container of :mod:`hennframework_ckks.serialization`."""
        from hennframework_ckks.serialization import tensors_to_bytes

        return tensors_to_bytes([self])


def _contiguous_layout(
    shape: tuple[int, ...], slot_bits: int, start: int, pinned: int
) -> Layout | None:
    """Axes packed from the last one up from slot bit ``start``, each exactly ``ceil_log2`` wide."""
    groups: list[tuple[int, int]] = [(0, 0)] * len(shape)
    cursor = start
    for axis in range(len(shape) - 1, -1, -1):
        if shape[axis] <= 1:
            continue
        bits = ceil_log2(shape[axis])
        if cursor + bits > slot_bits or (((1 << bits) - 1) << cursor) & pinned:
            return None
        groups[axis] = (cursor, bits)
        cursor += bits
    try:
        return Layout(tuple(shape), tuple(groups), slot_bits, pinned)
    except ValueError:
        return None


def _empty_tensor(key: Any, shape: tuple[int, ...]) -> CKKSTensor:
    """A tensor with an empty axis: no ciphertexts (NumPy semantics for empty selections)."""
    layout = Layout.grid(tuple(shape), key.context.slot_bits)
    return CKKSTensor(key, layout, np.empty(layout.grid_shape, dtype=object), True)


def _zero_level_probe(ctx: Any, ct: Any, level: int) -> Any:
    """A ciphertext at level 0 so that ``require_level`` raises the uniform message."""
    del level
    return ctx.mod_to(ct, 0)


def _normalise_row_index(index: Any, shape: tuple[int, ...]) -> tuple[npt.NDArray[np.int64], bool]:
    """Rows selected on axis 0 by ``index`` (int, slice, int or bool array), and whether to squeeze."""
    if not shape:
        raise InputError("cannot index a 0-d encrypted tensor")
    if isinstance(index, tuple):
        if not index:
            return np.arange(shape[0]), False
        rest = index[1:]
        if any(not (isinstance(r, slice) and r == slice(None)) and r is not Ellipsis for r in rest):
            raise InputError(
                "encrypted tensors support row selection on axis 0 only: t[rows] or t[rows, :]"
            )
        index = index[0]
    n = shape[0]
    if isinstance(index, int | np.integer):
        value = int(index)
        if not -n <= value < n:
            raise InputError(f"row {value} out of range for {n} rows")
        return np.array([value % n]), True
    if isinstance(index, slice):
        return np.arange(n)[index], False
    array = np.asarray(index)
    if array.dtype == bool:
        if array.shape != (n,):
            raise InputError(f"a boolean row mask needs shape ({n},)")
        return np.nonzero(array)[0].astype(np.int64), False
    if not np.issubdtype(array.dtype, np.integer) or array.ndim != 1:
        raise InputError("rows must be an int, a slice, a 1-D integer array or a boolean mask")
    if array.size and (array.min() < -n or array.max() >= n):
        raise InputError(f"rows out of range for {n} rows")
    return (array % n).astype(np.int64), False


def _encrypted_matmul(x: CKKSTensor, y: Any) -> CKKSTensor:
    """``x @ y`` as a broadcast product followed by a sum over the contracted axis."""
    y_shape = y.shape if isinstance(y, CKKSTensor) else np.shape(y)
    if x.ndim == 0 or len(y_shape) == 0:
        raise InputError("matmul needs at least one axis on each side")
    xa = x._expand_dims(0) if x.ndim == 1 else x
    right: Any
    if isinstance(y, CKKSTensor):
        ya = y._expand_dims(1) if y.ndim == 1 else y
        inner = ya.shape[-2]
        right = ya._expand_dims(ya.ndim - 2)  # (..., 1, k, n)
    else:
        plain = _as_plain(y)
        plain = plain[:, None] if plain.ndim == 1 else plain
        inner = plain.shape[-2]
        right = np.expand_dims(plain, -3)
    if xa.shape[-1] != inner:
        raise InputError(f"matmul: {x.shape} @ {y_shape} (inner sizes differ)")
    left = xa._expand_dims(xa.ndim)  # (..., m, k, 1)
    result: CKKSTensor = (left * right).sum(axis=-2)
    if x.ndim == 1:
        result = result.reshape(result.shape[:-2] + result.shape[-1:])
    if len(y_shape) == 1:
        result = result.reshape(result.shape[:-1])
    return result


class LazyLinear:
    """``matrix @ base`` not yet computed: row selections compose into one plaintext linear map.

    ``W[rows]`` on a slot-packed axis returns one of these; ``segment_sum``, ``multiply_constant``
    and ``scatter_add`` fold into the matrix (no ciphertext work), and anything else materialises
    it with one plaintext linear map (one level).
    """

    __array_ufunc__ = None

    def __init__(self, matrix: Array, base: CKKSTensor) -> None:
        self.matrix = matrix
        self.base = base
        self._value: CKKSTensor | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.matrix.shape[0], *self.base.shape[1:])

    def materialize(self) -> CKKSTensor:
        if self._value is None and 0 in self.shape:
            self._value = _empty_tensor(self.base.key, self.shape)
        if self._value is None:
            if self.base.ndim == 1:
                self._value = self.base.plain_matmul_left(self.matrix)
            else:
                flat = (
                    self.base.reshape(self.base.shape[0], -1) if self.base.ndim > 2 else self.base
                )
                value = flat.plain_matmul_left(self.matrix)
                self._value = value.reshape(self.shape) if self.base.ndim > 2 else value
        return self._value

    @property
    def scale(self) -> float:
        return self.base.scale

    @property
    def levels_left(self) -> int:
        return self.base.levels_left - 1

    @property
    def noise_budget(self) -> float:
        return float(self.levels_left)

    @property
    def key_id(self) -> str:
        return self.base.key_id

    def segment_sum(self, offsets: npt.ArrayLike) -> LazyLinear:
        bounds = np.asarray(offsets, dtype=np.int64)
        if bounds.ndim != 1 or bounds.size < 1 or bounds[0] != 0 or bounds[-1] != self.shape[0]:
            raise InputError("offsets must start at 0 and end at the number of rows")
        selector = np.zeros((len(bounds) - 1, self.shape[0]))
        for row, (start, stop) in enumerate(itertools.pairwise(bounds)):
            selector[row, start:stop] = 1.0
        return LazyLinear(selector @ self.matrix, self.base)

    def multiply_constant(self, constant: float) -> LazyLinear:
        return LazyLinear(self.matrix * float(constant), self.base)

    def __getitem__(self, index: Any) -> Any:
        rows, squeeze = _normalise_row_index(index, self.shape)
        if squeeze:
            return self.materialize()[index]
        return LazyLinear(self.matrix[rows], self.base)

    def __mul__(self, other: Any) -> Any:
        if isinstance(other, int | float | np.floating | np.integer):
            return self.multiply_constant(float(other))
        return self.materialize() * other

    def __rmul__(self, other: Any) -> Any:
        return self.__mul__(other)

    def __neg__(self) -> LazyLinear:
        return self.multiply_constant(-1.0)

    def _delegate(name: str) -> Callable[..., Any]:  # type: ignore[misc]
        def method(self: LazyLinear, *args: Any, **kwargs: Any) -> Any:
            return getattr(self.materialize(), name)(*args, **kwargs)

        method.__name__ = name
        return method

    __add__ = _delegate("__add__")
    __radd__ = _delegate("__radd__")
    __sub__ = _delegate("__sub__")
    __rsub__ = _delegate("__rsub__")
    __matmul__ = _delegate("__matmul__")
    __rmatmul__ = _delegate("__rmatmul__")
    sum = _delegate("sum")
    transpose = _delegate("transpose")
    reshape = _delegate("reshape")
    polyval = _delegate("polyval")
    scatter_add = _delegate("scatter_add")

    @property
    def T(self) -> CKKSTensor:
        return self.materialize().transpose()

    def __repr__(self) -> str:
        return f"LazyLinear(shape={self.shape}, base={self.base!r})"


def encrypt_array(
    key: Any,
    values: npt.ArrayLike,
    layout: Layout | None = None,
    *,
    secret: Any = None,
    level: int | None = None,
) -> CKKSTensor:
    """Encrypt a real array with ``layout`` (default packing if None).

    ``level`` (default: the top) encrypts with fewer primes: a ciphertext that only needs ``l``
    more products is smaller and every operation on it is cheaper (key switching costs about
    ``(l + 1) * (l + 2)`` NTTs).
    """
    array = _as_plain(values)
    ctx = key.context
    params = key.params
    bound = params.headroom
    if array.size and np.abs(array).max() >= bound:
        raise OverflowRiskError(
            f"values up to {np.abs(array).max():g} do not fit: the parameter set {params.name!r} "
            f"holds |x| < {bound:g} after the last rescale. Scale the data down or use a "
            "parameter set with a larger first prime."
        )
    if array.size == 0:
        return _empty_tensor(key, array.shape)
    layout = layout or Layout.default(array.shape, ctx.slot_bits)
    if layout.shape != array.shape:
        raise InputError(f"layout for {layout.shape} used on values of shape {array.shape}")
    cts = []
    if level is None:
        level = ctx.top_level
    if not 0 <= level <= ctx.top_level:
        raise InputError(f"level must be in 0..{ctx.top_level}, got {level}")
    for cell in layout.cells():
        vector = layout.slot_vector(array, cell)
        plain = ctx.encode(vector, level, params.scale)
        ct = sa.Ciphertext()
        if secret is not None:
            secret.symmetric_encryptor.encrypt_symmetric(plain, ct)
        else:
            key.encryptor.encrypt(plain, ct)
        cts.append(ct)
    return CKKSTensor(key, layout, _object_array(layout.grid_shape, cts), True)


def decrypt_array(secret: Any, tensor: CKKSTensor) -> Array:
    """Decrypt to a float64 array of the tensor's shape."""
    ctx = secret.public.context
    layout = tensor.layout
    cell_of, position = layout.canonical
    decoded = np.empty((tensor.ciphertext_count, ctx.slots))
    for index, ct in enumerate(tensor.ciphertexts):
        plain = sa.Plaintext()
        secret.decryptor.decrypt(ct, plain)
        decoded[index] = ctx.decode(plain)
    values = decoded[cell_of, position]
    return values.reshape(tensor.shape)
