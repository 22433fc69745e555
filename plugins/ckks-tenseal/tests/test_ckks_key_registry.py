"""The codec's key registry: tensors find their key however often it is loaded, and it owns none.

A review found that the registry kept one weak entry per key id: loading the same key a second
time replaced the entry, and once that second copy was dropped (``henn inspect``, a fingerprint
check) tensors of the first copy could no longer be read.
"""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import numpy as np
import pytest
from hennframework import io as hio
from hennframework.exceptions import KeyMismatchError
from hennframework.io.codecs import EntrySink, EntrySource
from hennframework.nn import Sequential
from hennframework.scheme import KeySet
from hennframework.workflow import owner

from hennframework_ckks import CKKSScheme
from hennframework_ckks.codec import CKKSCodec
from hennframework_ckks.keys import CKKSPublicKey


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, keys4096: KeySet) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ckks-registry")
    secret, public = hio.save_keys(folder, keys4096)
    model = Sequential.mlp([3, 2, 1], activation="taylor3", seed=1).encrypt(keys4096)
    return {
        "secret": secret,
        "public": public,
        "model": hio.save_model(folder / "model.henn", model),
        "ciphertexts": hio.save_ciphertexts(
            folder / "ct.henn",
            {"x": keys4096.scheme.encrypt_tensor(np.arange(3.0), keys4096.public)},
        ),
    }


def test_a_second_load_of_the_same_key_does_not_orphan_the_first(
    files: dict[str, Path], scheme4096: CKKSScheme, keys4096: KeySet
) -> None:
    first = hio.load_public_key(files["public"])
    second = hio.load_public_key(files["public"])
    assert second.key is not first.key and second.key_id == first.key_id
    del second
    owner.describe_file(files["public"])  # inspect loads (and drops) the key once more
    gc.collect()
    bundle = hio.load_model(files["model"], scheme=first.scheme, expect_key=first)
    assert all(w.key is first.key for w in bundle.model.weights())  # the only live copy
    tensors, _ = hio.load_ciphertexts(files["ciphertexts"], scheme=first.scheme)
    np.testing.assert_allclose(
        scheme4096.decrypt_tensor(tensors["x"], keys4096.secret),
        np.arange(3.0),
        atol=1e-3,
    )


@pytest.mark.parametrize("dropped", ["first", "second"])
def test_every_live_object_of_a_key_keeps_it_findable(keys4096: KeySet, dropped: str) -> None:
    """Two objects of one key (parsed twice): dropping either leaves the other findable."""
    data = keys4096.public.to_bytes()
    codec = CKKSCodec()
    first, second = CKKSPublicKey.from_bytes(data), CKKSPublicKey.from_bytes(data)
    codec.remember(first)
    codec.remember(second)
    assert codec.lookup(keys4096.key_id) is second  # the newest registration is found first
    keep = first if dropped == "second" else second
    if dropped == "first":
        del first
    else:
        del second
    gc.collect()
    assert codec.lookup(keys4096.key_id) is keep
    tensor = keys4096.scheme.encrypt_tensor(np.ones(2), keep)
    sink = EntrySink()
    meta = CKKSCodec().write_tensors([tensor], sink, "ct.")
    del tensor
    loaded = codec.read_tensors(meta, EntrySource(sink.arrays, sink.blobs, "f"), "ct.", None)
    assert loaded[0].key is keep


def test_the_registry_keeps_no_key_alive(keys4096: KeySet) -> None:
    codec = CKKSCodec()
    fresh = CKKSPublicKey.from_bytes(keys4096.public.to_bytes())
    codec.remember(fresh)
    sink = EntrySink()
    meta = CKKSCodec().write_tensors(
        [keys4096.scheme.encrypt_tensor(np.ones(2), keys4096.public)], sink, "ct."
    )
    ref = weakref.ref(fresh)
    del fresh
    gc.collect()
    assert ref() is None and codec.lookup(keys4096.key_id) is None
    with pytest.raises(KeyMismatchError, match="Load the key first"):
        codec.read_tensors(meta, EntrySource(sink.arrays, sink.blobs, "f"), "ct.", None)


def test_a_changed_object_in_memory_is_never_handed_out_by_a_load(
    files: dict[str, Path], keys4096: KeySet
) -> None:
    """Loads return what they parsed and verified, not a registered object changed since."""
    held = hio.load_public_key(files["public"])
    held.key.key_id = "ckks-" + "0" * 32  # its holder relabels it in memory
    again = hio.load_public_key(files["public"])
    secret = hio.load_secret_key(files["secret"])
    assert again.key is not held.key and again.key_id == keys4096.key_id
    assert secret.key.public is not held.key and secret.key_id == keys4096.key_id
    bundle = hio.load_model(files["model"], scheme=secret.scheme, expect_key=secret)
    plain = bundle.model.decrypt(secret.key)
    assert np.isfinite(np.concatenate([np.ravel(w) for w in plain.weights()])).all()


def test_tensors_know_their_scheme_from_their_own_class(keys4096: KeySet) -> None:
    """``tensor.scheme`` is defined where the tensor classes are, not patched in by the codec."""
    from hennframework_ckks.codec import scheme_for
    from hennframework_ckks.tensor import CKKSTensor, LazyLinear

    assert "scheme" in vars(CKKSTensor) and "scheme" in vars(LazyLinear)
    tensor = keys4096.scheme.encrypt_tensor(np.ones((3, 2)), keys4096.public)
    assert tensor.scheme is scheme_for(keys4096.public.params)
    assert tensor[np.array([0, 2])].scheme is tensor.scheme
