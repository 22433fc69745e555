"""Serialisation codec of the integer-vector scheme (the contract: :mod:`hennframework.codec`).

Registered for the scheme name ``integer-vector`` when :mod:`hennframework.schemes.integer_vector`
is imported, the same way a plugin registers its codec.

What is stored, all as int64/float64 ``.npy`` arrays plus JSON:

* tensors (:class:`Ciphertext`): grouped by vector length ``m``; each group is one
  ``(rows, m + k)`` int64 ``data`` array and one ``(rows,)`` float64 ``noise`` array (the tracked
  noise *bound*), and per tensor its batch shape, ``dim``, ``scale_int`` and ``key_id`` in JSON.
  ``coeff_bound`` is recomputed from the data on load (the tightest valid bound);
* key-switching keys: ``kind``, ``source_columns``, ``out_dim``, ``from_key_id``, ``to_key_id``,
  ``label`` and the int64 matrix ``matrix_t`` (``source_columns * digits`` x ``out_dim + k``);
* public keys: ``key_id``, the encryption key per vector length, the named evaluation keys and
  ``fingerprinted`` (the names of the keys made at keygen, which the key id is a hash of);
* secret keys: ``key_id``, ``T`` (int64, ``max_dim`` x ``k``) and a copy of the fingerprinted
  public keys - only ever in a secret-key file.

Loading validates everything it can without the secret: dtypes, shapes against the parameter
set, ``|coefficients| < 2**62``, noise bounds finite and non-negative, key ids well-formed. A key
id is a fingerprint (:func:`~hennframework.schemes.integer_vector.keys.key_fingerprint`): every
load of a public or secret key recomputes it from the key's matrices and refuses a mismatch, and a
secret key must also prove that its ``T`` belongs to them
(:func:`~hennframework.schemes.integer_vector.keys.check_key_pair`). Ids of the older random form
are refused with a message to re-run ``henn keygen``. Loading cannot check that a noise bound is
*honest*: whoever edits a file can understate it, and the key holder's decryption would then be
wrong without a warning. Treat files from others accordingly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from hennframework.codec import EntrySink, EntrySource, parameter_record
from hennframework.exceptions import HennError, KeyMismatchError, SerializationError
from hennframework.schemes.integer_vector.ciphertext import LIMIT, Ciphertext
from hennframework.schemes.integer_vector.keys import (
    PARAMETER_FIELDS,
    KeySwitchKey,
    PublicKey,
    SecretKey,
    check_key_id,
    check_key_pair,
    public_fingerprint,
    secret_fingerprint,
)
from hennframework.schemes.integer_vector.params import PARAMETER_SETS, IntegerVectorParams
from hennframework.schemes.integer_vector.scheme import IntegerVectorScheme

__all__ = ["IntegerVectorCodec"]

_PARAM_FIELDS = PARAMETER_FIELDS
_CORE_NAME = re.compile(r"(encryption|product):[1-9][0-9]{0,8}")
_SWITCH_KINDS = frozenset({"encryption", "product", "dot", "linear", "switch"})


def _fail(where: str, message: str) -> SerializationError:
    return SerializationError(f"{where}: {message}; the file is corrupted or was tampered with.")


def _int(meta: Mapping[str, Any], name: str, where: str, low: int = 0) -> int:
    value = meta.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise _fail(where, f"{name} must be an integer >= {low}, got {value!r}")
    return value


def _key_id(value: Any, where: str) -> str:
    return check_key_id(value, where)


def _verify_fingerprint(actual: str, claimed: str, where: str) -> None:
    if actual != claimed:
        raise KeyMismatchError(
            f"{where}: this key is labelled {claimed}, but its fingerprint (recomputed from its "
            f"public matrices) is {actual}: it is a different key under another key's id, or "
            "it was damaged. Do not use it; get the owner's key file again and check its "
            "fingerprint with `henn inspect` against the one the owner published."
        )


def _check_coefficients(data: npt.NDArray[np.int64], where: str) -> None:
    if data.size and (int(data.max()) >= LIMIT or int(data.min()) <= -LIMIT):
        raise _fail(where, "ciphertext coefficients exceed 2**62")


class IntegerVectorCodec:
    """Saves and loads :class:`Ciphertext`, :class:`PublicKey`, :class:`SecretKey`, :class:`KeySwitchKey`."""

    scheme_name = "integer-vector"

    # -- parameters ---------------------------------------------------------------------------
    def parameters(self, scheme: Any) -> dict[str, Any]:
        params: IntegerVectorParams = (
            scheme.params if not isinstance(scheme, IntegerVectorParams) else scheme
        )
        values = {name: getattr(params, name) for name in _PARAM_FIELDS}
        return {"name": params.name, "values": values, "description": params.description}

    def make_scheme(self, parameters: Mapping[str, Any], backend: Any) -> IntegerVectorScheme:
        name, values = parameter_record(parameters, _PARAM_FIELDS, "integer-vector")
        for field_name in _PARAM_FIELDS:
            value = values[field_name]
            if field_name == "modulus" and value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                raise SerializationError(
                    f"parameter {field_name} must be an integer, got {value!r}."
                )
        known = PARAMETER_SETS.get(name)
        if known is not None:
            mine = {f: getattr(known, f) for f in _PARAM_FIELDS}
            if mine != dict(values):
                diff = ", ".join(
                    f"{f}: file {values[f]!r} vs here {mine[f]!r}"
                    for f in _PARAM_FIELDS
                    if mine[f] != values[f]
                )
                raise SerializationError(
                    f"the file's parameter set {name!r} differs from this version's set of the same "
                    f"name ({diff}). It was written by another hennframework version; use that "
                    "version, or re-create the keys and files with this one."
                )
            params = known
        else:
            description = parameters.get("description")
            try:
                params = IntegerVectorParams(
                    name=name,
                    description=description if isinstance(description, str) else "",
                    **{f: values[f] for f in _PARAM_FIELDS},
                )
            except HennError as exc:
                raise SerializationError(f"the file's parameter set is invalid: {exc}") from exc
        return IntegerVectorScheme(params, backend=backend)

    # -- identification -----------------------------------------------------------------------
    def is_secret(self, value: Any) -> bool:
        return isinstance(value, SecretKey)

    def key_id(self, value: Any) -> str | None:
        if isinstance(value, Ciphertext | PublicKey | SecretKey):
            return value.key_id
        if isinstance(value, KeySwitchKey):
            return value.to_key_id
        return None

    def fingerprint(self, key: Any) -> str:
        """The key id recomputed from a public or secret key's fingerprinted matrices."""
        if isinstance(key, PublicKey):
            return public_fingerprint(key)
        if isinstance(key, SecretKey):
            return secret_fingerprint(key)
        raise SerializationError(
            f"only public and secret keys have fingerprints, not a {type(key).__name__}"
        )

    def fingerprint_scope(self, key: Any) -> tuple[list[str], list[str]]:
        """(keys the fingerprint covers, keys the file also holds that it does not cover)."""
        if isinstance(key, SecretKey):
            return sorted(key.public_core), []
        if not isinstance(key, PublicKey):
            return [], []
        names = [f"encryption:{dim}" for dim in sorted(key.encryption)]
        names += sorted(key.evaluation.keys)
        return sorted(key.core), [n for n in names if n not in key.core]

    # -- tensors ------------------------------------------------------------------------------
    def write_tensors(self, tensors: Sequence[Any], sink: EntrySink, prefix: str) -> dict[str, Any]:
        entries: list[dict[str, Any]] = []
        groups: dict[int, list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]] = {}
        rows: dict[int, int] = {}
        for index, tensor in enumerate(tensors):
            if not isinstance(tensor, Ciphertext):
                raise SerializationError(
                    f"tensor {index} is a {type(tensor).__name__}, not an integer-vector Ciphertext."
                )
            backend = tensor.scheme.backend
            data = np.asarray(backend.to_numpy(tensor.data), dtype=np.int64)
            noise = np.broadcast_to(
                np.asarray(backend.to_numpy(tensor.noise), dtype=np.float64), tensor.shape
            )
            width = data.shape[-1]
            start = rows.get(tensor.dim, 0)
            groups.setdefault(tensor.dim, []).append((data.reshape(-1, width), noise.reshape(-1)))
            rows[tensor.dim] = start + int(math.prod(tensor.shape))
            entries.append(
                {
                    "shape": list(tensor.shape),
                    "dim": tensor.dim,
                    "scale": int(tensor.scale_int),
                    "key_id": tensor.key_id,
                    "offset": start,
                }
            )
        group_meta: dict[str, dict[str, str]] = {}
        for dim, parts in groups.items():
            data = np.concatenate([p[0] for p in parts], axis=0)
            noise = np.concatenate([p[1] for p in parts], axis=0)
            group_meta[str(dim)] = {
                "data": sink.add_array(f"{prefix}m{dim}.data", data),
                "noise": sink.add_array(f"{prefix}m{dim}.noise", noise),
            }
        return {"encoding": "integer-vector/stacked-v1", "tensors": entries, "groups": group_meta}

    def read_tensors(
        self, meta: Mapping[str, Any], source: EntrySource, prefix: str, scheme: Any
    ) -> list[Any]:
        where = source.where
        if meta.get("encoding") != "integer-vector/stacked-v1":
            raise _fail(where, f"unknown tensor encoding {meta.get('encoding')!r}")
        tensors_meta = meta.get("tensors")
        groups_meta = meta.get("groups")
        if not isinstance(tensors_meta, list) or not isinstance(groups_meta, dict):
            raise _fail(where, "tensor metadata is malformed")
        k = scheme.params.k
        groups: dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = {}
        for dim_text, names in groups_meta.items():
            if (
                not isinstance(dim_text, str)
                or not dim_text.isdigit()
                or not isinstance(names, dict)
            ):
                raise _fail(where, "tensor group metadata is malformed")
            dim = int(dim_text)
            if dim < 1:
                raise _fail(where, "vector length must be positive")
            data = source.array(names.get("data"), dtype="int64", ndim=2)
            noise = source.array(names.get("noise"), dtype="float64", ndim=1)
            if data.shape[1] != dim + k or noise.shape[0] != data.shape[0]:
                raise _fail(
                    where,
                    f"ciphertext group m={dim} has shape {data.shape} / {noise.shape}, "
                    f"expected (rows, {dim + k}) / (rows,)",
                )
            _check_coefficients(data, where)
            if noise.size and (not np.isfinite(noise).all() or float(noise.min()) < 0):
                raise _fail(where, "noise bounds must be finite and non-negative")
            groups[dim] = (data, noise)
        used = {dim: 0 for dim in groups}
        backend = scheme.backend
        tensors: list[Any] = []
        for item in tensors_meta:
            if not isinstance(item, dict):
                raise _fail(where, "tensor entry is malformed")
            dim = _int(item, "dim", where, 1)
            scale = _int(item, "scale", where, 1)
            offset = _int(item, "offset", where, 0)
            shape = item.get("shape")
            if not isinstance(shape, list) or not all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
            ):
                raise _fail(where, f"tensor shape {shape!r} is malformed")
            if dim not in groups:
                raise _fail(where, f"no ciphertext data for vector length {dim}")
            data, noise = groups[dim]
            count = int(math.prod(shape))
            if offset != used[dim] or offset + count > data.shape[0]:
                raise _fail(where, "tensor offsets do not tile the stored ciphertexts")
            used[dim] = offset + count
            block = data[offset : offset + count].reshape((*shape, dim + k))
            bounds = noise[offset : offset + count].reshape(tuple(shape))
            key = _key_id(item.get("key_id"), where)
            tensors.append(
                Ciphertext(
                    scheme,
                    backend.asarray(np.array(block, dtype=np.int64), dtype="int64"),
                    dim,
                    scale,
                    backend.asarray(np.array(bounds, dtype=np.float64), dtype="float64"),
                    key,
                )
            )
        for dim, (data, _) in groups.items():
            if used[dim] != data.shape[0]:
                raise _fail(
                    where, f"{data.shape[0] - used[dim]} stored ciphertexts belong to no tensor"
                )
        return tensors

    # -- keys -----------------------------------------------------------------------------------
    def write_switch_key(self, key: Any, sink: EntrySink, prefix: str) -> dict[str, Any]:
        if not isinstance(key, KeySwitchKey):
            raise SerializationError(f"expected a KeySwitchKey, got {type(key).__name__}")
        matrix = _to_numpy(key.matrix_t)
        return {
            "kind": key.kind,
            "source_columns": key.source_columns,
            "out_dim": key.out_dim,
            "from_key_id": key.from_key_id,
            "to_key_id": key.to_key_id,
            "label": key.label,
            "matrix_t": sink.add_array(f"{prefix}matrix_t", matrix.astype(np.int64)),
        }

    def read_switch_key(
        self, meta: Mapping[str, Any], source: EntrySource, prefix: str, scheme: Any
    ) -> KeySwitchKey:
        where = source.where
        params = scheme.params
        kind = meta.get("kind")
        if kind not in _SWITCH_KINDS:
            raise _fail(where, f"unknown key-switching key kind {kind!r}")
        columns = _int(meta, "source_columns", where, 1)
        out_dim = _int(meta, "out_dim", where, 1)
        label = meta.get("label", "")
        if not isinstance(label, str) or len(label) > 128:
            raise _fail(where, "key label is malformed")
        from_id = meta.get("from_key_id")
        from_id = "identity" if from_id == "identity" else _key_id(from_id, where)
        to_id = _key_id(meta.get("to_key_id"), where)
        matrix = source.array(
            meta.get("matrix_t"), dtype="int64", shape=(columns * params.digits, out_dim + params.k)
        )
        return KeySwitchKey(
            kind=str(kind),
            source_columns=columns,
            out_dim=out_dim,
            matrix_t=scheme.backend.asarray(np.array(matrix, dtype=np.int64), dtype="int64"),
            from_key_id=from_id,
            to_key_id=to_id,
            label=label,
        )

    def write_public_key(self, public: Any, sink: EntrySink, prefix: str) -> dict[str, Any]:
        if not isinstance(public, PublicKey):
            raise SerializationError(
                f"expected an integer-vector PublicKey, got {type(public).__name__}"
            )
        encryption = {
            str(dim): self.write_switch_key(key, sink, f"{prefix}enc{dim}.")
            for dim, key in sorted(public.encryption.items())
        }
        evaluation = {}
        for index, (name, key) in enumerate(sorted(public.evaluation.keys.items())):
            evaluation[name] = self.write_switch_key(key, sink, f"{prefix}eval{index}.")
        return {
            "key_id": public.key_id,
            "fingerprinted": list(public.core),
            "encryption": encryption,
            "evaluation": evaluation,
        }

    def read_public_key(
        self, meta: Mapping[str, Any], source: EntrySource, prefix: str, scheme: Any
    ) -> PublicKey:
        where = source.where
        key_id = _key_id(meta.get("key_id"), where)
        encryption_meta = meta.get("encryption")
        evaluation_meta = meta.get("evaluation")
        if not isinstance(encryption_meta, dict) or not isinstance(evaluation_meta, dict):
            raise _fail(where, "public key metadata is malformed")
        public = PublicKey(
            scheme.params, key_id, core=_core_names(meta.get("fingerprinted"), where)
        )
        for dim_text, key_meta in encryption_meta.items():
            if not dim_text.isdigit() or not isinstance(key_meta, dict):
                raise _fail(where, "encryption key metadata is malformed")
            key = self.read_switch_key(key_meta, source, prefix, scheme)
            if (
                key.kind != "encryption"
                or key.from_key_id != "identity"
                or key.to_key_id != key_id
                or key.out_dim != int(dim_text)
            ):
                raise _fail(
                    where, f"encryption key for m={dim_text} does not belong to key {key_id}"
                )
            public.encryption[int(dim_text)] = key
        for name, key_meta in evaluation_meta.items():
            if not isinstance(name, str) or not isinstance(key_meta, dict):
                raise _fail(where, "evaluation key metadata is malformed")
            key = self.read_switch_key(key_meta, source, prefix, scheme)
            # product, dot and linear keys map ciphertexts of this key to this key
            if (
                key.kind not in ("product", "dot", "linear")
                or not name.startswith(f"{key.kind}:")
                or key.from_key_id != key_id
                or key.to_key_id != key_id
            ):
                raise _fail(where, f"evaluation key {name!r} does not belong to key {key_id}")
            public.evaluation.keys[name] = key
        _verify_fingerprint(public_fingerprint(public), key_id, where)
        scheme.register_public_key(public)
        return public

    def write_secret_key(self, secret: Any, sink: EntrySink, prefix: str) -> dict[str, Any]:
        if not isinstance(secret, SecretKey):
            raise SerializationError(
                f"expected an integer-vector SecretKey, got {type(secret).__name__}"
            )
        core = {
            name: self.write_switch_key(key, sink, f"{prefix}core{index}.")
            for index, (name, key) in enumerate(sorted(secret.public_core.items()))
        }
        return {
            "key_id": secret.key_id,
            "t_matrix": sink.add_array(
                f"{prefix}t_matrix", np.asarray(secret.t_matrix, dtype=np.int64)
            ),
            "public_core": core,
        }

    def read_secret_key(
        self, meta: Mapping[str, Any], source: EntrySource, prefix: str, scheme: Any
    ) -> SecretKey:
        where = source.where
        params = scheme.params
        key_id = _key_id(meta.get("key_id"), where)
        t_matrix = source.array(meta.get("t_matrix"), dtype="int64", ndim=2)
        if t_matrix.shape[0] < 1 or t_matrix.shape[1] != params.k:
            raise _fail(where, f"T has shape {t_matrix.shape}, expected (max_dim, {params.k})")
        if t_matrix.size and int(np.abs(t_matrix).max()) > params.t_bound:
            raise _fail(where, f"T has entries beyond t_bound = {params.t_bound}")
        core_meta = meta.get("public_core")
        if not isinstance(core_meta, dict) or not core_meta:
            raise _fail(where, "the secret key carries no public keys to verify its key id")
        secret = SecretKey(params, key_id, np.array(t_matrix, dtype=np.int64))
        for name in _core_names(list(core_meta), where):
            if not isinstance(core_meta[name], dict):
                raise _fail(where, f"the public key {name!r} in the secret key is malformed")
            key = self.read_switch_key(core_meta[name], source, prefix, scheme)
            expected_from = "identity" if key.kind == "encryption" else key_id
            if (
                not name.startswith(f"{key.kind}:")
                or key.from_key_id != expected_from
                or key.to_key_id != key_id
                or key.out_dim != int(name.partition(":")[2])
                or key.out_dim > secret.max_dim
            ):
                raise _fail(where, f"the public key {name!r} does not belong to key {key_id}")
            secret.public_core[name] = key
        _verify_fingerprint(secret_fingerprint(secret), key_id, where)
        check_key_pair(secret)
        return secret


def _core_names(value: Any, where: str) -> tuple[str, ...]:
    """The names of the fingerprinted keys (``encryption:m`` and ``product:m``), validated."""
    if (
        not isinstance(value, list)
        or not value
        or len(value) > 1024
        or not all(isinstance(name, str) and _CORE_NAME.fullmatch(name) for name in value)
        or len(set(value)) != len(value)
    ):
        raise _fail(where, f"the list of fingerprinted keys {str(value)[:80]!r} is malformed")
    return tuple(value)


def _to_numpy(array: Any) -> npt.NDArray[Any]:
    getter = getattr(array, "get", None)  # CuPy arrays
    return np.asarray(getter() if callable(getter) else array)
