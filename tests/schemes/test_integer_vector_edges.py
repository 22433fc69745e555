"""Edges of the integer-vector scheme: exact results or refusals, never a silent wrong answer.

* the reported reproducer (a 1 x 8 plaintext of 262144.0 times an encrypted 8 x 1 of 1/4096),
  on both array backends and in both operand orders;
* property tests aimed at the edges: large plaintext operands with tiny encrypted ones, long
  inner dimensions (up to 2048), ``P @ Enc`` and ``Enc @ P`` over batch shapes, integer and real
  plaintexts, on every parameter set; each decryption is compared with the exact message
  (Python Fractions) and the tracked noise bound with the noise measured exactly with the key;
* refusals where a bound cannot be proved (tensor entries, key-switch sources, divisors);
* the rule for adding plaintexts to m-vectors, including the ambiguous case.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hennframework.backend import default_backend
from hennframework.exceptions import InputError, NoiseBudgetExhaustedError, OverflowRiskError
from hennframework.registry import get_backend
from hennframework.scheme import KeySet
from hennframework.schemes.integer_vector import IntegerVectorScheme
from hennframework.schemes.integer_vector.ciphertext import LIMIT, Ciphertext
from hennframework.testing.chains import CHAIN_PARAMETER_SETS, encode, plain_product

pytestmark = pytest.mark.filterwarnings(
    "ignore::hennframework.exceptions.InsecureParametersWarning"
)

SETS = ["default", "seed", "vhe", "k2-b16"]
LONG = [100, 257, 1000, 2048]


def xp_backend() -> Any:
    from hennframework_backends._xp_backend import XpBackend

    return XpBackend()


@pytest.fixture(scope="module", params=SETS)
def setup(request: pytest.FixtureRequest) -> tuple[IntegerVectorScheme, KeySet]:
    scheme = IntegerVectorScheme(CHAIN_PARAMETER_SETS[request.param])
    return scheme, scheme.keygen(seed=21, max_dim=3, dims=(1, 2, 3), products=(1,))


# -- exact checks ----------------------------------------------------------------------------------
def true_noise(ciphertext: Ciphertext, messages: Any, keys: KeySet) -> list[Fraction]:
    """max over slots of |S c - w mu| per batch item, exactly (Python ints and Fractions)."""
    m, w = ciphertext.dim, ciphertext.params.w
    s = [[int(v) for v in row] for row in keys.secret.matrix(m).tolist()]
    data = np.asarray(ciphertext.scheme.backend.to_numpy(ciphertext.data))
    mu = np.broadcast_to(np.asarray(messages, dtype=object), (*ciphertext.shape, m))
    out = []
    for index in np.ndindex(*ciphertext.shape):
        c = [int(v) for v in data[index]]
        out.append(
            max(
                abs(sum(a * b for a, b in zip(s[i], c, strict=True)) - w * Fraction(mu[index][i]))
                for i in range(m)
            )
        )
    return out


def assert_exact(ciphertext: Ciphertext, messages: Any, keys: KeySet, what: str) -> None:
    """Tracked bound >= true noise (exactly); decryption within 1/2 + bound/w of the message
    (equal to it for integer messages), or refused because the bound reached w/2."""
    scheme = ciphertext.scheme
    w = scheme.params.w
    tracked = np.broadcast_to(np.asarray(ciphertext.noise, dtype=np.float64), ciphertext.shape)
    for noise, bound in zip(true_noise(ciphertext, messages, keys), tracked.ravel(), strict=True):
        assert noise <= Fraction(float(bound)), f"{what}: true noise {noise} > bound {bound}"
    assert scheme.backend.abs_max(ciphertext.data) <= ciphertext.coeff_bound, what
    if float(tracked.max(initial=0.0)) * 2 >= w:
        with pytest.raises(NoiseBudgetExhaustedError):
            scheme.decrypt(ciphertext, keys.secret)
        return
    got = scheme.decrypt(ciphertext, keys.secret)
    mu = np.broadcast_to(np.asarray(messages, dtype=object), got.shape)
    bounds = np.broadcast_to(tracked[..., None], got.shape)
    for index in np.ndindex(*got.shape):
        allowed = Fraction(1, 2) + Fraction(float(bounds[index])) / w
        assert abs(int(got[index]) - Fraction(mu[index])) <= allowed, (
            f"{what}: decrypted {int(got[index])}, exact message {mu[index]} at {index}"
        )


# -- the reported reproducer -------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numpy", "xp"])
@pytest.mark.parametrize("seed", range(8))
def test_reported_plaintext_matmul_is_exact(backend: str, seed: int) -> None:
    """X (1 x 8 of 262144.0) @ Enc(W) (8 x 1 of 1/4096) decrypts to exactly 512 (it gave 511 or
    515 with 6 bits of budget left when a 31-bit limb times P wrapped in int64)."""
    scheme = IntegerVectorScheme(
        "default", backend=xp_backend() if backend == "xp" else get_backend(backend)
    )
    keys = scheme.keygen(seed=seed)
    x = np.full((1, 8), 262144.0)
    w = scheme.encrypt_tensor(np.full((8, 1), 1 / 4096), keys.public, seed=seed)
    product = x @ w
    assert scheme.decrypt_tensor(product, keys.secret).tolist() == [[512.0]]
    assert product.noise_budget > 0
    assert scheme.decrypt_tensor(w.T @ x.T, keys.secret).tolist() == [[512.0]]
    assert_exact(product, [[[Fraction(512 * 4096)]]], keys, "X @ Enc(W)")
    # * 0.001 encodes the constant at f = 4096 (round(4.096) = 4): exactly 512 * 4 / 4096 = 0.5,
    # within the documented error |p| err + |a| / (2 f) = 0.0625 of 0.512
    scaled = scheme.decrypt_tensor(product * 0.001, keys.secret)[0, 0]
    assert scaled == 0.5 and abs(scaled - 0.512) <= 512 / (2 * 4096)
    # multiply_constant encodes it at f**2: 0.512 within fixed-point error
    fine = scheme.decrypt_tensor(product.multiply_constant(0.001), keys.secret)[0, 0]
    assert abs(fine - 0.512) <= 512 / (2 * 4096**2) + 1 / 4096


# -- property tests: large plaintexts, tiny encryptions, long inner dimensions -----------------------
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_plaintext_matmul_edges(setup: tuple[IntegerVectorScheme, KeySet], data: Any) -> None:
    """``P @ Enc(x)`` and ``Enc(x) @ P`` with |P| sized so results land near 2**62: exact, or
    refused only when the proved bound of the result reaches 2**62."""
    scheme, keys = setup
    p = scheme.params
    inner = data.draw(st.one_of(st.integers(1, 16), st.sampled_from(LONG)), label="inner")
    on_left = data.draw(st.booleans(), label="P on the left")
    two_d = data.draw(st.booleans(), label="2-D batch")
    fixed = data.draw(st.booleans(), label="fixed-point ciphertext")
    integer_p = data.draw(st.booleans(), label="integer P")
    scale = p.scale if fixed else 1
    batch = ((inner, 2) if on_left else (2, inner)) if two_d else (inner,)
    units = data.draw(st.integers(0, 4), label="|x| in units")  # tiny encrypted values
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="rng"))
    x_int = rng.integers(-units, units, batch, endpoint=True)
    ciphertext = scheme.encrypt(x_int / scale if fixed else x_int, keys.public, scale=scale)
    rescaled = fixed and not integer_p  # (sizing only: plain_product decides below)
    # |P| per entry so that coeff_bound * inner * |P_enc| (/ f) lands near 2**result_bits
    result_bits = data.draw(st.integers(40, 64), label="result bits")
    p_enc_bits = result_bits + (p.scale.bit_length() - 1 if rescaled else 0)
    p_enc_bits -= ciphertext.coeff_bound.bit_length() + inner.bit_length() - 1
    top = max(min(p_enc_bits, 52), 1)
    outer = data.draw(st.integers(1, 2), label="outer")
    shape = (outer, inner) if on_left else (inner, outer)
    p_enc = rng.integers(-(2**top), 2**top, shape, endpoint=True)
    plain = p_enc if integer_p else p_enc / p.scale
    # the documented encoding: integer P exactly; real P at f (then rescaled by f)
    plain_exact, divisor, new_scale = plain_product(p, scale, plain)
    try:
        result = plain @ ciphertext if on_left else ciphertext @ plain
    except OverflowRiskError:
        # refused: only if the proved bound of the rounded result reaches 2**62
        row = np.abs(plain_exact).sum(axis=1 if on_left else 0)
        combined = ciphertext.coeff_bound * int(row.max())
        proved = (combined + divisor // 2) // divisor + 1 if divisor > 1 else combined
        assert proved >= LIMIT
        return
    assert result.scale_int == new_scale
    mu = encode(x_int, 1)
    exact = plain_exact @ mu if on_left else mu @ plain_exact
    assert_exact(result, np.asarray(exact / divisor, dtype=object)[..., None], keys, "P @ Enc")


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_plaintext_products_near_the_range(
    setup: tuple[IntegerVectorScheme, KeySet], data: Any
) -> None:
    """Enc(x) * p with |c p| past 2**62 (the 128-bit path) is exact or refused."""
    scheme, keys = setup
    p = scheme.params
    bits = data.draw(st.integers(0, p.max_plaintext.bit_length()), label="|x| bits")
    x = data.draw(st.lists(st.integers(-(2**bits), 2**bits), min_size=1, max_size=3), label="x")
    x = [max(min(v, p.max_plaintext), -p.max_plaintext) for v in x]
    ciphertext = scheme.encrypt(np.array(x) / p.scale, keys.public, scale=p.scale)
    factor = data.draw(st.floats(-(2.0**20), 2.0**20, allow_nan=False), label="p")
    try:
        result = ciphertext * factor
    except OverflowRiskError:
        assert ciphertext.coeff_bound * abs(int(np.rint(factor * p.scale))) // p.scale + 1 >= LIMIT
        return
    p_enc = Fraction(int(np.rint(factor * p.scale)))
    exact = [[Fraction(int(np.rint(v / p.scale * p.scale))) * p_enc / p.scale] for v in x]
    assert_exact(result, exact, keys, "Enc * p")


# -- refusals where no bound can be proved --------------------------------------------------------------
def test_products_with_oversized_tensor_entries_are_refused() -> None:
    """Coefficients near 2**60 squared and divided by w pass 2**62: refused before computing."""
    scheme = IntegerVectorScheme("default")
    keys = scheme.keygen(seed=3)
    big = scheme.encrypt(np.array([scheme.params.max_plaintext]), keys.public)
    with pytest.raises(OverflowRiskError, match="tensor entries"):
        big * big


def test_inner_product_keys_with_weights_past_62_bits_are_refused() -> None:
    """H with entries of 2**50: T^T H T reaches 2**66 with T up to 1000 (vhe), refused at key
    generation; a key whose entries stay below 2**62 (checked in int64) is made."""
    scheme = IntegerVectorScheme("vhe")
    keys = scheme.keygen(seed=3, max_dim=2, dims=(2,), products=())
    with pytest.raises(InputError, match="H is too large"):
        scheme.add_dot_key(keys, 2, np.full((2, 2), 2**50))
    key = scheme.add_dot_key(keys, 2, np.full((2, 2), 2**30))
    assert key.source_columns == 2 * 2 + 1


def test_key_switch_sources_beyond_the_digit_range_are_refused() -> None:
    scheme = IntegerVectorScheme("default")
    keys = scheme.keygen(seed=3)
    key = keys.public.encryption[1]
    with pytest.raises(OverflowRiskError, match="gadget digits"):
        scheme._apply_switch(np.zeros((1, 1), dtype=np.int64), key, LIMIT)


def test_divisors_must_divide_and_fit() -> None:
    scheme = IntegerVectorScheme("default")
    keys = scheme.keygen(seed=3)
    a = scheme.encrypt_tensor(np.array([1.5]), keys.public)
    with pytest.raises(InputError, match="divisor"):
        scheme.multiply(a, a, divisor=3)
    with pytest.raises(InputError, match="encode_scale"):
        scheme.multiply_plain(a, 0.5, encode_scale=0)
    huge = a.derive(a.data, a.noise, scale=2**63)
    with pytest.raises(InputError, match="below 2\\*\\*62"):
        huge.rescale(2**63)


# -- decryption where S c passes 2**62 -------------------------------------------------------------
def exact_decryption(ciphertext: Ciphertext, keys: KeySet) -> list[list[int]]:
    """round(S c / w) per batch item with Python integers (halves cannot occur: |e| < w / 2)."""
    m, w = ciphertext.dim, ciphertext.params.w
    s = [[int(v) for v in row] for row in keys.secret.matrix(m).tolist()]
    data = np.asarray(ciphertext.scheme.backend.to_numpy(ciphertext.data)).reshape(-1, m + 1)
    out = []
    for c in data.tolist():
        sc = [sum(a * b for a, b in zip(row, c, strict=True)) for row in s]
        out.append([(v + w // 2) // w for v in sc])
    return out


def kernel_shifted(scheme: IntegerVectorScheme, ciphertext: Ciphertext, keys: KeySet) -> Ciphertext:
    """The same message and noise with coefficients near 2**61: ``c + [-T u; u]`` (S maps the
    added vector to 0), with ``u`` chosen so that ``|c_top| + t_bound |c_bottom|`` passes 2**62."""
    m = ciphertext.dim
    t = keys.secret.t_for(m)[:, 0].astype(object)
    u = (1 << 61) // int(max(abs(t))) - (1 << 40)
    data = ciphertext.data.astype(object)
    data[..., :m] -= t * u
    data[..., m] += u
    shifted = np.array(data.tolist(), dtype=np.int64)
    out = Ciphertext(
        scheme,
        scheme.backend.asarray(shifted),
        m,
        ciphertext.scale_int,
        ciphertext.noise,
        ciphertext.key_id,
    )
    p = scheme.params
    top, bottom = (int(abs(shifted[..., :m]).max()), int(abs(shifted[..., m:]).max()))
    assert top + p.k * p.t_bound * bottom >= LIMIT  # the case the int64 path cannot prove
    return out


@pytest.mark.parametrize("backend", ["numpy", "xp"])
@pytest.mark.parametrize("m", [1, 3])
def test_decryption_past_62_bits_is_exact(backend: str, m: int) -> None:
    """A ciphertext whose coefficients prove only |S c| < 2**72 decrypts exactly (128-bit
    arithmetic), to the message of the ciphertext it was shifted from."""
    scheme = IntegerVectorScheme(
        "vhe", backend=xp_backend() if backend == "xp" else get_backend("numpy")
    )
    keys = scheme.keygen(seed=4, max_dim=3, dims=(1, 3))
    values = np.arange(-18, 18).reshape(-1, m) * 12345
    fresh = scheme.encrypt(values, keys.public, dim=m, scale=1)
    shifted = kernel_shifted(scheme, fresh, keys)
    got = scheme.decrypt(shifted, keys.secret)
    assert got.reshape(-1, m).tolist() == exact_decryption(shifted, keys)
    assert got.tolist() == scheme.decrypt(fresh, keys.secret).tolist()


def test_decryption_of_messages_past_63_bits_is_refused() -> None:
    """With w = 2**4 and T up to 2**10, S c / w reaches 2**66: refused, never wrapped; the
    same key's messages below 2**63 (S c past 2**63) come back exact."""
    from hennframework.schemes.integer_vector.params import IntegerVectorParams

    def scheme_with_w(bits: int) -> tuple[IntegerVectorScheme, KeySet]:
        params = IntegerVectorParams(
            name=f"w{bits}",
            w=2**bits,
            scale=1,
            k=1,
            t_bound=2**10,
            a_bound=2,
            e_bound=1,
            gadget_bits=8,
        )
        scheme = IntegerVectorScheme(params)
        return scheme, scheme.keygen(seed=5, max_dim=2, dims=(2,))

    for bits, refused in ((4, True), (12, False)):
        scheme, keys = scheme_with_w(bits)
        t = keys.secret.t_for(2)[:, 0]
        assert int(max(abs(t))) >= 64  # S c = T 2**61 reaches 2**67
        data = np.zeros((3, 3), dtype=np.int64)
        data[:, 2] = (1 << 61) - 1
        zero = np.zeros(3)
        ciphertext = Ciphertext(scheme, data, 2, 1, zero, keys.key_id)
        if refused:
            with pytest.raises(OverflowRiskError, match="does not fit in 63 bits"):
                scheme.decrypt(ciphertext, keys.secret)
        else:
            got = scheme.decrypt(ciphertext, keys.secret)
            assert got.tolist() == exact_decryption(ciphertext, keys)


# -- adding plaintexts to m-vectors ------------------------------------------------------------------
@pytest.fixture(scope="module")
def vectors() -> tuple[IntegerVectorScheme, KeySet]:
    scheme = IntegerVectorScheme("default")
    return scheme, scheme.keygen(seed=5, max_dim=3, dims=(1, 2, 3), products=())


def decrypt_sum(scheme: IntegerVectorScheme, keys: KeySet, ct: Ciphertext) -> list[Any]:
    return scheme.decrypt(ct, keys.secret).tolist()  # type: ignore[no-any-return]


def test_plaintext_rule_scalar_and_full_shape(vectors: tuple[IntegerVectorScheme, KeySet]) -> None:
    scheme, keys = vectors
    x = np.array([[1, 2, 3], [4, 5, 6]])
    a = scheme.encrypt(x, keys.public, dim=3)  # batch (2,) of 3-vectors
    assert decrypt_sum(scheme, keys, a + 10) == (x + 10).tolist()
    full = np.array([[1, 0, -1], [2, 2, 2]])
    assert decrypt_sum(scheme, keys, a + full) == (x + full).tolist()  # per item and slot
    per_slot = np.array([7, 8, 9])  # last axis 3 != batch 2: only the slot reading fits
    assert decrypt_sum(scheme, keys, a + per_slot) == (x + per_slot).tolist()
    per_item = np.array([[100], [200]])  # last axis 1: one value per item
    assert decrypt_sum(scheme, keys, a + per_item) == (x + per_item).tolist()
    assert decrypt_sum(scheme, keys, a - per_item) == (x - per_item).tolist()
    assert decrypt_sum(scheme, keys, per_slot - a) == (per_slot - x).tolist()


def test_plaintext_rule_ambiguous_sum_raises_with_both_fixes(
    vectors: tuple[IntegerVectorScheme, KeySet],
) -> None:
    """A length-3 vector added to a batch of 3 items of 3-vectors: per slot or per item?"""
    scheme, keys = vectors
    x = np.arange(9).reshape(3, 3)
    a = scheme.encrypt(x, keys.public, dim=3)
    v = np.array([10, 20, 30])
    for operation in (lambda: a + v, lambda: a - v, lambda: v - a, lambda: v + a):
        with pytest.raises(
            InputError, match=r"ambiguous.*values\.reshape\(1, 3\).*values\[\.\.\., None\]"
        ):
            operation()
    # the two fixes the message names
    assert decrypt_sum(scheme, keys, a + v.reshape(1, 3)) == (x + v).tolist()  # per slot
    assert decrypt_sum(scheme, keys, a + v[..., None]) == (x + v[:, None]).tolist()  # per item


def test_plaintext_rule_two_batch_axes(vectors: tuple[IntegerVectorScheme, KeySet]) -> None:
    scheme, keys = vectors
    x = np.arange(24).reshape(2, 4, 3)
    a = scheme.encrypt(x, keys.public, dim=3)  # batch (2, 4) of 3-vectors
    with pytest.raises(InputError, match=r"values\[\.\.\., None\]"):
        a + np.ones((2, 4), dtype=np.int64)  # last axis 4 is neither the 3 slots nor 1
    per_item = np.arange(8).reshape(2, 4, 1)
    assert decrypt_sum(scheme, keys, a + per_item) == (x + per_item).tolist()
    row = np.array([1, 2, 3])  # last axis 3 != last batch axis 4: per slot
    assert decrypt_sum(scheme, keys, a + row) == (x + row).tolist()


def test_plaintext_rule_last_batch_axis_equal_to_m(
    vectors: tuple[IntegerVectorScheme, KeySet],
) -> None:
    scheme, keys = vectors
    x = np.arange(2 * 3 * 3).reshape(2, 3, 3)
    a = scheme.encrypt(x, keys.public, dim=3)  # batch (2, 3) of 3-vectors
    for plain in (np.array([1, 2, 3]), np.ones((1, 3), dtype=np.int64)):
        with pytest.raises(InputError, match="ambiguous"):
            a + plain
    # batch-shaped (2, 3): as slot values its leading axis (2) would meet the batch's 3
    with pytest.raises(InputError, match=r"slot axis.*values\[\.\.\., None\]"):
        a + np.ones((2, 3), dtype=np.int64)
    column = np.array([[1], [2], [3]])  # (3, 1): item (i, j) gets column[j] in every slot
    assert decrypt_sum(scheme, keys, a + column) == (x + column[None, :, :]).tolist()
    # (2, 1) fits the batch as one value per item, but as slot values its leading axis (2)
    # would meet the batch's last axis (3): only the per-item fix can be meant
    with pytest.raises(InputError, match=r"slot axis.*values\[\.\.\., None\]"):
        a + np.ones((2, 1))
    assert (
        decrypt_sum(scheme, keys, a + np.array([1, 2, 3]).reshape(1, 1, 3))
        == (x + np.array([1, 2, 3])).tolist()
    )


def test_plaintext_rule_scalar_ciphertexts_are_per_item(
    vectors: tuple[IntegerVectorScheme, KeySet],
) -> None:
    """m = 1 has one slot, so a batch-shaped plaintext is always one value per item."""
    scheme, keys = vectors
    x = np.arange(3)
    a = scheme.encrypt(x, keys.public)
    assert scheme.decrypt(a + np.array([5, 6, 7]), keys.secret)[..., 0].tolist() == [5, 7, 9]


def test_products_by_plaintexts_are_per_item(vectors: tuple[IntegerVectorScheme, KeySet]) -> None:
    scheme, keys = vectors
    x = np.arange(6).reshape(2, 3)
    a = scheme.encrypt(x, keys.public, dim=3)
    assert decrypt_sum(scheme, keys, a * np.array([2, -1])) == (x * [[2], [-1]]).tolist()


def test_backend_registry_name_is_numpy() -> None:
    """The numpy backend is the reference the exact tests run on."""
    assert get_backend("numpy").name == "numpy"


def test_a_scheme_given_no_backend_computes_on_numpy() -> None:
    """The scheme never looks a backend up itself: with none given it uses the NumPy reference."""
    assert IntegerVectorScheme("default").backend is default_backend()
    assert default_backend().name == "numpy"
