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
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from hennframework.backend import Array, ArrayBackend
from hennframework.exceptions import InputError, KeyMismatchError
from hennframework.randomness import RandomSource
from hennframework.schemes.integer_vector.params import IntegerVectorParams

__all__ = [
    "EvaluationKeys",
    "KeySwitchKey",
    "PublicKey",
    "SecretKey",
    "build_switch_matrix",
    "product_key_matrix",
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


def new_key_id(rng: RandomSource) -> str:
    return rng.token_hex(8)


def gadget_powers(params: IntegerVectorParams) -> npt.NDArray[np.uint64]:
    """B**d modulo 2**64 for d in 0..l-1 (uint64, wrapping)."""
    return np.array([pow(params.base, d, 1 << 64) for d in range(params.digits)], dtype=U64)


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
    expanded = (source_key.astype(I64).view(U64)[:, :, None] * powers[None, None, :]).reshape(
        rows, source_cols * digits
    )
    a_matrix = rng.integers(-params.a_bound, params.a_bound, (params.k, source_cols * digits))
    e_matrix = rng.integers(-params.e_bound, params.e_bound, (rows, source_cols * digits))
    t_a = (target_t.astype(I64) @ a_matrix).view(U64)  # small: exact in int64
    top = expanded + e_matrix.view(U64) - t_a  # wraps modulo 2**64 on purpose
    return np.concatenate([top.view(I64), a_matrix], axis=0)


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


def dot_key_matrix(
    s_left: npt.NDArray[np.int64], weight: npt.NDArray[np.int64], s_right: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """vec(S1^T H S2) as a 1 x (n1 n2) row (entries are exact Python-int checked)."""
    product = s_left.T.astype(object) @ weight.astype(object) @ s_right.astype(object)
    flat = product.reshape(1, -1)
    if max((abs(int(v)) for v in flat.ravel()), default=0) >= 1 << 62:
        raise InputError("the weight matrix H is too large: vec(S1^T H S2) exceeds 62 bits")
    result: npt.NDArray[np.int64] = flat.astype(I64)
    return result


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
