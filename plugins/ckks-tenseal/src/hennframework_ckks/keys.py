"""CKKS keys: the owner's secret key and the public material a party computes with.

* :class:`CKKSPublicKey` holds everything a party needs and nothing more: the public encryption
  key, the relinearisation key (ciphertext products) and the rotation (Galois) keys for a chosen
  set of steps (sums over slots, packing changes). It evaluates: tensors keep a reference to it.
* :class:`CKKSSecretKey` adds SEAL's secret key (owner only) and decrypts.

Randomness: SEAL draws key and encryption randomness from its own CSPRNG (Blake2xb, seeded from
the operating system's ``std::random_device`` for every key and every encryption). It cannot be
seeded safely through these bindings: a seeded SEAL generator factory hands out the *same*
stream to every consumer, so the secret key, the public key's mask and every relinearisation
key component would reuse randomness, which breaks the scheme even for someone who does not know
the seed. ``keygen(seed=...)`` therefore refuses a seed (see ``CKKSScheme.keygen``).

Key ids are fingerprints (:func:`key_fingerprint`): ``ckks-`` and the first 32 hex digits of a
SHA-256 over the parameter set, the rotation steps and SEAL's serialisation of the public key,
the relinearisation key and the rotation keys - all of them made at keygen, none added later. A
public key keeps its serialised parts, so what is written is byte for byte what was hashed;
every load recomputes the fingerprint and refuses a key whose id differs, and loading a secret key
also checks that it decrypts what its public key encrypts.

Sizes in memory (SEAL keeps keys uncompressed): one key-switching key (relinearisation, or one
rotation step) is ``L * 2 * (L + 1) * N * 8`` bytes with ``L`` data levels + ``q_0``, e.g. 41 MB
at N = 16384 with 13 primes before ``P``, 7.3 MB at N = 8192 with 7. :func:`generate_keys` writes
them in SEAL's seeded form (the uniformly random half of each component replaced by its seed),
in the compact form of :func:`~hennframework_ckks._seal.compact_seal_bytes`: 11.7 MB per key at
N = 16384, against 14.1 MB as SEAL's zstd writes it and 28.1 MB in the full form that earlier
versions wrote (both still load).

Rotation keys cost the most, so a key set can hold only those a model uses: trial runs under a
key from :func:`record_rotations` find them (see ``CKKSCodec.model_rotation_steps``), and
:func:`powers_of_two_through` turns them into the steps to make keys for, or
:func:`choose_rotation_keys` into at most a given number of them (every rotation is then the
shortest sum of the chosen steps).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import struct
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from hennframework.plugin import InputError, KeyMismatchError, SerializationError, fingerprints

from hennframework_ckks._seal import (
    SealContext,
    get_context,
    sa,
    seal_from_bytes,
    seal_to_bytes,
)
from hennframework_ckks.params import CKKSParams, get_params

__all__ = [
    "CKKSPublicKey",
    "CKKSSecretKey",
    "check_key_id",
    "choose_rotation_keys",
    "generate_keys",
    "key_fingerprint",
    "powers_of_two_through",
    "record_rotations",
    "rotation_keys_within",
    "rotation_steps",
]

#: What the public material of a key set made for one model (public, relinearisation and rotation
#: keys, as ``henn keygen --for`` writes them) stays within by default, in bytes: what a party
#: downloads and holds in memory.
PUBLIC_MATERIAL_BUDGET = 64_000_000

_PUBLIC_MAGIC = b"HENNCKKS-PUBKEY\x01"
_SECRET_MAGIC = b"HENNCKKS-SECKEY\x01"

FINGERPRINT_PREFIX = "ckks-"
#: What the fingerprint covers, in the public key's container (all made at keygen).
_PARTS = ("public_key", "relin_keys", "galois_keys")
_LEGACY_ID = re.compile(r"ckks-[0-9a-f]{16}")


def check_key_id(value: object, where: str) -> str:
    """``value`` if it is a CKKS key fingerprint; a clear error for the older random ids."""
    return fingerprints.check_key_id(
        value,
        where,
        prefix=FINGERPRINT_PREFIX,
        legacy=_LEGACY_ID,
        made_by="an older version of the CKKS plugin",
        keygen="henn --scheme ckks keygen",
    )


def key_fingerprint(params: CKKSParams, steps: Iterable[int], parts: Mapping[str, bytes]) -> str:
    """``ckks-`` + 32 hex digits of SHA-256 over the parameter set and the public key's parts.

    The hash input is the domain tag, then canonical JSON of the scheme name, the parameter set
    (name, ring degree, coefficient moduli bits, scale bits), the rotation steps and, per part
    (public key, relinearisation key, rotation keys if any), its length and SHA-256.
    """
    unknown = set(parts) - set(_PARTS)
    if unknown or "public_key" not in parts or "relin_keys" not in parts:
        raise SerializationError(
            f"a CKKS public key needs the parts public_key and relin_keys (and optionally "
            f"galois_keys), got {sorted(parts)}"
        )
    header = {
        "scheme": "ckks",
        "parameters": {
            "name": params.name,
            "poly_modulus_degree": params.poly_modulus_degree,
            "coeff_bits": list(params.coeff_bits),
            "scale_bits": params.scale_bits,
        },
        "rotation_steps": sorted(int(step) for step in steps),
        "parts": [
            [name, len(parts[name]), hashlib.sha256(parts[name]).hexdigest()]
            for name in _PARTS
            if name in parts
        ],
    }
    return fingerprints.fingerprint_id(FINGERPRINT_PREFIX, header)


def rotation_steps(slots: int, rotations: str | Iterable[int]) -> frozenset[int]:
    """The rotation steps to make keys for.

    ``"pow2"``: left rotations by 1, 2, 4, ..., slots/2 (every rotation is a product of these);
    ``"pow2+neg"``: also right rotations by powers of two (shorter rotation chains; a sum is
    replicated without a level with left rotations alone); ``"none"``: no rotation keys (sums
    over packed axes then fail with a clear error); or an explicit iterable of steps.
    """
    if isinstance(rotations, str):
        positive = {1 << k for k in range(slots.bit_length() - 1)}
        if rotations == "pow2":
            return frozenset(positive)
        if rotations == "pow2+neg":
            return frozenset(positive | {-p for p in positive})
        if rotations == "none":
            return frozenset()
        raise InputError(
            f"unknown rotations={rotations!r}; use 'pow2', 'pow2+neg', 'none' or a list of steps"
        )
    steps = set()
    for step in rotations:
        value = int(step)
        if value == 0 or abs(value) >= slots:
            raise InputError(
                f"rotation step {value} must be non-zero and below {slots} in magnitude"
            )
        steps.add(value)
    return frozenset(steps)


def powers_of_two_through(steps: Iterable[int]) -> frozenset[int]:
    """Left rotations by 1, 2, 4, ... up to the largest of ``steps`` (none for no steps).

    Every left rotation by at most that amount splits into these keys (its binary digits), so the
    set covers not only the rotations a trial run made but every shorter one: which diagonals a
    plaintext linear map needs, and so the differences between its baby steps, depend on which
    entries of the party's data are zero.
    """
    widest = max(steps, default=0)
    return frozenset(1 << bit for bit in range(int(widest).bit_length()))


def key_switching_key_bytes(params: CKKSParams) -> int:
    """About the size of one key-switching key (a rotation key or the relinearisation key) in
    the file, from above: SEAL's seeded form keeps one polynomial per data prime with a residue
    modulo every prime, special prime included; residues are uniform, so the compact form
    (:func:`~hennframework_ckks._seal.compact_seal_bytes`) stores each in about its prime's
    bits. Plus 2 % and 4 kB for the containers (measured: 11.7 MB at ``n16384``, estimated
    11.8)."""
    data_primes = len(params.coeff_bits) - 1
    residues = data_primes * params.poly_modulus_degree * params.total_bits / 8
    return math.ceil(residues * 1.02) + 4096


def rotation_keys_within(params: CKKSParams, budget: int = PUBLIC_MATERIAL_BUDGET) -> int:
    """How many rotation keys a model's key set can hold with its public material within
    ``budget`` bytes (at least 1): 4 at ``n16384`` (12 levels), 7 at ``n16384-9``, whose
    shorter chain makes every key 40 % smaller.

    >>> from hennframework_ckks.params import get_params
    >>> rotation_keys_within(get_params("n16384")), rotation_keys_within(get_params("n16384-9"))
    (4, 7)
    """
    key = key_switching_key_bytes(params)
    public = math.ceil(2 * params.poly_modulus_degree * params.total_bits / 8 * 1.02)
    return max(1, (budget - public - key) // key)


def choose_rotation_keys(
    slots: int,
    rotations: Mapping[int, int],
    most: int | None,
    reach: Iterable[int] = (),
) -> frozenset[int]:
    """At most ``most`` rotation steps to make keys for, for a run that rotates by each step of
    ``rotations`` (left, modulo ``slots``) as many times as it says.

    Every rotation key at ``n16384`` adds 11.7 MB to the public key, and a model's rotations
    are mostly a few steps repeated (a linear map's baby and giant steps) plus a few sums over
    slot bits. The candidates are the powers of two through the widest step of ``rotations``
    and ``reach`` (steps that only need to be possible, not cheap; see
    :func:`powers_of_two_through`). If they are at most ``most`` (None: no limit), they are the
    answer; otherwise this picks the ``most`` of them, 1 among them (so that every rotation can
    still be made, whatever the data), that make ``rotations`` with the fewest key switches:
    each rotation becomes the shortest sum of the chosen steps
    (:func:`~hennframework_ckks._seal.decompose_rotation`). Fewer keys, smaller files, more key
    switches per step.

    >>> sorted(choose_rotation_keys(8192, {8: 47, 128: 47, 1: 2, 2: 2, 4: 2, 4096: 1}, 3))
    [1, 8, 128]
    """
    if most is not None and most < 1:
        raise InputError(f"at least one rotation key is needed (got {most})")
    used = {step % slots: count for step, count in rotations.items() if step % slots}
    every = powers_of_two_through([*used, *(step % slots for step in reach)])
    if most is None or len(every) <= most:
        return every
    others = sorted(every - {1})
    best: tuple[int, tuple[int, ...]] | None = None
    for chosen in itertools.combinations(others, most - 1):
        descending = (*reversed(chosen), 1)
        cost = sum(count * power_of_two_rotations(step, descending) for step, count in used.items())
        if best is None or cost < best[0]:
            best = (cost, chosen)
    assert best is not None  # others has at least ``most`` elements here
    return frozenset({1, *best[1]})


def power_of_two_rotations(step: int, descending: Sequence[int]) -> int:
    """The fewest rotations by the steps ``descending`` (powers of two below the slot count,
    largest first, ending with 1) that make a left rotation by ``step`` (``0 <= step < slots``):
    the greedy count, as :func:`~hennframework_ckks._seal.rotation_distances` finds it by a
    breadth-first search over every residue.

    Greedy is shortest because each step divides the next (a canonical coin system), and going
    round the slots does not help: a sum ``step + t * slots`` needs ``t * slots / largest`` more
    rotations. Choosing a model's keys tries every subset of the candidate steps (924 for the
    sentiment network): 5 ms in all this way, 3.0 s with the search.

    >>> power_of_two_rotations(7, (4, 1)), power_of_two_rotations(2049, (2048, 8, 1))
    (4, 2)
    """
    count = 0
    for key in descending:
        count += step // key
        step %= key
    return count


class _RotationRecorder:
    """Stands in for a key's SEAL context during a trial run: counts the rotations by step and
    returns the ciphertext unrotated; everything else is the real
    context's. The trial's values are meaningless; its sequence of operations is the real one."""

    def __init__(self, context: SealContext) -> None:
        self._context = context
        self.pow2 = rotation_steps(context.slots, "pow2")
        self.calls: Counter[int] = Counter()  # every rotation the run asked for, by step

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def rotate(
        self, ct: Any, step: int, galois_keys: Any, available: frozenset[int], relin_keys: Any
    ) -> Any:
        step %= self._context.slots
        if step == 0:
            return ct
        self.calls[step] += 1
        return self._context.relin(ct, relin_keys)  # what a rotation returns, but unrotated


def record_rotations(public: CKKSPublicKey) -> Counter[int]:
    """Turn ``public`` into a trial key: from now on its tensors' rotations are recorded in the
    returned counter (how many times each left rotation step was asked for) instead of
    computed. For a throwaway key only (its results are wrong);
    :meth:`CKKSCodec.model_rotation_steps
    <hennframework_ckks.codec.CKKSCodec.model_rotation_steps>` makes one."""
    recorder = _RotationRecorder(public.context)
    public.context = recorder  # type: ignore[assignment]  # duck-typed: rotate() differs only
    # plan as a key with every power-of-two step would: a tensor chooses between plans by the
    # steps its key has, so a key with none would take a different (re-packing) path. A key
    # made with fewer steps plans for those (linear.rotation_cost), so its run may rotate
    # differently from the record; every rotation is still a sum of its steps
    public.rotation_steps = recorder.pow2
    return recorder.calls


class CKKSPublicKey:
    """Public key, relinearisation key and rotation keys of one key set (safe to share).

    ``parts``: SEAL's serialisation of the three (as read from a file); serialised here when not
    given. They are kept so that :meth:`to_bytes` writes exactly the bytes the fingerprint
    covers. ``key_id`` defaults to the fingerprint; a different one is refused.
    """

    def __init__(
        self,
        params: CKKSParams,
        public_key: Any,
        relin_keys: Any,
        galois_keys: Any,
        steps: frozenset[int],
        key_id: str | None = None,
        *,
        parts: Mapping[str, bytes] | None = None,
    ) -> None:
        self.params = params
        self.context: SealContext = get_context(params)
        self.public_key = public_key
        self.relin_keys = relin_keys
        self.galois_keys = galois_keys
        self.rotation_steps = steps
        if parts is None:
            parts = {
                "public_key": seal_to_bytes(public_key),
                "relin_keys": seal_to_bytes(relin_keys),
            }
            if steps:
                parts["galois_keys"] = seal_to_bytes(galois_keys)
        self._parts: dict[str, bytes] = dict(parts)
        #: The key id recomputed from the key's bytes (never taken from a label).
        self.fingerprint = key_fingerprint(params, steps, self._parts)
        if key_id is not None and key_id != self.fingerprint:
            raise KeyMismatchError(
                f"this CKKS public key is labelled {key_id}, but its fingerprint is "
                f"{self.fingerprint}: it is a different key under another key's id, or it was "
                "damaged. Do not use it; get the owner's public key again and check its "
                "fingerprint (`henn inspect`) against the one the owner published."
            )
        self.key_id = self.fingerprint
        self.encryptor = sa.Encryptor(self.context.seal, public_key)

    def __repr__(self) -> str:
        return (
            f"CKKSPublicKey(params={self.params.name!r}, key_id={self.key_id!r}, "
            f"rotation_steps={len(self.rotation_steps)})"
        )

    # -- (de)serialisation ----------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The public material in a self-describing container (safe to send to a party)."""
        parts = dict(self._parts)
        header = {
            "params": self.params.name,
            "poly_modulus_degree": self.params.poly_modulus_degree,
            "coeff_bits": list(self.params.coeff_bits),
            "scale_bits": self.params.scale_bits,
            "key_id": self.key_id,
            "rotation_steps": sorted(self.rotation_steps),
        }
        return _pack(_PUBLIC_MAGIC, header, parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> CKKSPublicKey:
        """Parse a public key and verify that its id is the fingerprint of its bytes."""
        header, parts = _unpack(_PUBLIC_MAGIC, data, "public key")
        key_id = check_key_id(header.get("key_id"), "the CKKS public key")
        params = _params_from_header(header)
        try:
            steps = frozenset(int(s) for s in header["rotation_steps"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SerializationError("the CKKS public key's rotation steps are malformed") from exc
        if ("galois_keys" in parts) != bool(steps):
            raise SerializationError("the CKKS public key's rotation keys do not match its steps")
        actual = key_fingerprint(params, steps, parts)
        if actual != key_id:  # before SEAL parses anything: a relabelled key goes no further
            raise KeyMismatchError(
                f"this CKKS public key is labelled {key_id}, but its fingerprint (recomputed from "
                f"its bytes) is {actual}: it is a different key under another key's id, or it was "
                "damaged. Do not use it; get the owner's public key again and check its "
                "fingerprint (`henn inspect`) against the one the owner published."
            )
        context = get_context(params)
        public_key = seal_from_bytes(sa.PublicKey, context, parts["public_key"], "public key")
        relin = seal_from_bytes(sa.RelinKeys, context, parts["relin_keys"], "relinearisation key")
        galois = (
            seal_from_bytes(sa.GaloisKeys, context, parts["galois_keys"], "rotation keys")
            if "galois_keys" in parts
            else sa.GaloisKeys()
        )
        return cls(params, public_key, relin, galois, steps, key_id, parts=parts)

    def size_bytes(self) -> dict[str, int]:
        """Serialised sizes of the public key, the relinearisation key and the rotation keys."""
        return {name: len(self._parts.get(name, b"")) for name in _PARTS}


class CKKSSecretKey:
    """The owner's secret key (with the public material). Never send this to a party."""

    def __init__(self, public: CKKSPublicKey, secret_key: Any) -> None:
        self.public = public
        self.secret_key = secret_key
        self.decryptor = sa.Decryptor(public.context.seal, secret_key)
        self.symmetric_encryptor = sa.Encryptor(public.context.seal, public.public_key, secret_key)

    @property
    def key_id(self) -> str:
        return self.public.key_id

    @property
    def params(self) -> CKKSParams:
        return self.public.params

    def __repr__(self) -> str:
        return f"CKKSSecretKey(params={self.params.name!r}, key_id={self.key_id!r})"

    def to_bytes(self) -> bytes:
        """Secret key *and* public material, for the owner's own storage only (protect the file)."""
        header = {"key_id": self.key_id, "params": self.params.name}
        return _pack(
            _SECRET_MAGIC,
            header,
            {"public": self.public.to_bytes(), "secret_key": seal_to_bytes(self.secret_key)},
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> CKKSSecretKey:
        """Parse a secret key: its public part's fingerprint is verified, and the secret must
        decrypt what that public key encrypts (so it cannot be paired with a foreign one)."""
        header, parts = _unpack(_SECRET_MAGIC, data, "secret key")
        if set(parts) != {"public", "secret_key"}:
            raise SerializationError("the CKKS secret key file's parts are incomplete")
        key_id = check_key_id(header.get("key_id"), "the CKKS secret key")
        public = CKKSPublicKey.from_bytes(parts["public"])
        if public.key_id != key_id:
            raise KeyMismatchError(
                f"the CKKS secret key file is labelled {key_id} but carries the public key "
                f"{public.key_id}: its parts belong to different key sets."
            )
        secret = seal_from_bytes(sa.SecretKey, public.context, parts["secret_key"], "secret key")
        key = cls(public, secret)
        key.check_pair()
        return key

    def check_pair(self) -> None:
        """Raise unless this secret key decrypts an encryption under its public key.

        A probe vector (slot i holds ``-1 + 2 i / slots``) is encrypted with the public key and
        decrypted; under the right secret the error is about 1e-3 at most, under any other it is
        of the order of the ciphertext modulus over the scale (measured at n4096: above 8e4 in
        every slot), so the threshold 0.1 separates the two.
        """
        context = self.public.context
        probe = np.linspace(-1.0, 1.0, context.slots)
        plain = context.encode(probe, context.top_level, 2.0**self.params.scale_bits)
        cipher = sa.Ciphertext()
        self.public.encryptor.encrypt(plain, cipher)
        decrypted = sa.Plaintext()
        self.decryptor.decrypt(cipher, decrypted)
        error = np.abs(context.decode(decrypted) - probe)
        if not np.isfinite(error).all() or float(error.max()) > 0.1:
            raise KeyMismatchError(
                f"this CKKS secret key does not belong to the public key {self.key_id} it is "
                "stored with (it cannot decrypt what that key encrypts): the key file was mixed "
                "up or tampered with. Use the secret key file `henn keygen` wrote for this key."
            )


def generate_keys(params: CKKSParams, rotations: str | Iterable[int] = "pow2") -> CKKSSecretKey:
    """A fresh key set: secret key, public key, relinearisation key and rotation keys.

    The relinearisation and rotation keys are made in SEAL's *seeded* form: each key-switching
    component ``(b, a)`` is serialised as ``b`` and the seed of its uniformly random ``a``, which
    halves their files (at ``n16384`` 14.1 MB instead of 28 MB per key). ``a`` is public in the
    full form too, so the seed reveals nothing more; loading the bytes expands it again. The
    objects computed with are loaded from exactly those bytes, which the fingerprint covers.
    """
    context = get_context(params)
    generator = sa.KeyGenerator(context.seal)
    secret = generator.secret_key()
    public_key = sa.PublicKey()
    generator.create_public_key(public_key)  # SEAL's bindings offer no seeded public key
    parts = {
        "public_key": seal_to_bytes(public_key),
        "relin_keys": seal_to_bytes(generator.create_relin_keys()),
    }
    relin = seal_from_bytes(sa.RelinKeys, context, parts["relin_keys"], "relinearisation key")
    steps = rotation_steps(context.slots, rotations)
    galois = sa.GaloisKeys()
    if steps:
        elements = sorted({context.galois_elt(step) for step in steps})
        parts["galois_keys"] = seal_to_bytes(generator.create_galois_keys(elements))
        galois = seal_from_bytes(sa.GaloisKeys, context, parts["galois_keys"], "rotation keys")
    public = CKKSPublicKey(params, public_key, relin, galois, steps, parts=parts)
    return CKKSSecretKey(public, secret)  # the key id is the fingerprint of ``parts``


# -- container: magic, header length, JSON header with part lengths, parts, SHA-256 ----------
def _pack(magic: bytes, header: dict[str, Any], parts: dict[str, bytes]) -> bytes:
    header = dict(header)
    header["parts"] = [[name, len(blob)] for name, blob in parts.items()]
    encoded = json.dumps(header, sort_keys=True).encode()
    body = magic + struct.pack("<Q", len(encoded)) + encoded + b"".join(parts.values())
    return body + hashlib.sha256(body).digest()


def _unpack(magic: bytes, data: bytes, what: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    if len(data) < len(magic) + 8 + 32 or not data.startswith(magic):
        raise SerializationError(
            f"this is not a hennframework CKKS {what} (wrong magic or too short)"
        )
    body, digest = data[:-32], data[-32:]
    if hashlib.sha256(body).digest() != digest:
        raise SerializationError(f"the {what} is corrupted or was modified (checksum mismatch)")
    offset = len(magic)
    (length,) = struct.unpack_from("<Q", body, offset)
    offset += 8
    try:
        header = json.loads(body[offset : offset + length])
    except ValueError as exc:
        raise SerializationError(f"the {what} has an unreadable header") from exc
    offset += length
    if not isinstance(header, dict) or not isinstance(header.get("parts"), list):
        raise SerializationError(f"the {what} has a malformed header")
    parts: dict[str, bytes] = {}
    for name, size in header.pop("parts"):
        parts[str(name)] = body[offset : offset + int(size)]
        offset += int(size)
    if offset != len(body):
        raise SerializationError(f"the {what} has trailing or missing bytes")
    return header, parts


def _params_from_header(header: dict[str, Any]) -> CKKSParams:
    try:
        params = get_params(str(header["params"]))
    except InputError:
        params = CKKSParams(
            name=str(header["params"]),
            poly_modulus_degree=int(header["poly_modulus_degree"]),
            coeff_bits=tuple(int(b) for b in header["coeff_bits"]),
            scale_bits=int(header["scale_bits"]),
        )
    if (
        params.poly_modulus_degree != int(header["poly_modulus_degree"])
        or list(params.coeff_bits) != [int(b) for b in header["coeff_bits"]]
        or params.scale_bits != int(header["scale_bits"])
    ):
        raise SerializationError(
            f"the key file's parameters differ from this installation's {params.name!r} set"
        )
    return params


pack_container = _pack
unpack_container = _unpack
