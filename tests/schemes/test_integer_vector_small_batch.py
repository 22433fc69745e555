"""The small-batch shortcuts (``integer_vector.small``) give the general code's results, bit for bit.

Each case runs an operation twice on the same inputs, once as it is and once with the shortcuts
switched off (patched to decline), and compares everything the results carry: the coefficients,
the worst-case noise bound, both high-probability parts and the coefficient bound. Seeded
encryptions draw the same noise either way; unseeded ones draw from the pooled CSPRNG.
"""

from __future__ import annotations

import dataclasses
import os
import tracemalloc
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from hennframework.exceptions import InputError
from hennframework.randomness import RandomSource, as_random_source
from hennframework.schemes.integer_vector import IntegerVectorScheme, native, small, wide
from hennframework.schemes.integer_vector.ciphertext import Ciphertext
from hennframework.schemes.integer_vector.keys import matrix_digest
from hennframework.schemes.integer_vector.params import PARAMETER_SETS
from hennframework.testing.chains import CHAIN_PARAMETER_SETS
from hennframework.testing.integer_vector import ciphertext_fields

pytestmark = pytest.mark.filterwarnings(
    "ignore::hennframework.exceptions.InsecureParametersWarning"
)

#: Batch shapes: unbatched, batch 1, a few items, and more than the Python paths take.
SHAPES = [(), (1,), (3,), (2, 2), (40,)]


#: Everything a ciphertext carries (compared exactly).
fields = ciphertext_fields


def assert_same_switch(found: Any, expected: Any) -> None:
    """Two ``_switch`` results (words, L1 norms, L2 norms): the same types, shapes and bits."""
    assert found is not None
    for a, b in zip(found, expected, strict=True):
        assert type(a) is type(b) and np.shape(a) == np.shape(b)
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def uncached_facts(scheme: Any, matrix: Any) -> tuple[str, float, float]:
    """What ``linear_transform`` and ``dot`` computed from G and H on every call."""
    return (
        matrix_digest(matrix),
        float(np.abs(matrix).sum(axis=1).max()),
        float(np.abs(matrix).sum()),
    )


@pytest.fixture
def general(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A context in which every shortcut declines (the general code runs)."""

    class Switch:
        def __enter__(self) -> None:
            monkeypatch.setattr(small, "abs_max", lambda array: None)
            monkeypatch.setattr(small, "plain_integers", lambda *args: None)
            monkeypatch.setattr(small, "decrypt_few", lambda *args: None)
            monkeypatch.setattr(native, "decrypt_pow2", None)  # decrypt's compiled kernel
            monkeypatch.setattr(small, "switch_bits", lambda *args: None)
            monkeypatch.setattr(small, "identity", lambda m: np.eye(m, dtype=np.int64))
            monkeypatch.setattr(small, "matrix_facts", uncached_facts)
            monkeypatch.setattr(
                wide, "mul_round_div", lambda a, b, d: wide.sum_products_round_div([(a, b)], d)
            )
            monkeypatch.setattr(small, "noise_source", lambda seed: as_random_source(seed).integers)

        def __exit__(self, *args: Any) -> None:
            monkeypatch.undo()

    yield Switch()


def bits_params(name: str = "vhe") -> Any:
    """A gadget-bits set with two secret columns (k = 2), besides the vhe set itself."""
    return dataclasses.replace(PARAMETER_SETS[name], name=f"{name}-k2", k=2)


@pytest.fixture(scope="module", params=["vhe", "default", "seed", "vhe-k2"])
def setup(request: pytest.FixtureRequest) -> tuple[IntegerVectorScheme, Any, Any]:
    params = bits_params() if request.param == "vhe-k2" else request.param
    scheme = IntegerVectorScheme(params)
    keys = scheme.keygen(seed=5, max_dim=16, dims=(1, 4, 16), products=())
    other = scheme.keygen(seed=6, max_dim=16, dims=(1, 4), products=())
    return scheme, keys, other


def messages(shape: tuple[int, ...], m: int, seed: int, bound: int = 50) -> Any:
    return np.random.default_rng(seed).integers(-bound, bound + 1, (*shape, m))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("m", [1, 4, 16])
def test_encrypt_and_decrypt_match_the_general_code(
    setup: tuple[IntegerVectorScheme, Any, Any], general: Any, shape: tuple[int, ...], m: int
) -> None:
    scheme, keys, _ = setup
    x = messages(shape, m, seed=m)
    for key in (keys.public, keys.secret):
        fast = scheme.encrypt(x, key, dim=m, seed=11)
        with general:
            slow = scheme.encrypt(x, key, dim=m, seed=11)
            expected = scheme.decrypt(slow, keys)
        assert fields(fast) == fields(slow)
        decrypted = scheme.decrypt(fast, keys)
        assert decrypted.dtype == expected.dtype and decrypted.shape == expected.shape
        assert np.array_equal(decrypted, expected) and np.array_equal(decrypted, x)
        # unseeded: pooled noise, still the right messages
        assert np.array_equal(scheme.decrypt(scheme.encrypt(x, key, dim=m), keys), x)


@pytest.mark.parametrize("shape", SHAPES)
def test_switch_transform_and_dot_match_the_general_code(
    setup: tuple[IntegerVectorScheme, Any, Any], general: Any, shape: tuple[int, ...]
) -> None:
    scheme, keys, other = setup
    m = 4
    g = np.random.default_rng(1).integers(-2, 3, (3, m))
    scheme.add_linear_key(keys, g)
    h = np.random.default_rng(2).integers(-3, 4, (m, m))
    scheme.add_dot_key(keys, m)
    scheme.add_dot_key(keys, m, h)
    switch = scheme.make_switch_key(keys, other, dim=m)
    x = messages(shape, m, seed=2)
    y = messages(shape, m, seed=3)
    cx = scheme.encrypt(x, keys.public, dim=m, seed=4)
    cy = scheme.encrypt(y, keys.public, dim=m, seed=5)

    def run() -> list[Ciphertext]:
        return [
            scheme.switch_key(cx, switch),
            scheme.linear_transform(cx, g),
            scheme.dot(cx, cy),
            scheme.dot(cx, cy, h),
        ]

    fast = run()
    with general:
        slow = run()
    for a, b in zip(fast, slow, strict=True):
        assert fields(a) == fields(b)
    assert np.array_equal(scheme.decrypt(fast[0], other), x)
    assert np.array_equal(scheme.decrypt(fast[1], keys), x @ g.T)
    assert np.array_equal(scheme.decrypt(fast[2], keys)[..., 0], (x * y).sum(axis=-1))
    assert np.array_equal(scheme.decrypt(fast[3], keys)[..., 0], ((x @ h) * y).sum(axis=-1))


@pytest.mark.parametrize("shape", [(), (1,), (5,), (3, 2), (30,), (300,)])
def test_gadget_bits_are_the_general_switch(shape: tuple[int, ...]) -> None:
    """Sources at the edges of the range (|v| = 2**62 - 1, 0, -1) and random ones."""
    for params in ("vhe", bits_params()):
        scheme = IntegerVectorScheme(params)
        keys = scheme.keygen(seed=9, max_dim=3, dims=(3,), products=())
        key = keys.public.encryption[3]
        rng = np.random.default_rng(len(shape))
        limit = (1 << 62) - 1
        source = rng.integers(-limit, limit, (*shape, 3), endpoint=True)
        source.reshape(-1)[:4] = [limit, -limit, 0, -1][: source.size]
        found = small.switch_bits(scheme, source, key)
        expected = scheme._switch_digits(source, key)
        assert_same_switch(found, expected)
        if len(shape) == 1 and shape[0] > 1:  # the same sources, transposed (F-ordered)
            strided = np.ascontiguousarray(source.T).T
            assert not strided.flags.c_contiguous
            assert_same_switch(small.switch_bits(scheme, strided, key), expected)


@pytest.mark.parametrize("top_bit", [0, 1, 7, 8, 9, 47, 55, 61, 62])
@pytest.mark.parametrize("kind", ["encryption", "switch", "product", "linear"])
@pytest.mark.parametrize("items", [1, 11, 257])
def test_gadget_bits_use_only_the_bytes_in_use(top_bit: int, kind: str, items: int) -> None:
    """Sources whose largest magnitude has ``top_bit`` bits (0: all zero), through every kind
    of key: the byte table leaves out the key rows of bytes no source reaches, and an
    encryption key takes the ``c + R c*`` form; neither may change a bit of the result."""
    scheme = IntegerVectorScheme("vhe")
    keys = scheme.keygen(seed=3, max_dim=3, dims=(3,), products=(3,))
    if kind == "encryption":
        key = keys.public.encryption[3]
    elif kind == "switch":
        key = scheme.make_switch_key(keys, scheme.keygen(seed=4, dims=(3,)), dim=3)
    elif kind == "product":
        key = keys.public.evaluation.keys["product:3"]
    else:
        key = scheme.add_linear_key(keys, np.array([[1, -2, 0], [3, 1, 1]]))
    columns = key.matrix_t.shape[0] // scheme.params.digits
    rng = np.random.default_rng(top_bit * 7 + items)
    limit = (1 << top_bit) - 1
    source = rng.integers(-limit, limit, (items, columns), endpoint=True)
    if limit:
        source.reshape(-1)[: min(2, source.size)] = [limit, -limit][: min(2, source.size)]
    assert_same_switch(small.switch_bits(scheme, source, key), scheme._switch_digits(source, key))


def test_only_an_encryption_key_is_read_as_gadget_plus_residual() -> None:
    """The ``c + R c*`` form needs ``M - G`` small: true of the switch from the identity
    secret at any width, not of a key whose source is a secret once its rows hold ``2**i``
    times the secret's entries for the high bits (``M = G + R`` holds for every key, so
    wherever R passes the check the form is exact: a product key's lowest byte may)."""
    scheme = IntegerVectorScheme("vhe")
    keys = scheme.keygen(seed=5, dims=(4,), products=(4,))
    count = scheme.params.digits
    encryption = keys.public.encryption[4].matrix_t
    product = keys.public.evaluation.keys["product:4"].matrix_t
    for width in (1, 6, 8):
        rows, residual = small._bit_key_rows(encryption, 4, count, width)
        assert rows is None and residual is not None
        assert residual.shape == (4 * 8 * width, 5) and not residual.flags.writeable
        columns = product.shape[0] // count
        if width > 1:
            rows, residual = small._bit_key_rows(product, columns, count, width)
            assert residual is None and rows is not None and not rows.flags.writeable
            assert rows.shape == (columns * 8 * width, product.shape[1])


@pytest.mark.parametrize("shape", [(), (1,), (2,)])
def test_gadget_bit_norms_round_as_the_general_switch(shape: tuple[int, ...]) -> None:
    """90 set bits over 3 entries: there ``x ** 0.5`` of a NumPy scalar (the C library's pow)
    and of an array (sqrt) differ in the last bit, so the shortcut must take each where the
    general path does."""
    scheme = IntegerVectorScheme("vhe")
    keys = scheme.keygen(seed=9, max_dim=3, dims=(3,), products=())
    key = keys.public.encryption[3]
    source = np.broadcast_to(np.array([(1 << 62) - 1, -((1 << 28) - 1), 0]), (*shape, 3))
    found = small.switch_bits(scheme, np.ascontiguousarray(source), key)
    expected = scheme._switch_digits(np.ascontiguousarray(source), key)
    assert found is not None
    for a, b in zip(found, expected, strict=True):
        assert type(a) is type(b) and np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_shortcuts_decline_what_they_do_not_cover() -> None:
    scheme = IntegerVectorScheme("default")
    keys = scheme.keygen(seed=1, dims=(2,), products=())
    assert small.switch_bits(scheme, np.zeros((1, 2), np.int64), keys.public.encryption[2]) is None
    assert small.abs_max(np.zeros(small.SMALL_VALUES + 1, np.int64)) is None
    assert small.abs_max(np.zeros(3)) is None  # floats: the backend's rule
    assert small.abs_max(np.array([-(2**63), 5])) == 2**63


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("m", [1, 4, 16])
def test_decryption_rounds_like_the_general_code_at_every_boundary(
    setup: tuple[IntegerVectorScheme, Any, Any], general: Any, shape: tuple[int, ...], m: int
) -> None:
    """Coefficients with ``S c`` at a rounding boundary, one below and one above it."""
    scheme, keys, _ = setup
    p = scheme.params
    rng = np.random.default_rng(m)
    t = keys.secret.t_for(m)
    bottom = rng.integers(-(1 << 20), 1 << 20, (*shape, p.k))
    target = rng.integers(-1000, 1000, (*shape, m)) * p.w - p.w // 2
    offset = rng.integers(-1, 2, (*shape, m))
    top = target + offset - bottom @ t.T
    data = np.concatenate([top, bottom], axis=-1)
    zero = np.zeros(shape)
    c = Ciphertext(scheme, data, m, 1, zero, keys.key_id, noise_det=zero, noise_sg=zero)
    fast = scheme.decrypt(c, keys)
    with general:
        slow = scheme.decrypt(c, keys)
    assert fast.dtype == slow.dtype and fast.shape == slow.shape
    assert np.array_equal(fast, slow)


def test_plaintexts_are_checked_as_before(setup: tuple[IntegerVectorScheme, Any, Any]) -> None:
    scheme, keys, _ = setup
    limit = scheme.params.max_plaintext
    for values in (
        np.array([[limit + 1, 0, 0, 0]]),
        np.array([[2**63 + 5, 0, 0, 0]], dtype=np.uint64),
        np.array([[0.5, 0, 0, 0]]),
    ):
        with pytest.raises(InputError):
            scheme.encrypt(values, keys.public, dim=4)
    for values in (np.array([[limit, -limit, 0, 1]]), np.array([[True, False, True, True]])):
        c = scheme.encrypt(values, keys.public, dim=4)
        assert np.array_equal(scheme.decrypt(c, keys), values.astype(np.int64))
    small_types = np.array([[200, 0, 7, 255]], dtype=np.uint8)
    assert small.plain_integers(small_types, 1, limit) is not None
    assert fields(scheme.encrypt(small_types, keys.public, dim=4, seed=1)) == fields(
        scheme.encrypt(small_types.astype(np.int64), keys.public, dim=4, seed=1)
    )


def test_decrypt_refuses_as_before_when_the_noise_is_too_large() -> None:
    scheme = IntegerVectorScheme("default")
    keys = scheme.keygen(seed=1, dims=(2,), products=())
    c = scheme.encrypt(np.array([[1, 2]]), keys.public, dim=2, seed=3)
    noisy = c.derive(c.data, c.noise + scheme.params.w, coeff_bound=c.coeff_bound)
    assert small.decrypt_few(scheme, noisy, keys.secret) is None
    with pytest.raises(Exception, match="refusing to decrypt"):
        scheme.decrypt(noisy, keys)


def test_seeded_draws_are_the_seeded_stream() -> None:
    draw = small.noise_source(7)
    expected = RandomSource(7)
    for shape in [(3,), (2, 5), ()]:
        assert np.array_equal(draw(-4, 4, shape), expected.integers(-4, 4, shape))


def test_pooled_draws_are_in_range_and_each_used_once() -> None:
    draw = small.noise_source(None)
    values = [draw(-3, 3, (7,)) for _ in range(2 * small.POOL_SIZE // 7)]
    joined = np.concatenate(values)
    assert joined.min() == -3 and joined.max() == 3
    counts = np.bincount(joined + 3)
    assert counts.min() > joined.size / 7 * 0.8  # uniform (loosely: ~8,000 draws)
    assert not values[0].flags.writeable
    big = draw(0, 1 << 40, (small.POOL_SIZE,))  # large draws straight from the CSPRNG
    assert big.shape == (small.POOL_SIZE,) and len(np.unique(big)) > small.POOL_SIZE - 5


def test_draws_past_a_sixteenth_of_a_pool_skip_the_pools() -> None:
    """A draw of up to ``POOL_DRAW`` values comes from a pool (refilled ``POOL_SIZE`` at a
    time); a larger one comes straight from the CSPRNG and leaves the pools as they were, so
    it never holds a new pool and its making's temporaries (a batch of 256 4-vectors)."""
    pools = small._NoisePools()
    pools.draw(-9, 9, (small.POOL_DRAW,))
    pool, used = pools._pools[(-9, 9)]
    assert pool.size == small.POOL_SIZE and used == small.POOL_DRAW
    large = pools.draw(-9, 9, (small.POOL_DRAW + 1,))
    assert large.shape == (small.POOL_DRAW + 1,) and large.flags.writeable
    after, after_used = pools._pools[(-9, 9)]
    assert after is pool and after_used == used  # the same pool, nothing taken from it
    assert large.min() >= -9 and large.max() <= 9


def test_a_large_draw_holds_about_its_own_size() -> None:
    """``RandomSource.integers`` writes the values straight into its result: drawing 1,024
    values from 32-bit words peaks at about 3 times the result's 8 KiB (the result, the bytes
    read, the words kept), not at the 4.3 times of two more int64 copies."""
    RandomSource().integers(-9, 9, 1024)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        values = RandomSource().integers(-(1 << 20), 1 << 20, 1024)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert values.nbytes == 8192
    assert peak < 3.5 * values.nbytes


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_reuse_the_parents_pool() -> None:
    draw = small.noise_source(None)
    draw(0, 1 << 60, (1,))  # the parent's pool for this range now holds unused values
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        os.write(write, small.noise_source(None)(0, 1 << 60, (4,)).tobytes())
        os._exit(0)
    os.close(write)
    child = np.frombuffer(os.read(read, 64), dtype=np.int64)
    os.close(read)
    os.waitpid(pid, 0)
    parent = draw(0, 1 << 60, (4,))
    assert child.size == 4 and not np.array_equal(child, parent)


@pytest.mark.parametrize("backend", ["numpy", "xp"])
@pytest.mark.parametrize("params", ["default", "k2-b16", "vhe"])
def test_a_switch_in_slices_is_the_switch_in_one_piece(
    monkeypatch: pytest.MonkeyPatch, params: str, backend: str
) -> None:
    """A switch of a large batch goes through in slices of items: the same words and the same
    norms, item by item, as the general switch in one piece (here down to one item per slice;
    with ``vhe`` on NumPy each slice takes the gadget-bit shortcut), on NumPy and through the
    GPU backend's code (``xp``: its array module set to NumPy)."""
    from hennframework_backends._xp_backend import XpBackend

    scheme = IntegerVectorScheme(
        CHAIN_PARAMETER_SETS[params], backend=XpBackend() if backend == "xp" else None
    )
    keys = scheme.keygen(seed=12, max_dim=3, dims=(3,), products=(3,))
    key = keys.public.evaluation.keys["product:3"]
    columns = key.matrix_t.shape[0] // scheme.params.digits
    rng = np.random.default_rng(5)
    limit = (1 << 61) - 1
    source = rng.integers(-limit, limit, (7, 5, columns), endpoint=True)
    whole = scheme._switch_digits(source, key)
    for slice_bytes in (1, columns * scheme.params.digits * 8 * 3):
        monkeypatch.setattr(small, "DIGIT_SLICE_BYTES", slice_bytes)
        assert_same_switch(scheme._switch(source, key, limit), whole)


@pytest.mark.parametrize("m", [4, 8])
def test_float_decryption_is_exact_up_to_its_noise_limit(
    setup: tuple[IntegerVectorScheme, Any, Any], general: Any, m: int
) -> None:
    """Large batches of 3- to 8-vectors decrypt through one float64 GEMM where its rounding is
    proved harmless: with the noise at the largest value the proof allows (true noise equal to
    the kept bound, both signs), the messages are exact and those of the general code; a
    bound one step further declines that path, and the integer one gives the same messages."""
    scheme, keys, _ = setup
    if m not in keys.public.encryption:
        scheme.add_encryption_key(keys, m)
    p = scheme.params
    shape = (300,)
    assert shape[0] * (m + p.k) * m > small.DECRYPT_MATMUL_WORK
    rng = np.random.default_rng(m)
    t = keys.secret.t_for(m)
    x = rng.integers(-1000, 1001, (*shape, m))
    bottom = rng.integers(-(1 << 20), 1 << 20, (*shape, p.k))
    top = x * p.w - bottom @ t.T  # S c = w x exactly, before the noise
    # a bound on the float error from above (coefficients grow by at most w with the noise)
    reach = int(abs(np.concatenate([top, bottom], axis=-1)).max() + p.w) * p.key_row_norm
    largest = p.w // 2 - ((m + p.k + 2) * reach >> 52) - 2  # a noise bound the path accepts
    signs = rng.choice([-1, 1], (*shape, m))
    data = np.concatenate([top + signs * largest, bottom], axis=-1)
    zero = np.zeros(shape)

    def with_bound(bound: int) -> Ciphertext:
        noise = np.full(shape, float(bound))
        return Ciphertext(scheme, data, m, 1, noise, keys.key_id, noise_det=noise, noise_sg=zero)

    exact = with_bound(largest)
    error = ((m + p.k + 2) * exact.coeff_bound * p.key_row_norm >> 52) + 1  # what decrypt uses
    for c, float_path in ((exact, True), (with_bound(p.w // 2 - error), False)):
        reached = c.coeff_bound * p.key_row_norm
        taken = small._float_decryption(data, keys.secret, m, p.k, p.w, reached, c.decryption_bound)
        assert (taken is not None) == float_path
        fast = scheme.decrypt(c, keys)
        with general:
            slow = scheme.decrypt(c, keys)
        assert fast.dtype == slow.dtype == np.int64 and np.array_equal(fast, slow)
        assert np.array_equal(fast, x)
        if taken is not None:
            assert np.array_equal(taken, x)
