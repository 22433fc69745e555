"""Keys for one model: only the rotation keys its operations use, stored in SEAL's seeded form.

A public key with rotation keys for every power of two is 396 MB at n16384; a model whose
packed tensors occupy few slot bits rotates by a few small steps only (the 3-4-1 XOR network: 1,
2, 4 and 8). ``henn keygen --for ARCH`` tries the model under a throwaway key that records its
rotations and makes keys for the powers of two up to the widest, or for the few of them that
make its rotations with the fewest key switches (``--rotation-keys``, 4 by default). A rotation
is then the shortest sum of the key steps; one that no sum makes is refused with a message
naming the step, never computed wrong.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hennframework.cli import main as henn
from hennframework.exceptions import InputError
from hennframework.nn import Batch, Sequential
from hennframework.scheme import KeySet

from hennframework_ckks import CKKSScheme
from hennframework_ckks._seal import rotation_distances, seal_to_bytes
from hennframework_ckks.codec import CODEC
from hennframework_ckks.keys import (
    CKKSPublicKey,
    choose_rotation_keys,
    power_of_two_rotations,
    powers_of_two_through,
)

X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
Y = np.array([[0], [1], [1], [0]], dtype=float)


def _network() -> Sequential:
    return Sequential.mlp([3, 1], activation="taylor3", seed=0, init_scale=1.0)


def test_powers_of_two_through_the_widest_step() -> None:
    assert powers_of_two_through([]) == frozenset()
    assert powers_of_two_through([1]) == {1}
    assert powers_of_two_through([8, 2]) == {1, 2, 4, 8}
    assert powers_of_two_through([5]) == {1, 2, 4}


def test_keys_made_for_a_model_train_it_as_the_full_keys_do(scheme8192: CKKSScheme) -> None:
    steps = CODEC.model_rotation_steps(scheme8192, _network(), [Batch(X, Y)])
    # the 3 x 1 weights sit in slot bits 0-1: rotations by 1 and 2 (as the packing is today)
    assert steps == powers_of_two_through(steps) and 0 < len(steps) < 12
    keys = scheme8192.keygen(rotations=steps)
    assert keys.public.rotation_steps == steps
    _trains_as_plaintext(scheme8192, keys)


def _trains_as_plaintext(scheme: CKKSScheme, keys: KeySet) -> None:
    model = _network().encrypt(keys, scheme)
    model.train_step(Batch(X, Y), 0.3)
    plain = _network()
    plain.train_step(Batch(X, Y), 0.3)
    got = model.decrypt(keys.secret)
    for (_, _, a), (_, _, b) in zip(got.parameters(), plain.parameters(), strict=True):
        np.testing.assert_allclose(a, b, atol=2e-3)


def test_fewer_keys_make_the_other_rotations_as_sums(scheme8192: CKKSScheme) -> None:
    """Keys for step 1 only: the rotations by 2 become two rotations by 1, same results."""
    steps = CODEC.model_rotation_steps(scheme8192, _network(), [Batch(X, Y)])
    assert 2 in steps
    assert CODEC.model_rotation_steps(scheme8192, _network(), [Batch(X, Y)], most=1) == {1}
    _trains_as_plaintext(scheme8192, scheme8192.keygen(rotations=[1]))


def test_a_rotation_no_key_makes_is_refused_by_name(scheme8192: CKKSScheme) -> None:
    """Keys for even steps only cannot make a rotation by 1: refused, nothing changed."""
    keys = scheme8192.keygen(rotations=[2, 4])
    model = _network().encrypt(keys, scheme8192)
    before = [w.ciphertexts for w in model.weights()]
    with pytest.raises(InputError, match=r"no rotation key for step\(s\) \[1\].*no combination"):
        model.train_step(Batch(X, Y), 0.3)
    assert [w.ciphertexts for w in model.weights()] == before  # no weight changed


def test_choose_rotation_keys_minimises_key_switches() -> None:
    # a linear map's baby and giant steps dominate; sums over slot bits use the rest
    calls = {8: 47, 128: 47, 1: 2, 2: 2, 4: 2, 16: 2, 1024: 2, 2048: 1, 4096: 1}
    assert choose_rotation_keys(8192, calls, None) == powers_of_two_through([4096])
    chosen = choose_rotation_keys(8192, calls, 4)
    assert len(chosen) == 4 and {1, 8, 128} <= chosen
    distance = rotation_distances(8192, chosen)
    assert all(distance[step] > 0 for step in range(1, 8192))  # 1 is in: every rotation made
    for other in ({1, 2, 4, 8}, {1, 8, 64, 4096}):
        cost = rotation_distances(8192, frozenset(other))
        assert sum(n * distance[s] for s, n in calls.items()) <= sum(
            n * cost[s] for s, n in calls.items()
        )
    assert choose_rotation_keys(8192, {3: 5}, 1) == {1}
    with pytest.raises(InputError, match="at least one rotation key"):
        choose_rotation_keys(8192, calls, 0)


def test_the_greedy_count_is_the_shortest_sum_of_power_of_two_keys() -> None:
    """Choosing keys counts rotations greedily; for power-of-two keys with 1 among them that is
    the breadth-first search's distance, for every rotation (and it is far cheaper than the
    search, which choosing keys ran for every subset of the candidate steps)."""
    rng = np.random.default_rng(6)
    for slots in (8, 256, 2048):
        powers = [1 << bit for bit in range(1, slots.bit_length() - 1)]
        for _ in range(12):
            size = int(rng.integers(0, min(6, len(powers)) + 1))
            chosen = sorted(int(p) for p in rng.choice(powers, size, replace=False))
            distance = rotation_distances(slots, frozenset({1, *chosen}))
            descending = (*reversed(chosen), 1)
            assert [power_of_two_rotations(step, descending) for step in range(slots)] == distance


def test_key_switching_keys_are_stored_seeded(keys8192: KeySet) -> None:
    """Relinearisation and rotation keys take half the bytes of SEAL's full form, and a key read
    back from them has the same id and rotates correctly."""
    public = keys8192.public
    sizes = public.size_bytes()
    assert sizes["relin_keys"] < 0.55 * len(seal_to_bytes(public.relin_keys))
    assert sizes["galois_keys"] < 0.55 * len(seal_to_bytes(public.galois_keys))
    loaded = CKKSPublicKey.from_bytes(public.to_bytes())
    assert loaded.key_id == public.key_id and loaded.to_bytes() == public.to_bytes()
    scheme = keys8192.scheme
    values = np.arange(24.0).reshape(3, 8) / 10
    total = scheme.encrypt_tensor(values, loaded).sum(axis=1)  # rotations by 1, 2, 4
    decrypted = scheme.decrypt_tensor(total, keys8192.secret)
    np.testing.assert_allclose(decrypted, values.sum(axis=1), atol=1e-3)
    # the full form that earlier versions wrote still loads, under its own fingerprint
    full = CKKSPublicKey(
        public.params,
        public.public_key,
        public.relin_keys,
        public.galois_keys,
        public.rotation_steps,
    )
    assert full.size_bytes()["galois_keys"] > 1.8 * sizes["galois_keys"]
    assert CKKSPublicKey.from_bytes(full.to_bytes()).key_id == full.key_id != public.key_id


def test_henn_keygen_for_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--scheme", "ckks", "keygen", "--params", "n8192", "--json"]
    assert henn([*base, "--out", str(tmp_path / "k"), "--for", "mlp:3,1", "--batch-size", "4"]) == 0
    summary = json.loads(capsys.readouterr().out)
    steps = summary["rotations"]  # 1 and 2 as the packing is today; n8192 has 12 powers of two
    assert steps == sorted(powers_of_two_through(steps)) and 0 < len(steps) < 12
    assert summary["batch_size"] == 4
    assert summary["made_for"] == "sequential 3-1 (taylor3)"
    public = tmp_path / "k" / "public.henn"
    assert summary["public_bytes"] == public.stat().st_size
    assert henn(["inspect", str(public), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["rotation_steps"] == steps and info["fingerprint_verified"]
    parts = ("public_key_bytes", "relin_key_bytes", "rotation_key_bytes")
    assert info["public_material_bytes"] == sum(info[p] for p in parts) < public.stat().st_size
    listed = f"rotation keys for steps {', '.join(map(str, steps))} ("
    assert any(item.startswith(listed) for item in info["fingerprint_covers"])
    few = ["--out", str(tmp_path / "one"), "--for", "mlp:3,1", "--batch-size", "4"]
    assert henn([*base, *few, "--rotation-keys", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["rotations"] == [1]


def test_henn_keygen_for_a_model_refuses_what_cannot_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--scheme", "ckks", "keygen", "--params", "n8192"]
    # the XOR network's forward pass needs more than n8192's 5 levels
    assert henn([*base, "--out", str(tmp_path / "a"), "--for", "xor"]) != 0
    err = capsys.readouterr().err
    assert "to find the rotation keys it needs" in err  # said before the trial run starts
    assert "needs more levels than the parameter set 'n8192'" in err
    assert henn([*base, "--out", str(tmp_path / "b"), "--for", "mlp:3,1"]) != 0
    assert "--for mlp:3,1 needs --batch-size" in capsys.readouterr().err
    assert henn([*base, "--out", str(tmp_path / "c"), "--batch-size", "4"]) != 0
    assert "add --for" in capsys.readouterr().err
    assert henn([*base, "--out", str(tmp_path / "c"), "--rotation-keys", "4"]) != 0
    assert "--rotation-keys describes the model of --for" in capsys.readouterr().err
    assert henn([*base, "--out", str(tmp_path / "c"), "--for", "xor", "--rotation-keys", "0"]) != 0
    assert "--rotation-keys" in capsys.readouterr().err
    assert henn([*base, "--out", str(tmp_path / "d"), "--for", "sentiment"]) != 0
    assert "--vocabulary-size" in capsys.readouterr().err
    plain = ["keygen", "--out", str(tmp_path / "e"), "--for", "xor"]  # integer-vector scheme
    assert henn(plain) != 0
    assert "same keys for every model" in capsys.readouterr().err
    assert not any((tmp_path / name).exists() for name in "abcde")
