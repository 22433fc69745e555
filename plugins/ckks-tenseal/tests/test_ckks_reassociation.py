"""``(X W1) W2`` computed as ``X (W1 W2)``: the embedding model's packing and the deferred results.

The sentiment network's hidden layer is linear in its table ``W1``, so a step can apply the data's
plaintext selection ``X`` to one vector (``W1 W2``) instead of to all of ``W1``'s columns, and its
two gradients share one map of the output delta. These tests check the packing that allows it,
that every deferred result equals the product as written (values, levels, packing), and that the
orders are chosen only where they hold.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hennframework.nn import BagOfWords, Dense, EmbeddingSum, Sequential, Sigmoid, make_batches
from hennframework.scheme import AFTER_GATHERED_ROWS, GATHERED_ROWS, KeySet

from hennframework_ckks import CKKSScheme, OwnerRefresher
from hennframework_ckks.layout import Layout
from hennframework_ckks.tensor import (
    CKKSTensor,
    LazyContraction,
    LazyLinear,
    LazyOuter,
    _encrypted_matmul,
    gathers_rows,
)

VOCABULARY, HIDDEN = 300, 4


def _batch(seed: int, reviews: int = 6) -> Any:
    rng = np.random.default_rng(seed)
    words = [
        np.unique(rng.integers(0, VOCABULARY, size=rng.integers(1, 12))) for _ in range(reviews)
    ]
    labels = rng.integers(0, 2, size=reviews).astype(float)
    return make_batches(BagOfWords.from_reviews(words), labels, reviews)[0]


def _plain_model(seed: int = 0) -> Sequential:
    model = Sequential.bag_of_words(VOCABULARY, HIDDEN, activation="lsq3", seed=seed)
    table = np.random.default_rng(seed + 1).normal(0.0, 0.3, (VOCABULARY, HIDDEN))
    model.set_weights([table, model.weights()[1]])  # the zeros of a new table hide mistakes
    return model


def _assert_decrypts_to(scheme: CKKSScheme, keys: KeySet, value: Any, want: Any) -> None:
    """``value`` decrypts to ``want`` within the error bound the tensor tracks."""
    tensor = value.materialize() if hasattr(value, "materialize") else value
    got = scheme.decrypt_tensor(tensor, keys.secret)
    np.testing.assert_allclose(got, want, rtol=0, atol=float(tensor.errors.max()))


def _default_packing(model: Sequential, scheme: CKKSScheme, keys: KeySet) -> Sequential:
    """The model encrypted with every parameter in the default packing (as before)."""
    encrypted = model.encrypt(keys, scheme)
    encrypted.set_weights([scheme.encrypt_tensor(w, keys.secret) for w in model.weights()])
    return encrypted


def test_the_embedding_model_is_packed_for_its_uses(
    scheme16384: CKKSScheme, keys16384: KeySet
) -> None:
    model = _plain_model()
    assert model.parameter_uses() == [GATHERED_ROWS, AFTER_GATHERED_ROWS]
    table, weights = model.encrypt(keys16384, scheme16384).weights()
    slot_bits = keys16384.public.context.slot_bits
    assert table.layout == Layout.gathered_rows((VOCABULARY, HIDDEN), slot_bits)
    assert table.layout.groups == ((0, 9), (9, 2)) and gathers_rows(table.layout)
    assert weights.layout.groups == ((9, 2), (0, 0))  # the table's column bits
    # models without a table keep the default packing
    mlp = Sequential.mlp([3, 4, 1], seed=0).encrypt(keys16384, scheme16384)
    assert mlp.parameter_uses() == [None, None]
    assert [w.layout for w in mlp.weights()] == [
        Layout.default(w.shape, slot_bits) for w in mlp.weights()
    ]


def test_gathered_rows_layouts_at_the_edges() -> None:
    assert Layout.gathered_rows((4096, 8), 12).groups == ((0, 12), (0, 0))  # columns: ciphertexts
    assert Layout.gathered_rows((4096, 8), 12).grid_shape == (1, 8)
    assert Layout.gathered_rows((5000, 8), 12) == Layout.default((5000, 8), 12)  # rows do not fit
    assert Layout.gathered_rows((1, 8), 12) == Layout.default((1, 8), 12)
    assert Layout.gathered_rows((100, 1), 12).groups == ((0, 7), (0, 0))
    table = Layout.gathered_rows((1000, 8), 12)  # 10 row bits, 2 column bits, 2 ciphertexts
    assert table.after_gathered_rows((8, 1)) == Layout((8, 1), ((10, 2), (0, 0)), 12)
    assert table.after_gathered_rows((8, 3)) == Layout((8, 3), ((10, 2), (0, 0)), 12)
    assert table.after_gathered_rows((5, 1)) is None  # not the table's columns
    assert not gathers_rows(Layout.default((1000, 8), 12))


def test_the_forward_pass_reassociates_and_matches(
    scheme16384: CKKSScheme, keys16384: KeySet
) -> None:
    """Same values and levels as ``(X W1) W2``; ``X W1`` itself is never computed."""
    model = _plain_model()
    batch = _batch(1)
    encrypted = model.encrypt(keys16384, scheme16384)
    caches: list[dict[str, Any]] = []
    out = encrypted.forward(batch.inputs, caches)
    hidden = caches[1]["input"]
    assert isinstance(hidden, LazyLinear) and hidden._value is None  # X W1 not computed
    as_before = _default_packing(model, scheme16384, keys16384).forward(batch.inputs)
    want = model.forward(batch.inputs)
    _assert_decrypts_to(scheme16384, keys16384, out, want)
    _assert_decrypts_to(scheme16384, keys16384, as_before, want)
    assert out.levels_left == as_before.levels_left


def test_a_training_step_matches_plaintext_and_keeps_the_packing(
    scheme16384: CKKSScheme, keys16384: KeySet
) -> None:
    model = _plain_model()
    batches = [_batch(2), _batch(3)]
    encrypted = model.encrypt(keys16384, scheme16384)
    as_before = _default_packing(model, scheme16384, keys16384)
    layouts = [w.layout for w in encrypted.weights()]
    refresher = OwnerRefresher(scheme16384, keys16384)
    for batch in batches:
        encrypted.train_step(batch, 0.1, with_loss=False)
        as_before.train_step(batch, 0.1, with_loss=False)
        model.train_step(batch, 0.1)
        assert [w.layout.replace(pinned=0) for w in encrypted.weights()] == layouts
        steps = [scheme16384.params.levels - int(w.levels_left) for w in encrypted.weights()]
        assert steps == [7, 7]  # as many levels as the order as written
        encrypted.refresh(refresher)
        as_before.refresh(refresher)
        assert [w.layout for w in encrypted.weights()] == layouts
    for got, old, want in zip(
        encrypted.decrypt(keys16384.secret).weights(),
        as_before.decrypt(keys16384.secret).weights(),
        model.weights(),
        strict=True,
    ):
        np.testing.assert_allclose(got, want, atol=2e-3)
        np.testing.assert_allclose(old, want, atol=2e-3)


def _tensors(scheme: CKKSScheme, keys: KeySet, seed: int) -> tuple[Any, ...]:
    rng = np.random.default_rng(seed)
    slot_bits = keys.public.context.slot_bits
    table_layout = Layout.gathered_rows((40, 4), slot_bits)
    after = table_layout.after_gathered_rows((4, 1))
    values = (rng.normal(size=(6, 1)), rng.normal(size=(4, 1)), rng.normal(size=(40, 4)))
    delta = scheme.encrypt_tensor(values[0], keys.secret)
    weights = scheme.encrypt_tensor(values[1], keys.secret, layout=after)
    table = scheme.encrypt_tensor(values[2], keys.secret, layout=table_layout)
    return delta, weights, table, values


def test_an_outer_product_is_deferred_and_equals_the_product(
    scheme16384: CKKSScheme, keys16384: KeySet
) -> None:
    delta, weights, _, (d, w, _) = _tensors(scheme16384, keys16384, 4)
    outer = delta @ weights.T
    assert isinstance(outer, LazyOuter) and outer.shape == (6, 4)
    want = d @ w.T

    def check(value: Any, expected: Any) -> None:
        _assert_decrypts_to(scheme16384, keys16384, value, expected)

    check(outer, want)
    check(-(outer * 0.5), -0.5 * want)
    check(outer.multiply_constant(0.0), 0 * want)
    check(outer[[5, 0, 0]], want[[5, 0, 0]])
    check(outer[2], want[2])
    check(outer + outer, 2 * want)
    as_written = _encrypted_matmul(delta, weights.T)
    assert outer.materialize().levels_left == as_written.levels_left


@pytest.mark.parametrize("packed", [True, False])
def test_a_scatter_of_an_outer_product_matches_the_scatter_as_written(
    scheme16384: CKKSScheme, keys16384: KeySet, packed: bool
) -> None:
    """Into a column-major table the rows are contracted first; into any other packing the
    product is computed as written. Both give ``T + R (c (d w^T))[owner]``."""
    delta, weights, table, (d, w, t) = _tensors(scheme16384, keys16384, 5)
    if not packed:
        table = scheme16384.encrypt_tensor(t, keys16384.secret)
    owner = np.array([0, 0, 1, 3, 5, 5, 5, 2])
    rows = np.array([7, 39, 7, 0, 1, 2, 7, 12])
    step = (delta @ weights.T).multiply_constant(-0.3)[owner]
    assert isinstance(step, LazyOuter) and step.contracts_into(table) == packed
    updated = table.scatter_add(rows, step)
    want = t.copy()
    np.add.at(want, rows, (-0.3 * (d @ w.T))[owner])
    _assert_decrypts_to(scheme16384, keys16384, updated, want)
    assert updated.layout.replace(pinned=0) == table.layout
    with pytest.raises(Exception, match="rows"):
        table.scatter_add(rows[:3], step)


def test_the_two_gradients_share_one_map_of_the_delta(
    scheme16384: CKKSScheme, keys16384: KeySet
) -> None:
    """``(X W1).T @ delta`` is a LazyContraction; scaled, it scales ``W1``, and its map of the
    delta is the one the scatter of ``delta @ W2.T`` uses (computed once)."""
    delta, weights, table, (d, _, t) = _tensors(scheme16384, keys16384, 6)
    selection = np.zeros((6, 40))
    words = [[0, 3], [3], [7, 8, 9], [39], [1, 2, 3, 4], [0]]
    for review, ids in enumerate(words):
        selection[review, ids] = 1.0
    hidden = LazyLinear(selection, table)
    gradient = hidden.T @ delta
    assert isinstance(gradient, LazyContraction) and gradient.shape == (4, 1)
    scaled = gradient.multiply_constant(-0.2)
    rows = np.concatenate([np.asarray(ids) for ids in words])
    owner = np.repeat(np.arange(6), [len(ids) for ids in words])
    table.scatter_add(rows, (delta @ weights.T).multiply_constant(-0.2)[owner])
    assert len(delta._maps) == 1
    value = scaled.materialize()
    assert len(delta._maps) == 1  # the same map, not computed again
    _assert_decrypts_to(scheme16384, keys16384, value, -0.2 * (selection @ t).T @ d)
    assert isinstance(-gradient, LazyContraction)
    # on a table in the default packing the product is formed as written
    plain_table = scheme16384.encrypt_tensor(t, keys16384.secret)
    as_written = LazyLinear(selection, plain_table).T @ delta
    assert isinstance(as_written, CKKSTensor)
    _assert_decrypts_to(scheme16384, keys16384, as_written, (selection @ t).T @ d)


def test_a_plain_map_is_computed_once_per_tensor_and_matrix(
    scheme16384: CKKSScheme, keys16384: KeySet
) -> None:
    delta = scheme16384.encrypt_tensor(np.arange(6.0).reshape(6, 1), keys16384.secret)
    matrix = np.eye(6)[[1, 2]]
    first = delta.plain_matmul_left(matrix)
    assert delta.plain_matmul_left(np.array(matrix, order="F")) is first  # same values
    assert delta.plain_matmul_left(2 * matrix) is not first
    assert delta.plain_matmul_left(np.eye(6)[[1, 2, 3]]) is not first
    # only the last two are kept: weights predicting batch after batch keep no history
    assert len(delta._maps) == 2 and delta.plain_matmul_left(matrix) is not first


def test_reencryption_keeps_the_packing(scheme16384: CKKSScheme, keys16384: KeySet) -> None:
    _, _, table, (_, w, t) = _tensors(scheme16384, keys16384, 7)
    again = scheme16384.encrypt_like(t, table, keys16384.public)
    assert again.layout == table.layout
    _assert_decrypts_to(scheme16384, keys16384, again, t)
    # values of another shape cannot take the packing: the default one
    other = scheme16384.encrypt_like(np.ones(3), table, keys16384.public)
    assert other.layout == Layout.default((3,), keys16384.public.context.slot_bits)
    with pytest.raises(ValueError, match="one use"):
        scheme16384.encrypt_parameters([t, w], keys16384.public, [GATHERED_ROWS])


def test_a_table_before_a_layer_of_two_outputs_trains_like_plaintext(
    scheme16384: CKKSScheme, keys16384: KeySet
) -> None:
    """Two outputs: the forward pass and the output weights' gradient are reordered (each
    output in its own ciphertexts); the input delta is no outer product and is formed as
    written, then scattered into the column-major table with a plaintext map."""
    rng = np.random.default_rng(8)
    model = Sequential(
        [
            EmbeddingSum(VOCABULARY, HIDDEN, weights=rng.normal(0, 0.3, (VOCABULARY, HIDDEN))),
            Dense(HIDDEN, 2, weights=rng.normal(0, 1, (HIDDEN, 2))),
            Sigmoid("lsq3"),
        ]
    )
    batch = _batch(9)
    batch = type(batch)(batch.inputs, np.stack([batch.targets[:, 0], 1 - batch.targets[:, 0]], 1))
    encrypted = model.encrypt(keys16384, scheme16384)
    caches: list[dict[str, Any]] = []
    encrypted.forward(batch.inputs, caches)
    assert caches[1]["input"]._value is None  # reordered
    encrypted.train_step(batch, 0.1, with_loss=False)
    model.train_step(batch, 0.1)
    for got, want in zip(
        encrypted.decrypt(keys16384.secret).weights(), model.weights(), strict=True
    ):
        np.testing.assert_allclose(got, want, atol=2e-3)


def test_partial_sums_left_in_pinned_slots_stay_within_their_bound(
    scheme16384: CKKSScheme, keys16384: KeySet
) -> None:
    """A sum over low slot bits leaves partial sums between its results; for a clean tensor
    each is the tail of one row plus the head of the next, bounded by twice the largest row
    sum, not by the largest element times the number of terms. Every raw slot is checked."""
    from hennframework_ckks._seal import sa

    rng = np.random.default_rng(11)
    values = rng.uniform(-0.01, 0.01, (4, 64))
    values[0, 5] = 3.0  # one large term: the old bound was 3 * 64
    values[2, 40] = -2.0
    layout = Layout((4, 64), ((6, 2), (0, 6)), keys16384.public.context.slot_bits)
    tensor = scheme16384.encrypt_tensor(values, keys16384.secret, layout=layout)
    assert tensor.clean
    summed = tensor.sum(axis=1)
    assert summed.layout.pinned == 63  # bits 0-5 hold partial sums
    (bound,) = summed.cell_bounds
    row_sums = np.abs(values).sum(axis=1)
    assert bound.garbage <= 2 * row_sums.max() + 1e-12 < 3.0 * 64
    plain = sa.Plaintext()
    keys16384.secret.decryptor.decrypt(summed.ciphertexts[0], plain)
    raw = keys16384.public.context.decode(plain)
    assert np.abs(raw).max() <= bound.content + bound.error
    np.testing.assert_allclose(
        scheme16384.decrypt_tensor(summed, keys16384.secret), values.sum(axis=1), atol=bound.error
    )
