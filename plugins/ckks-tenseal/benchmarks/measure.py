"""Measurements quoted in docs/plugins-ckks.md: sizes, operation timings, TenSEAL comparisons.

Run: ``python plugins/ckks-tenseal/benchmarks/measure.py [--quick]`` (single process; SEAL is
single-threaded). Medians of ``repeat`` runs after a warm-up, in milliseconds. Not a test: numbers
depend on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from hennframework_ckks import CKKSScheme, OwnerRefresher, tensors_to_bytes


def timed(function: Callable[[], Any], repeat: int = 5) -> float:
    function()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return 1000 * statistics.median(samples)


def sizes_and_ops(name: str, repeat: int) -> None:
    scheme = CKKSScheme(name)
    started = time.perf_counter()
    keys = scheme.keygen()
    keygen = time.perf_counter() - started
    sizes = keys.public.size_bytes()
    rng = np.random.default_rng(0)
    w = scheme.encrypt_tensor(rng.uniform(-1, 1, (3, 4)), keys.public)
    fresh_bytes = len(tensors_to_bytes([w]))
    low = w
    while low.levels_left > 0:
        low = low * 1.0001
    low_bytes = len(tensors_to_bytes([low]))
    print(f"\n== {name}: {scheme.params.describe()}")
    print(
        f"keygen {keygen:.2f} s; public key {sizes['public_key'] / 1e6:.2f} MB, relinearisation key "
        f"{sizes['relin_keys'] / 1e6:.1f} MB, rotation keys ({len(keys.public.rotation_steps)} steps) "
        f"{sizes['galois_keys'] / 1e6:.1f} MB (serialised, compressed)"
    )
    print(
        f"ciphertext: {fresh_bytes / 1e6:.2f} MB fresh (top level), {low_bytes / 1e6:.2f} MB at level 0"
    )
    x = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
    v = scheme.encrypt_tensor(rng.uniform(-1, 1, 4), keys.public)

    def settled(tensor: Any) -> list[Any]:  # relinearise + rescale pending products
        return [tensor.context.settle(ct, tensor.key.relin_keys) for ct in tensor.ciphertexts]

    rows = [
        (
            "encrypt 3x4 (1 ciphertext)",
            lambda: scheme.encrypt_tensor(rng.uniform(-1, 1, (3, 4)), keys.public),
        ),
        ("decrypt 3x4", lambda: scheme.decrypt_tensor(w, keys.secret)),
        ("ct + ct", lambda: w + w),
        ("ct * scalar (rescaled)", lambda: w * 0.3),
        ("ct * ct (relinearised + rescaled)", lambda: settled(w * w)),
        ("sum of 4 slots (2 rotations)", lambda: v.sum()),
        ("X (4x3) @ W (3x4): plaintext @ encrypted", lambda: (x @ w).materialize()),
        ("owner refresh of W (decrypt + encrypt)", lambda: scheme.refresh(w * 0.5, keys)),
    ]
    if scheme.params.levels >= 2:
        rows.append(("polyval degree 3 (taylor3)", lambda: w.polyval([0.5, 0.25, 0.0, -1 / 48])))
    for label, function in rows:
        print(f"  {label:44s} {timed(function, repeat):8.2f} ms")


def sentiment_layer(name: str, repeat: int) -> None:
    scheme = CKKSScheme(name)
    keys = scheme.keygen()
    rng = np.random.default_rng(1)
    w = scheme.encrypt_tensor(rng.normal(0, 0.1, (2000, 8)), keys.public)
    words = [np.unique(rng.integers(0, 2000, size=20)) for _ in range(32)]
    indices = np.concatenate(words)
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in words])])
    owner = np.repeat(np.arange(32), np.diff(offsets))
    delta = scheme.encrypt_tensor(rng.normal(0, 0.1, (32, 8)), keys.public)
    refresher = OwnerRefresher(scheme, keys)
    print(
        f"\n== sentiment first layer, {name}: W 2000 x 8 in {w.ciphertext_count} ciphertexts, batch of 32 reviews"
    )
    forward = timed(lambda: w[indices].segment_sum(offsets).materialize(), repeat)
    scatter = timed(lambda: w.scatter_add(indices, delta[owner].multiply_constant(-0.1)), repeat)
    refresh = timed(lambda: refresher([w]), repeat)
    print(f"  hidden = sum of word rows (32 reviews)       {forward:8.1f} ms")
    print(f"  W.scatter_add(words, -lr * delta[owner])     {scatter:8.1f} ms")
    print(f"  owner refresh of W (2000 x 8)                {refresh:8.1f} ms")


def tenseal_comparison(repeat: int) -> None:
    """TenSEAL's own tensors at the same ring and primes as n8192 (scale 2^25)."""
    import tenseal as ts

    bits = [33, 25, 25, 25, 25, 25, 60]
    context = ts.context(ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=bits)
    context.global_scale = 2**25
    started = time.perf_counter()
    context.generate_galois_keys()
    galois = time.perf_counter() - started
    rng = np.random.default_rng(2)
    w1, x = (
        rng.uniform(-1, 1, (3, 4)),
        np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], float),
    )
    print(f"\n== TenSEAL CKKSTensor, N = 8192, primes {bits} (all rotation keys: {galois:.2f} s)")
    enc_w1 = ts.ckks_tensor(context, w1)  # one ciphertext per element: 12
    print(f"  W1 3x4 unbatched: {len(enc_w1.ciphertext())} ciphertexts")
    t_mm = timed(lambda: enc_w1.transpose().mm(x.T.tolist()), repeat)
    print(f"  X @ W1 (as (W1^T X^T)^T, plaintext X)       {t_mm:8.2f} ms")
    a1 = enc_w1.transpose().mm(x.T.tolist()).transpose()  # 4 x 4 (16 ciphertexts)
    w2 = ts.ckks_tensor(context, rng.uniform(-1, 1, (4, 1)))
    t_mm2 = timed(lambda: a1.mm(w2), repeat)
    print(f"  A1 (4x4) @ W2 (4x1), both encrypted          {t_mm2:8.2f} ms")
    t_poly = timed(lambda: a1.polyval([0.5, 0.25, 0.0, -1 / 48]), repeat)
    print(f"  polyval degree 3 on 4x4 (16 ciphertexts)      {t_poly:8.2f} ms")
    # CKKSTensor(batch=True) packs axis 0 in slots, but multiplying by a (2000, 8) plaintext mask
    # broadcasts over the non-batch axes (16000 ciphertexts; the sum ran out of memory here), so
    # the per-review baseline is TenSEAL's CKKSVector: one vector per column, dot with the review.
    columns = [ts.ckks_vector(context, rng.normal(0, 0.1, 2000).tolist()) for _ in range(8)]
    review = np.zeros(2000)
    review[rng.integers(0, 2000, size=20)] = 1.0
    mask = review.tolist()
    t_review = timed(lambda: [c.dot(mask) for c in columns], max(1, repeat // 2))
    print(f"  W 2000x8 as 8 CKKSVectors: one review's hidden layer (8 dots) {t_review:8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repeats, skip n16384 extras")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    for name in ("n4096", "n8192", "n16384"):
        sizes_and_ops(name, repeat)
    for name in ("n8192", "n16384"):
        sentiment_layer(name, repeat)
    tenseal_comparison(repeat)


if __name__ == "__main__":
    main()
