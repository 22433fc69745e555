"""The integer-vector scheme's compiled kernels (``_kernels.c``), where they were built.

On the small batches of a training step, a key switch, a product's tensor or a decryption is
a dozen NumPy operations of a microsecond or more each, whatever the batch; the kernels do each
in one pass over the data. They compute the same integers as the NumPy paths, to the bit (the
tests compare both on edge cases), and the scheme calls them only where it has proved the
same preconditions.

The kernels are optional: a platform without a C compiler that has 128-bit integers installs
without them, and ``HENN_NATIVE=0`` turns them off; the scheme then takes its NumPy paths.
``henn info`` says which is in use.

>>> isinstance(available(), bool)
True
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

#: The kernels' calling convention this module speaks (``API_VERSION`` in ``_kernels.c``).
API_VERSION = 3
#: Why the built module is not used, where it is out of date (None otherwise).
_stale: str | None = None


def _load() -> ModuleType | None:
    """The compiled module, or None where it was not built or was built from other sources."""
    global _stale
    try:  # by name: an extension module, not a source file the import graph could follow
        module = importlib.import_module("hennframework.schemes.integer_vector._kernels")
    except ImportError:  # built without a C compiler, or from a source checkout never built
        return None
    found = getattr(module, "API_VERSION", None)
    if found != API_VERSION:
        _stale = (
            f"built from other sources (calling convention {found}, this code expects "
            f"{API_VERSION}): rebuild with `pip install -e .` (or reinstall); NumPy paths meanwhile"
        )
        warnings.warn(
            f"hennframework's compiled kernels are {_stale}", RuntimeWarning, stacklevel=2
        )
        return None
    return module


_module = _load()

#: The environment variable that turns the kernels off (``0``, ``false``, ``no`` or ``off``).
ENVIRONMENT_VARIABLE = "HENN_NATIVE"

_OFF = ("0", "false", "no", "off")
_ON = ("", "1", "true", "yes", "on")


def _wanted() -> bool:
    """Whether ``HENN_NATIVE`` leaves the kernels on (a value it does not know warns)."""
    value = os.environ.get(ENVIRONMENT_VARIABLE, "").strip().lower()
    if value in _OFF:
        return False
    if value not in _ON:
        warnings.warn(
            f"{ENVIRONMENT_VARIABLE}={os.environ[ENVIRONMENT_VARIABLE]!r} is not understood: use "
            f"{ENVIRONMENT_VARIABLE}=0 to turn the compiled kernels off or 1 to keep them on; "
            "they stay on.",
            RuntimeWarning,
            stacklevel=2,
        )
    return True


_enabled = _module is not None and _wanted()

#: The decryption kernel itself, None where the kernels are off: ``decrypt`` calls it without a
#: wrapper (a Python call is a sizeable part of a one-vector decryption).
#: ``decrypt_pow2(data, t_matrix, m, shift, noise, det, sg, worst_case, bits, safety)``:
#: ``floor(([I, T] c + 2**(shift - 1)) / 2**shift)`` for every ciphertext of ``data`` (``(...,
#: m + k)``; T the first m rows of the secret key's ``t_matrix``), a new array of shape ``(...,
#: m)``, where twice the largest noise bound (:func:`decryption_bound` of ``noise``, ``det``,
#: ``sg``, of the batch shape, with ``tail_factor`` of the tensor's values for a failure
#: probability of ``2**-bits``; ``det`` and ``sg`` ignored where ``worst_case``) is below ``w =
#: 2**shift``. It returns None where that check fails (NaN included) or the arrays are not
#: aligned, C-contiguous NumPy arrays of those shapes: the caller's NumPy path then decides. The
#: caller proves ``|S c| < 2**62`` and ``1 <= shift <= 62``.
decrypt_pow2: Callable[..., npt.NDArray[np.int64] | None] | None = (
    _module.decrypt_pow2 if _enabled and _module is not None else None
)

#: The kernels run every key switch on the host, bit digits included. A key of bit digits into
#: more than two columns gets a nibble table (``nibble_table``: 256 entries per value against
#: the key's 62 rows, about 4 times its size; kept with it) up to this size, small enough to
#: stay in a core's second-level cache; wider keys go through blocks of rows that make such
#: tables on the spot (``switch_rows_bits``). Both hold no digits, where the NumPy path (float64
#: GEMMs of a byte table's signed bits) holds about 60 times the output, and neither is slower
#: than it (``benchmarks/kernels_compare.py`` on a 2-core AMD EPYC with AVX-512: the closest,
#: ``vhe`` encryptions at m = 256 and batch 256, 1.02x).
NIBBLE_TABLE_BYTES = 1 << 20


def built() -> bool:
    """Whether the compiled kernels were built for this installation."""
    return _module is not None


def available() -> bool:
    """Whether the scheme uses the compiled kernels now (built, and not turned off)."""
    return _enabled


def status() -> str:
    """One line for ``henn info``: in use, turned off, or not built (and what that costs)."""
    if _stale is not None:
        return _stale
    if _module is None:
        return (
            "not built (no C compiler with 128-bit integers at install time): NumPy paths, "
            "slower on small batches"
        )
    if not _enabled:
        return f"built, turned off ({ENVIRONMENT_VARIABLE}=0): NumPy paths"
    return (
        "in use (key switches, products, rounding, decryption and its noise bound, scatter and "
        "run sums)"
    )


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run the NumPy paths inside the block (tests compare both; not thread-safe)."""
    global _enabled, decrypt_pow2
    before = _enabled, decrypt_pow2
    _enabled, decrypt_pow2 = False, None
    try:
        yield
    finally:
        _enabled, decrypt_pow2 = before


def _host_int64(array: Any) -> bool:
    return type(array) is np.ndarray and array.dtype == np.int64


@dataclass(frozen=True)
class SwitchPlan:
    """How a key switches in the kernels: the key matrix ``M^T`` (``columns * count`` rows),
    the digits (``count`` of ``gadget_bits`` bits per value; ``offset`` is
    ``IntegerVectorScheme.decompose``'s H, unused for bits), the float constants of the norms
    (``l1 = (sum |d|) margin``, ``l2 = ((sum d**2) margin) ** 0.5 safety``), the key's nibble
    table where it has one (``nibble_table``)."""

    matrix_t: Any
    count: int
    gadget_bits: int
    offset: int
    margin: float
    safety: float
    nibbles: Any = None

    def run(self, batch: tuple[int, ...]) -> tuple[tuple[Any, ...], tuple[Any, Any, Any]]:
        """The arguments ``product_switch``'s kernel ends with (the key's width, the digits,
        the norms' constants, the outputs, the nibble table), and the outputs it fills: ``out``
        (``(*batch, key columns)``), ``l1`` and ``l2`` (``batch``)."""
        out_columns = int(self.matrix_t.shape[1])
        outputs = (
            np.empty((*batch, out_columns), dtype=np.int64),
            np.empty(batch, dtype=np.float64),
            np.empty(batch, dtype=np.float64),
        )
        arguments = (
            out_columns,
            self.gadget_bits,
            self.count,
            self.offset,
            self.margin,
            self.safety,
            not batch,  # one vector: the scalars' pow, as NumPy's and Python's scalars take
            *outputs,
            self.nibbles,
        )
        return arguments, outputs


def _switched(out: Any, l1: Any, l2: Any, batch: tuple[int, ...]) -> tuple[Any, Any, Any]:
    """The results in the NumPy paths' types: NumPy float64 scalars for one vector."""
    return (out, l1[()], l2[()]) if not batch else (out, l1, l2)


def switch_digits(source: Any, plan: SwitchPlan) -> tuple[npt.NDArray[np.int64], Any, Any] | None:
    """``(c* M mod 2**64, l1, l2)`` for the rows of ``source`` (``(*batch, columns)``): arrays
    of the batch shape (NumPy float64 scalars for one vector, whose ``** 0.5`` is the C
    library's pow as for NumPy's and Python's scalars); or None where the kernels do not apply
    (off, or not host int64 arrays). The caller keeps both digit sums below 2**53."""
    if not _enabled:
        return None
    assert _module is not None
    found = _module.switch_digits(
        source,
        plan.matrix_t,
        plan.nibbles,
        plan.gadget_bits,
        plan.count,
        plan.offset,
        plan.margin,
        plan.safety,
    )
    if found is None and type(source) is np.ndarray and not source.flags.c_contiguous:
        return switch_digits(np.ascontiguousarray(source), plan)  # a view: its copy
    if found is None:
        return None
    out, l1, l2 = found
    return _switched(out, l1, l2, source.shape[:-1])


def tensor_round_div(
    left: Any, right: Any, batch: tuple[int, ...], factors: tuple[Any, Any, Any], shift: int
) -> npt.NDArray[np.int64] | None:
    """Every slotwise tensor entry ``round((a0 b0 + u a1 b1) / 2**shift)`` (halves away from
    zero) over the broadcast ``batch``, or None where the kernels do not apply.

    ``factors``: the index arrays of ``_tensor_factors`` (2 x terms each: the first and second
    product's factor in the left and right ciphertext, and 0 or 1 for a second product). The
    caller proves every factor below 2**62 and every quotient below 2**62.
    """
    if not _enabled or not _host_int64(left) or not _host_int64(right) or not 1 <= shift <= 125:
        return None
    left_index, right_index, used = factors
    if not _host_int64(left_index):
        return None
    assert _module is not None
    terms = int(left_index.shape[1])
    width_a, width_b = int(left.shape[-1]), int(right.shape[-1])
    full_a = _full(left, batch, width_a)
    full_b = _full(right, batch, width_b)
    rows = full_a.size // width_a if width_a else 0
    out = np.empty((*batch, terms), dtype=np.int64)
    _module.tensor_round_div(
        full_a, full_b, rows, width_a, width_b, terms, left_index, right_index, used[1], shift, out
    )
    return out


def product_switch(
    left: Any,
    right: Any,
    batch: tuple[int, ...],
    factors: tuple[Any, Any, Any],
    shift: int,
    public_weights: Any,
    plan: SwitchPlan,
) -> tuple[npt.NDArray[np.int64], Any, Any] | None:
    """A product and its key switch in one pass (no tensor in memory), or None where the
    kernels do not apply: ``(out, l1, l2)`` with ``out = e_public W + c* M`` modulo 2**64.

    The entries ``e`` are ``tensor_round_div``'s (same ``factors`` and ``shift``); the first
    ``len(public_weights)`` of them are weighted by the rows of ``public_weights`` (their key
    weights are public), the others switched as ``switch_digits`` switches them (same plan,
    digits, norms and conditions). The caller proves every entry and the result below 2**62.
    """
    matrix_t = plan.matrix_t
    if (
        not _enabled
        or not _host_int64(left)
        or not _host_int64(right)
        or not _host_int64(matrix_t)
        or not _host_int64(public_weights)
        or not _host_int64(factors[0])
        or not 1 <= shift <= 125
    ):
        return None
    terms = int(factors[0].shape[1])
    switched = terms - int(public_weights.shape[0])
    rows = math.prod(batch)
    if switched < 1 or matrix_t.shape[0] != switched * plan.count:
        return None
    assert _module is not None
    width_a, width_b = int(left.shape[-1]), int(right.shape[-1])
    left_index, right_index, used = factors
    arguments, (out, l1, l2) = plan.run(batch)
    _module.product_switch(
        _full(left, batch, width_a),
        _full(right, batch, width_b),
        rows,
        width_a,
        width_b,
        terms,
        left_index,
        right_index,
        used[1],
        shift,
        int(public_weights.shape[0]),
        np.ascontiguousarray(public_weights),
        np.ascontiguousarray(matrix_t),
        *arguments,
    )
    return _switched(out, l1, l2, batch)


def nibble_table(matrix_t: Any, columns: int, count: int) -> npt.NDArray[np.int64]:
    """The nibble table of a key of bit digits (``columns * count`` rows of W words): entry
    ``[j, p, n]`` (W words) is the sum, modulo 2**64, of the key rows of value j's bits ``4p`` to
    ``4p + 3`` set in ``n``; bits at or past ``count`` have no rows (0). ``switch_digits`` and
    ``product_switch`` take it (``columns x 2 W`` KiB, made once per key): into two key columns
    always, into wider ones while it is at most ``NIBBLE_TABLE_BYTES``."""
    width = int(matrix_t.shape[1])
    rows = np.zeros((columns, 64, width), dtype=np.uint64)
    rows[:, :count] = (
        np.asarray(matrix_t, dtype=np.int64).reshape(columns, count, width).view(np.uint64)
    )
    by_nibble = rows.reshape(columns, 16, 4, width)
    table = np.zeros((columns, 16, 16, width), dtype=np.uint64)
    for value in range(16):
        for bit in range(4):
            if value >> bit & 1:
                table[:, :, value] += by_nibble[:, :, bit]  # uint64: wraps modulo 2**64
    result = table.view(np.int64)
    result.flags.writeable = False
    return result


def _full(array: npt.NDArray[np.int64], batch: tuple[int, ...], width: int) -> Any:
    """``array`` broadcast to ``(*batch, width)`` as one C-contiguous block (a copy only where
    it is broadcast or not contiguous)."""
    if array.shape[:-1] != batch:
        array = np.broadcast_to(array, (*batch, width))
    return np.ascontiguousarray(array)


def mul_round_div(values: Any, factor: Any, divisor: int) -> npt.NDArray[np.int64] | None:
    """``round(values * factor / divisor)`` (halves away from zero, exactly) for int64
    ``values`` of shape ``(*batch, width)`` and one factor per vector (``factor`` of shape
    ``(*batch, 1)``, or one value for all), or None where the kernels do not apply. The caller
    proves every quotient below 2**63 and ``1 <= divisor < 2**63``."""
    if not _enabled or not _host_int64(values) or not 1 <= divisor < 1 << 63:
        return None
    if not _host_int64(factor) or (factor.size != 1 and factor.shape != (*values.shape[:-1], 1)):
        return None
    assert _module is not None
    width = int(values.shape[-1])
    rows = values.size // width if width else 0
    out = np.empty(values.shape, dtype=np.int64)
    _module.mul_round_div(
        np.ascontiguousarray(values),
        np.ascontiguousarray(factor),
        rows,
        width,
        1 if factor.size == 1 else rows,
        divisor,
        out,
    )
    return out


def index_add(
    target: Any, rows: Any, values: Any, touched: Any = None, margin: float = 1.0
) -> bool:
    """``numpy.add.at(target, rows, values)`` in place (rows of axis 0, in order: the same
    words and float bits), then, for float64 targets, the ``touched`` rows multiplied by
    ``margin``; False (nothing done) where the kernels do not apply. ``rows`` and ``touched``
    are int64 row numbers in range (checked: an IndexError changes nothing)."""
    if (
        not _enabled
        or type(target) is not np.ndarray
        or target.dtype not in _INDEX_TYPES
        or not target.flags.c_contiguous
        or not target.flags.writeable
        or target.ndim < 1
        or not _host_int64(rows)
        or type(values) is not np.ndarray
        or values.dtype != target.dtype
        or (touched is not None and target.dtype != np.float64)
    ):
        return False
    assert _module is not None
    shape = (rows.size, *target.shape[1:])
    if values.shape != shape:
        values = np.broadcast_to(values, shape)
    width = target.size // target.shape[0] if target.shape[0] else 0
    marked = _NO_ROWS if touched is None else np.ascontiguousarray(touched, dtype=np.int64)
    _module.index_add(
        target,
        np.ascontiguousarray(rows),
        np.ascontiguousarray(values),
        int(target.shape[0]),
        width,
        int(rows.size),
        marked,
        int(marked.size),
        float(margin),
    )
    return True


_INDEX_TYPES = (np.dtype(np.int64), np.dtype(np.float64))
_NO_ROWS = np.zeros(0, dtype=np.int64)


def segment_sum(values: Any, offsets: Any, safety: float) -> Any:
    """``Ciphertext.segment_sum``'s run sums of one array along axis 0 (``offsets``: int64,
    rising from 0 to its rows; checked): exact for int64, the prefix-sum differences times
    ``safety`` plus their rounding slack for float64 (the same bits); None where the kernels
    do not apply."""
    if (
        not _enabled
        or type(values) is not np.ndarray
        or values.dtype not in _INDEX_TYPES
        or values.ndim < 1
        or not _host_int64(offsets)
    ):
        return None
    assert _module is not None
    rows = int(values.shape[0])
    width = values.size // rows if rows else math.prod(values.shape[1:])
    runs = int(offsets.size) - 1
    out = np.empty((runs, *values.shape[1:]), dtype=values.dtype)
    _module.segment_sum(
        np.ascontiguousarray(values), np.ascontiguousarray(offsets), rows, width, runs, out, safety
    )
    return out


def decryption_bound(noise: Any, det: Any, sg: Any, factor: float, safety: float) -> float | None:
    """``max(minimum(noise, (det + sg * factor) * safety))`` in one pass, NumPy's floats (the
    largest of ``max(noise)`` where ``det`` and ``sg`` are None); None where the kernels are off
    or an array is not an aligned C-contiguous NumPy float64 array of noise's shape (or is
    empty): the caller's NumPy path then computes it."""
    if not _enabled:
        return None
    assert _module is not None
    found: float | None = _module.decryption_bound(noise, det, sg, factor, safety)
    return found
