"""Parameter sets of the CKKS plugin, each at 128-bit classical security per the HE Standard.

CKKS (Cheon, Kim, Kim, Song 2017) on Microsoft SEAL, reached through TenSEAL's ``sealapi``.
A parameter set fixes the ring degree ``N`` (``N/2`` complex slots, used as real slots here) and a
chain of RNS primes ``q_0, q_1, ..., q_L, P``:

* ``q_0`` (the first prime) holds the result after the last rescale: values up to about
  ``2**(bits(q_0) - scale_bits - 1)`` in magnitude survive (the "headroom");
* ``q_1 .. q_L`` are dropped one per multiplication (rescaling); ``L`` is the multiplicative depth
  a fresh ciphertext can carry, and a ciphertext's *levels left* is how many are still there;
* ``P`` (the last prime) is the special prime used only inside key switching.

Magnitude limit. A ciphertext at level ``l`` and scale ``s`` decrypts to the right value only while
``|value| * s < Q_l / 2`` with ``Q_l = q_0 * ... * q_l`` (beyond, the centred remainder wraps to a
wrong number): ``|value| < 2**(bits(Q_l) - scale_bits - 1)`` about, so at level 0 the headroom
above and far more at the upper levels. Every CKKS tensor carries a bound on ``|value|`` and the
plugin refuses any result whose bound reaches its ciphertext's limit (see
:mod:`hennframework_ckks.tensor`).

Security: the HomomorphicEncryption.org standard (Albrecht et al. 2018, Table 1, ternary secret
``{-1, 0, 1}``, the distribution SEAL samples) allows at most 27 / 54 / 109 / 218 / 438 / 881 bits of
total coefficient modulus (all primes, ``P`` included) for N = 1024 / 2048 / 4096 / 8192 / 16384 /
32768 at 128-bit classical security (the uniform and Gaussian secret columns give 29 / 56 / 111 /
220 / 440 / 883). SEAL encodes the same ternary table in ``CoeffModulus::MaxBitCount(N,
sec_level_type::tc128)`` and refuses any context above it; this plugin keeps that check on (every
context is created with ``sec_level_type.tc128``) and also checks the totals itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hennframework.plugin import InputError, ParameterSet

__all__ = [
    "HE_STANDARD_MAX_BITS_128",
    "PARAMETER_SETS",
    "CKKSParams",
    "get_params",
]

#: HE Standard, Table 1 (ternary secret), 128-bit classical security: max log2(q * P) per N.
HE_STANDARD_MAX_BITS_128: Mapping[int, int] = {
    1024: 27,
    2048: 54,
    4096: 109,
    8192: 218,
    16384: 438,
    32768: 881,
}

SECURITY_NOTE = (
    "128-bit classical security per the HomomorphicEncryption.org standard (Albrecht et al. "
    "2018, Table 1, ternary secret: at most {limit} bits of coefficient modulus for N = {n}); "
    "this set uses {total} bits. SEAL enforces the same limit (sec_level_type.tc128)."
)


@dataclass(frozen=True)
class CKKSParams:
    """One CKKS configuration.

    ``coeff_bits`` lists the bit sizes of ``q_0, ..., q_L, P`` in that order (SEAL's
    convention: the last prime is the special prime). ``scale_bits`` is log2 of the scale of fresh
    ciphertexts; the data primes ``q_1 .. q_L`` should have about that many bits so that rescaling
    keeps the scale stable (this plugin tracks the exact scale anyway).
    """

    name: str
    poly_modulus_degree: int
    coeff_bits: tuple[int, ...]
    scale_bits: int
    description: str = ""

    def __post_init__(self) -> None:
        problems = []
        n = self.poly_modulus_degree
        if n not in HE_STANDARD_MAX_BITS_128:
            problems.append(
                f"poly_modulus_degree must be one of {sorted(HE_STANDARD_MAX_BITS_128)}"
            )
        elif self.total_bits > HE_STANDARD_MAX_BITS_128[n]:
            problems.append(
                f"{self.total_bits} bits of coefficient modulus exceed the {HE_STANDARD_MAX_BITS_128[n]} "
                f"bits that 128-bit security allows at N = {n}"
            )
        if len(self.coeff_bits) < 3:
            problems.append("coeff_bits needs at least q_0, one data prime and the special prime")
        if any(not 20 <= b <= 60 for b in self.coeff_bits):
            problems.append("every prime must have 20 to 60 bits (SEAL's limits, with margin)")
        if len(self.coeff_bits) >= 3 and self.coeff_bits[0] <= self.scale_bits:
            problems.append(
                "q_0 must be larger than the scale, or no value survives the last rescale"
            )
        if not 16 <= self.scale_bits <= 59:
            problems.append("scale_bits must be in 16..59")
        if problems:
            raise InputError(
                f"invalid CKKS parameter set {self.name!r}: " + "; ".join(problems) + "."
            )

    # -- derived quantities ------------------------------------------------------------------
    @property
    def total_bits(self) -> int:
        return sum(self.coeff_bits)

    @property
    def max_bits(self) -> int:
        return HE_STANDARD_MAX_BITS_128[self.poly_modulus_degree]

    @property
    def slots(self) -> int:
        return self.poly_modulus_degree // 2

    @property
    def levels(self) -> int:
        """Multiplicative depth of a fresh ciphertext (number of data primes ``q_1 .. q_L``)."""
        return len(self.coeff_bits) - 2

    @property
    def scale(self) -> float:
        return float(2**self.scale_bits)

    @property
    def headroom(self) -> float:
        """Largest |value| a ciphertext at the last level holds without wrapping (about)."""
        return float(2 ** (self.coeff_bits[0] - self.scale_bits - 1))

    @property
    def error_allowance(self) -> float:
        """What the magnitude bounds allow for the error one operation adds, in value units.

        A fresh encryption's error and one rescale's have a standard deviation of about
        ``N / (6 * scale)`` per slot (measured, docs/plugins-ckks.md); 24 standard deviations of a
        Gaussian are never reached in practice. (A plaintext factor's encoding error, which
        multiplies the values, is bounded separately.)
        """
        return 4.0 * self.poly_modulus_degree / self.scale

    @property
    def security_bits(self) -> int:
        return 128

    @property
    def security_note(self) -> str:
        return SECURITY_NOTE.format(
            limit=self.max_bits, n=self.poly_modulus_degree, total=self.total_bits
        )

    def describe(self) -> str:
        return (
            f"N = {self.poly_modulus_degree} ({self.slots} slots), primes {list(self.coeff_bits)} "
            f"({self.total_bits} of {self.max_bits} bits), scale 2^{self.scale_bits}, "
            f"{self.levels} level{'s' if self.levels != 1 else ''}, values up to ~{self.headroom:g} "
            "after the last rescale"
        )

    def as_parameter_set(self) -> ParameterSet:
        return ParameterSet(
            name=self.name,
            scheme="ckks",
            description=f"{self.description} [{self.describe()}]",
            security_bits=self.security_bits,
            security_note=self.security_note,
            values={
                "poly_modulus_degree": self.poly_modulus_degree,
                "coeff_bits": list(self.coeff_bits),
                "scale_bits": self.scale_bits,
                "levels": self.levels,
                "slots": self.slots,
                "headroom": self.headroom,
            },
        )


PARAMETER_SETS: dict[str, CKKSParams] = {
    "n4096": CKKSParams(
        name="n4096",
        poly_modulus_degree=4096,
        coeff_bits=(27, 22, 60),
        scale_bits=22,
        description="Small and fast: 1 level (one product); error std 1.7e-4 per operation; tests.",
    ),
    "n8192": CKKSParams(
        name="n8192",
        poly_modulus_degree=8192,
        coeff_bits=(33, 25, 25, 25, 25, 25, 60),
        scale_bits=25,
        description="5 levels: encrypted inference through two layers; error std 4e-5 per operation.",
    ),
    "n16384": CKKSParams(
        name="n16384",
        poly_modulus_degree=16384,
        coeff_bits=(38, *([28] * 12), 60),
        scale_bits=28,
        description=(
            "12 levels: one training step of a two-layer network between owner refreshes "
            "(11 levels for the XOR network); error std 1e-5 per operation."
        ),
    ),
    "n16384-9": CKKSParams(
        name="n16384-9",
        poly_modulus_degree=16384,
        coeff_bits=(38, *([28] * 9), 60),
        scale_bits=28,
        description=(
            "9 levels: the n16384 ring with a shorter chain, for networks whose training step "
            "uses at most 7 levels (the bag-of-words sentiment network) with room for the "
            "refresher's margin; keys 40 % smaller than n16384's, so a model's key set holds "
            "7 rotation keys in 64 MB; error std 1e-5 per operation."
        ),
    ),
}

#: Why the special prime is 60 bits in every set: key switching (relinearisation, rotations)
#: adds noise of about ``N * sigma * q_max / P``; with ``P`` as small as the data primes that is
#: 1e-2 at scale 2^25 (measured), with ``P = 2^60`` it is negligible.


def get_params(name: str | CKKSParams | ParameterSet | None) -> CKKSParams:
    """Look up a parameter set by name (``None``: ``n16384``)."""
    if isinstance(name, CKKSParams):
        return name
    if isinstance(name, ParameterSet):
        name = name.name
    key = name or "n16384"
    if key not in PARAMETER_SETS:
        raise InputError(
            f"unknown CKKS parameter set {key!r}; choose one of {', '.join(PARAMETER_SETS)} "
            "or build a hennframework_ckks.CKKSParams(...)."
        )
    return PARAMETER_SETS[key]
