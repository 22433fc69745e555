"""Owner-side operations (the key holder): keys, model encryption, decryption, switching, refresh.

Each function reads and writes ``.henn`` files and returns a JSON-ready summary; the ``henn``
commands are thin wrappers around them. Only these functions ever load a secret key. Loading a
key verifies its fingerprint (the key id); every encrypted file is checked to be under the
owner's key before any of its ciphertexts is read.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

import hennframework
from hennframework.exceptions import (
    CapabilityError,
    InputError,
    KeyMismatchError,
    NoiseBudgetExhaustedError,
)
from hennframework.io.bundles import (
    KeyFile,
    load_history,
    load_model,
    load_predictions,
    load_public_key,
    load_secret_key,
    save_keys,
    save_model,
    save_switch_key,
)
from hennframework.io.codecs import adopt_scheme, codec_for
from hennframework.io.models import ModelBundle, describe_architecture, encode_architecture
from hennframework.nn import BagOfWords, Batch, History, Sequential, TrainingState
from hennframework.scheme import Capability, noise_budget_unit

__all__ = [
    "decrypt_history",
    "decrypt_model",
    "decrypt_predictions",
    "encrypt_model",
    "generate_keys",
    "keygen_options_for_model",
    "make_model",
    "make_switch_key",
    "reencrypt_model",
    "refresh_model",
    "scheme_for_model",
]

PathLike = str | os.PathLike[str]
Progress = Callable[[int, int], None]


def generate_keys(
    out_dir: PathLike,
    *,
    scheme: str | None = None,
    params: str | None = None,
    backend: str | None = None,
    seed: int | None = None,
    max_dim: int | None = None,
    overwrite: bool = False,
    for_model: Any = None,
    batch_size: int | None = None,
    rotation_keys: int | None = None,
) -> dict[str, Any]:
    """``OUT_DIR/secret.henn`` (mode 0600) and ``OUT_DIR/public.henn`` for a new key pair.

    ``for_model`` (a plain model, such as :func:`make_model` makes) with ``batch_size``: keys
    with only the evaluation material that model uses, for schemes whose codec can tell
    (``keygen_options_for``; CKKS: the rotation keys its training and prediction use, a fraction
    of the file for small networks). Other schemes' keys are the same for every model.
    ``rotation_keys``: with ``for_model``, at most this many rotation keys (None: the scheme's
    default; CKKS: as many as keep the public material within 64 MB, 4 at ``n16384`` and 7 at
    ``n16384-9``); fewer keys make smaller files and more key switches per step. With
    ``for_model`` and no ``params``, the scheme may pick the parameter set for the model
    (:func:`scheme_for_model`).
    """
    instance = hennframework.get_scheme(scheme, params=params, backend=backend)
    if for_model is not None and params is None:
        instance = scheme_for_model(instance, for_model, batch_size)
    options: dict[str, Any] = {}
    if seed is not None:
        options["seed"] = seed
    if max_dim is not None:
        options["max_dim"] = max_dim
    if for_model is not None:
        options.update(keygen_options_for_model(instance, for_model, batch_size, rotation_keys))
    elif rotation_keys is not None:
        raise InputError("rotation keys are chosen for a model: give the model too (--for).")
    keys = instance.keygen(**options)
    adopt_scheme(instance)
    secret_path, public_path = save_keys(out_dir, keys, overwrite=overwrite)
    summary = {
        "key_id": keys.key_id,
        "scheme": instance.name,
        "parameter_set": codec_for(instance).parameters(instance)["name"],
        "security": keys.params.security_label(),
        "secret": str(secret_path),
        "public": str(public_path),
        "public_bytes": Path(public_path).stat().st_size,
        "seeded": seed is not None,
    }
    if for_model is not None:
        summary["made_for"] = describe_architecture(encode_architecture(for_model)[0])
        summary["batch_size"] = batch_size
        summary.update({k: v for k, v in options.items() if k not in ("seed", "max_dim")})
    return summary


def keygen_options_for_model(
    instance: Any,
    model: Any,
    batch_size: int | None,
    rotation_keys: int | None = None,
    *,
    required: bool = True,
) -> dict[str, Any]:
    """The scheme codec's keygen options for ``model`` trained in batches of ``batch_size``
    (what ``henn keygen --for`` passes to ``scheme.keygen``; ``rotation_keys`` as in
    :func:`generate_keys`).

    The codec tries the model on random data of each batch size the party may use: the size
    itself and every smaller power of two (a last, partial batch). A scheme whose keys are the
    same for every model is refused (``henn keygen --for`` has nothing to do), unless not
    ``required``: then there are no options.
    """
    hook = getattr(codec_for(instance), "keygen_options_for", None)
    if not callable(hook):
        if not required:
            return {}
        raise InputError(
            f"the {instance.name} scheme makes the same keys for every model; drop the model "
            "options (--for)."
        )
    if batch_size is None or batch_size < 1:
        raise InputError("keys for a model need the batch size the party will train with")
    sizes = sorted({batch_size} | {1 << k for k in range(batch_size.bit_length() - 1)})
    batches = [_trial_batch(model, size) for size in sizes]
    if rotation_keys is not None and rotation_keys < 1:
        raise InputError(f"at least one rotation key is needed (got {rotation_keys})")
    extra = {} if rotation_keys is None else {"rotation_keys": rotation_keys}
    options = hook(instance, model, batches, **extra)
    return dict(options)


def _trial_batch(model: Any, size: int) -> Batch:
    """Random data of ``size`` samples shaped for ``model`` (a trial run's: nothing secret)."""
    rng = np.random.default_rng()
    targets = rng.uniform(0.0, 1.0, (size, 1))
    if model.reads_words:
        words = min(int(model.vocabulary_size), 64)
        reviews = [rng.choice(model.vocabulary_size, words, replace=False) for _ in range(size)]
        return Batch(BagOfWords.from_reviews(reviews), targets)
    # no zeros: a zero input drops diagonals (and rotations) from the linear maps
    inputs = rng.uniform(0.5, 1.0, (size, model.input_width))
    return Batch(inputs * rng.choice([-1.0, 1.0], inputs.shape), targets)


def scheme_for_model(instance: Any, model: Any, batch_size: int | None) -> Any:
    """``instance``, or the same scheme with the parameter set its codec recommends for training
    ``model`` in batches of ``batch_size`` (``parameter_set_for``; CKKS: the shortest chain of
    the same ring whose levels hold a training step with 2 to spare, ``n16384-9`` for the
    sentiment network, whose keys are 40 % smaller and whose steps are cheaper than at
    ``n16384``). Schemes without a recommendation keep their set. What ``henn keygen --for``
    and the sentiment demo use when no ``--params`` is given.
    """
    codec = codec_for(instance)
    hook = getattr(codec, "parameter_set_for", None)
    if not callable(hook) or batch_size is None or batch_size < 1:
        return instance
    name = hook(instance, model, _trial_batch(model, batch_size))
    if name == codec.parameters(instance)["name"]:
        return instance
    return hennframework.get_scheme(instance.name, params=name)


def make_model(
    arch: str,
    *,
    seed: int | None = None,
    activation: str | None = None,
    init_scale: float | None = None,
    hidden: int = 8,
    vocabulary_size: int | None = None,
) -> Any:
    """A plain model: ``xor`` (Trask's 2017 3-4-1 network), ``mlp:3,4,1`` or ``sentiment``.

    The initial weights come from the OS CSPRNG unless ``seed`` is given; a seed is for
    reproducible experiments only, since everyone who has it can reproduce the starting weights
    (and so tell how far a decrypted model has moved from them).
    """
    if arch == "xor":
        return Sequential.mlp(
            [3, 4, 1],
            activation=activation or "taylor3",
            seed=seed,
            init_scale=4.0 if init_scale is None else init_scale,
        )
    if arch.startswith("mlp:"):
        try:
            sizes = [int(part) for part in arch[4:].split(",")]
        except ValueError:
            raise InputError(f"--arch {arch!r}: write layer sizes as mlp:3,4,1") from None
        if len(sizes) < 2 or min(sizes) < 1:
            raise InputError(f"--arch {arch!r} needs at least two positive layer sizes (mlp:3,4,1)")
        return Sequential.mlp(
            sizes,
            activation=activation or "taylor3",
            seed=seed,
            init_scale=1.0 if init_scale is None else init_scale,
        )
    if arch == "sentiment":
        if vocabulary_size is None:
            raise InputError(
                "--arch sentiment needs a vocabulary (--vocabulary FILE or --vocabulary-from DATA)"
            )
        return Sequential.bag_of_words(
            vocabulary_size, hidden, activation=activation or "lsq3", seed=seed
        )
    raise InputError(f"unknown --arch {arch!r}; use xor, sentiment or mlp:SIZES (e.g. mlp:3,4,1)")


def encrypt_model(
    public_path: PathLike,
    out: PathLike,
    model: Any,
    *,
    vocabulary: Sequence[str] | None = None,
    backend: str | None = None,
) -> dict[str, Any]:
    """Encrypt a plain model (or :class:`ModelBundle`) under the public key and write it.

    Needs only the public key: anyone may encrypt. The plain weights do not appear in the output.
    """
    public = load_public_key(public_path, backend=backend)
    bundle = (
        model
        if isinstance(model, ModelBundle)
        else ModelBundle(model, list(vocabulary) if vocabulary else None)
    )
    if bundle.encrypted:
        raise InputError("the model is already encrypted")
    keys = public.keyset()
    encrypted = bundle.model.encrypt(keys, public.scheme)
    arch, _ = encode_architecture(encrypted, bundle.vocabulary)
    save_model(out, ModelBundle(encrypted, bundle.vocabulary))
    return {
        "model": str(out),
        "architecture": describe_architecture(arch),
        "key_id": public.key_id,
        "parameters": int(sum(np.prod(w.shape) for w in encrypted.weights())),
    }


def _readable_losses(history: History, secret: KeyFile) -> list[float | None]:
    """Each record's loss, decrypted where needed; None where the noise makes it unreadable.

    One unreadable loss (its noise bound reached the limit, which the party's refresh rule tries
    to prevent) must not stop the owner from reading the model and the other losses.
    """
    values = history.decrypt(secret.key, secret.scheme, skip_undecryptable=True)
    return [value if math.isfinite(value) else None for value in values]


def _secret_for_model(secret: KeyFile, bundle: ModelBundle) -> None:
    if bundle.key_id != secret.key_id:
        raise KeyMismatchError(
            f"{bundle.path} is encrypted under key {bundle.key_id}, but {secret.path} is key "
            f"{secret.key_id}: decrypt with the secret key of {bundle.key_id} (or switch the model "
            "to this key first with `henn make-switch-key` and `henn switch-key`)."
        )


def decrypt_model(
    secret_path: PathLike,
    model_path: PathLike,
    out: PathLike | None = None,
    *,
    backend: str | None = None,
) -> tuple[ModelBundle, dict[str, Any]]:
    """Decrypt a model (weights and its history's losses); write it as a private plain model."""
    secret = load_secret_key(secret_path, backend=backend)
    bundle = load_model(
        model_path, kinds=("encrypted-model",), scheme=secret.scheme, expect_key=secret
    )
    _secret_for_model(secret, bundle)
    plain = bundle.model.decrypt(secret.key)
    losses = _readable_losses(bundle.history, secret)
    plain.history = replace(
        bundle.history,
        records=[replace(r, encrypted_loss=None) for r in bundle.history.records],
    )
    plain.state = TrainingState()
    result = ModelBundle(plain, bundle.vocabulary)
    if out is not None:
        save_model(out, result)
    arch, values = encode_architecture(plain, bundle.vocabulary)
    summary = {
        "model": str(model_path),
        "architecture": describe_architecture(arch),
        "key_id": secret.key_id,
        "steps": bundle.history.steps,
        "refreshes": bundle.history.refreshes,
        "samples": bundle.history.samples,
        "losses": [None if v is None else round(v, 6) for v in losses],
        "final_loss": losses[-1] if losses else None,
        "undecryptable_losses": sum(v is None for v in losses),
        "plain_model": str(out) if out is not None else None,
    }
    if sum(int(np.asarray(v).size) for v in values) <= 64:
        summary["weights"] = [np.asarray(v).round(6).tolist() for v in values]
    return result, summary


def decrypt_predictions(
    secret_path: PathLike, predictions_path: PathLike, *, backend: str | None = None
) -> dict[str, Any]:
    """The decrypted values of an encrypted predictions file (owner side)."""
    secret = load_secret_key(secret_path, backend=backend)
    predictions = load_predictions(predictions_path, scheme=secret.scheme, expect_key=secret)
    if not predictions.encrypted:
        values = predictions.values
    else:
        if predictions.key_id != secret.key_id:
            raise KeyMismatchError(
                f"{predictions_path} is encrypted under key {predictions.key_id}, not {secret.key_id}."
            )
        parts = [
            np.asarray(secret.scheme.decrypt_tensor(t, secret.key)).reshape(-1)
            for t in predictions.tensors
        ]
        values = np.concatenate(parts) if parts else np.zeros(0)
    assert values is not None
    return {
        "predictions": [float(v) for v in values],
        "rows": int(values.size),
        "metadata": predictions.metadata,
    }


def decrypt_history(
    secret_path: PathLike, path: PathLike, *, backend: str | None = None
) -> dict[str, Any]:
    """The decrypted training losses of a model or history file (owner side)."""
    secret = load_secret_key(secret_path, backend=backend)
    history, _ = load_history(path, scheme=secret.scheme, expect_key=secret)
    keys = {
        getattr(r.encrypted_loss, "key_id", None)
        for r in history.records
        if r.encrypted_loss is not None
    }
    if keys - {secret.key_id}:
        raise KeyMismatchError(
            f"the losses in {path} are under key(s) {sorted(k for k in keys if k)}, not {secret.key_id}."
        )
    losses = _readable_losses(history, secret)
    return {
        "steps": history.steps,
        "refreshes": history.refreshes,
        "samples": history.samples,
        "seconds": round(history.seconds, 3),
        "records": [
            {"step": r.step, "epoch": r.epoch, "loss": v, "noise_budget": r.noise_budget}
            for r, v in zip(history.records, losses, strict=True)
        ],
        "final_loss": losses[-1] if losses else None,
        "undecryptable_losses": sum(v is None for v in losses),
    }


def make_switch_key(
    from_secret: PathLike,
    to_secret: PathLike,
    out: PathLike,
    *,
    backend: str | None = None,
    dim: int = 1,
) -> dict[str, Any]:
    """Owner: key-switching material from key A to key B (needs both secret keys).

    The output is public material (like an evaluation key): applying it needs no secret and
    reveals neither key's plaintexts beyond what the scheme's public keys already do.
    """
    source = load_secret_key(from_secret, backend=backend)
    scheme = source.scheme
    if Capability.KEY_SWITCH not in scheme.capabilities:
        raise CapabilityError(
            f"the {scheme.name} scheme has no switching key (no keyless key switch). As the owner "
            "of both keys, re-encrypt the model under the new key instead: `henn switch-key "
            f"--model MODEL --secret {from_secret} --public PUBLIC_KEY_OF_THE_NEW_KEY --out OUT` "
            "(see docs/parties.md)."
        )
    target = load_secret_key(to_secret, backend=backend, scheme=source.scheme)
    if source.key_id == target.key_id:
        raise InputError("--from and --to are the same key; nothing to switch.")
    key = scheme.make_switch_key(source.keyset(), target.keyset(), dim=dim)
    save_switch_key(out, key, scheme)
    return {
        "switch_key": str(out),
        "from_key_id": source.key_id,
        "to_key_id": target.key_id,
        "dim": dim,
    }


def reencrypt_model(
    secret_path: PathLike,
    public_path: PathLike,
    model_path: PathLike,
    out: PathLike,
    *,
    keep_history: bool = False,
    backend: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Owner: move an encrypted model to another key by decrypting and re-encrypting it.

    The key switch for schemes without a keyless one (CKKS): the owner, who holds the model's
    secret key, decrypts each weight and encrypts it with the new public key. The result is a
    fresh encryption, unlinkable to the old ciphertexts (unlike a keyless switch, whose output
    anyone holding the input and the switching key can recompute). The history and training
    state are dropped unless ``keep_history`` (then its encrypted losses are re-encrypted too).
    """
    secret = load_secret_key(secret_path, backend=backend)
    public = load_public_key(public_path, backend=backend)  # verifies the key's fingerprint
    if public.scheme.name != secret.scheme.name:
        raise InputError(
            f"--public {public_path} is a {public.scheme.name} key but the model's key "
            f"{secret_path} is {secret.scheme.name}: re-encrypt under a key of the same scheme."
        )
    if public.key_id == secret.key_id:
        raise InputError(
            f"--public {public_path} is the public key of --secret {secret_path} ({secret.key_id}): "
            "the model is under that key already. Pass the new key's public key file."
        )
    bundle = load_model(
        model_path, kinds=("encrypted-model",), scheme=secret.scheme, expect_key=secret
    )
    _secret_for_model(secret, bundle)
    tensors = bundle.model.weights()
    old, new = secret.scheme, public.scheme
    renewed = []
    for index, tensor in enumerate(tensors):  # decryption raises rather than return wrong values
        renewed.append(new.encrypt_like(old.decrypt_tensor(tensor, secret.key), tensor, public.key))
        if progress is not None:
            progress(index + 1, len(tensors))
    bundle.model.set_weights(renewed)
    bundle.model.scheme, bundle.model.key_id = new, public.key_id
    if keep_history:
        for record in bundle.history.records:
            if record.encrypted_loss is not None:
                try:
                    loss = old.decrypt_tensor(record.encrypted_loss, secret.key)
                except NoiseBudgetExhaustedError:  # unreadable: it cannot be carried over
                    record.encrypted_loss = None
                else:
                    record.encrypted_loss = new.encrypt_tensor(loss, public.key)
    else:
        bundle.drop_history()
    bundle.model.state = TrainingState()
    save_model(out, bundle)
    return {
        "model": str(out),
        "from_key_id": secret.key_id,
        "to_key_id": public.key_id,
        "method": "re-encryption by the owner",
        "tensors": len(tensors),
        "noise_budget": bundle.model.min_noise_budget(),
        "history_kept": keep_history,
        "path": str(Path(out)),
    }


def refresh_model(
    secret_path: PathLike,
    model_path: PathLike,
    out: PathLike,
    *,
    public_path: PathLike | None = None,
    backend: str | None = None,
) -> dict[str, Any]:
    """Owner: fresh encryptions of a model's weights (full noise budget), same key, same values."""
    secret = load_secret_key(secret_path, backend=backend)
    public = load_public_key(public_path, scheme=secret.scheme) if public_path is not None else None
    if public is not None and public.key_id != secret.key_id:
        raise KeyMismatchError(
            f"{public_path} ({public.key_id}) is not the public key of {secret_path} ({secret.key_id})."
        )
    bundle = load_model(
        model_path, kinds=("encrypted-model",), scheme=secret.scheme, expect_key=secret
    )
    _secret_for_model(secret, bundle)
    before = bundle.model.min_noise_budget()
    scheme = secret.scheme
    key = public.key if public is not None else secret.key

    def reencrypt(tensors: list[Any]) -> list[Any]:
        return [scheme.encrypt_like(scheme.decrypt_tensor(t, secret.key), t, key) for t in tensors]

    bundle.model.refresh(reencrypt)
    bundle.training.needs_refresh = False
    bundle.training.learn_fresh_budget(bundle.model.min_noise_budget())  # for --resume
    save_model(out, bundle)
    return {
        "model": str(out),
        "key_id": secret.key_id,
        "noise_budget_before": before,
        "noise_budget_after": bundle.model.min_noise_budget(),
        "noise_budget_unit": noise_budget_unit(scheme),
    }


def _key_fingerprint(path: PathLike, manifest: dict[str, Any]) -> dict[str, Any]:
    """Load a key file to recompute its fingerprint: ``henn inspect`` says "verified" only then.

    A key whose fingerprint does not match its id raises (the file must not be used); a key of a
    scheme that is not installed here, or whose codec cannot fingerprint, stays unverified.
    """
    from hennframework.exceptions import SerializationError

    try:
        codec = codec_for(str(manifest.get("scheme")))
    except SerializationError as exc:
        return {"fingerprint_verified": False, "fingerprint_note": f"not verified: {exc}"}
    if not callable(getattr(codec, "fingerprint", None)):
        return {
            "fingerprint_verified": False,
            "fingerprint_note": "not verified: this scheme's codec cannot recompute fingerprints",
        }
    loader = load_public_key if manifest["kind"] == "public-key" else load_secret_key
    loaded = loader(path)
    scope = getattr(codec, "fingerprint_scope", None)
    covered, uncovered = scope(loaded.key) if callable(scope) else ([], [])
    contents = getattr(codec, "key_contents", None)  # CKKS: parts, sizes and rotation steps
    return {
        "fingerprint_verified": loaded.verified,
        "fingerprint_covers": list(covered),
        "not_covered": list(uncovered),
        **(dict(contents(loaded.key)) if callable(contents) else {}),
    }


def describe_file(path: PathLike) -> dict[str, Any]:
    """What a ``.henn`` file is (used by ``henn inspect``); key files have their fingerprint
    recomputed and verified, other files show the key id they record."""
    from hennframework.io.container import read_bundle

    bundle = read_bundle(path)  # full verification, checksums included
    manifest = bundle.manifest
    info: dict[str, Any] = {
        "path": str(path),
        "kind": manifest["kind"],
        "format_version": manifest["format_version"],
        "created_with": manifest.get("created_with"),
        "scheme": manifest.get("scheme"),
        "parameter_set": (manifest.get("parameter_set") or {}).get("name"),
        "key_id": manifest.get("key_id"),
        "entries": {
            name: {k: v for k, v in spec.items() if k != "sha256"}
            for name, spec in manifest["entries"].items()
        },
        "bytes": Path(path).stat().st_size,
        "mode": oct(Path(path).stat().st_mode & 0o777),
        "checksum": "ok",
        "fingerprint_verified": False,
    }
    if manifest["kind"] in ("public-key", "secret-key"):
        info.update(_key_fingerprint(path, manifest))
    arch = bundle.metadata.get("architecture")
    if isinstance(arch, dict):
        info["architecture"] = describe_architecture(arch)
    history = bundle.metadata.get("history")
    if isinstance(history, dict):
        info["steps"] = history.get("steps")
        info["refreshes"] = history.get("refreshes")
    training = bundle.metadata.get("training")
    if isinstance(training, dict) and training:
        info["training"] = training
    return info
