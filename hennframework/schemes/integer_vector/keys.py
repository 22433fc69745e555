"""Keys of the integer-vector scheme and the key-switching construction (Zhou & Wornell, Sec. 3).

Secret key ``S = [I_m, T]`` (T is m x k). To switch a ciphertext ``c`` under a key ``K`` (rows x D)
to ``S' = [I, T']``: ``c*`` is the balanced gadget decomposition of ``c`` (D * l digits),
``K*`` its matching expansion (``K* c* = K c``), and

    M = [K* - T' A + E ; A]      (A: k x D l, E: rows x D l, both small and random)

so that ``c' = M c*`` satisfies ``S' c' = K c + E c*``. Public-key encryption is the switch from
the identity key; a linear transform by ``G`` is the switch from ``G S``; a product is the switch
from the tensor key. ``K*`` holds ``K_ij * 2**(b d)``, which exceeds int64: it is stored modulo
2**64, which is exact because every *result* ``M c*`` is proved to fit in 62 bits.

Only the owner (who holds ``T``) can build these matrices; applying them needs no secret.

Key ids are fingerprints (:func:`key_fingerprint`): ``iv-`` and the first 32 hex digits of a
SHA-256 over the parameter set and every public matrix made at keygen (the encryption and product
keys of ``keygen(dims=, products=)``). Keys added later are attached to the key id by label only.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from hennframework import fingerprints
from hennframework.backend import Array, ArrayBackend
from hennframework.exceptions import InputError, KeyMismatchError
from hennframework.randomness import RandomSource
from hennframework.schemes.integer_vector.params import IntegerVectorParams

__all__ = [
    "PARAMETER_FIELDS",
    "PENDING_KEY_ID",
    "EvaluationKeys",
    "KeySwitchKey",
    "PublicKey",
    "SecretKey",
    "build_switch_matrix",
    "check_key_id",
    "check_key_pair",
    "dot_key_matrix",
    "dot_switched_columns",
    "fingerprint_keys",
    "kept_with",
    "key_fingerprint",
    "key_part",
    "product_key_matrix",
    "public_fingerprint",
    "secret_fingerprint",
]

I64 = np.int64
U64 = np.uint64


@dataclass
class KeySwitchKey:
    """A public key-switching matrix ``M`` (stored transposed, ``D l x rows_out``) and its meaning."""

    kind: str
    source_columns: int
    out_dim: int
    matrix_t: Array
    from_key_id: str
    to_key_id: str
    label: str = ""

    @property
    def nbytes(self) -> int:
        return int(self.matrix_t.size) * 8


@dataclass
class PublicKey:
    """What may leave the owner: encryption keys per dimension and evaluation keys."""

    params: IntegerVectorParams
    key_id: str
    encryption: dict[int, KeySwitchKey] = field(default_factory=dict)
    evaluation: EvaluationKeys = field(default_factory=lambda: EvaluationKeys())
    #: Names of the keys the key id is a fingerprint of ("encryption:1", "product:1", ...).
    core: tuple[str, ...] = ()

    def encryption_key(self, dim: int) -> KeySwitchKey:
        try:
            return self.encryption[dim]
        except KeyError:
            raise KeyMismatchError(
                f"this public key has no encryption key for vectors of length {dim} (it has "
                f"{sorted(self.encryption) or 'none'}). The key holder must add one: "
                f"scheme.add_encryption_key(keys, {dim}) (or keygen(dims=[..., {dim}])) before "
                "exporting the public key."
            ) from None


@dataclass
class EvaluationKeys:
    """Key-switching keys for products, inner products, linear transforms and key changes."""

    keys: dict[str, KeySwitchKey] = field(default_factory=dict)

    def get(self, name: str, hint: str) -> KeySwitchKey:
        if name not in self.keys:
            raise KeyMismatchError(
                f"missing evaluation key {name!r}: {hint} (available: {sorted(self.keys) or 'none'})."
            )
        return self.keys[name]

    def __contains__(self, name: str) -> bool:
        return name in self.keys


@dataclass
class SecretKey:
    """``T`` (max_dim x k) for the key ``S_m = [I_m, T[:m]]``. Never leaves the owner."""

    params: IntegerVectorParams
    key_id: str
    t_matrix: npt.NDArray[np.int64]
    #: The public keys made at keygen (the fingerprinted ones), so a secret-key file alone can
    #: recompute its key id and prove that ``T`` belongs to it (:func:`check_key_pair`).
    public_core: dict[str, KeySwitchKey] = field(default_factory=dict)

    @property
    def max_dim(self) -> int:
        return int(self.t_matrix.shape[0])

    def t_for(self, dim: int) -> npt.NDArray[np.int64]:
        if dim > self.max_dim:
            raise InputError(
                f"vectors of length {dim} exceed this key's maximum dimension {self.max_dim}; "
                f"generate keys with keygen(max_dim={dim}) or larger."
            )
        return self.t_matrix[:dim]

    def matrix(self, dim: int) -> npt.NDArray[np.int64]:
        """S = [I_dim, T[:dim]] as an int64 matrix."""
        return np.concatenate([np.eye(dim, dtype=I64), self.t_for(dim)], axis=1)

    def __repr__(self) -> str:  # never print key material
        return f"SecretKey(key_id={self.key_id!r}, max_dim={self.max_dim}, params={self.params.name!r})"


# ------------------------------------------------------------------------------------------
# key ids: fingerprints of the public material made at keygen
# ------------------------------------------------------------------------------------------
FINGERPRINT_PREFIX = "iv-"
#: The label keys carry during keygen, before the fingerprint of their matrices is known.
PENDING_KEY_ID = "pending"
#: The parameter values a fingerprint covers (with the set's name), in this order.
PARAMETER_FIELDS = ("w", "scale", "k", "t_bound", "a_bound", "e_bound", "gadget_bits", "modulus")

_LEGACY_ID = re.compile(r"[0-9a-f]{16}")


def check_key_id(value: object, where: str) -> str:
    """``value`` if it is an integer-vector key fingerprint; a clear error for older random ids."""
    return fingerprints.check_key_id(
        value,
        where,
        prefix=FINGERPRINT_PREFIX,
        legacy=_LEGACY_ID,
        made_by="an older hennframework version",
        keygen="henn keygen",
    )


def _host(array: Any) -> npt.NDArray[Any]:
    getter = getattr(array, "get", None)  # CuPy arrays
    return np.asarray(getter() if callable(getter) else array)


def key_fingerprint(params: IntegerVectorParams, parts: Iterable[tuple[str, KeySwitchKey]]) -> str:
    """``iv-`` + 32 hex digits of SHA-256 over the parameter set and the named public matrices.

    The hash input is the domain tag, then canonical JSON of the scheme name, the parameter set
    (name and every value) and, per key in name order, its name, kind, shape and the SHA-256 of
    its matrix (int64, little-endian, C order). Labels (key ids inside keys) are not hashed: they
    hold the fingerprint itself.
    """
    described = []
    for name, key in sorted(parts, key=lambda item: item[0]):
        matrix = np.ascontiguousarray(_host(key.matrix_t), dtype="<i8")
        described.append(
            {
                "name": name,
                "kind": key.kind,
                "source_columns": int(key.source_columns),
                "out_dim": int(key.out_dim),
                "label": key.label,
                "shape": [int(n) for n in matrix.shape],
                "sha256": hashlib.sha256(matrix.tobytes()).hexdigest(),
            }
        )
    if not described:
        raise InputError("a key fingerprint needs at least one public key matrix")
    header = {
        "scheme": "integer-vector",
        "parameters": {
            "name": params.name,
            "values": {name: getattr(params, name) for name in PARAMETER_FIELDS},
        },
        "keys": described,
    }
    return fingerprints.fingerprint_id(FINGERPRINT_PREFIX, header)


def _core_keys(public: PublicKey, names: Sequence[str]) -> list[tuple[str, KeySwitchKey]]:
    parts = []
    for name in names:
        kind, _, rest = name.partition(":")
        if kind == "encryption" and rest.isdigit() and int(rest) in public.encryption:
            parts.append((name, public.encryption[int(rest)]))
        elif kind != "encryption" and name in public.evaluation.keys:
            parts.append((name, public.evaluation.keys[name]))
        else:
            raise KeyMismatchError(
                f"the public key {public.key_id} lacks its key {name!r}, which its fingerprint "
                "covers; it is incomplete or was tampered with. Get the owner's public key again."
            )
    return parts


def public_fingerprint(public: PublicKey) -> str:
    """The fingerprint recomputed from a public key's keygen-time matrices (its ``core``)."""
    if not public.core:
        raise KeyMismatchError(
            f"the public key {public.key_id} names no fingerprinted keys, so its key id cannot be "
            "verified; it was not made by keygen. Use the public key file the owner published."
        )
    return key_fingerprint(public.params, _core_keys(public, public.core))


def secret_fingerprint(secret: SecretKey) -> str:
    """The fingerprint recomputed from the public keys a secret key carries."""
    if not secret.public_core:
        raise KeyMismatchError(
            f"the secret key {secret.key_id} carries no public keys, so its key id cannot be "
            "verified; it was not made by keygen."
        )
    return key_fingerprint(secret.params, secret.public_core.items())


def fingerprint_keys(keys: Any) -> str:
    """Keygen's last step: the fingerprint of every key made so far becomes the key id.

    ``keys`` is the :class:`~hennframework.scheme.KeySet` under construction, whose keys carry
    :data:`PENDING_KEY_ID`; afterwards every label, the secret's copy of the public keys and the
    public key's ``core`` list are set.
    """
    secret: SecretKey = keys.secret
    public: PublicKey = keys.public
    names = [f"encryption:{dim}" for dim in sorted(public.encryption)]
    names += sorted(public.evaluation.keys)
    core = _core_keys(public, names)
    key_id = key_fingerprint(public.params, core)
    for _, key in core:
        if key.from_key_id == PENDING_KEY_ID:
            key.from_key_id = key_id
        if key.to_key_id == PENDING_KEY_ID:
            key.to_key_id = key_id
    public.core = tuple(names)
    public.key_id = secret.key_id = keys.key_id = key_id
    secret.public_core = dict(core)
    return key_id


def check_key_pair(secret: SecretKey) -> None:
    """Prove that ``T`` is the secret of the public keys the secret key carries.

    A key-switching matrix ``M = [K* - T A + E; A]`` satisfies ``[I, T] M = K* + E`` with
    ``|E| <= e_bound``; with any other ``T`` the difference is ``(T - T') A``, far larger. So a
    secret key file whose ``T`` was paired with someone else's public keys is refused.
    """
    params = secret.params
    powers = gadget_powers(params)
    checked = 0
    for name, key in secret.public_core.items():
        rows = key.out_dim
        if key.kind == "encryption":
            source = np.eye(rows, dtype=I64)
        elif key.kind == "product":
            source = product_key_matrix(secret.t_for(rows))
        else:  # keygen makes only the two kinds above
            continue
        matrix = np.ascontiguousarray(_host(key.matrix_t), dtype=I64).T.view(U64)
        expanded = (source.astype(I64).view(U64)[:, :, None] * powers[None, None, :]).reshape(
            rows, -1
        )
        if matrix.shape != (rows + params.k, expanded.shape[1]):
            raise KeyMismatchError(f"the public key {name!r} has the wrong shape for this secret")
        # [I, T] M = top + T A: cheap in this form, and it wraps modulo 2**64 on purpose
        t_matrix = np.ascontiguousarray(secret.t_for(rows), dtype=I64).view(U64)
        error = (matrix[:rows] + t_matrix @ matrix[rows:] - expanded).view(I64)
        if error.size and max(int(error.max()), -int(error.min())) > params.e_bound:
            raise KeyMismatchError(
                f"the secret key's T does not belong to the public key {name!r} it carries "
                f"(key {secret.key_id}): the pair was mixed up or tampered with. Use the secret "
                "key file that `henn keygen` wrote for this key."
            )
        checked += 1
    if not checked:
        raise KeyMismatchError(
            f"the secret key {secret.key_id} carries no encryption or product key to check T "
            "against; it was not made by keygen."
        )


def gadget_powers(params: IntegerVectorParams) -> npt.NDArray[np.uint64]:
    """B**d modulo 2**64 for d in 0..l-1 (uint64, wrapping; read-only, made once per base)."""
    return _gadget_powers(params.base, params.digits)


@functools.lru_cache(maxsize=16)
def _gadget_powers(base: int, digits: int) -> npt.NDArray[np.uint64]:
    powers = np.array([pow(base, d, 1 << 64) for d in range(digits)], dtype=U64)
    powers.flags.writeable = False
    return powers


def build_switch_matrix(
    source_key: npt.NDArray[np.int64],
    target_t: npt.NDArray[np.int64],
    params: IntegerVectorParams,
    rng: RandomSource,
) -> npt.NDArray[np.int64]:
    """``M = [K* - T' A + E; A]`` modulo 2**64, for source key K (rows x D) and target [I, T']."""
    rows, source_cols = source_key.shape
    if target_t.shape[0] != rows:
        raise InputError("target key rows must match the source key rows")
    digits = params.digits
    powers = gadget_powers(params)
    width = source_cols * digits
    # built in place in the result (uint64 arithmetic wraps modulo 2**64 on purpose), so a key
    # takes about twice its size while it is made, not six times
    matrix = np.empty((rows + params.k, width), dtype=U64)
    top = matrix[:rows]
    np.multiply(
        source_key.astype(I64, copy=False).view(U64)[:, :, None],
        powers[None, None, :],
        out=top.reshape(rows, source_cols, digits),
    )
    a_matrix = rng.integers(-params.a_bound, params.a_bound, (params.k, width))
    matrix[rows:] = a_matrix.view(U64)
    top += rng.integers(-params.e_bound, params.e_bound, (rows, width)).view(U64)
    top -= (target_t.astype(I64, copy=False) @ a_matrix).view(U64)  # small: exact in int64
    return matrix.view(I64)


def product_key_matrix(t_matrix: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The tensor key of the slotwise product for S = [I_m, T] (m x (m + m k + k**2)).

    Slot i of ``(S c1) * (S c2)`` is ``c1_i c2_i + sum_j T_ij (c1_i c2_{m+j} + c1_{m+j} c2_i)
    + sum_{j,j'} T_ij T_ij' c1_{m+j} c2_{m+j'}``; the columns follow ``tensor_product_entries``.
    """
    m, k = t_matrix.shape
    key = np.zeros((m, m + m * k + k * k), dtype=I64)
    key[np.arange(m), np.arange(m)] = 1
    for i in range(m):
        key[i, m + i * k : m + (i + 1) * k] = t_matrix[i]
        key[i, m + m * k :] = np.outer(t_matrix[i], t_matrix[i]).reshape(-1)
    return key


def dot_switched_columns(m: int, k: int) -> list[int]:
    """The entries of ``vec(c1 c2^T)`` (``n = m + k`` squared, row major) whose inner-product
    key weights hold a secret: every entry but the ``m x m`` block of the two tops.

    With ``S = [I, T]``, ``S^T H S = [[H, H T], [T^T H, T^T H T]]``: the top block is ``H``
    itself, public, so ``sum H_ij round(top1_i top2_j / w)`` goes into the result as it is and
    only the ``2 m k + k**2`` entries listed here are key-switched (for m = 64, k = 1: 129 of
    4,225)."""
    n = m + k
    return [a * n + b for a in range(n) for b in range(n) if a >= m or b >= m]


def dot_key_matrix(
    t_matrix: npt.NDArray[np.int64], weight: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """The switched entries (``dot_switched_columns``) of vec(S^T H S) for S = [I, T], a 1 x
    (2 m k + k**2) row: ``H T`` (row i: the entries ``top1_i bot2_j``), then for each bottom
    ``j`` of the left ciphertext ``(T^T H)_j`` and ``(T^T H T)_j`` (the entries ``bot1_j c2``).
    Exact (int64 where no partial sum can pass 2**62, else Python integers), each entry checked
    below 2**62; ``m**2 k`` products, not ``m**3``.
    """
    m, k = t_matrix.shape
    largest_h = int(np.abs(weight).max(initial=0))
    largest_t = int(np.abs(t_matrix).max(initial=0))
    # every partial sum of T^T H T is below m**2 |H| |T|**2: int64 is exact where that is
    # below 2**62 (the usual case), Python integers otherwise
    exact_type: Any = I64 if m * m * largest_h * largest_t**2 < 1 << 62 else object
    t = t_matrix.astype(exact_type, copy=False)
    h = weight.astype(exact_type, copy=False)
    h_t = h @ t  # m x k
    t_h = t.T @ h  # k x m
    t_h_t = t_h @ t  # k x k
    parts = [h_t.reshape(-1)]
    for j in range(k):
        parts += [t_h[j], t_h_t[j]]
    flat = np.concatenate(parts).reshape(1, -1)
    if max((abs(int(v)) for v in flat.ravel()), default=0) >= 1 << 62:
        raise InputError("the weight matrix H is too large: vec(S^T H S) exceeds 62 bits")
    result: npt.NDArray[np.int64] = flat.astype(I64)
    return result


def key_part(
    key: KeySwitchKey, name: str, rows: Callable[[], Any], source_columns: int
) -> KeySwitchKey:
    """The key for some of ``key``'s source entries: the rows ``rows()`` (a slice or an index
    array: the digit rows of those entries) of ``M^T``, made once per key and kept with it
    (``kept_with``; ``name`` tells the parts apart).

    Products switch only the tensor entries whose key weights hold a secret; their keys carry
    the other entries' rows too (as do inner-product keys made before those switched only such
    entries), and this is how those keys are read.
    """
    part: KeySwitchKey = kept_with(
        key, "_parts", name, key.matrix_t, _make_key_part, key, rows, source_columns
    )
    return part


def _make_key_part(key: KeySwitchKey, rows: Callable[[], Any], source_columns: int) -> KeySwitchKey:
    matrix_t = key.matrix_t[rows()]
    flags = getattr(matrix_t, "flags", None)
    if flags is not None and hasattr(flags, "writeable"):
        flags.writeable = False
    return KeySwitchKey(
        kind=key.kind,
        source_columns=source_columns,
        out_dim=key.out_dim,
        matrix_t=matrix_t,
        from_key_id=key.from_key_id,
        to_key_id=key.to_key_id,
        label=key.label,
    )


_T = TypeVar("_T")


def kept_with(
    owner: Any, cache: str, name: Hashable, source: Any, build: Callable[..., _T], *args: Any
) -> _T:
    """``build(*args)``, made once and kept in ``owner``'s ``cache`` dict under ``name``, and
    made again only if ``source`` (the array it is derived from) has been replaced by another
    object: the parts of a key the hot paths read on every call (a product key's switched rows,
    the secret key's decryption matrices). No closure per call: ``build`` takes ``args``."""
    kept: dict[Hashable, tuple[Any, _T]] | None = owner.__dict__.get(cache)
    entry = None if kept is None else kept.get(name)
    if entry is not None and entry[0] is source:
        return entry[1]
    value = build(*args)
    owner.__dict__.setdefault(cache, {})[name] = (source, value)
    return value


def matrix_digest(matrix: npt.NDArray[Any]) -> str:
    """A short content hash naming a plaintext matrix (G or H) in evaluation-key names."""
    data = np.ascontiguousarray(matrix.astype(I64))
    return hashlib.sha256(repr(data.shape).encode() + data.tobytes()).hexdigest()[:16]


def to_backend_key(
    backend: ArrayBackend,
    kind: str,
    matrix: npt.NDArray[np.int64],
    source_columns: int,
    out_dim: int,
    from_key_id: str,
    to_key_id: str,
    label: str = "",
) -> KeySwitchKey:
    matrix_t = backend.asarray(np.ascontiguousarray(matrix.T), dtype="int64")
    flags = getattr(matrix_t, "flags", None)
    if flags is not None and hasattr(flags, "writeable"):
        # Keys never change after generation; read-only lets backends cache derived forms safely.
        flags.writeable = False
    return KeySwitchKey(
        kind=kind,
        source_columns=source_columns,
        out_dim=out_dim,
        matrix_t=matrix_t,
        from_key_id=from_key_id,
        to_key_id=to_key_id,
        label=label,
    )
