"""Bad input to the integer-vector scheme raises a clear framework error, never a wrong result.

Shape and dtype mismatch, NaN/inf, values out of range, the wrong key, the wrong parameter set and
missing evaluation keys. Tests marked ``xfail(strict=True)`` document bugs reported to the scheme's
owner: they turn into failures (XPASS) the moment the bug is fixed, so the marker gets removed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hennframework.exceptions import (
    HennError,
    InputError,
    KeyMismatchError,
    NoiseBudgetExhaustedError,
    OverflowRiskError,
)
from hennframework.schemes.integer_vector import IntegerVectorParams, IntegerVectorScheme

pytestmark = pytest.mark.filterwarnings(
    "ignore::hennframework.exceptions.InsecureParametersWarning"
)

INT64_MIN = np.iinfo(np.int64).min


@pytest.fixture(scope="module")
def scheme() -> IntegerVectorScheme:
    return IntegerVectorScheme("default")


@pytest.fixture(scope="module")
def keys(scheme: IntegerVectorScheme) -> Any:
    return scheme.keygen(seed=21, max_dim=4, dims=(1, 2, 4), products=(1, 4))


@pytest.fixture(scope="module")
def other_keys(scheme: IntegerVectorScheme) -> Any:
    return scheme.keygen(seed=22, max_dim=4, dims=(1, 4), products=(1,))


@pytest.fixture(scope="module")
def seed_scheme() -> IntegerVectorScheme:
    return IntegerVectorScheme("seed")


@pytest.fixture()
def reals(scheme: IntegerVectorScheme, keys: Any) -> Any:
    return scheme.encrypt_tensor(np.array([1.0, 2.0]), keys.public)


@pytest.fixture()
def integers(scheme: IntegerVectorScheme, keys: Any) -> Any:
    return scheme.encrypt(np.array([3, 5]), keys.public)


# -- shape and dtype ------------------------------------------------------------------------------
def test_vector_length_mismatch_on_encrypt(scheme: IntegerVectorScheme, keys: Any) -> None:
    with pytest.raises(InputError, match="length 4"):
        scheme.encrypt(np.ones((2, 3)), keys.public, dim=4)


def test_batch_shape_mismatch(scheme: IntegerVectorScheme, keys: Any, reals: Any) -> None:
    three = scheme.encrypt_tensor(np.ones(3), keys.public)
    for operation in (
        lambda: reals + three,
        lambda: reals - three,
        lambda: reals * three,
        lambda: reals + np.ones(3),
        lambda: reals * np.ones(3),
        lambda: np.ones((2, 3)) @ reals,
        lambda: reals @ np.ones((3, 1)),
    ):
        with pytest.raises(InputError):
            operation()


def test_vector_length_mismatch_between_ciphertexts(scheme: IntegerVectorScheme, keys: Any) -> None:
    two = scheme.encrypt(np.ones((1, 2)), keys.public, dim=2)
    four = scheme.encrypt(np.ones((1, 4)), keys.public, dim=4)
    with pytest.raises(InputError, match="lengths differ"):
        _ = two + four


def test_scatter_add_length_mismatch(reals: Any, scheme: IntegerVectorScheme, keys: Any) -> None:
    values = scheme.encrypt_tensor(np.ones(2), keys.public)
    with pytest.raises(InputError):
        reals.scatter_add(np.array([0, 1, 1]), values)


def test_scatter_add_scale_mismatch(
    reals: Any, integers: Any, scheme: IntegerVectorScheme, keys: Any
) -> None:
    try:
        result = reals.scatter_add(np.array([0]), integers[:1])
    except InputError:
        return
    decrypted = scheme.decrypt_tensor(result, keys.secret)
    assert decrypted[0] == pytest.approx(4.0), f"scatter_add of 3 into 1.0 gave {decrypted[0]}"


@pytest.mark.parametrize(
    "bad",
    [
        np.array([1.0, None], dtype=object),
        np.array(["1", "2"]),
        np.array([1j, 2j]),
        np.array([2**70, 1], dtype=object),
    ],
    ids=["object", "str", "complex", "huge-python-int"],
)
def test_non_numeric_dtypes(scheme: IntegerVectorScheme, keys: Any, reals: Any, bad: Any) -> None:
    with pytest.raises(InputError, match="numeric"):
        scheme.encrypt_tensor(bad, keys.public)
    with pytest.raises(InputError, match="numeric"):
        scheme.encrypt(bad, keys.public)
    with pytest.raises(InputError):
        _ = reals * bad
    with pytest.raises(InputError):
        _ = reals + bad


def test_subtracting_unsigned_integers(
    scheme: IntegerVectorScheme, keys: Any, integers: Any
) -> None:
    result = integers - np.array([3, 3], dtype=np.uint8)
    assert scheme.decrypt(result, keys.secret).ravel().tolist() == [0, 2]


# -- NaN and infinity ------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values(scheme: IntegerVectorScheme, keys: Any, reals: Any, bad: float) -> None:
    operations = [
        lambda: scheme.encrypt_tensor(np.array([1.0, bad]), keys.public),
        lambda: scheme.encrypt(np.array([[1.0, bad]]), keys.public, dim=2, scale=1000),
        lambda: scheme.encrypt(np.array([bad]), keys.secret),
        lambda: reals + bad,
        lambda: reals - np.array([bad, 0.0]),
        lambda: reals * bad,
        lambda: reals * np.array([1.0, bad]),
        lambda: np.array([[bad, 1.0]]) @ reals,
        lambda: reals.polyval([0.5, bad]),
        lambda: scheme.add_dot_key(keys, 2, np.array([[1.0, bad], [0.0, 1.0]])),
        lambda: scheme.add_linear_key(keys, np.array([[1.0, bad]])),
    ]
    for operation in operations:
        with pytest.raises(InputError):
            operation()


# -- values out of range ---------------------------------------------------------------------------
def test_plaintext_range_boundary(scheme: IntegerVectorScheme, keys: Any) -> None:
    limit = scheme.params.max_plaintext
    exact = np.array([limit, -limit])
    assert scheme.decrypt(scheme.encrypt(exact, keys.public), keys.secret).ravel().tolist() == [
        limit,
        -limit,
    ]
    for beyond in (limit + 1, -limit - 1, 2**62, 2**63 - 1):
        with pytest.raises(InputError, match=r"out of range|exceeds"):
            scheme.encrypt(np.array([beyond]), keys.public)
    with pytest.raises(InputError, match="out of range"):
        scheme.encrypt_tensor(np.array([(limit + 1) / scheme.params.scale]), keys.public)
    with pytest.raises(InputError):
        scheme.encrypt_tensor(np.array([1e300]), keys.public)
    with pytest.raises(InputError):
        scheme.encrypt(np.array([2**63 + 5], dtype=np.uint64), keys.public)


def test_int64_min_is_refused(scheme: IntegerVectorScheme, keys: Any, integers: Any) -> None:
    attempts = {
        "encrypt": lambda: scheme.encrypt(np.array([INT64_MIN]), keys.public),
        "ct + p": lambda: integers + np.array([INT64_MIN, 0]),
        "ct * p": lambda: integers * np.array([INT64_MIN, 1]),
        "P @ ct": lambda: np.array([[INT64_MIN, 1]]) @ integers,
    }
    silent = []
    for what, attempt in attempts.items():
        try:
            result = attempt()
            scheme.decrypt(result, keys.secret)
        except (InputError, OverflowRiskError):
            continue
        silent.append(what)
    assert not silent, f"accepted -2**63 without an error: {silent}"


def test_large_products_are_refused_not_wrapped(scheme: IntegerVectorScheme, keys: Any) -> None:
    big = scheme.encrypt_tensor(np.array([200.0]), keys.public)
    with pytest.raises(OverflowRiskError):
        _ = big * big  # 40000 * 2**12 * 2**40 > 2**62
    with pytest.raises(OverflowRiskError):
        _ = big * np.array([2**30])


@pytest.mark.parametrize("name", ["default", "seed", "vhe"])
def test_the_inner_product_that_decrypted_wrong_in_the_2017_code(name: str) -> None:
    """The code of Trask's 2017 post decrypted the inner product of encryptions of 1000.0 (m = 4)
    to -1.1e12; here it is exact (4e6) or refused."""
    scheme = IntegerVectorScheme(name)
    keys = scheme.keygen(seed=3, max_dim=4, dims=(1, 4), products=(1, 4))
    scheme.add_dot_key(keys, 4)
    p = scheme.params
    try:
        a = scheme.encrypt(np.full((1, 4), 1000.0), keys.public, dim=4, scale=p.scale)
    except InputError:
        assert 1000 * p.scale > p.max_plaintext
        return
    outcomes = {}
    for what, operation in {"dot": lambda: a.dot(a), "product": lambda: a * a}.items():
        try:
            decrypted = scheme.decrypt_tensor(operation(), keys.secret)
        except HennError as error:
            outcomes[what] = type(error).__name__
            continue
        expected = 4e6 if what == "dot" else np.full(4, 1e6)
        np.testing.assert_array_equal(decrypted.ravel(), np.ravel(expected))
        outcomes[what] = "exact"
    assert set(outcomes.values()) <= {"exact", "OverflowRiskError", "NoiseBudgetExhaustedError"}
    # as integers (scale 1): exact whenever the tracked bound allows decryption, refused otherwise
    ints = scheme.encrypt(np.full((1, 4), 1000), keys.public, dim=4)
    dot = ints.dot(ints)
    if dot.max_noise * 2 < p.w:
        assert scheme.decrypt(dot, keys.secret).ravel().tolist() == [4_000_000]
    else:
        with pytest.raises(NoiseBudgetExhaustedError):
            scheme.decrypt(dot, keys.secret)
    if name != "seed":  # w = 2**40 leaves room: these sets must compute it
        assert dot.max_noise * 2 < p.w


# -- wrong key, wrong parameter set ------------------------------------------------------------------
def test_wrong_key(scheme: IntegerVectorScheme, keys: Any, other_keys: Any, reals: Any) -> None:
    foreign = scheme.encrypt_tensor(np.array([1.0, 2.0]), other_keys.public)
    for operation in (
        lambda: scheme.decrypt(reals, other_keys.secret),
        lambda: scheme.decrypt_tensor(reals, other_keys),
        lambda: reals + foreign,
        lambda: reals * foreign,
        lambda: reals.scatter_add(np.array([0]), foreign[:1]),
        lambda: reals.switch_key(scheme.make_switch_key(other_keys, keys)),
    ):
        with pytest.raises(KeyMismatchError):
            operation()
    with pytest.raises(InputError, match="SecretKey"):
        scheme.decrypt(reals, keys.public)


def test_wrong_parameter_set(scheme: IntegerVectorScheme, seed_scheme: IntegerVectorScheme) -> None:
    # key ids are fingerprints over the parameter set too, so they differ; give both keys one id
    # (as a forger could) so that only the parameter check can catch the mix
    keys = scheme.keygen(seed=99, max_dim=1)
    seed_keys = seed_scheme.keygen(seed=99, max_dim=1)
    assert keys.key_id != seed_keys.key_id
    seed_keys.secret.key_id = seed_keys.public.key_id = seed_keys.key_id = keys.key_id
    ours = scheme.encrypt(np.array([1]), keys.public)
    theirs = seed_scheme.encrypt(np.array([1]), seed_keys.public)
    for operation in (
        lambda: ours + theirs,
        lambda: ours * theirs,
        lambda: scheme.decrypt(theirs, keys.secret),
        lambda: scheme.decrypt(theirs, seed_keys.secret),
        lambda: scheme.encrypt(np.array([1]), seed_keys.public),
        lambda: scheme.register_public_key(seed_keys.public),
    ):
        with pytest.raises(KeyMismatchError):
            operation()


def test_secret_key_of_another_parameter_set(
    scheme: IntegerVectorScheme, seed_scheme: IntegerVectorScheme
) -> None:
    seed_keys = seed_scheme.keygen(seed=98, max_dim=1)
    try:
        scheme.encrypt(np.array([1]), seed_keys.secret)
    except KeyMismatchError:
        return
    raise AssertionError("encrypt accepted a secret key of the 'seed' set in a 'default' scheme")


# -- missing evaluation keys -------------------------------------------------------------------------
def test_missing_evaluation_keys_name_the_fix(scheme: IntegerVectorScheme, keys: Any) -> None:
    pair = scheme.encrypt(np.ones((1, 2)), keys.public, dim=2)  # no product key for m = 2
    with pytest.raises(KeyMismatchError, match="add_product_key"):
        _ = pair * pair
    four = scheme.encrypt(np.ones((1, 4)), keys.public, dim=4)
    with pytest.raises(KeyMismatchError, match="add_dot_key"):
        four.dot(four, np.diag([1, 2, 3, 4]))
    with pytest.raises(KeyMismatchError, match="add_linear_key"):
        four.linear_transform(np.ones((2, 4), dtype=np.int64))
    bare = scheme.keygen(seed=23, max_dim=1, dims=(1,), products=())
    single = scheme.encrypt_tensor(np.ones(2), bare.public)
    with pytest.raises(KeyMismatchError, match="add_product_key"):
        _ = single * single


def test_missing_encryption_key_names_a_real_method(scheme: IntegerVectorScheme, keys: Any) -> None:
    with pytest.raises(KeyMismatchError) as caught:
        scheme.encrypt(np.ones((1, 3)), keys.public, dim=3)
    assert "add_encryption_key" in str(caught.value), str(caught.value)


# -- integer ciphertexts and real plaintexts -----------------------------------------------------------
def test_integer_ciphertext_with_real_plaintext(
    scheme: IntegerVectorScheme, keys: Any, integers: Any
) -> None:
    wrong = []
    attempts = {
        "* 0.5": (lambda: integers * 0.5, [1.5, 2.5]),
        "+ 0.5": (lambda: integers + 0.5, [3.5, 5.5]),
        "@ [[0.5], [0.25]]": (lambda: integers @ np.array([[0.5], [0.25]]), [2.75]),
        "polyval": (lambda: integers.polyval([0.5, 0.5]), [2.0, 3.0]),
    }
    for what, (attempt, expected) in attempts.items():
        try:
            result = scheme.decrypt_tensor(attempt(), keys.secret)
        except InputError:
            continue
        if not np.allclose(result, expected, atol=1 / scheme.params.scale):
            wrong.append(f"{what}: {result.tolist()} (expected {expected})")
    assert not wrong, wrong


# -- other refusals ------------------------------------------------------------------------------------
def test_other_refusals(scheme: IntegerVectorScheme, keys: Any, reals: Any, integers: Any) -> None:
    with pytest.raises(InputError, match="scales"):
        _ = reals + integers
    with pytest.raises(InputError):
        reals.rescale(3)
    with pytest.raises(InputError, match="unknown keygen"):
        scheme.keygen(seed=1, colour="blue")
    with pytest.raises(InputError):
        IntegerVectorScheme("no-such-set")
    with pytest.raises(InputError, match=r"get_backend\('numpy'\)"):
        IntegerVectorScheme("default", backend="numpy")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        IntegerVectorParams(
            name="bad", w=1, scale=0, k=0, t_bound=-1, a_bound=1, e_bound=1, gadget_bits=0
        )
    with pytest.raises(InputError, match="modulus"):
        IntegerVectorParams(
            name="lwe",
            w=2**20,
            scale=1,
            k=1,
            t_bound=1,
            a_bound=1,
            e_bound=1,
            gadget_bits=8,
            modulus=2**64,
        )
    with pytest.raises(InputError, match="integers"):
        scheme.add_dot_key(keys, 2, np.array([[0.5, 0.0], [0.0, 1.0]]))
    with pytest.raises(InputError):
        scheme.decrypt_tensor(np.ones(2), keys.secret)
    with pytest.raises(InputError):
        scheme.encrypt(np.ones(2), "not a key")
    with pytest.raises(InputError):
        scheme.encrypt(np.ones((1, 4)), keys.secret, dim=5)  # beyond the key's max_dim


def test_sum_axis_out_of_range(scheme: IntegerVectorScheme, keys: Any) -> None:
    table = scheme.encrypt_tensor(np.arange(6.0).reshape(2, 3), keys.public)
    for axis in (2, -3, 5):
        try:
            table.sum(axis=axis)
        except (InputError, IndexError):
            continue
        raise AssertionError(f"sum(axis={axis}) of a 2-D batch did not raise")


def test_dim_one_vectors_follow_the_documented_shape(
    scheme: IntegerVectorScheme, keys: Any
) -> None:
    ciphertext = scheme.encrypt(np.array([[1], [2], [3]]), keys.public, dim=1)
    assert ciphertext.shape == (3,) and ciphertext.dim == 1, ciphertext.shape


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("batch", [1, 300])  # the small-batch path and the general one
def test_a_bound_that_is_not_a_number_refuses_to_decrypt(
    scheme: IntegerVectorScheme, keys: Any, bad: float, batch: int
) -> None:
    """A noise bound that overflowed to inf or NaN refuses decryption; NaN compares False with
    everything, so a check written as "bound >= w/2" would let it through."""
    import copy

    ciphertext = scheme.encrypt_tensor(np.linspace(-1, 1, batch), keys.public)
    decrypted = scheme.decrypt_tensor(ciphertext, keys.secret)
    assert np.allclose(decrypted, np.linspace(-1, 1, batch), atol=1e-3)
    broken = copy.copy(ciphertext)
    noise = np.array(scheme.backend.to_numpy(ciphertext.noise), dtype=np.float64)
    noise.flat[batch // 2] = bad
    broken.noise = scheme.backend.asarray(noise)
    broken.noise_det = broken.noise_sg = None  # decryption reads the worst-case bound alone
    broken._decryption_bound = None
    with pytest.raises(NoiseBudgetExhaustedError, match="refusing to decrypt") as raised:
        scheme.decrypt_tensor(broken, keys.secret)
    assert "1 of" in str(raised.value)
    with pytest.raises(NoiseBudgetExhaustedError):
        scheme.refresh(broken, keys)
