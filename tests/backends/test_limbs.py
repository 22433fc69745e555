"""The float64-limb integer products shared by the NumPy and CuPy backends (backends/_limbs.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from henn_fake_cupy import DeviceArray, FakeCupy
from hennframework_backends._limbs import (
    FLOAT_EXACT_BITS,
    WRAP_CHUNK,
    limb_plan,
    matmul_small_left_limbs,
    matmul_wrap_limbs,
)
from hypothesis import given, settings
from hypothesis import strategies as st

MOD = 2**64


def python_matmul_mod(left: Any, right: Any) -> Any:
    exact = left.astype(object) @ right.astype(object)
    reduced = [
        [(int(v) % MOD) - MOD if int(v) % MOD >= 2**63 else int(v) % MOD for v in row]
        for row in exact
    ]
    return np.array(reduced, dtype=np.int64)


@settings(max_examples=50, deadline=None)
@given(inner=st.integers(1, 2**40), bound=st.integers(0, 2**62))
def test_limb_plan_keeps_float_sums_exact(inner: int, bound: int) -> None:
    """A plan of b bits means inner * bound * (2**b - 1) < 2**53: every partial sum is exact."""
    bits = limb_plan(inner, bound)
    if bits is None:
        assert inner * max(bound, 1) >= 2 ** (FLOAT_EXACT_BITS - 8)
    else:
        assert 8 <= bits <= 32
        assert inner * bound * (2**bits - 1) < 2**FLOAT_EXACT_BITS


@pytest.mark.parametrize("xp", [np, FakeCupy()], ids=["numpy", "fake-cupy"])
@pytest.mark.parametrize("chunk", [1, 3, 7, WRAP_CHUNK])
def test_matmul_wrap_limbs_chunks(xp: Any, chunk: int) -> None:
    rng = np.random.default_rng(chunk)
    left = rng.integers(-(2**63), 2**63 - 1, size=(3, 10), dtype=np.int64, endpoint=True)
    right = rng.integers(-(2**63), 2**63 - 1, size=(10, 4), dtype=np.int64, endpoint=True)
    left[0, 0], right[0, 0] = -(2**63), -(2**63)
    result = matmul_wrap_limbs(xp, xp.asarray(left), xp.asarray(right), chunk)
    if xp is not np:
        assert isinstance(result, DeviceArray)
    assert np.array_equal(np.asarray(result), python_matmul_mod(left, right))


def test_matmul_wrap_limbs_rejects_bad_chunks() -> None:
    one = np.ones((1, 1), dtype=np.int64)
    for chunk in (0, WRAP_CHUNK + 1):
        with pytest.raises(ValueError, match="chunk"):
            matmul_wrap_limbs(np, one, one, chunk)


def test_matmul_small_left_limbs_on_device_arrays() -> None:
    """The shared limb code uses operators and xp functions only, so it runs on device arrays."""
    fake = FakeCupy()
    rng = np.random.default_rng(5)
    small = rng.integers(-128, 129, size=(6, 40), dtype=np.int64)
    right = rng.integers(-(2**63), 2**63 - 1, size=(40, 3), dtype=np.int64, endpoint=True)
    result = matmul_small_left_limbs(fake, fake.asarray(small), fake.asarray(right), 128)
    assert isinstance(result, DeviceArray)
    assert np.array_equal(np.asarray(result), python_matmul_mod(small, right))


@settings(max_examples=30, deadline=None)
@given(
    inner=st.one_of(st.integers(1, 64), st.sampled_from([255, 256, 257, 4095, 4096, 8191])),
    bound=st.sampled_from([1, 2, 128, 2**15, 2**31]),
    seed=st.integers(0, 2**32 - 1),
)
def test_matmul_small_left_limbs_exact_at_the_plan_edges(inner: int, bound: int, seed: int) -> None:
    """Digits all at +-bound (the largest float partial sums the plan allows) times int64
    extremes: exact modulo 2**64 for inner dimensions on both sides of each limb-width step,
    including plans that fall back to the integer GEMM (limb_plan None)."""
    rng = np.random.default_rng(seed)
    small = rng.choice([-bound, bound], size=(2, inner)).astype(np.int64)
    right = rng.choice(
        np.array([-(2**63), 2**63 - 1, -1, 2**62, (2**53) + 1], dtype=np.int64), size=(inner, 2)
    )
    result = matmul_small_left_limbs(np, small, right, bound)
    assert np.array_equal(result, python_matmul_mod(small, right))
