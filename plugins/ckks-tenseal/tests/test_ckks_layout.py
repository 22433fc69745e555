"""Slot layouts (pure NumPy, no encryption): placement, canonical positions, copies, rotations."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hennframework.exceptions import InputError
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hennframework_ckks._seal import decompose_rotation
from hennframework_ckks.layout import Layout, ceil_log2
from hennframework_ckks.linear import LinearPlan, plan_linear


def test_ceil_log2() -> None:
    assert [ceil_log2(n) for n in (1, 2, 3, 4, 5, 8, 9, 2000)] == [0, 1, 2, 2, 3, 3, 4, 11]


@pytest.mark.parametrize(
    ("shape", "slot_bits", "groups", "grid"),
    [
        ((3, 4), 13, ((2, 2), (0, 2)), (1, 1)),  # XOR first layer: one ciphertext
        ((4, 1), 13, ((0, 2), (0, 0)), (1, 1)),  # XOR second layer
        ((2000, 8), 13, ((3, 10), (0, 3)), (2, 1)),  # sentiment, N = 16384: two ciphertexts
        ((2000, 8), 12, ((3, 9), (0, 3)), (4, 1)),  # N = 8192: four
        ((5,), 2, ((0, 2),), (2,)),  # longer than the slots: split across ciphertexts
    ],
)
def test_default_layout(
    shape: tuple[int, ...],
    slot_bits: int,
    groups: tuple[tuple[int, int], ...],
    grid: tuple[int, ...],
) -> None:
    layout = Layout.default(shape, slot_bits)
    assert layout.groups == groups
    assert layout.grid_shape == grid


def test_invalid_layouts_are_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        Layout((4, 4), ((0, 2), (1, 2)), 6)
    with pytest.raises(ValueError, match="size 1"):
        Layout((1,), ((0, 1),), 6)
    with pytest.raises(ValueError, match="pinned"):
        Layout((4,), ((0, 2),), 6, pinned=0b1)
    with pytest.raises(InputError):
        Layout((-1,), ((0, 0),), 6)


def test_free_bits_period_and_top() -> None:
    layout = Layout((3, 4), ((2, 2), (0, 2)), 6)
    assert layout.free == 0b110000
    assert layout.period == 16
    assert layout.axis_is_top(0) and not layout.axis_is_top(1)
    assert layout.lowest_free_run(2) == 4
    assert layout.lowest_free_run(3) is None
    dropped = layout.drop_axis(1, pin=True)
    assert dropped.pinned == 0b11 and dropped.free == 0b110000
    assert layout.drop_axis(0, pin=False).free == 0b111100


@st.composite
def layouts(draw: st.DrawFn) -> Layout:
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6))
    slot_bits = draw(st.integers(2, 7))
    return Layout.default(tuple(shape), slot_bits)


@given(layout=layouts(), data=st.data())
def test_slot_vectors_hold_each_element_at_its_positions(
    layout: Layout, data: st.DataObject
) -> None:
    """Every element sits at its canonical slot and all its free-bit copies; invalid slots are 0."""
    values = data.draw(
        hnp.arrays(np.float64, layout.shape, elements=st.floats(-5, 5).filter(lambda v: v != 0))
    )
    cell_of, position = layout.canonical
    cells = layout.cells()
    seen = set()
    for flat, (cell, pos) in enumerate(zip(cell_of, position, strict=True)):
        assert (int(cell), int(pos)) not in seen  # one canonical place per element
        seen.add((int(cell), int(pos)))
        vector = layout.slot_vector(values, cells[int(cell)])
        full = np.full(layout.slots, vector) if isinstance(vector, float) else vector
        expected = values.reshape(-1)[flat]
        copies = [pos | extra for extra in range(layout.slots) if extra & ~layout.free == 0]
        assert np.all(full[copies] == expected)
    total_valid = 0
    for cell in cells:
        flat, valid = layout.cell_map(cell)
        vector = layout.slot_vector(values, cell)
        full = np.full(layout.slots, vector) if isinstance(vector, float) else vector
        assert np.all(full[~valid] == 0.0)
        total_valid += int(valid.sum())
    copies_per_element = 1 << bin(layout.free).count("1")
    assert total_valid == values.size * copies_per_element


def test_rotation_decomposition() -> None:
    pow2 = frozenset(1 << k for k in range(12))
    assert decompose_rotation(5, 4096, pow2) == [1, 4]
    assert decompose_rotation(4096 + 3, 4096, pow2) == [1, 2]
    both = pow2 | frozenset(-(1 << k) for k in range(12))
    assert decompose_rotation(7, 4096, both) == [-1, 8]  # non-adjacent form is shorter
    assert decompose_rotation(-1, 4096, both) == [-1]
    # keys for a few steps: the shortest sum of them, modulo the slots
    assert decompose_rotation(3, 4096, frozenset({1})) == [1, 1, 1]
    assert decompose_rotation(24, 4096, frozenset({1, 8, 128})) == [8, 8, 8]
    assert decompose_rotation(2050, 4096, frozenset({1, 2048})) == [1, 1, 2048]
    assert decompose_rotation(3, 4096, frozenset({1, -1, 8})) == [1, 1, 1]
    assert decompose_rotation(7, 4096, frozenset({-1, 8})) == [-1, 8]
    with pytest.raises(InputError, match="rotation key"):
        decompose_rotation(3, 4096, frozenset({2, 4}))  # even steps never make an odd one


def _bag_of_words_map(seed: int, reviews: int, words: int) -> tuple[Any, ...]:
    """``plan_linear``'s arguments for S (reviews x 2000 bag-of-words, up to ``words`` distinct
    random words each) @ W (2000 x 8 weights at N = 16384)."""
    rng = np.random.default_rng(seed)
    chosen = [np.unique(rng.integers(0, 2000, size=words)) for _ in range(reviews)]
    inner = Layout.default((2000, 8), 13)
    out = Layout((reviews, 8), ((3, ceil_log2(reviews)), (0, 3)), 13)
    rows = np.concatenate([np.full(len(w), b) for b, w in enumerate(chosen)])
    cols = np.concatenate(chosen)
    out_flat = (rows[:, None] * 8 + np.arange(8)).reshape(-1)
    in_flat = (cols[:, None] * 8 + np.arange(8)).reshape(-1)
    return inner, out, out_flat, in_flat, np.ones(out_flat.size)


def test_sentiment_linear_map_needs_32_diagonals() -> None:
    """S (32 x 2000 bag-of-words) @ W (2000 x 8): 32 diagonals and ~16 rotations, not 320."""
    plan = plan_linear(*_bag_of_words_map(seed=0, reviews=32, words=20))
    diagonals = {d for pair in plan.diagonals.values() for d in pair}
    assert len(diagonals) == 32
    assert plan.rotations <= 40


def test_linear_plans_count_key_switches_with_the_keys_there_are() -> None:
    """With keys for a few steps, the baby/giant split is chosen by what a rotation costs with
    those keys (the shortest sum of them), not by its popcount; the same diagonals either way."""
    from hennframework_ckks.linear import _bsgs_cost, rotation_cost

    few = frozenset({1, 8, 64, 512})
    by_popcount = plan_linear(*_bag_of_words_map(seed=1, reviews=256, words=12))
    by_keys = plan_linear(*_bag_of_words_map(seed=1, reviews=256, words=12), few)
    assert by_keys is not by_popcount  # the key steps are part of the cached plan's key
    assert rotation_cost(8192, None)(4096 + 8) == 2 == rotation_cost(8192, few)(520)
    assert rotation_cost(8192, few)(4096) == 8 and rotation_cost(8192, frozenset({2}))(1) == 8192
    for plan in (by_popcount, by_keys):
        assert {d for pair in plan.diagonals.values() for d in pair} == {
            d for pair in by_popcount.diagonals.values() for d in pair
        }

    def cost_with_few_keys(plan: LinearPlan) -> int:
        diagonals = sorted({d for pair in plan.diagonals.values() for d in pair})
        outputs = len({o for o, _ in plan.diagonals})
        return _bsgs_cost(diagonals, plan.giant, outputs, rotation_cost(8192, few))

    assert cost_with_few_keys(by_keys) < cost_with_few_keys(by_popcount)


@pytest.mark.parametrize("seed", range(5))
def test_unique_triples_match_numpy_unique_rows(seed: int) -> None:
    """The plan's one-sort unique gives np.unique(axis=0)'s rows, order and inverse."""
    from hennframework_ckks.linear import _unique_triples

    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 5000))
    limit = int(rng.choice([1, 7, 8192]))
    first = rng.integers(0, int(rng.integers(1, 4)), size)
    second = rng.integers(0, int(rng.integers(1, 40)), size)
    third = rng.integers(0, limit, size)
    rows, inverse = _unique_triples(first, second, third, limit)
    expected, expected_inverse = np.unique(
        np.stack([first, second, third], axis=1), axis=0, return_inverse=True
    )
    np.testing.assert_array_equal(rows, expected)
    np.testing.assert_array_equal(inverse, expected_inverse.reshape(-1))
    np.testing.assert_array_equal(rows[inverse], np.stack([first, second, third], axis=1))
