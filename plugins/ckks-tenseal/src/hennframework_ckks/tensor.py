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

Magnitudes. Decryption returns the centred remainder of ``value * scale`` modulo
``Q_l = q_0 * ... * q_l``, so a value with ``|value| * scale >= Q_l / 2`` comes back as a wrong
number, silently (``Enc(4) * Enc(4)`` at ``n4096`` used to decrypt to -15.8). Every tensor
therefore carries bounds that cover *every* slot (all slots share the coefficients): ``bounds``,
per element of the logical array, on its exact value (interval arithmetic on the plaintext
computation: sums add, products multiply, matrix products and sums use ``|w|``, polynomials their
exact range); per ciphertext, on the exact content of its invalid slots (``garbage``: padding and
the partial sums a slot sum leaves in pinned slots; 0 for a clean tensor) and on the CKKS error
(``errors``, each operation adding at most ``params.error_allowance``). Each operation refuses
with :class:`~hennframework.exceptions.OverflowRiskError` before computing a product whose result
could reach :func:`magnitude_limit` of the level and scale it lands on, and checks every
ciphertext it returns against that limit; decryption refuses too. Intermediate ciphertexts inside
an operation (a polynomial's terms and powers, a linear map's inputs brought down a level) need
no check: SEAL computes modulo ``Q_l`` and a rescale divides exactly, so only the representative
that is finally decrypted can wrap.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from hennframework.plugin import (
    HEScheme,
    InputError,
    KeyMismatchError,
    NoiseBudgetExhaustedError,
    OverflowRiskError,
)

from hennframework_ckks._seal import decompose_rotation, sa
from hennframework_ckks.keys import CKKSSecretKey
from hennframework_ckks.layout import Layout, ceil_log2
from hennframework_ckks.linear import (
    MAX_DIAGONAL_ENTRIES,
    DiagonalsTooLargeError,
    LinearPlan,
    _zero,
    evaluate_linear,
    linear_error_bounds,
    plan_linear,
)
from hennframework_ckks.params import PARAMETER_SETS
from hennframework_ckks.shared import scheme_for

__all__ = [
    "Bound",
    "CKKSTensor",
    "Deferred",
    "LazyContraction",
    "LazyLinear",
    "LazyOuter",
    "LazyTransposed",
    "check_decryptable",
    "decrypt_array",
    "encrypt_array",
    "gathers_rows",
    "magnitude_limit",
    "public_bound",
    "public_bounds",
    "refresh_tensors",
]

Array = npt.NDArray[np.float64]
#: How many results of plaintext maps a tensor keeps (:meth:`CKKSTensor.plain_matmul_left`).
_KEPT_MAPS = 2
#: Bound arrays: per element (the logical shape) or per ciphertext (the grid shape).
Bounds = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Bound:
    """One ciphertext, over every slot: exact content of its valid slots (``valid``) and of the
    others (``garbage``), and the CKKS error (``error``); what must stay below the limit is
    ``total``. Content and error are kept apart because a clean tensor's padding holds exact
    zeros, which keeps sums over slots and re-replicated sums tight."""

    valid: float
    garbage: float
    error: float

    @property
    def content(self) -> float:
        return max(self.valid, self.garbage)

    @property
    def total(self) -> float:
        return self.content + self.error


def poly_range(coefficients: Sequence[float], bounds: Array) -> Array:
    """``max |p(x)|`` over ``|x| <= b`` for each ``b`` in ``bounds`` (``p``: lowest degree first).

    Evaluated at both ends and at the real critical points inside; a relative ``2**-30`` of the
    term-by-term bound covers float64 rounding and the roots' inaccuracy (second order at a
    critical point). Infinite where the bound overflows.
    """
    coeffs = np.asarray(coefficients, dtype=np.float64)
    b = np.asarray(bounds, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        best = np.maximum(
            np.abs(np.polynomial.polynomial.polyval(b, coeffs)),
            np.abs(np.polynomial.polynomial.polyval(-b, coeffs)),
        )
        if len(coeffs) > 2 and b.size:
            roots = np.polynomial.polynomial.polyroots(np.polynomial.polynomial.polyder(coeffs))
            real = roots[np.abs(roots.imag) <= 1e-9 * (1.0 + np.abs(roots.real))].real
            for root in real[np.abs(real) <= b.max()]:
                value = abs(float(np.polynomial.polynomial.polyval(root, coeffs)))
                best = np.where(np.abs(root) <= b, np.maximum(best, value), best)
        triangle = sum(abs(float(c)) * b**k for k, c in enumerate(coeffs))
        result = np.minimum(best + 2.0**-30 * triangle, triangle * (1.0 + 2.0**-40))
    return np.asarray(np.where(np.isnan(result), np.inf, result), dtype=np.float64)


def _cell_max(layout: Layout, bounds: Array) -> Bounds:
    """Per ciphertext (grid shape): the largest element bound among the elements it holds."""
    out = np.zeros(math.prod(layout.grid_shape) if layout.shape else 1)
    if bounds.size:
        cell_of, _ = layout.canonical
        np.maximum.at(out, cell_of, bounds.reshape(-1))
    return out.reshape(layout.grid_shape)


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


def magnitude_limit(ctx: Any, level: int, scale: float) -> float:
    """The |value| below which a ciphertext at ``level`` and ``scale`` decrypts without wrapping.

    ``Q_l / (2 * scale)``: a slot value ``x`` adds at most ``|x| * scale`` to any coefficient (the
    inverse canonical embedding averages the slots), and a constant vector reaches that, so the
    limit is exact for constants and sufficient for every vector.
    """
    return float(math.prod(ctx.primes[: level + 1])) / (2.0 * scale)


def _max_abs(values: Array | float) -> float:
    if isinstance(values, np.ndarray):
        return float(np.abs(values).max()) if values.size else 0.0
    return abs(float(values))


def overflow_error(what: str, bound: float, limit: float, level: int, params: Any) -> Exception:
    """The refusal: which value bound, which limit, and what to do about it."""
    others = ", ".join(
        f"{p.name}: {p.headroom:g}" for p in PARAMETER_SETS.values() if p.headroom > params.headroom
    )
    bigger = f" ({others} after the last rescale)" if others else ""
    return OverflowRiskError(
        f"{what} could reach |value| = {bound:.6g} (the tracked bound), but a ciphertext at level "
        f"{level} of the CKKS parameter set {params.name!r} holds |value| < {limit:.6g} only; "
        "beyond that CKKS decrypts a wrong number, so the operation was refused. Scale the "
        "inputs (or the plaintext factors) down, or use a parameter set with more headroom"
        f"{bigger}."
    )


class CKKSTensor:
    """An encrypted real array (see the module docstring). Made by ``CKKSScheme.encrypt_tensor``."""

    __array_ufunc__ = (
        None  # NumPy defers to our reflected operators (array @ tensor, array + tensor)
    )

    def __init__(
        self,
        key: Any,
        layout: Layout,
        cts: npt.NDArray[np.object_],
        clean: bool,
        bounds: npt.ArrayLike | None = None,
        garbage: npt.ArrayLike | None = None,
        errors: npt.ArrayLike | None = None,
    ) -> None:
        """The magnitude bounds (module docstring): ``bounds`` per element (the logical shape),
        ``garbage`` and ``errors`` per ciphertext (the grid shape). Missing bounds are unknown
        (infinite): such a tensor cannot be decrypted."""
        if cts.shape != layout.grid_shape:
            raise ValueError(f"grid {cts.shape} does not match layout {layout.grid_shape}")
        self.key = key
        self.layout = layout
        self.cts = cts
        self.clean = clean

        def array(values: npt.ArrayLike | None, shape: tuple[int, ...]) -> Bounds:
            if values is None:
                return np.full(shape, np.inf)
            return np.asarray(values, dtype=np.float64).reshape(shape)

        self.bounds: Bounds = array(bounds, layout.shape)
        self.garbage: Bounds = array(garbage, cts.shape)
        self.errors: Bounds = array(errors, cts.shape)
        self._powers: dict[int, npt.NDArray[np.object_]] = {}
        #: per ciphertext, for a clean tensor: a bound on the error at its invalid slots where it
        #: is known to be below ``errors`` (None: ``errors``). A masked polynomial leaves only
        #: the encoding's error there; replicating a pinned result across its pinned bits
        #: (:meth:`_unpin`) adds the invalid slots' errors, so a tight bound keeps it tight.
        self.invalid_errors: Bounds | None = None
        #: per ciphertext (flat grid order), where known: a bound on the error of every slot
        #: (rows of ``slots`` values, each at most ``errors``). A plaintext map's outputs differ
        #: from slot to slot (a bag of words' transpose: a frequent word's error is far larger
        #: than a rare one's), and a product summed over slots then adds the slots' own errors,
        #: not the largest one times their number.
        self.slot_errors: npt.NDArray[np.float64] | None = None
        #: unpinned ciphertexts and their garbage and error bounds by pinned bits, shared with
        #: views that keep the flat cell order
        self._unpinned: dict[int, tuple[list[Any], list[Bound]]] = {}
        #: set by :meth:`multiply_constant`: this tensor is ``factor * source``, so a row selection
        #: of it can read ``source`` and fold the factor into its plaintext matrix
        self._scaled_from: tuple[CKKSTensor, float] | None = None
        #: the last results of :meth:`plain_matmul_left` by matrix: tensors never change, and a
        #: training step applies the same map to the same delta twice (the two gradients of
        #: ``(X W1) W2``), so the second use costs nothing. Only the last ``_KEPT_MAPS``: weights
        #: that predict batch after batch must not keep every batch's result alive.
        self._maps: dict[bytes, CKKSTensor] = {}

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
    def scheme(self) -> HEScheme:
        """The process-wide shared scheme instance of the key's parameter set.

        hennframework's writers of loose tensors (ciphertext files, refresh requests,
        predictions) find the scheme through ``tensor.scheme``; a tensor carries only its key
        (see :mod:`hennframework_ckks.shared`).
        """
        return scheme_for(self.key.params)

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
    def magnitude_bound(self) -> float:
        """A bound on |value| of every element (and every slot), errors included."""
        return max((b.total for b in self.cell_bounds), default=0.0)

    @property
    def cell_bounds(self) -> list[Bound]:
        """The :class:`Bound` of each ciphertext, in flat grid order."""
        valid = _cell_max(self.layout, self.bounds).reshape(-1)
        return [
            Bound(float(v), float(g), float(e))
            for v, g, e in zip(
                valid, self.garbage.reshape(-1), self.errors.reshape(-1), strict=True
            )
        ]

    @property
    def magnitude_limit(self) -> float:
        """The |value| this tensor's ciphertexts hold at their level and scale without wrapping
        (the smallest over its ciphertexts); a result whose bound would reach it is refused."""
        ctx = self.context
        if not self.cts.size:
            return magnitude_limit(ctx, int(ctx.top_level), self._target)
        return min(magnitude_limit(ctx, ctx.level_of(ct), ct.scale) for ct in self.cts.reshape(-1))

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
    def _new(
        self,
        layout: Layout,
        cts: npt.NDArray[np.object_] | Sequence[Any],
        clean: bool,
        bounds: npt.ArrayLike,
        cells: Sequence[Bound] | tuple[Bounds, Bounds],
    ) -> CKKSTensor:
        """A tensor of this key: ``cts`` in flat order or grid shape, ``bounds`` per element,
        ``cells`` the ciphertexts' :class:`Bound` (flat order; ``valid`` unused) or the
        (garbage, errors) arrays."""
        grid = (
            cts.reshape(layout.grid_shape)
            if isinstance(cts, np.ndarray)
            else _object_array(layout.grid_shape, list(cts))
        )
        if isinstance(cells, tuple):
            garbage, errors = cells
        else:
            garbage = np.array([b.garbage for b in cells], dtype=np.float64)
            errors = np.array([b.error for b in cells], dtype=np.float64)
        return CKKSTensor(self.key, layout, grid, clean, bounds, garbage, errors)

    @property
    def _cells(self) -> tuple[Bounds, Bounds]:
        return self.garbage, self.errors

    # ------------------------------------------------------------------------------------
    # magnitude bounds
    # ------------------------------------------------------------------------------------
    @property
    def _allowance(self) -> float:
        return float(self.key.params.error_allowance)

    @property
    def _encoding_error(self) -> float:
        """Worst-case error of an encoded plaintext factor in any slot: ``N`` coefficients
        rounded by at most 1/2 each, at an encoding scale of about the scale times a prime over
        the ciphertext's scale (factor 2 of margin over the smaller of scale and primes)."""
        params = self.key.params
        smallest = min(float(params.scale), *(float(q) for q in self.context.primes[1:]))
        return float(params.poly_modulus_degree) / smallest

    # Each rule gives a result ciphertext's (garbage, error) from its operands' Bounds; the
    # valid part comes from the result's element bounds (interval arithmetic on the values).
    def _b_plain_product(self, a: Bound, factor: float, clean: bool) -> tuple[float, float]:
        """``x * p`` rescaled, ``|p| <= factor`` (a vector plaintext is 0 at invalid slots: the
        result is clean): the factor is encoded with an error that multiplies every slot."""
        garbage = 0.0 if clean else a.garbage * factor
        return garbage, a.error * factor + a.total * self._encoding_error + self._allowance

    def _b_product(self, a: Bound, b: Bound, clean: bool) -> tuple[float, float]:
        """``x * y`` of two ciphertexts: ``(x + e)(y + f) - xy``, then relinearised, rescaled."""
        garbage = 0.0 if clean else a.content * b.content
        error = a.content * b.error + b.content * a.error + a.error * b.error
        return garbage, error + self._allowance

    def _b_sum(self, a: Bound, b: Bound, clean: bool) -> tuple[float, float]:
        """``x + y``: aligning two scales multiplies by a constant 1 encoded to within a relative
        ``1 / scale`` and may rescale."""
        garbage = 0.0 if clean else a.content + b.content
        error = a.error + b.error + (a.total + b.total) / self._target + self._allowance
        return garbage, error

    def _b_rotation_sum(
        self,
        a: Bound,
        terms: int,
        copies: int,
        rotations: int,
        clean: bool,
        row_sum: float | None = None,
    ) -> tuple[float, float]:
        """A rotation-and-add over ``copies`` slots of which at most ``terms`` hold content:
        errors add over all of them, and each rotation's key switching adds its own.

        ``row_sum`` (for a clean source: its invalid slots hold zeros) bounds the sum of one
        row's magnitudes, a row being the summed slots at fixed other bits. A slot left with a
        partial sum adds the tail of its row and the head of the next one (the carry of the
        cyclic rotation), so its content is at most twice that: often far less than the
        largest element times the number of terms, when a few elements are large."""
        if clean:
            garbage = 0.0
        else:
            garbage = a.content * terms
            if row_sum is not None:
                garbage = min(garbage, 2.0 * row_sum)
        return garbage, a.error * copies + self._allowance * rotations

    def _check(self, bound: Bound, level: int, scale: float, what: str) -> None:
        """Refuse a result at ``level`` and ``scale`` whose |value| could reach the limit there."""
        limit = magnitude_limit(self.context, level, scale)
        if not bound.total < limit:
            raise overflow_error(what, bound.total, limit, level, self.key.params)

    def _settled(self, ct: Any) -> tuple[int, float]:
        """Level and scale ``ct`` has once a pending rescale is done."""
        ctx = self.context
        level = ctx.level_of(ct)
        if ctx.is_pending(ct):
            return level - 1, float(ct.scale) / ctx.prime(level)
        return level, float(ct.scale)

    def _check_product(self, a: Any, b: Any, bound: Bound, what: str) -> None:
        """Before ``a * b``: the pending product's level and scale must hold ``bound``."""
        (la, sa_), (lb, sb) = self._settled(a), self._settled(b)
        level = min(la, lb)
        if level >= 1:  # otherwise the product is refused for want of a level
            # stated where the product lands after its rescale (the same limit as pending)
            self._check(bound, level - 1, sa_ * sb / self.context.prime(level), what)

    def _check_plain_product(self, ct: Any, bound: Bound, target: float, what: str) -> None:
        """Before ``ct * plaintext`` rescaled onto ``target``."""
        level, _ = self._settled(ct)
        if level >= 1:
            self._check(bound, level - 1, target, what)

    def _guard(self, ct: Any, bound: Bound, what: str) -> Any:
        """``ct`` if its level and scale hold ``bound``; the check every new ciphertext passes."""
        self._check(bound, self.context.level_of(ct), float(ct.scale), what)
        return ct

    def _check_other(self, other: CKKSTensor) -> None:
        if other.key_id != self.key_id:
            raise KeyMismatchError(
                f"cannot combine tensors of key sets {self.key_id!r} and {other.key_id!r}; "
                "encrypt both with the same keys."
            )

    def _settle(self, ct: Any) -> Any:
        """``ct`` relinearised and, if a pending product, rescaled: before rotations, so that
        they run a level lower (key switching costs about the square of the level); a key
        switch's error is within the allowance either way (the 60-bit special prime)."""
        return self.context.settle(ct, self.key.relin_keys)

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

    def _add_ct(
        self,
        a: Any,
        b: Any,
        bound_a: Bound,
        bound_b: Bound,
        valid: float,
        clean: bool,
        subtract: bool = False,
        check: bool = True,
    ) -> tuple[Any, Bound]:
        """``a + b`` (or ``a - b``) and its bound (``valid``: of its elements), checked at the
        level the sum lands on (unless a partial sum inside an operation)."""
        bound = Bound(valid, *self._b_sum(bound_a, bound_b, clean))
        a, b = self._align(a, b)
        what = "a sum"
        try:
            out = self.context.sub(a, b) if subtract else self.context.add(a, b)
        except (ValueError, RuntimeError) as exc:
            if "transparent" not in str(exc):
                raise
            out = _zero(self.key, self.context.level_of(a), a.scale)
        return (self._guard(out, bound, what) if check else out), bound

    def _mul_plain(self, ct: Any, values: Array | float, target: float) -> Any:
        """``ctx.multiply_plain``; a plaintext that encodes to zero gives a fresh encryption of 0."""
        try:
            with _encodable("a plaintext factor", self.key.params):
                return self.context.multiply_plain(ct, values, target, self.key.relin_keys)
        except RuntimeError as exc:
            if "transparent" not in str(exc):
                raise
            level = self.context.effective_level(ct)
            return _zero(self.key, level - 1, target)

    def _mul_plain_ct(
        self, ct: Any, values: Array | float, bound: Bound, valid: float
    ) -> tuple[Any, Bound]:
        """``ct * values`` and its bound (``valid``: of its elements); integers multiply exactly
        without a level, zeros give a fresh zero. Refused before the product if it could wrap."""
        ctx = self.context
        what = "a product with a plaintext"
        # a vector plaintext is 0 at invalid slots; a constant keeps what they hold
        out_bound = Bound(
            valid, *self._b_plain_product(bound, _max_abs(values), isinstance(values, np.ndarray))
        )
        zero = Bound(0.0, 0.0, self._allowance)
        if isinstance(values, float):
            if values == 0.0:
                return _zero(self.key, ctx.level_of(ct), ct.scale), zero
            if values == 1.0:
                return ct, Bound(valid, bound.garbage, bound.error)
            if values == -1.0:
                return ctx.negate(ct), Bound(valid, bound.garbage, bound.error)
            if values.is_integer() and abs(values) <= _MAX_FREE_INTEGER:
                # exact: no encoding error, no rounding; the error grows with the factor
                k = abs(values)
                out_bound = Bound(valid, bound.garbage * k, bound.error * k)
                self._check(out_bound, ctx.level_of(ct), float(ct.scale), what)
                with _encodable("an integer factor", self.key.params):
                    product = ctx.multiply_integer(ct, int(values))
                return self._guard(product, out_bound, what), out_bound
            self._check_plain_product(ct, out_bound, self._target, what)
            product = self._mul_plain(ct, values, self._target)
            return self._guard(product, out_bound, what), out_bound
        if not np.any(values):
            level = ctx.require_level(ct, what)
            return _zero(self.key, level - 1, self._target), zero
        self._check_plain_product(ct, out_bound, self._target, what)
        return self._guard(self._mul_plain(ct, values, self._target), out_bound, what), out_bound

    def _mul_ct(
        self, a: Any, b: Any, bound_a: Bound, bound_b: Bound, valid: float, clean: bool
    ) -> tuple[Any, Bound]:
        """``a * b`` (pending, see ``SealContext.multiply``) and its bound (``valid``: of its
        elements), refused before the product if it could wrap (the pending product and its
        rescaled form hold the same)."""
        bound = Bound(valid, *self._b_product(bound_a, bound_b, clean))
        what = "a ciphertext product"
        self._check_product(a, b, bound, what)
        return self._guard(self.context.multiply(a, b, self.key.relin_keys), bound, what), bound

    def _add_plain(self, ct: Any, values: Array | float, subtract: bool = False) -> Any:
        """``ct + values`` (or ``ct - values``) with the plaintext encoded at the ciphertext's
        level and scale. SEAL refuses to encode at a level whose modulus is less than about four
        times ``|values| * scale``, short of the limit, so such a plaintext is encoded at the top
        level and brought down (exact: its coefficients are below half the modulus there)."""
        ctx = self.context
        ct = ctx.settle(ct, self.key.relin_keys)
        plain = _encode(ctx, values, ctx.level_of(ct), float(ct.scale), self.key.params)
        out = sa.Ciphertext()
        if subtract:
            ctx.evaluator.sub_plain(ct, plain, out)
        else:
            ctx.evaluator.add_plain(ct, plain, out)
        return out

    # ------------------------------------------------------------------------------------
    # layout machinery
    # ------------------------------------------------------------------------------------
    def _view(self, layout: Layout) -> CKKSTensor:
        """The same ciphertexts in the same flat order under another layout (caches shared)."""
        view = self._new(
            layout, self.cts, self.clean, self.bounds.reshape(layout.shape), self._cells
        )
        view._unpinned = self._unpinned
        view.invalid_errors, view.slot_errors = self.invalid_errors, self.slot_errors
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
        pairs = [
            self._mul_plain_ct(ct, layout.slot_vector(ones, cell), bound, bound.valid)
            for cell, ct, bound in zip(
                layout.cells(), self.cts.reshape(-1), self.cell_bounds, strict=True
            )
        ]
        return self._new(
            layout, [ct for ct, _ in pairs], True, self.bounds, [bound for _, bound in pairs]
        )

    def relayout(self, target: Layout) -> CKKSTensor:
        """The same values packed as ``target`` (one level; a plaintext linear map)."""
        if target.shape != self.shape:
            raise ValueError("relayout keeps the shape")
        if target == self.layout:
            return self
        flat = np.arange(self.size, dtype=np.int64)
        return self._linear(target, flat, flat, np.ones(self.size))

    def _unpin(self, bits: int) -> CKKSTensor:
        """Make pinned slot bits free again (replicate index 0 across them); cached per tensor."""
        bits &= self.layout.pinned
        if not bits:
            return self
        if bits not in self._unpinned:
            done = self._unpin_uncached(bits)
            self._unpinned[bits] = (done.ciphertexts, done.cell_bounds)
        cts, cells = self._unpinned[bits]
        layout = self.layout.replace(pinned=self.layout.pinned & ~bits)
        return self._new(layout, cts, True, self.bounds, cells)

    def _periodic_step(self, step: int) -> tuple[int, int] | None:
        """The key switches a rotation by ``step`` (left; right when negative) costs, and the
        step to rotate by; None where keys are missing.

        A right rotation by ``s`` needs no key of its own: the slots repeat with the layout's
        period ``P`` (every bit from ``log2 P`` up is free, and each operation keeps its result
        periodic, which the linear maps rely on too), so a left rotation by ``P - s`` moves the
        same values; the cheaper of the two is taken.
        """
        options = [step] if step > 0 else [step, self.layout.period + step]
        found = []
        for option in options:
            with suppress(InputError):
                parts = decompose_rotation(option, self.context.slots, self.key.rotation_steps)
                found.append((len(parts), option))
        return min(found, default=None)

    def _replication_steps(self, bits: int) -> tuple[list[tuple[int, bool]], int] | None:
        """How to copy index 0 of the pinned ``bits`` across them on a clean tensor: rotation
        steps, each either added to the running sum (``True``) or applied to it (``False``), and
        the key switches they cost; None where keys are missing.

        Two ways, the cheaper is taken: a right rotation by ``2**b`` added per bit, or one right
        rotation by ``m`` (the sum of the bits' values: index 0 moves to the position where all
        of them are 1) followed by a left rotation by ``2**b`` added per bit (of the
        ``2**count`` terms a slot adds, the one from index 0 is the only element, the others are
        invalid positions, zero in a clean tensor). Right rotations use the period
        (:meth:`_periodic_step`).
        """
        values = [1 << b for b in range(self.layout.slot_bits) if bits >> b & 1]
        plans: list[tuple[list[tuple[int, bool]], int]] = []
        right = [self._periodic_step(-value) for value in values]
        if all(r is not None for r in right):
            found = [r for r in right if r is not None]
            plans.append(([(step, True) for _, step in found], sum(cost for cost, _ in found)))
        shift = self._periodic_step(-sum(values))
        left = [self._periodic_step(value) for value in values]
        if shift is not None and all(r is not None for r in left):
            found = [r for r in left if r is not None]
            plans.append(
                (
                    [(shift[1], False), *((step, True) for _, step in found)],
                    shift[0] + sum(cost for cost, _ in found),
                )
            )
        return min(plans, key=lambda plan: plan[1], default=None)

    def _replication_error(
        self, start: Bound, count: int, cost: int, invalid_error: float | None
    ) -> float:
        """The error bound after copying index 0 of ``count`` pinned bits of a clean ciphertext
        across them with ``cost`` key switches: of the ``2**count`` slots each result slot adds,
        at most one holds an element, the others hold errors only (those of invalid slots,
        where :attr:`invalid_errors` knows them)."""
        error = self._b_rotation_sum(start, 1, 1 << count, cost, True)[1]
        if invalid_error is not None:
            others = ((1 << count) - 1) * invalid_error
            error = min(error, start.error + others + self._allowance * cost)
        return error

    def _unpin_uncached(self, bits: int) -> CKKSTensor:
        """Replicate index 0 of the pinned ``bits``: rotations and additions (no level, after a
        mask where the tensor is not clean), or else a re-packing (one level), whichever costs
        less; a level saved counts as ``count`` rotations (it delays the next refresh and makes
        every later operation of the step cheaper)."""
        target = self.layout.replace(pinned=self.layout.pinned & ~bits)
        count = bin(bits).count("1")
        replication = self._replication_steps(bits)
        if replication is not None:
            flat = np.arange(self.size, dtype=np.int64)
            try:
                repack: int | None = plan_linear(
                    self.layout, target, flat, flat, np.ones(self.size), self.key.rotation_steps
                ).rotations
            except DiagonalsTooLargeError:  # no diagonal plan of the re-packing fits: replicate
                repack = None
            if repack is not None and replication[1] > repack + (count if self.clean else 0):
                replication = None
        if replication is None:
            return self.relayout(target)
        steps, cost = replication
        source = self if self.clean else self._mask_invalid()
        cts, bounds = [], []
        invalid = source.invalid_errors
        invalid_flat = None if invalid is None else invalid.reshape(-1)
        for index, (ct, start) in enumerate(
            zip(source.cts.reshape(-1), source.cell_bounds, strict=True)
        ):
            invalid_error = None if invalid_flat is None else float(invalid_flat[index])
            bound = Bound(
                start.valid, 0.0, self._replication_error(start, count, cost, invalid_error)
            )
            ct = self._settle(ct)
            for step, add in steps:
                rotated = self._rotate(ct, step)
                ct = self.context.add(ct, rotated) if add else rotated
            cts.append(self._guard(ct, bound, "replicating a sum across slots"))
            bounds.append(bound)
        return self._new(target, cts, True, self.bounds, bounds)

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
        contents = np.array([b.content for b in a.cell_bounds]).reshape(a.cts.shape)
        garbage, errors = a.garbage, a.errors
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
                    contents = np.repeat(contents, size, axis=axis)
                    garbage = np.repeat(garbage, size, axis=axis)
                    errors = np.repeat(errors, size, axis=axis)
                    probe = Layout(
                        tuple(size if i == axis else s for i, s in enumerate(probe.shape)),
                        tuple(groups),
                        probe.slot_bits,
                        probe.pinned,
                    )
        layout = Layout(shape, tuple(groups), a.layout.slot_bits, a.layout.pinned)
        covered = self._covers(a.layout, layout)
        # not covered: the new padding may hold copies of elements
        garbage = garbage if covered else contents
        bounds = np.broadcast_to(a.bounds, shape)
        return self._new(layout, grid, a.clean and covered, bounds, (garbage, errors))

    # ------------------------------------------------------------------------------------
    # elementwise operators
    # ------------------------------------------------------------------------------------
    def _binary(self, other: Any, op: str) -> CKKSTensor:
        if isinstance(other, Deferred):
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
            cells_a = np.broadcast_to(_object_array(a.cts.shape, a.cell_bounds), grid_a.shape)
            cells_b = np.broadcast_to(_object_array(b.cts.shape, b.cell_bounds), grid_b.shape)
            element_bounds = a.bounds * b.bounds if op == "mul" else a.bounds + b.bounds
            valid = _cell_max(layout, element_bounds)
            out, cells = [], []
            for index in np.ndindex(*layout.grid_shape):
                x, y = grid_a[index], grid_b[index]
                bx = cast(Bound, cells_a[index])
                by = cast(Bound, cells_b[index])
                v = float(valid[index])
                if op == "add":
                    ct, bound = self._add_ct(x, y, bx, by, v, clean)
                elif op == "sub":
                    ct, bound = self._add_ct(x, y, bx, by, v, clean, subtract=True)
                elif op == "rsub":
                    ct, bound = self._add_ct(y, x, by, bx, v, clean, subtract=True)
                else:
                    ct, bound = self._mul_ct(x, y, bx, by, v, clean)
                out.append(ct)
                cells.append(bound)
            result = self._new(layout, out, clean, element_bounds, cells)
            if clean and a.layout == b.layout == layout and a.cts.shape == b.cts.shape:
                result.invalid_errors = self._invalid_errors_of(a, b, op)
            if a.slot_errors is not None or b.slot_errors is not None:
                result._set_slot_errors(self._slot_errors_of(a, b, layout, op))
            return result
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
        element_bounds = a.bounds * np.abs(values) if op == "mul" else a.bounds + np.abs(values)
        valid = _cell_max(layout, element_bounds).reshape(-1)
        out, cells = [], []
        for cell, ct, bound, v in zip(
            layout.cells(), a.cts.reshape(-1), a.cell_bounds, valid, strict=True
        ):
            vector = float(values.flat[0]) if constant else layout.slot_vector(values, cell)
            if op == "mul":
                ct, bound = self._mul_plain_ct(ct, vector, bound, float(v))
            else:
                # the plaintext is 0 at invalid slots and encoded within the allowance
                bound = Bound(float(v), bound.garbage, bound.error + self._allowance)
                what = "a sum with a plaintext"
                self._check(bound, *self._settled(ct), what)
                if op in ("add", "sub"):
                    ct = self._add_plain(ct, vector, subtract=op == "sub")
                else:  # plain - ct
                    ct = self._add_plain(self.context.negate(ct), vector)
                ct = self._guard(ct, bound, what)
            out.append(ct)
            cells.append(bound)
        # plaintext vectors are zero at invalid slots: products are clean, sums as clean as ``a``
        clean = a.clean if (op != "mul" or constant) else True
        result = self._new(layout, out, clean, element_bounds, cells)
        if clean and a.clean and a.invalid_errors is not None and a.layout == layout:
            # invalid slots hold 0 plus their error: a sum adds the plaintext's encoding error,
            # a product scales by a factor that is 0 there (a constant: by the constant)
            factor = abs(float(values.flat[0])) if constant else 0.0
            result.invalid_errors = np.array(
                [
                    self._b_plain_product(Bound(0.0, 0.0, float(e)), factor, True)[1]
                    if op == "mul"
                    else float(e) + self._allowance
                    for e in a.invalid_errors.reshape(-1)
                ]
            ).reshape(a.cts.shape)
        return result

    def _slot_contents(self, index: int) -> Array:
        """A bound on the exact content of every slot of ciphertext ``index`` (flat): the
        element bounds at valid slots, the garbage bound elsewhere."""
        cell = tuple(int(i) for i in np.unravel_index(index, self.cts.shape))
        flat, valid = self.layout.cell_map(cell)
        garbage = float(self.garbage.reshape(-1)[index])
        return np.where(valid, self.bounds.reshape(-1)[flat], garbage)

    def _slot_error_rows(self) -> Array:
        """:attr:`slot_errors`, or every slot at the ciphertext's error."""
        if self.slot_errors is not None:
            return self.slot_errors
        return np.repeat(self.errors.reshape(-1, 1), self.layout.slots, axis=1)

    def _slot_errors_of(self, a: CKKSTensor, b: CKKSTensor, layout: Layout, op: str) -> Array:
        """Slot-by-slot error bounds of ``a op b`` (the operands as :meth:`_pair` made them,
        broadcast over ``layout``'s grid): :meth:`_b_product` and :meth:`_b_sum` slot by slot."""
        shape = layout.grid_shape
        index_a = np.broadcast_to(np.arange(a.cts.size).reshape(a.cts.shape), shape).reshape(-1)
        index_b = np.broadcast_to(np.arange(b.cts.size).reshape(b.cts.shape), shape).reshape(-1)
        errors_a, errors_b = a._slot_error_rows(), b._slot_error_rows()
        rows = []
        for ia, ib in zip(index_a, index_b, strict=True):
            ea, eb = errors_a[ia], errors_b[ib]
            ca, cb = a._slot_contents(int(ia)), b._slot_contents(int(ib))
            if op == "mul":
                rows.append(ca * eb + cb * ea + ea * eb + self._allowance)
            else:
                rows.append(ea + eb + (ca + ea + cb + eb) / self._target + self._allowance)
        return np.stack(rows)

    def _set_slot_errors(self, rows: Array) -> None:
        """Keep slot-by-slot error bounds and tighten each ciphertext's error to their largest."""
        self.slot_errors = rows
        self.errors = np.minimum(self.errors, rows.max(axis=1).reshape(self.errors.shape))

    def _invalid_errors_of(self, a: CKKSTensor, b: CKKSTensor, op: str) -> Bounds | None:
        """:attr:`invalid_errors` of ``a op b`` for clean ``a`` and ``b`` of one layout: both
        hold 0 plus their error at invalid slots."""
        if a.invalid_errors is None and b.invalid_errors is None:
            return None
        ea = a.errors if a.invalid_errors is None else a.invalid_errors
        eb = b.errors if b.invalid_errors is None else b.invalid_errors
        out = []
        for x, y in zip(ea.reshape(-1), eb.reshape(-1), strict=True):
            bx, by = Bound(0.0, 0.0, float(x)), Bound(0.0, 0.0, float(y))
            pair = self._b_product(bx, by, True) if op == "mul" else self._b_sum(bx, by, True)
            out.append(pair[1])
        return np.array(out).reshape(a.cts.shape)

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
        return self._new(self.layout, cts, self.clean, self.bounds, self._cells)

    def __pos__(self) -> CKKSTensor:
        return self

    def multiply_constant(self, constant: float) -> CKKSTensor:
        """``self * constant`` (one level unless the constant is a small integer).

        The result remembers that it is ``constant * self``: a row selection of it (``t[rows]``,
        a plaintext linear map) selects from ``self`` with the constant folded into the selection
        matrix, one level higher than selecting from the product. The sentiment network's update
        scales each review's delta by the learning rate and repeats it for the review's words, so
        its scatter into the embedding lands a level higher, and every step uses one level fewer.
        The product itself is still computed (one plaintext product per ciphertext: the sentiment
        update's deltas are one ciphertext); a selection just does not read it.
        """
        result = self._binary(float(constant), "mul")
        if result is not self and self.ndim and math.isfinite(constant) and constant != 0:
            result._scaled_from = (self, float(constant))
        return result

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
        cells = _object_array(grid.shape, source.cell_bounds)
        # grid part: add the ciphertexts along the axis (partial sums, checked once complete)
        if grid.shape[axis] > 1:
            parts = np.moveaxis(grid, axis, 0)
            part_cells = np.moveaxis(cells, axis, 0)
            total = parts[0].copy()
            total_cells = part_cells[0].copy()
            for index in np.ndindex(*total.shape):
                acc, acc_bound = total[index], total_cells[index]
                for part, part_cell in zip(parts[1:], part_cells[1:], strict=True):
                    other = part_cell[index]
                    valid = acc_bound.valid + other.valid
                    acc, acc_bound = self._add_ct(
                        acc, part[index], acc_bound, other, valid, source.clean, check=False
                    )
                total[index], total_cells[index] = acc, acc_bound
            grid = np.expand_dims(total, axis)
            cells = np.expand_dims(total_cells, axis)
        top = layout.axis_is_top(axis)
        new_layout = layout.drop_axis(axis, pin=bool(bits) and not top)
        clean = source.clean if (top or not bits) else False
        bounds = source.bounds.sum(axis=axis)
        valid = _cell_max(new_layout, bounds).reshape(-1)
        flat, flat_cells = [], []
        # each slot becomes the sum of 2**bits slots; the source is clean or has no padding on
        # this axis, so at most min(size, 2**bits) of them hold content (padding holds 0): that
        # bounds the partial sums left in pinned slots, and the errors add over all 2**bits
        terms = min(size, 1 << bits)
        # slot by slot where the source knows its slots' errors (and no ciphertexts were added)
        slot_rows = source.slot_errors if bits and grid is source.cts else None
        new_slot_errors = []
        for position, (ct, start, v) in enumerate(
            zip(grid.reshape(-1), cells.reshape(-1), valid, strict=True)
        ):
            if bits:
                # v: the largest new element, the sum of one row's element bounds
                rows = float(v) if source.clean else None
                summed = self._b_rotation_sum(start, terms, 1 << bits, bits, clean, rows)
                if slot_rows is not None:
                    errors = slot_rows[position]
                    for b in range(shift, shift + bits):  # the rotate-and-add, slot by slot
                        errors = errors + np.roll(errors, -(1 << b))
                    errors = errors + self._allowance * bits
                    new_slot_errors.append(errors)
                    summed = (summed[0], min(summed[1], float(errors.max())))
                bound = Bound(float(v), *summed)
                ct = self._settle(ct)
                for b in range(shift, shift + bits):
                    ct = self.context.add(ct, self._rotate(ct, 1 << b))
            else:
                bound = Bound(float(v), 0.0 if clean else start.garbage, start.error)
            flat.append(self._guard(ct, bound, "a sum"))
            flat_cells.append(bound)
        result = self._new(new_layout, flat, clean, bounds, flat_cells)
        if new_slot_errors:
            result.slot_errors = np.stack(new_slot_errors)
        return result

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
        return self._new(
            layout,
            np.transpose(self.cts, order),
            self.clean,
            np.transpose(self.bounds, order),
            (np.transpose(self.garbage, order), np.transpose(self.errors, order)),
        )

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
                return self._new(
                    candidate, self.cts, self.clean, self.bounds.reshape(target), self._cells
                )
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
        spread_pinned: bool = False,
        copies_below: int = 0,
    ) -> CKKSTensor:
        """``out[o] = sum w * self[i]`` over the triples (one level), refused before any
        ciphertext work if an output could wrap. With ``spread_pinned`` the map may sum into
        ``out_layout``'s pinned bits (:func:`~hennframework_ckks.linear.make_plan`): the result
        is then not clean, its pinned positions hold partial sums within the tracked garbage.
        ``copies_below``: this tensor's pinned bits that hold copies downwards
        (:meth:`_replicated_down`)."""
        try:
            plan: LinearPlan = plan_linear(
                self.layout,
                out_layout,
                out_flat,
                in_flat,
                weights,
                self.key.rotation_steps,
                spread_pinned,
                copies_below,
            )
        except DiagonalsTooLargeError:
            raise InputError(
                f"a plaintext linear map of {len(weights):,} weights from a {self.shape} tensor "
                f"to a {out_layout.shape} one needs more diagonals than fit in memory (at most "
                f"{MAX_DIAGONAL_ENTRIES:,} slot values); use smaller batches or fewer inputs "
                "(a smaller vocabulary)."
            ) from None
        n_out = math.prod(out_layout.grid_shape) if out_layout.shape else 1
        # element by element: the interval of a linear map
        element_bounds = (
            np.bincount(  # np.add.at into zeros, faster
                out_flat,
                weights=np.abs(weights) * self.bounds.reshape(-1)[in_flat],
                minlength=math.prod(out_layout.shape),
            )
            .reshape(out_layout.shape)
            .astype(np.float64, copy=False)
        )
        valid = _cell_max(out_layout, element_bounds).reshape(-1)
        cells = self.cell_bounds
        # the rescale and each rotation's key switching add an error of their own
        noise = self._allowance * (2 + plan.rotations)
        per_slot: list[Array] = []
        spread = linear_error_bounds(
            plan,
            [b.content for b in cells],
            [b.error for b in cells],
            n_out,
            self.layout.slots,
            self._encoding_error,
            per_slot,
        )
        bounds = [
            Bound(float(v), garbage, error + noise)
            for v, (error, garbage) in zip(valid, spread, strict=True)
        ]
        what = "a plaintext linear map (matmul, selection, scatter_add, re-packing)"
        level = min((self._settled(ct)[0] for ct in self.ciphertexts), default=0)
        if level >= 1 and bounds:
            worst = max(bounds, key=lambda b: b.total)
            self._check(worst, level - 1, self._target, what)
        with _encodable("a plaintext matrix", self.key.params):
            cts = evaluate_linear(self.key, plan, self.ciphertexts, out_layout, self._target)
        cts = [self._guard(ct, bound, what) for ct, bound in zip(cts, bounds, strict=True)]
        result = self._new(out_layout, cts, not plan.summed, element_bounds, bounds)
        if per_slot:
            result.slot_errors = np.stack(per_slot) + noise
        return result

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
        """``matrix @ self`` for a plaintext 1-D or 2-D matrix (contracting axis -2, or 0 if 1-D).

        The result is kept for the same matrix (same shape and bytes): asked again, it is the
        same tensor, computed once."""
        digest = hashlib.blake2b(digest_size=20)
        contiguous = np.ascontiguousarray(matrix, dtype=np.float64)
        digest.update(repr(contiguous.shape).encode())
        digest.update(contiguous.tobytes())
        key = digest.digest()
        kept = self._maps.get(key)
        if kept is None:
            kept = self._plain_matmul_left(contiguous)
            self._maps[key] = kept
            while len(self._maps) > _KEPT_MAPS:
                del self._maps[next(iter(self._maps))]  # the oldest
        return kept

    def _plain_matmul_left(self, matrix: Array) -> CKKSTensor:
        squeeze = matrix.ndim == 1
        matrix2 = matrix[None, :] if squeeze else matrix
        if self.ndim == 0:
            raise InputError("matmul needs at least one axis")
        if self.ndim == 1:
            base = self._expand_dims(1)
            result = base._plain_matmul_left(matrix2)
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
        out_flat, in_flat = out_flat.astype(np.int64), in_flat.astype(np.int64)
        source, out_layout, spread, below = self._cheapest_map(axis, rows, out_flat, in_flat, w)
        result = source._linear(out_layout, out_flat, in_flat, w, spread, below)
        if squeeze:
            return result.reshape((*self.shape[:axis], cols))
        return result

    def _cheapest_map(
        self,
        axis: int,
        rows: int,
        out_flat: npt.NDArray[np.int64],
        in_flat: npt.NDArray[np.int64],
        weights: Array,
    ) -> tuple[CKKSTensor, Layout, bool, int]:
        """Where to put the result of a plaintext map that replaces ``axis`` by ``rows``
        elements, and whether to replicate a pinned input first: the option of fewest key
        switches and diagonals (:func:`~hennframework_ckks.linear.plan_linear` counts them).
        Returns the tensor to map, the result's layout, whether the map sums into its pinned
        bits, and the input's pinned bits that hold copies downwards.

        Small maps keep the result where the contracted axis was. A large one (a mini-batch's
        bag of words) also weighs:

        * the rows in the *top* slot bits, summed into the contracted axis' bits below them,
          which stay pinned: a vector with free top bits (replicated) then meets every output
          row in one of its copies, and the map needs a quarter of the diagonals where the
          copies are 4;
        * the rows in the lowest free bits (the contracted axis' slot bits are then spare);
        * for a clean input with pinned bits, copying index 0 across them first (rotations, no
          level), so that the map can read every copy: downwards (:meth:`_replicated_down`,
          left rotations only) or as free bits (:meth:`_unpin`), whichever is cheaper.
        """
        default = self._layout_replacing(axis, rows)
        slots = self.layout.slots
        if len(weights) < slots // 8:
            return self, default, False, 0
        # (the input's layout for planning, key switches to replicate it, copies below): this
        # tensor as it is, or replicated across its pinned bits (unpinned, or downwards)
        sources: list[tuple[Layout, float, int]] = [(self.layout, 0.0, 0)]
        pinned = self.layout.pinned
        if pinned and self.clean:
            # a large map from a pinned input reads one copy only: always replicate
            replicated: list[tuple[Layout, float, int]] = []
            replication = self._replication_steps(pinned)
            if replication is not None:
                replicated.append((self.layout.replace(pinned=0), float(replication[1]), 0))
            down = self._replication_down_cost(pinned)
            if down is not None:
                replicated.append((self.layout, float(down), pinned))
            sources = replicated or sources
        best: tuple[float, Layout, Layout, bool, int] | None = None
        for in_layout, extra, below in sources:
            for out_layout, spread in self._map_layouts(in_layout, axis, rows, default):
                try:
                    plan = plan_linear(
                        in_layout,
                        out_layout,
                        out_flat,
                        in_flat,
                        weights,
                        self.key.rotation_steps,
                        spread,
                        below,
                    )
                except DiagonalsTooLargeError:  # no plan of this layout fits: not a candidate
                    continue
                diagonals = sum(len(d) for d in plan.diagonals.values())
                # a diagonal (an encoding and a plaintext product) costs about a third of a
                # key switch at the same level; pinned bits will cost about a rotation each to
                # replicate later
                cost = plan.rotations + 0.3 * diagonals + extra + bin(out_layout.pinned).count("1")
                if best is None or cost < best[0]:
                    best = (cost, in_layout, out_layout, spread, below)
        if best is None:  # none fits: the default layout, whose map refuses clearly
            return self, default, False, 0
        _, in_layout, out_layout, spread, below = best
        if below:
            source = self._replicated_down(pinned)
        elif in_layout != self.layout:
            source = self._unpin(pinned)
        else:
            source = self
        return source, out_layout, spread, below

    def _replication_down_cost(self, bits: int) -> int | None:
        """Key switches of :meth:`_replicated_down` over ``bits`` (None: keys missing)."""
        total = 0
        for bit in range(self.layout.slot_bits):
            if bits >> bit & 1:
                step = self._periodic_step(1 << bit)
                if step is None:
                    return None
                total += step[0]
        return total

    def _replicated_down(self, bits: int) -> CKKSTensor:
        """This clean tensor with index 0 of its pinned ``bits`` copied downwards across them:
        a left rotation by ``2**b`` added per bit, so the element at ``p`` also sits at
        ``p - t`` for every ``t`` made of those bits (the positions a plaintext map then reads
        with ``copies_below``). Unlike :meth:`_unpin` no right rotation is needed. The layout is
        unchanged (index 0 still holds the element; the other pinned positions now hold copies,
        so the result is not clean). Cached per tensor."""
        key = -bits  # _unpinned holds replications across free bits under positive keys
        if key not in self._unpinned:
            cost = self._replication_down_cost(bits)
            if cost is None or not self.clean:
                raise ValueError("replicating downwards needs a clean tensor and left keys")
            count = bin(bits).count("1")
            invalid = self.invalid_errors
            invalid_flat = None if invalid is None else invalid.reshape(-1)
            cts, bounds = [], []
            for index, (ct, start) in enumerate(
                zip(self.cts.reshape(-1), self.cell_bounds, strict=True)
            ):
                invalid_error = None if invalid_flat is None else float(invalid_flat[index])
                error = self._replication_error(start, count, cost, invalid_error)
                bound = Bound(start.valid, start.valid, error)
                ct = self._settle(ct)
                for bit in range(self.layout.slot_bits):
                    if bits >> bit & 1:
                        ct = self.context.add(ct, self._rotate(ct, 1 << bit))
                cts.append(self._guard(ct, bound, "replicating a sum across slots"))
                bounds.append(bound)
            self._unpinned[key] = (cts, bounds)
        cts, cells = self._unpinned[key]
        return self._new(self.layout, cts, False, self.bounds, cells)

    def _map_layouts(
        self, in_layout: Layout, axis: int, rows: int, default: Layout
    ) -> list[tuple[Layout, bool]]:
        """Candidate result layouts for :meth:`_cheapest_map` (and whether the map sums into
        their pinned bits)."""
        options = [(default, False)]
        need = ceil_log2(rows)
        shift, bits = in_layout.groups[axis]
        others = 0
        for index, (other_shift, other_bits) in enumerate(in_layout.groups):
            if index != axis:
                others |= ((1 << other_bits) - 1) << other_shift
        shape = (*in_layout.shape[:axis], rows, *in_layout.shape[axis + 1 :])
        top = in_layout.slot_bits - need
        if need and bits and top > shift:
            spread = (((1 << bits) - 1) << shift) & ((1 << top) - 1)
            groups = list(in_layout.groups)
            groups[axis] = (top, need)
            with suppress(ValueError):
                layout = Layout(shape, tuple(groups), in_layout.slot_bits, spread & ~others)
                options.append((layout, True))
        if need:
            probe = Layout(shape, tuple((0, 0) for _ in shape), in_layout.slot_bits, others)
            low = probe.lowest_free_run(need)
            if low is not None and (low, need) != default.groups[axis]:
                groups = list(in_layout.groups)
                groups[axis] = (low, need)
                with suppress(ValueError):
                    options.append((Layout(shape, tuple(groups), in_layout.slot_bits), False))
        # a layout that needs more ciphertexts than another costs more in every later operation
        # (and planning its map builds many diagonals only to drop them)
        fewest = min(math.prod(layout.grid_shape) for layout, _ in options)
        return [
            (layout, spread) for layout, spread in options if math.prod(layout.grid_shape) == fewest
        ]

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

    def __matmul__(self, other: Any) -> Any:
        if isinstance(other, Deferred):
            other = other.materialize()
        if isinstance(other, CKKSTensor):
            if self.ndim == 2 and other.ndim == 2 and self.shape[1] == 1 == other.shape[0]:
                return LazyOuter(self, other)  # an outer product: see LazyOuter
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
                Layout(shape, layout.groups, layout.slot_bits, layout.pinned),
                cts,
                self.clean,
                self.bounds[first],
                (self.garbage[first], self.errors[first]),
            )
            if squeeze:
                return new.reshape(self.shape[1:]) if self.ndim > 1 else new.reshape(())
            return new
        if not len(first):
            return _empty_tensor(self.key, (0, *self.shape[1:]))
        source, factor = self._scaled_from or (self, 1.0)
        matrix = np.zeros((len(first), self.shape[0]))
        matrix[np.arange(len(first)), first] = factor
        lazy = LazyLinear(matrix, source)
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
        if isinstance(values, LazyOuter):
            if values.shape != (len(indices), *self.shape[1:]):
                raise InputError(
                    f"scatter_add: values of shape {values.shape} for {len(indices)} rows of "
                    f"{self.shape}"
                )
            if values.contracts_into(self):
                return self + values.scattered(indices, self.shape[0])
            values = values._value if values._value is not None else values.replay()
        if isinstance(values, Deferred) and not isinstance(values, LazyLinear):
            values = values.materialize()
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
        """Ciphertexts of ``x ** (2 ** exponent_bit)``, flat (cached: forward and derivative share
        them). Intermediate: a polynomial checks its result, not its powers."""
        if exponent_bit == 0:
            return self.cts.reshape(-1)
        if exponent_bit not in self._powers:
            half = self._power(exponent_bit - 1)
            ctx, relin = self.context, self.key.relin_keys
            flat = [ctx.settle(ctx.multiply(ct, ct, relin), relin) for ct in half]
            self._powers[exponent_bit] = _object_array((len(flat),), flat)
        return self._powers[exponent_bit]

    def _polynomial_errors(
        self, cell: Bound, coeffs: Sequence[float], masked: bool
    ) -> tuple[float, float]:
        """The error bounds of ``polyval`` on one ciphertext, following its evaluation: powers
        ``x**(2**j)`` by squaring, each term ``c_k`` times the lowest power then the others.
        Returns the bound over every slot and the bound at invalid slots.

        Errors are slot by slot. With ``masked`` coefficients (0 at invalid slots), a valid
        slot's error depends on valid contents only, and an invalid slot's on the garbage there
        but not on the input's error scaled by a coefficient (the coefficient is 0): the bound
        is the larger of the two, often far below one that lets garbage stand for content."""
        if not masked:
            error = self._polynomial_error_at(cell.content, cell.error, coeffs, False)
            return error, error
        invalid = self._polynomial_error_at(cell.garbage, cell.error, coeffs, True)
        valid = self._polynomial_error_at(cell.valid, cell.error, coeffs, False)
        return max(valid, invalid), invalid

    def _polynomial_error_at(
        self, content: float, error: float, coeffs: Sequence[float], zero_coefficient: bool
    ) -> float:
        """:meth:`_polynomial_errors` for slots of ``content`` and ``error``, where the
        coefficients are 0 if ``zero_coefficient`` (only their encoding error is left)."""
        allowance, encoding = self._allowance, self._encoding_error
        powers = [(content, error)]  # (content, error) of x**(2**j)
        total = allowance  # the constant's encoding
        for k, c in enumerate(coeffs):
            if k == 0 or c == 0.0:
                continue
            bits = [b for b in range(k.bit_length()) if k >> b & 1]
            while len(powers) <= bits[-1]:
                content, error = powers[-1]
                powers.append((content**2, 2 * content * error + error**2 + allowance))
            content, error = powers[bits[0]]
            scale = 0.0 if zero_coefficient else abs(c)
            term = (scale * content, scale * error + encoding * (content + error) + allowance)
            for b in bits[1:]:
                content, error = powers[b]
                term = (
                    term[0] * content,
                    term[0] * error + content * term[1] + term[1] * error + allowance,
                )
            # the term's scale is then set to the target: a relative change below 2**-40
            total += term[1] + 2.0**-40 * term[0]
        return total

    def polyval(self, coefficients: Sequence[float]) -> CKKSTensor:
        """``sum(c_i * x**i)`` elementwise, lowest degree first, at depth ``ceil(log2(degree + 1))``.

        Each term ``c_k x**k`` multiplies ``c_k`` into the lowest power of two in ``k`` first and
        then the other powers ``x**(2**j)`` (computed by squaring, shared across terms), with the
        plaintext's encoding scale chosen so that every term lands exactly on the target scale.
        The result's element bounds are the polynomial's exact range over each element's
        interval, checked where the result lands before any term is computed.
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
        what = "a polynomial"
        element_bounds = poly_range(coeffs, self.bounds)
        valid = _cell_max(layout, element_bounds).reshape(-1)
        results, result_bounds = [], []
        invalid_errors: list[float] = []
        for index, (cell, source) in enumerate(zip(layout.cells(), self.cell_bounds, strict=True)):
            mask = layout.slot_vector(ones, cell)
            masked = isinstance(mask, np.ndarray)
            constant = coeffs[0] * mask if masked else coeffs[0]
            # clean: the coefficients are 0 at invalid slots (and so is a constant's plaintext)
            error, invalid_error = self._polynomial_errors(source, coeffs, masked)
            bound = Bound(float(valid[index]), 0.0, error)
            invalid_errors.append(invalid_error)
            plans = []
            for k, c in enumerate(coeffs):
                if k == 0 or c == 0.0:
                    continue
                bits = [b for b in range(k.bit_length()) if k >> b & 1]
                chain = [self._power(b)[index] for b in bits]
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
                    ctx.require_level(_zero_level_probe(ctx, chain[0], level), what)
                plans.append((c, chain, target * first / factor, lvl))
            if not plans:
                level = ctx.effective_level(self.cts.reshape(-1)[index])
                self._check(bound, level, target, what)
                acc = self._add_plain(_zero(self.key, level, target), constant)
            else:
                low = min(lvl for *_, lvl in plans)
                self._check(bound, low, target, what)
                terms = []
                for c, chain, first_target, _ in plans:
                    coefficient = c * mask if masked else c
                    term = self._mul_plain(chain[0], coefficient, first_target)
                    for ct in chain[1:]:
                        term = ctx.multiply(term, ct, self.key.relin_keys)
                    term = ctx.settle(term, self.key.relin_keys)
                    term.scale = target
                    terms.append(term)
                acc = ctx.mod_to(terms[0], low)
                for term in terms[1:]:
                    acc = ctx.add(acc, ctx.mod_to(term, low))
                if coeffs[0] != 0.0:
                    acc = self._add_plain(acc, constant)
            results.append(self._guard(acc, bound, what))
            result_bounds.append(bound)
        result = self._new(layout, results, True, element_bounds, result_bounds)
        result.invalid_errors = np.array(invalid_errors).reshape(result.cts.shape)
        return result

    def copy(self) -> CKKSTensor:
        return self._new(self.layout, self.cts.copy(), self.clean, self.bounds.copy(), self._cells)


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
    empty = np.zeros(layout.grid_shape)
    return CKKSTensor(
        key, layout, np.empty(layout.grid_shape, dtype=object), True, np.zeros(shape), empty, empty
    )


def _too_large(exc: Exception) -> bool:
    return isinstance(exc, ValueError) and "too large" in str(exc)


@contextmanager
def _encodable(what: str, params: Any) -> Iterator[None]:
    """SEAL's refusal to encode a plaintext operand (beyond about a quarter of the modulus at its
    level), as the project's error; the bound checks catch almost every such case first."""
    try:
        yield
    except ValueError as exc:
        if not _too_large(exc):
            raise
        raise OverflowRiskError(
            f"{what} is too large to encode at this level of the CKKS parameter set "
            f"{params.name!r} ({exc}); scale the plaintext operands down or use a parameter set "
            "with more headroom."
        ) from exc


def _encode(ctx: Any, values: Array | float, level: int, scale: float, params: Any) -> Any:
    """``ctx.encode``, and where SEAL finds the value too large for the level (it wants about two
    bits to spare, more than decryption needs) the plaintext encoded at the top level and brought
    down: exact, because its coefficients are below half the modulus at the level (the callers
    check the magnitude bound first)."""
    try:
        return ctx.encode(values, level, scale)
    except ValueError as exc:
        if not _too_large(exc) or level >= ctx.top_level:
            with _encodable("a value", params):
                raise
            raise  # pragma: no cover - _encodable re-raises
        with _encodable("a value", params):
            plain = ctx.encode(values, ctx.top_level, scale)
        ctx.evaluator.mod_switch_to_inplace(plain, ctx.parms_id(level))
        return plain


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


def _delegate(name: str) -> Callable[..., Any]:
    """A method of a :class:`Deferred` result that computes it, then calls ``name`` on it."""

    def method(self: Deferred, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.materialize(), name)(*args, **kwargs)

    method.__name__ = name
    return method


def _delegate_property(name: str) -> Any:
    return property(lambda self: getattr(self.materialize(), name))


def gathers_rows(layout: Layout) -> bool:
    """Whether a 2-D tensor is packed column-major with all its rows in the low slot bits of
    each ciphertext (:meth:`Layout.gathered_rows`): then contracting its columns with an
    encrypted matrix (``W1 @ W2``) is a sum over the higher bits that leaves the rows whole,
    where a plaintext selection of rows reads them from one ciphertext."""
    if layout.ndim != 2 or layout.pinned:
        return False
    (row_shift, row_bits), (column_shift, column_bits) = layout.groups
    return (
        row_shift == 0
        and row_bits >= 1
        and (1 << row_bits) >= layout.shape[0]
        and (column_bits == 0 or column_shift == row_bits)
    )


class Deferred:
    """An encrypted result not computed yet. A following operation may compute it in a cheaper
    order (see the subclasses); anything else computes it (:meth:`materialize`, once) and
    proceeds on the :class:`CKKSTensor`."""

    __array_ufunc__ = None
    _value: CKKSTensor | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def materialize(self) -> CKKSTensor:
        if self._value is None:
            self._value = self._compute()
        return self._value

    def _compute(self) -> CKKSTensor:
        raise NotImplementedError

    __add__ = _delegate("__add__")
    __radd__ = _delegate("__radd__")
    __sub__ = _delegate("__sub__")
    __rsub__ = _delegate("__rsub__")
    __mul__ = _delegate("__mul__")
    __rmul__ = _delegate("__rmul__")
    __neg__ = _delegate("__neg__")
    __matmul__ = _delegate("__matmul__")
    __rmatmul__ = _delegate("__rmatmul__")
    __getitem__ = _delegate("__getitem__")
    multiply_constant = _delegate("multiply_constant")
    sum = _delegate("sum")
    transpose = _delegate("transpose")
    reshape = _delegate("reshape")
    polyval = _delegate("polyval")
    scatter_add = _delegate("scatter_add")
    segment_sum = _delegate("segment_sum")
    copy = _delegate("copy")
    scale = _delegate_property("scale")
    levels_left = _delegate_property("levels_left")
    noise_budget = _delegate_property("noise_budget")
    magnitude_bound = _delegate_property("magnitude_bound")
    magnitude_limit = _delegate_property("magnitude_limit")
    key_id = _delegate_property("key_id")
    scheme = _delegate_property("scheme")
    ciphertexts = _delegate_property("ciphertexts")
    ciphertext_count = _delegate_property("ciphertext_count")
    layout = _delegate_property("layout")

    @property
    def T(self) -> Any:
        return self.materialize().transpose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape})"


class _ScaledLazily(Deferred):
    """A deferred result that keeps a constant factor instead of computing ``c * result``
    (:meth:`multiply_constant`, ``* number``, negation). A zero or non-finite constant is
    applied to the computed result, as :meth:`CKKSTensor.multiply_constant` would."""

    def multiply_constant(self, constant: float) -> Any:
        constant = float(constant)
        if not math.isfinite(constant) or constant == 0:
            return self.materialize().multiply_constant(constant)
        return self._times(constant)

    def _times(self, constant: float) -> Any:
        """This result with ``constant`` kept (finite, non-zero)."""
        raise NotImplementedError

    def __mul__(self, other: Any) -> Any:
        if isinstance(other, int | float | np.floating | np.integer):
            return self.multiply_constant(float(other))
        return self.materialize() * other

    def __rmul__(self, other: Any) -> Any:
        return self.__mul__(other)

    def __neg__(self) -> Any:
        return self.multiply_constant(-1.0)


def _factor_on_the_deeper(
    a: CKKSTensor, b: CKKSTensor, factor: float
) -> tuple[CKKSTensor, CKKSTensor]:
    """``a`` and ``b`` with ``factor`` multiplied into the one with more levels left (a product
    with a constant costs its operand a level; the other may have none to spare)."""
    if factor == 1.0:
        return a, b
    if a.levels_left > b.levels_left:
        return a.multiply_constant(factor), b
    return a, b.multiply_constant(factor)


class LazyLinear(_ScaledLazily):
    """``matrix @ base`` not yet computed: row selections compose into one plaintext linear map.

    ``W[rows]`` on a slot-packed axis returns one of these; ``segment_sum``, ``multiply_constant``
    and ``scatter_add`` fold into the matrix (no ciphertext work). A product with an encrypted
    matrix ``(matrix @ base) @ V`` with fewer columns than ``base`` is computed as
    ``matrix @ (base @ V)`` when ``base`` is packed for it (:func:`gathers_rows`), and so is the
    gradient ``(matrix @ base).T @ delta`` (:class:`LazyContraction`). Anything else
    materialises it with one plaintext linear map (one level).
    """

    def __init__(self, matrix: Array, base: CKKSTensor) -> None:
        self.matrix = matrix
        self.base = base
        self._value: CKKSTensor | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.matrix.shape[0], *self.base.shape[1:])

    def _compute(self) -> CKKSTensor:
        if 0 in self.shape:
            return _empty_tensor(self.base.key, self.shape)
        if self.base.ndim == 1:
            return self.base.plain_matmul_left(self.matrix)
        flat = self.base.reshape(self.base.shape[0], -1) if self.base.ndim > 2 else self.base
        value = flat.plain_matmul_left(self.matrix)
        return value.reshape(self.shape) if self.base.ndim > 2 else value

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

    @property
    def scheme(self) -> HEScheme:
        """The shared scheme instance of the key's parameter set (see :attr:`CKKSTensor.scheme`)."""
        return self.base.scheme

    def reassociates(self, other: Any) -> bool:
        """Whether ``self @ other`` is computed as ``matrix @ (base @ other)``: ``other`` an
        encrypted matrix with fewer columns than ``base``, packed for it (:func:`gathers_rows`)."""
        return (
            isinstance(other, CKKSTensor)
            and self.base.ndim == 2
            and other.ndim == 2
            and other.shape[0] == self.base.shape[1]
            and other.shape[1] < self.base.shape[1]
            and gathers_rows(self.base.layout)
        )

    def __matmul__(self, other: Any) -> Any:
        if self.reassociates(other):
            # the same product in the cheaper order: one encrypted product and a sum over the
            # high slot bits, then the plaintext map on the (rows, other's columns) result,
            # instead of the map on all of base's columns
            return (self.base @ other).plain_matmul_left(self.matrix)
        return self.materialize() @ other

    def segment_sum(self, offsets: npt.ArrayLike) -> LazyLinear:
        bounds = np.asarray(offsets, dtype=np.int64)
        if bounds.ndim != 1 or bounds.size < 1 or bounds[0] != 0 or bounds[-1] != self.shape[0]:
            raise InputError("offsets must start at 0 and end at the number of rows")
        if np.any(np.diff(bounds) < 0):
            raise InputError("offsets must not decrease")
        # one selector row per run: an empty run (a review without a vocabulary word) is a zero
        # row, so it sums to zero
        selector = np.zeros((len(bounds) - 1, self.shape[0]))
        owner = np.repeat(np.arange(len(bounds) - 1), np.diff(bounds))
        selector[owner, np.arange(self.shape[0])] = 1.0
        return LazyLinear(selector @ self.matrix, self.base)

    def multiply_constant(self, constant: float) -> LazyLinear:
        return LazyLinear(self.matrix * float(constant), self.base)

    def __getitem__(self, index: Any) -> Any:
        rows, squeeze = _normalise_row_index(index, self.shape)
        if squeeze:
            return self.materialize()[index]
        return LazyLinear(self.matrix[rows], self.base)

    @property
    def T(self) -> Any:
        return LazyTransposed(self)

    def __repr__(self) -> str:
        return f"LazyLinear(shape={self.shape}, base={self.base!r})"


class LazyTransposed(Deferred):
    """``(matrix @ base).T``: a layer's gradient ``inputs.T @ delta`` on inputs that are a
    :class:`LazyLinear` is kept as a :class:`LazyContraction` when ``base`` is packed for it."""

    def __init__(self, lazy: LazyLinear) -> None:
        self.lazy = lazy
        self._value: CKKSTensor | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(reversed(self.lazy.shape))

    def _compute(self) -> CKKSTensor:
        return self.lazy.materialize().transpose()

    def __matmul__(self, other: Any) -> Any:
        base = self.lazy.base
        if (
            isinstance(other, CKKSTensor)
            and base.ndim == 2
            and other.ndim == 2
            and other.shape[0] == self.lazy.shape[0]
            and gathers_rows(base.layout)
            and self.lazy._value is None  # computed anyway: use it
        ):
            return LazyContraction(self.lazy, other)
        return self.materialize() @ other


class LazyContraction(_ScaledLazily):
    """``factor * (matrix @ base).T @ delta``, computed as ``(factor * base).T @ (matrix.T @
    delta)``: the gradient of ``(X W1) W2`` with respect to ``W2`` without ``X W1``. The plaintext
    map reads ``delta`` (one ciphertext for a batch's outputs, not one per column of ``W1``) and
    is shared with the embedding's update (:meth:`LazyOuter.scattered`, which applies the same
    map to the same ``delta``); the factor (SGD's learning rate) goes to ``base``, which has
    levels to spare, not to the map's result, which has none."""

    def __init__(self, lazy: LazyLinear, delta: CKKSTensor, factor: float = 1.0) -> None:
        self.lazy = lazy
        self.delta = delta
        self.factor = factor
        self._value: CKKSTensor | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.lazy.base.shape[1], self.delta.shape[1])

    def _times(self, constant: float) -> LazyContraction:
        return LazyContraction(self.lazy, self.delta, self.factor * constant)

    def _compute(self) -> CKKSTensor:
        mapped = self.delta.plain_matmul_left(self.lazy.matrix.T)
        base, mapped = _factor_on_the_deeper(self.lazy.base, mapped, self.factor)
        return _encrypted_matmul(base.transpose(), mapped)


class LazyOuter(_ScaledLazily):
    """``factor * (left @ right)[rows]`` for ``left`` of shape (n, 1) and ``right`` of shape
    (1, k): an outer product, with the constant and row selection applied to it so far.

    A layer's input delta ``delta @ W.T`` for a single-output layer is one; an embedding's
    update scatters it into the table (``T.scatter_add(words, (-lr * delta_h)[owner])``). When
    the table is packed column-major (:func:`gathers_rows`) the scatter contracts the rows
    first (:meth:`scattered`): ``T + (R delta) @ (factor * right)``, one plaintext map on the
    n-vector ``delta``, then one encrypted product in the table's own packing, instead of a map
    on the n x k product. Anything else computes the product as written (:meth:`replay`).
    """

    def __init__(
        self,
        left: CKKSTensor,
        right: CKKSTensor,
        factor: float = 1.0,
        rows: npt.NDArray[np.int64] | None = None,
    ) -> None:
        self.left = left
        self.right = right
        self.factor = factor
        self.rows = rows
        self._value: CKKSTensor | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        count = self.left.shape[0] if self.rows is None else len(self.rows)
        return (count, self.right.shape[1])

    def _times(self, constant: float) -> LazyOuter:
        return LazyOuter(self.left, self.right, self.factor * constant, self.rows)

    def __getitem__(self, index: Any) -> Any:
        rows, squeeze = _normalise_row_index(index, self.shape)
        if squeeze:
            return self.materialize()[index]
        composed = rows if self.rows is None else self.rows[rows]
        return LazyOuter(self.left, self.right, self.factor, composed.astype(np.int64))

    def replay(self) -> CKKSTensor | LazyLinear:
        """The operations as written: the product, then the constant, then the rows (a
        selection of a scaled tensor folds the constant into its matrix)."""
        value: Any = _encrypted_matmul(self.left, self.right)
        if self.factor != 1.0:
            value = value.multiply_constant(self.factor)
        if self.rows is not None:
            value = value[self.rows]
        return cast("CKKSTensor | LazyLinear", value)

    def _compute(self) -> CKKSTensor:
        value = self.replay()
        return value.materialize() if isinstance(value, LazyLinear) else value

    def contracts_into(self, target: CKKSTensor) -> bool:
        """Whether :meth:`scattered` lands in ``target``'s packing (no re-packing to add it)."""
        return (
            target.ndim == 2
            and gathers_rows(target.layout)
            and self.right.layout.groups[1] == target.layout.groups[1]
            and self._value is None
        )

    def scattered(self, indices: npt.NDArray[np.int64], rows: int) -> CKKSTensor:
        """``R @ self`` for ``R[indices[i], i] = 1`` (``rows`` rows): the scatter's update,
        as ``(R S left) @ (factor * right)`` (``S`` the row selection)."""
        sources = np.arange(self.left.shape[0]) if self.rows is None else self.rows
        counts = (
            np.bincount(  # np.add.at into zeros, faster
                indices * self.left.shape[0] + sources, minlength=rows * self.left.shape[0]
            )
            .reshape(rows, self.left.shape[0])
            .astype(np.float64)
        )
        mapped = self.left.plain_matmul_left(counts)
        right, mapped = _factor_on_the_deeper(self.right, mapped, self.factor)
        return _encrypted_matmul(mapped, right)


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
    if level is None:
        level = ctx.top_level
    if not 0 <= level <= ctx.top_level:
        raise InputError(f"level must be in 0..{ctx.top_level}, got {level}")
    # the encoding rounds and the encryption adds noise: both within the error allowance
    largest = float(np.abs(array).max()) if array.size else 0.0
    limit = magnitude_limit(ctx, level, params.scale)
    if not largest + params.error_allowance < limit:
        others = ", ".join(
            f"{p.name}: {p.headroom:g}"
            for p in PARAMETER_SETS.values()
            if p.headroom > params.headroom
        )
        raise OverflowRiskError(
            f"values up to {largest:g} do not fit: a fresh ciphertext of the CKKS parameter set "
            f"{params.name!r} at level {level} holds |value| < {limit:.6g} (less an error "
            f"allowance of {params.error_allowance:.2g}), and after the last rescale only "
            f"|value| < about {params.headroom:g}. Scale the data down or use a parameter set "
            f"with more headroom{f' ({others} after the last rescale)' if others else ''}."
        )
    if array.size == 0:
        return _empty_tensor(key, array.shape)
    layout = layout or Layout.default(array.shape, ctx.slot_bits)
    if layout.shape != array.shape:
        raise InputError(f"layout for {layout.shape} used on values of shape {array.shape}")
    cts: list[Any] = []
    for cell in layout.cells():
        plain = _encode(ctx, layout.slot_vector(array, cell), level, params.scale, params)
        ct = sa.Ciphertext()
        if secret is not None:
            secret.symmetric_encryptor.encrypt_symmetric(plain, ct)
        else:
            key.encryptor.encrypt(plain, ct)
        cts.append(ct)
    # the values are known exactly (to the key holder: files carry only public_bounds), padding
    # holds zeros, the encryption adds its error
    return CKKSTensor(
        key,
        layout,
        _object_array(layout.grid_shape, cts),
        True,
        np.abs(array),
        np.zeros(layout.grid_shape),
        np.full(layout.grid_shape, params.error_allowance),
    )


#: Bounds in files are rounded up to a power of 2**(1/PUBLIC_BOUND_STEPS) (at most 19 % loose).
PUBLIC_BOUND_STEPS = 4


def public_bound(largest: float, cap: float) -> float:
    """``largest`` rounded up to a power of 2**(1/4), kept below ``cap`` when ``largest`` is.

    >>> public_bound(1.0, 100.0), public_bound(3.0, 100.0), public_bound(95.0, 100.0)
    (1.0, 3.363585661014858, 100.0)
    """
    if not largest > 0.0:
        return 0.0
    steps = PUBLIC_BOUND_STEPS
    rounded = max(float(2.0 ** (math.ceil(math.log2(largest) * steps) / steps)), largest)
    return min(rounded, cap) if cap > largest else rounded


def public_bounds(tensor: CKKSTensor) -> Array:
    """The element bounds a tensor may carry in the clear, out of its key holder's process.

    In memory a fresh tensor's bound is ``|value|`` per element (the key holder knows the values);
    written to a file for another party, that would hand over every weight's magnitude. Files
    therefore carry one bound per tensor: the largest element bound rounded up to a power of
    2**(1/4), which reveals only ``max |value|`` to within a factor 1.19 (a quarter of a bit).
    The rounding stays below the public limit of the tensor's ciphertexts when the exact bound
    does, so a tensor that decrypts before a round trip still decrypts after it.
    """
    bounds = np.asarray(tensor.bounds, dtype=np.float64)
    if bounds.size == 0 or not np.isfinite(bounds).all():
        return bounds
    ctx = tensor.context
    limits = [magnitude_limit(ctx, ctx.level_of(ct), float(ct.scale)) for ct in tensor.ciphertexts]
    extra = float(np.max(tensor.garbage, initial=0.0)) + float(np.max(tensor.errors, initial=0.0))
    cap = (min(limits, default=math.inf) - extra) * (1.0 - 1e-9)
    return np.full(bounds.shape, public_bound(float(bounds.max()), cap))


def check_decryptable(tensor: CKKSTensor) -> None:
    """Refuse (``OverflowRiskError``) a tensor whose tracked bound reaches a ciphertext's limit:
    its decryption could be a wrapped, wrong number."""
    ctx = tensor.context
    totals = [cell.total for cell in tensor.cell_bounds]
    for ct, bound in zip(tensor.ciphertexts, totals, strict=True):
        level = ctx.level_of(ct)
        limit = magnitude_limit(ctx, level, float(ct.scale))
        if not bound < limit:
            if not math.isfinite(float(bound)):
                raise OverflowRiskError(
                    "refusing to decrypt: this CKKS tensor carries no magnitude bound (it was "
                    "read from a file written before bounds were tracked), so a wrapped, wrong "
                    "value could not be told from a right one. Have the sender write it again "
                    "with this version."
                )
            raise OverflowRiskError(
                f"refusing to decrypt: the tracked bound |value| <= {float(bound):.6g} reaches "
                f"the {limit:.6g} that a ciphertext at level {level} of the CKKS parameter set "
                f"{tensor.key.params.name!r} holds, so the result could be a wrapped, wrong "
                "number. Scale the inputs down or use a parameter set with more headroom."
            )


def refresh_tensors(
    secret: CKKSSecretKey, tensors: Sequence[Any], level: int | None = None
) -> list[CKKSTensor]:
    """Owner side: decrypt and re-encrypt (at ``level``, default the top), keeping the packing.

    Pinned slot bits (left by sums over slots) are re-encoded as free copies and invalid slots as
    zeros, so a refreshed tensor is also the cheapest to compute with. The owner encrypts with
    its secret key (symmetric encryption: as secure, with less fresh noise, and about half the
    work of a public-key encryption).
    """
    fresh = []
    for tensor in tensors:
        item = tensor.materialize() if isinstance(tensor, Deferred) else tensor
        if not isinstance(item, CKKSTensor):
            raise InputError(f"cannot refresh a {type(item).__name__}; expected a CKKS tensor")
        if item.key_id != secret.key_id:
            raise InputError(
                f"this tensor is under key set {item.key_id!r}; the refresher holds {secret.key_id!r}"
            )
        values = decrypt_array(secret, item)
        layout = item.layout.replace(pinned=0)
        fresh.append(encrypt_array(secret.public, values, layout, secret=secret, level=level))
    return fresh


def decrypt_array(secret: Any, tensor: CKKSTensor) -> Array:
    """Decrypt to a float64 array of the tensor's shape (refused if the bound reaches the limit)."""
    check_decryptable(tensor)
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
