"""Integer-vector scheme operations not compared with vhe.cpp, and the plaintext baselines.

Encryption, decryption, key switching, linear transforms and inner products with the `default`
and `vhe` parameter sets are in test_bench_vhe.py, interleaved with vhe.cpp's own timings. Here:
the slotwise product (vhe.cpp has none) with `default`, the historical `seed` set (the 2017
notebook's parameters), key generation, and the ``numpy`` cases that time the same linear algebra
on plaintext integers, for the encrypted/unencrypted ratio. Each benchmark times one call on a
batch of ``batch`` m-vectors; the report divides by the batch (the amortised time per
ciphertext). Every integer-vector parameter set is INSECURE (see docs/scheme.md, Security).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from benchutil import (
    PLAINTEXT,
    KeyCache,
    integer_messages,
    make_scheme,
    measure,
    measure_scheme_operation,
    security_of,
    transform_matrix,
)

BATCHES = (1, 256)


def _cases() -> list[Any]:
    cases = []
    for m in (4, 16, 64, 256):
        for batch in BATCHES:
            cases.append(
                pytest.param("default", "multiply", m, batch, id=f"default-multiply-m{m}-b{batch}")
            )
    # The 2017 notebook's parameter set on a few cases.
    for op in ("encrypt", "dot"):
        for m in (4, 16):
            for batch in BATCHES:
                cases.append(pytest.param("seed", op, m, batch, id=f"seed-{op}-m{m}-b{batch}"))
    return cases


@pytest.mark.parametrize(("params", "op", "m", "batch"), _cases())
def test_scheme_op(
    benchmark: Any, key_cache: KeyCache, params: str, op: str, m: int, batch: int
) -> None:
    benchmark.group = f"scheme {op}"
    measure_scheme_operation(
        benchmark,
        key_cache,
        params,
        op,
        m,
        batch,
        rounds=3 if (m >= 256 and batch > 1) else None,
    )


def _plain_cases() -> list[Any]:
    cases = []
    for op in ("linear_transform", "dot", "multiply"):
        for m in (4, 16, 64, 256):
            if m == 256 and op == "dot":
                continue
            for batch in BATCHES:
                cases.append(pytest.param(op, m, batch, id=f"numpy-{op}-m{m}-b{batch}"))
    return cases


@pytest.mark.parametrize(("op", "m", "batch"), _plain_cases())
def test_plaintext_op(benchmark: Any, op: str, m: int, batch: int) -> None:
    """The same operation on plaintext arrays with NumPy: the unencrypted baseline."""
    x = integer_messages(batch, m, seed=m)
    y = integer_messages(batch, m, seed=m + 1)
    g = transform_matrix(m)
    # float64 for the matrix product: BLAS, exact here, and what a plaintext model would use
    # (NumPy's int64 matmul has no BLAS and would flatter the encrypted/unencrypted ratio).
    xf, gf = x.astype(np.float64), g.astype(np.float64)
    functions = {
        "linear_transform": lambda: xf @ gf.T,
        "dot": lambda: np.einsum("bi,bi->b", x, y),
        "multiply": lambda: x * y,
    }
    benchmark.group = f"scheme {op}"
    measure(
        benchmark,
        functions[op],
        items=batch,
        kind="scheme-op",
        operation=op,
        m=m,
        batch=batch,
        params="plaintext",
        security=PLAINTEXT,
        implementation="numpy",
        encrypted=False,
    )


#: The `default` and `vhe` sets' inner-product keys are timed in test_bench_vhe.py, next to vhe.cpp.
KEYGEN_CASES = [pytest.param("seed", m, id=f"seed-m{m}") for m in (4, 16)]


@pytest.mark.parametrize(("params", "m"), KEYGEN_CASES)
def test_dot_keygen(benchmark: Any, key_cache: KeyCache, params: str, m: int) -> None:
    """Owner side: making the inner-product evaluation key for m-vectors."""
    scheme = key_cache.scheme(params)
    keys = key_cache.keys(params, m)
    benchmark.group = "keygen inner-product key"
    key = measure(
        benchmark,
        lambda: scheme.add_dot_key(keys, m),
        items=1,
        unit="key",
        rounds=5 if m >= 64 else None,
        kind="keygen",
        operation="dot_keygen",
        m=m,
        batch=1,
        params=params,
        security=security_of(params),
        implementation="hennframework",
        encrypted=True,
    )
    benchmark.extra_info["key_bytes"] = key.nbytes


@pytest.mark.parametrize("m", [4, 16, 64, 256])
def test_keygen(benchmark: Any, key_cache: KeyCache, m: int) -> None:
    """Owner side: a secret key with the public encryption key and product key for m-vectors."""
    scheme = make_scheme("default")  # its own instance: every key set made is registered in it
    benchmark.group = "keygen secret + encryption + product keys"
    keys = measure(
        benchmark,
        lambda: scheme.keygen(max_dim=m, dims=(m,), products=(m,)),
        items=1,
        unit="key set",
        rounds=5 if m >= 64 else None,
        kind="keygen",
        operation="keygen",
        m=m,
        batch=1,
        params="default",
        security=security_of("default"),
        implementation="hennframework",
        encrypted=True,
    )
    benchmark.extra_info["key_bytes"] = keys.public.encryption[m].nbytes + sum(
        key.nbytes for key in keys.public.evaluation.keys.values()
    )
