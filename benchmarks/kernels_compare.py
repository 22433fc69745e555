"""The integer-vector scheme with its compiled kernels and without, interleaved in one process.

    python benchmarks/kernels_compare.py            # scheme operations and a sentiment step
    python benchmarks/kernels_compare.py --quick    # fewer sizes

For each case the kernels' time and the NumPy paths' time (``native.disabled()``) are taken
one after the other, best of several repeats, so the ratio compares like with like on a noisy
machine; the peak of temporary memory (tracemalloc) is given for both. The kernels' results
are the NumPy paths' to the bit (the test suite checks that); this measures only their cost.
Set ``OPENBLAS_NUM_THREADS=1`` for figures comparable with ``tox -e bench``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import timeit
import tracemalloc
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

from benchutil import make_scheme, rt_polarity_dir

from hennframework.schemes.integer_vector import native


def best_time(function: Callable[[], Any], repeat: int = 5) -> float:
    """Seconds per call, the best of ``repeat`` rounds of enough calls for about 50 ms."""
    function()
    start = time.perf_counter()
    function()
    once = max(time.perf_counter() - start, 1e-7)
    number = max(1, int(0.05 / once))
    return min(timeit.repeat(function, number=number, repeat=repeat)) / number


def peak_bytes(function: Callable[[], Any]) -> int:
    function()
    tracemalloc.start()
    function()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def both(function: Callable[[], Any]) -> tuple[float, float, int, int]:
    """(kernels' seconds, NumPy's seconds, kernels' peak bytes, NumPy's peak bytes)."""
    fast, fast_peak = best_time(function), peak_bytes(function)
    with native.disabled():
        slow, slow_peak = best_time(function), peak_bytes(function)
    return fast, slow, fast_peak, slow_peak


def report(label: str, timings: tuple[float, float, int, int], items: int = 1) -> None:
    fast, slow, fast_peak, slow_peak = timings
    print(
        f"{label:42s} {fast / items * 1e6:10.2f} {slow / items * 1e6:10.2f} {slow / fast:7.2f}x"
        f" {fast_peak / 1024:10.0f} {slow_peak / 1024:10.0f}",
        flush=True,
    )


def scheme_cases(sizes: tuple[int, ...], batches: tuple[int, ...]) -> None:
    for params in ("default", "vhe"):
        scheme = make_scheme(params)
        for m in sizes:
            keys = scheme.keygen(seed=1, dims=[m], products=[m])
            other = scheme.keygen(seed=2, dims=[m])
            scheme.add_dot_key(keys, m)
            switch = scheme.make_switch_key(keys, other, dim=m)
            for batch in batches:
                for name, function in operations(scheme, keys, switch, m, batch).items():
                    report(f"{params} {name}, m = {m}, batch {batch}", both(function), batch)


def operations(
    scheme: Any, keys: Any, switch: Any, m: int, batch: int
) -> dict[str, Callable[[], Any]]:
    """The timed calls on a batch of m-vectors (integer messages below 100)."""
    rng = np.random.default_rng(m + batch)
    x = rng.integers(-100, 100, (batch, m))
    y = rng.integers(-100, 100, (batch, m))
    cx = scheme.encrypt(x, keys.public, dim=m)
    cy = scheme.encrypt(y, keys.public, dim=m)
    return {
        "encrypt": lambda: scheme.encrypt(x, keys.public, dim=m),
        "decrypt": lambda: scheme.decrypt(cx, keys),
        "key switch": lambda: scheme.switch_key(cx, switch),
        "slotwise product": lambda: scheme.multiply(cx, cy),
        "inner product": lambda: scheme.dot(cx, cy),
    }


def sentiment_case(batch_size: int) -> None:
    from hennframework.data import build_vocabulary, interleave, load_reviews
    from hennframework.data.loaders import train_test_split_last
    from hennframework.nn import BagOfWords, OwnerRefresher, Sequential, make_batches

    folder = rt_polarity_dir()
    if folder is None:
        print("sentiment: rt-polarity not found (../shared/data/rt-polarity or HENN_BENCH_DATA)")
        return
    train, _ = train_test_split_last(interleave(load_reviews(folder)), 1000)
    vocabulary = build_vocabulary(train.reviews, train.labels, 10, 0.1)
    part = vocabulary.encode_many(train.reviews, train.labels).slice(0, 2000)
    batches = make_batches(BagOfWords(part.indices, part.offsets), part.labels, batch_size)
    scheme = make_scheme("default")
    keys = scheme.keygen(seed=0)
    refresh = OwnerRefresher(scheme, keys)
    encrypted = Sequential.bag_of_words(len(vocabulary), 8, seed=0).encrypt(keys)
    initial = encrypted.weights()

    def epoch() -> None:
        encrypted.set_weights(initial)
        encrypted.fit(batches, learning_rate=0.1, refresh=refresh)

    def plain_epoch() -> None:
        Sequential.bag_of_words(len(vocabulary), 8, seed=0).fit(batches, learning_rate=0.1)

    timings = both(epoch)
    plain = best_time(plain_epoch)
    report(f"sentiment epoch (2000 reviews), batch {batch_size}", timings, 2000)
    print(
        f"  per review: plain {plain / 2000 * 1e6:.2f} us; encrypted/plain "
        f"{timings[0] / plain:.1f}x with the kernels, {timings[1] / plain:.1f}x without"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="m = 4 and 16, batches 1 and 256")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if not native.available():
        sys.exit(f"the compiled kernels are not in use: {native.status()}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.2f}; OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")
    print(
        f"{'case':42s} {'kernels':>10s} {'NumPy':>10s} {'speed-up':>8s} "
        f"{'peak KiB':>10s} {'NumPy KiB':>10s}   (microseconds per item)"
    )
    sizes = (4, 16) if args.quick else (4, 16, 64, 256)
    batches = (1, 256) if args.quick else (1, 16, 256)
    scheme_cases(sizes, batches)
    for batch_size in (1, 32) if args.quick else (1, 8, 32, 256):
        sentiment_case(batch_size)


if __name__ == "__main__":
    main()
