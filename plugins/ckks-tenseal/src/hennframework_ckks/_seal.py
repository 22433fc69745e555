"""The thin layer over Microsoft SEAL, reached through TenSEAL's ``tenseal.sealapi`` bindings.

Everything that touches SEAL objects directly lives here: the context of a parameter set (with
its encoder, evaluator and modulus chain), encoding and decoding of slot vectors, the exact-scale
arithmetic primitives, and byte (de)serialisation of SEAL objects.

Why ``sealapi`` rather than TenSEAL's ``CKKSVector``/``CKKSTensor``: the packing used by this
plugin (several tensor axes in the slots of one ciphertext, see :mod:`hennframework_ckks.layout`)
needs arbitrary rotations, rotation keys for chosen steps only (a rotation key at N = 16384 with
12 levels is about 41 MB in memory), control over when to relinearise, and exact tracking of the
scale after every rescale. TenSEAL's high-level tensors expose none of these; its bundled SEAL
bindings expose all of them, and TenSEAL's wheels are the maintained way to get SEAL on PyPI.

SEAL serialises only to streams, and the bindings only to file paths, so bytes go through a
temporary file in a folder private to this process (mode 0700, created with ``mkdtemp`` in
``/dev/shm`` where available, removed at exit): nobody else can plant a link or a FIFO there,
names are random, files are written exclusively (:func:`hennframework.io.safe_files.write_file`)
and read back without following links (:func:`hennframework.io.safe_files.read_file`), and each
is deleted at once. Secret keys pass through it too, so it must never be shared.

The bytes handed out are SEAL's serialisation re-compressed (:func:`compact_seal_bytes`): SEAL
writes its body with zstd, but each 64-bit word holds a residue of at most 60 bits (28 for most
of ``n16384``'s primes), so the high bytes are zero and zstd on the words as written leaves about
a fifth of the size on the table. Grouping the words' bytes by position first (byte 0 of every
word, then byte 1, ...: the "shuffle" filter of Blosc and HDF5) makes those zero bytes long
runs; a rotation key at ``n16384`` goes from 14.1 MB to 11.7 MB (the residues' own entropy is
11.6 MB). Loading turns the bytes back into SEAL's uncompressed format, and SEAL validates the
object against the context.
"""

from __future__ import annotations

import atexit
import functools
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import numpy as np
import numpy.typing as npt
import zstandard
from hennframework.io.safe_files import read_file, write_file
from hennframework.plugin import (
    HennError,
    InputError,
    NoiseBudgetExhaustedError,
    PluginDependencyError,
    SerializationError,
)

from hennframework_ckks.params import CKKSParams

try:  # pragma: no cover - exercised only where tenseal is missing
    import tenseal.sealapi as sa
except ImportError as exc:  # pragma: no cover
    raise PluginDependencyError(
        "the CKKS plugin needs TenSEAL: pip install 'tenseal>=0.3.15' "
        "(or pip install 'hennframework[ckks]')"
    ) from exc

__all__ = ["SealContext", "get_context", "sa"]

_TMP_ROOT = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
#: The largest SEAL object read back (rotation keys at n16384 are a few hundred MB).
_MAX_SEAL_BYTES = 8 << 30
_PRIVATE: dict[int, str] = {}  # process id -> its private folder (a forked child makes its own)
_PRIVATE_LOCK = threading.Lock()


def _private_folder() -> str:
    pid = os.getpid()
    with _PRIVATE_LOCK:
        folder = _PRIVATE.get(pid)
        if folder is None or not os.path.isdir(folder):
            folder = tempfile.mkdtemp(prefix="hennckks-", dir=_TMP_ROOT)  # mode 0700
            _PRIVATE[pid] = folder
            atexit.register(_remove_private_folder, pid, folder)
        return folder


def _remove_private_folder(pid: int, folder: str) -> None:
    if os.getpid() == pid:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _temp_path() -> Iterator[str]:
    """A fresh, unused path in this process's private folder; whatever is there is removed."""
    path = os.path.join(_private_folder(), f"{secrets.token_hex(12)}.seal")
    try:
        yield path
    finally:
        with suppress(FileNotFoundError):
            os.unlink(path)


#: SEAL's serialisation header: magic 0xA15E, header size 16, version, compression mode (byte 5:
#: 0 none, 1 zlib, 2 zstd), 2 reserved bytes, total size (uint64, header included).
_SEAL_MAGIC = b"\x5e\xa1\x10"
_SEAL_HEADER = 16
_SEAL_ZSTD = 2
#: Our compact form: this prefix, SEAL's header (with mode "none" and the uncompressed size),
#: then zstd (with its checksum) of the body with each 8-byte word's bytes grouped by position.
_COMPACT_MAGIC = b"HENNSHUF1\x00"
_ZSTD_LEVEL = 3
#: The most a compact body may expand (bytes out per byte in) and a fixed allowance for headers.
_MAX_EXPANSION = 8
_EXPANSION_SLACK = 1 << 16


def _shuffle(body: bytes) -> bytes:
    """Byte ``j`` of every 8-byte word together, for ``j`` = 0..7 (a zero tail pads the last)."""
    padded = body + bytes(-len(body) % 8)
    return np.frombuffer(padded, dtype=np.uint8).reshape(-1, 8).T.tobytes()


def compact_seal_bytes(seal_bytes: bytes) -> bytes:
    """SEAL's zstd serialisation re-compressed with its words' bytes grouped (see the module
    docstring); anything else (another compression mode) is returned unchanged."""
    header = seal_bytes[:_SEAL_HEADER]
    if len(header) < _SEAL_HEADER or not header.startswith(_SEAL_MAGIC):
        return seal_bytes
    if header[5] != _SEAL_ZSTD:  # pragma: no cover - SEAL builds without zstd
        return seal_bytes
    body = zstandard.ZstdDecompressor().decompressobj().decompress(seal_bytes[_SEAL_HEADER:])
    plain_header = (
        header[:5] + b"\x00" + header[6:8] + (_SEAL_HEADER + len(body)).to_bytes(8, "little")
    )
    compressor = zstandard.ZstdCompressor(level=_ZSTD_LEVEL, write_checksum=True)
    packed = compressor.compress(_shuffle(body))
    return _COMPACT_MAGIC + plain_header + packed


def expand_seal_bytes(data: bytes, what: str) -> bytes | memoryview:
    """Bytes SEAL can load: the compact form expanded (SEAL's uncompressed format, as a view of
    one buffer: rotation keys reach hundreds of MB), anything else as given. The expanded size is
    checked against the header (a short or overlong body is refused) and bounded, so a crafted
    file cannot make it expand without limit."""
    if not data.startswith(_COMPACT_MAGIC):
        return data
    start = len(_COMPACT_MAGIC)
    header = data[start : start + _SEAL_HEADER]
    if len(header) < _SEAL_HEADER or not header.startswith(_SEAL_MAGIC):
        raise SerializationError(f"the {what} is damaged: its SEAL header is missing")
    size = int.from_bytes(header[8:16], "little") - _SEAL_HEADER
    packed = len(data) - start - _SEAL_HEADER
    # residues modulo primes of at least 8 bits fill at least an eighth of their 64-bit words,
    # so a real object never expands more than 8x: a file claiming more is refused before
    # anything is expanded (a small crafted file cannot make the reader allocate gigabytes)
    if not 0 <= size <= min(_MAX_SEAL_BYTES, _MAX_EXPANSION * packed + _EXPANSION_SLACK):
        raise SerializationError(
            f"the {what} is damaged: it claims {size:,} bytes from {packed:,} compressed ones"
        )
    try:
        shuffled = zstandard.ZstdDecompressor().decompress(
            memoryview(data)[start + _SEAL_HEADER :], max_output_size=size + 8
        )
    except zstandard.ZstdError as exc:
        raise SerializationError(f"the {what} is damaged: {exc}") from exc
    if len(shuffled) != size + (-size % 8):
        raise SerializationError(
            f"the {what} is damaged: {len(shuffled):,} bytes where its header says {size:,}"
        )
    out = np.empty(_SEAL_HEADER + len(shuffled), dtype=np.uint8)
    out[:_SEAL_HEADER] = np.frombuffer(header, dtype=np.uint8)
    words = np.frombuffer(shuffled, dtype=np.uint8).reshape(8, -1).T
    out[_SEAL_HEADER:].reshape(-1, 8)[:] = words  # byte j of word i back to position 8 i + j
    del words, shuffled
    return out.data[: _SEAL_HEADER + size]


def seal_to_bytes(obj: Any) -> bytes:
    """A ciphertext's or key's serialisation as bytes: SEAL's, in the compact form."""
    with _temp_path() as path:
        try:
            obj.save(path)
        except Exception as exc:  # SEAL reports a failed write (a full disk too) tersely
            raise SerializationError(
                f"could not serialise a {type(obj).__name__} through {os.path.dirname(path)}: "
                f"{exc}. Is that disk full?"
            ) from exc
        return compact_seal_bytes(read_file(path, max_bytes=_MAX_SEAL_BYTES, what="SEAL object"))


def seal_from_bytes(kind: Any, context: SealContext, data: bytes, what: str) -> Any:
    """Load a SEAL object of class ``kind`` from bytes (compact or SEAL's own), validated
    against the context."""
    obj = kind()
    loadable = expand_seal_bytes(data, what)
    with _temp_path() as path:
        write_file(path, loadable, private=True, durable=False)
        try:
            obj.load(context.seal, path)
        except HennError:
            raise
        except Exception as exc:  # SEAL raises ValueError/RuntimeError with terse texts
            raise SerializationError(
                f"could not load the {what}: {exc}. It is corrupted or was made with other CKKS "
                f"parameters than {context.params.name!r}; use the matching parameter set and keys."
            ) from exc
    return obj


class SealContext:
    """SEAL context, encoder, evaluator and modulus chain of one parameter set (no keys).

    Level ``l`` means the ciphertext modulus is ``q_0 * ... * q_l``: ``l`` more rescales are
    possible. Fresh ciphertexts are at level ``L = params.levels``.
    """

    def __init__(self, params: CKKSParams) -> None:
        self.params = params
        parms = sa.EncryptionParameters(sa.SCHEME_TYPE.CKKS)
        parms.set_poly_modulus_degree(params.poly_modulus_degree)
        parms.set_coeff_modulus(
            sa.CoeffModulus.Create(params.poly_modulus_degree, list(params.coeff_bits))
        )
        # tc128: SEAL refuses parameters above the HE Standard's 128-bit bound.
        self.seal = sa.SEALContext(parms, True, sa.SEC_LEVEL_TYPE.TC128)
        if not self.seal.parameters_set():
            raise InputError(
                f"SEAL rejected the parameter set {params.name!r}: "
                f"{self.seal.parameters_error_message()}. Use one of the predefined sets."
            )
        self.encoder = sa.CKKSEncoder(self.seal)
        self.evaluator = sa.Evaluator(self.seal)
        self.slots: int = self.encoder.slot_count()
        self.slot_bits = self.slots.bit_length() - 1
        primes = [m.value() for m in parms.coeff_modulus()]
        self.primes: list[int] = primes[:-1]  # q_0 .. q_L (the special prime is not a level)
        self.special_prime: int = primes[-1]
        self.top_level = len(self.primes) - 1
        self._parms_ids: list[list[int]] = [[] for _ in self.primes]
        data = self.seal.first_context_data()
        while data is not None:
            self._parms_ids[data.chain_index()] = list(data.parms_id())
            data = data.next_context_data()
        self._galois_tool = self.seal.key_context_data().galois_tool()
        self._pending_threshold = 2.0 ** (1.5 * params.scale_bits)
        self.lock = threading.Lock()

    # -- chain -----------------------------------------------------------------------------
    def parms_id(self, level: int) -> list[int]:
        return self._parms_ids[level]

    @staticmethod
    def level_of(ct: Any) -> int:
        return int(ct.coeff_modulus_size()) - 1

    def prime(self, level: int) -> int:
        """The prime that a rescale at ``level`` divides by."""
        return self.primes[level]

    def galois_elt(self, step: int) -> int:
        return int(self._galois_tool.get_elt_from_step(step))

    # -- encoding ----------------------------------------------------------------------------
    def encode(self, values: npt.NDArray[np.float64] | float, level: int, scale: float) -> Any:
        """A plaintext at ``level`` and ``scale``: a constant (cheap) or a full slot vector."""
        plain = sa.Plaintext()
        # a list converts to the bindings' vector faster than an array (0.1 ms of 1-2 ms)
        data = values.tolist() if isinstance(values, np.ndarray) else values
        self.encoder.encode(data, self.parms_id(level), scale, plain)
        return plain

    def decode(self, plain: Any) -> npt.NDArray[np.float64]:
        return np.asarray(self.encoder.decode_double(plain), dtype=np.float64)

    # -- evaluation primitives ----------------------------------------------------------------
    def mod_to(self, ct: Any, level: int) -> Any:
        """A copy of ``ct`` at a lower (or the same) level; the scale is unchanged."""
        current = self.level_of(ct)
        if current == level:
            return ct
        if current < level:
            raise ValueError("cannot raise a ciphertext's level")
        out = sa.Ciphertext()
        self.evaluator.mod_switch_to(ct, self.parms_id(level), out)
        return out

    def copy(self, ct: Any) -> Any:
        """An independent copy (the bindings have no copy constructor)."""
        out = sa.Ciphertext()
        self.evaluator.mod_switch_to(ct, list(ct.parms_id()), out)
        return out

    def require_level(self, ct: Any, what: str) -> int:
        level = self.effective_level(ct)
        if level < 1:
            raise NoiseBudgetExhaustedError(
                f"{what} needs a multiplicative level but the ciphertext has none left (level 0 "
                f"of {self.top_level}); it needs refresh: have the key holder refresh it "
                "(CKKSScheme.refresh or a hennframework_ckks.refresh provider) or use a parameter "
                "set with more levels."
            )
        return level

    def relin(self, ct: Any, relin_keys: Any) -> Any:
        if ct.size() <= 2:
            return ct
        out = sa.Ciphertext()
        self.evaluator.relinearize(ct, relin_keys, out)
        return out

    def is_pending(self, ct: Any) -> bool:
        """Whether ``ct`` is a product still waiting for its rescale (scale about ``scale**2``)."""
        return bool(ct.scale > self._pending_threshold)

    def settle(self, ct: Any, relin_keys: Any) -> Any:
        """Relinearise, then rescale a pending product (in that order: the key-switching noise is
        divided by the dropped prime)."""
        if not self.is_pending(ct):
            return self.relin(ct, relin_keys)
        ct = self.relin(ct, relin_keys)
        out = sa.Ciphertext()
        self.evaluator.rescale_to_next(ct, out)
        return out

    def effective_level(self, ct: Any) -> int:
        """Levels left after any pending rescale."""
        return self.level_of(ct) - (1 if self.is_pending(ct) else 0)

    def multiply(self, a: Any, b: Any, relin_keys: Any) -> Any:
        """``a * b`` *pending*: not relinearised and not rescaled yet (see :meth:`settle`).

        Sums of products and rotations of a product then happen before the rescale, so their
        key-switching noise is divided by the prime, and the relinearisation is done once.
        """
        a = self.settle(a, relin_keys)
        b = self.settle(b, relin_keys)
        level = min(self.level_of(a), self.level_of(b))
        self.require_level(a if self.level_of(a) == level else b, "a ciphertext product")
        same = a is b
        a, b = self.mod_to(a, level), self.mod_to(b, level)
        out = sa.Ciphertext()
        if same:
            self.evaluator.square(a, out)
        else:
            self.evaluator.multiply(a, b, out)
        return out

    def multiply_plain(
        self, ct: Any, values: npt.NDArray[np.float64] | float, target_scale: float, relin_keys: Any
    ) -> Any:
        """``ct * values`` (a constant or a slot vector), rescaled, landing exactly on ``target_scale``.

        The plaintext is encoded at ``e = target * q_l / scale(ct)`` so that after dividing by
        ``q_l`` the scale is ``target``; the float rounding of that quotient is then removed by
        setting the scale (a relative change below 1e-15).
        """
        ct = self.settle(ct, relin_keys)
        level = self.require_level(ct, "a product with a plaintext")
        encode_scale = target_scale * self.prime(level) / ct.scale
        plain = self.encode(values, level, encode_scale)
        out = sa.Ciphertext()
        self.evaluator.multiply_plain(ct, plain, out)
        self.evaluator.rescale_to_next_inplace(out)
        out.scale = target_scale
        return out

    def multiply_integer(self, ct: Any, value: int) -> Any:
        """``ct * value`` for a small integer: exact, no level used (noise grows by |value|)."""
        plain = self.encode(float(value), self.level_of(ct), 1.0)
        out = sa.Ciphertext()
        self.evaluator.multiply_plain(ct, plain, out)
        out.scale = ct.scale
        return out

    def same_scale(self, a: float, b: float) -> bool:
        return abs(a - b) <= 1e-12 * max(abs(a), abs(b))

    def add_plain(
        self,
        ct: Any,
        values: npt.NDArray[np.float64] | float,
        relin_keys: Any,
        negate: bool = False,
    ) -> Any:
        """``ct + values`` (or ``ct - values``) with the plaintext encoded at the ciphertext's scale."""
        ct = self.settle(ct, relin_keys)
        plain = self.encode(values, self.level_of(ct), ct.scale)
        out = sa.Ciphertext()
        if negate:
            self.evaluator.sub_plain(ct, plain, out)
        else:
            self.evaluator.add_plain(ct, plain, out)
        return out

    def rotate(
        self, ct: Any, step: int, galois_keys: Any, available: frozenset[int], relin_keys: Any
    ) -> Any:
        """Rotate the slots left by ``step`` (cyclic) using the available key steps."""
        step %= self.slots
        if step == 0:
            return ct
        ct = self.relin(ct, relin_keys)
        for part in decompose_rotation(step, self.slots, available):
            out = sa.Ciphertext()
            self.evaluator.rotate_vector(ct, part, galois_keys, out)
            ct = out
        return ct

    def add(self, a: Any, b: Any) -> Any:
        out = sa.Ciphertext()
        self.evaluator.add(a, b, out)
        return out

    def sub(self, a: Any, b: Any) -> Any:
        out = sa.Ciphertext()
        self.evaluator.sub(a, b, out)
        return out

    def negate(self, ct: Any) -> Any:
        out = sa.Ciphertext()
        self.evaluator.negate(ct, out)
        return out


def decompose_rotation(step: int, slots: int, available: frozenset[int]) -> list[int]:
    """Split a left rotation by ``step`` into rotations whose keys exist.

    A key for the step itself is used when present; otherwise the binary expansion of the step
    (positive powers of two), or its non-adjacent form when negative power-of-two keys exist and
    that needs fewer rotations. Where those keys are missing (a key set made with a few chosen
    steps, see :func:`~hennframework_ckks.keys.choose_rotation_keys`), the shortest sequence of
    available steps that adds up to ``step`` modulo ``slots`` (a breadth-first search over the
    ``slots`` residues, made once per key set).
    """
    step %= slots
    if step == 0:
        return []
    if step in available or (step - slots) in available:
        return [step if step in available else step - slots]
    binary = [1 << bit for bit in range(step.bit_length()) if step >> bit & 1]
    parts = binary
    naf = _non_adjacent_form(step)
    if all((p in available) or (p % slots in available) for p in naf) and len(naf) < len(binary):
        parts = naf
    missing = [p for p in parts if p not in available and (p % slots) not in available]
    if not missing:
        return [p if p in available else p % slots for p in parts]
    shortest = _shortest_rotations(slots, available, step)
    if shortest is None:
        raise InputError(
            f"no rotation key for step(s) {missing} (needed for a rotation by {step}), and no "
            f"combination of the key's steps {sorted(available)} adds up to it (steps that "
            "share a factor, all even for example, never make a rotation without it). The key "
            "holder makes keys that do: `henn keygen --scheme ckks --out DIR` (every power of "
            "two), or with `--for xor|sentiment|mlp:SIZES` (its keys always include step 1, so "
            "every rotation is a sum of them); in Python, CKKSScheme.keygen(rotations='pow2') "
            "or a list that includes step 1."
        )
    return shortest


def rotation_distances(slots: int, available: frozenset[int]) -> list[int]:
    """For every left rotation ``0 .. slots - 1``, the fewest rotations by ``available`` steps
    that make it (-1 where none does): what a rotation costs in key switches with these keys.

    >>> rotation_distances(8, frozenset({1, 4}))
    [0, 1, 2, 3, 1, 2, 3, 4]
    """
    return list(_rotation_tree(slots, available)[0])


def _shortest_rotations(slots: int, available: frozenset[int], step: int) -> list[int] | None:
    distance, via = _rotation_tree(slots, available)
    if distance[step] < 0:
        return None
    parts = []
    while step:
        key = via[step]
        parts.append(key)
        step = (step - key) % slots
    return sorted(parts)


@functools.lru_cache(maxsize=8)  # the key sets in use: a process has one or two; ~10 ms each
def _rotation_tree(slots: int, available: frozenset[int]) -> tuple[list[int], list[int]]:
    """Breadth-first search from 0 over the residues modulo ``slots``, one edge per key step:
    the distance of each residue and the key step of the last edge on a shortest path."""
    keys = sorted(available, key=lambda key: (key % slots, key))
    distance = [-1] * slots
    via = [0] * slots
    distance[0] = 0
    frontier = [0]
    while frontier:
        following = []
        for node in frontier:
            for key in keys:
                reached = (node + key) % slots
                if distance[reached] < 0:
                    distance[reached] = distance[node] + 1
                    via[reached] = key
                    following.append(reached)
        frontier = following
    return distance, via


def _non_adjacent_form(value: int) -> list[int]:
    parts = []
    bit = 0
    while value:
        if value & 1:
            digit = 2 - (value & 3)
            parts.append(digit << bit)
            value -= digit
        value >>= 1
        bit += 1
    return parts


_CONTEXTS: dict[tuple[int, tuple[int, ...]], SealContext] = {}
_CONTEXTS_LOCK = threading.Lock()


def get_context(params: CKKSParams) -> SealContext:
    """The (shared, cached) SEAL context of a parameter set: building one costs 0.1 to 0.8 s."""
    key = (params.poly_modulus_degree, params.coeff_bits)
    with _CONTEXTS_LOCK:
        if key not in _CONTEXTS:
            _CONTEXTS[key] = SealContext(params)
        return _CONTEXTS[key]
