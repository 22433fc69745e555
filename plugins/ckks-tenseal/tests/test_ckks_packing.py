"""Packing on real ciphertexts: few ciphertexts per weight matrix, cheap paths stay cheap and exact."""

from __future__ import annotations

import numpy as np
import pytest
from hennframework.exceptions import InputError
from hennframework.scheme import KeySet

from hennframework_ckks import CKKSScheme, CKKSTensor, LazyLinear
from hennframework_ckks.layout import Layout

TOL = 2e-3  # generous for n8192 after a few operations (precision ~4e-5 per operation)


def decrypt(scheme: CKKSScheme, keys: KeySet, tensor: object) -> np.ndarray:
    return scheme.decrypt_tensor(tensor, keys.secret)


def test_weight_matrices_use_few_ciphertexts(scheme8192: CKKSScheme, keys8192: KeySet) -> None:
    rng = np.random.default_rng(0)
    assert scheme8192.encrypt_tensor(rng.normal(size=(3, 4)), keys8192.public).ciphertext_count == 1
    assert scheme8192.encrypt_tensor(rng.normal(size=(4, 1)), keys8192.public).ciphertext_count == 1
    big = scheme8192.encrypt_tensor(rng.normal(size=(2000, 8)), keys8192.public)
    assert big.ciphertext_count == 4  # 16000 weights in 4 ciphertexts of 4096 slots
    assert "slot bits" in repr(big)


def test_plain_matmul_is_lazy_and_folds_constants(scheme8192: CKKSScheme, keys8192: KeySet) -> None:
    rng = np.random.default_rng(1)
    w_plain = rng.uniform(-1, 1, (3, 4))
    x = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
    w = scheme8192.encrypt_tensor(w_plain, keys8192.public)
    lazy = x @ w
    assert isinstance(lazy, LazyLinear) and lazy.shape == (4, 4)
    step = (x[:3] @ w).multiply_constant(0.1)  # folds into the plaintext: one level in total
    result = w - step
    assert result.levels_left == w.levels_left - 1
    np.testing.assert_allclose(
        decrypt(scheme8192, keys8192, result), w_plain - 0.1 * x[:3] @ w_plain, atol=TOL
    )
    # materialised: same values, layout with the batch where the contracted axis was
    z = lazy.materialize()
    assert z.layout.groups == ((2, 2), (0, 2)) and z.ciphertext_count == 1
    np.testing.assert_allclose(decrypt(scheme8192, keys8192, z), x @ w_plain, atol=TOL)


def test_rows_segment_sum_and_scatter_compose(scheme8192: CKKSScheme, keys8192: KeySet) -> None:
    """The sentiment network's pattern: W[words] -> segment sums; scatter_add of selected rows."""
    rng = np.random.default_rng(2)
    w_plain = rng.uniform(-1, 1, (40, 4))
    w = scheme8192.encrypt_tensor(w_plain, keys8192.public)
    words = np.array([3, 7, 9, 1, 3, 30])
    offsets = np.array([0, 3, 6])
    hidden = w[words].segment_sum(offsets)
    assert isinstance(hidden, LazyLinear)
    expected = np.stack([w_plain[[3, 7, 9]].sum(0), w_plain[[1, 3, 30]].sum(0)])
    np.testing.assert_allclose(decrypt(scheme8192, keys8192, hidden), expected, atol=TOL)
    delta = scheme8192.encrypt_tensor(rng.uniform(-1, 1, (2, 4)), keys8192.public)
    owner = np.array([0, 0, 0, 1, 1, 1])
    per_word = delta[owner].multiply_constant(-0.5)
    updated = w.scatter_add(words, per_word)
    assert updated.layout == w.layout and updated.levels_left == w.levels_left - 1
    reference = w_plain.copy()
    np.add.at(reference, words, -0.5 * decrypt(scheme8192, keys8192, delta)[owner])
    np.testing.assert_allclose(decrypt(scheme8192, keys8192, updated), reference, atol=TOL)


def test_segment_sums_with_empty_runs(scheme8192: CKKSScheme, keys8192: KeySet) -> None:
    """Reviews without a vocabulary word (empty runs, first, inside and last) sum to zero, and
    the other sums are those of their own rows; offsets that decrease are refused."""
    rng = np.random.default_rng(5)
    w_plain = rng.uniform(-1, 1, (40, 4))
    w = scheme8192.encrypt_tensor(w_plain, keys8192.public)
    words = np.array([3, 7, 9, 1, 3])
    offsets = np.array([0, 0, 3, 3, 5, 5])
    hidden = w[words].segment_sum(offsets)
    expected = np.stack(
        [
            np.zeros(4),
            w_plain[[3, 7, 9]].sum(0),
            np.zeros(4),
            w_plain[[1, 3]].sum(0),
            np.zeros(4),
        ]
    )
    np.testing.assert_allclose(decrypt(scheme8192, keys8192, hidden), expected, atol=TOL)
    with pytest.raises(InputError, match="must not decrease"):
        w[words].segment_sum(np.array([0, 4, 2, 5]))


def test_a_scaled_tensors_rows_fold_the_constant(scheme8192: CKKSScheme, keys8192: KeySet) -> None:
    """``delta.multiply_constant(c)[rows]`` selects from ``delta`` with ``c`` in the selection
    matrix: one level for the pair, as for the selection alone (the sentiment update's scatter
    of each review's scaled delta into its words' rows)."""
    rng = np.random.default_rng(4)
    w_plain = rng.uniform(-1, 1, (40, 4))
    delta_plain = rng.uniform(-1, 1, (3, 4))
    w = scheme8192.encrypt_tensor(w_plain, keys8192.public)
    delta = scheme8192.encrypt_tensor(delta_plain, keys8192.public)
    owner = np.array([0, 0, 1, 2, 2, 1])
    words = np.array([3, 7, 9, 1, 3, 30])
    scaled = delta.multiply_constant(-0.3)
    assert scaled.levels_left == delta.levels_left - 1  # the product itself still costs a level
    per_word = scaled[owner]
    assert isinstance(per_word, LazyLinear) and per_word.base is delta
    selected = per_word.materialize()
    assert selected.levels_left == delta.levels_left - 1
    np.testing.assert_allclose(
        decrypt(scheme8192, keys8192, selected), -0.3 * delta_plain[owner], atol=TOL
    )
    one_row = scaled[2]  # a single row: materialised at once, squeezed
    assert one_row.shape == (4,) and one_row.levels_left == delta.levels_left - 1
    np.testing.assert_allclose(
        decrypt(scheme8192, keys8192, one_row), -0.3 * delta_plain[2], atol=TOL
    )
    updated = w.scatter_add(words, per_word)
    assert updated.levels_left == delta.levels_left - 1
    reference = w_plain.copy()
    np.add.at(reference, words, -0.3 * delta_plain[owner])
    np.testing.assert_allclose(decrypt(scheme8192, keys8192, updated), reference, atol=TOL)
    # a product by a tensor, by zero or an operator product keeps no source: nothing to fold
    assert (delta * -0.3)[owner].base is not delta
    assert delta.multiply_constant(0.0)[owner].base is not delta
    assert (delta + delta).multiply_constant(0.5)[owner].base is not delta


def test_reshape_is_free_when_the_packing_allows(scheme8192: CKKSScheme, keys8192: KeySet) -> None:
    values = np.arange(12.0).reshape(3, 4) / 12
    t = scheme8192.encrypt_tensor(values, keys8192.public)
    flat = t.reshape(-1)
    assert flat.levels_left == t.levels_left  # same ciphertexts, relabelled
    np.testing.assert_allclose(decrypt(scheme8192, keys8192, flat), values.reshape(-1), atol=TOL)
    other = scheme8192.encrypt_tensor(values.T.copy(), keys8192.public).reshape(12)  # (4, 3): moves
    assert other.levels_left == t.levels_left - 1
    np.testing.assert_allclose(decrypt(scheme8192, keys8192, other), values.T.reshape(-1), atol=TOL)
    column = scheme8192.encrypt_tensor(values[:, :1], keys8192.public)
    assert column.reshape(3).levels_left == column.levels_left


def test_conflicting_packings_are_converted(scheme8192: CKKSScheme, keys8192: KeySet) -> None:
    """(4, 1) * (1, 4) both use slot bits 0-1 for different axes: one side is re-packed."""
    a_plain, b_plain = np.linspace(-1, 1, 4)[:, None], np.linspace(0.5, 1, 4)[None, :]
    a = scheme8192.encrypt_tensor(a_plain, keys8192.public)
    b = scheme8192.encrypt_tensor(b_plain, keys8192.public)
    np.testing.assert_allclose(decrypt(scheme8192, keys8192, a * b), a_plain * b_plain, atol=TOL)
    np.testing.assert_allclose(decrypt(scheme8192, keys8192, a + b), a_plain + b_plain, atol=TOL)


def test_sums_over_inner_groups_pin_and_unpin(scheme8192: CKKSScheme, keys8192: KeySet) -> None:
    """Summing a group with another above it leaves the result at index 0 (pinned); using it with
    a tensor that needs those bits replicates it again."""
    rng = np.random.default_rng(3)
    x_plain = rng.uniform(-1, 1, (4, 4))
    x = scheme8192.encrypt_tensor(x_plain, keys8192.public)
    column_sums = x.sum(axis=1)  # axis 1 is in bits 0-1, axis 0 above: pinned
    assert column_sums.layout.pinned == 0b11
    np.testing.assert_allclose(decrypt(scheme8192, keys8192, column_sums), x_plain.sum(1), atol=TOL)
    outer = column_sums.reshape(4, 1) * x  # needs bits 0-1 again
    np.testing.assert_allclose(
        decrypt(scheme8192, keys8192, outer), x_plain.sum(1)[:, None] * x_plain, atol=TOL
    )
    refreshed = scheme8192.refresh(column_sums, keys8192)
    assert refreshed.layout.pinned == 0


@pytest.mark.parametrize("rotations", ["pow2", "pow2+neg"])
def test_replicating_a_clean_pinned_sum_uses_no_level(
    scheme8192: CKKSScheme, keys8192: KeySet, rotations: str
) -> None:
    """A clean tensor's pinned sums are copied across their bits with rotations and additions
    (right rotations as left ones by the period less the step where there are no right-rotation
    keys), keeping its level; every copy lands where the next product reads it."""
    keys = keys8192 if rotations == "pow2" else scheme8192.keygen(rotations=rotations)
    rng = np.random.default_rng(5)
    x_plain, w = rng.uniform(-1, 1, (4, 4)), rng.uniform(-1, 1, 4)
    x = scheme8192.encrypt_tensor(x_plain, keys.public)
    sums = x.sum(axis=1) * w  # pinned bits 0-1; the plaintext vector zeroes the invalid slots
    assert sums.layout.pinned == 0b11 and sums.clean
    replicated = sums._unpin(0b11)
    assert replicated.layout.pinned == 0 and replicated.levels_left == sums.levels_left
    expected = x_plain.sum(axis=1) * w
    got = decrypt(scheme8192, keys, replicated)
    np.testing.assert_allclose(got, expected, atol=TOL)
    assert float(np.abs(got).max()) <= replicated.magnitude_bound
    outer = sums.reshape(4, 1) * x  # reads every copy in bits 0-1
    np.testing.assert_allclose(
        decrypt(scheme8192, keys, outer), expected[:, None] * x_plain, atol=TOL
    )


def test_replicating_pinned_bits_that_are_not_adjacent(
    scheme8192: CKKSScheme, keys8192: KeySet
) -> None:
    """Pinned bits 0 and 2 (two sums over inner groups) replicated at once, for a product with a
    tensor that uses both."""
    rng = np.random.default_rng(6)
    x_plain = rng.uniform(-1, 1, (2, 2, 2, 2))
    x = scheme8192.encrypt_tensor(x_plain, keys8192.public)
    sums = x.sum(axis=3).sum(axis=1) * np.array([[0.5, -1.0], [1.5, 2.0]])
    assert sums.layout.pinned == 0b101 and sums.clean
    levels = sums.levels_left
    outer = sums.reshape(2, 1, 2, 1) * x
    expected = (x_plain.sum(axis=3).sum(axis=1) * np.array([[0.5, -1.0], [1.5, 2.0]]))[
        :, None, :, None
    ] * x_plain
    np.testing.assert_allclose(decrypt(scheme8192, keys8192, outer), expected, atol=TOL)
    assert outer.levels_left == levels - 1  # the product's level only


def test_repeated_linear_maps_reuse_their_plan(scheme8192: CKKSScheme, keys8192: KeySet) -> None:
    """The same plaintext map on the same packing is planned once; its kept encodings are per
    level and scale, so reusing it lower down the chain still computes the right values."""
    from hennframework_ckks.linear import plan_linear

    rng = np.random.default_rng(7)
    w_plain = rng.uniform(-1, 1, (3, 4))
    x = rng.uniform(-1, 1, (4, 3))
    w = scheme8192.encrypt_tensor(w_plain, keys8192.public)
    flat = np.arange(12, dtype=np.int64)
    first = plan_linear(w.layout, w.layout, flat, flat, np.full(12, 0.5))
    assert plan_linear(w.layout, w.layout, flat, flat, np.full(12, 0.5)) is first
    assert plan_linear(w.layout, w.layout, flat, flat, np.full(12, 0.25)) is not first
    for tensor, factor in ((w, 1.0), (w * 0.5, 0.5), (w * 0.5 * 0.5, 0.25)):
        for _ in range(2):
            got = decrypt(scheme8192, keys8192, (x @ tensor).materialize())
            np.testing.assert_allclose(got, factor * x @ w_plain, atol=TOL)


def test_explicit_layout_and_grid_fallback(scheme8192: CKKSScheme, keys8192: KeySet) -> None:
    values = np.linspace(-1, 1, 6).reshape(2, 3)
    grid = scheme8192.encrypt_tensor(values, keys8192.public, layout=Layout.grid((2, 3), 12))
    assert grid.ciphertext_count == 6
    packed = scheme8192.encrypt_tensor(values, keys8192.public)
    np.testing.assert_allclose(decrypt(scheme8192, keys8192, grid * packed), values**2, atol=TOL)
    np.testing.assert_allclose(
        decrypt(scheme8192, keys8192, grid.T @ packed), values.T @ values, atol=TOL
    )


@pytest.mark.parametrize("shape", [(5,), (2, 3), (4, 4)])
def test_encrypted_matmul_shapes(
    scheme8192: CKKSScheme, keys8192: KeySet, shape: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(4)
    x_plain = rng.uniform(-1, 1, shape)
    y_plain = rng.uniform(-1, 1, (*shape[-1:], 2))
    x = scheme8192.encrypt_tensor(x_plain, keys8192.public)
    y = scheme8192.encrypt_tensor(y_plain, keys8192.public)
    result = x @ y
    assert isinstance(result, CKKSTensor)
    np.testing.assert_allclose(decrypt(scheme8192, keys8192, result), x_plain @ y_plain, atol=TOL)
