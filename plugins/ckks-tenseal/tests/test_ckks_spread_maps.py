"""Large plaintext maps that read every copy of a replicated vector.

A bag of words applied to a vector with free top slot bits (4 copies at ``n8192`` here) can put
its output rows in those top bits and spread each row's terms over the contracted axis' low bits,
summed into index 0 at the end: a quarter of the diagonals. The result's other positions hold
partial sums (pinned bits); a masked polynomial then cleans them, and the map back replicates its
result across those bits first. These tests check the values, that every raw slot stays within
the bounds the tensors track (pinned positions included), and the diagonal counts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hennframework.scheme import KeySet

from hennframework_ckks import CKKSScheme
from hennframework_ckks._seal import sa
from hennframework_ckks.layout import Layout
from hennframework_ckks.linear import _choose_copies, plan_linear
from hennframework_ckks.tensor import CKKSTensor

WORDS, REVIEWS = 600, 64
LSQ3 = (0.5, 0.197, 0.0, -0.004)


def _bag_of_words(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    matrix = np.zeros((REVIEWS, WORDS))
    for row in matrix:
        row[rng.choice(WORDS, size=rng.integers(8, 30), replace=False)] = 1.0
    return matrix


def _raw_slots(keys: KeySet, ct: Any) -> np.ndarray:
    plain = sa.Plaintext()
    keys.secret.decryptor.decrypt(ct, plain)
    return keys.public.context.decode(plain)


def _vector(scheme: CKKSScheme, keys: KeySet, seed: int) -> tuple[np.ndarray, CKKSTensor]:
    values = np.random.default_rng(seed).uniform(-0.2, 0.2, (WORDS, 1))
    tensor = scheme.encrypt_tensor(values, keys.secret)
    assert tensor.layout.period < tensor.layout.slots  # free top bits: copies to read
    return values, tensor


@pytest.fixture(scope="module")
def mapped(scheme8192: CKKSScheme, keys8192: KeySet) -> tuple[np.ndarray, np.ndarray, CKKSTensor]:
    matrix = _bag_of_words(0)
    values, vector = _vector(scheme8192, keys8192, 1)
    return matrix, values, vector.plain_matmul_left(matrix)


def test_the_rows_go_to_the_top_bits_and_sum_over_pinned_ones(
    scheme8192: CKKSScheme, keys8192: KeySet, mapped: tuple[np.ndarray, np.ndarray, CKKSTensor]
) -> None:
    matrix, values, result = mapped
    slot_bits = keys8192.public.context.slot_bits
    assert result.layout.groups[0] == (slot_bits - 6, 6)  # 64 rows in the top bits
    assert result.layout.pinned == (1 << (slot_bits - 6)) - 1
    assert not result.clean
    np.testing.assert_allclose(
        scheme8192.decrypt_tensor(result, keys8192.secret),
        matrix @ values,
        rtol=0,
        atol=float(result.errors.max()),
    )


def test_every_raw_slot_of_the_spread_result_is_within_its_bound(
    keys8192: KeySet, mapped: tuple[np.ndarray, np.ndarray, CKKSTensor]
) -> None:
    """The pinned positions hold partial sums: the garbage bound must cover them."""
    _, _, result = mapped
    (bound,) = result.cell_bounds
    raw = _raw_slots(keys8192, result.ciphertexts[0])
    assert bound.garbage > 0
    assert np.abs(raw).max() <= bound.content + bound.error


def test_spreading_needs_a_quarter_of_the_diagonals(
    keys8192: KeySet, mapped: tuple[np.ndarray, np.ndarray, CKKSTensor]
) -> None:
    matrix, _, result = mapped
    slot_bits = keys8192.public.context.slot_bits
    a_idx, k_idx = np.nonzero(matrix)
    in_layout = Layout.default((WORDS, 1), slot_bits)
    steps = keys8192.public.rotation_steps
    copies = in_layout.slots // in_layout.period
    default = Layout(((REVIEWS, 1)), ((0, 6), (0, 0)), slot_bits)
    plans = [
        plan_linear(in_layout, out, a_idx, k_idx, matrix[a_idx, k_idx], steps, spread)
        for out, spread in ((default, False), (result.layout, True))
    ]
    counts = [sum(len(d) for d in plan.diagonals.values()) for plan in plans]
    assert counts[1] * copies <= counts[0]


def test_a_masked_polynomial_cleans_the_partial_sums(
    scheme8192: CKKSScheme, keys8192: KeySet, mapped: tuple[np.ndarray, np.ndarray, CKKSTensor]
) -> None:
    """Its coefficients are 0 at pinned positions: the result is clean, and the error there is
    tracked apart (at most the tensor's error) and holds for every raw slot."""
    matrix, values, result = mapped
    predicted = result.polyval(LSQ3)
    assert predicted.clean and predicted.invalid_errors is not None
    (bound,) = predicted.cell_bounds
    invalid_error = float(predicted.invalid_errors.max())
    assert 0 < invalid_error <= bound.error
    raw = _raw_slots(keys8192, predicted.ciphertexts[0])
    valid = predicted.layout.cell_map((0, 0))[1]
    assert np.abs(raw[~valid]).max() <= invalid_error
    z = matrix @ values
    np.testing.assert_allclose(
        scheme8192.decrypt_tensor(predicted, keys8192.secret),
        np.polynomial.polynomial.polyval(z, LSQ3),
        rtol=0,
        atol=bound.error,
    )


def test_the_map_back_replicates_first_with_a_tight_error(
    scheme8192: CKKSScheme, keys8192: KeySet, mapped: tuple[np.ndarray, np.ndarray, CKKSTensor]
) -> None:
    """``X.T @ delta`` from a pinned delta: replicated across the pinned bits (rotations, no
    level), the copies' errors those of invalid slots; values and every raw slot checked."""
    matrix, values, result = mapped
    targets = np.random.default_rng(2).integers(0, 2, (REVIEWS, 1)).astype(float)
    slope = result.polyval([LSQ3[1], 2 * LSQ3[2], 3 * LSQ3[3]])
    delta = (result.polyval(LSQ3) - targets) * slope
    assert delta.clean and delta.invalid_errors is not None
    copies = 1 << bin(delta.layout.pinned).count("1")
    unpinned = delta._unpin(delta.layout.pinned)
    assert unpinned.layout.pinned == 0
    assert float(unpinned.errors.max()) < copies * float(delta.errors.max()) / 4
    raw = _raw_slots(keys8192, unpinned.ciphertexts[0])
    (bound,) = unpinned.cell_bounds
    assert np.abs(raw).max() <= bound.content + bound.error
    back = delta.plain_matmul_left(matrix.T)
    assert back.levels_left == delta.levels_left - 1
    z = matrix @ values
    want_delta = (
        np.polynomial.polynomial.polyval(z, LSQ3) - targets
    ) * np.polynomial.polynomial.polyval(z, [LSQ3[1], 2 * LSQ3[2], 3 * LSQ3[3]])
    np.testing.assert_allclose(
        scheme8192.decrypt_tensor(back, keys8192.secret),
        matrix.T @ want_delta,
        rtol=0,
        atol=float(back.errors.max()),
    )


def test_small_maps_keep_the_rows_where_the_axis_was(
    scheme8192: CKKSScheme, keys8192: KeySet
) -> None:
    values = np.linspace(-1, 1, 12).reshape(12, 1)
    tensor = scheme8192.encrypt_tensor(values, keys8192.secret)
    matrix = np.arange(36.0).reshape(3, 12) / 100
    result = tensor.plain_matmul_left(matrix)
    assert result.clean and result.layout.pinned == 0
    np.testing.assert_allclose(
        scheme8192.decrypt_tensor(result, keys8192.secret),
        matrix @ values,
        rtol=0,
        atol=float(result.errors.max()),
    )


@pytest.mark.parametrize("seed", range(5))
def test_chosen_copies_clear_their_bits_and_stay_copies(seed: int) -> None:
    """Each difference becomes (input slot + some of its free bits) - (output slot + some of
    its summed bits), with those bits of the result cleared."""
    rng = np.random.default_rng(seed)
    slots, in_free, out_summed = 1 << 10, 0b1100000000 | 0b100, 0b11
    p = rng.integers(0, slots, 500) & ~in_free
    q = rng.integers(0, slots, 500) & ~out_summed
    difference, moved = _choose_copies((p - q) % slots, q.copy(), in_free, out_summed, slots)
    assert np.all(difference & (in_free | out_summed) == 0)
    placed = moved - q
    assert np.all(placed & ~out_summed == 0)  # outputs only moved within their summed bits
    read = (difference + moved) % slots  # the input slot each contribution reads
    assert np.all((read ^ p) & ~in_free == 0)  # a copy of the same input element


def test_a_map_keeps_each_slots_error_and_a_sum_adds_them(
    scheme8192: CKKSScheme, keys8192: KeySet
) -> None:
    """``X.T @ delta`` gives a frequent word a larger error than a rare one; the tensor keeps
    the error of every slot, each raw slot is within its own, and a product summed over the
    words adds the slots' errors instead of the largest one times their number."""
    matrix = _bag_of_words(5)
    matrix[:, 7] = 1.0  # one word in every review: its column sum is the largest
    deltas = np.random.default_rng(6).uniform(-0.5, 0.5, (REVIEWS, 1))
    slot_bits = keys8192.public.context.slot_bits
    # the reviews in the top bits, as the forward map leaves them: the words go to the low bits
    top = Layout((REVIEWS, 1), ((slot_bits - 6, 6), (0, 0)), slot_bits)
    delta = scheme8192.encrypt_tensor(deltas, keys8192.secret, layout=top)
    mapped = delta.plain_matmul_left(matrix.T)
    assert mapped.clean and mapped.layout.groups[0] == (0, 10)
    assert mapped.slot_errors is not None
    rows = mapped.slot_errors
    assert rows.max() == pytest.approx(float(mapped.errors.max()))
    assert rows.min() < rows.max() / 4  # rare words' slots
    flat, valid = mapped.layout.cell_map((0, 0))
    want = matrix.T @ deltas
    expected = np.where(valid, want.reshape(-1)[flat], 0.0)
    raw = _raw_slots(keys8192, mapped.ciphertexts[0])
    assert np.all(np.abs(raw - expected) <= rows[0])
    weights = np.random.default_rng(7).uniform(-1, 1, (WORDS, 1))
    encrypted = scheme8192.encrypt_tensor(weights, keys8192.secret, layout=mapped.layout)
    total = (encrypted * mapped).sum(axis=0)
    (bound,) = total.cell_bounds
    old_rule = WORDS * float(np.abs(weights).max()) * float(rows.max())
    assert bound.error < old_rule / 4
    np.testing.assert_allclose(
        scheme8192.decrypt_tensor(total, keys8192.secret),
        (weights * want).sum(axis=0),
        rtol=0,
        atol=bound.error,
    )


def test_replicating_downwards_puts_copies_below_index_0(
    scheme8192: CKKSScheme, keys8192: KeySet
) -> None:
    """A clean pinned tensor's index 0 copied to the 2**bits - 1 positions below it with left
    rotations only; every raw slot within the tracked bounds, and a map reading those copies
    (``copies_below``) gives the same values as one reading index 0 alone."""
    matrix = _bag_of_words(8)
    values = np.random.default_rng(9).uniform(-0.5, 0.5, (REVIEWS, 1))
    slot_bits = keys8192.public.context.slot_bits
    pinned = Layout((REVIEWS, 1), ((slot_bits - 6, 6), (0, 0)), slot_bits, pinned=0b111)
    tensor = scheme8192.encrypt_tensor(values, keys8192.secret, layout=pinned)
    assert tensor.clean
    down = tensor._replicated_down(0b111)
    assert down.layout == tensor.layout and not down.clean
    raw = _raw_slots(keys8192, down.ciphertexts[0])
    (bound,) = down.cell_bounds
    stride = 1 << (slot_bits - 6)
    for t in range(8):  # the element of row r sits at r * stride - t (cyclically)
        copies = raw[(np.arange(REVIEWS) * stride - t) % raw.size]
        assert np.all(np.abs(copies - values[:, 0]) <= bound.error)
    assert np.abs(raw).max() <= bound.content + bound.error
    mapped = tensor.plain_matmul_left(matrix.T)  # chooses how to read the pinned input
    np.testing.assert_allclose(
        scheme8192.decrypt_tensor(mapped, keys8192.secret),
        matrix.T @ values,
        rtol=0,
        atol=float(mapped.errors.max()),
    )
    direct = down._linear(
        mapped.layout,
        *_triples(matrix.T),
        copies_below=0b111,
    )
    np.testing.assert_allclose(
        scheme8192.decrypt_tensor(direct, keys8192.secret),
        matrix.T @ values,
        rtol=0,
        atol=float(direct.errors.max()),
    )


def _triples(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(out_flat, in_flat, weights)`` of ``matrix @ x`` for x of shape (n, 1)."""
    rows, cols = np.nonzero(matrix)
    return rows.astype(np.int64), cols.astype(np.int64), matrix[rows, cols]


def test_a_map_too_large_for_diagonals_is_a_cost_probe_not_a_crash(
    scheme8192: CKKSScheme, keys8192: KeySet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replicating a sum's pinned bits weighs rotations against a re-packing map. Where that
    map would need more diagonals than fit in memory (a trained network's output weights with
    11 pinned bits at N = 16384, the sentiment demo's evaluation), the replication is taken;
    it used to end the demo with an internal MemoryError. A map that must be evaluated and does
    not fit is refused with an error that says what to do."""
    from hennframework.exceptions import InputError

    from hennframework_ckks import linear

    monkeypatch.setattr(linear, "MAX_DIAGONAL_ENTRIES", 100_000)  # n8192 stands in for n16384
    monkeypatch.setattr(linear, "_PLANS", linear._Lru(32))  # no plan made before the limit
    values = np.random.default_rng(5).normal(0.0, 0.5, (8, 512))
    summed = scheme8192.encrypt_tensor(values, keys8192.public).sum(axis=1)
    assert summed.layout.pinned and not summed.clean
    unpinned = summed._unpin(summed.layout.pinned)
    assert unpinned.layout.pinned == 0
    np.testing.assert_allclose(
        scheme8192.decrypt_tensor(unpinned, keys8192.secret), values.sum(axis=1), atol=1e-2
    )
    big = scheme8192.encrypt_tensor(np.ones(4096), keys8192.public)
    with pytest.raises(InputError, match="smaller batches"):
        big @ np.random.default_rng(6).normal(size=(4096, 64))
