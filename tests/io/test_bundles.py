"""Keys, ciphertexts, models, histories and predictions through files; secrets never in public files."""

from __future__ import annotations

import copy
import errno
import io
import json
import os
import re
import stat
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import hennframework.codec as codec_registry
from hennframework import io as hio
from hennframework.data.bundled import XOR_INPUTS, XOR_TARGETS
from hennframework.exceptions import KeyMismatchError, SerializationError
from hennframework.io.codecs import EntrySink, EntrySource
from hennframework.io.container import canonical_json, read_bundle, write_bundle
from hennframework.nn import BagOfWords, OwnerRefresher, Sequential
from hennframework.registry import get_backend
from hennframework.schemes.integer_vector import IntegerVectorScheme


@pytest.fixture(scope="module")
def scheme() -> IntegerVectorScheme:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return IntegerVectorScheme("default", backend=get_backend("numpy"))


@pytest.fixture(scope="module")
def keys(scheme: IntegerVectorScheme) -> Any:
    return scheme.keygen(seed=11, max_dim=32)


@pytest.fixture(scope="module")
def other_keys(scheme: IntegerVectorScheme) -> Any:
    return scheme.keygen(seed=12, max_dim=32)


def _xor_model(keys: Any, steps: int = 3) -> Sequential:
    model = Sequential.mlp([3, 4, 1], seed=0, init_scale=4.0).encrypt(keys)
    model.fit(XOR_INPUTS, XOR_TARGETS, epochs=steps, learning_rate=0.1)
    return model


# ------------------------------------------------------------------------------------------
# keys
# ------------------------------------------------------------------------------------------
def test_key_files_round_trip_and_work(
    tmp_path: Path, scheme: IntegerVectorScheme, keys: Any
) -> None:
    secret_path, public_path = hio.save_keys(tmp_path / "owner", keys)
    if os.name == "posix":
        assert stat.S_IMODE(secret_path.stat().st_mode) == 0o600
    public = hio.load_public_key(public_path)
    secret = hio.load_secret_key(secret_path, scheme=public.scheme)
    assert public.key_id == secret.key_id == keys.key_id
    np.testing.assert_array_equal(secret.key.t_matrix, keys.secret.t_matrix)
    loaded_scheme = public.scheme
    x = loaded_scheme.encrypt_tensor(np.array([0.5, -1.25, 2.0]), public.key)
    y = x * x + 1.0  # needs the product key from the public file
    np.testing.assert_allclose(
        loaded_scheme.decrypt_tensor(y, secret.key), [1.25, 2.5625, 5.0], atol=1e-3
    )
    # a ciphertext made by the original scheme decrypts with the loaded key, and vice versa
    z = scheme.encrypt_tensor(np.array([3.0]), keys.public)
    np.testing.assert_allclose(loaded_scheme.decrypt_tensor(z, secret.key), [3.0])
    np.testing.assert_allclose(scheme.decrypt_tensor(x, keys.secret), [0.5, -1.25, 2.0])


def test_save_keys_refuses_to_overwrite(tmp_path: Path, keys: Any) -> None:
    hio.save_keys(tmp_path, keys)
    with pytest.raises(SerializationError, match="refusing to overwrite"):
        hio.save_keys(tmp_path, keys)
    hio.save_keys(tmp_path, keys, overwrite=True)


def test_secret_key_is_refused_where_public_is_expected(tmp_path: Path, keys: Any) -> None:
    secret_path, public_path = hio.save_keys(tmp_path, keys)
    with pytest.raises(SerializationError, match=r"secret-key.*SECRET"):
        hio.load_public_key(secret_path)
    with pytest.raises(SerializationError, match="public-key, but a secret-key"):
        hio.load_secret_key(public_path)
    with pytest.raises(SerializationError, match="secret-key"):
        hio.load_model(secret_path)


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_loading_a_world_readable_secret_key_warns(tmp_path: Path, keys: Any) -> None:
    secret_path, _ = hio.save_keys(tmp_path, keys)
    os.chmod(secret_path, 0o644)
    with pytest.warns(UserWarning, match="chmod 600"):
        hio.load_secret_key(secret_path)


def test_public_writers_refuse_any_secret_anywhere(
    tmp_path: Path, scheme: IntegerVectorScheme, keys: Any
) -> None:
    model = _xor_model(keys, steps=1)
    tensor = scheme.encrypt_tensor(np.ones(2), keys.public)
    cases: list[tuple[str, Any]] = [
        ("public key given the secret", lambda p: hio.save_public_key(p, keys.secret, scheme)),
        ("model carrying the KeySet", lambda p: hio.save_model(p, _with(model, extra=keys))),
        (
            "model carrying the secret deep inside",
            lambda p: hio.save_model(p, _with(model, extra={"a": [1, (keys.secret,)]})),
        ),
        (
            "model carrying a refresher",
            lambda p: hio.save_model(p, _with(model, extra=OwnerRefresher(scheme, keys))),
        ),
        (
            "training state with the secret",
            lambda p: hio.save_model(
                p, _with(model, state=_with(model.state, leak={"k": keys.secret}))
            ),
        ),
        (
            "ciphertexts with the secret attached",
            lambda p: hio.save_ciphertexts(p, {"t": _with(tensor, leak=keys.secret)}),
        ),
        ("switch key holding a KeySet", lambda p: hio.save_switch_key(p, {"key": keys}, scheme)),
        (
            "predictions with the secret",
            lambda p: hio.save_predictions(p, [_with(tensor, leak=keys)]),
        ),
    ]
    for what, write in cases:
        target = tmp_path / f"{what.replace(' ', '_')}.henn"
        with pytest.raises(SerializationError, match=r"refusing to write|needs|expected"):
            write(target)
        assert not target.exists(), what
    # the KeySet itself is fine for the public writer: only .public is written
    path = hio.save_public_key(tmp_path / "ok.henn", keys)
    assert hio.load_public_key(path).key_id == keys.key_id
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


def _with(value: Any, **attributes: Any) -> Any:
    import copy

    clone = copy.copy(value)
    for name, attribute in attributes.items():
        setattr(clone, name, attribute)
    return clone


# ------------------------------------------------------------------------------------------
# key ids are fingerprints; key pairs are written whole
# ------------------------------------------------------------------------------------------
def _relabelled(public: Any, key_id: str) -> Any:
    """A copy of ``public`` carrying another key's id everywhere (what a forger would send)."""
    forged = copy.deepcopy(public)
    forged.key_id = key_id
    for key in [*forged.encryption.values(), *forged.evaluation.keys.values()]:
        key.to_key_id = key_id
        if key.from_key_id != "identity":
            key.from_key_id = key_id
    return forged


def _write_key_file(path: Path, kind: str, key: Any, scheme: Any, key_id: str) -> Path:
    """Write a key file directly (past the writers' own refusal), as a forger could."""
    codec = hio.codec_for(scheme)
    sink = EntrySink()
    if kind == "public-key":
        metadata = {"public_key": codec.write_public_key(key, sink, "pk.")}
    else:
        metadata = {"secret_key": codec.write_secret_key(key, sink, "sk.")}
    return write_bundle(
        path,
        kind,
        arrays=sink.arrays,
        blobs=sink.blobs,
        metadata=metadata,
        key_id=key_id,
        scheme=codec.scheme_name,
        parameter_set=codec.parameters(scheme),
    )


def test_key_id_is_the_fingerprint_of_the_keygen_matrices(
    scheme: IntegerVectorScheme, keys: Any
) -> None:
    from hennframework.schemes.integer_vector.keys import public_fingerprint, secret_fingerprint

    assert re.fullmatch(r"iv-[0-9a-f]{32}", keys.key_id)
    assert keys.public.key_id == keys.secret.key_id == keys.key_id
    assert public_fingerprint(keys.public) == secret_fingerprint(keys.secret) == keys.key_id
    assert keys.public.core == ("encryption:1", "product:1")
    for key in [*keys.public.encryption.values(), *keys.public.evaluation.keys.values()]:
        assert key.to_key_id == keys.key_id and key.from_key_id in ("identity", keys.key_id)
    assert scheme.keygen(seed=11, max_dim=32).key_id == keys.key_id  # a function of the keys
    assert scheme.keygen(seed=11, max_dim=32, products=(1, 2)).key_id != keys.key_id
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other_set = IntegerVectorScheme("seed", backend=get_backend("numpy")).keygen(
            seed=11, max_dim=32
        )
    assert other_set.key_id != keys.key_id  # the parameter set is hashed too
    # any single change to a fingerprinted matrix changes the fingerprint
    forged = copy.deepcopy(keys.public)
    matrix = np.array(forged.encryption[1].matrix_t)
    matrix[-1, -1] += 1
    forged.encryption[1].matrix_t = matrix
    assert public_fingerprint(forged) != keys.key_id


def test_a_relabelled_public_key_is_refused(
    tmp_path: Path, scheme: IntegerVectorScheme, keys: Any, other_keys: Any
) -> None:
    # the attack: someone else's public key sent under the owner's key id
    forged = _relabelled(other_keys.public, keys.key_id)
    with pytest.raises(KeyMismatchError, match="refusing to write"):
        hio.save_public_key(tmp_path / "refused.henn", forged, scheme)
    assert not (tmp_path / "refused.henn").exists()
    path = _write_key_file(tmp_path / "forged.henn", "public-key", forged, scheme, keys.key_id)
    with pytest.raises(KeyMismatchError) as caught:
        hio.load_public_key(path)
    assert keys.key_id in str(caught.value) and other_keys.key_id in str(caught.value)
    # an edited matrix under the right id, with every checksum recomputed
    genuine = hio.save_public_key(tmp_path / "public.henn", keys)

    def edit_matrix(manifest: dict[str, Any], entries: dict[str, bytes]) -> None:
        name = "arrays/pk.enc1.matrix_t.npy"
        matrix = np.load(io.BytesIO(entries[name]))
        matrix[0, 0] += 1
        entries[name] = _npy(matrix)

    _forge(genuine, edit_matrix)
    with pytest.raises(KeyMismatchError, match="fingerprint"):
        hio.load_public_key(genuine)


def test_evaluation_keys_added_later_are_bound_by_label(
    tmp_path: Path, scheme: IntegerVectorScheme
) -> None:
    keys = scheme.keygen(seed=31, max_dim=4, dims=(1, 4), products=(1,))
    before = keys.key_id
    secret = hio.load_secret_key(hio.save_secret_key(tmp_path / "secret.henn", keys))
    assert secret.verified and sorted(secret.key.public_core) == [
        "encryption:1",
        "encryption:4",
        "product:1",
    ]
    scheme.add_dot_key(keys, 4)
    scheme.add_encryption_key(keys, 2)
    assert keys.key_id == before  # adding keys later does not change the id
    path = hio.save_public_key(tmp_path / "public.henn", keys)
    loaded = hio.load_public_key(path)
    assert loaded.verified and loaded.key_id == before
    covered, uncovered = hio.codec_for(scheme).fingerprint_scope(loaded.key)  # type: ignore[attr-defined]
    assert covered == ["encryption:1", "encryption:4", "product:1"]
    assert uncovered == ["encryption:2", next(n for n in uncovered if n.startswith("dot:4:"))]
    original = path.read_bytes()
    for field, value in (("from_key_id", "iv-" + "1" * 32), ("to_key_id", "iv-" + "2" * 32)):

        def relabel(
            manifest: dict[str, Any], entries: dict[str, bytes], f: str = field, v: str = value
        ) -> None:
            dot = next(n for n in manifest["metadata"]["public_key"]["evaluation"] if "dot" in n)
            manifest["metadata"]["public_key"]["evaluation"][dot][f] = v

        path.write_bytes(original)
        _forge(path, relabel)
        with pytest.raises(SerializationError, match="does not belong to key"):
            hio.load_public_key(path)


def test_a_secret_key_cannot_be_paired_with_foreign_public_keys(
    tmp_path: Path, scheme: IntegerVectorScheme, keys: Any, other_keys: Any
) -> None:
    secret_path = hio.save_secret_key(tmp_path / "secret.henn", keys)
    loaded = hio.load_secret_key(secret_path)
    assert loaded.verified and loaded.key_id == keys.key_id
    assert sorted(loaded.key.public_core) == ["encryption:1", "product:1"]
    # T of the owner, public keys (and their true fingerprint) of someone else
    mixed = copy.deepcopy(other_keys.secret)
    mixed.t_matrix = keys.secret.t_matrix.copy()
    path = _write_key_file(tmp_path / "mixed.henn", "secret-key", mixed, scheme, mixed.key_id)
    with pytest.raises(KeyMismatchError, match="T does not belong"):
        hio.load_secret_key(path)
    # T of the owner with someone else's public keys relabelled to the owner's id
    relabelled = copy.deepcopy(keys.secret)
    relabelled.public_core = copy.deepcopy(other_keys.secret.public_core)
    for key in relabelled.public_core.values():
        key.to_key_id = keys.key_id
        if key.from_key_id != "identity":
            key.from_key_id = keys.key_id
    path = _write_key_file(tmp_path / "r.henn", "secret-key", relabelled, scheme, keys.key_id)
    with pytest.raises(KeyMismatchError, match="fingerprint"):
        hio.load_secret_key(path)


def test_files_with_the_older_random_key_ids_are_refused(tmp_path: Path, keys: Any) -> None:
    secret_path, public_path = hio.save_keys(tmp_path, keys)

    def legacy(meta_key: str) -> Any:
        def edit(manifest: dict[str, Any], entries: dict[str, bytes]) -> None:
            manifest["key_id"] = "9c0e4b1d2f3a4b5c"
            manifest["metadata"][meta_key]["key_id"] = "9c0e4b1d2f3a4b5c"

        return edit

    _forge(public_path, legacy("public_key"))
    _forge(secret_path, legacy("secret_key"))
    for load, path in ((hio.load_public_key, public_path), (hio.load_secret_key, secret_path)):
        with pytest.raises(SerializationError, match=r"older hennframework version.*henn keygen"):
            load(path)


def _fail_on(monkeypatch: pytest.MonkeyPatch, name: str, calls: list[str]) -> None:
    """Make ``bundles.<name>`` fail with a full disk (after noting the call)."""
    from hennframework.io import bundles

    def full(path: Any, *args: Any, **kwargs: Any) -> Path:
        calls.append(name)
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(bundles, name, full)


def test_save_keys_leaves_no_half_pair_when_the_disk_fills(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keys: Any, other_keys: Any
) -> None:
    from hennframework.io import bundles

    written: list[str] = []
    real_secret = bundles.save_secret_key

    def secret_first(path: Any, *args: Any, **kwargs: Any) -> Path:
        written.append("save_secret_key")
        return real_secret(path, *args, **kwargs)

    monkeypatch.setattr(bundles, "save_secret_key", secret_first)
    _fail_on(monkeypatch, "save_public_key", written)
    with pytest.raises(OSError) as caught:
        hio.save_keys(tmp_path / "new", keys)
    assert caught.value.errno == errno.ENOSPC
    assert written == ["save_secret_key", "save_public_key"]  # the secret key is written first
    assert list((tmp_path / "new").iterdir()) == []  # no secret without its public key, no temps
    # replacing an existing pair: a failure keeps the old pair, whole and usable
    monkeypatch.undo()
    old = tmp_path / "old"
    hio.save_keys(old, other_keys)
    _fail_on(monkeypatch, "save_public_key", written)
    with pytest.raises(OSError):
        hio.save_keys(old, keys, overwrite=True)
    assert sorted(p.name for p in old.iterdir()) == ["public.henn", "secret.henn"]
    assert hio.load_secret_key(old / "secret.henn").key_id == other_keys.key_id
    assert hio.load_public_key(old / "public.henn").key_id == other_keys.key_id


def test_save_keys_undoes_the_secret_if_the_public_key_cannot_be_put_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keys: Any, other_keys: Any
) -> None:
    real_replace = os.replace

    def replace(source: Any, target: Any) -> None:
        if Path(target).name == "public.henn":
            raise OSError(errno.EIO, "Input/output error", str(target))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError):
        hio.save_keys(tmp_path / "new", keys)
    assert list((tmp_path / "new").iterdir()) == []
    monkeypatch.undo()
    hio.save_keys(tmp_path / "old", other_keys)
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError):
        hio.save_keys(tmp_path / "old", keys, overwrite=True)
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == ["public.henn", "secret.henn"]
    assert hio.load_secret_key(tmp_path / "old" / "secret.henn").key_id == other_keys.key_id
    # and a successful overwrite replaces both and leaves nothing else
    hio.save_keys(tmp_path / "old", keys, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == ["public.henn", "secret.henn"]
    assert hio.load_public_key(tmp_path / "old" / "public.henn").key_id == keys.key_id
    assert hio.load_secret_key(tmp_path / "old" / "secret.henn").key_id == keys.key_id


def test_find_secret_names_the_path(keys: Any) -> None:
    assert hio.find_secret({"a": [1, 2, {"b": keys}]}) is not None
    assert "secret" in (hio.find_secret([keys.secret]) or "")
    assert hio.find_secret({"public": keys.public, "n": np.ones(3)}) is None


def test_the_bytes_of_T_never_appear_in_public_files(
    tmp_path: Path, scheme: IntegerVectorScheme, keys: Any, other_keys: Any
) -> None:
    t_bytes = np.ascontiguousarray(keys.secret.t_matrix, dtype="<i8").tobytes()
    t_other = np.ascontiguousarray(other_keys.secret.t_matrix, dtype="<i8").tobytes()
    assert len(t_bytes) == 32 * 8
    model = _xor_model(keys)
    written = [
        hio.save_public_key(tmp_path / "public.henn", keys),
        hio.save_model(tmp_path / "model.henn", model),
        hio.save_history(tmp_path / "history.henn", model.history),
        hio.save_predictions(tmp_path / "pred.henn", [model.predict(XOR_INPUTS)]),
        hio.save_ciphertexts(tmp_path / "ct.henn", {"w": model.weights()[0]}),
        hio.save_switch_key(
            tmp_path / "switch.henn", scheme.make_switch_key(keys, other_keys), scheme
        ),
    ]
    secret_path = hio.save_secret_key(tmp_path / "secret.henn", keys)
    assert t_bytes in secret_path.read_bytes()  # the check below can find T when it is there
    for path in written:
        data = path.read_bytes()
        assert t_bytes not in data and t_other not in data, path.name
        assert read_bundle(path).kind != "secret-key"
        assert b"secret_key" not in data and b"t_matrix" not in data


# ------------------------------------------------------------------------------------------
# ciphertexts
# ------------------------------------------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(
    values=st.lists(
        hnp.arrays(
            np.float64,
            hnp.array_shapes(min_dims=0, max_dims=3, max_side=3),
            elements=st.floats(-8, 8, allow_nan=False, width=32),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_ciphertexts_round_trip(
    tmp_path_factory: pytest.TempPathFactory,
    scheme: IntegerVectorScheme,
    keys: Any,
    values: list[np.ndarray],
) -> None:
    path = tmp_path_factory.mktemp("ct") / "c.henn"
    tensors = {f"t{i}": scheme.encrypt_tensor(v, keys.public) for i, v in enumerate(values)}
    tensors["product"] = tensors["t0"] * tensors["t0"]  # larger noise, other coefficients
    hio.save_ciphertexts(path, tensors, metadata={"note": "hello"})
    loaded, meta = hio.load_ciphertexts(path, scheme=scheme)
    assert meta["note"] == "hello" and list(loaded) == list(tensors)
    for name, tensor in tensors.items():
        again = loaded[name]
        assert again.shape == tensor.shape and again.key_id == keys.key_id
        assert again.scale_int == tensor.scale_int and again.dim == tensor.dim
        np.testing.assert_array_equal(again.data, tensor.data)
        np.testing.assert_array_equal(
            np.broadcast_to(again.noise, again.shape), np.broadcast_to(tensor.noise, tensor.shape)
        )
        np.testing.assert_array_equal(
            scheme.decrypt_tensor(again, keys.secret), scheme.decrypt_tensor(tensor, keys.secret)
        )


def test_vector_ciphertexts_round_trip(tmp_path: Path, scheme: IntegerVectorScheme) -> None:
    keys = scheme.keygen(seed=3, max_dim=4, dims=(1, 4), products=(4,))
    vectors = scheme.encrypt(np.array([[1, 2, 3, 4], [5, 6, 7, 8]]), keys.public, dim=4)
    scalars = scheme.encrypt_tensor(np.array([1.5]), keys.public)
    hio.save_ciphertexts(tmp_path / "v.henn", {"v": vectors, "s": scalars})
    loaded, _ = hio.load_ciphertexts(tmp_path / "v.henn", scheme=scheme)
    np.testing.assert_array_equal(scheme.decrypt(loaded["v"], keys), [[1, 2, 3, 4], [5, 6, 7, 8]])
    np.testing.assert_allclose(scheme.decrypt_tensor(loaded["s"], keys.secret), [1.5])


def test_mixed_keys_are_refused(
    tmp_path: Path, scheme: IntegerVectorScheme, keys: Any, other_keys: Any
) -> None:
    with pytest.raises(KeyMismatchError, match="different keys"):
        hio.save_ciphertexts(
            tmp_path / "m.henn",
            {
                "a": scheme.encrypt_tensor(np.ones(1), keys.public),
                "b": scheme.encrypt_tensor(np.ones(1), other_keys.public),
            },
        )


def _forge(path: Path, edit: Any) -> None:
    """Edit the manifest of ``path`` and re-sign everything, as a careful forger would."""
    from hennframework.io import container

    with zipfile.ZipFile(path) as archive:
        entries = {info.filename: archive.read(info) for info in archive.infolist()}
    manifest = json.loads(entries.pop("manifest.json"))
    edit(manifest, entries)
    import hashlib

    manifest["entries"] = {
        name: {
            **manifest["entries"].get(name, {}),
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
        }
        for name, data in entries.items()
    }
    manifest.pop("checksum", None)
    manifest["checksum"] = {
        "algorithm": "sha256",
        "value": container._overall_checksum(manifest, entries),
    }
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("manifest.json", canonical_json(manifest))
        for name, data in entries.items():
            archive.writestr(name, data)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def test_codec_validation_of_forged_files(
    tmp_path: Path, scheme: IntegerVectorScheme, keys: Any
) -> None:
    tensor = scheme.encrypt_tensor(np.array([1.0, 2.0]), keys.public)
    original = hio.save_ciphertexts(tmp_path / "c.henn", {"t": tensor}).read_bytes()

    def attempt(edit: Any, match: str) -> None:
        path = tmp_path / "forged.henn"
        path.write_bytes(original)
        _forge(path, edit)
        with pytest.raises(SerializationError, match=match):
            hio.load_ciphertexts(path, scheme=scheme)

    def huge(manifest: dict[str, Any], entries: dict[str, bytes]) -> None:
        entries["arrays/ct.m1.data.npy"] = _npy(np.full((2, 2), 2**62, dtype=np.int64))
        manifest["entries"]["arrays/ct.m1.data.npy"].update(dtype="<i8", shape=[2, 2])

    def negative_noise(manifest: dict[str, Any], entries: dict[str, bytes]) -> None:
        entries["arrays/ct.m1.noise.npy"] = _npy(np.array([-1.0, 5.0]))

    def nan_noise(manifest: dict[str, Any], entries: dict[str, bytes]) -> None:
        entries["arrays/ct.m1.noise.npy"] = _npy(np.array([np.nan, 5.0]))

    def wrong_width(manifest: dict[str, Any], entries: dict[str, bytes]) -> None:
        entries["arrays/ct.m1.data.npy"] = _npy(np.zeros((2, 5), dtype=np.int64))
        manifest["entries"]["arrays/ct.m1.data.npy"].update(dtype="<i8", shape=[2, 5])

    def extra_array(manifest: dict[str, Any], entries: dict[str, bytes]) -> None:
        entries["arrays/smuggled.npy"] = _npy(np.zeros(3))
        manifest["entries"]["arrays/smuggled.npy"] = {"dtype": "<f8", "shape": [3]}

    def bad_key_id(manifest: dict[str, Any], entries: dict[str, bytes]) -> None:
        manifest["metadata"]["tensors"]["tensors"][0]["key_id"] = "../../etc/passwd"

    def other_key_id(manifest: dict[str, Any], entries: dict[str, bytes]) -> None:
        manifest["metadata"]["tensors"]["tensors"][0]["key_id"] = "iv-" + "0" * 32

    def legacy_key_id(manifest: dict[str, Any], entries: dict[str, bytes]) -> None:
        manifest["key_id"] = "0123456789abcdef"  # a random id of an older version
        manifest["metadata"]["tensors"]["tensors"][0]["key_id"] = "0123456789abcdef"

    def wrong_offsets(manifest: dict[str, Any], entries: dict[str, bytes]) -> None:
        manifest["metadata"]["tensors"]["tensors"][0]["shape"] = [1]

    def changed_params(manifest: dict[str, Any], entries: dict[str, bytes]) -> None:
        manifest["parameter_set"]["values"]["w"] = 2**30

    attempt(huge, "2\\*\\*62")
    attempt(negative_noise, "noise")
    attempt(nan_noise, "noise")
    attempt(wrong_width, "shape")
    attempt(extra_array, "unexpected entries")
    attempt(bad_key_id, "malformed key id")
    attempt(other_key_id, "tampered")
    attempt(legacy_key_id, r"older hennframework version.*henn keygen")
    attempt(wrong_offsets, "belong to no tensor|tile")
    path = tmp_path / "params.henn"
    path.write_bytes(original)
    _forge(path, changed_params)
    with pytest.raises(SerializationError, match="differs from this version's set"):
        hio.load_ciphertexts(path)
    with pytest.raises(KeyMismatchError, match="not the scheme instance"):
        hio.load_ciphertexts(path, scheme=scheme)


def test_custom_parameter_sets_round_trip(tmp_path: Path) -> None:
    from hennframework.schemes.integer_vector.params import IntegerVectorParams

    params = IntegerVectorParams(
        "custom-test", w=2**36, scale=2**10, k=2, t_bound=3, a_bound=3, e_bound=3, gadget_bits=8
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        custom = IntegerVectorScheme(params, backend=get_backend("numpy"))
        keys = custom.keygen(seed=5)
        secret_path, public_path = hio.save_keys(tmp_path, keys)
        public = hio.load_public_key(public_path)
        secret = hio.load_secret_key(secret_path, scheme=public.scheme)
    assert public.scheme.params.w == 2**36 and public.scheme.params.k == 2
    value = public.scheme.encrypt_tensor(np.array([0.25]), public.key)
    np.testing.assert_allclose(
        public.scheme.decrypt_tensor(value * value, secret.key), [0.0625], atol=1e-3
    )


# ------------------------------------------------------------------------------------------
# models, histories, predictions, switching
# ------------------------------------------------------------------------------------------
def test_encrypted_model_round_trip_trains_identically(
    tmp_path: Path, scheme: IntegerVectorScheme, keys: Any
) -> None:
    model = _xor_model(keys, steps=4)
    path = hio.save_model(tmp_path / "m.henn", model)
    bundle = hio.load_model(path, scheme=scheme)
    assert bundle.encrypted and bundle.key_id == keys.key_id and not bundle.model.reads_words
    assert bundle.history.steps == 4 and len(bundle.history.records) == 4
    assert all(r.loss is None for r in bundle.history.records)  # no plaintext loss in the file
    for _ in range(3):
        model.fit(XOR_INPUTS, XOR_TARGETS, epochs=1, learning_rate=0.1)
        bundle.model.fit(XOR_INPUTS, XOR_TARGETS, epochs=1, learning_rate=0.1)
    np.testing.assert_array_equal(
        bundle.model.decrypt(keys.secret).predict(XOR_INPUTS),
        model.decrypt(keys.secret).predict(XOR_INPUTS),
    )
    np.testing.assert_allclose(
        bundle.history.decrypt(keys.secret, scheme), model.history.decrypt(keys.secret, scheme)
    )


def test_plaintext_losses_never_reach_an_encrypted_model_file(
    tmp_path: Path, scheme: IntegerVectorScheme, keys: Any
) -> None:
    model = _xor_model(keys, steps=2)
    losses = model.history.decrypt(keys.secret, scheme)  # the owner looked at them
    path = hio.save_model(tmp_path / "m.henn", model)
    assert all(
        record["loss"] is None for record in read_bundle(path).metadata["history"]["records"]
    )
    assert hio.load_model(path, scheme=scheme).history.decrypt(keys.secret, scheme) == losses


def test_sentiment_model_round_trip_with_vocabulary(
    tmp_path: Path, scheme: IntegerVectorScheme, keys: Any
) -> None:
    words = ["good", "bad", "fine", "awful", "great"]
    network = Sequential.bag_of_words(len(words), hidden=3, seed=1).encrypt(keys)
    reviews = BagOfWords.from_reviews([[0, 2], [1, 3], [4]])
    network.fit(reviews, [1, 0, 1], batch_size=2, learning_rate=0.1)
    path = hio.save_model(tmp_path / "s.henn", network, vocabulary=words)
    bundle = hio.load_model(path, scheme=scheme)
    assert bundle.vocabulary == words and bundle.model.reads_words
    assert bundle.model.config() == network.config()
    assert bundle.history.steps == 2 and bundle.training.completed_steps == 2
    for a, b in zip(bundle.model.weights(), network.weights(), strict=True):
        np.testing.assert_array_equal(
            scheme.decrypt_tensor(a, keys.secret), scheme.decrypt_tensor(b, keys.secret)
        )
    with pytest.raises(SerializationError, match="vocabulary has 2 words"):
        hio.save_model(tmp_path / "bad.henn", network, vocabulary=["a", "b"])


def test_plain_model_file_is_private_and_round_trips(tmp_path: Path) -> None:
    model = Sequential.mlp([3, 4, 1], seed=2, activation="lsq3", bias=True)
    model.fit(XOR_INPUTS, XOR_TARGETS, epochs=3, learning_rate=0.1)
    path = hio.save_model(tmp_path / "plain.henn", model)
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    bundle = hio.load_model(path)
    assert not bundle.encrypted
    np.testing.assert_array_equal(bundle.model.predict(XOR_INPUTS), model.predict(XOR_INPUTS))
    assert bundle.history.losses == model.history.losses  # the owner's own file keeps plain losses
    with pytest.raises(SerializationError, match=r"holds a plain-model"):
        hio.load_model(path, kinds=("encrypted-model",))


def test_model_architecture_forgeries_are_refused(
    tmp_path: Path, scheme: IntegerVectorScheme, keys: Any
) -> None:
    original = hio.save_model(tmp_path / "m.henn", _xor_model(keys, steps=1)).read_bytes()

    def attempt(edit: Any, match: str) -> None:
        path = tmp_path / "forged.henn"
        path.write_bytes(original)
        _forge(path, edit)
        with pytest.raises(SerializationError, match=match):
            hio.load_model(path, scheme=scheme)

    attempt(
        lambda m, e: m["metadata"]["architecture"]["layers"][0].update(inputs=5),
        "shape|parameter list",
    )
    attempt(
        lambda m, e: m["metadata"]["architecture"]["layers"].append({"type": "Eval", "code": "1"}),
        "unknown layer",
    )
    attempt(lambda m, e: m["metadata"]["architecture"].update(type="pickle"), "unknown model type")
    attempt(lambda m, e: m["metadata"]["history"]["records"][0].update(encrypted_loss=5), "history")


def test_history_and_predictions_files(
    tmp_path: Path, scheme: IntegerVectorScheme, keys: Any
) -> None:
    model = _xor_model(keys, steps=3)
    history, loaded_scheme = hio.load_history(
        hio.save_history(tmp_path / "h.henn", model.history), scheme=scheme
    )
    assert history.steps == 3 and loaded_scheme is scheme
    assert history.decrypt(keys.secret, scheme) == model.history.decrypt(keys.secret, scheme)
    from_model, _ = hio.load_history(hio.save_model(tmp_path / "m.henn", model), scheme=scheme)
    assert from_model.steps == 3
    predictions = model.predict(XOR_INPUTS)
    loaded = hio.load_predictions(
        hio.save_predictions(tmp_path / "p.henn", [predictions], metadata={"rows": 4}),
        scheme=scheme,
    )
    assert loaded.encrypted and loaded.key_id == keys.key_id and loaded.metadata["rows"] == 4
    np.testing.assert_array_equal(
        scheme.decrypt_tensor(loaded.tensors[0], keys.secret),
        scheme.decrypt_tensor(predictions, keys.secret),
    )
    plain = hio.load_predictions(hio.save_predictions(tmp_path / "q.henn", np.array([0.25, 0.75])))
    assert (
        not plain.encrypted and plain.values is not None and plain.values.tolist() == [0.25, 0.75]
    )


def test_switched_model_decrypts_under_b_only(
    tmp_path: Path, scheme: IntegerVectorScheme, keys: Any, other_keys: Any
) -> None:
    model = _xor_model(keys, steps=2)
    switch = scheme.make_switch_key(keys, other_keys, dim=1)
    key_file = hio.load_switch_key(
        hio.save_switch_key(tmp_path / "k.henn", switch, scheme), scheme=scheme
    )
    assert key_file.key.from_key_id == keys.key_id and key_file.key.to_key_id == other_keys.key_id
    np.testing.assert_array_equal(key_file.key.matrix_t, switch.matrix_t)
    weights = [scheme.switch_key(w, key_file.key) for w in model.weights()]
    for before, after in zip(model.weights(), weights, strict=True):
        np.testing.assert_array_equal(
            scheme.decrypt_tensor(after, other_keys.secret),
            scheme.decrypt_tensor(before, keys.secret),
        )
        with pytest.raises(KeyMismatchError):
            scheme.decrypt_tensor(after, keys.secret)


# ------------------------------------------------------------------------------------------
# the plugin hook
# ------------------------------------------------------------------------------------------
class ToyTensor:
    """A stand-in for a plugin tensor that serialises itself to bytes (like TenSEAL's)."""

    def __init__(self, scheme: Any, payload: bytes, shape: tuple[int, ...]) -> None:
        self.scheme, self.payload, self.shape = scheme, payload, shape

    def serialize(self) -> bytes:
        return self.payload


class ToySecret:
    pass


class ToyScheme:
    name = "toy-blob-scheme"

    def __init__(self, size: int) -> None:
        self.size = size


class ToyCodec:
    """The minimum a plugin writes: tensors as blobs, parameters as JSON."""

    scheme_name = "toy-blob-scheme"

    def parameters(self, scheme: Any) -> dict[str, Any]:
        return {"name": "toy", "values": {"size": scheme.size}}

    def make_scheme(self, parameters: Mapping[str, Any], backend: Any) -> Any:
        return ToyScheme(int(parameters["values"]["size"]))

    def is_secret(self, value: Any) -> bool:
        return isinstance(value, ToySecret)

    def key_id(self, value: Any) -> str | None:
        return "toy-key" if isinstance(value, ToyTensor) else None

    def write_tensors(self, tensors: Sequence[Any], sink: EntrySink, prefix: str) -> dict[str, Any]:
        return {
            "items": [
                {"blob": sink.add_blob(f"{prefix}{i}", t.serialize()), "shape": list(t.shape)}
                for i, t in enumerate(tensors)
            ]
        }

    def read_tensors(
        self, meta: Mapping[str, Any], source: EntrySource, prefix: str, scheme: Any
    ) -> list[Any]:
        return [
            ToyTensor(scheme, source.blob(item["blob"]), tuple(item["shape"]))
            for item in meta["items"]
        ]

    def write_public_key(self, public: Any, sink: EntrySink, prefix: str) -> dict[str, Any]:
        return {"blob": sink.add_blob(f"{prefix}public", public)}

    def read_public_key(
        self, meta: Mapping[str, Any], source: EntrySource, prefix: str, scheme: Any
    ) -> Any:
        return source.blob(meta["blob"])

    write_secret_key = write_public_key
    read_secret_key = read_public_key
    write_switch_key = write_public_key
    read_switch_key = read_public_key


def test_plugin_codec_hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec_registry, "_CODECS", dict(codec_registry._CODECS))
    codec = ToyCodec()
    assert isinstance(codec, hio.SchemeCodec)
    hio.register_codec(codec)
    scheme = ToyScheme(7)
    tensors = {
        "a": ToyTensor(scheme, b"\x00ciphertext-bytes\xff", (2, 3)),
        "b": ToyTensor(scheme, b"", ()),
    }
    path = hio.save_ciphertexts(tmp_path / "toy.henn", tensors)
    loaded, _ = hio.load_ciphertexts(path)
    assert loaded["a"].payload == b"\x00ciphertext-bytes\xff" and loaded["a"].shape == (2, 3)
    assert loaded["a"].scheme.size == 7
    assert read_bundle(path).manifest["scheme"] == "toy-blob-scheme"
    with pytest.raises(SerializationError, match="refusing"):
        hio.save_ciphertexts(tmp_path / "leak.henn", {"a": _with(tensors["a"], key=ToySecret())})
    with pytest.raises(SerializationError, match="not installed"):
        hio.codec_for("no-such-scheme-xyz")


def test_entry_sink_and_source_guard_their_names() -> None:
    sink = EntrySink()
    sink.add_array("x", np.zeros(2))
    with pytest.raises(SerializationError, match="twice"):
        sink.add_blob("x", b"")
    source = EntrySource({"x": np.zeros(2)}, {"b": b"1"}, "file")
    with pytest.raises(SerializationError, match="expected int64"):
        source.array("x", dtype="int64")
    with pytest.raises(SerializationError, match="missing"):
        source.blob("nope")
    source.array("x")
    with pytest.raises(SerializationError, match="unexpected entries"):
        source.check_all_used()


def test_write_bundle_rejects_a_directory_target(tmp_path: Path) -> None:
    with pytest.raises(SerializationError, match="directory"):
        write_bundle(tmp_path, "history")


def test_files_of_the_former_sentiment_type_load_as_the_same_layers() -> None:
    """Model files written before the sentiment network became a Sequential still load."""
    from hennframework.io.models import build_model, describe_architecture

    legacy = {
        "type": "sentiment",
        "vocabulary_size": 3,
        "hidden": 2,
        "activation": Sequential.bag_of_words(3, 2).config()[2]["activation"],
        "vocabulary": ["a", "b", "c"],
    }
    model, shapes, vocabulary = build_model(legacy, "old.henn")
    assert [layer["type"] for layer in model.config()] == ["EmbeddingSum", "Dense", "Sigmoid"]
    assert shapes == [(3, 2), (2, 1)] and vocabulary == ["a", "b", "c"]
    assert describe_architecture(legacy) == "sequential words 3 -> 2-1 (lsq3)"
    with pytest.raises(SerializationError, match="3 distinct words"):
        build_model({**legacy, "vocabulary": ["a", "a", "c"]}, "old.henn")
