"""Saving and loading what crosses a party boundary: keys, ciphertexts, models, histories.

Every function here writes or reads one ``.henn`` file (format: :mod:`hennframework.io.container`;
scheme-specific parts: :mod:`hennframework.io.codecs`). Writers of shareable files refuse any
secret key found anywhere in what they are given; the secret key has its own writer, which
creates the file with mode 0600. Loaders check the file's kind, so a secret key passed where a
public key is expected is refused (and named as secret in the message).

Key ids are fingerprints of the keys' public material (docs/parties.md, "Key fingerprints"):
key writers refuse a key whose id is not its fingerprint, key loaders recompute it and refuse a
mismatch, and the loaders of encrypted files take ``expect_key=`` to refuse, before reading any
ciphertext, a file under another key.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hennframework._callsite import user_stacklevel
from hennframework.exceptions import KeyMismatchError, SerializationError
from hennframework.io.codecs import (
    EntrySink,
    EntrySource,
    adopt_scheme,
    codec_for,
    refuse_secrets,
    scheme_instance,
)
from hennframework.io.container import Bundle, read_bundle, untrusted_loader, write_bundle
from hennframework.io.models import (
    ModelBundle,
    build_model,
    decode_history,
    encode_architecture,
    encode_history,
)
from hennframework.nn.model import Sequential
from hennframework.nn.ops import is_encrypted
from hennframework.nn.training import History, TrainingState
from hennframework.scheme import KeySet

__all__ = [
    "KeyFile",
    "PredictionsFile",
    "load_ciphertexts",
    "load_history",
    "load_model",
    "load_predictions",
    "load_public_key",
    "load_secret_key",
    "load_switch_key",
    "save_ciphertexts",
    "save_history",
    "save_keys",
    "save_model",
    "save_predictions",
    "save_public_key",
    "save_secret_key",
    "save_switch_key",
]

PathLike = str | os.PathLike[str]


@dataclass
class KeyFile:
    """A loaded key (public, secret or switching) with the scheme instance it belongs to.

    ``verified`` is True when the key id was recomputed from the key (its fingerprint) on load;
    switching keys and keys of schemes whose codec cannot fingerprint stay unverified.
    """

    key: Any
    scheme: Any
    key_id: str
    path: str
    metadata: dict[str, Any]
    verified: bool = False

    def keyset(self, public: Any = None) -> KeySet:
        """A :class:`KeySet` around this key (secret key files: the owner's operations need one)."""
        codec = codec_for(self.scheme)
        as_set = getattr(getattr(self.scheme, "params", None), "as_parameter_set", None)
        params = as_set() if callable(as_set) else self.scheme.get_parameter_set()
        is_secret = codec.is_secret(self.key)
        public_key = public if public is not None else (None if is_secret else self.key)
        return KeySet(
            params,
            self.key if is_secret else None,
            public_key,
            getattr(public_key, "evaluation", None),
            self.key_id,
            scheme=self.scheme,
        )


@dataclass
class PredictionsFile:
    """Predictions: encrypted tensors (party side) or plain values (after the owner decrypts)."""

    tensors: list[Any]
    values: npt.NDArray[np.float64] | None
    scheme: Any
    key_id: str | None
    metadata: dict[str, Any]

    @property
    def encrypted(self) -> bool:
        return self.values is None


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def _scheme_of_tensors(tensors: Sequence[Any]) -> Any:
    schemes = {id(getattr(t, "scheme", None)): getattr(t, "scheme", None) for t in tensors}
    schemes.pop(id(None), None)
    if not schemes:
        raise SerializationError("cannot tell which scheme these tensors belong to; pass scheme=.")
    first = next(iter(schemes.values()))
    codec = codec_for(first)
    params = codec.parameters(first)
    for other in schemes.values():
        if codec_for(other) is not codec or codec.parameters(other) != params:
            raise KeyMismatchError("the tensors belong to different schemes or parameter sets.")
    return first


def _key_ids(tensors: Sequence[Any], codec: Any) -> set[str]:
    return {kid for kid in (codec.key_id(t) for t in tensors) if kid is not None}


def _scheme_header(scheme: Any) -> dict[str, Any]:
    codec = codec_for(scheme)
    return {"scheme": codec.scheme_name, "parameter_set": codec.parameters(scheme)}


def _write_entries(
    path: PathLike,
    kind: str,
    scheme: Any,
    sink: EntrySink,
    metadata: Mapping[str, Any],
    key_id: str | None,
    *,
    private: bool | None = None,
) -> Path:
    """Write a file whose entries the scheme's codec put in ``sink``, with the scheme's header.

    Every file of keys or ciphertexts is written this one way, so each names its scheme,
    parameter set and key the same way for :func:`_load_scheme` and the key checks.
    """
    return write_bundle(
        path,
        kind,
        arrays=sink.arrays,
        blobs=sink.blobs,
        metadata=metadata,
        key_id=key_id,
        private=private,
        **_scheme_header(scheme),
    )


def _load_scheme(bundle: Bundle, backend: Any, scheme: Any) -> Any:
    name = bundle.scheme
    params = bundle.manifest.get("parameter_set")
    if name is None or not isinstance(params, dict):
        raise SerializationError(
            f"{bundle.path}: the manifest names no scheme or parameter set; the file is corrupted."
        )
    if scheme is not None:
        codec = codec_for(scheme)
        if codec.scheme_name != name or codec.parameters(scheme) != params:
            raise KeyMismatchError(
                f"{bundle.path} is for scheme {name!r} with parameter set "
                f"{params.get('name')!r}, not the scheme instance passed in."
            )
        adopt_scheme(scheme)
        return scheme
    return scheme_instance(name, params, backend)


def _source(bundle: Bundle) -> EntrySource:
    return EntrySource(bundle.arrays, bundle.blobs, bundle.path)


def _fingerprint(codec: Any, key: Any) -> str | None:
    """The key id recomputed from ``key`` (None if the scheme's codec cannot fingerprint keys)."""
    recompute = getattr(codec, "fingerprint", None)
    return str(recompute(key)) if callable(recompute) else None


def _refuse_unfingerprinted(codec: Any, key: Any, what: str) -> None:
    """Writers: a key whose id is not its fingerprint would be refused by every loader."""
    actual = _fingerprint(codec, key)
    claimed = codec.key_id(key)
    if actual is not None and actual != claimed:
        raise KeyMismatchError(
            f"refusing to write {what}: the key is labelled {claimed} but its fingerprint is "
            f"{actual}. A key id must be the fingerprint of the key; use the keys as keygen made them."
        )


def _verify_loaded_key(bundle: Bundle, codec: Any, key: Any) -> tuple[str, bool]:
    """(key id, verified): the id recomputed from the key must match the file's and the key's."""
    key_id = codec.key_id(key) or ""
    if key_id != bundle.key_id:
        raise SerializationError(
            f"{bundle.path}: the key id in the manifest ({bundle.key_id}) does not match the key "
            f"({key_id}); the file was tampered with."
        )
    actual = _fingerprint(codec, key)
    if actual is None:
        warnings.warn(
            f"{bundle.path}: the scheme {codec.scheme_name!r} cannot recompute key fingerprints, "
            f"so the key id {key_id} is an unverified label. Check with the key's owner that it "
            "is their key.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        return key_id, False
    if actual != key_id:
        raise KeyMismatchError(
            f"{bundle.path}: this key is labelled {key_id}, but its fingerprint is {actual}: it is "
            "a different key under another key's id, or it was damaged. Do not use it; get the "
            "owner's key file again and check its fingerprint (`henn inspect`) against the one "
            "the owner published."
        )
    return key_id, True


def _check_expected_key(bundle: Bundle, expect_key: KeyFile | None) -> None:
    """Refuse an encrypted file under another key than ``expect_key``, before decoding it."""
    if expect_key is None or bundle.key_id is None or bundle.key_id == expect_key.key_id:
        return
    which = "secret key" if codec_for(expect_key.scheme).is_secret(expect_key.key) else "public key"
    raise KeyMismatchError(
        f"{bundle.path} is encrypted under key {bundle.key_id}, but {expect_key.path} is the "
        f"{which} {expect_key.key_id}: use the key {bundle.key_id} (or have the file switched to "
        f"{expect_key.key_id}). If you made no key {bundle.key_id}, the file was encrypted under "
        "someone else's key: do not trust what it holds."
    )


def _single_key_id(ids: set[str], what: str) -> str | None:
    if len(ids) > 1:
        raise KeyMismatchError(
            f"{what} mixes tensors under different keys ({', '.join(sorted(ids))})."
        )
    return next(iter(ids)) if ids else None


# ------------------------------------------------------------------------------------------
# keys
# ------------------------------------------------------------------------------------------
def _read_key(bundle: Bundle, backend: Any, scheme: Any, *, secret: bool) -> KeyFile:
    """The public or secret key of a key file: decoded by the scheme's codec, fingerprint checked."""
    scheme = _load_scheme(bundle, backend, scheme)
    source = _source(bundle)
    codec = codec_for(scheme)
    read = codec.read_secret_key if secret else codec.read_public_key
    name, prefix = ("secret_key", "sk.") if secret else ("public_key", "pk.")
    key = read(bundle.metadata.get(name) or {}, source, prefix, scheme)
    source.check_all_used()
    key_id, verified = _verify_loaded_key(bundle, codec, key)
    return KeyFile(key, scheme, key_id, bundle.path, bundle.metadata, verified)


def save_public_key(path: PathLike, keys: KeySet | Any, scheme: Any = None) -> Path:
    """Write the public key (encryption + evaluation keys). Accepts a KeySet: only ``.public`` is written."""
    public = keys.public if isinstance(keys, KeySet) else keys
    scheme = scheme or (keys.scheme if isinstance(keys, KeySet) else None)
    if scheme is None:
        raise SerializationError("pass scheme= (the scheme instance the keys belong to).")
    refuse_secrets(public, "a public key file")
    codec = codec_for(scheme)
    _refuse_unfingerprinted(codec, public, "a public key file")
    sink = EntrySink()
    meta = codec.write_public_key(public, sink, "pk.")
    return _write_entries(
        path, "public-key", scheme, sink, {"public_key": meta}, codec.key_id(public)
    )


@untrusted_loader
def load_public_key(path: PathLike, *, backend: Any = None, scheme: Any = None) -> KeyFile:
    """Read a public key, verify its fingerprint, register it with the scheme for evaluation."""
    return _read_key(read_bundle(path, kinds=("public-key",)), backend, scheme, secret=False)


def save_secret_key(path: PathLike, keys: KeySet | Any, scheme: Any = None) -> Path:
    """Write the secret key to its own file, mode 0600. Never share this file."""
    secret = keys.secret if isinstance(keys, KeySet) else keys
    scheme = scheme or (keys.scheme if isinstance(keys, KeySet) else None)
    if scheme is None:
        raise SerializationError("pass scheme= (the scheme instance the key belongs to).")
    codec = codec_for(scheme)
    if not codec.is_secret(secret):
        raise SerializationError(
            f"save_secret_key needs the secret key, got a {type(secret).__name__}."
        )
    _refuse_unfingerprinted(codec, secret, "a secret key file")
    sink = EntrySink()
    meta = codec.write_secret_key(secret, sink, "sk.")
    return _write_entries(
        path,
        "secret-key",
        scheme,
        sink,
        {"secret_key": meta, "warning": "SECRET KEY: keep this file to yourself."},
        codec.key_id(secret),
        private=True,
    )


@untrusted_loader
def load_secret_key(path: PathLike, *, backend: Any = None, scheme: Any = None) -> KeyFile:
    """Read a secret key (owner side), verifying its fingerprint and that it pairs with its
    public part. Warns if the file is readable by others."""
    bundle = read_bundle(path, kinds=("secret-key",))
    if os.name == "posix":
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except OSError:
            mode = 0
        if mode & 0o077:
            warnings.warn(
                f"the secret key file {path} is readable or writable by other users (mode {mode:o}); "
                f"run `chmod 600 {path}`.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
    return _read_key(bundle, backend, scheme, secret=True)


def save_keys(directory: PathLike, keys: KeySet, *, overwrite: bool = False) -> tuple[Path, Path]:
    """``DIRECTORY/secret.henn`` (0600) and ``DIRECTORY/public.henn`` from a KeySet, both or neither.

    Both files are first written under temporary names, the secret key first (mode 0600 from its
    creation), then renamed into place, the secret key first. If anything fails (a full disk, an
    interrupt), what was written is removed and a previous pair (``overwrite``) is left as it
    was: never a secret key without its public key, nor a public key from another pair.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    secret_path, public_path = folder / "secret.henn", folder / "public.henn"
    if not overwrite and (secret_path.exists() or public_path.exists()):
        raise SerializationError(
            f"{folder} already holds keys; refusing to overwrite them (files encrypted under the old "
            "keys would become undecryptable). Choose another folder or pass overwrite=True (--force)."
        )
    token = os.urandom(4).hex()
    staged_secret = folder / f".secret.henn.{token}.staged"
    staged_public = folder / f".public.henn.{token}.staged"
    previous = folder / f".secret.henn.{token}.previous"
    kept_previous = placed = done = False
    try:
        save_secret_key(staged_secret, keys)
        save_public_key(staged_public, keys)
        if secret_path.exists():  # overwrite: keep the old secret until the new pair is complete
            _keep(secret_path, previous)
            kept_previous = True
        os.replace(staged_secret, secret_path)
        placed = True
        os.replace(staged_public, public_path)
        done = True
    finally:
        if not done:
            if kept_previous:  # the old pair again, whether or not the new secret was placed
                os.replace(previous, secret_path)
            elif placed:  # a new secret key without its public key: remove it
                secret_path.unlink(missing_ok=True)
        for leftover in (staged_secret, staged_public):
            leftover.unlink(missing_ok=True)
        if done and kept_previous:
            previous.unlink(missing_ok=True)
    return secret_path, public_path


def _keep(path: Path, keeper: Path) -> None:
    """A second name for ``path`` (a hard link; a rename where links are not supported)."""
    try:
        os.link(path, keeper)
    except OSError:
        os.replace(path, keeper)


def save_switch_key(path: PathLike, key: Any, scheme: Any) -> Path:
    """Write key-switching material (public: whoever applies it learns nothing new)."""
    refuse_secrets(key, "a key-switching file")
    codec = codec_for(scheme)
    sink = EntrySink()
    meta = codec.write_switch_key(key, sink, "ks.")
    return _write_entries(path, "switch-key", scheme, sink, {"switch_key": meta}, codec.key_id(key))


@untrusted_loader
def load_switch_key(path: PathLike, *, backend: Any = None, scheme: Any = None) -> KeyFile:
    bundle = read_bundle(path, kinds=("switch-key",))
    scheme = _load_scheme(bundle, backend, scheme)
    source = _source(bundle)
    key = codec_for(scheme).read_switch_key(
        bundle.metadata.get("switch_key") or {}, source, "ks.", scheme
    )
    source.check_all_used()
    return KeyFile(key, scheme, codec_for(scheme).key_id(key) or "", bundle.path, bundle.metadata)


# ------------------------------------------------------------------------------------------
# ciphertexts
# ------------------------------------------------------------------------------------------
def save_ciphertexts(
    path: PathLike,
    tensors: Mapping[str, Any],
    *,
    kind: str = "ciphertexts",
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write named encrypted tensors (all under one key)."""
    names = list(tensors)
    values = [tensors[n] for n in names]
    refuse_secrets(values, f"a {kind} file")
    scheme = _scheme_of_tensors(values)
    codec = codec_for(scheme)
    key_id = _single_key_id(_key_ids(values, codec), "the file")
    sink = EntrySink()
    meta = codec.write_tensors(values, sink, "ct.")
    metadata = {**dict(metadata or {}), "names": names, "tensors": meta}
    return _write_entries(path, kind, scheme, sink, metadata, key_id)


@untrusted_loader
def load_ciphertexts(
    path: PathLike,
    *,
    kind: str = "ciphertexts",
    backend: Any = None,
    scheme: Any = None,
    expect_key: KeyFile | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tensors by name, the file's metadata); ``expect_key``: refuse tensors under another key."""
    bundle = read_bundle(path, kinds=(kind,))
    _check_expected_key(bundle, expect_key)
    scheme = _load_scheme(bundle, backend, scheme)
    meta = bundle.metadata
    names = meta.get("names")
    source = _source(bundle)
    tensors = codec_for(scheme).read_tensors(meta.get("tensors") or {}, source, "ct.", scheme)
    source.check_all_used()
    if (
        not isinstance(names, list)
        or len(names) != len(tensors)
        or not all(isinstance(n, str) for n in names)
    ):
        raise SerializationError(f"{bundle.path}: tensor names do not match the tensors.")
    _check_key(bundle, tensors, scheme)
    return dict(zip(names, tensors, strict=True)), meta


def _check_key(bundle: Bundle, tensors: Sequence[Any], scheme: Any) -> None:
    ids = _key_ids(tensors, codec_for(scheme))
    if ids and ids != {bundle.key_id}:
        raise SerializationError(
            f"{bundle.path}: its tensors are under key(s) {sorted(ids)} but the manifest says "
            f"{bundle.key_id}; the file was tampered with."
        )


# ------------------------------------------------------------------------------------------
# models and histories
# ------------------------------------------------------------------------------------------
def save_model(
    path: PathLike, model: Sequential | ModelBundle, *, vocabulary: Sequence[str] | None = None
) -> Path:
    """Write a model: ``encrypted-model`` (shareable) or ``plain-model`` (private, mode 0600).

    ``model`` may be a :class:`ModelBundle` (with its vocabulary). The model's history and
    training state travel with it; encrypted models carry their encrypted losses but never
    plaintext loss values (which only the key holder may see).
    """
    if isinstance(model, ModelBundle):
        vocabulary = model.vocabulary if vocabulary is None else vocabulary
        model = model.model
    history, training = model.history, model.state.to_json()
    arch, values = encode_architecture(model, vocabulary)
    encrypted = bool(model.encrypted)
    history_meta, losses = encode_history(history, keep_plain_losses=not encrypted)
    metadata: dict[str, Any] = {
        "architecture": arch,
        "history": history_meta,
        "training": training,
        "encrypted": encrypted,
    }
    sink = EntrySink()
    if encrypted:
        refuse_secrets([model, history, training], "an encrypted model file")
        if not all(is_encrypted(v) for v in values):
            raise SerializationError(
                "an encrypted model has plaintext weights; encrypt every weight first."
            )
        scheme = model.scheme
        codec = codec_for(scheme)
        metadata["weights"] = codec.write_tensors(values, sink, "w.")
        metadata["losses"] = codec.write_tensors(losses, sink, "loss.") if losses else None
        key_id = _single_key_id(_key_ids(values, codec), "the model")
        if model.key_id is not None and key_id is not None and model.key_id != key_id:
            raise KeyMismatchError(
                f"the model says key {model.key_id} but its weights are under {key_id}."
            )
        return _write_entries(path, "encrypted-model", scheme, sink, metadata, key_id)
    if losses:
        raise SerializationError(
            "a plain model's history holds encrypted losses; decrypt them first (history.decrypt)."
        )
    for index, value in enumerate(values):
        sink.add_array(f"w.{index}", np.asarray(value, dtype=np.float64))
    metadata["weights"] = {"count": len(values)}
    return write_bundle(path, "plain-model", arrays=sink.arrays, metadata=metadata)


@untrusted_loader
def load_model(
    path: PathLike,
    *,
    kinds: Sequence[str] = ("encrypted-model", "plain-model"),
    backend: Any = None,
    scheme: Any = None,
    expect_key: KeyFile | None = None,
) -> ModelBundle:
    """Read a model file (encrypted or plain, as ``kinds`` allows).

    ``expect_key``: the key the model must be encrypted under (refused before any weight is read).
    """
    bundle = read_bundle(path, kinds=kinds)
    _check_expected_key(bundle, expect_key)
    meta = bundle.metadata
    arch = meta.get("architecture")
    if not isinstance(arch, dict):
        raise SerializationError(f"{bundle.path}: the model's architecture is missing.")
    model, slots, vocabulary = build_model(arch, bundle.path)
    source = _source(bundle)
    training = meta.get("training") or {}
    if not isinstance(training, dict):
        raise SerializationError(f"{bundle.path}: the training state is malformed.")
    model.state = TrainingState.from_json(training, bundle.path)
    if bundle.kind == "encrypted-model":
        scheme = _load_scheme(bundle, backend, scheme)
        codec = codec_for(scheme)
        values = codec.read_tensors(meta.get("weights") or {}, source, "w.", scheme)
        losses_meta = meta.get("losses")
        losses = codec.read_tensors(losses_meta, source, "loss.", scheme) if losses_meta else []
        _check_key(bundle, [*values, *losses], scheme)
    else:
        weights_meta = meta.get("weights")
        count = weights_meta.get("count") if isinstance(weights_meta, dict) else None
        if count != len(slots):
            raise SerializationError(
                f"{bundle.path}: the number of weight arrays does not match the layers."
            )
        values = [
            np.array(source.array(f"w.{i}", dtype="float64"), dtype=np.float64)
            for i in range(len(slots))
        ]
        for value in values:
            if not np.isfinite(value).all():
                raise SerializationError(f"{bundle.path}: a weight array holds NaN or infinity.")
        losses = []
        scheme = None
    source.check_all_used()
    if len(values) != len(slots):
        raise SerializationError(
            f"{bundle.path}: it holds {len(values)} weight tensors, the architecture needs {len(slots)}."
        )
    for index, (shape, value) in enumerate(zip(slots, values, strict=True)):
        if tuple(value.shape) != shape:
            raise SerializationError(
                f"{bundle.path}: weight {index} has shape {tuple(value.shape)}, the architecture "
                f"needs {shape}."
            )
    model.set_weights(values)
    model.history = decode_history(meta.get("history"), losses, bundle.path)
    if scheme is not None:
        model.scheme = scheme
        model.key_id = bundle.key_id
    return ModelBundle(model, vocabulary, bundle.path)


def save_history(path: PathLike, history: History, *, scheme: Any = None) -> Path:
    """Write a training history on its own (encrypted losses stay encrypted)."""
    refuse_secrets(history, "a history file")
    meta, losses = encode_history(history, keep_plain_losses=not losses_present(history))
    metadata: dict[str, Any] = {"history": meta, "losses": None}
    if losses:
        scheme = scheme or _scheme_of_tensors(losses)
        codec = codec_for(scheme)
        sink = EntrySink()
        metadata["losses"] = codec.write_tensors(losses, sink, "loss.")
        key_id = _single_key_id(_key_ids(losses, codec), "the history")
        return _write_entries(path, "history", scheme, sink, metadata, key_id)
    return write_bundle(path, "history", metadata=metadata)


def losses_present(history: History) -> bool:
    return any(record.encrypted_loss is not None for record in history.records)


@untrusted_loader
def load_history(
    path: PathLike, *, backend: Any = None, scheme: Any = None, expect_key: KeyFile | None = None
) -> tuple[History, Any]:
    """(history, scheme or None) from a history file or from a model file's history."""
    bundle = read_bundle(path, kinds=("history", "encrypted-model", "plain-model"))
    _check_expected_key(bundle, expect_key)
    if bundle.kind != "history":
        loaded = load_model(path, backend=backend, scheme=scheme, expect_key=expect_key)
        return loaded.history, loaded.scheme
    meta = bundle.metadata
    source = _source(bundle)
    losses: list[Any] = []
    if meta.get("losses"):
        scheme = _load_scheme(bundle, backend, scheme)
        losses = codec_for(scheme).read_tensors(meta["losses"], source, "loss.", scheme)
        _check_key(bundle, losses, scheme)
    source.check_all_used()
    return decode_history(meta.get("history"), losses, bundle.path), scheme


# ------------------------------------------------------------------------------------------
# predictions
# ------------------------------------------------------------------------------------------
def save_predictions(
    path: PathLike, predictions: Sequence[Any] | Any, *, metadata: Mapping[str, Any] | None = None
) -> Path:
    """Write predictions: encrypted tensors (a list, concatenated along rows when read) or an array."""
    items = list(predictions) if isinstance(predictions, list | tuple) else [predictions]
    meta = dict(metadata or {})
    if items and all(is_encrypted(item) for item in items):
        refuse_secrets(items, "a predictions file")
        scheme = _scheme_of_tensors(items)
        codec = codec_for(scheme)
        sink = EntrySink()
        meta["tensors"] = codec.write_tensors(items, sink, "pred.")
        meta["encrypted"] = True
        key_id = _single_key_id(_key_ids(items, codec), "the predictions")
        return _write_entries(path, "predictions", scheme, sink, meta, key_id)
    values = (
        np.concatenate([np.asarray(item, dtype=np.float64).reshape(-1) for item in items])
        if items
        else np.zeros(0)
    )
    meta["encrypted"] = False
    return write_bundle(path, "predictions", arrays={"values": values}, metadata=meta, private=True)


@untrusted_loader
def load_predictions(
    path: PathLike, *, backend: Any = None, scheme: Any = None, expect_key: KeyFile | None = None
) -> PredictionsFile:
    """Predictions; ``expect_key``: refuse encrypted predictions under another key."""
    bundle = read_bundle(path, kinds=("predictions",))
    _check_expected_key(bundle, expect_key)
    meta = bundle.metadata
    source = _source(bundle)
    if meta.get("encrypted"):
        scheme = _load_scheme(bundle, backend, scheme)
        tensors = codec_for(scheme).read_tensors(meta.get("tensors") or {}, source, "pred.", scheme)
        source.check_all_used()
        _check_key(bundle, tensors, scheme)
        return PredictionsFile(tensors, None, scheme, bundle.key_id, meta)
    values = np.array(source.array("values", dtype="float64", ndim=1))
    source.check_all_used()
    return PredictionsFile([], values, None, None, meta)
