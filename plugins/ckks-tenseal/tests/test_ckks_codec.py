"""The CKKS codec: keys, tensors and models in hennframework's ``.henn`` files, and the CLI path.

Uses the small parameter sets (n4096 / n8192): a public key file with the default rotation
keys is about 43 MB at n8192, so the tests write few of them.
"""

from __future__ import annotations

import copy
import gc
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hennframework import io as hio
from hennframework.cli import main as henn
from hennframework.data.bundled import XOR_INPUTS
from hennframework.exceptions import CapabilityError, KeyMismatchError, SerializationError
from hennframework.io.codecs import EntrySink, EntrySource, find_secret
from hennframework.io.container import read_bundle, write_bundle
from hennframework.nn import Sequential
from hennframework.scheme import KeySet

from hennframework_ckks import CKKSScheme, Layout
from hennframework_ckks._seal import sa
from hennframework_ckks.codec import CODEC, CKKSCodec
from hennframework_ckks.keys import (
    _PUBLIC_MAGIC,
    CKKSPublicKey,
    CKKSSecretKey,
    pack_container,
    unpack_container,
)


@pytest.fixture(scope="module")
def key_files(tmp_path_factory: pytest.TempPathFactory, keys4096: KeySet) -> tuple[Path, Path]:
    """secret.henn and public.henn of the session's n4096 keys (written once)."""
    folder = tmp_path_factory.mktemp("ckks-keys")
    return hio.save_keys(folder, keys4096)


@pytest.fixture(scope="module")
def stranger4096(scheme4096: CKKSScheme) -> KeySet:
    """Someone else's n4096 keys (no rotation keys: quick to make)."""
    return scheme4096.keygen(rotations="none")


def test_codec_is_registered_and_satisfies_the_protocol() -> None:
    assert isinstance(CODEC, hio.SchemeCodec)
    assert hio.codec_for("ckks") is CODEC
    assert hio.codec_for(CKKSScheme("n4096")) is CODEC


def test_key_files_round_trip(key_files: tuple[Path, Path], keys4096: KeySet) -> None:
    secret_path, public_path = key_files
    if os.name == "posix":
        assert stat.S_IMODE(os.stat(secret_path).st_mode) == 0o600
    public = hio.load_public_key(public_path)
    secret = hio.load_secret_key(secret_path)
    assert isinstance(public.key, CKKSPublicKey) and isinstance(secret.key, CKKSSecretKey)
    assert public.key_id == secret.key_id == keys4096.key_id
    assert public.key.rotation_steps == keys4096.public.rotation_steps
    assert isinstance(public.scheme, CKKSScheme) and public.scheme.params.name == "n4096"
    assert read_bundle(public_path).kind == "public-key"
    # the loaded public key encrypts, the loaded secret key decrypts (and vice versa)
    values = np.array([[0.5, -1.25, 2.0], [0.0, 3.5, -0.75]])
    fresh = public.scheme.encrypt_tensor(values, public.key)
    np.testing.assert_allclose(public.scheme.decrypt_tensor(fresh, secret.key), values, atol=1e-2)
    np.testing.assert_allclose(
        public.scheme.decrypt_tensor(fresh, keys4096.secret), values, atol=1e-2
    )
    # the loaded secret key holds the same secret: its encryptions decrypt with the original
    by_secret = public.scheme.encrypt_tensor(values, secret.key)
    np.testing.assert_allclose(
        public.scheme.decrypt_tensor(by_secret, keys4096.secret), values, atol=1e-2
    )


def test_tensors_round_trip_keep_values_shape_and_layout(
    tmp_path: Path, scheme4096: CKKSScheme, keys4096: KeySet
) -> None:
    rng = np.random.default_rng(3)
    a = rng.uniform(-2, 2, size=(3, 4))
    b = rng.uniform(-2, 2, size=(5,))
    slot_bits = scheme4096.params.slots.bit_length() - 1
    layout = Layout.default((3, 4), slot_bits)
    ta = scheme4096.encrypt_tensor(a, keys4096.public, layout=layout)
    tb = scheme4096.encrypt_tensor(b, keys4096.public) * 0.5  # a tensor after one rescale
    tt = ta.T  # a non-default packing (transposed view)
    path = hio.save_ciphertexts(tmp_path / "c.henn", {"a": ta, "b": tb, "t": tt})
    loaded, _ = hio.load_ciphertexts(path)
    assert list(loaded) == ["a", "b", "t"]
    assert loaded["a"].shape == (3, 4) and loaded["b"].shape == (5,) and loaded["t"].shape == (4, 3)
    assert loaded["a"].layout == ta.layout and loaded["b"].layout == tb.layout
    assert loaded["t"].layout == tt.layout
    np.testing.assert_allclose(
        scheme4096.decrypt_tensor(loaded["t"], keys4096.secret), a.T, atol=1e-2
    )
    assert loaded["b"].levels_left == tb.levels_left
    assert read_bundle(path).key_id == keys4096.key_id
    np.testing.assert_allclose(
        scheme4096.decrypt_tensor(loaded["a"], keys4096.secret), a, atol=1e-2
    )
    np.testing.assert_allclose(
        scheme4096.decrypt_tensor(loaded["b"], keys4096.secret), b * 0.5, atol=1e-2
    )
    # loaded tensors still compute
    np.testing.assert_allclose(
        scheme4096.decrypt_tensor(loaded["a"] + 1.0, keys4096.secret), a + 1.0, atol=1e-2
    )


def test_encrypted_xor_model_round_trip(
    tmp_path: Path, scheme8192: CKKSScheme, keys8192: KeySet
) -> None:
    plain = Sequential.mlp([3, 4, 1], activation="taylor3", seed=0, init_scale=4.0)
    model = plain.encrypt(keys8192, scheme8192)
    path = hio.save_model(tmp_path / "m.henn", model)
    assert read_bundle(path).kind == "encrypted-model"
    bundle = hio.load_model(path, scheme=scheme8192)
    assert bundle.encrypted and bundle.key_id == keys8192.key_id
    for before, after in zip(model.weights(), bundle.model.weights(), strict=True):
        assert before.shape == after.shape
        np.testing.assert_allclose(
            scheme8192.decrypt_tensor(after, keys8192.secret),
            scheme8192.decrypt_tensor(before, keys8192.secret),
            atol=1e-6,
        )
    np.testing.assert_allclose(
        bundle.model.decrypt(keys8192.secret).predict(XOR_INPUTS),
        plain.predict(XOR_INPUTS),
        atol=1e-2,
    )


def test_secret_material_is_refused_by_public_writers(
    tmp_path: Path, scheme4096: CKKSScheme, keys4096: KeySet
) -> None:
    assert CODEC.is_secret(keys4096.secret)
    assert CODEC.is_secret(keys4096.secret.secret_key)  # the raw SEAL secret key
    assert CODEC.is_secret(keys4096.secret.decryptor)
    assert not CODEC.is_secret(keys4096.public)
    assert find_secret({"model": [keys4096.secret]}) is not None
    with pytest.raises(SerializationError, match="refusing"):
        hio.save_public_key(tmp_path / "leak.henn", keys4096.secret, scheme=scheme4096)
    tensor = scheme4096.encrypt_tensor(np.ones(3), keys4096.public)
    tensor.owner_key = keys4096.secret  # type: ignore[attr-defined]
    with pytest.raises(SerializationError, match="refusing"):
        hio.save_ciphertexts(tmp_path / "leak2.henn", {"t": tensor})
    assert not (tmp_path / "leak.henn").exists() and not (tmp_path / "leak2.henn").exists()


def test_key_switching_is_a_clear_capability_error(
    tmp_path: Path, scheme4096: CKKSScheme, keys4096: KeySet
) -> None:
    with pytest.raises(CapabilityError, match=r"re-encrypts .* --secret OLD_SECRET --public"):
        hio.save_switch_key(tmp_path / "s.henn", keys4096.public, scheme4096)
    with pytest.raises(CapabilityError, match="not available in this release"):
        CODEC.read_switch_key({}, EntrySource({}, {}, "x"), "ks.", scheme4096)


def test_tensors_need_their_key_and_matching_parameters(
    scheme4096: CKKSScheme, keys4096: KeySet
) -> None:
    codec = CKKSCodec()  # fresh registry: knows no key
    sink = EntrySink()
    meta = codec.write_tensors(
        [scheme4096.encrypt_tensor(np.ones(2), keys4096.public)], sink, "ct."
    )
    fresh = CKKSCodec()
    with pytest.raises(KeyMismatchError, match="Load the key first"):
        fresh.read_tensors(meta, EntrySource(sink.arrays, sink.blobs, "f"), "ct.", scheme4096)
    loaded = codec.read_tensors(meta, EntrySource(sink.arrays, sink.blobs, "f"), "ct.", scheme4096)
    assert loaded[0].key_id == keys4096.key_id
    with pytest.raises(SerializationError, match="corrupted"):
        codec.read_tensors({**meta, "shapes": [[3]]}, EntrySource({}, sink.blobs, "f"), "", None)


def test_parameters_round_trip_and_refuse_tampering() -> None:
    scheme = CKKSScheme("n8192")
    params = CODEC.parameters(scheme)
    assert params["name"] == "n8192"
    assert CODEC.make_scheme(params, None).params is scheme.params
    changed = {**params, "values": {**params["values"], "scale_bits": 30}}
    with pytest.raises(SerializationError, match="differs"):
        CODEC.make_scheme(changed, None)
    insecure = {
        "name": "custom",
        "values": {"poly_modulus_degree": 4096, "coeff_bits": [60, 60, 60], "scale_bits": 40},
    }
    with pytest.raises(SerializationError, match="invalid"):
        CODEC.make_scheme(insecure, None)
    with pytest.raises(SerializationError, match="incomplete"):
        CODEC.make_scheme({"name": "n8192"}, None)


def test_corrupted_key_blob_is_refused(scheme4096: CKKSScheme, keys4096: KeySet) -> None:
    sink = EntrySink()
    meta = CODEC.write_public_key(keys4096.public, sink, "pk.")
    blob = bytearray(sink.blobs["pk.public"])
    blob[len(blob) // 2] ^= 0xFF
    with pytest.raises(SerializationError):
        CODEC.read_public_key(
            meta, EntrySource({}, {"pk.public": bytes(blob)}, "f"), "pk.", scheme4096
        )
    with pytest.raises(SerializationError, match="malformed key id"):
        CODEC.read_public_key(
            {**meta, "key_id": "../x"}, EntrySource({}, sink.blobs, "f"), "", scheme4096
        )


def test_cli_keygen_encrypt_inspect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "keys"
    model = tmp_path / "m.henn"
    assert henn(["--scheme", "ckks", "keygen", "--out", str(keys), "--params", "n8192"]) == 0
    public, secret = keys / "public.henn", keys / "secret.henn"
    assert public.exists() and secret.exists()
    if os.name == "posix":
        assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    # pow2 rotation keys at n8192: tens of MB, not hundreds
    assert 1 << 20 < public.stat().st_size < 100 << 20
    args = ["--scheme", "ckks", "encrypt-model", "--public", str(public), "--arch", "xor"]
    args += ["--seed", "0"]  # the same starting weights as Sequential.mlp(..., seed=0) below
    assert henn([*args, "--out", str(model)]) == 0
    capsys.readouterr()
    assert henn(["inspect", str(model)]) == 0
    out = capsys.readouterr().out
    assert "encrypted-model" in out and "ckks/n8192" in out
    gc.collect()  # the CLI's key objects are gone: the codec holds keys weakly
    with pytest.raises(KeyMismatchError, match="Load the key first"):
        hio.load_model(model)  # tensors need their key: load the key file first
    secret_key: Any = hio.load_secret_key(secret)
    loaded = hio.load_model(model)
    predictions = loaded.model.decrypt(secret_key.key).predict(XOR_INPUTS)
    expected = Sequential.mlp([3, 4, 1], activation="taylor3", seed=0, init_scale=4.0)
    np.testing.assert_allclose(predictions, expected.predict(XOR_INPUTS), atol=1e-2)


def test_raw_seal_secret_key_is_secret() -> None:
    assert CODEC.is_secret(sa.SecretKey())
    assert not CODEC.is_secret(sa.PublicKey())
    assert CODEC.key_id(object()) is None


def test_predictions_round_trip(tmp_path: Path, scheme4096: CKKSScheme, keys4096: KeySet) -> None:
    values = np.array([[0.25], [-0.5], [1.0]])
    tensor = scheme4096.encrypt_tensor(values, keys4096.public)
    path = hio.save_predictions(tmp_path / "p.henn", [tensor])
    loaded = hio.load_predictions(path)
    assert loaded.encrypted and loaded.key_id == keys4096.key_id
    np.testing.assert_allclose(
        scheme4096.decrypt_tensor(loaded.tensors[0], keys4096.secret), values, atol=1e-2
    )


# ------------------------------------------------------------------------------------------
# key ids are fingerprints: a key under another key's id is refused
# ------------------------------------------------------------------------------------------
def test_key_ids_are_fingerprints_of_the_public_material(
    keys4096: KeySet, stranger4096: KeySet
) -> None:
    public = keys4096.public
    assert re.fullmatch(r"ckks-[0-9a-f]{32}", keys4096.key_id)
    assert public.fingerprint == public.key_id == keys4096.secret.key_id == keys4096.key_id
    assert stranger4096.key_id != keys4096.key_id
    data = public.to_bytes()
    again = CKKSPublicKey.from_bytes(data)
    assert again.key_id == keys4096.key_id and again.to_bytes() == data  # byte for byte
    assert CKKSSecretKey.from_bytes(keys4096.secret.to_bytes()).key_id == keys4096.key_id
    assert CODEC.fingerprint(keys4096.secret) == keys4096.key_id  # type: ignore[attr-defined]
    covered, uncovered = CODEC.fingerprint_scope(public)  # type: ignore[attr-defined]
    sizes = {name: f"{size / 1e6:.1f} MB" for name, size in public.size_bytes().items()}
    assert covered == [
        f"public key ({sizes['public_key']})",
        f"relinearisation key ({sizes['relin_keys']})",
        f"rotation keys for steps 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024 "
        f"({sizes['galois_keys']})",
    ]
    assert uncovered == []


def _write_public(path: Path, public: Any, key_id: str, scheme: CKKSScheme) -> Path:
    """A public key file written past save_public_key's own check, as a forger could."""
    sink = EntrySink()
    meta = CODEC.write_public_key(public, sink, "pk.")
    return write_bundle(
        path,
        "public-key",
        blobs=sink.blobs,
        metadata={"public_key": meta},
        key_id=key_id,
        scheme="ckks",
        parameter_set=CODEC.parameters(scheme),
    )


def test_a_relabelled_public_key_is_refused(
    tmp_path: Path,
    scheme4096: CKKSScheme,
    keys4096: KeySet,
    stranger4096: KeySet,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the attack: someone else's public key sent under the owner's key id
    forged = copy.copy(stranger4096.public)
    forged.key_id = keys4096.key_id
    with pytest.raises(KeyMismatchError, match="refusing to write"):
        hio.save_public_key(tmp_path / "refused.henn", forged, scheme4096)
    with pytest.raises(KeyMismatchError, match="fingerprint"):
        CKKSPublicKey.from_bytes(forged.to_bytes())
    path = _write_public(tmp_path / "forged.henn", forged, keys4096.key_id, scheme4096)
    with pytest.raises(KeyMismatchError) as caught:
        hio.load_public_key(path)
    assert keys4096.key_id in str(caught.value) and stranger4096.key_id in str(caught.value)
    capsys.readouterr()
    assert henn(["inspect", str(path)]) == 1
    assert stranger4096.key_id in capsys.readouterr().err
    args = ["--scheme", "ckks", "encrypt-model", "--public", str(path), "--arch", "xor"]
    assert henn([*args, "--out", str(tmp_path / "m.henn")]) == 1
    assert not (tmp_path / "m.henn").exists()


def test_swapped_evaluation_keys_and_older_ids_are_refused(
    keys4096: KeySet, stranger4096: KeySet
) -> None:
    header, parts = unpack_container(_PUBLIC_MAGIC, keys4096.public.to_bytes(), "public key")
    theirs = unpack_container(_PUBLIC_MAGIC, stranger4096.public.to_bytes(), "public key")[1]
    swapped = pack_container(_PUBLIC_MAGIC, header, {**parts, "relin_keys": theirs["relin_keys"]})
    with pytest.raises(KeyMismatchError, match="fingerprint"):
        CKKSPublicKey.from_bytes(swapped)
    dropped = {name: blob for name, blob in parts.items() if name != "galois_keys"}
    with pytest.raises(SerializationError, match="rotation keys"):
        CKKSPublicKey.from_bytes(pack_container(_PUBLIC_MAGIC, header, dropped))
    legacy = pack_container(_PUBLIC_MAGIC, {**header, "key_id": "ckks-3a7f6f081c3363fc"}, parts)
    with pytest.raises(SerializationError, match=r"older version.*keygen"):
        CKKSPublicKey.from_bytes(legacy)


def test_a_secret_key_cannot_be_paired_with_a_foreign_public_key(
    tmp_path: Path, scheme4096: CKKSScheme, keys4096: KeySet, stranger4096: KeySet
) -> None:
    mixed = CKKSSecretKey(stranger4096.public, keys4096.secret.secret_key)
    with pytest.raises(KeyMismatchError, match="does not belong"):
        CKKSSecretKey.from_bytes(mixed.to_bytes())
    path = hio.save_secret_key(tmp_path / "mixed.henn", mixed, scheme4096)  # ids agree: written
    with pytest.raises(KeyMismatchError, match="does not belong"):
        hio.load_secret_key(path)


def test_the_owner_refuses_a_model_under_a_foreign_key(
    tmp_path: Path,
    key_files: tuple[Path, Path],
    keys4096: KeySet,
    stranger4096: KeySet,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret, public = key_files
    _, stranger_public = hio.save_keys(tmp_path / "stranger", stranger4096)
    model = tmp_path / "m.henn"
    args = ["--scheme", "ckks", "encrypt-model", "--public", str(stranger_public), "--arch", "xor"]
    assert henn([*args, "--out", str(model)]) == 0
    capsys.readouterr()
    assert henn(["decrypt", "--secret", str(secret), "--model", str(model)]) == 1
    err = capsys.readouterr().err
    assert f"encrypted under key {stranger4096.key_id}" in err and keys4096.key_id in err
    predict = ["predict", "--model", str(model), "--public", str(public), "--data", "xor"]
    assert henn([*predict, "--out", str(tmp_path / "p.henn")]) == 1
    assert "someone else's key" in capsys.readouterr().err
    assert not (tmp_path / "p.henn").exists()
    assert henn(["inspect", str(public), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["key_id"] == keys4096.key_id and info["fingerprint_verified"] is True


def _seal_original(obj: Any) -> bytes:
    """SEAL's own serialisation (zstd body), as files made before the compact form hold it."""
    from hennframework_ckks._seal import _temp_path

    with _temp_path() as path:
        obj.save(path)
        return Path(path).read_bytes()


def test_compact_seal_bytes_are_smaller_and_exact(scheme4096: CKKSScheme, keys4096: KeySet) -> None:
    """Keys and ciphertexts: the compact form expands to SEAL's body byte for byte, is smaller
    than SEAL's zstd, and SEAL's own bytes (older files) still load."""
    import zstandard

    from hennframework_ckks._seal import (
        compact_seal_bytes,
        expand_seal_bytes,
        get_context,
        seal_from_bytes,
    )

    relin = keys4096.public.relin_keys
    original = _seal_original(relin)
    compact = compact_seal_bytes(original)
    assert len(compact) < len(original)
    expanded = expand_seal_bytes(compact, "key")
    body = zstandard.ZstdDecompressor().decompressobj().decompress(original[16:])
    assert expanded[16:] == body and expanded[5] == 0  # SEAL's body, uncompressed mode
    assert int.from_bytes(expanded[8:16], "little") == len(expanded)
    context = get_context(keys4096.public.params)
    for data in (compact, original):  # both forms load to the same key
        loaded = seal_from_bytes(sa.RelinKeys, context, data, "relinearisation key")
        assert compact_seal_bytes(_seal_original(loaded)) == compact
    tensor = scheme4096.encrypt_tensor(np.linspace(-1, 1, 12).reshape(3, 4), keys4096.public)
    ct = tensor.ciphertexts[0]
    packed = compact_seal_bytes(_seal_original(ct))
    again = seal_from_bytes(sa.Ciphertext, context, packed, "ciphertext")
    assert compact_seal_bytes(_seal_original(again)) == packed


@pytest.mark.parametrize("damage", ["truncate", "flip", "size", "huge", "bomb"])
def test_damaged_compact_bytes_are_refused(keys4096: KeySet, damage: str) -> None:
    from hennframework_ckks._seal import _COMPACT_MAGIC, compact_seal_bytes, expand_seal_bytes

    compact = bytearray(compact_seal_bytes(_seal_original(keys4096.public.relin_keys)))
    header = len(_COMPACT_MAGIC)
    if damage == "truncate":
        compact = compact[: len(compact) // 2]
    elif damage == "flip":
        compact[len(compact) // 2] ^= 0xFF
    elif damage == "size":  # the header claims a different size than the body has
        size = int.from_bytes(compact[header + 8 : header + 16], "little")
        compact[header + 8 : header + 16] = (size - 64).to_bytes(8, "little")
    elif damage == "huge":  # a claimed size beyond any key: refused before anything expands
        compact[header + 8 : header + 16] = (1 << 40).to_bytes(8, "little")
    else:  # 100 MB of zeros in a few hundred bytes: far more than any real object expands
        import zstandard

        bomb = zstandard.ZstdCompressor().compress(bytes(100_000_000))
        size = (100_000_000 + 16).to_bytes(8, "little")
        compact = compact[: header + 8] + bytearray(size) + bytearray(bomb)
        assert len(compact) < 100_000
    with pytest.raises(SerializationError, match="the key is damaged"):
        expand_seal_bytes(bytes(compact), "key")
