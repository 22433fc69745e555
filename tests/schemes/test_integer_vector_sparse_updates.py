"""A few rows added to a large encrypted table (a training step's words in a vocabulary): the
largest noise and decryption bounds of the result are carried over from the table's and the
touched rows', and must equal what reading every row gives."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hennframework.schemes.integer_vector import IntegerVectorScheme
from hennframework.schemes.integer_vector.ciphertext import SPARSE_ROWS, Ciphertext

pytestmark = pytest.mark.filterwarnings(
    "ignore::hennframework.exceptions.InsecureParametersWarning"
)


def xp_backend() -> Any:
    from hennframework_backends._xp_backend import XpBackend

    return XpBackend()


def recomputed(ciphertext: Ciphertext) -> tuple[float, float]:
    """max_noise and decryption_bound read from every row (a copy without kept values)."""
    fresh = ciphertext.derive(
        ciphertext.data,
        ciphertext.noise,
        coeff_bound=ciphertext.coeff_bound,
        probable=ciphertext.probable_parts() if ciphertext.tracks_probable_noise else None,
    )
    return fresh.max_noise, fresh.decryption_bound


@pytest.mark.parametrize("backend", ["numpy", "xp"])
@pytest.mark.parametrize("table_kind", ["absorbed", "fresh", "noisier"])
def test_carried_bounds_equal_the_full_ones(backend: str, table_kind: str) -> None:
    """``absorbed``: no noise, as after a training step; ``fresh``: the added rows are the
    noisiest; ``noisier``: rows that are not added to keep the largest bounds."""
    scheme = IntegerVectorScheme("default", backend=xp_backend() if backend == "xp" else None)
    keys = scheme.keygen(seed=2)
    rng = np.random.default_rng(0)
    table = scheme.encrypt_tensor(rng.uniform(-1, 1, (4000, 3)), keys.public)
    rows = np.array([5, 5, -1, 17, 3999, 5, 1234])  # repeats and a negative index
    assert SPARSE_ROWS * np.unique(rows % 4000).size < 4000  # the sparse path
    x = scheme.encrypt_tensor(rng.uniform(-1, 1, (rows.size, 3)), keys.public)
    step = x * x  # more noise than a fresh encryption, and tracked high-probability parts
    if table_kind == "absorbed":
        found = scheme.absorb_noise(table)
        assert found is not None
        table = found[0]
    elif table_kind == "noisier":
        table = table * table * table
        step = scheme.encrypt_tensor(rng.uniform(-1, 1, (rows.size, 3)), keys.secret)  # noise 4
    assert table.max_noise >= 0 and table.decryption_bound >= 0  # read once, then kept
    assert table._max_noise is not None and table._decryption_bound is not None
    updated = table.scatter_add(rows, step)
    touched = np.unique(rows % 4000)
    untouched = np.setdiff1d(np.arange(4000), touched)
    noise = np.asarray(updated.noise)
    # where the largest bound is: in a row that was not added to, or in one that was
    assert (noise[untouched].max() > noise[touched].max()) == (table_kind == "noisier")
    carried = (updated._max_noise, updated._decryption_bound)
    assert carried[0] is not None and carried[1] is not None
    assert (carried[0], carried[1][1]) == recomputed(updated)
    # and again on the result (bounds carried twice)
    again = updated.scatter_add(rows[:3], step[:3])
    assert (again._max_noise, again._decryption_bound[1]) == recomputed(again)  # type: ignore[index]
    # the values: the table plus the products, each product's rational message (x x / f)
    # rounded once in the sum, so within 1.5 units of the sum of its rounded decryptions
    got = np.asarray(scheme.decrypt_tensor(again, keys.secret))
    expected = np.asarray(scheme.decrypt_tensor(table, keys.secret))
    products = np.asarray(scheme.decrypt_tensor(step, keys.secret))
    np.add.at(expected, rows, products)
    np.add.at(expected, rows[:3], products[:3])
    np.testing.assert_allclose(got, expected, rtol=0, atol=2.5 / scheme.params.scale)
    np.testing.assert_array_equal(got[untouched], expected[untouched])


def test_dense_updates_and_unknown_bounds_carry_nothing() -> None:
    scheme = IntegerVectorScheme("default")
    keys = scheme.keygen(seed=2)
    rng = np.random.default_rng(1)
    table = scheme.encrypt_tensor(rng.uniform(-1, 1, (40, 2)), keys.public)
    rows = np.arange(40)
    step = scheme.encrypt_tensor(rng.uniform(-1, 1, (40, 2)), keys.public)
    table.decryption_bound  # noqa: B018 - kept on the table
    dense = table.scatter_add(rows, step)  # every row: the whole-array path
    assert dense._max_noise is None and dense._decryption_bound is None
    fresh = scheme.encrypt_tensor(rng.uniform(-1, 1, (4000, 2)), keys.public)
    sparse = fresh.scatter_add(np.array([1, 2]), step[:2])  # nothing known to carry
    assert sparse._max_noise is None and sparse._decryption_bound is None
    assert sparse.decryption_bound == recomputed(sparse)[1]
