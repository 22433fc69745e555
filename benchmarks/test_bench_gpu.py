"""Integer-vector scheme operations on the CuPy (GPU) backend: large batches.

The same operations as ``test_bench_scheme.py`` (encrypt, decrypt, key switch, linear transform,
inner product, slotwise product) on batches of 10**3 to 10**5 m-vectors, m up to 256, plus the
headline figure: encrypted inner products per second at m = 8, batched (target: >= 10**6 per
second on one H100). Every timed call ends with ``backend.synchronize()`` so that queued GPU work
is inside the measurement; the first rounds (kernel compilation) are warm-up rounds.

Skipped, with the reason, without CuPy or a usable CUDA GPU. Cases whose working set would not fit
comfortably in the GPU's free memory are skipped with the estimate. Every integer-vector parameter
set is INSECURE (docs/scheme.md, Security); these are speed figures only.
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any

import numpy as np
import pytest
from benchutil import integer_messages, measure, security_of, transform_matrix

from hennframework.exceptions import InsecureParametersWarning
from hennframework.registry import get_backend


def _gpu_reason() -> str | None:
    """Why the GPU benchmarks cannot run here, or None if they can."""
    if importlib.util.find_spec("cupy") is None:
        return 'CuPy is not installed (pip install "hennframework[cupy]")'
    try:
        import cupy

        if not cupy.cuda.is_available():
            return "cupy.cuda.is_available() is False: no usable CUDA GPU here"
    except Exception as exc:
        return f"CUDA is not usable here ({type(exc).__name__}: {exc})"
    return None


GPU_REASON = _gpu_reason()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(GPU_REASON is not None, reason=str(GPU_REASON))]

PARAMS = "default"
OPERATIONS = ("encrypt", "decrypt", "key_switch", "linear_transform", "dot", "multiply")
BATCHES = (10**3, 10**4, 10**5)
SIZES = (8, 64, 256)
#: Use at most this share of the GPU's free memory (estimated working set of one call).
MEMORY_SHARE = 0.5


class GpuKeys:
    """Keys on the GPU backend per m, made once per session with fixed seeds (reproducible)."""

    def __init__(self) -> None:
        from hennframework.schemes.integer_vector import IntegerVectorScheme

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureParametersWarning)
            self.scheme = IntegerVectorScheme(PARAMS, backend=get_backend("cupy"))
        self._keys: dict[tuple[int, int], Any] = {}
        self._extras: set[tuple[int, str]] = set()

    def keys(self, m: int, which: int = 1) -> Any:
        if (m, which) not in self._keys:
            products = (m,) if which == 1 else ()
            self._keys[m, which] = self.scheme.keygen(
                seed=7000 * which + m, max_dim=m, dims=(m,), products=products
            )
        return self._keys[m, which]

    def with_linear(self, m: int) -> tuple[Any, np.ndarray]:
        keys, g = self.keys(m), transform_matrix(m)
        if (m, "linear") not in self._extras:
            self.scheme.add_linear_key(keys, g)
            self._extras.add((m, "linear"))
        return keys, g

    def with_dot(self, m: int) -> Any:
        keys = self.keys(m)
        if (m, "dot") not in self._extras:
            self.scheme.add_dot_key(keys, m)
            self._extras.add((m, "dot"))
        return keys


@pytest.fixture(scope="module")
def gpu_keys() -> GpuKeys:
    return GpuKeys()


#: Peak bytes per vector of each operation on the GPU backend's code path, in int64 words per
#: ciphertext entry (n = m + k): tracemalloc on ``XpBackend(numpy)``, the same class with the
#: same arrays as on CuPy, `default` set, batch 512, m = 8, 64 and 256 (the largest of the three
#: kept). Linear in n: digits go through in slices (``small.DIGIT_SLICE_BYTES``), so a larger
#: batch needs no more per vector.
WORDS_PER_ENTRY = {
    "encrypt": 29,
    "decrypt": 2,
    "key_switch": 27,
    "linear_transform": 27,
    "dot": 53,
    "multiply": 36,
}
#: CuPy's memory pool rounds blocks up and keeps freed ones: twice the measured peak, plus room
#: for the keys and a few digit slices.
POOL_FACTOR = 2
FIXED_BYTES = 256 << 20


def working_set_bytes(op: str, m: int, batch: int, k: int) -> int:
    """An upper estimate of the device memory one call needs (for skipping, not reporting)."""
    return POOL_FACTOR * batch * 8 * (m + k) * WORDS_PER_ENTRY[op] + FIXED_BYTES


def _free_bytes() -> int:
    import cupy

    free, _total = cupy.cuda.Device().mem_info
    return int(free)


def _cases() -> list[Any]:
    return [
        pytest.param(op, m, batch, id=f"{op}-m{m}-b{batch}")
        for op in OPERATIONS
        for m in SIZES
        for batch in BATCHES
    ]


def _info(op: str, m: int, batch: int) -> dict[str, Any]:
    return {
        "kind": "scheme-op",
        "operation": op,
        "m": m,
        "batch": batch,
        "params": PARAMS,
        "security": security_of(PARAMS),
        "implementation": "hennframework",
        "encrypted": True,
        "backend": "cupy",
    }


@pytest.mark.parametrize(("op", "m", "batch"), _cases())
def test_gpu_scheme_op(benchmark: Any, gpu_keys: GpuKeys, op: str, m: int, batch: int) -> None:
    scheme = gpu_keys.scheme
    backend = scheme.backend
    p = scheme.params
    need = working_set_bytes(op, m, batch, p.k)
    free = _free_bytes()
    if need > MEMORY_SHARE * free:
        pytest.skip(
            f"needs ~{need / 2**30:.1f} GiB of GPU memory, more than {MEMORY_SHARE:.0%} of the "
            f"{free / 2**30:.1f} GiB free"
        )
    keys = gpu_keys.keys(m)
    x = integer_messages(batch, m, seed=m)
    y = integer_messages(batch, m, seed=m + 1)
    benchmark.group = f"gpu {op}"
    info = _info(op, m, batch)
    rounds = 5 if batch >= 10**4 else None

    def timed(function: Any) -> Any:
        def run() -> Any:
            result = function()
            backend.synchronize()
            return result

        return measure(benchmark, run, items=batch, rounds=rounds, warmup_rounds=2, **info)

    if op == "encrypt":
        result = timed(lambda: scheme.encrypt(x, keys.public, dim=m))
        assert (scheme.decrypt(result, keys) == x).all()
        return
    cx = scheme.encrypt(x, keys.public, dim=m)
    if op == "decrypt":
        assert (timed(lambda: scheme.decrypt(cx, keys)) == x).all()
    elif op == "key_switch":
        other = gpu_keys.keys(m, which=2)
        switch = scheme.make_switch_key(keys, other, dim=m)
        assert (scheme.decrypt(timed(lambda: scheme.switch_key(cx, switch)), other) == x).all()
    elif op == "linear_transform":
        keys, g = gpu_keys.with_linear(m)
        result = timed(lambda: scheme.linear_transform(cx, g))
        assert (scheme.decrypt(result, keys) == x @ g.T).all()
    elif op == "dot":
        keys = gpu_keys.with_dot(m)
        cy = scheme.encrypt(y, keys.public, dim=m)
        result = timed(lambda: scheme.dot(cx, cy))
        assert (scheme.decrypt(result, keys)[..., 0] == (x * y).sum(axis=-1)).all()
    elif op == "multiply":
        cy = scheme.encrypt(y, keys.public, dim=m)
        assert (scheme.decrypt(timed(lambda: scheme.multiply(cx, cy)), keys) == x * y).all()
    else:  # pragma: no cover - the parametrisation lists only the operations above
        raise AssertionError(op)


@pytest.mark.parametrize("batch", [10**5, 10**6])
def test_gpu_inner_products_per_second(benchmark: Any, gpu_keys: GpuKeys, batch: int) -> None:
    """Encrypted inner products per second at m = 8, batched (GPU target: >= 10**6/s, H100).

    One timed call computes ``batch`` inner products of encrypted 8-vectors (ciphertext x
    ciphertext, with the evaluation key switch), data already on the device.
    """
    m = 8
    scheme = gpu_keys.scheme
    backend = scheme.backend
    p = scheme.params
    need = working_set_bytes("dot", m, batch, p.k)
    free = _free_bytes()
    if need > MEMORY_SHARE * free:
        pytest.skip(f"needs ~{need / 2**30:.1f} GiB of GPU memory ({free / 2**30:.1f} GiB free)")
    keys = gpu_keys.with_dot(m)
    x = integer_messages(batch, m, seed=1)
    y = integer_messages(batch, m, seed=2)
    cx = scheme.encrypt(x, keys.public, dim=m)
    cy = scheme.encrypt(y, keys.public, dim=m)
    benchmark.group = "gpu inner products per second (m = 8)"

    def run() -> Any:
        result = scheme.dot(cx, cy)
        backend.synchronize()
        return result

    result = measure(
        benchmark,
        run,
        items=batch,
        unit="inner product",
        rounds=5,
        warmup_rounds=2,
        **{**_info("dot", m, batch), "target_per_second": 10**6},
    )
    if "ops_per_second" in benchmark.extra_info:
        benchmark.extra_info["inner_products_per_second"] = benchmark.extra_info["ops_per_second"]
    assert (scheme.decrypt(result, keys)[..., 0] == (x * y).sum(axis=-1)).all()
