"""The shortcuts of a small training step compute what the general code computes, bit for bit.

A training step of a small network is many operations on a few values each, so its time goes to
fixed costs: the plaintext inputs encoded at every step, the limb plan of a matrix product that
the Python-integer path does not use, two float reductions for the norms of a key switch, the
message bound of every view of a tensor, the ends of a slope bound evaluated one at a time. Each
shortcut is compared here with the general computation on the same inputs, edges included
(values at the limits of the exact range, infinite and NaN bounds, refusals).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hennframework.exceptions import InputError, OverflowRiskError
from hennframework.registry import get_backend
from hennframework.schemes.integer_vector import IntegerVectorScheme, wide
from hennframework.schemes.integer_vector import scheme as scheme_module
from hennframework.schemes.integer_vector.ciphertext import (
    SAFETY,
    Ciphertext,
    elementwise_max,
    elementwise_min,
    float_margin,
)
from hennframework.schemes.integer_vector.params import PARAMETER_SETS
from hennframework.testing.integer_vector import ciphertext_fields

pytestmark = pytest.mark.filterwarnings(
    "ignore::hennframework.exceptions.InsecureParametersWarning"
)

LIMIT = (1 << 62) - 1
INT64_MIN = -(1 << 63)


#: Everything a ciphertext carries (compared exactly).
fields = ciphertext_fields


def unlinked(ciphertext: Ciphertext) -> Ciphertext:
    """A new ciphertext on the same arrays, with nothing computed or linked (a reference)."""
    return Ciphertext(
        ciphertext.scheme,
        ciphertext.data,
        ciphertext.dim,
        ciphertext.scale_int,
        ciphertext.noise,
        ciphertext.key_id,
        ciphertext.coeff_bound,
        ciphertext.noise_det,
        ciphertext.noise_sg,
    )


@pytest.fixture(scope="module")
def setup() -> tuple[IntegerVectorScheme, Any]:
    scheme = IntegerVectorScheme("default")
    return scheme, scheme.keygen(seed=11)


# -- exact integer helpers ------------------------------------------------------------------------
def round_half_away(value: int, divisor: int) -> int:
    magnitude = (abs(value) + divisor // 2) // divisor
    return magnitude if value >= 0 else -magnitude


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.integers(-(2**126), 2**126),
            st.sampled_from([0, 1, -1, 2**51, -(2**51), 3 * 2**51, -3 * 2**51]),
        ),
        max_size=12,
    ),
    divisor=st.sampled_from([1, 2, 3, 1000, 2**12, 2**24, 2**40, 2**52, 2**40 * 1000]),
)
def test_round_div_ints_rounds_halves_away_from_zero(values: list[int], divisor: int) -> None:
    """Shifts for a power of two, floor division otherwise: the same quotients, ties included
    (+-3 * 2**51 over 2**52 is +-1.5), or the refusal when one does not fit."""
    want = [round_half_away(v, divisor) for v in values]
    if want and max(max(want), -min(want)) >= 2**63:
        with pytest.raises(OverflowRiskError):
            wide._round_div_ints(values, divisor)
        return
    got = wide._round_div_ints(values, divisor)
    assert got.dtype == np.int64 and got.tolist() == want


@pytest.mark.parametrize("divisor", [1, 2**12, 3])
def test_round_div_ints_refuses_exactly_beyond_63_bits(divisor: int) -> None:
    """2**63 - 1 fits; 2**63 and -2**63 (whose magnitude is 2**63) are refused, as
    round_div_wide refuses them, whether NumPy or the check finds them."""
    top = (2**63 - 1) * divisor
    assert wide._round_div_ints([top, -top], divisor).tolist() == [2**63 - 1, -(2**63 - 1)]
    for value in (2**63 * divisor, INT64_MIN * divisor, 2**70 * divisor, -(2**70) * divisor):
        with pytest.raises(OverflowRiskError):
            wide._round_div_ints([5, value], divisor)
    assert wide._round_div_ints([], divisor).shape == (0,)


@settings(max_examples=300, deadline=None)
@given(
    inner=st.one_of(
        st.integers(0, 4096), st.integers(0, 2**62), st.sampled_from([2**61 - 1, 2**61])
    ),
    left_bound=st.one_of(st.integers(0, 2**53), st.integers(0, 2**63), st.just(0)),
    right_bound=st.one_of(st.integers(0, LIMIT), st.integers(2**40, 2**64)),
)
def test_plan_accepts_only_what_plan_matmul_plans(
    inner: int, left_bound: int, right_bound: int
) -> None:
    """Where plan_accepts says yes, plan_matmul returns a plan (it never refuses)."""
    if wide.plan_accepts(inner, left_bound, right_bound):
        wide.plan_matmul(inner, left_bound, right_bound)


def test_plan_accepts_near_its_limit() -> None:
    """Just below 9 n L R = 2**127 it says yes (and the plan exists); at it, plan_matmul
    decides; negative sizes are plan_matmul's ValueError."""
    left = 2**53
    right = (2**127 - 1) // (9 * 3 * left)
    assert wide.plan_accepts(3, left, right)
    wide.plan_matmul(3, left, right)
    assert not wide.plan_accepts(3, left, right + 1)
    assert not wide.plan_accepts(-1, 1, 1) and not wide.plan_accepts(1, -1, 1)
    with pytest.raises(ValueError):
        wide.wide_matmul_round_div(
            get_backend("numpy"), np.ones((1, 1), np.int64), np.ones((1, 1), np.int64), 1, -1, 1
        )


def test_small_matmul_refuses_what_the_plan_refuses() -> None:
    """Bounds whose limb plan is refused (9 n L R far above 2**127) are refused on the
    Python-integer path too, as on the limb path."""
    backend = get_backend("numpy")
    ones = np.ones((1, 8), dtype=np.int64), np.ones((8, 1), dtype=np.int64)
    assert not wide.plan_accepts(8, 2**63, 2**64)
    for limit in (0, 10**9):  # the limb path, then Python integers
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(wide, "SMALL_PRODUCTS", limit)
            with pytest.raises(OverflowRiskError):
                wide.wide_matmul_round_div(backend, *ones, 2**12, 2**63, 2**64)


@pytest.mark.parametrize(
    ("source", "shape"), [((1, 4, 2), (3, 4, 2)), ((4, 1, 2), (4, 4, 2)), ((2,), (3, 2))]
)
def test_broadcast_copy_holds_the_broadcast_values(
    source: tuple[int, ...], shape: tuple[int, ...]
) -> None:
    array = np.arange(np.prod(source), dtype=np.int64).reshape(source) * (2**50 + 1)
    copy = wide._broadcast_copy(array, shape)
    assert copy.flags.c_contiguous and copy.flags.writeable and copy.dtype == array.dtype
    assert np.array_equal(copy, np.broadcast_to(array, shape))


# -- the NumPy backend -----------------------------------------------------------------------------
def test_numpy_moveaxis_is_numpys_view() -> None:
    backend = get_backend("numpy")
    for shape in [(3,), (2, 3), (2, 3, 4), (2, 1, 3, 4)]:
        array = np.arange(np.prod(shape)).reshape(shape)
        for source in range(-len(shape), len(shape)):
            for destination in range(-len(shape), len(shape)):
                got = backend.moveaxis(array, source, destination)
                want = np.moveaxis(array, source, destination)
                assert got.shape == want.shape and got.strides == want.strides
                assert np.shares_memory(got, array) and np.array_equal(got, want)
    with pytest.raises(np.exceptions.AxisError):
        backend.moveaxis(np.zeros((2, 3)), 2, 0)
    assert backend.moveaxis([[1, 2]], 0, -1).shape == (2, 1)  # array-likes: NumPy's own


# -- key switch norms --------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [8, 16, 32])
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_switch_norms_are_the_summed_digits(bits: int, data: Any) -> None:
    """The L1 norm (a GEMV with ones) and the squared L2 norm (a dot product) of the digits are
    the sums of the general formula, bit for bit, digits of -B/2 and values near 2**62 included."""
    params = dataclasses.replace(PARAMETER_SETS["default"], name=f"n{bits}", gadget_bits=bits)
    scheme = IntegerVectorScheme(params)
    keys = scheme.keygen(seed=bits, products=(1,))
    key = keys.public.evaluation.keys["product:1"]
    edges = [LIMIT, -LIMIT, 0, -1, 1, -(2 ** (bits - 1)), -(2 ** (bits - 1)) * (2**bits + 1)]
    edges = [value for value in edges if abs(value) <= LIMIT]  # a digit of -B/2, twice
    items = data.draw(st.integers(1, 20))
    values = data.draw(
        st.lists(
            st.one_of(st.sampled_from(edges), st.integers(-LIMIT, LIMIT)),
            min_size=3 * items,
            max_size=3 * items,
        )
    )
    source = np.array(values, dtype=np.int64).reshape(items, 3)
    for batch in (source, source[0]):  # with and without a batch axis
        out, l1, l2 = scheme._switch_digits(batch, key)
        digits = scheme.decompose(batch)
        margin = float_margin(digits.shape[-1])
        as_float = digits.astype("float64")
        want_l1 = abs(digits).sum(axis=-1).astype("float64") * margin
        want_l2 = ((as_float * as_float).sum(axis=-1) * margin) ** 0.5 * SAFETY
        assert type(l1) is type(want_l1) and type(l2) is type(want_l2)
        assert np.asarray(l1).tobytes() == np.asarray(want_l1).tobytes()
        assert np.asarray(l2).tobytes() == np.asarray(want_l2).tobytes()
        flat = digits.reshape(-1, digits.shape[-1])
        want_out = (flat @ key.matrix_t).reshape(*batch.shape[:-1], -1)
        assert np.array_equal(out, want_out)


# -- plaintext matrices ----------------------------------------------------------------------------
def test_plain_matrices_are_kept_and_give_the_same_bits(
    setup: tuple[IntegerVectorScheme, Any],
) -> None:
    """X @ W, X.T @ D and W @ P with the plaintext encoded once: the bits of a scheme that
    encodes it again (a new one for every product); a changed X is encoded anew, shapes that
    do not align refuse alike, and the kept arrays are read-only."""
    scheme, keys = setup
    rng = np.random.default_rng(4)
    weights = scheme.encrypt_tensor(rng.normal(0, 2, (3, 4)), keys.public, seed=1)
    deltas = scheme.encrypt_tensor(rng.normal(0, 1, (5, 4)), keys.public, seed=2)
    inputs = rng.normal(0, 1.5, (5, 3))
    right = rng.normal(0, 1, (4, 2))
    cases = [
        (lambda c: inputs @ c, weights),
        (lambda c: inputs.T @ c, deltas),
        (lambda c: c @ right, weights),
        (lambda c: np.round(inputs * 4.0) @ c, weights),  # integer-valued: not rescaled
        (lambda c: np.round(inputs * 4.0).astype(np.int64) @ c, weights),
    ]
    for _ in range(2):  # the second time from the kept matrices
        for compute, operand in cases:
            assert fields(compute(operand)) == fields(compute(on_new_scheme(keys, operand)))
    for compute in (lambda c: inputs @ c, lambda c: c @ inputs):  # (5, 3) @ (5, 4): refused
        with pytest.raises(InputError):
            compute(deltas)
        with pytest.raises(InputError):
            compute(on_new_scheme(keys, deltas))
    kept = scheme._constant("plain-matrices", dict)
    assert kept and all(
        not array.flags.writeable
        for facts in kept.values()
        for array in facts
        if isinstance(array, np.ndarray)
    )
    changed = inputs.copy()
    first = fields(changed @ weights)
    changed[0, 0] += 1.0
    assert fields(changed @ weights) != first
    assert fields(changed @ weights) == fields(changed @ on_new_scheme(keys, weights))


def on_new_scheme(keys: Any, cipher: Ciphertext) -> Ciphertext:
    """The same ciphertext on a new scheme instance (nothing kept yet)."""
    fresh = IntegerVectorScheme("default")
    fresh.register_public_key(keys.public)
    return Ciphertext(
        fresh,
        cipher.data,
        cipher.dim,
        cipher.scale_int,
        cipher.noise,
        cipher.key_id,
        cipher.coeff_bound,
        cipher.noise_det,
        cipher.noise_sg,
    )


def test_large_plain_matrices_are_not_kept(setup: tuple[IntegerVectorScheme, Any]) -> None:
    _, keys = setup
    fresh = IntegerVectorScheme("default")
    fresh.register_public_key(keys.public)
    big = np.ones((scheme_module.PLAIN_MATRIX_VALUES + 1, 1))
    weights = fresh.encrypt_tensor(np.ones((1, 2)), keys.public, seed=3)
    result = big @ weights
    assert result.shape == (big.shape[0], 2)
    assert not fresh._constant("plain-matrices", dict)


# -- message bounds of views -----------------------------------------------------------------------
VIEWS = [
    ("index", lambda x: x[:, :, None]),
    ("index-front", lambda x: x[None, :, :]),
    ("fancy", lambda x: x[np.array([2, 0, 2])]),
    ("slice", lambda x: x[1:, ::2]),
    ("transpose", lambda x: x.T),
    ("transpose-index", lambda x: x.T[:, :, None]),
    ("reshape", lambda x: x.reshape(2, 6)),
    ("broadcast", lambda x: x.broadcast_to((2, 3, 4))),
]


@pytest.mark.parametrize("first", [False, True], ids=["view-first", "source-first"])
@pytest.mark.parametrize(("name", "view"), VIEWS, ids=[name for name, _ in VIEWS])
def test_views_read_the_message_bound_of_their_source(
    setup: tuple[IntegerVectorScheme, Any], name: str, view: Any, first: bool
) -> None:
    """A view's message bound (read through its source) is the bound computed on the view's
    own arrays, and so is everything computed from it (a product)."""
    scheme, keys = setup
    x = scheme.encrypt_tensor(np.linspace(-2.5, 2.5, 12).reshape(3, 4), keys.public, seed=5)
    x = x * x  # a product: noise of its own
    if first:
        x.message_bound()
    seen = view(x)
    reference = unlinked(seen)
    assert (
        np.asarray(seen.message_bound()).tobytes()
        == np.asarray(reference.message_bound()).tobytes()
    )
    assert np.shape(seen.message_bound()) == seen.shape
    assert fields(seen * seen) == fields(reference * unlinked(seen))


# -- additions -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "plain",
    [0.5, -0.25, np.float64(1.5), np.array([0.5, -1.0, 2.0, 0.0]), np.ones((2, 1, 1))],
    ids=["float", "negative", "numpy-scalar", "per-item", "enlarging"],
)
def test_plain_sums_in_place_are_the_joined_sums(
    setup: tuple[IntegerVectorScheme, Any], plain: Any
) -> None:
    """The top of a copy plus the plaintext, in place: the bits of the new top joined to the
    bottom (what a plaintext that enlarges the batch still takes)."""
    scheme, keys = setup
    x = scheme.encrypt_tensor(np.linspace(-1, 1, 12).reshape(3, 4), keys.public, seed=6)
    got = x + plain
    encoded, _ = x.slot_plaintext(plain, x.scale_int)
    top = x.data[..., :1] + encoded * scheme.params.w
    batch = top.shape[:-1]
    data = np.concatenate([top, np.broadcast_to(x.data[..., 1:], (*batch, 1))], axis=-1)
    assert got.data.tobytes() == data.tobytes() and got.shape == batch
    assert got.noise.tobytes() == (np.broadcast_to(x.noise, batch) + 0.0).tobytes()
    assert not np.shares_memory(got.data, x.data)


def test_differences_are_sums_of_the_negation(setup: tuple[IntegerVectorScheme, Any]) -> None:
    scheme, keys = setup
    a = scheme.encrypt_tensor(np.linspace(-3, 3, 8).reshape(2, 4), keys.public, seed=7)
    b = scheme.encrypt_tensor(np.linspace(2, -1, 4), keys.public, seed=8) * 0.5
    for left, right in ((a, b), (b, a), (a, a), (a * a, a)):
        assert fields(left - right) == fields(left + (-right))


# -- slope bounds ----------------------------------------------------------------------------------
def largest_one_end_at_a_time(coefficients: list[float], reach: Any) -> Any:
    """``_largest_on_interval`` as first written: each end of the interval on its own."""
    coarse = scheme_module._magnitude_on_interval(coefficients, reach)
    degree = len(coefficients) - 1
    while degree > 0 and coefficients[degree] == 0.0:
        degree -= 1
    if degree < 1:
        return coarse
    ends = reach * 0.0
    for sign in (1.0, -1.0):
        value = reach * 0.0
        for c in reversed(coefficients[: degree + 1]):
            value = value * (reach * sign) + c
        ends = ends.clip(min=abs(value))
    for point, height in scheme_module._turning_points(tuple(coefficients[: degree + 1])):
        inside = (reach >= point * (1 - 1e-9)).astype("float64")
        ends = ends.clip(min=inside * height)
    tight = ends * (1.0 + 1e-6) + coarse * 1e-12
    return tight.clip(max=coarse)


@pytest.mark.parametrize(
    "coefficients",
    [[0.25, 0.0, -1 / 16], [0.25, -0.1, 0.0], [0.3, 0.0, -0.05, 0.0, 0.004], [0.5], [0.0, 0.0]],
)
@pytest.mark.parametrize("shape", [(), (4,), (3, 4), (4, 4, 1)])
def test_both_ends_at_once_are_each_end_alone(coefficients: list[float], shape: Any) -> None:
    rng = np.random.default_rng(len(shape))
    reach = rng.exponential(3.0, shape)
    if shape:
        flat = reach.reshape(-1)
        flat[:4] = [0.0, np.inf, np.nan, 1e300][: flat.size]
    else:
        reach = np.float64(reach)
    signs = np.array([1.0, -1.0])
    with np.errstate(all="ignore"):
        got = scheme_module._largest_on_interval(coefficients, reach, signs)
        want = largest_one_end_at_a_time(coefficients, reach)
    assert type(got) is type(want) and np.shape(got) == np.shape(want)
    assert np.asarray(got).tobytes() == np.asarray(want).tobytes()


def test_elementwise_extremes_are_clip() -> None:
    rng = np.random.default_rng(2)
    left = rng.normal(size=12)
    right = rng.normal(size=12)
    left[:3] = [np.nan, 0.0, -0.0]
    right[:3] = [1.0, -0.0, np.nan]
    for got, want in (
        (elementwise_min(left, right), left.clip(max=right)),
        (elementwise_max(left, right), left.clip(min=right)),
        (elementwise_max(np.float64(2.0), right), np.float64(2.0).clip(min=right)),
    ):
        assert np.asarray(got).tobytes() == np.asarray(want).tobytes()


# -- products and polynomials ------------------------------------------------------------------
def product_probable_as_written(
    self: IntegerVectorScheme,
    left: Ciphertext,
    right: Ciphertext,
    mu_a: Any,
    mu_b: Any,
    h_abs: float,
    r: int,
    key_l1: float,
    l2: Any,
    cross: Any = None,
) -> tuple[Any, Any]:
    """``_product_probable`` written out, without the shared ``e_a e_b / w`` or the skipped
    ``1.0 *``."""
    p = self.params
    det_a, sg_a = left.probable_parts()
    det_b, sg_b = right.probable_parts()
    w_a, w_b = left.noise, right.noise
    det = (h_abs * (mu_a * det_b + mu_b * det_a + w_a * w_b / p.w) / r + key_l1 / 2) * SAFETY
    sg = (h_abs * (mu_a * sg_b + mu_b * sg_a) / r + l2 * p.e_bound) * SAFETY
    return det, sg


def test_products_keep_their_high_probability_bound() -> None:
    """Products and inner products (sum |H| of 1 and more), fixed point and integer: the bits
    of the high-probability bound written out."""
    scheme = IntegerVectorScheme("default")
    keys = scheme.keygen(seed=12, max_dim=3, dims=(1, 3), products=(1, 3))
    weight = np.array([[2, 0, 1], [0, -1, 0], [1, 0, 3]])
    for h in (None, weight):
        scheme.add_dot_key(keys, 3, h)
    scheme.add_dot_key(keys, 1)
    x = scheme.encrypt(np.array([[1, -2, 3], [4, 0, -1]]), keys.public, dim=3, seed=1)
    y = scheme.encrypt(np.array([[2, 2, -1], [0, 5, 1]]), keys.public, dim=3, seed=2)
    u = scheme.encrypt_tensor(np.linspace(-2, 2, 6).reshape(2, 3), keys.public, seed=3)
    v = scheme.encrypt_tensor(np.linspace(1, -3, 3), keys.public, seed=4)
    n = scheme.encrypt(np.array([3, -4, 5]), keys.public, seed=5)
    cases = [
        lambda: x.dot(y),
        lambda: x.dot(y, weight),
        lambda: u * v,
        lambda: u * u,
        lambda: n * n,
        lambda: n.reshape(3, 1).dot(n.reshape(3, 1)),
    ]
    for compute in cases:
        got = fields(compute())
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(IntegerVectorScheme, "_product_probable", product_probable_as_written)
            assert got == fields(compute())


def test_polyval_shift_is_kept_per_degree(setup: tuple[IntegerVectorScheme, Any]) -> None:
    scheme, keys = setup
    for spread in (0.5, 12.0):
        x = scheme.encrypt_tensor(np.linspace(-spread, spread, 6), keys.public, seed=9)
        for degree in (3, 2, 5, 3):
            assert scheme.polyval_shift(x, degree) == scheme.polyval_shift(unlinked(x), degree)
        assert x.polyval_shifts is not None and set(x.polyval_shifts) == {2, 3, 5}


@pytest.mark.parametrize(
    ("slope", "curvature"),
    [
        ([0.25, 0.0, -0.0625], [0.0, -0.125]),
        ([0.3, 0.1, -0.05, 0.0, 0.004], [0.1, -0.1, 0.0, 0.016]),
        ([0.25], [0.0]),
        ([-0.5, 0.0], [0.0]),
    ],
)
@pytest.mark.parametrize("shape", [(), (5,), (4, 4, 1)])
def test_two_magnitudes_are_each_on_its_own(
    slope: list[float], curvature: list[float], shape: Any
) -> None:
    """The slope's and its derivative's magnitude bounds in one Horner evaluation: each row
    has the bits of its own list's bound, for infinite and NaN reaches too."""
    scheme = IntegerVectorScheme("default")
    steps, margins = scheme._magnitude_plan(slope, curvature)
    rng = np.random.default_rng(3)
    reach = rng.exponential(2.0, shape)
    if shape:
        flat = reach.reshape(-1)
        flat[:5] = [0.0, np.inf, np.nan, 1e300, 5e-324]
    else:
        reach = np.float64(reach)
    with np.errstate(all="ignore"):
        got = scheme_module._two_magnitudes(steps, margins, reach, reach * 0.0)
        for row, values in ((got[0], slope), (got[1], curvature)):
            want = scheme_module._magnitude_on_interval(values, reach)
            assert type(row) is type(want) and np.shape(row) == np.shape(want)
            assert np.asarray(row).tobytes() == np.asarray(want).tobytes()
