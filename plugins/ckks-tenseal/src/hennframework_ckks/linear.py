"""Plaintext linear maps on packed ciphertexts: the diagonal method with baby-step giant-step.

Every operation that moves values between slots with plaintext weights goes through
:func:`apply_linear`: a plaintext matrix times an encrypted tensor (``X @ W`` for plaintext data),
row selection (``W[rows]``), segment sums, ``scatter_add``, and changes of packing. The map is
given as sparse triples ``(output element, input element, weight)`` over logical (flat) indices.

For one output ciphertext ``y`` and input ciphertexts ``x_c``, the diagonal method (Halevi and
Shoup 2014) writes ``y = sum_c sum_i d_{c,i} * rot(x_c, i)``: slot ``k`` of the ``i``-th diagonal
holds the weight with which input slot ``k + i`` contributes to output slot ``k``. Inputs with
free slot bits are periodic (period ``P_in``), so ``i`` is only needed modulo ``P_in``; outputs
with free top bits may receive each contribution in one copy only and finish with a
rotate-and-add over those bits (the "hybrid" method). More generally, each contribution may read
any copy of its input element (any setting of the input's free bits) and, when the caller allows
it, land at any position of the output's pinned bits, which a rotate-and-add then sums into
index 0 (:func:`make_plan`'s ``spread_pinned``; the other positions keep partial sums). Choosing
them so that the slot differences agree in those bits merges diagonals: a vector with 4 copies in
its top bits, mapped to 256 rows placed in the top 8 bits and summed over the 5 bits below, needs
64 diagonals instead of 256. The number of distinct diagonals is what
costs rotations; the baby-step giant-step split ``i = g*u + v`` evaluates ``D`` diagonals with
about ``|V| + |U|`` rotations instead of ``D``:

    y = sum_u rot( sum_c sum_v rot(d_{c, g u + v}, -g u) * rot(x_c, v), g u ).

A bag of words of 32 reviews applied to a 2000 x 8 table in the default packing (2 ciphertexts
at N = 16384; the sentiment network's hidden layer before its step was reordered, see
:class:`~hennframework_ckks.tensor.LazyLinear`) has 32 distinct diagonals per input ciphertext
and costs 18 rotations in all (baby steps on each input, giant steps, and 5 to add up the
output's copies) instead of 320 for 32 separate inner products. One level is used (the plaintext products), and the result lands
exactly on the requested scale. Giant-step rotations and the sums over copies and pinned bits
happen before the final rescale, so their key-switching noise is divided by the dropped prime;
baby-step rotations act on the input, where the 60-bit special prime keeps that noise
negligible.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from hennframework_ckks._seal import rotation_distances, sa
from hennframework_ckks.layout import Layout

__all__ = [
    "MAX_DIAGONAL_ENTRIES",
    "DiagonalsTooLargeError",
    "LinearPlan",
    "apply_linear",
    "evaluate_linear",
    "linear_error_bounds",
    "make_plan",
    "plan_linear",
]

#: Stop considering a strategy whose diagonal entries would exceed this many (memory guard).
MAX_DIAGONAL_ENTRIES = 20_000_000


class DiagonalsTooLargeError(MemoryError):
    """No diagonal plan of a linear map stays within :data:`MAX_DIAGONAL_ENTRIES`. Callers that
    weigh alternatives skip such a map; one that must evaluate it refuses with advice."""


@dataclass
class LinearPlan:
    """Diagonals per (output cell, input cell) and how to evaluate them."""

    cut: int  # output copies at or above this power of two are summed at the end
    diagonals: dict[tuple[int, int], dict[int, npt.NDArray[np.float64]]]
    giant: int  # baby-step size g
    rotations: int  # estimated rotation count
    #: the output's pinned slot bits: contributions are spread over them and summed into index 0
    #: at the end (the other positions keep partial sums: the output is not clean)
    summed: int = 0
    #: set when plan_linear keeps the plan for reuse: its encoded diagonals are kept too
    serial: int | None = None


def _popcount(value: int) -> int:
    return bin(value).count("1")


RotationCost = Callable[[int], int]


def rotation_cost(slots: int, steps: frozenset[int] | None) -> RotationCost:
    """Key switches a left rotation costs with keys for ``steps`` (None: every power of two,
    where it is the popcount): the shortest sum of the steps modulo ``slots``
    (:func:`~hennframework_ckks._seal.rotation_distances`); a rotation no sum makes costs
    ``slots``, more than any plan that avoids it."""
    if steps is None:
        return _popcount
    distance = rotation_distances(slots, steps)

    def cost(step: int) -> int:
        found = distance[step % slots]
        return found if found >= 0 else slots

    return cost


def _free_offsets(layout: Layout, below: int) -> npt.NDArray[np.int64]:
    """All combinations of the output's free slot bits below ``below`` (copy offsets)."""
    bits = [b for b in range(layout.slot_bits) if layout.free >> b & 1 and (1 << b) < below]
    offsets = np.zeros(1, dtype=np.int64)
    for bit in bits:
        offsets = np.concatenate([offsets, offsets + (1 << bit)])
    return offsets


def _choose_copies(
    difference: npt.NDArray[np.int64],
    out_slot: npt.NDArray[np.int64],
    in_free: int,
    out_summed: int,
    slots: int,
    in_below: int = 0,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Clear bits of the slot differences (input slot minus output slot) by choosing copies.

    An input's free bit ``b`` means the value sits at both settings of ``b``: reading the copy
    with bit ``b`` set adds ``2**b`` to the difference. An output's summed bit ``b`` (a pinned bit
    the map sums into index 0) means a contribution may land at either setting: placing it at
    bit ``b`` set subtracts ``2**b``. Going from the lowest bit up, each such bit of the
    difference is made 0 (an addition carries only upwards). Differences that agree in these
    bits are the same diagonal for more (output, input) pairs: a vector replicated 4 times in
    the top bits, mapped to outputs whose rows use those top bits and sum over 5 low bits,
    needs 64 diagonals where keeping every copy identical needs 256. An input replicated
    *downwards* over bits ``in_below`` (the element at ``p`` also at ``p - t`` for every ``t``
    made of those bits) subtracts ``2**b`` by reading the lower copy.
    Returns the new differences and output slots.
    """
    bits = in_free | out_summed | in_below
    for bit in range(slots.bit_length() - 1):
        if not bits >> bit & 1:
            continue
        set_ = (difference >> bit & 1).astype(bool)
        if not set_.any():
            continue
        value = 1 << bit
        if out_summed >> bit & 1:
            difference = np.where(set_, difference - value, difference)
            out_slot = np.where(set_, out_slot + value, out_slot)
        elif in_below >> bit & 1:
            difference = np.where(set_, difference - value, difference)
        else:
            difference = np.where(set_, (difference + value) % slots, difference)
    return difference, out_slot


def _bsgs_cost(indices: Sequence[int], giant: int, outputs: int, rotate: RotationCost) -> int:
    babies = sorted({i % giant for i in indices})
    giants = sorted({i // giant for i in indices})
    cost = sum(rotate(b - a) for a, b in itertools.pairwise([0, *babies]) if b != a)
    cost += outputs * sum(rotate(giant * (b - a)) for a, b in itertools.pairwise(giants))
    if giants and giants[0]:
        cost += outputs * rotate(giant * giants[0])
    return cost


#: Plans kept for reuse (a training step makes the same maps with the same plaintext data every
#: time); only plans of at most _CACHED_ENTRIES diagonal entries, so the cache stays small.
_CACHED_ENTRIES = 1 << 20
_SERIALS = itertools.count()

Kept = TypeVar("Kept")


class _Lru(Generic[Kept]):
    """A small thread-safe least-recently-used cache."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[Any, ...], Kept] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> Kept | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple[Any, ...], value: Kept) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)


_PLANS: _Lru[LinearPlan] = _Lru(32)
#: Encoded diagonals of kept plans, by (plan, context, output, input, diagonal, level, scale): a
#: step encodes the same diagonals at the same level and scale every time. At most 32 (a
#: plaintext at n16384's top level is 1.7 MB).
_PLAINTEXTS: _Lru[Any] = _Lru(32)


def _encode_diagonal(
    ctx: Any, plan: LinearPlan, where: tuple[int, int, int], vector: Any, level: int, scale: float
) -> Any:
    """``ctx.encode(vector, level, scale)`` for diagonal ``where`` of ``plan``, reused for kept
    plans (Plaintexts are only read by SEAL's products)."""
    if plan.serial is None:
        return ctx.encode(vector, level, scale)
    key = (plan.serial, id(ctx), *where, level, scale)
    plain = _PLAINTEXTS.get(key)
    if plain is None:
        plain = ctx.encode(vector, level, scale)
        _PLAINTEXTS.put(key, plain)
    return plain


def plan_linear(
    in_layout: Layout,
    out_layout: Layout,
    out_flat: npt.NDArray[np.int64],
    in_flat: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float64],
    steps: frozenset[int] | None = None,
    spread_pinned: bool = False,
    copies_below: int = 0,
) -> LinearPlan:
    """:func:`make_plan`, reusing the plan of an identical map made before (plans are read-only:
    the same layouts, triples, weights and key steps always give the same diagonals)."""
    digest = hashlib.blake2b(digest_size=20)
    for array in (out_flat, in_flat, weights):
        contiguous = np.ascontiguousarray(array)
        digest.update(f"{contiguous.dtype.str}{contiguous.shape}".encode())
        digest.update(contiguous.tobytes())
    key = (in_layout, out_layout, digest.digest(), steps, spread_pinned, copies_below)
    plan = _PLANS.get(key)
    if plan is None:
        plan = make_plan(
            in_layout, out_layout, out_flat, in_flat, weights, steps, spread_pinned, copies_below
        )
        entries = sum(len(diags) for diags in plan.diagonals.values()) * in_layout.slots
        if entries <= _CACHED_ENTRIES:
            plan.serial = next(_SERIALS)
            _PLANS.put(key, plan)
    return plan


def _unique_triples(
    first: npt.NDArray[np.int64],
    second: npt.NDArray[np.int64],
    third: npt.NDArray[np.int64],
    third_limit: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]]:
    """``np.unique`` of the rows ``(first, second, third)`` (``axis=0``, ``return_inverse``), the
    same rows in the same lexicographic order, through one 1-D sort of an integer per row.

    The rows are non-negative and ``third < third_limit``; ``np.unique(..., axis=0)`` sorts a
    structured view, which is several times slower on the million-row maps of a mini-batch.
    """
    second_limit = int(second.max(initial=0)) + 1
    first_limit = int(first.max(initial=0)) + 1
    if first_limit * second_limit * third_limit >= 1 << 62:  # pragma: no cover - huge maps
        rows = np.stack([first, second, third], axis=1)
        unique_rows, inverse_rows = np.unique(rows, axis=0, return_inverse=True)
        return unique_rows.astype(np.int64), inverse_rows.reshape(-1)
    combined = (first.astype(np.int64) * second_limit + second) * third_limit + third
    unique, inverse = np.unique(combined, return_inverse=True)
    rows = np.empty((unique.shape[0], 3), dtype=np.int64)
    rows[:, 0], rest = np.divmod(unique, second_limit * third_limit)
    rows[:, 1], rows[:, 2] = np.divmod(rest, third_limit)
    return rows, inverse.reshape(-1)


def make_plan(
    in_layout: Layout,
    out_layout: Layout,
    out_flat: npt.NDArray[np.int64],
    in_flat: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float64],
    steps: frozenset[int] | None = None,
    spread_pinned: bool = False,
    copies_below: int = 0,
) -> LinearPlan:
    """Choose the copy strategy and the baby-step size, and build the diagonals.

    The choice counts key switches with keys for ``steps`` (None: every power of two), so a key
    set with a few chosen steps gets the baby and giant steps it makes cheaply. Contributions
    read whichever copy of an input element (its free bits) needs fewest diagonals; with
    ``spread_pinned`` they also land anywhere in the output's pinned bits, summed into index 0
    at the end (:attr:`LinearPlan.summed`; the other positions then hold partial sums), else
    at index 0 (a clean output). ``copies_below``: pinned input bits across which the input
    ciphertexts hold copies downwards (:meth:`CKKSTensor._replicated_down
    <hennframework_ckks.tensor.CKKSTensor._replicated_down>`), readable like free bits."""
    slots = in_layout.slots
    rotate = rotation_cost(slots, steps)
    in_cell, in_pos = in_layout.canonical
    out_cell, out_pos = out_layout.canonical
    keep = weights != 0
    c = in_cell[in_flat][keep]
    p = in_pos[in_flat][keep]
    o = out_cell[out_flat][keep]
    q = out_pos[out_flat][keep]
    w = weights[keep]
    period_in = in_layout.period
    # free input bits below the period and the output's pinned bits: copies to choose from
    in_free = in_layout.free & (period_in - 1)
    summed = out_layout.pinned if spread_pinned else 0
    candidates = sorted({out_layout.period, max(out_layout.period, period_in), slots})
    best: tuple[Any, ...] | None = None
    for cut in candidates:
        offsets = _free_offsets(out_layout, cut)
        if len(w) * len(offsets) > MAX_DIAGONAL_ENTRIES:
            continue
        qq = (q[:, None] + offsets[None, :]).reshape(-1)
        pp = np.repeat(p, len(offsets))
        difference = (pp - qq) % slots
        if in_free or summed or copies_below:
            difference, qq = _choose_copies(
                difference, qq, in_free, summed, slots, copies_below & in_layout.pinned
            )
        # input copies sit every period_in slots: only (p - q') mod period_in matters; with
        # cut < period_in, move the contribution to the output copy t*cut that makes it < cut
        rest = difference % period_in
        if cut >= period_in:
            diag, k = rest, qq
        else:
            diag, k = rest % cut, (qq + (rest // cut) * cut) % slots
        unique, inverse = _unique_triples(
            np.repeat(o, len(offsets)), np.repeat(c, len(offsets)), diag, slots
        )
        if unique.shape[0] * slots > MAX_DIAGONAL_ENTRIES:
            continue
        all_diags = sorted({int(d) for d in unique[:, 2]})
        outputs = len({int(x) for x in unique[:, 0]})
        top_sum = sum(
            rotate(1 << bit) for bit in range(cut.bit_length() - 1, slots.bit_length() - 1)
        ) + sum(rotate(1 << bit) for bit in range(slots.bit_length() - 1) if summed >> bit & 1)
        giant, best_giant = 1, 1
        best_cost = _bsgs_cost(all_diags, 1, outputs, rotate) if all_diags else 0
        while giant <= max(all_diags, default=0):
            giant *= 2
            cost = _bsgs_cost(all_diags, giant, outputs, rotate)
            if cost < best_cost:
                best_giant, best_cost = giant, cost
        total = best_cost + outputs * top_sum + len(unique) // 8
        if best is None or total < best[0]:
            best = (
                total,
                cut,
                best_giant,
                unique,
                inverse.reshape(-1),
                k,
                np.repeat(w, len(offsets)),
            )
    if best is None:
        raise DiagonalsTooLargeError("this linear map is too large to evaluate with diagonals")
    total, cut, giant, unique, inverse, k, ww = best
    # np.add.at, through one bincount (several times faster on a mini-batch's maps)
    flat = inverse.astype(np.int64) * slots + k
    dense = np.bincount(flat, weights=ww, minlength=unique.shape[0] * slots)
    dense = dense.reshape(unique.shape[0], slots)
    dense.flags.writeable = False  # plans are shared (plan_linear's cache)
    pairs: dict[tuple[int, int], dict[int, npt.NDArray[np.float64]]] = {}
    for row, (oi, ci, di) in enumerate(unique):
        pairs.setdefault((int(oi), int(ci)), {})[int(di)] = dense[row]
    return LinearPlan(cut, pairs, giant, total, summed)


def linear_error_bounds(
    plan: LinearPlan,
    in_contents: Sequence[float],
    in_errors: Sequence[float],
    n_out: int,
    slots: int,
    encoding_error: float,
    per_slot: list[npt.NDArray[np.float64]] | None = None,
) -> list[tuple[float, float]]:
    """Bounds on the error and on the content in every slot of each output ciphertext, from the
    inputs' bounds on the content (``in_contents``) and on the error (``in_errors``) of every
    slot: ``(error, content)`` per output, the largest over the slots. ``per_slot``, if given,
    receives each output's error bound slot by slot (outputs differ a lot from slot to slot: a
    bag of words' transpose gives a frequent word a far larger error than a rare one).

    Output slot ``k`` (before the final sums) is ``sum_{c,d} diag_{c,d}[k] x_c[k + d]`` whatever
    the baby-step giant-step split: its error is at most ``sum |diag_{c,d}[k]| E_c`` plus
    ``encoding_error * (C_c + E_c)`` for each encoded diagonal (an encoding's error reaches every
    slot), and its content at most ``sum |diag_{c,d}[k]| C_c``; the sum over copies then adds
    the slots ``cut`` apart, and a sum over pinned bits (:attr:`LinearPlan.summed`) the slots
    each of its rotations brings in. The content bound covers the partial sums such a sum
    leaves in the pinned positions; the exact content of the valid ones is the linear map of
    the inputs' values, bounded element by element by the caller. One pass over the diagonals
    that :func:`plan_linear` built.
    """
    errors = [np.zeros(slots) for _ in range(n_out)]
    contents = [np.zeros(slots) for _ in range(n_out)] if plan.summed else None
    for (o_cell, ci), diags in plan.diagonals.items():
        content, error = float(in_contents[ci]), float(in_errors[ci])
        for vector in diags.values():
            magnitude = np.abs(vector)
            errors[o_cell] += magnitude * error + encoding_error * (content + error)
            if contents is not None:
                contents[o_cell] += magnitude * content

    def summed(vector: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        vector = vector.reshape(-1, plan.cut).sum(axis=0)
        for bit in range(plan.cut.bit_length() - 1):
            if plan.summed >> bit & 1:  # the rotate-and-add, slot by slot
                vector = vector + np.roll(vector, -(1 << bit))
        return np.tile(vector, slots // plan.cut)  # the sum over copies repeats every cut slots

    summed_errors = [summed(error) for error in errors]
    if per_slot is not None:
        per_slot.extend(summed_errors)
    return [
        (float(error.max()), 0.0 if contents is None else float(summed(contents[index]).max()))
        for index, error in enumerate(summed_errors)
    ]


def apply_linear(
    key: Any,
    in_layout: Layout,
    in_cts: Sequence[Any],
    out_layout: Layout,
    out_flat: npt.NDArray[np.int64],
    in_flat: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float64],
    target_scale: float,
) -> list[Any]:
    """Evaluate ``out[o] = sum w * in[i]`` for the triples; returns output ciphertexts by flat cell.

    Uses one level; the outputs are at the inputs' lowest level minus one, at ``target_scale``,
    and clean (zero at every slot that is not a valid position of ``out_layout``).
    """
    plan = plan_linear(in_layout, out_layout, out_flat, in_flat, weights, key.rotation_steps)
    return evaluate_linear(key, plan, in_cts, out_layout, target_scale)


def evaluate_linear(
    key: Any, plan: LinearPlan, in_cts: Sequence[Any], out_layout: Layout, target_scale: float
) -> list[Any]:
    """The ciphertext work of :func:`apply_linear` for a plan made by :func:`plan_linear`."""
    ctx = key.context
    relin = key.relin_keys
    inputs = [ctx.settle(ct, relin) for ct in in_cts]
    level = min(ctx.level_of(ct) for ct in inputs)
    ctx.require_level(min(inputs, key=ctx.level_of), "a plaintext linear map (matmul, selection)")
    inputs = [ctx.mod_to(ct, level) for ct in inputs]
    prime = ctx.prime(level)
    product_scale = target_scale * prime
    giant = plan.giant
    n_out = math.prod(out_layout.grid_shape) if out_layout.shape else 1
    # baby steps per input cell
    babies: dict[int, dict[int, Any]] = {}
    for (_, ci), diags in plan.diagonals.items():
        needed = babies.setdefault(ci, {})
        for d in diags:
            needed.setdefault(d % giant, None)
    for ci, needed in babies.items():
        current_shift, current = 0, inputs[ci]
        for v in sorted(needed):
            if v != current_shift:
                current = ctx.rotate(
                    current, v - current_shift, key.galois_keys, key.rotation_steps, relin
                )
                current_shift = v
            needed[v] = current
    outputs: list[Any] = []
    cut_bits = plan.cut.bit_length() - 1
    for oi in range(n_out):
        blocks: dict[int, Any] = {}
        for (o_cell, ci), diags in plan.diagonals.items():
            if o_cell != oi:
                continue
            encode_scale = product_scale / inputs[ci].scale
            for d, vector in diags.items():
                u, v = divmod(d, giant)
                shifted = np.roll(vector, giant * u) if u else vector
                if not np.any(shifted):
                    continue
                plain = _encode_diagonal(ctx, plan, (oi, ci, d), shifted, level, encode_scale)
                term = sa.Ciphertext()
                try:
                    ctx.evaluator.multiply_plain(babies[ci][v], plain, term)
                except RuntimeError as exc:  # weights so small that they encode to zero
                    if "transparent" not in str(exc):
                        raise
                    continue
                term.scale = product_scale
                if u in blocks:
                    ctx.evaluator.add_inplace(blocks[u], term)
                else:
                    blocks[u] = term
        if not blocks:
            outputs.append(_zero(key, level - 1, target_scale))
            continue
        # giant steps before the rescale: their key-switching noise is divided by the prime
        order = sorted(blocks, reverse=True)
        acc = blocks[order[0]]
        for previous, u in itertools.pairwise(order):
            acc = ctx.rotate(
                acc, giant * (previous - u), key.galois_keys, key.rotation_steps, relin
            )
            acc = ctx.add(acc, blocks[u])
        if order[-1]:
            acc = ctx.rotate(acc, giant * order[-1], key.galois_keys, key.rotation_steps, relin)
        # the sums over copies and pinned bits before the rescale too: after it, their key
        # switching would add an error of the size of a fresh encryption's each (3e-4 at n8192),
        # for a saving of a level's cost per key switch
        summed = [bit for bit in range(ctx.slot_bits) if plan.summed >> bit & 1]
        for bit in [*range(cut_bits, ctx.slot_bits), *summed]:
            acc = ctx.add(
                acc, ctx.rotate(acc, 1 << bit, key.galois_keys, key.rotation_steps, relin)
            )
        acc = ctx.settle(acc, relin)
        acc.scale = target_scale
        outputs.append(acc)
    return outputs


def _zero(key: Any, level: int, scale: float) -> Any:
    """A fresh public-key encryption of zero at ``level`` and ``scale``."""
    out = sa.Ciphertext()
    key.encryptor.encrypt_zero(key.context.parms_id(level), out)
    out.scale = scale
    return out
