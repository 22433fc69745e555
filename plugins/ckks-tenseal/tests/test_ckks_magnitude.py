"""Magnitude tracking: CKKS refuses, before it can wrap, any value past its ciphertext's limit.

A ciphertext at level ``l`` and scale ``s`` decrypts the centred remainder of ``value * s`` modulo
``Q_l``: past ``Q_l / (2 s)`` the value silently comes back wrong (``Enc(4) * Enc(4)`` at
``n4096`` decrypted to -15.8, ``Enc(10) ** 2`` to 4.59). These tests pin the reproducers, the
propagation of the bound through each operation, the file round trip, and random chains that
count silently wrong decryptions (decrypted but off by more than the kit's error bound).

Random chains run a fast profile by default; ``HENN_CKKS_CHAINS=4000`` runs that many chains per
parameter set and prints the counts (``-s`` to see them), for example::

    HENN_CKKS_CHAINS=4000 python -m pytest plugins/ckks-tenseal/tests/test_ckks_magnitude.py \\
        -k random_chains -s -p no:cacheprovider
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hennframework.exceptions import (
    HennError,
    NoiseBudgetExhaustedError,
    OverflowRiskError,
    SerializationError,
)
from hennframework.scheme import Capability, KeySet, MagnitudeTracked
from hennframework.testing import ErrorModel, Tracked
from hennframework.testing.bounds import REFERENCE_ULPS
from test_ckks_kit import ckks_polyval_bound, precision

import hennframework_ckks.tensor as tensor_module
from hennframework_ckks import CKKSScheme
from hennframework_ckks.serialization import _bounds, tensors_from_bytes, tensors_to_bytes
from hennframework_ckks.tensor import CKKSTensor, LazyLinear, encrypt_array, poly_range

REFUSALS = (OverflowRiskError, NoiseBudgetExhaustedError)


def errors_for(scheme: CKKSScheme) -> ErrorModel:
    """The kit's error model with the kit's CKKS tolerance (10 standard deviations)."""
    return ErrorModel(10.0 * precision(scheme), 10.0 * precision(scheme))


def decrypt(scheme: CKKSScheme, keys: KeySet, tensor: Any) -> np.ndarray:
    return np.asarray(scheme.decrypt_tensor(tensor, keys.secret))


def assert_bound_covers(tensor: Any, decrypted: np.ndarray) -> None:
    assert isinstance(tensor, MagnitudeTracked)
    assert float(np.abs(decrypted).max()) <= tensor.magnitude_bound < tensor.magnitude_limit


# ---------------------------------------------------------------------------------------------
# the reproducers
# ---------------------------------------------------------------------------------------------
def test_capability_is_declared() -> None:
    assert Capability.MAGNITUDE_TRACKING in CKKSScheme.capabilities


def test_enc4_times_enc4_is_refused(scheme4096: CKKSScheme, keys4096: KeySet) -> None:
    """Used to decrypt to -15.8: 16 is past the 15.9 that level 0 of n4096 holds."""
    a = scheme4096.encrypt_tensor(np.array([4.0]), keys4096.public)
    with pytest.raises(OverflowRiskError) as caught:
        _ = a * a
    message = str(caught.value)
    assert "ciphertext product" in message and "'n4096'" in message
    assert "15.9" in message and "Scale the inputs" in message and "n16384: 512" in message


def test_enc10_squared_is_refused(scheme4096: CKKSScheme, keys4096: KeySet) -> None:
    """Used to decrypt to 4.59."""
    a = scheme4096.encrypt_tensor(np.array([10.0]), keys4096.public)
    with pytest.raises(OverflowRiskError, match="ciphertext product"):
        _ = a * a


@pytest.mark.parametrize("value", [0.0, 1.0, -3.0, 3.5, 3.95])
def test_in_range_products_still_decrypt(
    scheme4096: CKKSScheme, keys4096: KeySet, value: float
) -> None:
    errors = errors_for(scheme4096)
    x = np.array([value, -value / 2, 0.25])
    a = scheme4096.encrypt_tensor(x, keys4096.public)
    product = a * a
    tracked = errors.mul(errors.fresh(x), errors.fresh(x))
    got = decrypt(scheme4096, keys4096, product)
    assert np.all(np.abs(got - tracked.value) <= tracked.error), (got, tracked.value)
    assert_bound_covers(product, got)


def test_squares_by_polynomial_at_the_last_level(scheme8192: CKKSScheme, keys8192: KeySet) -> None:
    """The same through ``polyval`` (depth 2) landing on level 0 of n8192: just inside the
    limit decrypts right, just past it is refused before anything is computed."""
    errors = errors_for(scheme8192)
    low = scheme8192.encrypt_tensor(np.array([1.0, -0.5]), keys8192.public) * 0.5 * 0.5 * 0.5
    assert low.levels_left == 2
    landing = (low * 0.5 * 0.5).magnitude_limit  # where a depth-2 result lands: level 0
    root = float(np.sqrt(landing))
    for factor, refused in ((0.97, False), (1.02, True)):
        x = np.array([root * factor, -0.5])
        shifted = low + (x - np.array([0.125, -0.0625]))
        if refused:
            with pytest.raises(OverflowRiskError, match="polynomial"):
                _ = shifted.polyval([0.0, 0.0, 1.0])
            continue
        square = shifted.polyval([0.0, 0.0, 1.0])
        assert square.levels_left == 0
        got = decrypt(scheme8192, keys8192, square)
        tracked = errors.mul(errors.fresh(x), errors.fresh(x))
        assert np.all(np.abs(got - tracked.value) <= tracked.error + 1e-2), (got, x**2)
        assert_bound_covers(square, got)


def test_the_limit_is_exact_for_constants(scheme4096: CKKSScheme, keys4096: KeySet) -> None:
    """Refused exactly where a constant would wrap: the limit is Q_0 / (2 * scale)."""
    a = scheme4096.encrypt_tensor(np.array([1.0, 1.0]), keys4096.public)
    limit = (a * 0.5).magnitude_limit
    ctx = a.context
    assert limit == pytest.approx(ctx.primes[0] / (2 * (a * 0.5).scale), rel=1e-12)
    assert limit == pytest.approx(scheme4096.params.headroom, rel=0.01)
    inside = limit * 0.99
    np.testing.assert_allclose(decrypt(scheme4096, keys4096, a * inside), inside, atol=1e-2)
    with pytest.raises(OverflowRiskError):
        _ = a * (limit * 1.001)


def test_just_past_the_limit_really_wraps(
    scheme4096: CKKSScheme, keys4096: KeySet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the check, a constant 0.2% past the limit decrypts to a wrong number: the limit
    is where CKKS wraps, not a margin."""
    a = scheme4096.encrypt_tensor(np.array([1.0, 1.0]), keys4096.public)
    past = (a * 0.5).magnitude_limit * 1.002
    monkeypatch.setattr(tensor_module, "magnitude_limit", lambda ctx, level, scale: math.inf)
    got = decrypt(scheme4096, keys4096, a * past)
    assert np.all(np.abs(got - past) > past)  # wrapped to about past - 2 * limit


# ---------------------------------------------------------------------------------------------
# every operation: the bound covers the value, and past the limit the operation is refused
# ---------------------------------------------------------------------------------------------
def _level0(scheme: CKKSScheme, keys: KeySet, values: Any) -> CKKSTensor:
    """``values`` at level 0 of n4096 (one plaintext product by 1/2 of twice the values)."""
    tensor = scheme.encrypt_tensor(2.0 * np.asarray(values), keys.public) * 0.5
    assert tensor.levels_left == 0
    return tensor


def _cases() -> dict[str, tuple[Callable[..., Any], Callable[..., Any], Any]]:
    """name: (operation(scheme, keys, scale) -> tensor, reference(scale) -> array, refusing scale).

    Each operation at scale 1 stays inside the limit; at the refusing scale it would pass it.
    """
    ones4 = np.ones(4)
    return {
        "plaintext scalar": (
            lambda s, k, f: s.encrypt_tensor(np.array([1.0, 2.0]), k.public) * (7.5 * f),
            lambda f: np.array([7.5, 15.0]) * f,
            1.1,
        ),
        "plaintext array": (
            lambda s, k, f: (
                s.encrypt_tensor(np.array([1.0, 2.0]), k.public) * np.array([-7.5 * f, 7.0])
            ),
            lambda f: np.array([-7.5 * f, 14.0]),
            2.2,
        ),
        "integer factor at level 0": (
            lambda s, k, f: _level0(s, k, [1.0, -1.5]) * int(10 * f),
            lambda f: np.array([1.0, -1.5]) * int(10 * f),
            1.1,
        ),
        "sum of ciphertexts": (
            lambda s, k, f: _level0(s, k, [7.0 * f, 1.0]) + _level0(s, k, [7.0 * f, -1.0]),
            lambda f: np.array([14.0 * f, 0.0]),
            1.2,
        ),
        "difference": (
            lambda s, k, f: _level0(s, k, [7.0 * f, 1.0]) - _level0(s, k, [-7.0 * f, 1.0]),
            lambda f: np.array([14.0 * f, 0.0]),
            1.2,
        ),
        "negation and plaintext sum": (
            lambda s, k, f: -_level0(s, k, [7.0, 1.0]) - np.array([7.0 * f, 0.0]),
            lambda f: np.array([-7.0 - 7.0 * f, -1.0]),
            1.3,
        ),
        "plaintext minus ciphertext": (
            lambda s, k, f: np.array([8.0 * f, 0.0]) - _level0(s, k, [-7.0, 1.0]),
            lambda f: np.array([8.0 * f + 7.0, -1.0]),
            1.2,
        ),
        "sum over slots": (
            lambda s, k, f: _level0(s, k, 0.9 * f * ones4).sum(),
            lambda f: np.array(3.6 * f),
            4.5,
        ),
        "sum over a grid axis": (
            lambda s, k, f: _level0(s, k, np.full((3, 2048), 4.0 * f)).sum(axis=0),
            lambda f: np.full(2048, 12.0 * f),
            1.4,
        ),
        "plaintext @ ciphertext": (
            lambda s, k, f: np.full((2, 4), 3.5 * f) @ s.encrypt_tensor(ones4, k.public),
            lambda f: np.full(2, 14.0 * f),
            1.2,
        ),
        "ciphertext @ plaintext": (
            lambda s, k, f: s.encrypt_tensor(np.ones((2, 4)), k.public) @ np.full((4, 3), 3.5 * f),
            lambda f: np.full((2, 3), 14.0 * f),
            1.2,
        ),
        "row selection then a product": (
            lambda s, k, f: (
                s.encrypt_tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), k.public)[[1, 1]] * (3.5 * f)
            ),
            lambda f: np.array([[3.0, 4.0], [3.0, 4.0]]) * 3.5 * f,
            1.2,
        ),
        "scatter_add": (
            lambda s, k, f: _level0(s, k, np.full((3, 2), 5.0)).scatter_add(
                np.array([0, 0]), s.encrypt_tensor(np.full((2, 2), 4.0 * f), k.public)
            ),
            lambda f: np.array([[5.0 + 8.0 * f] * 2, [5.0] * 2, [5.0] * 2]),
            1.4,
        ),
        "polynomial": (
            lambda s, k, f: s.encrypt_tensor(np.array([1.0, -1.0]), k.public).polyval(
                [2.0 * f, 12.0 * f]
            ),
            lambda f: np.array([14.0 * f, -10.0 * f]),
            1.2,
        ),
        "transpose and reshape keep the bound": (
            lambda s, k, f: (
                s.encrypt_tensor(np.arange(6.0).reshape(2, 3), k.public)
                .transpose()
                .reshape(1, 3, 2)
                * (2.8 * f)
            ),
            lambda f: np.arange(6.0).reshape(2, 3).T.reshape(1, 3, 2) * 2.8 * f,
            1.2,
        ),
    }


@pytest.mark.parametrize("name", sorted(_cases()))
def test_each_operation_is_bounded_and_refused_past_the_limit(
    scheme4096: CKKSScheme, keys4096: KeySet, name: str
) -> None:
    operation, reference, refusing = _cases()[name]
    result = _computed(operation(scheme4096, keys4096, 1.0))
    got = decrypt(scheme4096, keys4096, result)
    np.testing.assert_allclose(got, reference(1.0), atol=0.02)
    assert_bound_covers(result, got)
    assert float(np.abs(reference(refusing)).max()) > result.magnitude_limit  # really past it
    with pytest.raises(OverflowRiskError):
        _computed(operation(scheme4096, keys4096, refusing))


def _computed(tensor: Any) -> CKKSTensor:
    """Products with a plaintext matrix are lazy: evaluate them (where a refusal happens)."""
    return tensor.materialize() if isinstance(tensor, LazyLinear) else tensor


def test_fresh_values_may_be_large_where_the_level_holds_them(
    scheme4096: CKKSScheme, keys4096: KeySet
) -> None:
    """The rule is per level: 100 fits a fresh n4096 ciphertext, and 100 * 0.1 fits level 0, but
    bringing 100 down to level 0 (to add it to a level-0 tensor) is refused."""
    big = scheme4096.encrypt_tensor(np.array([100.0, -50.0]), keys4096.public)
    np.testing.assert_allclose(decrypt(scheme4096, keys4096, big * 0.1), [10.0, -5.0], atol=0.01)
    low = scheme4096.encrypt_tensor(np.array([1.0, 1.0]), keys4096.public) * 0.5
    with pytest.raises(OverflowRiskError, match="level 0"):
        _ = big + low


def test_lazy_products_report_their_bound(scheme8192: CKKSScheme, keys8192: KeySet) -> None:
    w = scheme8192.encrypt_tensor(np.array([[0.5, -1.0], [2.0, 0.25]]), keys8192.public)
    lazy = np.array([[1.0, 1.0]]) @ w
    got = decrypt(scheme8192, keys8192, lazy)
    np.testing.assert_allclose(got, [[2.5, -0.75]], atol=1e-2)
    assert_bound_covers(lazy, got)


@pytest.mark.parametrize("rotations", ["pow2", "pow2+neg"])
def test_sums_left_pinned_are_bounded(
    scheme8192: CKKSScheme, keys8192: KeySet, rotations: str
) -> None:
    """A sum over a low slot group leaves partial sums in the other slots; re-using the result
    (replicated again by a linear map, or by rotations with right-rotation keys) keeps every
    slot bounded, and the bound stays that of the sums, not of every slot added up."""
    keys = keys8192 if rotations == "pow2" else scheme8192.keygen(rotations=rotations)
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.5]])
    a = scheme8192.encrypt_tensor(x, keys.public)
    row_sums = a.sum(axis=1)  # axis 1 is the low group: pinned
    assert row_sums.layout.pinned
    assert row_sums.magnitude_bound < 3 * 3.0 + 0.01  # 3 elements of at most 3, not 4
    outer = (row_sums.reshape(2, 1) + a) * 0.5
    got = decrypt(scheme8192, keys, outer)
    np.testing.assert_allclose(got, (x.sum(axis=1)[:, None] + x) * 0.5, atol=0.02)
    assert_bound_covers(outer, got)
    assert outer.magnitude_bound < (9.0 + 3.0) * 0.5 + 0.05


def test_refresh_resets_the_bound(scheme4096: CKKSScheme, keys4096: KeySet) -> None:
    worn = _level0(scheme4096, keys4096, [12.0, -3.0]) + _level0(scheme4096, keys4096, [3.0, 0.0])
    fresh = scheme4096.refresh(worn, keys4096)
    assert fresh.magnitude_bound < worn.magnitude_bound
    assert fresh.magnitude_bound == pytest.approx(15.0, abs=0.02)
    np.testing.assert_allclose(decrypt(scheme4096, keys4096, fresh * 0.5), [7.5, -1.5], atol=0.01)


def test_decryption_refuses_a_bound_past_the_limit(
    scheme4096: CKKSScheme, keys4096: KeySet
) -> None:
    tensor = _level0(scheme4096, keys4096, [1.0, 2.0])
    forged = CKKSTensor(
        tensor.key,
        tensor.layout,
        tensor.cts,
        tensor.clean,
        np.full(tensor.shape, 16.0),
        tensor.garbage,
        tensor.errors,
    )
    with pytest.raises(OverflowRiskError, match="refusing to decrypt"):
        scheme4096.decrypt_tensor(forged, keys4096)
    with pytest.raises(OverflowRiskError, match="refusing to decrypt"):
        scheme4096.refresh(forged, keys4096)  # the owner's refresh decrypts too
    unknown = CKKSTensor(tensor.key, tensor.layout, tensor.cts, tensor.clean)
    with pytest.raises(OverflowRiskError, match="no magnitude bound"):
        scheme4096.decrypt_tensor(unknown, keys4096)


def test_bounds_travel_in_tensor_files(scheme4096: CKKSScheme, keys4096: KeySet) -> None:
    tensor = _level0(scheme4096, keys4096, [[1.0, 2.0], [3.0, -4.0]])
    (loaded,) = tensors_from_bytes(tensors_to_bytes([tensor]), keys4096.public)
    for name in ("garbage", "errors"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(tensor, name))
    # element bounds travel as one public bound per tensor: 4 is already a power of 2**(1/4)
    np.testing.assert_array_equal(loaded.bounds, np.full((2, 2), 4.0))
    got = decrypt(scheme4096, keys4096, loaded)
    np.testing.assert_allclose(got, [[1.0, 2.0], [3.0, -4.0]], atol=0.01)
    with pytest.raises(OverflowRiskError):
        _ = loaded + np.array([[0.0, 0.0], [0.0, -12.0]])  # -16 at level 0


@pytest.mark.parametrize(
    "values", [[0.001, -0.5, 0.25, 0.1], [0.5, 0.0, -0.3, 0.49], [-0.45, 0.2, 0.2, 0.2]]
)
def test_files_do_not_reveal_each_value_s_magnitude(
    scheme4096: CKKSScheme, keys4096: KeySet, values: list[float]
) -> None:
    """A model sent to a party carries bounds in the clear: they must not be ``|weight|``.

    Three weight vectors with the same rounded maximum give byte-identical bound headers, and
    every element carries the same bound, at most 19 % above the largest magnitude.
    """
    tensor = scheme4096.encrypt_tensor(np.array(values), keys4096.public)
    (loaded,) = tensors_from_bytes(tensors_to_bytes([tensor]), keys4096.public)
    assert np.unique(loaded.bounds).size == 1
    largest = max(abs(v) for v in values)
    assert largest <= loaded.bounds[0] <= largest * 2 ** (1 / 4) * (1 + 1e-12)
    assert loaded.bounds[0] == 0.5  # the same public value for all three vectors
    np.testing.assert_allclose(decrypt(scheme4096, keys4096, loaded), values, atol=0.01)


def test_public_bounds_never_push_a_decryptable_tensor_past_its_limit(
    scheme4096: CKKSScheme, keys4096: KeySet
) -> None:
    """Rounding up stops at the public limit: what decrypts before a round trip still does."""
    limit = _level0(scheme4096, keys4096, [0.0]).magnitude_limit
    near = 0.97 * limit  # rounding 0.97 x limit up to a power of 2**(1/4) would pass the limit
    tensor = _level0(scheme4096, keys4096, [near, 1.0])
    (loaded,) = tensors_from_bytes(tensors_to_bytes([tensor]), keys4096.public)
    assert loaded.magnitude_bound < loaded.magnitude_limit
    np.testing.assert_allclose(decrypt(scheme4096, keys4096, loaded), [near, 1.0], atol=0.05)


def test_malformed_bounds_in_files_are_refused() -> None:
    assert _bounds(None, 2) == [math.inf, math.inf]  # files without bounds: unknown
    assert _bounds([1.5, None], 2) == [1.5, math.inf]
    for bad in ([1.0], [-1.0, 1.0], ["1", 1.0], [True, 1.0], [float("nan"), 1.0], {"a": 1}):
        with pytest.raises(SerializationError):
            _bounds(bad, 2)


def test_encryption_checks_the_level_it_encrypts_at(
    scheme4096: CKKSScheme, keys4096: KeySet
) -> None:
    limit0 = scheme4096.params.headroom
    with pytest.raises(OverflowRiskError, match="do not fit"):
        encrypt_array(keys4096.public, np.array([limit0]), level=0)
    low = encrypt_array(keys4096.public, np.array([limit0 * 0.9]), level=0)
    np.testing.assert_allclose(decrypt(scheme4096, keys4096, low), [limit0 * 0.9], atol=0.01)


# ---------------------------------------------------------------------------------------------
# random chains: never a silently wrong decryption
# ---------------------------------------------------------------------------------------------
#: SEAL encodes and decodes in float64: a relative error of about 2**-40 on top of the kit's
#: absolute bound (far below any wrap, which is off by about twice the limit).
RELATIVE_SLACK = 2.0**-40


@dataclass
class ChainStats:
    """What a run of random chains found."""

    chains: int = 0
    steps: int = 0
    decryptions: int = 0
    wrong: int = 0
    refused: int = 0
    refused_overflow: int = 0
    refused_at_decryption: int = 0
    bound_violations: int = 0
    project_errors: list[str] = field(default_factory=list)
    foreign_errors: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self, name: str) -> str:
        return (
            f"{name}: {self.chains} chains, {self.steps} operations, {self.decryptions} "
            f"decryptions, {self.wrong} wrong, {self.refused} refused ({self.refused_overflow} "
            f"past a magnitude limit, {self.refused_at_decryption} at decryption, where a lazy "
            f"matrix product is evaluated; the rest out of levels), {self.bound_violations} bound "
            f"violations, {len(self.project_errors)} other project errors, "
            f"{len(self.foreign_errors)} non-project exceptions, {self.seconds:.1f} s"
        )


def _magnitude(rng: np.random.Generator, low: float, high: float) -> float:
    """A random sign times a log-uniform magnitude in [2**low, 2**high]."""
    return float(rng.choice([-1.0, 1.0]) * 2.0 ** rng.uniform(low, high))


def _step(
    rng: np.random.Generator,
    scheme: CKKSScheme,
    keys: KeySet,
    errors: ErrorModel,
    tensor: Any,
    tracked: Tracked,
) -> tuple[Any, Tracked, str]:
    """One random operation among all a CKKS tensor supports, and its error bound."""
    shape = tracked.shape

    def fresh(shape: tuple[int, ...]) -> tuple[Any, Tracked]:
        values = rng.uniform(-1, 1, shape) * abs(_magnitude(rng, -2, 4))
        return scheme.encrypt_tensor(values, keys.public), errors.fresh(values)

    names = [
        "add",
        "sub",
        "neg",
        "add_plain",
        "rsub_plain",
        "mul_scalar",
        "mul_array",
        "mul_int",
        "mul",
        "square",
        "matmul_left",
        "matmul_right",
        "polyval",
        "index",
        "scatter_add",
        "refresh",
        "file",
    ]
    if len(shape) == 2:
        names += ["sum", "transpose", "reshape"]
    name = str(rng.choice(names))
    if name in ("add", "sub", "mul"):
        other, t_other = fresh(shape)
        if name == "add":
            return tensor + other, errors.add(tracked, t_other), name
        if name == "sub":
            return tensor - other, errors.sub(tracked, t_other), name
        return tensor * other, errors.mul(tracked, t_other), name
    if name == "neg":
        return -tensor, errors.neg(tracked), name
    if name == "square":
        return tensor * tensor, errors.mul(tracked, tracked), name
    if name in ("add_plain", "rsub_plain"):
        p = rng.uniform(-1, 1, shape) * abs(_magnitude(rng, -2, 7))
        if name == "add_plain":
            return tensor + p, errors.add_plain(tracked, p), name
        return p - tensor, errors.add_plain(errors.neg(tracked), p), name
    if name == "mul_scalar":
        k = _magnitude(rng, -3, 6)
        return tensor * k, errors.mul_plain(tracked, np.full(shape, k)), f"* {k:.4g}"
    if name == "mul_array":
        p = rng.uniform(-1, 1, shape) * abs(_magnitude(rng, -3, 6))
        return tensor * p, errors.mul_plain(tracked, p), name
    if name == "mul_int":
        k = int(rng.integers(-40, 41))
        return tensor * k, errors.mul_plain(tracked, np.full(shape, float(k))), f"* {k}"
    if name == "matmul_left":
        p = rng.uniform(-2, 2, (int(rng.integers(1, 5)), shape[0]))
        return p @ tensor, errors.matmul_plain_left(p, tracked), name
    if name == "matmul_right":
        p = rng.uniform(-2, 2, (shape[-1], int(rng.integers(1, 5))))
        return tensor @ p, errors.matmul_plain_right(tracked, p), name
    if name == "polyval":
        coefficients = [float(c) for c in rng.uniform(-2, 2, int(rng.integers(1, 5)))]
        return (
            tensor.polyval(coefficients),
            ckks_polyval_bound(errors, tracked, coefficients),
            f"polyval {len(coefficients) - 1}",
        )
    if name == "index":
        rows = rng.integers(0, shape[0], int(rng.integers(1, 5)))
        return tensor[rows], tracked[rows], name
    if name == "scatter_add":
        rows = rng.integers(0, shape[0], int(rng.integers(1, 4)))
        values, t_values = fresh((len(rows), *shape[1:]))
        return tensor.scatter_add(rows, values), errors.scatter_add(tracked, rows, t_values), name
    if name == "refresh":
        refreshed = scheme.refresh(tensor, keys)
        return (
            refreshed,
            Tracked(tracked.value, tracked.error + errors.tolerance, tracked.magnitude),
            name,
        )
    if name == "file":
        (loaded,) = tensors_from_bytes(tensors_to_bytes([tensor]), keys.public)
        return loaded, tracked, name
    if name == "sum":
        axis = int(rng.integers(0, 2))
        return tensor.sum(axis=axis), errors.sum(tracked, axis), f"sum {axis}"
    if name == "transpose":
        return tensor.transpose(), tracked.transpose(), name
    return tensor.reshape(-1), tracked.reshape(-1), name


def run_chains(scheme: CKKSScheme, keys: KeySet, chains: int, seed: int) -> ChainStats:
    """Random chains of operations, each result decrypted and judged against the kit's bound;
    long enough (4 + 2 per level) to reach the last level."""
    max_steps = 4 + 2 * scheme.params.levels
    rng = np.random.default_rng(seed)
    errors = errors_for(scheme)
    stats = ChainStats()
    started = time.perf_counter()
    for _ in range(chains):
        stats.chains += 1
        shape = tuple(int(n) for n in rng.integers(1, 5, int(rng.integers(1, 3))))
        x = rng.uniform(-1, 1, shape) * abs(_magnitude(rng, -2, 4))
        history = [f"x: shape {shape}, |x| <= {np.abs(x).max():.4g}"]
        try:
            tensor, tracked = scheme.encrypt_tensor(x, keys.public), errors.fresh(x)
            for _ in range(int(rng.integers(1, max_steps + 1))):
                stats.steps += 1
                try:
                    tensor, tracked, what = _step(rng, scheme, keys, errors, tensor, tracked)
                except REFUSALS as exc:
                    stats.refused += 1
                    stats.refused_overflow += isinstance(exc, OverflowRiskError)
                    break
                history.append(what)
                try:
                    got = decrypt(scheme, keys, tensor)
                except REFUSALS as exc:
                    stats.refused += 1
                    stats.refused_overflow += isinstance(exc, OverflowRiskError)
                    stats.refused_at_decryption += 1
                    break
                stats.decryptions += 1
                allowed = (
                    tracked.error
                    + (REFERENCE_ULPS + RELATIVE_SLACK) * (1.0 + tracked.magnitude)
                    + RELATIVE_SLACK * np.abs(tracked.value)
                )
                if got.shape != tracked.shape or np.any(np.abs(got - tracked.value) > allowed):
                    stats.wrong += 1
                    worst = float(np.max(np.abs(got - tracked.value))) if got.size else 0.0
                    stats.examples.append(f"{' -> '.join(history)}: off by {worst:.4g}")
                    break
                if got.size and float(np.abs(got).max()) > tensor.magnitude_bound:
                    stats.bound_violations += 1
        except HennError as exc:
            stats.project_errors.append(f"{' -> '.join(history)}: {type(exc).__name__}: {exc}")
        except Exception as exc:  # counting them is the point
            stats.foreign_errors.append(f"{' -> '.join(history)}: {type(exc).__name__}: {exc}")
    stats.seconds = time.perf_counter() - started
    return stats


#: Chains per parameter set: a fast profile by default, more on demand.
CHAINS = int(os.environ.get("HENN_CKKS_CHAINS", "0")) or None


@pytest.mark.parametrize("name", ["n4096", "n8192"])
def test_random_chains_are_never_silently_wrong(
    name: str,
    scheme4096: CKKSScheme,
    keys4096: KeySet,
    scheme8192: CKKSScheme,
    keys8192: KeySet,
) -> None:
    scheme, keys = (scheme4096, keys4096) if name == "n4096" else (scheme8192, keys8192)
    chains = CHAINS or (60 if name == "n4096" else 25)
    stats = run_chains(scheme, keys, chains, seed=4096 if name == "n4096" else 8192)
    print(stats.summary(name))
    assert stats.wrong == 0, "\n".join(stats.examples)
    assert not stats.foreign_errors, "\n".join(stats.foreign_errors)
    assert not stats.project_errors, "\n".join(stats.project_errors)
    assert stats.bound_violations == 0
    assert stats.refused_overflow > 0 and stats.decryptions > stats.chains  # limits are reached


def test_random_chains_find_wraps_without_the_check(
    scheme4096: CKKSScheme, keys4096: KeySet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chain test can fail: with the limit taken away, the same chains decrypt wrapped values."""
    monkeypatch.setattr(tensor_module, "magnitude_limit", lambda ctx, level, scale: math.inf)
    stats = run_chains(scheme4096, keys4096, 60, seed=4096)
    assert stats.wrong > 0, stats.summary("n4096 unchecked")


@pytest.mark.parametrize("seed", range(20))
def test_polynomial_range_is_exact_and_sound(seed: int) -> None:
    """The bound of ``polyval`` is the polynomial's range over each interval: never below what
    a fine grid finds, and no looser than float64 rounding."""
    rng = np.random.default_rng(seed)
    coefficients = list(rng.uniform(-2, 2, int(rng.integers(1, 8))))
    bounds = np.abs(rng.normal(0, 3, 5))
    got = poly_range(coefficients, bounds)
    for b, bound in zip(bounds, got, strict=True):
        grid = np.linspace(-b, b, 20001)
        sampled = float(np.abs(np.polynomial.polynomial.polyval(grid, coefficients)).max())
        assert sampled <= bound <= sampled * (1 + 1e-6) + 1e-9
