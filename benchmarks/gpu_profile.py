"""Where the time of a large-batch encryption and decryption goes on the CuPy backend.

Times each stage of ``IntegerVectorScheme.encrypt`` (public key) and ``decrypt`` separately
(device synchronised after each; median of 5 after 2 warm-up calls) for m = 256 at batch 10**5,
and the same stages on the NumPy backend at batch 10**4 for comparison. Part of
``benchmarks/gpu_check.sh``; prints one table.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from hennframework.registry import get_backend
from hennframework.schemes.integer_vector import IntegerVectorScheme, small

M = 256


def timed(backend: Any, function: Callable[[], Any]) -> float:
    times = []
    for round_ in range(7):
        start = time.perf_counter()
        function()
        backend.synchronize()
        if round_ >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def stages(backend_name: str, batch: int) -> list[tuple[str, float]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheme = IntegerVectorScheme("default", backend=get_backend(backend_name))
    backend, p = scheme.backend, scheme.params
    keys = scheme.keygen(seed=1, max_dim=M, dims=(M,))
    values = np.random.default_rng(0).integers(-1000, 1000, (batch, M))
    draw = small.noise_source(None)
    enc_key = keys.public.encryption_key(M)
    noise = draw(-p.e_bound, p.e_bound, values.shape)
    x = backend.asarray(values, dtype="int64")
    e0 = backend.asarray(noise)
    c0 = x * p.w + e0
    bound = 1000 * p.w + p.e_bound
    ct = scheme.encrypt(values, keys.public, dim=M)
    top, bottom = ct.data[..., :M], ct.data[..., M:]
    t = backend.asarray(keys.secret.t_for(M), dtype="int64")
    sc = top + backend.matmul_int_wrap(bottom, t.T)
    rounded = (sc + p.w // 2) // p.w
    rows = [
        ("encrypt (public key), all", lambda: scheme.encrypt(values, keys.public, dim=M)),
        ("  noise drawn on the host (CSPRNG)", lambda: draw(-p.e_bound, p.e_bound, values.shape)),
        ("  host -> device copies", lambda: (backend.asarray(values), backend.asarray(noise))),
        ("  key switch of x w + e", lambda: scheme._switch(c0, enc_key, bound)),
        ("  abs_max of the result", lambda: backend.abs_max(ct.data)),
        ("decrypt, all", lambda: scheme.decrypt(ct, keys)),
        ("  noise bounds to the host", lambda: backend.to_numpy(ct.decryption_bounds())),
        ("  abs_max of tops and bottoms", lambda: (backend.abs_max(top), backend.abs_max(bottom))),
        ("  S c (top + bottom @ T^T)", lambda: top + backend.matmul_int_wrap(bottom, t.T)),
        ("  rounding (sc + w/2) // w", lambda: (sc + p.w // 2) // p.w),
        ("  messages to the host", lambda: backend.to_numpy(rounded)),
    ]
    return [(name, timed(backend, function) / batch) for name, function in rows]


def host_copies(batch: int = 10**5) -> list[tuple[str, float]]:
    """Ways to bring ``batch`` m-vectors of int64 messages to host memory (seconds per vector)."""
    import cupy
    import cupyx

    backend = get_backend("cupy")
    device = cupy.arange(batch * M, dtype=cupy.int64).reshape(batch, M)
    pinned = cupyx.empty_pinned((batch, M), dtype=np.int64)
    pageable = np.empty((batch, M), dtype=np.int64)
    rows = [
        ("to_numpy (pageable memory)", lambda: backend.to_numpy(device)),
        ("get into pinned memory", lambda: device.get(out=pinned)),
        ("pinned to pageable (host copy)", lambda: np.copyto(pageable, pinned)),
        ("pinned allocation", lambda: cupyx.empty_pinned((batch, M), dtype=np.int64)),
    ]
    return [(name, timed(backend, function) / batch) for name, function in rows]


def main() -> None:
    gpu = stages("cupy", 10**5)
    cpu = stages("numpy", 10**4)
    print(f"m = {M}: time per vector (ns); cupy at batch 100,000, numpy at batch 10,000")
    print(f"{'stage':40} {'cupy':>10} {'numpy':>10}")
    for (name, g), (_, c) in zip(gpu, cpu, strict=True):
        print(f"{name:40} {g * 1e9:10.1f} {c * 1e9:10.1f}")
    print(f"bringing {M}-vectors of messages to the host, batch 100,000 (ns per vector)")
    for name, seconds in host_copies():
        print(f"{name:40} {seconds * 1e9:10.1f}")


if __name__ == "__main__":
    main()
