"""Codec tests: a scheme's keys and tensors survive its codec and its files unchanged, the secret key
never goes into anything meant for another party, and damaged bytes are refused cleanly.

A scheme that registers a serialisation codec (:mod:`hennframework.io.codecs`, "Plugin hook" in
the parties guide) subclasses :class:`BaseCodecTests` with the same fixtures as the identity
suite (``scheme``, ``tolerance``, and ``keys`` when its keys cannot be seeded); the codec is found
the way the loaders find it, through :func:`hennframework.io.codecs.codec_for` (override the
``codec`` fixture to test another instance; the file round trips always go through the registered
codec, as the loaders do). What it checks:

* round trips through the codec's entries (a :class:`~hennframework.io.codecs.EntrySink` read
  back through an :class:`~hennframework.io.codecs.EntrySource`) and through ``.henn`` files: the
  parameter set, the public key (same key id and fingerprint; it encrypts; its evaluation keys,
  loaded into a *new* scheme instance, compute what the originals compute), the secret key, and
  encrypted tensors of several shapes written together (fresh, and results of the operations the
  scheme declares): same shapes, key ids and decryptions, and a noise budget or magnitude bound
  never more optimistic than before;
* secrets: the codec tells the secret key from the public key and from tensors (neither of which
  may hold secret material), its public writers refuse the secret key when handed it directly,
  and every public file writer refuses a secret key anywhere in what it is given, leaving no file;
* damage: every entry the codec wrote, truncated or emptied, is refused with
  :class:`~hennframework.exceptions.SerializationError`; every metadata field, missing or of the
  wrong type, is refused with ``SerializationError`` (``KeyMismatchError`` where the change makes
  a key disagree with its fingerprint) or makes no difference; and a file truncated anywhere, or
  with a byte flipped, is refused with ``SerializationError`` or loads exactly what was saved.
  Never an ``IndexError``, ``KeyError`` or ``TypeError``.

Decryptions of a round-tripped tensor must equal the original's exactly (the bytes are the same
ciphertext), and so must the results of evaluating with the round-tripped evaluation keys, since
evaluation (relinearisation, key switching) uses no randomness. A scheme whose codec completes
pending work when it writes (the CKKS plugin rescales a pending product), or whose evaluation is
randomised, overrides :meth:`BaseCodecTests.assert_same_decryption` with the difference it
documents.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from hennframework import io as hio
from hennframework.exceptions import KeyMismatchError, SerializationError
from hennframework.io.codecs import EntrySink, EntrySource, SchemeCodec, codec_for, find_secret
from hennframework.scheme import Capability, EncryptedTensor, HEScheme, KeySet, MagnitudeTracked
from hennframework.testing.base.base import SchemeFixtures
from hennframework.testing.bounds import ErrorModel, assert_within

__all__ = ["BaseCodecTests", "Written"]

#: Values that replace a metadata field in the malformed-metadata test (one of each JSON type).
WRONG_TYPES: tuple[Any, ...] = (None, True, -1, "x", [], {})
#: Where the file-damage test cuts a file short (fractions of its length) and flips a byte.
CUTS = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95)
FLIPS = 12

#: A codec's read method: ``(meta, source, prefix, scheme) -> object``.
Reader = Callable[[Mapping[str, Any], EntrySource, str, Any], Any]


class Written:
    """What one codec write produced: the metadata, the entries, and how to read them back."""

    def __init__(
        self, what: str, value: Any, meta: dict[str, Any], sink: EntrySink, prefix: str
    ) -> None:
        self.what, self.value, self.meta, self.prefix = what, value, meta, prefix
        self.arrays, self.blobs = dict(sink.arrays), dict(sink.blobs)

    def source(
        self,
        arrays: Mapping[str, npt.NDArray[Any]] | None = None,
        blobs: Mapping[str, bytes] | None = None,
    ) -> EntrySource:
        """An :class:`EntrySource` over the entries (or replacements of them)."""
        return EntrySource(
            self.arrays if arrays is None else arrays,
            self.blobs if blobs is None else blobs,
            f"<{self.what}>",
        )

    def damaged_entries(self) -> Iterator[tuple[str, EntrySource]]:
        """Each entry in turn truncated (one item less, or half the bytes) and emptied."""
        for name, array in self.arrays.items():
            if array.ndim == 0:
                continue
            for label, cut in (("one item less", array[:-1]), ("emptied", array[:0])):
                if cut.shape != array.shape:
                    yield f"array {name!r} {label}", self.source({**self.arrays, name: cut})
        for name, blob in self.blobs.items():
            for label, short in (("cut in half", blob[: len(blob) // 2]), ("emptied", b"")):
                if len(short) != len(blob):
                    yield f"blob {name!r} {label}", self.source(blobs={**self.blobs, name: short})

    def malformed_metadata(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """The metadata with each top-level field missing, then of each wrong type in turn."""
        for field in self.meta:
            yield f"{field!r} missing", {k: v for k, v in self.meta.items() if k != field}
            for wrong in WRONG_TYPES:
                if type(wrong) is not type(self.meta[field]) or wrong != self.meta[field]:
                    yield f"{field!r} = {wrong!r}", {**self.meta, field: wrong}


class BaseCodecTests(SchemeFixtures):
    """A scheme's serialisation codec (see :mod:`hennframework.testing.base.codec`)."""

    @pytest.fixture(scope="class")
    @classmethod
    def codec(cls, scheme: HEScheme) -> SchemeCodec:
        """The codec the loaders use for this scheme."""
        return codec_for(scheme)

    # -- helpers a plugin may override ----------------------------------------------------------
    def assert_same_decryption(
        self,
        actual: npt.NDArray[np.float64],
        expected: npt.NDArray[np.float64],
        errors: ErrorModel,
        what: str,
    ) -> None:
        """The decryption of a round-tripped tensor (or of a result computed from one) is the
        original's, exactly. Override to allow what the scheme's codec documents (for example
        one rescale, ``errors.op_tolerance``, where a write completes a pending rescale)."""
        assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
        assert np.array_equal(actual, expected), (
            f"{what}: decrypts to {actual!r}, the original to {expected!r}; a round trip must "
            "keep the ciphertext"
        )

    def sample_tensors(self, scheme: HEScheme, keys: KeySet) -> dict[str, EncryptedTensor]:
        """Tensors of several shapes, fresh and after the operations the scheme declares."""
        caps = type(scheme).capabilities
        rng = np.random.default_rng(7)
        shapes = {"scalar-batch": (1,), "vector": (5,), "matrix": (2, 3), "column": (4, 1)}
        tensors = {
            name: self.encrypt(scheme, keys, rng.uniform(-1.0, 1.0, shape))
            for name, shape in shapes.items()
        }
        matrix = tensors["matrix"]
        tensors["transposed"] = matrix.transpose()
        if Capability.ADD in caps:
            tensors["sum"] = matrix + matrix
        if Capability.MUL_PLAIN in caps:
            tensors["times-plain"] = matrix * 0.5
        if Capability.MUL_CIPHER in caps:
            tensors["product"] = matrix * matrix
        if Capability.MATMUL_PLAIN in caps:
            tensors["matmul-plain"] = np.array([[1.0, -0.5], [0.25, 2.0]]) @ matrix
        return tensors

    def fresh_scheme(self, codec: SchemeCodec, scheme: HEScheme) -> Any:
        """A new scheme instance from the saved parameters: it knows no key until one is read."""
        return codec.make_scheme(codec.parameters(scheme), getattr(scheme, "backend", None))

    def write(self, codec: SchemeCodec, what: str, value: Any) -> Written:
        """One codec write of ``what`` ("public key", "secret key" or "tensors")."""
        sink = EntrySink()
        prefix = {"public key": "pk.", "secret key": "sk.", "tensors": "ct."}[what]
        if what == "public key":
            meta = codec.write_public_key(value, sink, prefix)
        elif what == "secret key":
            meta = codec.write_secret_key(value, sink, prefix)
        else:
            meta = codec.write_tensors(value, sink, prefix)
        assert json.loads(json.dumps(meta)) == meta, f"the {what} metadata is not plain JSON"
        return Written(what, value, meta, sink, prefix)

    def reader(self, codec: SchemeCodec, what: str) -> Reader:
        readers: dict[str, Reader] = {
            "public key": codec.read_public_key,
            "secret key": codec.read_secret_key,
            "tensors": codec.read_tensors,
        }
        return readers[what]

    # -- lookup and parameters ------------------------------------------------------------------
    def test_codec_is_found_for_the_scheme(self, scheme: HEScheme, codec: SchemeCodec) -> None:
        assert isinstance(codec, SchemeCodec), "the codec does not satisfy SchemeCodec"
        assert codec.scheme_name == scheme.name
        assert codec_for(scheme.name) is codec_for(scheme)

    def test_parameters_round_trip(self, scheme: HEScheme, codec: SchemeCodec) -> None:
        parameters = codec.parameters(scheme)
        assert json.loads(json.dumps(parameters)) == parameters, "parameters are not plain JSON"
        made = self.fresh_scheme(codec, scheme)
        assert made.name == scheme.name
        assert codec.parameters(made) == parameters

    # -- round trips through the codec ----------------------------------------------------------
    def test_public_key_round_trip(
        self, scheme: HEScheme, keys: KeySet, codec: SchemeCodec, errors: ErrorModel
    ) -> None:
        """Same id and fingerprint; it encrypts; its evaluation keys compute what the originals do."""
        written = self.write(codec, "public key", keys.public)
        fresh = self.fresh_scheme(codec, scheme)
        source = written.source()
        public = codec.read_public_key(written.meta, source, written.prefix, fresh)
        source.check_all_used()
        assert codec.key_id(public) == codec.key_id(keys.public) == keys.key_id
        assert not codec.is_secret(public)
        fingerprint = getattr(codec, "fingerprint", None)
        if callable(fingerprint):
            assert fingerprint(public) == fingerprint(keys.public) == keys.key_id
        if Capability.ENCRYPT_PUBLIC in type(scheme).capabilities:
            x = np.array([[0.5, -0.25], [1.0, 0.0]])
            by_loaded = fresh.encrypt_tensor(x, public)
            decrypted = np.asarray(fresh.decrypt_tensor(by_loaded, keys.secret), dtype=np.float64)
            assert_within(decrypted, errors.fresh(x), "Dec(Enc(x)) under the loaded public key")
        # evaluation in the new instance goes through the keys it just read
        originals = self.sample_tensors(scheme, keys)
        tensors = self.write(codec, "tensors", list(originals.values()))
        loaded = dict(
            zip(
                originals,
                codec.read_tensors(tensors.meta, tensors.source(), tensors.prefix, fresh),
                strict=True,
            )
        )
        caps = type(scheme).capabilities
        operations: list[tuple[str, Callable[[Any], Any]]] = []
        if Capability.MUL_CIPHER in caps:
            operations.append(("a * a", lambda t: t * t))
        if Capability.MUL_PLAIN in caps:
            operations.append(("a * 0.75", lambda t: t * 0.75))
        if Capability.MATMUL_PLAIN in caps:
            operations.append(("P @ a", lambda t: np.array([[1.0, 2.0], [-1.0, 0.5]]) @ t))
        if not operations:
            pytest.skip(f"{scheme.name} declares no operation that needs an evaluation key")
        for what, operation in operations:
            self.assert_same_decryption(
                self.decrypt(fresh, keys, operation(loaded["matrix"])),
                self.decrypt(scheme, keys, operation(originals["matrix"])),
                errors,
                f"{what} with the loaded evaluation keys",
            )

    def test_secret_key_round_trip(
        self, scheme: HEScheme, keys: KeySet, codec: SchemeCodec, errors: ErrorModel
    ) -> None:
        written = self.write(codec, "secret key", keys.secret)
        source = written.source()
        secret = codec.read_secret_key(
            written.meta, source, written.prefix, self.fresh_scheme(codec, scheme)
        )
        source.check_all_used()
        assert codec.is_secret(secret)
        assert codec.key_id(secret) == keys.key_id
        fingerprint = getattr(codec, "fingerprint", None)
        if callable(fingerprint):
            assert fingerprint(secret) == keys.key_id
        for name, tensor in self.sample_tensors(scheme, keys).items():
            self.assert_same_decryption(
                np.asarray(scheme.decrypt_tensor(tensor, secret), dtype=np.float64),
                self.decrypt(scheme, keys, tensor),
                errors,
                f"{name} decrypted with the loaded secret key",
            )

    def test_tensors_round_trip(
        self, scheme: HEScheme, keys: KeySet, codec: SchemeCodec, errors: ErrorModel
    ) -> None:
        """Several shapes in one write: same order, shapes, key ids and decryptions."""
        originals = self.sample_tensors(scheme, keys)
        written = self.write(codec, "tensors", list(originals.values()))
        source = written.source()
        loaded = codec.read_tensors(written.meta, source, written.prefix, scheme)
        source.check_all_used()
        assert len(loaded) == len(originals)
        for (name, before), after in zip(originals.items(), loaded, strict=True):
            assert tuple(after.shape) == tuple(before.shape), name
            assert codec.key_id(after) == codec.key_id(before) == keys.key_id, name
            assert not codec.is_secret(after)
            self.assert_same_decryption(
                self.decrypt(scheme, keys, after), self.decrypt(scheme, keys, before), errors, name
            )
            # a file never makes a tensor look healthier than it was
            assert after.noise_budget <= before.noise_budget, f"{name}: noise budget grew"
            if isinstance(before, MagnitudeTracked) and isinstance(after, MagnitudeTracked):
                assert after.magnitude_bound >= before.magnitude_bound, f"{name}: bound shrank"
                assert after.magnitude_limit <= before.magnitude_limit, f"{name}: limit grew"
        empty = self.write(codec, "tensors", [])
        assert codec.read_tensors(empty.meta, empty.source(), empty.prefix, scheme) == []

    # -- round trips through files ---------------------------------------------------------------
    def test_files_round_trip(
        self, scheme: HEScheme, keys: KeySet, codec: SchemeCodec, errors: ErrorModel, tmp_path: Path
    ) -> None:
        secret_path, public_path = hio.save_keys(tmp_path / "keys", keys)
        if os.name == "posix":
            assert stat.S_IMODE(os.stat(secret_path).st_mode) == 0o600
        verifies = callable(getattr(codec, "fingerprint", None))
        public = hio.load_public_key(public_path, scheme=scheme)
        secret = hio.load_secret_key(secret_path, scheme=scheme)
        assert public.key_id == secret.key_id == keys.key_id
        assert public.verified == secret.verified == verifies
        assert not codec.is_secret(public.key) and find_secret(public.key) is None
        assert codec.is_secret(secret.key)
        originals = self.sample_tensors(scheme, keys)
        path = hio.save_ciphertexts(tmp_path / "tensors.henn", originals)
        loaded, _ = hio.load_ciphertexts(path, scheme=scheme, expect_key=public)
        assert list(loaded) == list(originals)
        for name, before in originals.items():
            self.assert_same_decryption(
                np.asarray(scheme.decrypt_tensor(loaded[name], secret.key), dtype=np.float64),
                self.decrypt(scheme, keys, before),
                errors,
                f"{name} from a file, decrypted with the secret key from a file",
            )

    # -- secrets --------------------------------------------------------------------------------
    def test_secret_key_is_recognised(
        self, scheme: HEScheme, keys: KeySet, codec: SchemeCodec
    ) -> None:
        """The codec tells the secret key apart; the public key and tensors hold no secret."""
        tensors = self.sample_tensors(scheme, keys)
        assert codec.is_secret(keys.secret)
        assert not codec.is_secret(keys.public)
        assert find_secret(keys.public) is None, "the public key holds secret material"
        assert find_secret(list(tensors.values())) is None, "a tensor holds secret material"
        if Capability.ENCRYPT_SECRET in type(scheme).capabilities:
            by_secret = scheme.encrypt_tensor(np.array([0.5, 1.0]), keys.secret)
            assert find_secret(by_secret) is None, "a tensor encrypted with the secret key holds it"
        found = find_secret({"shared": [tensors["vector"], {"owner": keys.secret}]})
        assert found is not None and "owner" in found

    def test_codec_refuses_the_secret_key_where_public_data_goes(
        self, keys: KeySet, codec: SchemeCodec
    ) -> None:
        writers: list[tuple[str, Callable[[EntrySink], Any]]] = [
            ("a public key", lambda sink: codec.write_public_key(keys.secret, sink, "pk.")),
            ("tensors", lambda sink: codec.write_tensors([keys.secret], sink, "ct.")),
        ]
        for what, write in writers:
            sink = EntrySink()
            with pytest.raises(SerializationError):
                write(sink)
            assert not sink.arrays and not sink.blobs, f"secret material written as {what}"

    def test_public_writers_refuse_the_secret_key(
        self, scheme: HEScheme, keys: KeySet, tmp_path: Path
    ) -> None:
        tensor = self.sample_tensors(scheme, keys)["vector"]
        attempts: list[tuple[str, Callable[[Path], Any]]] = [
            ("public key file", lambda p: hio.save_public_key(p, keys.secret, scheme)),
            ("ciphertexts", lambda p: hio.save_ciphertexts(p, {"t": tensor, "k": keys.secret})),
            ("ciphertexts", lambda p: hio.save_ciphertexts(p, {"t": tensor, "keys": keys})),
            ("switching key", lambda p: hio.save_switch_key(p, {"key": keys.secret}, scheme)),
        ]
        for index, (what, save) in enumerate(attempts):
            path = tmp_path / f"leak{index}.henn"
            with pytest.raises(SerializationError, match="refusing"):
                save(path)
            assert not path.exists(), f"a refused {what} left a file"
        assert sorted(tmp_path.iterdir()) == []

    # -- damage -----------------------------------------------------------------------------------
    def _written_values(self, scheme: HEScheme, keys: KeySet, codec: SchemeCodec) -> list[Written]:
        tensors = list(self.sample_tensors(scheme, keys).values())
        return [
            self.write(codec, "public key", keys.public),
            self.write(codec, "secret key", keys.secret),
            self.write(codec, "tensors", tensors),
        ]

    def _same(
        self,
        scheme: HEScheme,
        keys: KeySet,
        codec: SchemeCodec,
        errors: ErrorModel,
        value: Any,
        original: Any,
    ) -> bool:
        """Whether ``value``, read from changed input, is ``original`` (a key, or tensors)."""
        if not isinstance(original, list):
            return bool(codec.key_id(value) == codec.key_id(original))
        if len(value) != len(original):
            return False
        try:
            for after, before in zip(value, original, strict=True):
                self.assert_same_decryption(
                    self.decrypt(scheme, keys, after),
                    self.decrypt(scheme, keys, before),
                    errors,
                    "a tensor read from changed input",
                )
        except AssertionError:
            return False
        return True

    def test_truncated_entries_are_refused(
        self, scheme: HEScheme, keys: KeySet, codec: SchemeCodec
    ) -> None:
        failures: list[str] = []
        checked = 0
        for written in self._written_values(scheme, keys, codec):
            read = self.reader(codec, written.what)
            for damage, source in written.damaged_entries():
                checked += 1
                try:
                    read(written.meta, source, written.prefix, self.fresh_scheme(codec, scheme))
                    source.check_all_used()
                except SerializationError:
                    continue
                except Exception as exc:
                    failures.append(f"{written.what}, {damage}: {type(exc).__name__}: {exc}")
                    continue
                failures.append(f"{written.what}, {damage}: loaded without an error")
        assert checked, "the codec wrote no entries to damage"
        assert not failures, "damaged entries must raise SerializationError:\n" + "\n".join(
            failures
        )

    def test_malformed_metadata_is_refused_or_harmless(
        self, scheme: HEScheme, keys: KeySet, codec: SchemeCodec, errors: ErrorModel
    ) -> None:
        failures: list[str] = []
        for written in self._written_values(scheme, keys, codec):
            read = self.reader(codec, written.what)
            for change, meta in written.malformed_metadata():
                source = written.source()
                try:
                    value = read(meta, source, written.prefix, self.fresh_scheme(codec, scheme))
                except (SerializationError, KeyMismatchError):
                    continue
                except Exception as exc:
                    failures.append(f"{written.what}, {change}: {type(exc).__name__}: {exc}")
                    continue
                if not self._same(scheme, keys, codec, errors, value, written.value):
                    failures.append(f"{written.what}, {change}: loaded something else")
        assert not failures, (
            "malformed metadata must raise SerializationError or read the same:\n"
            + "\n".join(failures)
        )

    def test_damaged_files_are_refused_or_harmless(
        self, scheme: HEScheme, keys: KeySet, codec: SchemeCodec, errors: ErrorModel, tmp_path: Path
    ) -> None:
        """Files cut short anywhere, or with a byte flipped: SerializationError or the same load."""
        secret_path, public_path = hio.save_keys(tmp_path / "keys", keys)
        public = hio.load_public_key(public_path, scheme=scheme)
        tensors = self.sample_tensors(scheme, keys)
        ciphertexts = hio.save_ciphertexts(tmp_path / "tensors.henn", tensors)
        loaders: list[tuple[Path, Callable[[Path], Any], Callable[[Any], bool]]] = [
            (
                public_path,
                lambda p: hio.load_public_key(p, scheme=scheme),
                lambda f: bool(f.key_id == keys.key_id),
            ),
            (
                secret_path,
                lambda p: hio.load_secret_key(p, scheme=scheme),
                lambda f: bool(f.key_id == keys.key_id),
            ),
            (
                ciphertexts,
                lambda p: hio.load_ciphertexts(p, scheme=scheme, expect_key=public)[0],
                lambda loaded: self._same(
                    scheme, keys, codec, errors, list(loaded.values()), list(tensors.values())
                ),
            ),
        ]
        damaged = tmp_path / "damaged.henn"
        failures: list[str] = []
        for path, load, same in loaders:
            original = path.read_bytes()
            variants = [(f"cut to {int(len(original) * c)} bytes", c) for c in CUTS]
            cases: list[tuple[str, bytes, bool]] = [
                (label, original[: int(len(original) * c)], True) for label, c in variants
            ]
            for i in range(FLIPS):
                position = (2 * i + 1) * len(original) // (2 * FLIPS)
                flipped = bytearray(original)
                flipped[position] ^= 0x5A
                cases.append((f"byte {position} flipped", bytes(flipped), False))
            for label, data, must_fail in cases:
                damaged.write_bytes(data)
                damaged.chmod(0o600)
                try:
                    value = load(damaged)
                except SerializationError:
                    continue
                except Exception as exc:
                    failures.append(f"{path.name}, {label}: {type(exc).__name__}: {exc}")
                    continue
                if must_fail or not same(value):
                    failures.append(f"{path.name}, {label}: loaded without an error")
        assert not failures, "damaged files must raise SerializationError:\n" + "\n".join(failures)
