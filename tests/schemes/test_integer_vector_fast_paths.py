"""The integer-vector scheme's shortcuts compute what the general code computes, bit for bit.

Digits read off the bytes of a word, powers kept for the next polynomial, scalar factors
encoded once, and bounds computed once per ciphertext: each is compared here with the general
computation on the same inputs (the words, the worst-case noise bound and both
high-probability parts, the coefficient bound).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hennframework.schemes.integer_vector import IntegerVectorScheme
from hennframework.schemes.integer_vector.ciphertext import Ciphertext
from hennframework.schemes.integer_vector.params import PARAMETER_SETS

pytestmark = pytest.mark.filterwarnings(
    "ignore::hennframework.exceptions.InsecureParametersWarning"
)

LIMIT = (1 << 62) - 1


def fields(ciphertext: Ciphertext) -> tuple[Any, ...]:
    """Everything a ciphertext carries, as bytes and ints (compared exactly)."""
    return (
        np.asarray(ciphertext.data).tobytes(),
        np.asarray(ciphertext.noise, dtype=np.float64).tobytes(),
        np.asarray(ciphertext.noise_det, dtype=np.float64).tobytes(),
        np.asarray(ciphertext.noise_sg, dtype=np.float64).tobytes(),
        ciphertext.coeff_bound,
        ciphertext.scale_int,
        ciphertext.shape,
    )


def twin(ciphertext: Ciphertext) -> Ciphertext:
    """A new ciphertext object with the same contents and nothing computed yet."""
    return ciphertext.copy()


@pytest.fixture(scope="module")
def setup() -> tuple[IntegerVectorScheme, Any]:
    scheme = IntegerVectorScheme("default")
    return scheme, scheme.keygen(seed=3)


@pytest.mark.parametrize("bits", [8, 16, 32])
@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.integers(-LIMIT, LIMIT), min_size=1, max_size=30), data=st.data())
def test_packed_digits_are_the_gadget_digits(bits: int, values: list[int], data: Any) -> None:
    """Byte-aligned bases: the words of v + H, top bit flipped, are ``decompose``'s digits."""
    params = dataclasses.replace(PARAMETER_SETS["default"], name=f"b{bits}", gadget_bits=bits)
    scheme = IntegerVectorScheme(params)
    edges = data.draw(st.lists(st.sampled_from([LIMIT, -LIMIT, 0, -1, 1]), max_size=3))
    array = np.array(values + edges, dtype=np.int64)
    source = np.stack([array, array[::-1]], axis=-1)[::-1]  # not contiguous
    packed = scheme._packed_digits(source)
    assert packed is not None and packed.dtype == np.dtype(f"int{bits}")
    assert np.array_equal(packed.astype(np.int64), scheme.decompose(source))


def test_other_bases_use_the_general_digits() -> None:
    assert IntegerVectorScheme("seed")._packed_digits(np.zeros((2, 2), np.int64)) is None


def test_polynomial_powers_are_shared_exactly(setup: tuple[IntegerVectorScheme, Any]) -> None:
    """A sigmoid's derivative reuses the forward pass's powers: the same bits as computing
    them again, for a polynomial on a shifted base too (large inputs)."""
    scheme, keys = setup
    rng = np.random.default_rng(0)
    for spread in (0.5, 12.0):  # 12: polyval_shift moves the powers to x / 2**k
        x = scheme.encrypt_tensor(rng.normal(0, spread, (4, 3)), keys.public)
        forward, derivative = [0.5, 0.25, 0.0, -1 / 48], [0.25, 0.0, -1 / 16]
        fresh = twin(x)
        assert fields(x.polyval(forward)) == fields(fresh.polyval(forward))
        assert x.polyval_powers  # kept for the next polynomial of x
        assert fields(x.polyval(derivative)) == fields(twin(x).polyval(derivative))
        assert fields(x.polyval(forward)) == fields(twin(x).polyval(forward))  # kept powers


def test_scalar_factors_are_encoded_once(setup: tuple[IntegerVectorScheme, Any]) -> None:
    """A kept scalar factor gives the bits of the same factor given per item."""
    scheme, keys = setup
    x = scheme.encrypt_tensor(np.linspace(-3, 3, 12).reshape(4, 3), keys.public)
    for constant in (0.1, -0.015, 3.0, 2.0**-5):
        first = x.multiply_constant(constant)
        again = x.multiply_constant(constant)
        per_item = scheme.multiply_plain(x, np.full(x.shape, constant), scheme.fine_scale)
        assert fields(first) == fields(again) == fields(per_item)
        assert fields(x * constant) == fields(x * np.full(x.shape, constant))


def test_bounds_computed_once_follow_the_scheme(setup: tuple[IntegerVectorScheme, Any]) -> None:
    """The kept decryption bound is the one the scheme's current rule gives."""
    scheme, keys = setup
    x = scheme.encrypt_tensor(np.ones((3, 2)), keys.public)
    product = x * x * x
    assert product.message_bound() is product.message_bound()
    assert np.array_equal(product.message_bound(), twin(product).message_bound())
    probable = product.noise_budget
    scheme.worst_case = True
    try:
        worst = product.noise_budget
        assert worst == twin(product).noise_budget and worst <= probable
    finally:
        scheme.worst_case = False
    assert product.noise_budget == probable
