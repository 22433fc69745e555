"""Ciphertexts of the integer-vector scheme: a batch of encrypted m-vectors with operators.

``data`` has shape ``(*batch, m + k)``: the leading axes are the batch (the logical tensor shape)
and the last axis holds one ciphertext. Each ciphertext ``c`` of message ``mu`` satisfies
``S c = w mu + e`` where ``mu`` is the *exact* rational value that the operations define (integer
operations keep it an integer; a rescale divides it exactly) and ``|e| <= noise`` elementwise.
Decryption returns ``round(S c / w)``, which is within 1/2 + noise/w of ``mu`` and equal to it when
``mu`` is an integer, and refuses (raises) when the noise bound could reach w/2.

Two noise bounds are tracked per item (docs/scheme.md, "Noise tracking"): ``noise``, a worst-case
bound that always holds, and a high-probability one, ``e = d + X`` with ``|d| <= noise_det`` and
``X`` sub-Gaussian with parameter ``noise_sg`` (from the independent uniform noise of fresh
encryptions and key-switching keys). Decryption uses the smaller of ``noise`` and
``noise_det + z noise_sg``, with ``z`` set for a failure probability of at most 2**-64 per
decryption (:func:`tail_factor`), unless the scheme was made with ``worst_case=True``.

Operators work on the batch like NumPy: ``+ - *`` broadcast elementwise, ``@`` is a matrix
product over the batch axes, ``sum``, indexing, ``reshape`` and ``transpose`` act on the batch.
Slot-level operations of m-vectors (``dot``, ``linear_transform``) are methods.

The operators that need the scheme's keys (products, matrix products, key switches, rescaling)
forward to the ciphertext's :class:`Evaluator`: the abstract scheme declared here, below
:mod:`~hennframework.schemes.integer_vector.scheme`, so that this module needs nothing from it.
:class:`~hennframework.schemes.integer_vector.scheme.IntegerVectorScheme` implements it, and uses
the ciphertext's public helpers (:meth:`Ciphertext.derive`, :meth:`Ciphertext.message_bound`,
:meth:`Ciphertext.checked_bound`, ...) to build its results.

Plaintexts with m-vectors (m > 1): a factor (``*``) gives one value per batch item, the same in
every slot. A summand (``+``, ``-``) broadcasts against the full shape ``(*batch, m)``, so its
last axis is the slot axis (m values, or 1 for the same value in every slot). A summand with no
more axes than the batch whose shape also fits the batch (for example a length-m vector added to
a batch of m items) is ambiguous and raises InputError naming both fixes: ``values[..., None]``
for one value per item, or one more axis than the batch for values per slot.
"""

from __future__ import annotations

import abc
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from hennframework.backend import Array, ArrayBackend
from hennframework.exceptions import InputError, KeyMismatchError, OverflowRiskError
from hennframework.scheme import HEScheme, KeySet
from hennframework.schemes.integer_vector import native
from hennframework.schemes.integer_vector.keys import KeySwitchKey, SecretKey
from hennframework.schemes.integer_vector.params import INT_BITS, IntegerVectorParams

__all__ = ["Ciphertext", "Evaluator"]

LIMIT = 1 << INT_BITS
#: ``scatter_add`` treats an update as sparse (row-wise margins, carried largest bounds) where
#: fewer than one row in this many is added to.
SPARSE_ROWS = 32
#: Relative margin applied to float64 noise bounds so rounding in the bound itself never undercounts.
SAFETY = 1.0 + 1e-9
#: The high-probability noise bound fails with probability at most 2**-this per decryption.
FAILURE_PROBABILITY_BITS = 64
#: Scalar plaintexts kept encoded per scheme instance (``Ciphertext.slot_plaintext``,
#: ``multiply_plain``), at most.
SCALAR_CACHE_SIZE = 256

_T = TypeVar("_T")


@functools.lru_cache(maxsize=256)
def tail_factor(values: int) -> float:
    """``z`` with ``P(|X| >= z s) <= 2**-64 / values`` for X sub-Gaussian with parameter s.

    A sub-Gaussian X (``E exp(t X) <= exp(t**2 s**2 / 2)``) has ``P(|X| >= z s) <=
    2 exp(-z**2 / 2)``; a decryption of ``values`` numbers fails only if one of them exceeds its
    bound, so the union bound asks ``2 exp(-z**2 / 2) <= 2**-64 / values`` of each:
    ``z = sqrt(2 ln(2 values 2**64))`` (9.5 for one value, 10.9 for a million), rounded up.
    """
    count = max(int(values), 1)
    exponent = math.log(2.0 * count) + FAILURE_PROBABILITY_BITS * math.log(2.0)
    return math.sqrt(2.0 * exponent) * (1.0 + 1e-12)


def _rows_of(ciphertext: Ciphertext, rows: Array) -> tuple[Array, Array]:
    """The high-probability parts of the ``rows`` (axis 0) of a ciphertext that tracks them."""
    assert ciphertext.noise_det is not None and ciphertext.noise_sg is not None
    shape = ciphertext.shape
    det = ciphertext.scheme.backend.broadcast_to(ciphertext.noise_det, shape)
    sg = ciphertext.scheme.backend.broadcast_to(ciphertext.noise_sg, shape)
    return det[rows], sg[rows]


def elementwise_min(left: Array, right: Array) -> Array:
    """The smaller of two float arrays, elementwise (``clip``: NumPy and CuPy alike).

    On the host this is ``numpy.minimum``, the ufunc NumPy's ``clip(max=...)`` calls, without
    its Python wrapper (a microsecond per call on the small arrays of a training step)."""
    if isinstance(left, np.ndarray | np.generic):
        return np.minimum(left, right)
    return left.clip(max=right)


def elementwise_max(left: Array, right: Array) -> Array:
    """The larger of two float arrays, elementwise: ``left.clip(min=right)``, as
    :func:`elementwise_min` (``numpy.maximum`` on the host)."""
    if isinstance(left, np.ndarray | np.generic):
        return np.maximum(left, right)
    return left.clip(min=right)


def float_margin(terms: int) -> float:
    """Factor lifting a float64 sum of ``terms`` non-negative noise bounds above the exact sum.

    Whatever the summation order (BLAS, pairwise), a float64 sum of n non-negative terms is at
    most (n - 1) 2**-53 (relative) below the exact one; SAFETY alone covers n up to ~10**7.
    """
    return SAFETY + max(terms, 1) * 2.0**-52


class Evaluator(HEScheme):
    """The integer-vector scheme as its ciphertexts see it: what their operators forward to.

    Abstract; :class:`~hennframework.schemes.integer_vector.scheme.IntegerVectorScheme` is the
    implementation (the operations' maths and noise bounds are documented there).
    """

    #: The parameter set every ciphertext of this scheme instance uses.
    params: IntegerVectorParams
    #: The array backend the ciphertexts' arrays live on.
    backend: ArrayBackend
    #: Decryption accepts only the worst-case noise bound (no failure probability).
    worst_case: bool

    def _constant(self, name: str, build: Callable[[], _T]) -> _T:
        """``build()``, made once per parameter set and backend of this scheme (the small
        constant arrays and plans of the hot operations, the encoded scalar constants)."""
        # one dict for the current parameter set and backend: replaced, not consulted, when
        # either changes (so nothing made for another set or backend is ever returned)
        kept: tuple[Any, Any, dict[str, Any]] | None = self.__dict__.get("_constants")
        if kept is None or kept[0] is not self.params or kept[1] is not self.backend:
            kept = self.__dict__["_constants"] = (self.params, self.backend, {})
        cache = kept[2]
        if name in cache:
            found: _T = cache[name]
            return found
        value = cache[name] = build()
        return value

    @property
    @abc.abstractmethod
    def fine_scale(self) -> int:
        """Encoding scale for small plaintext constants (coefficients, learning rates)."""

    @abc.abstractmethod
    def encode(self, values: Any, scale: int) -> npt.NDArray[np.int64]:
        """``round(values * scale)`` as int64; refuses NaN, infinity and overflow."""

    @abc.abstractmethod
    def decrypt(
        self, ciphertext: Ciphertext, secret_key: SecretKey | KeySet
    ) -> npt.NDArray[np.int64]:
        """The integer messages ``round(S c / w)``, shape ``(*batch, m)``; raises on noise risk."""

    @abc.abstractmethod
    def multiply(
        self, left: Ciphertext, right: Ciphertext, divisor: int | None = None
    ) -> Ciphertext:
        """Slotwise product of two ciphertext batches (broadcasting over the batch)."""

    @abc.abstractmethod
    def multiply_plain(
        self, ciphertext: Ciphertext, plain: Any, encode_scale: int | None = None
    ) -> Ciphertext:
        """Elementwise (over the batch) product by a plaintext, rescaled for fixed point."""

    @abc.abstractmethod
    def matmul_plain(
        self, ciphertext: Ciphertext, plain: Any, *, plain_on_left: bool
    ) -> Ciphertext:
        """Matrix product over the batch axes with a plaintext matrix (either side)."""

    @abc.abstractmethod
    def matmul_cipher(self, left: Ciphertext, right: Ciphertext) -> Ciphertext:
        """Encrypted @ encrypted over the batch axes."""

    @abc.abstractmethod
    def polyval(self, ciphertext: Ciphertext, coefficients: Sequence[float]) -> Ciphertext:
        """``sum_i coefficients[i] * x**i``, elementwise."""

    @abc.abstractmethod
    def polyval_shift(self, ciphertext: Ciphertext, degree: int) -> int:
        """k >= 0 such that :meth:`polyval` builds the powers of ``x / 2**k`` (exact range)."""

    @abc.abstractmethod
    def rescale(self, ciphertext: Ciphertext, divisor: int | None = None) -> Ciphertext:
        """Divide the message by ``divisor`` (default: the parameter set's scale), exactly."""

    @abc.abstractmethod
    def dot(
        self,
        left: Ciphertext,
        right: Ciphertext,
        weight: npt.ArrayLike | None = None,
        divisor: int | None = None,
    ) -> Ciphertext:
        """``x^T H y`` for each batch item (needs the matching evaluation key)."""

    @abc.abstractmethod
    def linear_transform(self, ciphertext: Ciphertext, matrix_g: npt.ArrayLike) -> Ciphertext:
        """``G x`` for each batch item (needs the matching evaluation key)."""

    @abc.abstractmethod
    def switch_key(self, ciphertext: Ciphertext, key: KeySwitchKey) -> Ciphertext:
        """Move ciphertexts to another secret key without decrypting."""


class Ciphertext:
    """A batch of integer-vector ciphertexts (see the module docstring)."""

    __array_priority__ = 1000
    __array_ufunc__ = (
        None  # make ``ndarray * Ciphertext`` / ``ndarray @ Ciphertext`` use our reflected ops
    )
    # Derived values, computed on first use and kept: a ciphertext's arrays are never written
    # to after it is made (every operation returns a new one), and the same values are asked
    # for several times (the message bound of x in x * x, the weights' noise budget before and
    # after every training step, the powers of x that a sigmoid and its derivative share).
    # Class-level None: an instance has none until it computes them.
    _message_bound: Array | None = None
    #: Where a view of another ciphertext (an index, a transpose, a reshape, a broadcast) reads
    #: its message bound from: that ciphertext and the same view of its bound. The bound is
    #: elementwise over the batch, so the view of the bound is the bound of the view, and a
    #: tensor used through several views (x[:, :, None] forward, x.T[:, :, None] backward)
    #: computes it once.
    _message_bound_view: tuple[Ciphertext, str, Any] | None = None
    _decryption_bound: tuple[bool, float] | None = None
    #: The largest worst-case noise bound (``max_noise``), where it is known.
    _max_noise: float | None = None
    #: Powers of this ciphertext that ``polyval`` made, by the shift of their base (the
    #: scheme's memo: ``{shift: {degree: power}}``).
    polyval_powers: dict[int, dict[int, Ciphertext]] | None = None
    #: ``polyval_shift`` of this ciphertext by degree (the scheme's memo, at its scale).
    polyval_shifts: dict[int, int] | None = None

    def __init__(
        self,
        scheme: Evaluator,
        data: Array,
        dim: int,
        scale: int,
        noise: Array,
        key_id: str,
        coeff_bound: int | None = None,
        noise_det: Array | None = None,
        noise_sg: Array | None = None,
    ) -> None:
        self.scheme = scheme
        self.data = data
        self.dim = dim
        self.scale_int = scale
        self.noise = noise  # float64 array of the batch shape: |e| <= noise, elementwise
        # the high-probability bound e = d + X, |d| <= noise_det, X sub-Gaussian(noise_sg);
        # None: not tracked (a ciphertext read from a file), which reads as (noise, 0)
        if (noise_det is None) != (noise_sg is None):
            raise ValueError("noise_det and noise_sg are tracked together")
        self.noise_det = noise_det
        self.noise_sg = noise_sg
        self.key_id = key_id
        self.coeff_bound = coeff_bound if coeff_bound is not None else scheme.backend.abs_max(data)
        if self.coeff_bound >= LIMIT:
            raise OverflowRiskError(
                f"ciphertext coefficients reach 2**{self.coeff_bound.bit_length() - 1}, beyond the "
                "exact range; use smaller values or a parameter set with a smaller w."
            )

    # -- properties ----------------------------------------------------------------------------
    @property
    def params(self) -> IntegerVectorParams:
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
        if self._max_noise is None:
            backend = self.scheme.backend
            self._max_noise = float(backend.to_numpy(self.noise).max()) if self.size else 0.0
        return self._max_noise

    @property
    def tracks_probable_noise(self) -> bool:
        """Whether the high-probability bound is tracked (else decryption uses ``noise``)."""
        return self.noise_det is not None

    def probable_noise(self, values: int | None = None, rows: Array | None = None) -> Array:
        """``noise_det + z noise_sg`` per item, z for decrypting ``values`` numbers at once.

        ``values`` defaults to every number in this tensor (``size * dim``). Where the bound is
        not tracked this is ``noise``. ``rows``: only those rows (axis 0), z unchanged.
        """
        if self.noise_det is None or self.noise_sg is None:
            return self.noise if rows is None else self.noise[rows]
        count = self.size * self.dim if values is None else values
        det, sg = (self.noise_det, self.noise_sg) if rows is None else _rows_of(self, rows)
        return (det + sg * tail_factor(count)) * SAFETY

    def decryption_bounds(self, rows: Array | None = None) -> Array:
        """The per-item bound decryption refuses on: the smaller of the worst-case bound and the
        high-probability one (the worst-case one alone if the scheme has ``worst_case=True``);
        ``rows``: only those rows (axis 0)."""
        noise = self.noise if rows is None else self.noise[rows]
        if self.noise_det is None or self.scheme.worst_case:
            return noise
        return elementwise_min(noise, self.probable_noise(rows=rows))

    @property
    def decryption_bound(self) -> float:
        """The largest of :meth:`decryption_bounds` (0 for an empty tensor)."""
        worst_case = self.scheme.worst_case  # part of the key: it selects the bound
        cached = self._decryption_bound
        if cached is not None and cached[0] == worst_case:
            return cached[1]
        # the compiled kernel's one pass on the host (a tensor of one vector: a few hundred
        # nanoseconds against several microseconds of NumPy calls); None: the NumPy path
        tracked = self.noise_det is not None and not worst_case
        value = native.decryption_bound(
            self.noise,
            self.noise_det if tracked else None,
            self.noise_sg if tracked else None,
            tail_factor(self.size * self.dim) if tracked else 0.0,  # as probable_noise's
            SAFETY,
        )
        if value is None:
            value = (
                float(self.scheme.backend.to_numpy(self.decryption_bounds()).max())
                if self.size
                else 0.0
            )
        self._decryption_bound = (worst_case, value)
        return value

    @property
    def noise_budget(self) -> float:
        """Bits left before the decryption bound reaches w/2 (negative: decryption refuses)."""
        return float(self.params.noise_budget_bits(self.decryption_bound))

    def __len__(self) -> int:
        return self.shape[0] if self.shape else 1

    def __repr__(self) -> str:
        return (
            f"Ciphertext(shape={self.shape}, dim={self.dim}, scale={self.scale_int}, "
            f"noise_budget={self.noise_budget:.1f} bits, params={self.params.name!r})"
        )

    # -- helpers (also what the scheme's operations build their results with) ----------------
    def derive(
        self,
        data: Array,
        noise: Array,
        scale: int | None = None,
        coeff_bound: int | None = None,
        dim: int | None = None,
        key_id: str | None = None,
        probable: tuple[Array, Array] | None = None,
    ) -> Ciphertext:
        """A ciphertext of the same scheme: ``data`` with the noise bound ``noise`` (and the
        high-probability parts ``probable``), everything not given kept from this one.
        ``coeff_bound`` None recomputes it from ``data``."""
        return Ciphertext(
            self.scheme,
            data,
            self.dim if dim is None else dim,
            self.scale_int if scale is None else scale,
            noise,
            self.key_id if key_id is None else key_id,
            coeff_bound,
            None if probable is None else probable[0],
            None if probable is None else probable[1],
        )

    def probable_parts(self) -> tuple[Array, Array]:
        """(noise_det, noise_sg); (noise, 0) where the high-probability bound is not tracked."""
        if self.noise_det is None or self.noise_sg is None:
            return self.noise, self.noise * 0.0
        return self.noise_det, self.noise_sg

    def map_probable(self, fn: Callable[[Array], Array]) -> tuple[Array, Array] | None:
        """``fn`` applied to both high-probability parts (None where they are not tracked)."""
        if self.noise_det is None or self.noise_sg is None:
            return None
        return fn(self.noise_det), fn(self.noise_sg)

    def check_compatible(self, other: Ciphertext, what: str) -> None:
        """Refuse to ``what`` (combine) with ``other`` unless parameter set, key and m match."""
        params = other.scheme.params
        if params is not self.params and params != self.params:  # the same set: no comparison
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
        here, there = self.scheme.backend, other.scheme.backend
        if here is not there and type(self.data) is not type(other.data):
            # NumPy and CuPy arrays cannot meet in one operation; say so before the array
            # library's own error (a TypeError about implicit conversion) does
            raise InputError(
                f"cannot {what}: one ciphertext's arrays are on the {here.name!r} backend and the "
                f"other's on {there.name!r}. Make both with one scheme (one backend: "
                "get_scheme(..., backend=...), HENN_BACKEND or backend_context()), or decrypt "
                "and re-encrypt one of them there."
            )

    def checked_bound(self, bound: int) -> int:
        """``bound`` if a result with coefficients up to it stays exact, else OverflowRiskError."""
        if bound >= LIMIT:
            raise OverflowRiskError(
                f"the result could reach 2**{bound.bit_length() - 1} and leave the exact range "
                "(2**62); refused rather than wrapped. Rescale, use smaller values, or a "
                "parameter set with a smaller w."
            )
        return bound

    def slot_plaintext(self, values: Any, scale: int, per_item: bool = False) -> tuple[Array, int]:
        """Encode a plaintext at ``scale`` and shape it to ``(..., m)`` for broadcasting.

        ``per_item`` (products): the plaintext has the batch shape, one value per item, the same
        in every slot. Otherwise (sums) the rule is NumPy broadcasting against the *full* shape
        ``(*batch, m)``: the plaintext's last axis is the slot axis (m values, or 1 for the same
        value in every slot). When m > 1 and the plaintext has no more axes than the batch, its
        last axis could also be read as the batch's last axis (one value per item); if both
        readings are possible the sum is ambiguous and raises InputError naming both fixes.

        A Python float (the constant term of a sigmoid's polynomial) is encoded once per
        scheme and scale and kept, read-only, as training adds the same few constants at every
        step.
        """
        cache: dict[tuple[float, int], tuple[Array, int]] | None = None
        if type(values) is float:
            cache = self.scheme._constant(
                "slot-scalars", dict[tuple[float, int], tuple[Array, int]]
            )
            found = cache.get((values, scale))
            if found is not None:
                return found
        encoded = self.scheme.encode(values, scale)
        m = self.dim
        if m == 1 or encoded.ndim == 0 or per_item:
            encoded = encoded[..., None]
        else:
            batch = self.shape
            shape = tuple(encoded.shape)
            per_slot_shape = (1,) * max(len(batch) + 1 - len(shape), 1) + shape
            slot_reading = shape[-1] in (1, m) and _broadcasts(shape[:-1], batch)
            item_reading = (
                encoded.size > 1 and len(shape) <= len(batch) and _fits_batch(shape, batch)
            )
            if not slot_reading:
                raise InputError(
                    f"cannot add a plaintext of shape {shape} to a batch of shape {batch} of "
                    f"{m}-vectors: its last axis is the slot axis and must be {m} (or 1 for the "
                    f"same value in every slot), its other axes must broadcast with the batch. "
                    f"For one value per item, add a trailing axis: values[..., None] (shape "
                    f"{(*shape, 1)})."
                )
            if item_reading:
                raise InputError(
                    f"ambiguous plaintext of shape {shape} for a batch of shape {batch} of "
                    f"{m}-vectors: its last axis could be the slots or the batch's last axis. "
                    f"For values per slot give it the full shape (one more axis than the batch), "
                    f"e.g. values.reshape{per_slot_shape}; for one value per item (the same in "
                    f"every slot) add a trailing axis: values[..., None] (shape {(*shape, 1)})."
                )
        bound = int(np.abs(encoded).max()) if encoded.size else 0
        result = self.scheme.backend.asarray(encoded, dtype="int64"), bound
        if cache is not None and len(cache) < SCALAR_CACHE_SIZE:
            if isinstance(result[0], np.ndarray):
                result[0].flags.writeable = False
            cache[(values, scale)] = result
        return result

    def message_bound(self) -> Array:
        """Elementwise |mu| <= (|c_top| + k t_bound |c_bottom| + noise) / w (float64, batch shape).

        Computed once per ciphertext; the array returned is shared, so callers must not write
        to it."""
        if self._message_bound is not None:
            return self._message_bound
        if self._message_bound_view is not None:
            source, kind, argument = self._message_bound_view
            self._message_bound = self._viewed(source.message_bound(), kind, argument)
            return self._message_bound
        m = self.dim
        size = abs(self.data)
        # a maximum over one entry is that entry (m = 1, k = 1 with the default set)
        top = (size[..., 0] if m == 1 else size[..., :m].max(axis=-1)).astype("float64")
        widest = size[..., m] if size.shape[-1] == m + 1 else size[..., m:].max(axis=-1)
        bottom = widest.astype("float64")
        p = self.params
        bound = (top + p.k * p.t_bound * bottom + self.noise) * (SAFETY / p.w)
        self._message_bound = bound
        return bound

    # -- addition and subtraction ------------------------------------------------------------
    def __add__(self, other: Any) -> Ciphertext:
        """Ciphertext + ciphertext, or + a plaintext (per-slot rule in the module docstring)."""
        if isinstance(other, Ciphertext):
            return self._add_ciphertext(other, subtract=False)
        encoded, pbound = self.slot_plaintext(other, self.scale_int)
        batch = broadcast_batch(self.shape, tuple(encoded.shape[:-1]), "add a plaintext to")
        w = self.params.w
        bound = self.checked_bound(self.coeff_bound + pbound * w)
        backend = self.scheme.backend
        if batch == self.shape:
            # the plaintext fits the batch: added to the top of a copy in place, the same
            # exact int64 sums as a new top joined to the bottom, in fewer operations
            data = self.data.copy()
            data[..., : self.dim] += encoded * w
        else:
            top = self.data[..., : self.dim] + encoded * w
            data = backend.concatenate(
                [top, backend.broadcast_to(self.data[..., self.dim :], (*batch, self.params.k))],
                axis=-1,
            )
        noise = backend.broadcast_to(self.noise, batch) + 0.0
        probable = self.map_probable(lambda v: backend.broadcast_to(v, batch) + 0.0)
        return self.derive(data, noise, coeff_bound=bound, probable=probable)

    def __radd__(self, other: Any) -> Ciphertext:
        return self.__add__(other)

    def _add_ciphertext(self, other: Ciphertext, subtract: bool) -> Ciphertext:
        """``self + other`` or ``self - other`` (as ``self + (-other)``: negation keeps every
        bound, and ``a - b`` is ``a + (-b)`` in int64 for coefficients below 2**62, so the
        difference needs no negated copy)."""
        self.check_compatible(other, "add")
        if other.scale_int != self.scale_int:
            raise InputError(
                f"cannot add ciphertexts of different fixed-point scales ({self.scale_int} and "
                f"{other.scale_int}); rescale one of them first."
            )
        broadcast_batch(self.shape, other.shape, "add")
        bound = self.checked_bound(self.coeff_bound + other.coeff_bound)
        noise = (self.noise + other.noise) * SAFETY  # float sums may round down
        probable = None
        if self.tracks_probable_noise or other.tracks_probable_noise:
            # the two noises may share history (x + x): sub-Gaussian parameters add, as
            # they do under any dependence (a norm's triangle inequality), never in quadrature
            det_a, sg_a = self.probable_parts()
            det_b, sg_b = other.probable_parts()
            probable = ((det_a + det_b) * SAFETY, (sg_a + sg_b) * SAFETY)
        data = self.data - other.data if subtract else self.data + other.data
        return self.derive(data, noise, coeff_bound=bound, probable=probable)

    def __neg__(self) -> Ciphertext:
        return self.derive(
            -self.data,
            self.noise,
            coeff_bound=self.coeff_bound,
            probable=self.map_probable(lambda v: v),
        )

    def __sub__(self, other: Any) -> Ciphertext:
        if isinstance(other, Ciphertext):
            return self._add_ciphertext(other, subtract=True)
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
        # slices, None and integers (the views of a matrix product) index as they are; arrays
        # move to the backend, and a ciphertext is refused
        if any(isinstance(i, Ciphertext | np.ndarray) for i in idx):
            if any(isinstance(i, Ciphertext) for i in idx):
                raise InputError("cannot index with a ciphertext")
            backend = self.scheme.backend
            idx = tuple(backend.asarray(i) if isinstance(i, np.ndarray) else i for i in idx)
        return self._view(self.data[(*idx, slice(None))], "index", idx)

    def _view(self, data: Array, kind: str, argument: Any) -> Ciphertext:
        """This ciphertext's batch through the view ``kind`` with ``argument`` (``data``: the
        ciphertext words so viewed): the noise bounds through the same view (``_viewed``), and
        the message bound read as the same view of this one's (``_message_bound_view``)."""
        result = self.derive(
            data,
            self._viewed(self.noise, kind, argument),
            coeff_bound=self.coeff_bound,
            probable=self.map_probable(lambda values: self._viewed(values, kind, argument)),
        )
        result._message_bound_view = (self, kind, argument)
        return result

    def _viewed(self, values: Array, kind: str, argument: Any) -> Array:
        """``values`` (of the batch shape of the view's source) through the view ``kind``: what
        ``__getitem__``, ``reshape``, ``transpose`` and ``broadcast_to`` do to the batch."""
        if kind == "index":
            return values[argument]
        if kind == "reshape":
            return values.reshape(tuple(argument))
        if kind == "transpose":
            return values.transpose(*argument)
        return self.scheme.backend.broadcast_to(values, argument)

    def sum(self, axis: int | None = None, keepdims: bool = False) -> Ciphertext:
        if axis is None:
            flat = self.reshape(-1)
            return flat.sum(axis=0, keepdims=keepdims)
        if not -self.ndim <= axis < self.ndim:
            raise InputError(f"axis {axis} is out of range for a batch of {self.ndim} dimensions")
        axis = axis % self.ndim
        count = self.shape[axis]
        bound = self.checked_bound(self._sum_bound(axis, count))
        data = self.data.sum(axis=axis, keepdims=keepdims)  # exact: |sum| <= bound < 2**62
        margin = float_margin(count)
        noise = self.noise.sum(axis=axis, keepdims=keepdims) * margin
        probable = self.map_probable(lambda v: v.sum(axis=axis, keepdims=keepdims) * margin)
        return self.derive(data, noise, coeff_bound=bound, probable=probable)

    def _sum_bound(self, axis: int, count: int) -> int:
        """A bound on every partial sum of |coefficients| along ``axis`` (so on the sum itself).

        ``coeff_bound * count`` when that is below 2**62; otherwise the actual sums of absolute
        values, in float64 and rounded up (each of at most ``count`` conversions and additions
        is off by at most 2**-52 relative), so that typical data are not refused for a worst
        case that none of its rows reaches.
        """
        simple = self.coeff_bound * max(count, 1)
        if simple < LIMIT or not self.size:
            return simple
        backend = self.scheme.backend
        sums = abs(self.data).astype("float64").sum(axis=axis)
        largest = float(backend.to_numpy(sums).max()) * (1.0 + (count + 2) * 2.0**-52)
        return min(simple, math.ceil(largest) + 1) if math.isfinite(largest) else simple

    def reshape(self, *shape: Any) -> Ciphertext:
        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        return self._view(self.data.reshape(*shape, self.data.shape[-1]), "reshape", shape)

    def transpose(self, *axes: int) -> Ciphertext:
        order = list(axes) if axes else list(reversed(range(self.ndim)))
        return self._view(self.data.transpose(*order, self.ndim), "transpose", order)

    @property
    def T(self) -> Ciphertext:
        return self.transpose()

    def broadcast_to(self, shape: Sequence[int]) -> Ciphertext:
        data = self.scheme.backend.broadcast_to(self.data, (*shape, self.data.shape[-1]))
        return self._view(data, "broadcast", tuple(shape))

    def copy(self) -> Ciphertext:
        return self.derive(
            self.data.copy(),
            self.noise.copy(),
            coeff_bound=self.coeff_bound,
            probable=self.map_probable(lambda v: v.copy()),
        )

    def scatter_add(self, rows: Any, values: Any) -> Ciphertext:
        """A copy with ``values[i]`` added to row ``rows[i]`` of axis 0 (repeats accumulate)."""
        if not isinstance(values, Ciphertext):
            raise InputError("scatter_add needs encrypted values under the same key")
        self.check_compatible(values, "scatter_add")
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
        in_range = rows_np % self.shape[0] if rows_np.size else rows_np
        counts = np.bincount(in_range) if rows_np.size else np.zeros(0, np.int64)
        repeats = int(counts.max(initial=0))
        bound = self.checked_bound(self.coeff_bound + repeats * values.coeff_bound)
        data = self.data.copy()
        noise = self.noise.copy()
        index = backend.asarray(rows_np)
        if not native.index_add(data, in_range, values.data):  # the compiled kernel, if built
            backend.index_add(data, index, values.data)
        # int64 scatter sums are exact (|result| <= bound < 2**62); float ones may round down,
        # which the margin covers. Where few rows are added to (a training step's words in a
        # vocabulary-sized table), only those rows take it, and the largest bounds are carried
        # over from this tensor's and those rows' (``_carry_bounds``) instead of read anew from
        # every row; where many are, a whole-array pass is cheaper than indexing.
        margin = float_margin(repeats + 1)
        touched = np.flatnonzero(counts)  # each row once
        sparse = SPARSE_ROWS * touched.size < self.shape[0]
        rows_touched = backend.asarray(touched) if sparse else None

        def added(total: Array, theirs: Array) -> Array:
            """``theirs`` added at the rows, then the margin (in place where it can be)."""
            if native.index_add(total, in_range, theirs, rows_touched, margin):
                return total if rows_touched is not None else total * margin
            backend.index_add(total, index, theirs)
            if rows_touched is None:
                return total * margin
            total[rows_touched] *= margin
            return total

        noise = added(noise, values.noise)
        probable = None
        if self.tracks_probable_noise or values.tracks_probable_noise:
            parts = []
            for mine, theirs in zip(self.probable_parts(), values.probable_parts(), strict=True):
                total = backend.broadcast_to(mine, self.shape) + 0.0  # a writable copy
                parts.append(added(total, theirs))
            probable = (parts[0], parts[1])
        result = self.derive(data, noise, coeff_bound=bound, probable=probable)
        if rows_touched is not None:
            self._carry_bounds(result, rows_touched)
        return result

    def _carry_bounds(self, result: Ciphertext, touched: Array) -> None:
        """Give ``result`` (this tensor with some rows' bounds raised) the largest noise and
        decryption bounds from this tensor's known ones and the ``touched`` rows alone.

        Every other row's bounds are this tensor's, and a touched row's only grew, so the
        largest of the result is the larger of this tensor's largest and the touched rows'
        (the decryption bound's z depends on the size only, which is the same). A training step
        adds to a few rows of a vocabulary-sized table: this keeps the weights' noise budget
        and the absorbed-noise check from reading every row after each step. Nothing is set
        where a touched bound is not a finite number (the full computation then shows it).
        """
        backend = self.scheme.backend
        empty = not int(touched.shape[0])
        if self._max_noise is not None:
            top = 0.0 if empty else float(backend.to_numpy(result.noise[touched]).max())
            if math.isfinite(top):
                result._max_noise = max(self._max_noise, top)
        cached = self._decryption_bound
        worst_case = self.scheme.worst_case
        if cached is not None and cached[0] == worst_case:
            bounds = None if empty else result.decryption_bounds(rows=touched)
            top = 0.0 if bounds is None else float(backend.to_numpy(bounds).max())
            if math.isfinite(top):
                result._decryption_bound = (worst_case, max(cached[1], top))

    def segment_sum(self, offsets: Any) -> Ciphertext:
        """Sums of consecutive runs along axis 0: run i is ``self[offsets[i]:offsets[i+1]]``.

        ``offsets`` starts at 0 and ends at ``len(self)``. Exact: int64 prefix sums wrap modulo
        2**64 but their differences (the run sums) are proved to fit.
        """
        backend = self.scheme.backend
        bounds = np.asarray(offsets, dtype=np.int64)
        if bounds.ndim != 1 or bounds.size < 1 or bounds[0] != 0 or bounds[-1] != self.shape[0]:
            raise InputError("offsets must rise from 0 to the number of rows")
        lengths = bounds[1:] - bounds[:-1]  # the run lengths (np.diff, without its wrapper)
        if (lengths < 0).any():
            raise InputError("offsets must rise from 0 to the number of rows")
        longest = int(lengths.max()) if lengths.size else 0
        bound = self.checked_bound(self.coeff_bound * max(longest, 1))
        rows = self.shape[0]
        parts = [self.noise]
        if self.noise_det is not None and self.noise_sg is not None:
            parts += [self.noise_det, self.noise_sg]
        if native.available() and all(part.shape == self.shape for part in parts):
            # the compiled kernel: each array's runs in one pass, the same words and bits
            found = [native.segment_sum(array, bounds, SAFETY) for array in (self.data, *parts)]
            if all(array is not None for array in found):
                probable = (found[2], found[3]) if len(found) == 4 else None
                return self.derive(found[0], found[1], coeff_bound=bound, probable=probable)
        index = backend.asarray(bounds)
        starts, stops = index[:-1], index[1:]
        prefix = self._prefix_sums([self.data], "int64")[0]
        data = prefix[stops] - prefix[starts]
        # the noise bounds of one shape share one array of prefix sums; each part's own
        # cumulative sum and slack, so every part gets the bits it would get alone
        same = all(part.shape == self.noise.shape for part in parts)
        groups = [parts] if same else [[part] for part in parts]
        sums = []
        for group in groups:
            prefixes = self._prefix_sums(group, "float64")
            runs = prefixes[:, stops] - prefixes[:, starts]
            if self.size:
                # float prefix sums round: widen by the largest possible accumulated rounding
                # error (each part's largest total, as a float64, times the same constants)
                totals = backend.to_numpy(prefixes[:, -1]).reshape(len(group), -1).max(axis=1)
                slack = totals * 2.0**-50 * max(rows, 1)
                runs = runs * SAFETY + backend.asarray(
                    slack.reshape((-1,) + (1,) * (runs.ndim - 1))
                )
            else:
                runs = runs * SAFETY + 0.0
            sums += list(runs)
        probable = (sums[1], sums[2]) if len(sums) == 3 else None
        return self.derive(data, sums[0], coeff_bound=bound, probable=probable)

    def _prefix_sums(self, arrays: Sequence[Array], dtype: str) -> Array:
        """The cumulative sums along axis 0 of arrays of one shape, each after a row of zeros,
        stacked on a new leading axis (``segment_sum``'s run sums are their differences).

        NumPy arrays are summed straight into the result (no stacked copy, no joined one); a
        cumulative sum adds each column in order wherever it is written, so the bits are those
        of each array's own ``cumsum``.
        """
        backend = self.scheme.backend
        rows, rest = arrays[0].shape[0], tuple(arrays[0].shape[1:])
        if all(type(array) is np.ndarray and array.dtype == dtype for array in arrays):
            prefix = np.empty((len(arrays), rows + 1, *rest), dtype=dtype)
            prefix[:, 0] = 0
            for array, target in zip(arrays, prefix, strict=True):
                np.cumsum(array, axis=0, out=target[1:])
            return prefix
        zero = backend.zeros((len(arrays), 1, *rest), dtype=dtype)
        return backend.concatenate([zero, backend.stack(arrays).cumsum(axis=1)], axis=1)

    def decrypt(self, secret_key: Any) -> npt.NDArray[np.float64]:
        """Decrypt with the secret key (real values: the integer message divided by the scale)."""
        return self.scheme.decrypt_tensor(self, secret_key)


def broadcast_batch(left: tuple[int, ...], right: tuple[int, ...], what: str) -> tuple[int, ...]:
    """The broadcast batch shape, or an InputError naming both shapes."""
    if left == right or not right:  # the common cases, without NumPy's general rule
        return tuple(left)
    if not left:
        return tuple(right)
    try:
        return _broadcast_shapes(tuple(left), tuple(right))
    except ValueError:
        raise InputError(
            f"cannot {what} batches of shapes {left} and {right}: they do not broadcast together "
            "(NumPy rules); reshape or index one of them first."
        ) from None


@functools.lru_cache(maxsize=1024)
def _broadcast_shapes(left: tuple[int, ...], right: tuple[int, ...]) -> tuple[int, ...]:
    """``numpy.broadcast_shapes`` as a tuple, kept per pair of shapes: a training step
    combines the same few shapes at every step (ValueError, uncached, where they do not
    broadcast)."""
    return tuple(np.broadcast_shapes(left, right))


def _is_int_like(value: Any) -> bool:
    return isinstance(value, int) or (isinstance(value, np.ndarray) and value.dtype.kind in "iu")


def _fits_batch(shape: tuple[int, ...], batch: tuple[int, ...]) -> bool:
    """True if ``shape`` broadcasts into ``batch`` without enlarging it (one value per item)."""
    try:
        return tuple(np.broadcast_shapes(shape, batch)) == tuple(batch)
    except ValueError:
        return False


def _broadcasts(shape: tuple[int, ...], batch: tuple[int, ...]) -> bool:
    """True if ``shape`` and ``batch`` broadcast together (NumPy rules)."""
    try:
        np.broadcast_shapes(shape, batch)
    except ValueError:
        return False
    return True
