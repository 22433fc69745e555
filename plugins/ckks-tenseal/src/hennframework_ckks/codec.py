"""The CKKS plugin's serialisation codec for hennframework's ``.henn`` files (party workflow).

hennframework's container (:mod:`hennframework.io`) stores JSON metadata, ``.npy`` arrays and
opaque blobs and knows nothing about CKKS; this codec (a :class:`hennframework.plugin.SchemeCodec`,
registered for the scheme name ``ckks`` when :mod:`hennframework_ckks` is imported) turns the
plugin's objects into blobs and back. It reuses the plugin's own byte formats, so there is one
serialisation of each object, never pickle:

* public key: :meth:`CKKSPublicKey.to_bytes` (SEAL's public, relinearisation and rotation keys in
  the plugin's checksummed container) as one blob;
* secret key: :meth:`CKKSSecretKey.to_bytes` (secret key plus its public material) as one blob,
  only ever in a ``secret-key`` file (which the container writes with mode 0600);
* tensors: :func:`~hennframework_ckks.serialization.tensors_to_bytes` (layout, cleanliness and
  SEAL ciphertexts of all tensors of one write) as one blob.

Key ids are fingerprints of the public material (:func:`hennframework_ckks.keys.key_fingerprint`):
reading a public or secret key recomputes it from the key's bytes and refuses a mismatch with
:class:`~hennframework.exceptions.KeyMismatchError` (a secret key must also decrypt what its
public key encrypts); ids of the older random form are refused with a message to re-run keygen.

Loading parses bytes only (SEAL validates every object against the parameter set). Tensors
refer to their public key: reading a public or secret key registers its public part with this
codec (by key id, weakly), so load the key file first, then models and ciphertexts under it;
tensors written in this process find their key the same way. The registry holds no key alive:
whoever loaded a key (and every tensor bound to it) owns it, so a 400 MB key is freed with its
last user. It keeps *every* live object of an id (tensors read are bound to the newest), so
loading a key again (``henn inspect``, a fingerprint check) and dropping that copy never orphans
tensors of the first. Each load returns the object it parsed and verified from its file, never
an object already in memory (which its holder might have changed since).

CKKS has no keyless key switch (the scheme has no ``KEY_SWITCH`` capability), so there is no
switching-key file: :meth:`CKKSCodec.write_switch_key` / :meth:`CKKSCodec.read_switch_key` raise
:class:`~hennframework.exceptions.CapabilityError` pointing to the owner's switch by
re-encryption (``henn switch-key --secret OLD --public NEW``).

Sizes (measured, the compact form of :func:`hennframework_ckks._seal.compact_seal_bytes`,
key-switching keys in SEAL's seeded form, default ``pow2`` rotation keys): the public material
is 1.5 MB at ``n4096``, 18.2 MB at ``n8192`` and 165.5 MB at ``n16384`` (almost all of it
rotation keys, 11.7 MB per step at ``n16384``). Keys made for one model
(:meth:`CKKSCodec.keygen_options_for`, ``henn keygen --for``) carry only the rotation keys it
uses, at most as many as keep the public material within 64 MB, on the shortest chain that holds
its step (:meth:`CKKSCodec.parameter_set_for`): 60.2 MB for the XOR network at ``n16384``, 59.5 MB
for the sentiment network at ``n16384-9`` (7.3 MB per rotation key). A ``secret.henn`` is about as
large as ``public.henn``: :meth:`CKKSSecretKey.to_bytes` embeds the public material.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from hennframework.plugin import (
    CapabilityError,
    EntrySink,
    EntrySource,
    HennError,
    InputError,
    KeyMismatchError,
    NoiseBudgetExhaustedError,
    OverflowRiskError,
    SerializationError,
    parameter_record,
)

from hennframework_ckks._seal import sa
from hennframework_ckks.keys import (
    CKKSPublicKey,
    CKKSSecretKey,
    check_key_id,
    choose_rotation_keys,
    record_rotations,
    rotation_keys_within,
)
from hennframework_ckks.params import PARAMETER_SETS, CKKSParams
from hennframework_ckks.scheme import CKKSScheme
from hennframework_ckks.serialization import tensors_from_bytes, tensors_to_bytes
from hennframework_ckks.shared import SCHEME_NAME, params_json, scheme_for
from hennframework_ckks.tensor import CKKSTensor, Deferred

#: Rotation keys a key set made for one model holds at most, unless told otherwise: as many as
#: keep its public material within 64 MB (:func:`~hennframework_ckks.keys.rotation_keys_within`:
#: 4 at ``n16384``, 11.7 MB per rotation key; 7 at ``n16384-9``); a model whose rotations need
#: more powers of two makes them as sums.
DEFAULT_ROTATION_KEYS = "budget"

# scheme_for is defined in hennframework_ckks.shared (below the tensor module, which uses it)
__all__ = ["CODEC", "CKKSCodec", "scheme_for"]

_ENCODING = "ckks/tensors-v1"
_VALUE_FIELDS = ("poly_modulus_degree", "coeff_bits", "scale_bits")
_SECRET_SEAL_TYPES: tuple[type, ...] = tuple(
    t
    for t in (
        getattr(sa, "SecretKey", None),
        getattr(sa, "Decryptor", None),
        getattr(sa, "KeyGenerator", None),
    )
    if isinstance(t, type)
)
_NO_SWITCH = (
    "CKKS has no keyless switching key (switching without a secret is not available in this "
    "release); the owner, who holds the model's secret key, re-encrypts the model under the new "
    "key instead: `henn switch-key --model MODEL --secret OLD_SECRET --public NEW_PUBLIC --out "
    "OUT` (it decrypts and re-encrypts; see docs/parties.md)."
)


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _fail(where: str, message: str) -> SerializationError:
    return SerializationError(f"{where}: {message}; the file is corrupted or was tampered with.")


def _key_id(value: Any, where: str) -> str:
    return check_key_id(value, where)


def _same_ring(a: CKKSParams, b: CKKSParams) -> bool:
    return (
        a.poly_modulus_degree == b.poly_modulus_degree
        and tuple(a.coeff_bits) == tuple(b.coeff_bits)
        and a.scale_bits == b.scale_bits
    )


def _tenseal_context_type() -> type | None:
    try:
        import tenseal
    except ImportError:  # pragma: no cover - the plugin depends on tenseal
        return None
    context_type = getattr(tenseal, "Context", None)
    return context_type if isinstance(context_type, type) else None


_TENSEAL_CONTEXT = _tenseal_context_type()


def _tenseal_context_has_secret(value: Any) -> bool:
    """A TenSEAL ``Context`` that carries a secret key (a plugin user might hold one)."""
    if _TENSEAL_CONTEXT is None or not isinstance(value, _TENSEAL_CONTEXT):
        return False
    has_secret: Any = getattr(value, "has_secret_key", None)
    return bool(has_secret()) if callable(has_secret) else True


class CKKSCodec:
    """Saves and loads :class:`CKKSTensor`, :class:`CKKSPublicKey` and :class:`CKKSSecretKey`."""

    scheme_name = SCHEME_NAME

    def __init__(self) -> None:
        #: every live public-key object of each key id, held weakly, oldest first: the caller
        #: (and the tensors bound to a key) own a key's lifetime, this registry only finds it. All
        #: of them, not one entry per id, so that a later load of the same key cannot displace an
        #: object still in use and, once dropped, leave that object's tensors without a key.
        self._keys: dict[str, list[weakref.ref[CKKSPublicKey]]] = {}
        self._lock = threading.Lock()

    def remember(self, public: CKKSPublicKey) -> None:
        """Register ``public`` for its key id (the newest registration is found first)."""
        with self._lock:
            for key_id in list(self._keys):  # forget objects (and ids) that have been dropped
                live = [ref for ref in self._keys[key_id] if ref() is not None]
                if live:
                    self._keys[key_id] = live
                else:
                    del self._keys[key_id]
            refs = self._keys.setdefault(public.key_id, [])
            refs[:] = [ref for ref in refs if ref() is not public]
            refs.append(weakref.ref(public))

    def lookup(self, key_id: str) -> CKKSPublicKey | None:
        """The newest live public key registered with this id; None if none is loaded."""
        with self._lock:
            for ref in reversed(self._keys.get(key_id, [])):
                public = ref()
                if public is not None:
                    return public
        return None

    # -- parameters ---------------------------------------------------------------------------
    def parameters(self, scheme: Any) -> dict[str, Any]:
        params = scheme if isinstance(scheme, CKKSParams) else scheme.params
        if not isinstance(params, CKKSParams):
            raise SerializationError(f"{scheme!r} is not a CKKS scheme instance.")
        return params_json(params)

    def make_scheme(self, parameters: Mapping[str, Any], backend: Any) -> CKKSScheme:
        name, values = parameter_record(parameters, _VALUE_FIELDS, "CKKS")
        degree, bits, scale_bits = (values[f] for f in _VALUE_FIELDS)
        if (
            not isinstance(degree, int)
            or isinstance(degree, bool)
            or not isinstance(scale_bits, int)
            or isinstance(scale_bits, bool)
            or not isinstance(bits, list)
            or not all(isinstance(b, int) and not isinstance(b, bool) for b in bits)
        ):
            raise SerializationError(
                "the file's CKKS parameters must be integers (poly_modulus_degree, scale_bits) "
                "and a list of integers (coeff_bits); the file is corrupted."
            )
        description = parameters.get("description")
        try:
            params = CKKSParams(
                name=name,
                poly_modulus_degree=degree,
                coeff_bits=tuple(bits),
                scale_bits=scale_bits,
                description=description if isinstance(description, str) else "",
            )
        except HennError as exc:  # CKKSParams checks 128-bit security and SEAL's limits
            raise SerializationError(f"the file's CKKS parameter set is invalid: {exc}") from exc
        known = PARAMETER_SETS.get(name)
        if known is not None:
            if not _same_ring(known, params):
                raise SerializationError(
                    f"the file's CKKS parameter set {name!r} differs from this version's set of "
                    f"the same name (file: {params.describe()}; here: {known.describe()}). Use the "
                    "plugin version that wrote it, or re-create the keys and files with this one."
                )
            params = known
        return CKKSScheme(params, backend=backend)

    # -- identification -----------------------------------------------------------------------
    def is_secret(self, value: Any) -> bool:
        if isinstance(value, CKKSSecretKey):
            return True
        if _SECRET_SEAL_TYPES and isinstance(value, _SECRET_SEAL_TYPES):
            return True
        return _tenseal_context_has_secret(value)

    def key_id(self, value: Any) -> str | None:
        if isinstance(value, CKKSTensor | Deferred | CKKSPublicKey | CKKSSecretKey):
            return str(value.key_id)
        return None

    def fingerprint(self, key: Any) -> str:
        """The key id computed from the key's own bytes (public part of a secret key)."""
        if isinstance(key, CKKSSecretKey):
            key = key.public
        if not isinstance(key, CKKSPublicKey):
            raise SerializationError(
                f"only CKKS public and secret keys have fingerprints, not a {type(key).__name__}"
            )
        return key.fingerprint

    def fingerprint_scope(self, key: Any) -> tuple[list[str], list[str]]:
        """(what the fingerprint covers, what the file holds beyond it: nothing for CKKS)."""
        public = key.public if isinstance(key, CKKSSecretKey) else key
        if not isinstance(public, CKKSPublicKey):
            return [], []
        sizes = public.size_bytes()
        covered = [
            f"public key ({_megabytes(sizes['public_key'])})",
            f"relinearisation key ({_megabytes(sizes['relin_keys'])})",
        ]
        if public.rotation_steps:
            steps = ", ".join(str(step) for step in sorted(public.rotation_steps))
            covered.append(f"rotation keys for steps {steps} ({_megabytes(sizes['galois_keys'])})")
        return covered, []

    def key_contents(self, key: Any) -> dict[str, Any]:
        """The public material's parts with their sizes in the file (``henn inspect``)."""
        public = key.public if isinstance(key, CKKSSecretKey) else key
        if not isinstance(public, CKKSPublicKey):
            return {}
        sizes = public.size_bytes()
        return {
            "rotation_steps": sorted(public.rotation_steps),
            "public_key_bytes": sizes["public_key"],
            "relin_key_bytes": sizes["relin_keys"],
            "rotation_key_bytes": sizes["galois_keys"],
            "public_material_bytes": sum(sizes.values()),
        }

    # -- keys for one model ---------------------------------------------------------------------
    def model_rotation_steps(
        self, scheme: Any, model: Any, batches: Sequence[Any], most: int | None = None
    ) -> frozenset[int]:
        """The rotation steps to make keys for so that ``model`` can train on and predict
        ``batches``: every power of two up to the widest rotation a trial run uses, or, when
        those are more than ``most``, the ``most`` of them that make the rotations of the trial's
        largest batch (a party's steps are full batches but for the last) with the fewest key
        switches (:func:`~hennframework_ckks.keys.choose_rotation_keys`).

        The trial encrypts ``model`` under a throwaway key without rotation keys whose rotations
        are recorded, not computed (:func:`~hennframework_ckks.keys.record_rotations`), and runs
        one training step and one prediction per batch on fresh weights: the rotations are those
        the layout and linear-map code chooses for the model's shapes. Which diagonals a
        plaintext linear map has depends on the data's zeros, so rather than the steps seen the
        result is powers of two, 1 among them: every rotation other data or a larger batch may
        need is then a sum of them (more key switches, never a wrong result).
        """
        trial = scheme.keygen(rotations="none")
        used = record_rotations(trial.public)
        training: NoiseBudgetExhaustedError | None = None
        # a party's steps are full batches but for one: the rotations of the largest batch
        # decide which keys are worth having; the smaller ones only need to be possible
        largest: tuple[int, Counter[int]] = (-1, Counter())
        for batch in batches:
            before = Counter(used)
            try:
                model.encrypt(trial, scheme).predict(batch.inputs)
            except NoiseBudgetExhaustedError as exc:  # deeper than a fresh ciphertext
                raise InputError(
                    f"a prediction of this model needs more levels than the parameter set "
                    f"{scheme.params.name!r} has, so no keys of this set can run it. Use a "
                    "parameter set with more levels (n16384), a shallower network or a "
                    "lower-degree activation."
                ) from exc
            if training is None:
                try:
                    model.encrypt(trial, scheme).train_step(batch, 0.1)  # any rate: values unused
                except NoiseBudgetExhaustedError as exc:
                    training = exc
            if batch.size > largest[0]:
                largest = (batch.size, used - before)
        if training is not None:
            warnings.warn(
                f"one training step of this model needs more levels than the parameter set "
                f"{scheme.params.name!r} has ({training}); these keys are made for predictions "
                "only. For training, use a parameter set with more levels.",
                stacklevel=2,
            )
        return choose_rotation_keys(trial.public.context.slots, largest[1], most, reach=used)

    def parameter_set_for(self, scheme: Any, model: Any, batch: Any) -> str:
        """The parameter set to train ``model`` under when none is named: of the sets with
        ``scheme``'s ring degree, the one with the fewest levels that holds one training step
        on ``batch`` from fresh weights with 2 levels to spare (the owner's refresher adds one
        where values grow, and one where a step was refused), else ``scheme``'s own set.

        Levels a step does not use cost twice: every key-switching key holds a polynomial per
        level, so a shorter chain means smaller keys (more rotation keys in the same file) and
        a first refresh that does not go to a top level no step needs. The trial encrypts
        ``model`` under a throwaway key whose rotations are recorded, not computed
        (:func:`~hennframework_ckks.keys.record_rotations`): only the levels matter.
        """
        trial = scheme.keygen(rotations="none")
        record_rotations(trial.public)
        encrypted = model.encrypt(trial, scheme)
        try:
            encrypted.train_step(batch, 0.1)  # any rate: values unused
        except (NoiseBudgetExhaustedError, OverflowRiskError):
            # deeper than the set, or values the trial's random data make too large: no
            # evidence for a shorter chain, so the set asked for
            return str(scheme.params.name)
        weights = [w.materialize() if isinstance(w, Deferred) else w for w in encrypted.weights()]
        used = scheme.params.levels - min(int(w.levels_left) for w in weights)
        fitting = [
            params
            for params in PARAMETER_SETS.values()
            if params.poly_modulus_degree == scheme.params.poly_modulus_degree
            and used + 2 <= params.levels
        ]
        chosen = min(fitting, key=lambda params: params.levels, default=scheme.params)
        return str(chosen.name)

    def keygen_options_for(
        self,
        scheme: Any,
        model: Any,
        batches: Sequence[Any],
        rotation_keys: int | str | None = DEFAULT_ROTATION_KEYS,
    ) -> dict[str, Any]:
        """``keygen`` options for keys with only the rotation keys ``model`` uses on ``batches``
        (:meth:`model_rotation_steps`), at most ``rotation_keys`` of them (None: every power of
        two the model's rotations reach; ``"budget"``: as many as keep the public material
        within 64 MB): ``{"rotations": [...]}``."""
        if rotation_keys == DEFAULT_ROTATION_KEYS:
            rotation_keys = rotation_keys_within(scheme.params)
        if isinstance(rotation_keys, str):
            raise InputError(
                f"rotation_keys must be a number, None or {DEFAULT_ROTATION_KEYS!r}, "
                f"got {rotation_keys!r}"
            )
        steps = self.model_rotation_steps(scheme, model, batches, rotation_keys)
        return {"rotations": sorted(steps)}

    # -- tensors ------------------------------------------------------------------------------
    def write_tensors(self, tensors: Sequence[Any], sink: EntrySink, prefix: str) -> dict[str, Any]:
        items = [t.materialize() if isinstance(t, Deferred) else t for t in tensors]
        for index, tensor in enumerate(items):
            if not isinstance(tensor, CKKSTensor):
                raise SerializationError(
                    f"tensor {index} is a {type(tensor).__name__}, not a CKKS tensor."
                )
        meta: dict[str, Any] = {
            "encoding": _ENCODING,
            "count": len(items),
            "shapes": [list(t.shape) for t in items],
        }
        if not items:
            meta["key_id"] = None
            return meta
        self.remember(items[0].key)
        meta["key_id"] = items[0].key_id
        meta["data"] = sink.add_blob(f"{prefix}tensors", tensors_to_bytes(items))
        return meta

    def read_tensors(
        self, meta: Mapping[str, Any], source: EntrySource, prefix: str, scheme: Any
    ) -> list[Any]:
        where = source.where
        if meta.get("encoding") != _ENCODING:
            raise _fail(where, f"unknown CKKS tensor encoding {meta.get('encoding')!r}")
        count = meta.get("count")
        shapes = meta.get("shapes")
        if (
            not isinstance(count, int)
            or isinstance(count, bool)
            or count < 0
            or not isinstance(shapes, list)
            or len(shapes) != count
        ):
            raise _fail(where, "CKKS tensor metadata is malformed")
        if count == 0:
            return []
        key_id = _key_id(meta.get("key_id"), where)
        public = self.lookup(key_id)
        if public is None:
            raise KeyMismatchError(
                f"{where} holds CKKS tensors under key {key_id}, but no public or secret key with "
                "that id has been loaded in this process. Load the key first "
                "(hennframework.io.load_public_key / load_secret_key, or pass --public/--secret) "
                "and then the file."
            )
        params = getattr(scheme, "params", None)
        if isinstance(params, CKKSParams) and not _same_ring(params, public.params):
            raise KeyMismatchError(
                f"{where}: the key {key_id} is for parameter set {public.params.name!r}, the file "
                f"for {params.name!r}."
            )
        try:
            tensors = tensors_from_bytes(source.blob(meta.get("data")), public)
        except (KeyError, TypeError, ValueError) as exc:
            raise _fail(where, f"the CKKS tensor data is unreadable ({exc!r})") from exc
        if len(tensors) != count or [list(t.shape) for t in tensors] != shapes:
            raise _fail(where, "the CKKS tensors do not match their metadata")
        return list(tensors)

    # -- keys -----------------------------------------------------------------------------------
    def write_public_key(self, public: Any, sink: EntrySink, prefix: str) -> dict[str, Any]:
        if not isinstance(public, CKKSPublicKey):
            raise SerializationError(
                f"expected a CKKS public key (CKKSPublicKey), got {type(public).__name__}"
            )
        self.remember(public)
        return {
            "key_id": public.key_id,
            "rotation_steps": sorted(public.rotation_steps),
            "data": sink.add_blob(f"{prefix}public", public.to_bytes()),
        }

    def read_public_key(
        self, meta: Mapping[str, Any], source: EntrySource, prefix: str, scheme: Any
    ) -> CKKSPublicKey:
        where = source.where
        key_id = _key_id(meta.get("key_id"), where)
        try:
            public = CKKSPublicKey.from_bytes(source.blob(meta.get("data")))
        except HennError as exc:  # a fingerprint mismatch, an older file: keep the message
            raise type(exc)(f"{where}: {exc}") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise _fail(where, f"the CKKS public key is unreadable ({exc!r})") from exc
        self._check_key(public, key_id, scheme, where)
        self.remember(public)
        return public

    def write_secret_key(self, secret: Any, sink: EntrySink, prefix: str) -> dict[str, Any]:
        if not isinstance(secret, CKKSSecretKey):
            raise SerializationError(
                f"expected the CKKS secret key (CKKSSecretKey), got {type(secret).__name__}"
            )
        self.remember(secret.public)
        return {
            "key_id": secret.key_id,
            "data": sink.add_blob(f"{prefix}secret", secret.to_bytes()),
        }

    def read_secret_key(
        self, meta: Mapping[str, Any], source: EntrySource, prefix: str, scheme: Any
    ) -> CKKSSecretKey:
        where = source.where
        key_id = _key_id(meta.get("key_id"), where)
        try:
            secret = CKKSSecretKey.from_bytes(source.blob(meta.get("data")))
        except HennError as exc:  # a fingerprint or pairing mismatch, an older file
            raise type(exc)(f"{where}: {exc}") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise _fail(where, f"the CKKS secret key is unreadable ({exc!r})") from exc
        self._check_key(secret.public, key_id, scheme, where)
        self.remember(secret.public)
        return secret

    @staticmethod
    def _check_key(public: CKKSPublicKey, key_id: str, scheme: Any, where: str) -> None:
        if public.key_id != key_id:
            raise _fail(where, f"the key's id {public.key_id!r} differs from the metadata's")
        params = getattr(scheme, "params", None)
        if isinstance(params, CKKSParams) and not _same_ring(params, public.params):
            raise _fail(
                where,
                f"the key is for parameter set {public.params.name!r} but the file declares "
                f"{params.name!r}",
            )

    def write_switch_key(self, key: Any, sink: EntrySink, prefix: str) -> dict[str, Any]:
        raise CapabilityError(_NO_SWITCH)

    def read_switch_key(
        self, meta: Mapping[str, Any], source: EntrySource, prefix: str, scheme: Any
    ) -> Any:
        raise CapabilityError(_NO_SWITCH)


#: The codec instance that :mod:`hennframework_ckks` registers for the scheme name ``ckks``.
CODEC = CKKSCodec()
