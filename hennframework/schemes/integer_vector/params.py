"""Parameter sets of the integer-vector scheme, each with an honest security statement.

None of the named sets is secure. With no modulus and ``S = [I, T]``, the top of a ciphertext is
``w x + e - T c_bottom`` with ``c_bottom`` small, so ``round(c[:m] / w)`` recovers ``x`` without any
key; and the public key leaks ``T``. (Zhou & Wornell's scheme is LWE-like only with a modulus and
a large ``k``; see docs/scheme.md (Security) and ../shared/notes/integer-vector-facts.md.) The design
leaves room for such a set: ``modulus`` is carried and must be ``None`` for now.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import asdict, dataclass

from hennframework._callsite import user_stacklevel
from hennframework.exceptions import InputError, InsecureParametersWarning
from hennframework.scheme import ParameterSet

__all__ = ["PARAMETER_SETS", "IntegerVectorParams", "get_params"]

INSECURE_NOTE = (
    "INSECURE: no modulus, so round(c[:m] / w) recovers the plaintext without the key, and the "
    "public key leaks T. Use for research, teaching and speed studies only."
)
INT_BITS = 62  # every stored value is kept below 2**62 in magnitude (int64 with headroom)


@dataclass(frozen=True)
class IntegerVectorParams:
    """Numbers that define one instance of the scheme.

    w: the plaintext multiplier (S c = w x + e); decryption is exact while |e| < w/2.
    scale: fixed-point factor for real values (x is stored as round(x * scale)).
    k: columns of T (S = [I_m, T]); t_bound, a_bound, e_bound: T, A and E entries are uniform on
    [-bound, bound].
    gadget_bits: b in the gadget base 2**b; c* holds ceil(64 / b) balanced digits per entry.
    """

    name: str
    w: int
    scale: int
    k: int
    t_bound: int
    a_bound: int
    e_bound: int
    gadget_bits: int
    description: str = ""
    modulus: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.w < 2:
            problems.append("w must be at least 2")
        if self.scale < 1:
            problems.append("scale must be a positive integer")
        if not 1 <= self.gadget_bits <= 32:
            problems.append("gadget_bits must be in 1..32")
        if self.k < 1:
            problems.append("k must be at least 1")
        if min(self.t_bound, self.a_bound, self.e_bound) < 0:
            problems.append("bounds must be non-negative")
        if self.modulus is not None:
            problems.append(
                "a modulus is not implemented yet (reserved for a future LWE-secure set)"
            )
        if self.w.bit_length() > 56:
            problems.append("w above 2**56 leaves no room for values in int64")
        odd = self.w >> ((self.w & -self.w).bit_length() - 1)
        if odd * self.scale >= 1 << 32 and self.scale > 1:
            problems.append("the odd part of w * scale must be below 2**32 (use a power-of-two w)")
        if problems:
            raise InputError(f"invalid parameter set {self.name!r}: " + "; ".join(problems) + ".")

    # -- derived quantities ------------------------------------------------------------------
    @property
    def base(self) -> int:
        return 1 << self.gadget_bits

    @property
    def digit_bound(self) -> int:
        """Largest |digit| in the gadget decomposition (balanced digits; sign-magnitude for b=1)."""
        return 1 if self.gadget_bits == 1 else self.base // 2

    @functools.cached_property
    def digits(self) -> int:
        """Digits per entry: enough to represent any |c| < 2**62 (a loop: computed once)."""
        base = self.base
        # balanced digits lie in [-B/2, B/2 - 1]: the positive side reaches B/2 - 1 per digit
        # (sign-magnitude bits for b = 1 reach 1 per digit on both sides)
        per_digit = 1 if self.gadget_bits == 1 else base // 2 - 1
        count, reach = 1, per_digit
        while reach < (1 << INT_BITS) - 1:
            count += 1
            reach = reach * base + per_digit
        return count

    @functools.cached_property
    def key_row_norm(self) -> int:
        """max over rows of sum |S_ij| for S = [I, T]: 1 + k * t_bound (kept: every decryption
        reads it)."""
        return 1 + self.k * self.t_bound

    @functools.cached_property
    def decryption_kernel_limits(self) -> tuple[int, int]:
        """What the compiled decryption needs, read together on every call: ``ceil(2**62 /
        key_row_norm)`` and ``s`` where ``w = 2**s`` (a limit of 0, which no ciphertext passes,
        where w is not a power of two: the kernel rounds by a shift). A ciphertext whose
        coefficients are all below the limit has ``|S c| <= coefficient bound x key_row_norm <
        2**62`` (for integers, ``c r < L`` exactly when ``c < ceil(L / r)``), so decryption's
        int64 arithmetic cannot wrap."""
        shift = self.decryption_rounding[1]
        if shift is None:
            return 0, 0
        return -(-(1 << INT_BITS) // self.key_row_norm), shift

    @functools.cached_property
    def decryption_rounding(self) -> tuple[int, int | None]:
        """``w // 2`` and, for a power of two ``w = 2**s``, ``s`` (None otherwise): decryption's
        ``(S c + w // 2) // w`` is then ``(S c + w // 2) >> s`` (kept: read on every call)."""
        shift = self.w.bit_length() - 1
        return self.w // 2, (shift if self.w == 1 << shift else None)

    @functools.cached_property
    def max_plaintext(self) -> int:
        """Largest |x| (integer plaintext) that a fresh encryption accepts."""
        return ((1 << INT_BITS) - 1 - self.fresh_noise_public(256)) // self.w // 4

    def fresh_noise_public(self, m: int) -> int:
        """Noise bound of a public-key encryption of an m-vector: e0 + E c*."""
        return self.e_bound + self.e_bound * self.digit_bound * m * self.digits

    def keyswitch_noise(self, source_dim: int) -> int:
        """Noise added by one key switch whose source key has ``source_dim`` columns."""
        return self.e_bound * self.digit_bound * source_dim * self.digits

    def noise_budget_bits(self, noise: float) -> float:
        """Bits left before the noise bound reaches w/2."""
        if noise <= 0:
            return math.log2(self.w / 2)
        return math.log2(self.w / 2) - math.log2(noise)

    def as_parameter_set(self) -> ParameterSet:
        return ParameterSet(
            name=self.name,
            scheme="integer-vector",
            description=self.description,
            security_bits=None,
            security_note=INSECURE_NOTE,
            values={k: v for k, v in asdict(self).items() if k not in ("name", "description")},
        )


PARAMETER_SETS: dict[str, IntegerVectorParams] = {
    "seed": IntegerVectorParams(
        name="seed",
        w=2**25,
        scale=1000,
        k=1,
        t_bound=10,
        a_bound=10,
        e_bound=10,
        gadget_bits=1,
        description="Trask's 2017 notebook: w = 2**25, scaling factor 1000, bounds 10, k = 1, bits.",
    ),
    "vhe": IntegerVectorParams(
        name="vhe",
        w=2**40,
        scale=1000,
        k=1,
        t_bound=1000,
        a_bound=1000,
        e_bound=1000,
        gadget_bits=1,
        description="vhe.cpp (Yu, Lai, Payor): w = 2**40, bounds 1000, k = 1, bits; scale 1000 added.",
    ),
    "default": IntegerVectorParams(
        name="default",
        w=2**40,
        scale=2**12,
        k=1,
        t_bound=4,
        a_bound=4,
        e_bound=4,
        gadget_bits=8,
        description=(
            "Balanced for training: w = 2**40 (40 bits of noise room), fixed-point scale 2**12, "
            "small bounds so products add little noise, base-256 gadget (8 digits)."
        ),
    ),
}

_warned: set[str] = set()


def warn_insecure(params: IntegerVectorParams) -> None:
    """Warn once per process and parameter set that it gives no security."""
    if params.name in _warned:
        return
    _warned.add(params.name)
    warnings.warn(
        f"integer-vector parameter set {params.name!r} gives NO security: {INSECURE_NOTE} "
        "For real protection use a secure scheme plugin (e.g. --scheme ckks).",
        InsecureParametersWarning,
        stacklevel=user_stacklevel(),  # the user's line, whichever API they called
    )


def get_params(name: str | IntegerVectorParams | None) -> IntegerVectorParams:
    if isinstance(name, IntegerVectorParams):
        return name
    key = name or "default"
    if key not in PARAMETER_SETS:
        raise InputError(
            f"unknown integer-vector parameter set {key!r}; choose one of {', '.join(PARAMETER_SETS)} "
            "or build an IntegerVectorParams(...)."
        )
    return PARAMETER_SETS[key]
