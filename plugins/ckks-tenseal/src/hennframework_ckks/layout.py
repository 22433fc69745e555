"""Slot packing: where each element of a logical tensor lives among ciphertexts and slots.

A CKKS ciphertext has ``n = N/2`` slots; write a slot index ``k`` in binary (``log2 n`` bits).
A :class:`Layout` gives every axis ``a`` of the logical tensor a *group* ``(shift, bits)``:

* ``bits > 0``: the low ``bits`` bits of the axis index live in slot bits
  ``[shift, shift + bits)``; the rest of the index (``index >> bits``) is a position in the
  *grid* of ciphertexts (an axis longer than ``2**bits`` is split across ciphertexts);
* ``bits == 0``: the whole axis is a grid axis (one ciphertext per index).

Slot bits used by no axis are *free*: the value does not depend on them, so each element is
replicated ``2**free`` times. Free bits are what make broadcasting cheap (a tensor of shape
``(1, n)`` multiplies a tensor of shape ``(m, n)`` whose first axis sits in bits the first one
leaves free). ``pinned`` bits are slot bits where only index 0 holds valid data: a sum over a
group with other groups above it (a rotation-and-add) leaves its result at index 0 of the summed
bits, the other positions hold partial sums. Valid positions are those inside every axis' range
with all pinned bits 0; a tensor is *clean* when every invalid position holds 0 (sums over slots
need that; products with a clean operand and masked plaintexts keep it).

Example (the XOR network's first layer, 8192 slots): ``W1`` of shape (3, 4) is packed in one
ciphertext with axis 1 in bits 0-1 and axis 0 in bits 2-3 (index 3 of axis 0 is padding), bits
4-12 free: 512 copies of the 16 positions. ``X @ W1`` for plaintext ``X`` of shape (4, 3) gives
(4, 4) with the batch in bits 2-3 (where the contracted axis was) and the hidden axis in bits 0-1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
from hennframework.plugin import InputError

__all__ = ["Layout", "ceil_log2"]

Group = tuple[int, int]


def ceil_log2(value: int) -> int:
    """Bits needed to index ``value`` positions (0 for a single position)."""
    return max(0, (int(value) - 1).bit_length())


@dataclass(frozen=True)
class Layout:
    """Placement of a logical tensor of ``shape`` in a grid of ciphertexts with ``2**slot_bits`` slots."""

    shape: tuple[int, ...]
    groups: tuple[Group, ...]
    slot_bits: int
    pinned: int = 0

    def __post_init__(self) -> None:
        if len(self.groups) != len(self.shape):
            raise ValueError("one group per axis")
        used = 0
        for size, (shift, bits) in zip(self.shape, self.groups, strict=True):
            if size < 0:
                raise InputError("axis sizes must be non-negative")
            if size == 0 and bits:
                raise ValueError("empty axes are grid axes")
            if bits < 0 or shift < 0 or shift + bits > self.slot_bits:
                raise ValueError(f"group {(shift, bits)} outside {self.slot_bits} slot bits")
            if bits and size == 1:
                raise ValueError("axes of size 1 must not occupy slot bits")
            mask = ((1 << bits) - 1) << shift
            if used & mask:
                raise ValueError("slot groups overlap")
            used |= mask
        if used & self.pinned:
            raise ValueError("pinned bits overlap a group")

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def default(cls, shape: tuple[int, ...], slot_bits: int) -> Layout:
        """Pack from the last axis up into the low slot bits; split the first axis that no longer fits.

        A (2000, 8) matrix at 8192 slots: axis 1 in bits 0-2, axis 0 in bits 3-12 with 2 chunks
        (2 ciphertexts). Axes that find no bit left become grid axes.
        """
        groups: list[Group] = [(0, 0)] * len(shape)
        cursor = 0
        for axis in range(len(shape) - 1, -1, -1):
            size = shape[axis]
            if size <= 1:
                continue
            need = ceil_log2(size)
            room = slot_bits - cursor
            if room <= 0:
                continue
            bits = min(need, room)
            groups[axis] = (cursor, bits)
            cursor += bits
        return cls(tuple(shape), tuple(groups), slot_bits)

    @classmethod
    def gathered_rows(cls, shape: tuple[int, ...], slot_bits: int) -> Layout:
        """A (rows, columns) table whose rows the data selects (an embedding), column-major:
        axis 0 in the low slot bits, axis 1 in the bits above it and then across ciphertexts.

        A (1827, 8) table at 8192 slots: rows in bits 0-10, columns 0-3 in bits 11-12 of one
        ciphertext and 4-7 in another. Contracting the columns with the next layer's weights
        (:meth:`after_gathered_rows`) is then a sum over the top bits that leaves one full copy
        of the rows in every quarter of the slots: the vector a selection of rows reads from.
        A table with more rows than slots (or a single row) keeps :meth:`default`.
        """
        rows, columns = shape
        row_bits = ceil_log2(rows)
        if len(shape) != 2 or not 1 <= row_bits <= slot_bits:
            return cls.default(tuple(shape), slot_bits)
        column_bits = min(ceil_log2(columns), slot_bits - row_bits) if columns > 1 else 0
        column_group = (row_bits, column_bits) if column_bits else (0, 0)
        return cls((rows, columns), ((0, row_bits), column_group), slot_bits)

    def after_gathered_rows(self, shape: tuple[int, ...]) -> Layout | None:
        """For weights of ``shape`` (columns, outputs) that contract this table's columns: axis
        0 in the slot bits of the table's axis 1, outputs across ciphertexts (None: no match)."""
        if len(shape) != 2 or self.ndim != 2 or shape[0] != self.shape[1] or shape[0] < 2:
            return None
        return Layout(tuple(shape), (self.groups[1], (0, 0)), self.slot_bits)

    @classmethod
    def grid(cls, shape: tuple[int, ...], slot_bits: int) -> Layout:
        """One ciphertext per element, every slot a copy."""
        return cls(tuple(shape), tuple((0, 0) for _ in shape), slot_bits)

    # -- basic properties ----------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def slots(self) -> int:
        return 1 << self.slot_bits

    @cached_property
    def grid_shape(self) -> tuple[int, ...]:
        return tuple(
            -(-size // (1 << bits)) if bits else size
            for size, (_, bits) in zip(self.shape, self.groups, strict=True)
        )

    @cached_property
    def occupied(self) -> int:
        mask = 0
        for shift, bits in self.groups:
            mask |= ((1 << bits) - 1) << shift
        return mask

    @property
    def free(self) -> int:
        return ((1 << self.slot_bits) - 1) & ~self.occupied & ~self.pinned

    @cached_property
    def period(self) -> int:
        """Smallest power of two ``P`` such that every slot bit at or above ``log2 P`` is free."""
        used = self.occupied | self.pinned
        return 1 << used.bit_length()

    @cached_property
    def has_invalid(self) -> bool:
        """Whether some slot positions hold no element (padding or pinned bits)."""
        if self.pinned:
            return True
        for size, (_, bits) in zip(self.shape, self.groups, strict=True):
            if bits and size % (1 << bits):
                return True
        return False

    def is_free(self, shift: int, bits: int) -> bool:
        mask = ((1 << bits) - 1) << shift
        return shift + bits <= self.slot_bits and (self.free & mask) == mask

    def lowest_free_run(self, bits: int, above: int = 0) -> int | None:
        """The lowest shift >= ``above`` where ``bits`` consecutive free bits start."""
        for shift in range(above, self.slot_bits - bits + 1):
            if self.is_free(shift, bits):
                return shift
        return None

    def axis_is_top(self, axis: int) -> bool:
        """Whether every slot bit above the axis' group is free (a rotation-sum then wraps cleanly)."""
        shift, bits = self.groups[axis]
        above = ((1 << self.slot_bits) - 1) & ~((1 << (shift + bits)) - 1)
        return (self.free & above) == above

    # -- derived layouts ------------------------------------------------------------------------
    def replace(
        self,
        *,
        shape: tuple[int, ...] | None = None,
        groups: tuple[Group, ...] | None = None,
        pinned: int | None = None,
    ) -> Layout:
        return Layout(
            self.shape if shape is None else shape,
            self.groups if groups is None else groups,
            self.slot_bits,
            self.pinned if pinned is None else pinned,
        )

    def expand(self, ndim: int) -> Layout:
        """Prepend size-1 axes (NumPy broadcasting)."""
        extra = ndim - self.ndim
        if extra <= 0:
            return self
        return self.replace(shape=(1,) * extra + self.shape, groups=((0, 0),) * extra + self.groups)

    def transpose(self, axes: tuple[int, ...]) -> Layout:
        return self.replace(
            shape=tuple(self.shape[a] for a in axes), groups=tuple(self.groups[a] for a in axes)
        )

    def drop_axis(self, axis: int, pin: bool) -> Layout:
        """The layout without ``axis`` (after a sum over it); its slot bits become free or pinned."""
        shift, bits = self.groups[axis]
        mask = ((1 << bits) - 1) << shift
        return Layout(
            self.shape[:axis] + self.shape[axis + 1 :],
            self.groups[:axis] + self.groups[axis + 1 :],
            self.slot_bits,
            self.pinned | (mask if pin else 0),
        )

    # -- element positions -------------------------------------------------------------------
    @cached_property
    def canonical(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """For every logical element (C order): its grid cell (flat) and its first slot position."""
        if not self.shape:
            return np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
        index = np.indices(self.shape, dtype=np.int64).reshape(self.ndim, -1)
        cells = []
        position = np.zeros(index.shape[1], dtype=np.int64)
        for axis, (shift, bits) in enumerate(self.groups):
            if bits:
                cells.append(index[axis] >> bits)
                position |= (index[axis] & ((1 << bits) - 1)) << shift
            else:
                cells.append(index[axis])
        cell = np.ravel_multi_index(tuple(cells), self.grid_shape).astype(np.int64)
        return cell, position

    @cached_property
    def _slot_parts(self) -> tuple[list[npt.NDArray[np.int64]], npt.NDArray[np.bool_]]:
        k = np.arange(self.slots, dtype=np.int64)
        inner = [
            (k >> shift) & ((1 << bits) - 1) if bits else np.zeros(self.slots, dtype=np.int64)
            for shift, bits in self.groups
        ]
        return inner, (k & self.pinned) == 0

    @cached_property
    def strides(self) -> tuple[int, ...]:
        strides = []
        step = 1
        for size in reversed(self.shape):
            strides.append(step)
            step *= size
        return tuple(reversed(strides))

    def cell_map(
        self, cell: tuple[int, ...]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """For one grid cell: each slot's flat logical index, and whether the slot is valid."""
        inner, valid = self._slot_parts
        flat = np.zeros(self.slots, dtype=np.int64)
        valid = valid.copy()
        for axis, (size, (_, bits)) in enumerate(zip(self.shape, self.groups, strict=True)):
            start = cell[axis] << bits if bits else cell[axis]
            index = start + inner[axis]
            if bits and start + (1 << bits) > size:
                valid &= index < size
            flat += np.minimum(index, size - 1) * self.strides[axis]
        return flat, valid

    def cells(self) -> list[tuple[int, ...]]:
        return (
            [tuple(int(i) for i in c) for c in np.ndindex(*self.grid_shape)] if self.shape else [()]
        )

    def slot_vector(
        self, values: npt.NDArray[np.float64], cell: tuple[int, ...]
    ) -> npt.NDArray[np.float64] | float:
        """The slot vector of ``values`` (logical shape, C order) for one cell; a float if constant."""
        flat_values = values.reshape(-1)
        if not self.has_invalid and all(bits == 0 for _, bits in self.groups):
            index = int(np.ravel_multi_index(cell, self.shape)) if self.shape else 0
            return float(flat_values[index])
        flat, valid = self.cell_map(cell)
        vector = np.where(valid, flat_values[flat], 0.0)
        if not self.has_invalid:
            first = vector[0]
            if np.all(vector == first):
                return float(first)
        return vector

    def describe(self) -> str:
        parts = []
        for axis, (size, (shift, bits)) in enumerate(zip(self.shape, self.groups, strict=True)):
            if bits:
                chunks = self.grid_shape[axis]
                where = f"slot bits {shift}-{shift + bits - 1}"
                parts.append(
                    f"axis {axis} ({size}): {where}"
                    + (f" x {chunks} ciphertexts" if chunks > 1 else "")
                )
            elif size > 1:
                parts.append(f"axis {axis} ({size}): {size} ciphertexts")
        cts = math.prod(self.grid_shape) if self.shape else 1
        pinned = f", pinned bits {bin(self.pinned)}" if self.pinned else ""
        return f"{cts} ciphertext(s); " + ("; ".join(parts) or "scalar") + pinned

    def to_json(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "groups": [list(g) for g in self.groups],
            "slot_bits": self.slot_bits,
            "pinned": self.pinned,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Layout:
        return cls(
            tuple(int(s) for s in data["shape"]),
            tuple((int(g[0]), int(g[1])) for g in data["groups"]),
            int(data["slot_bits"]),
            int(data["pinned"]),
        )
