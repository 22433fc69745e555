"""Seeded fuzzing of .henn files: every damaged or forged file loads identically or fails cleanly.

Valid files of every kind are mutated (byte flips, truncation, bytes before or after the zip,
manifest fields swapped for values of other types and re-signed, deep nesting, huge fields,
duplicate, missing, extra and compressed entries, arrays replaced and re-signed) and loaded with
the loader of their kind and with ``henn inspect``. A load must either succeed or raise a project
error (``SerializationError`` for a malformed file); a file that was damaged without recomputing
its checksums must load with exactly the original content if it loads at all. Any other
exception (``TypeError``, ``RecursionError``, ...) fails the test.

The CI run is small and fixed (seed 20240611). A long run, on demand::

    HENN_FUZZ_ITERATIONS=20000 HENN_FUZZ_SEED=1 python -m pytest tests/io/test_fuzz_files.py -s

prints the counts (files, successes, SerializationErrors, other project errors, other exceptions).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import random
import traceback
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hennframework import io as hio
from hennframework.cli import main as henn
from hennframework.data.bundled import XOR_INPUTS, XOR_TARGETS
from hennframework.exceptions import HennError, SerializationError
from hennframework.io import container
from hennframework.io.container import canonical_json, read_bundle
from hennframework.nn import History, Sequential, TrainingRecord
from hennframework.registry import get_backend
from hennframework.schemes.integer_vector import IntegerVectorScheme

SEED = int(os.environ.get("HENN_FUZZ_SEED", "20240611"))
ITERATIONS = int(os.environ.get("HENN_FUZZ_ITERATIONS", "0"))
CI_MUTATIONS_PER_FILE = 24  # x 12 files x 1-2 loads: a few seconds

Loader = Callable[[Path], Any]


# ------------------------------------------------------------------------------------------
# the corpus: one valid file of every kind
# ------------------------------------------------------------------------------------------
@dataclass
class Corpus:
    root: Path
    files: dict[str, tuple[Path, Loader]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheme = IntegerVectorScheme("default", backend=get_backend("numpy"))
        keys = scheme.keygen(seed=31, max_dim=8)
        other = scheme.keygen(seed=32, max_dim=8)
    root = tmp_path_factory.mktemp("fuzz")
    secret_path, public_path = hio.save_keys(root / "keys", keys)
    hio.save_keys(root / "other", other)
    public = hio.load_public_key(public_path)
    loaded_scheme = public.scheme
    x = scheme.encrypt_tensor(np.array([[0.5, -1.0], [2.0, 0.25]]), keys.public)
    y = scheme.encrypt_tensor(np.array([1.5]), keys.public)
    model = Sequential.mlp([3, 2, 1], seed=0, init_scale=2.0).encrypt(keys)
    model.fit(XOR_INPUTS[:2], XOR_TARGETS[:2], epochs=1, learning_rate=0.1)
    plain = Sequential.mlp([3, 2, 1], seed=1)
    history = History()
    history.records.append(TrainingRecord(1, 0, y, None, 0.5, 12.0))
    history.steps = 1
    switch = scheme.make_switch_key(keys, other, dim=1)

    corpus = Corpus(root)

    def add(name: str, path: Path, loader: Loader) -> None:
        corpus.files[name] = (path, loader)

    def load_ct(kind: str) -> Loader:
        return lambda p: hio.load_ciphertexts(p, kind=kind, scheme=loaded_scheme)

    add("public-key", public_path, lambda p: hio.load_public_key(p))
    add("secret-key", secret_path, lambda p: hio.load_secret_key(p, scheme=loaded_scheme))
    for kind in ("ciphertexts", "refresh-request", "refresh-response"):
        path = hio.save_ciphertexts(
            root / f"{kind}.henn", {"x": x, "y": y}, kind=kind, metadata={"request_id": "r1"}
        )
        add(kind, path, load_ct(kind))
    add(
        "encrypted-model",
        hio.save_model(root / "model.henn", model),
        lambda p: hio.load_model(p, scheme=loaded_scheme),
    )
    add("plain-model", hio.save_model(root / "plain.henn", plain), lambda p: hio.load_model(p))
    add(
        "history",
        hio.save_history(root / "history.henn", history),
        lambda p: hio.load_history(p, scheme=loaded_scheme),
    )
    add(
        "switch-key",
        hio.save_switch_key(root / "switch.henn", switch, scheme),
        lambda p: hio.load_switch_key(p, scheme=loaded_scheme),
    )
    add(
        "predictions",
        hio.save_predictions(root / "pred.henn", [x]),
        lambda p: hio.load_predictions(p, scheme=loaded_scheme),
    )
    add(
        "plain-predictions",
        hio.save_predictions(root / "plain-pred.henn", np.array([0.25, 0.75])),
        lambda p: hio.load_predictions(p),
    )
    for path, loader in corpus.files.values():
        loader(path)  # every original loads
    return corpus


# ------------------------------------------------------------------------------------------
# mutations
# ------------------------------------------------------------------------------------------
def _entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _zip(entries: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _resign(manifest: Any, entries: dict[str, bytes]) -> bytes:
    """A zip whose checksums match ``manifest`` as far as it can be read (a careful forger)."""
    body = {name: data for name, data in entries.items() if name != "manifest.json"}
    if isinstance(manifest, dict):
        declared = manifest.get("entries")
        if isinstance(declared, dict):
            for name, spec in declared.items():
                if isinstance(spec, dict) and name in body:
                    spec["sha256"] = hashlib.sha256(body[name]).hexdigest()
                    spec["size"] = len(body[name])
        without = {key: value for key, value in manifest.items() if key != "checksum"}
        manifest["checksum"] = {
            "algorithm": "sha256",
            "value": container._overall_checksum(without, body),
        }
    return _zip({"manifest.json": canonical_json(manifest), **body})


PALETTE: list[Any] = [
    None,
    True,
    0,
    -1,
    2**63,
    10**40,
    1.5,
    -0.0,
    "",
    "²",
    "٣",
    "x" * 300,
    "../../etc/passwd",
    [],
    [1],
    ["a", 2, None],
    {},
    {"a": 1},
    {"name": "default", "values": {}},
    [[[[[]]]]],
    {"": {"": {"": None}}},
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _paths(sub, (*prefix, key))
    elif isinstance(value, list):
        for index, sub in enumerate(value[:8]):
            yield from _paths(sub, (*prefix, index))


def _set(root: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = root
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return root


def _delete(root: Any, path: tuple[Any, ...]) -> Any:
    parent = root
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]
    return root


def mutate(original: bytes, rng: random.Random) -> tuple[str, bytes, bool]:
    """(description, mutated bytes, whether the checksums were recomputed)."""
    entries = _entries(original)
    manifest = json.loads(entries["manifest.json"])
    choice = rng.randrange(16)
    if choice == 0:  # byte flips
        data = bytearray(original)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return "byte flips", bytes(data), False
    if choice == 1:
        cut = rng.randrange(len(original))
        return f"truncated to {cut}", original[:cut], False
    if choice == 2:
        prefix = rng.choice([os.urandom(rng.randint(1, 64)), b"PK\x03\x04", original[:30]])
        return "leading garbage", prefix + original, False
    if choice == 3:
        return "trailing garbage", original + os.urandom(rng.randint(1, 64)), False
    if choice in (4, 5, 6, 7):  # a field of another type, re-signed
        paths = [p for p in _paths(manifest) if p and p[0] != "checksum"]
        path = rng.choice(paths)
        value = json.loads(json.dumps(rng.choice(PALETTE)))
        return f"{path} = {value!r:.40}", _resign(_set(manifest, path, value), entries), True
    if choice == 8:  # a field removed or added, re-signed
        paths = [p for p in _paths(manifest) if p and p[0] != "checksum"]
        path = rng.choice(paths)
        parent = manifest
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and rng.random() < 0.3:
            parent[f"extra{rng.randrange(9)}"] = rng.choice(PALETTE)
            return f"field added at {path[:-1]}", _resign(manifest, entries), True
        if isinstance(parent, dict) and rng.random() < 0.5:  # a key renamed
            key = rng.choice(["²", "٣", "-1", "", "0x10", "1e3", " 1", "1" * 30])
            parent[key] = parent.pop(path[-1])
            return f"{path} renamed {key!r}", _resign(manifest, entries), True
        return f"{path} removed", _resign(_delete(manifest, path), entries), True
    if choice == 9:  # deep nesting inside the manifest text
        depth = rng.choice([65, 1000, 100_000])
        text = entries["manifest.json"].replace(
            b'"metadata":{', b'"metadata":{"deep":' + b"[" * depth + b"]" * depth + b",", 1
        )
        return f"nesting {depth}", _zip({**entries, "manifest.json": text}), False
    if choice == 10:  # huge fields (above the size limit, or the number of values)
        huge = b'"x' + b"x" * (17 << 20) + b'"' if rng.random() < 0.3 else b"[" + b"0," * 1_100_000
        text = entries["manifest.json"].replace(b'"metadata":{', b'"metadata":{"h":' + huge, 1)
        return "huge field", _zip({**entries, "manifest.json": text}), False
    if choice == 11:  # duplicate entry
        name = rng.choice(sorted(entries))
        buffer = io.BytesIO(original)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with zipfile.ZipFile(buffer, "a") as archive:
                archive.writestr(name, entries[name])
        return f"duplicate {name}", buffer.getvalue(), False
    if choice == 12:
        return "compressed", _zip(entries, zipfile.ZIP_DEFLATED), False
    if choice == 13:  # an entry removed, added or renamed, re-signed
        names = [n for n in entries if n != "manifest.json"]
        action = rng.randrange(3)
        if action == 0 and names:
            victim = rng.choice(names)
            del entries[victim]
            manifest["entries"].pop(victim, None)
            return f"removed {victim}", _resign(manifest, entries), True
        buffer = io.BytesIO()
        np.save(buffer, np.zeros(3), allow_pickle=False)
        extra = f"arrays/extra{rng.randrange(9)}.npy"
        entries[extra] = buffer.getvalue()
        manifest["entries"][extra] = {"sha256": "", "size": 0, "dtype": "<f8", "shape": [3]}
        if action == 2 and names:
            victim = rng.choice(names)
            del entries[victim]
            manifest["entries"].pop(victim, None)
            return f"renamed {victim}", _resign(manifest, entries), True
        return f"added {extra}", _resign(manifest, entries), True
    if choice == 14:  # an array replaced by another dtype/shape, manifest updated, re-signed
        arrays = [n for n in entries if n.startswith("arrays/")]
        if not arrays:
            return "no arrays: byte flip", original[:-1] + bytes([original[-1] ^ 1]), False
        name = rng.choice(arrays)
        dtype = rng.choice(["<i8", "<f8", "|u1", "<i4", "|b1"])
        shape = [rng.randrange(0, 4) for _ in range(rng.randrange(0, 3))]
        values = np.asarray(
            rng.choice([np.zeros(shape), np.full(shape, 2.0**62), np.full(shape, -1.0)])
        )
        with np.errstate(all="ignore"):
            array = values.astype(np.dtype(dtype))
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        entries[name] = buffer.getvalue()
        manifest["entries"][name].update({"dtype": dtype, "shape": shape})
        return f"{name} -> {dtype} {shape}", _resign(manifest, entries), True
    # metadata subtree replaced by the JSON of another value, re-signed
    paths = [p for p in _paths(manifest.get("metadata", {})) if p]
    if not paths:
        manifest["metadata"] = {"x": rng.choice(PALETTE)}
        return "metadata replaced", _resign(manifest, entries), True
    path = ("metadata", *rng.choice(paths))
    value = rng.choice([[], {}, "", 0, None, [[]], {"tensors": []}])
    return f"{path} = {value!r}", _resign(_set(manifest, path, value), entries), True


# ------------------------------------------------------------------------------------------
# the runs
# ------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    files: int = 0
    loaded: int = 0
    refused: int = 0
    project: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def _same_content(path: Path, original: Path) -> bool:
    a, b = read_bundle(path), read_bundle(original)
    return (
        a.manifest == b.manifest
        and a.blobs == b.blobs
        and a.arrays.keys() == b.arrays.keys()
        and all(np.array_equal(a.arrays[n], b.arrays[n]) for n in a.arrays)
    )


def _load(outcome: Outcome, what: str, action: Callable[[], Any]) -> str:
    """ "loaded", "refused" (SerializationError), "project" (another project error) or "failed"."""
    try:
        action()
    except SerializationError:
        outcome.refused += 1
        return "refused"
    except HennError as exc:  # e.g. KeyMismatchError: a forged parameter set that is not ours
        outcome.project[type(exc).__name__] += 1
        return "project"
    except Exception:
        outcome.failures.append(f"{what}\n{traceback.format_exc(limit=-4)}")
        return "failed"
    outcome.loaded += 1
    return "loaded"


def run_fuzz(corpus: Corpus, per_file: int, seed: int, inspect_every: int = 4) -> Outcome:
    outcome = Outcome()
    target = corpus.root / "mutated.henn"
    for number, (name, (path, loader)) in enumerate(sorted(corpus.files.items())):
        rng = random.Random(seed * 1000 + number)
        original = path.read_bytes()
        for index in range(per_file):
            description, data, resigned = mutate(original, rng)
            target.write_bytes(data)
            outcome.files += 1
            what = f"{name}: {description}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = _load(outcome, what, functools.partial(loader, target))
            if result == "loaded" and not resigned and not _same_content(target, path):
                outcome.failures.append(f"{what}: loaded with different content")
            if index % inspect_every == 0:
                with contextlib.redirect_stdout(io.StringIO()):
                    stderr = io.StringIO()
                    with contextlib.redirect_stderr(stderr):
                        status = henn(["inspect", str(target), "--json"])
                if "internal error" in stderr.getvalue() or status not in (0, 1):
                    outcome.failures.append(f"{what}: henn inspect: {stderr.getvalue()}")
                elif status == 0 and result in ("refused", "failed"):
                    outcome.failures.append(f"{what}: henn inspect accepts what the loader refuses")
    return outcome


def test_fuzzed_files_load_identically_or_fail_cleanly(corpus: Corpus) -> None:
    outcome = run_fuzz(corpus, CI_MUTATIONS_PER_FILE, SEED)
    assert not outcome.failures, "\n\n".join(outcome.failures[:5])
    assert outcome.files == CI_MUTATIONS_PER_FILE * len(corpus.files)
    assert outcome.refused > outcome.files // 2  # most mutations are caught by the format
    assert outcome.loaded > 0  # some are harmless (zip bookkeeping) or plausible forgeries


@pytest.fixture(scope="module")
def ckks_corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """CKKS files (the plugin's codec behind the same loaders), when the plugin is installed."""
    ckks = pytest.importorskip("hennframework_ckks")
    scheme = ckks.CKKSScheme("n4096")
    keys = scheme.keygen(rotations="none")
    root = tmp_path_factory.mktemp("fuzz-ckks")
    secret_path, public_path = hio.save_keys(root / "keys", keys)
    public = hio.load_public_key(public_path)
    x = scheme.encrypt_tensor(np.array([0.5, -0.25, 1.0]), keys.public)

    def under_the_key(load: Loader) -> Loader:
        # CKKS tensors bind to the key last loaded under their id (held weakly by the codec):
        # make it the corpus's key again after a mutated key file was loaded and dropped
        def loader(p: Path) -> Any:
            ckks.CODEC.remember(public.key)
            return load(p)

        return loader

    corpus = Corpus(root)
    corpus.files["ckks-public-key"] = (public_path, lambda p: hio.load_public_key(p))
    corpus.files["ckks-secret-key"] = (secret_path, lambda p: hio.load_secret_key(p))
    corpus.files["ckks-ciphertexts"] = (
        hio.save_ciphertexts(root / "ct.henn", {"x": x}),
        under_the_key(lambda p: hio.load_ciphertexts(p, scheme=public.scheme)),
    )
    model = Sequential.mlp([2, 1], seed=0).encrypt(keys)
    corpus.files["ckks-model"] = (
        hio.save_model(root / "model.henn", model),
        under_the_key(lambda p: hio.load_model(p, scheme=public.scheme)),
    )
    for path, loader in corpus.files.values():
        loader(path)
    return corpus


def test_fuzzed_ckks_files_load_identically_or_fail_cleanly(ckks_corpus: Corpus) -> None:
    outcome = run_fuzz(ckks_corpus, 10, SEED, inspect_every=5)
    assert not outcome.failures, "\n\n".join(outcome.failures[:5])
    assert outcome.refused > outcome.files // 2


# ------------------------------------------------------------------------------------------
# the sites found by fuzzing, one regression test each
# ------------------------------------------------------------------------------------------
def _forge(path: Path, target: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    entries = _entries(path.read_bytes())
    manifest = json.loads(entries["manifest.json"])
    edit(manifest)
    target.write_bytes(_resign(manifest, entries))
    os.chmod(target, 0o600)  # a secret key's file, as the owner keeps it
    return target


def _public_key_meta(manifest: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = manifest["metadata"]["public_key"]
    return meta


SITES: list[tuple[str, str, Callable[[dict[str, Any]], None]]] = [
    ("public-key", "kind as a list", lambda m: m.__setitem__("kind", ["public-key"])),
    ("public-key", "metadata a list", lambda m: m.__setitem__("metadata", [1])),
    (
        "public-key",
        "key metadata a list",
        lambda m: m["metadata"].__setitem__("public_key", ["x"]),
    ),
    (
        "public-key",
        "'²' as a vector length",
        lambda m: _public_key_meta(m)["encryption"].__setitem__(
            "²", _public_key_meta(m)["encryption"].popitem()[1]
        ),
    ),
    (
        "public-key",
        "switching-key kind a list",
        lambda m: next(iter(_public_key_meta(m)["encryption"].values())).__setitem__(
            "kind", ["encryption"]
        ),
    ),
    (
        "ciphertexts",
        "tensor metadata a string",
        lambda m: m["metadata"].__setitem__("tensors", "x"),
    ),
    (
        "ciphertexts",
        "a tensor entry a number",
        lambda m: m["metadata"]["tensors"].__setitem__("tensors", [7]),
    ),
    ("secret-key", "secret metadata a list", lambda m: m["metadata"].__setitem__("secret_key", [])),
    (
        "encrypted-model",
        "a layer a number",
        lambda m: m["metadata"]["architecture"].__setitem__("layers", [1]),
    ),
    ("history", "records a dict", lambda m: m["metadata"]["history"].__setitem__("records", {})),
    ("plain-model", "parameter_set a list", lambda m: m.__setitem__("parameter_set", [])),
]


@pytest.mark.parametrize(("kind", "what", "edit"), SITES, ids=[s[1] for s in SITES])
def test_malformed_fields_give_serialization_errors(
    corpus: Corpus, kind: str, what: str, edit: Callable[[dict[str, Any]], None]
) -> None:
    path, loader = corpus.files[kind]
    forged = _forge(path, corpus.root / "forged.henn", edit)
    with pytest.raises(SerializationError, match=r"forged\.henn"):
        loader(forged)
    with contextlib.redirect_stdout(io.StringIO()):
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            assert henn(["inspect", str(forged)]) == 1
    last = stderr.getvalue().strip().splitlines()[-1]  # after any warnings
    assert last.startswith("henn: error: ") and "internal error" not in stderr.getvalue()


def _long_run(corpus: Corpus, label: str) -> None:
    per_file = max(1, ITERATIONS // len(corpus.files))
    outcome = run_fuzz(corpus, per_file, SEED, inspect_every=16)
    print(
        f"\n{label} fuzz, seed {SEED}: {outcome.files} files, {outcome.loaded} loaded, "
        f"{outcome.refused} SerializationError, other project errors {dict(outcome.project)}, "
        f"{len(outcome.failures)} other exceptions or wrong loads"
    )
    assert not outcome.failures, "\n\n".join(outcome.failures[:5])


@pytest.mark.skipif(not ITERATIONS, reason="long fuzz run: set HENN_FUZZ_ITERATIONS")
def test_long_fuzz_run(corpus: Corpus) -> None:
    _long_run(corpus, "integer-vector")


@pytest.mark.skipif(not ITERATIONS, reason="long fuzz run: set HENN_FUZZ_ITERATIONS")
def test_long_fuzz_run_ckks(ckks_corpus: Corpus) -> None:
    _long_run(ckks_corpus, "CKKS")
