"""Small-batch shortcuts of the integer-vector scheme: the general code's results, at less fixed
cost per call.

At batch 1 an operation's arithmetic is a few hundred multiply-adds; what it costs is the
fixed price of every NumPy call (about a microsecond each), of every check and of every call
to the operating system's CSPRNG. The scheme's encryption, decryption, key switches, linear
transforms and inner products use these helpers for small NumPy arrays:

* unseeded noise comes from pools that the CSPRNG fills thousands of values at a time
  (:func:`noise_source`), not from one ``os.urandom`` call and one rejection-sampling pass per
  operation;
* magnitudes of a few values are read as Python integers (:func:`abs_max`);
* decryption multiplies by the secret key kept as an int64 array, in a few array operations
  (3- to 8-vectors in large batches: one float64 GEMM, where the noise bound plus its forward
  error is proved below w/2), and skips the checks that the ciphertext's kept bounds already
  prove (:func:`decrypt_few`, on NumPy at any batch size);
* the gadget bits of a key switch with ``gadget_bits = 1`` come from the bytes of the
  magnitudes (:func:`switch_bits`, for batches of any size): a few values through one
  ``unpackbits``; more through a table of signed bits per byte, only for the bytes the
  largest magnitude reaches, straight into the float GEMM, and an encryption key as the
  source itself plus a small residual matrix (one exact GEMM instead of 32-bit limbs).

Each returns exactly what the general code returns, or None where it does not apply (another
backend, a shape it does not cover, a value the general code refuses, so that it raises its
own error):
tests/schemes/test_integer_vector_small_batch.py compares them bit for bit.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from hennframework.randomness import RandomSource, as_random_source
from hennframework.schemes.integer_vector.ciphertext import LIMIT, SAFETY, float_margin
from hennframework.schemes.integer_vector.keys import kept_with, matrix_digest

if TYPE_CHECKING:
    from hennframework.schemes.integer_vector.ciphertext import Ciphertext, Evaluator
    from hennframework.schemes.integer_vector.keys import KeySwitchKey, SecretKey

__all__ = [
    "abs_max",
    "decrypt_few",
    "identity",
    "matrix_facts",
    "noise_source",
    "plain_integers",
    "secret_parts",
    "switch_bits",
]

#: Arrays of at most this many values take the Python-integer shortcuts (``abs_max``) ...
SMALL_VALUES = 256
#: ... and key switches of at most this many source values count their bits with Python ints.
PYTHON_VALUES = 64
#: Decryptions of up to this many multiply-adds (items x (m + k) x m) run as one integer GEMM,
DECRYPT_MATMUL_WORK = 4096
#: and up to this many for vectors of 2 to 4 entries, where NumPy's small integer GEMM
#: beats four whole-array operations of the general path (for m = 4 at batch 256: 6.2 against
#: 7.8 microseconds on a 2-core AMD EPYC; at m = 1 and m >= 8 the array operations win).
DECRYPT_MATMUL_WORK_NARROW = 32768
#: Past ``DECRYPT_MATMUL_WORK``, vectors of this many entries decrypt through one float64 GEMM
#: where its rounding is proved harmless (``_float_decryption``): BLAS beats NumPy's
#: integer GEMM and the array operations there (m = 4 at batch 256: 4.5 against 6.2
#: microseconds, m = 8: 5.8 against 9.0, on a 2-core AMD EPYC); at m = 16 they are even and
#: past it the GEMM's m**2 work loses.
DECRYPT_FLOAT_DIMS = range(3, 9)
#: Plaintext matrices (G, H) whose digest and norms a scheme keeps (``matrix_facts``).
MATRIX_FACTS = 256
#: Key switches with gadget bits of at most this many source values build int64 digits for
#: NumPy's integer matmul; larger ones take the byte table and float GEMMs (``switch_bits``).
FEW_BIT_SOURCES = 32
#: The scheme's key switch makes the float64 digits of at most this many bytes at a time
#: (slices of the batch, for this module's switch and the general one), so a large batch does
#: not hold them all at once: with gadget bits, an inner product of 256 pairs of 64-vectors
#: peaked at 537 MiB in one piece and 67 MiB in slices, and ran faster (about 160 against
#: 190 ms on a 2-core AMD EPYC; slices of 16 MiB were slower).
DIGIT_SLICE_BYTES = 32 << 20
#: Values drawn from the CSPRNG per refill of a noise pool; draws of more than a sixteenth of
#: it go to the CSPRNG directly. A pool serves the many small draws of small batches; a large
#: draw (a batch of 256 4-vectors: 1,024 values) that refilled a pool would hold the new pool
#: and its making's temporaries, about 7 times the operation's output, where drawing it
#: directly holds about its own size.
POOL_SIZE = 4096
POOL_DRAW = POOL_SIZE // 16

Draw = Callable[[int, int, tuple[int, ...]], npt.NDArray[np.int64]]


# ------------------------------------------------------------------------------------------
# noise from the CSPRNG, drawn many values at a time
# ------------------------------------------------------------------------------------------
class _NoisePools:
    """Uniform integers from ``os.urandom`` (through :class:`RandomSource`), drawn
    ``POOL_SIZE`` at a time per range and handed out once each.

    Every value is an independent uniform draw from the CSPRNG, with the same rejection
    sampling as a direct draw; a pool only changes when it is drawn. Each value is handed out
    exactly once: a lock covers the hand-out (threads), and a forked child starts with empty
    pools (``os.register_at_fork``), so parent and child never share values.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pools: dict[tuple[int, int], tuple[npt.NDArray[np.int64], int]] = {}

    def draw(self, low: int, high: int, shape: tuple[int, ...]) -> npt.NDArray[np.int64]:
        count = math.prod(shape)
        if count > POOL_DRAW:
            return RandomSource().integers(low, high, shape)
        with self._lock:
            pool, used = self._pools.get((low, high), (_EMPTY, 0))
            if used + count > pool.size:
                pool, used = RandomSource().integers(low, high, POOL_SIZE), 0
                pool.flags.writeable = False  # handed out as views: nobody writes to them
            self._pools[(low, high)] = (pool, used + count)
        return pool[used : used + count].reshape(shape)


_EMPTY: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
_POOLS = _NoisePools()


def _after_fork_in_child() -> None:
    global _POOLS
    _POOLS = _NoisePools()  # a new lock too: the parent's may have been held at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _pooled(low: int, high: int, shape: tuple[int, ...]) -> npt.NDArray[np.int64]:
    return _POOLS.draw(low, high, shape)


def noise_source(seed: Any) -> Draw:
    """``draw(low, high, shape)``: uniform int64 values in ``[low, high]``, not to be written to.

    Without a seed, from the CSPRNG through the pools; with one (an integer, bytes or a
    :class:`RandomSource`), from that seeded stream exactly as ``RandomSource.integers`` draws
    them, so seeded results are reproducible as before.
    """
    if seed is None:
        return _pooled
    return as_random_source(seed).integers


# ------------------------------------------------------------------------------------------
# magnitudes and decryption of a few values
# ------------------------------------------------------------------------------------------
def abs_max(array: Any) -> int | None:
    """``max |v|`` of a small NumPy integer array as a Python int (0 if empty), the value the
    backend's ``abs_max`` gives; None for anything else."""
    if type(array) is not np.ndarray or array.size > SMALL_VALUES or array.dtype.kind not in "iu":
        return None
    values = array.ravel().tolist()
    return max(map(abs, values)) if values else 0


def plain_integers(values: Any, scale: int, limit: int) -> tuple[npt.NDArray[np.int64], int] | None:
    """``(encode(values, scale), max |value|)`` for a small NumPy integer array at scale 1
    whose values are all within ``limit`` (the largest plaintext a fresh encryption takes),
    where ``encode`` and the range check would pass; None otherwise (they run, and raise)."""
    if scale != 1 or type(values) is not np.ndarray or values.dtype.kind not in "iu":
        return None
    largest = abs_max(values)
    if largest is None or largest > limit:
        return None
    return values.astype(np.int64, copy=False), largest  # read, never written


def decrypt_few(
    scheme: Evaluator, ciphertext: Ciphertext, secret_key: SecretKey
) -> npt.NDArray[np.int64] | None:
    """``round(S c / w)`` of NumPy ciphertexts in three array operations (a few more for large
    batches), or None: ``decrypt``'s NumPy path where it does not call the compiled kernel (w
    not a power of two, the kernels off or not built, a layout the kernel does not read).

    None (the general path decides, and raises its errors) where the data is not a NumPy array
    or where the noise or coefficient checks of ``decrypt`` could fail. Otherwise those checks
    pass: the tracked coefficient bound proves ``|S c| < 2**62``, so no int64 product or sum
    wraps and ``S c`` has the general path's values whatever the order of the operations; the
    noise bound is the ciphertext's kept one. The rounding is the same floor division (an
    arithmetic shift when w is a power of two).
    """
    data = ciphertext.data
    p = scheme.params
    m, k = ciphertext.dim, p.k
    reach = ciphertext.coeff_bound * p.key_row_norm  # bounds |top| + k t |bottom|
    if (
        type(data) is not np.ndarray
        or not data.size
        or data.shape[-1] != m + k
        # "not below": a NaN bound fails these checks too (the general path then refuses)
        or not reach < LIMIT  # S c may not fit int64
    ):
        return None
    noise = ciphertext.decryption_bound
    if not noise * 2 < p.w:
        return None
    half, shift = p.decryption_rounding
    work = data.size * m
    if work > DECRYPT_MATMUL_WORK and m in DECRYPT_FLOAT_DIMS:
        exact = _float_decryption(data, secret_key, m, k, p.w, reach, noise)
        if exact is not None:
            return exact
    t, key_t = secret_parts(secret_key, m)
    sc: npt.NDArray[np.int64]
    if work <= DECRYPT_MATMUL_WORK or (2 <= m <= 4 and work <= DECRYPT_MATMUL_WORK_NARROW):
        # one small integer GEMM: c S^T
        sc = np.matmul(data, key_t)
    elif k == 1:
        sc = data[..., m:] * t[:, 0]
        sc += data[..., :m]
    else:
        sc = np.matmul(data[..., m:], t.T)
        sc += data[..., :m]
    sc += half
    if shift is not None:
        sc >>= shift
    else:
        sc //= p.w
    return sc


def _float_decryption(
    data: npt.NDArray[np.int64],
    secret_key: SecretKey,
    m: int,
    k: int,
    w: int,
    reach: int,
    noise: float,
) -> npt.NDArray[np.int64] | None:
    """``round(S c / w)`` as ``rint(fl(c) @ S^T * 2**-s)`` in float64, where that is proved to
    give the same integers (w = 2**s); None otherwise.

    ``reach`` bounds every row's ``sum_j |S_ij c_j|`` (coefficient bound times the key's row
    norm, below 2**62) and ``noise`` the noise. Rounding c to float64 and a GEMM of ``n = m +
    k`` terms in any order (fused or not) are off by at most ``1.01 (n + 2) 2**-53 reach``
    (the forward error bound; we use ``(n + 2) reach / 2**52 + 1``); scaling by ``2**-s`` is
    exact. ``S c / w = x + e / w`` is then computed within ``(noise + error) / w`` of the
    integer x, and where ``2 (noise + error) < w`` ``rint`` returns x (no tie is possible).
    ``reach / w < 2**51`` keeps every value where float64 holds integers exactly.
    """
    shift = w.bit_length() - 1
    error = ((m + k + 2) * reach >> 52) + 1
    if w != 1 << shift or not (noise + error) * 2 < w or reach >> shift >= 1 << 51:
        return None
    key_float = _float_secret(secret_key, m)
    values = data.astype(np.float64) @ key_float
    values *= 2.0**-shift
    np.rint(values, out=values)
    return values.astype(np.int64)


def _float_secret(secret_key: SecretKey, m: int) -> npt.NDArray[np.float64]:
    """``S^T`` of ``secret_parts`` as float64 (exact: its entries are small integers), kept
    with the key like the int64 one."""
    found: npt.NDArray[np.float64] = kept_with(
        secret_key, "_decrypt_floats", m, secret_key.t_matrix, _make_float, secret_key, m
    )
    return found


def secret_parts(
    secret_key: SecretKey, m: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The first ``m`` rows of T and ``S^T = [I_m, T]^T`` ((m + k) x m), int64, read-only,
    kept with the key (the secret stays where it was) and made again if its ``t_matrix`` is
    replaced."""
    found: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] = kept_with(
        secret_key, "_decrypt_parts", m, secret_key.t_matrix, _make_parts, secret_key, m
    )
    return found


def _make_parts(
    secret_key: SecretKey, m: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    t = np.array(secret_key.t_for(m), dtype=np.int64)
    key_t = np.ascontiguousarray(secret_key.matrix(m).T, dtype=np.int64)
    t.flags.writeable = key_t.flags.writeable = False
    return t, key_t


def _make_float(secret_key: SecretKey, m: int) -> npt.NDArray[np.float64]:
    key_t = secret_parts(secret_key, m)[1].astype(np.float64)
    key_t.flags.writeable = False
    return key_t


# ------------------------------------------------------------------------------------------
# plaintext matrices of linear transforms and inner products
# ------------------------------------------------------------------------------------------
def matrix_facts(scheme: Evaluator, matrix: npt.NDArray[np.int64]) -> tuple[str, float, float]:
    """``matrix_digest(matrix)`` (the evaluation key's label), the largest row sum of ``|G|``
    and the sum of ``|H|``, as the scheme's operations compute them; kept per scheme for up
    to ``MATRIX_FACTS`` matrices (by shape and bytes): the same G or H comes with every call.
    """
    cache: dict[tuple[Any, ...], tuple[str, float, float]] = scheme.__dict__.setdefault(
        "_matrix_facts", {}
    )
    name = (matrix.shape, matrix.dtype.str, matrix.tobytes())
    found = cache.get(name)
    if found is None:
        size = np.abs(matrix)
        found = (matrix_digest(matrix), float(size.sum(axis=1).max()), float(size.sum()))
        if len(cache) < MATRIX_FACTS:
            cache[name] = found
    return found


@functools.lru_cache(maxsize=64)
def identity(m: int) -> npt.NDArray[np.int64]:
    """The m x m int64 identity (the default H of an inner product), read-only and kept."""
    eye = np.eye(m, dtype=np.int64)
    eye.flags.writeable = False
    return eye


# ------------------------------------------------------------------------------------------
# key switching with gadget bits (gadget_bits = 1)
# ------------------------------------------------------------------------------------------
def switch_bits(scheme: Evaluator, source: Any, key: KeySwitchKey) -> tuple[Any, Any, Any] | None:
    """``_switch(source, key, bound)``'s three results for NumPy sources of a parameter set
    with ``gadget_bits = 1``, or None.

    The caller has checked the source shape and ``|source| < 2**62``. The digits are
    ``sign(v)`` times the bits of ``|v|``, least significant first (``decompose``). Three
    things make this faster than the general path, with the same results bit for bit:

    * only the bytes of ``|v|`` that can hold a set bit take part: bits above the largest
      magnitude's bit length are 0 for every value, so their digits and the key rows they
      would multiply are left out (a fresh encryption's ``w x + e`` has about 48 of 62 bits);
    * the signed bits come as float64 straight from a 512-row table indexed by byte and sign
      (one ``take``), ready for the float GEMM, with no int64 digit matrix in between;
    * a key whose matrix is the gadget identity plus small entries (an encryption key: the
      switch from the identity secret) is used as ``M c* = c + R c*``, with ``R = M - G`` so
      small that one float64 GEMM is exact, instead of splitting M into 32-bit limbs.

    The digits' L1 norm and squared L2 norm are both the number of set bits, an exact
    integer, so the float norms are the general path's to the bit (same operations on the
    same values and shapes).
    """
    p = scheme.params
    if (
        p.gadget_bits != 1
        or type(source) is not np.ndarray
        or source.dtype != np.int64
        or source.ndim < 1
        or not source.size
    ):
        return None
    columns = int(source.shape[-1])
    count = p.digits  # one bit digit per bit of |v| < 2**62
    if count * columns != key.matrix_t.shape[0] or count > 64:
        return None  # not this key's shape: the general path reports it
    batch_shape = source.shape[:-1]
    flat = source.reshape(-1, columns)
    items = flat.shape[0]
    # |v| < 2**62: no INT64_MIN; contiguous, since a byte view needs a contiguous last axis (a
    # transposed source gives an F-ordered |v|)
    magnitude = np.ascontiguousarray(abs(flat))
    if sys.byteorder != "little":
        magnitude = magnitude.byteswap()  # least significant byte first
    if magnitude.size <= FEW_BIT_SOURCES:
        # a few values: every bit as an int64 digit and NumPy's integer matmul, whose fixed
        # cost is lower than the table, the float GEMM and the limbs
        bits = np.unpackbits(magnitude.view(np.uint8), axis=-1, bitorder="little")
        int_digits = np.empty((items, columns, count), dtype=np.int64)
        np.multiply(
            bits.reshape(items, columns, 64)[:, :, :count],
            np.sign(flat)[:, :, None],
            out=int_digits,
        )
        out = scheme.backend.matmul_small_left(
            int_digits.reshape(items, columns * count), key.matrix_t, 1
        )
        return _with_bit_norms(out, magnitude, batch_shape, columns * count, key)
    width = max(1, (int(magnitude.max()).bit_length() + 7) // 8)  # bytes that can be non-zero
    rows, residual = _bit_key_rows(key.matrix_t, columns, count, width)
    out_columns = int(key.matrix_t.shape[1])
    index = magnitude.view(np.uint8).reshape(items, columns, 8)[:, :, :width].astype(np.intp)
    index[flat < 0] += 256  # the negated rows of the table
    digits = np.take(_SIGNED_BITS, index, axis=0).reshape(items, columns * width * 8)
    if residual is not None:
        # M c* = G c* + R c*: G c* is the source itself (sum_i 2**i sign(v) bit_i = v) in the
        # gadget's rows; R c* is exact in float64 (_bit_key_rows checked |R| K < 2**53), and
        # |v| < 2**62 plus |R c*| < 2**53 cannot leave int64
        out = np.matmul(digits, residual).astype(np.int64)
        gadget = min(columns, out_columns)
        out[:, :gadget] += flat[:, :gadget]
    else:
        assert rows is not None  # one of the two is always made
        out = scheme.backend.matmul_small_left(digits, rows, 1)
    return _with_bit_norms(out, magnitude, batch_shape, columns * count, key)


def _with_bit_norms(
    out: Any, magnitude: npt.NDArray[np.int64], batch_shape: tuple[int, ...], digits: int, key: Any
) -> tuple[Any, Any, Any]:
    """``switch_bits``' result: ``out`` in the batch shape with the digits' L1 and L2 norms."""
    # sum |d| = sum d**2 = the number of set bits (bits above ``count`` are 0: |v| < 2**62):
    # l1 = ones * margin and l2 = (ones * margin) ** 0.5 * SAFETY, as in ``_switch``, of the
    # batch shape (a NumPy scalar when there is no batch axis, as the general path's sum gives)
    margin = float_margin(digits)
    out = out.reshape(*batch_shape, key.matrix_t.shape[1])
    if magnitude.size > PYTHON_VALUES:
        ones = _set_bits(magnitude).reshape(batch_shape).astype("float64")
        return out, ones * margin, (ones * margin) ** 0.5 * SAFETY
    # a few items: the same float operations on Python floats (IEEE double, same order); an
    # array's ``** 0.5`` is NumPy's sqrt (math.sqrt: both correctly rounded), a NumPy
    # scalar's is the C library's pow (as Python's float ``**``)
    values: Any = magnitude.tolist()  # lists of Python ints
    l1s = [sum(map(int.bit_count, row)) * margin for row in values]
    if not batch_shape:
        return out, np.float64(l1s[0]), np.float64(l1s[0] ** 0.5 * SAFETY)
    l2s = [math.sqrt(value) * SAFETY for value in l1s]
    return (
        out,
        np.array(l1s, dtype=np.float64).reshape(batch_shape),
        np.array(l2s, dtype=np.float64).reshape(batch_shape),
    )


def _signed_bits() -> npt.NDArray[np.float64]:
    """Row ``b`` holds the bits of byte ``b`` (least significant first) as float64, row
    ``256 + b`` their negatives."""
    bits = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1, bitorder="little")
    table = np.concatenate([bits, -bits.astype(np.int64)]).astype(np.float64)
    table.flags.writeable = False
    return table


_SIGNED_BITS = _signed_bits()


def _set_bits(magnitude: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The number of set bits of each row of non-negative int64 values."""
    counts: npt.NDArray[np.int64]
    if hasattr(np, "bitwise_count"):  # NumPy 2
        counts = np.bitwise_count(magnitude).sum(axis=-1, dtype=np.int64)
    else:
        counts = np.unpackbits(magnitude.view(np.uint8), axis=-1).sum(axis=-1, dtype=np.int64)
    return counts


#: Key rows for the bytes in use, per (key matrix, bytes): at most this many kept.
BIT_KEY_VIEWS = 16
_BIT_KEYS: dict[tuple[int, int], tuple[Any, Any, Any]] = {}
_BIT_KEYS_LOCK = threading.Lock()


def _bit_key_rows(
    matrix_t: npt.NDArray[np.int64], columns: int, count: int, width: int
) -> tuple[npt.NDArray[np.int64] | None, npt.NDArray[np.float64] | None]:
    """For the low ``width`` bytes of every source value: ``(None, R)`` with ``R = rows - G``
    as float64 where that is small enough for one exact float GEMM, else ``(rows, None)``:
    the rows of the bit-digit key matrix (rows of bits at or above ``count`` are zeros).

    ``G`` is the gadget identity: 2**i from bit i of source value j into output row j. An
    encryption key (the switch from the identity secret) is ``G`` plus the key's noise and
    mask terms, a few thousand at most. The array is read-only and kept per key matrix
    (dropped with it), so the backend's cache of the rows' float limbs applies too.
    """
    name = (id(matrix_t), width)
    with _BIT_KEYS_LOCK:
        found = _BIT_KEYS.get(name)
    if found is not None and found[0]() is matrix_t:
        return found[1], found[2]
    out_columns = int(matrix_t.shape[1])
    padded = np.zeros((columns, 64, out_columns), dtype=np.int64)
    padded[:, :count] = np.asarray(matrix_t, dtype=np.int64).reshape(columns, count, out_columns)
    shape = (columns * 8 * width, out_columns)
    gadget = np.zeros_like(padded[:, : 8 * width])
    used = min(count, 8 * width)  # rows of bits at or above ``count`` are zeros in M too
    values = np.arange(min(columns, out_columns))[:, None]  # source value j feeds output row j
    gadget[values, np.arange(used), values] = 1 << np.arange(used, dtype=np.int64)
    with np.errstate(over="ignore"):
        rest = (padded[:, : 8 * width] - gadget).reshape(shape)  # modulo 2**64
    largest = max(abs(int(rest.max())), abs(int(rest.min()))) if rest.size else 0
    rows: npt.NDArray[np.int64] | None = None
    residual: npt.NDArray[np.float64] | None = None
    if largest * shape[0] < 1 << 53:  # every partial sum of R c* exact (|digit| <= 1)
        residual = rest.astype(np.float64)
        residual.flags.writeable = False
    else:  # only one of the two is kept: a key of 256-vectors is 33 MB
        rows = np.ascontiguousarray(padded[:, : 8 * width]).reshape(shape)
        rows.flags.writeable = False

    def forget(_reference: Any, name: tuple[int, int] = name) -> None:
        with _BIT_KEYS_LOCK:
            _BIT_KEYS.pop(name, None)

    try:
        reference = weakref.ref(matrix_t, forget)
    except TypeError:  # no weak references: not kept
        return rows, residual
    with _BIT_KEYS_LOCK:
        while len(_BIT_KEYS) >= BIT_KEY_VIEWS:
            _BIT_KEYS.pop(next(iter(_BIT_KEYS)))
        _BIT_KEYS[name] = (reference, rows, residual)
    return rows, residual
