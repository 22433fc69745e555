"""Who holds which reviews: disjoint party shards that cover the training part."""

from __future__ import annotations

import numpy as np
import pytest

from hennframework.data.loaders import ReviewDataset
from hennframework.exceptions import InputError
from hennframework.federated.data import DataSpec, party_shard


def _dataset(n: int) -> ReviewDataset:
    labels = np.array([i % 2 for i in range(n)], dtype=np.int8)
    return ReviewDataset([f"review {i}" for i in range(n)], labels, "test", "utf-8")


@pytest.mark.parametrize("split", ["iid", "label-skew"])
@pytest.mark.parametrize(("n", "parties"), [(10, 3), (7, 7), (100, 4), (5, 1)])
def test_shards_are_disjoint_and_cover(split: str, n: int, parties: int) -> None:
    data = _dataset(n)
    shards = [party_shard(data, p, parties, split).reviews for p in range(parties)]
    everything = [review for shard in shards for review in shard]
    assert sorted(everything) == sorted(data.reviews)
    assert all(shards)


def test_label_skew_gives_parties_one_label() -> None:
    data = _dataset(100)
    first = party_shard(data, 0, 4, "label-skew")
    last = party_shard(data, 3, 4, "label-skew")
    assert set(first.labels.tolist()) == {0} and set(last.labels.tolist()) == {1}
    iid = party_shard(data, 0, 4, "iid")
    assert 0.3 < iid.labels.mean() < 0.7


def test_bad_splits_are_refused() -> None:
    data = _dataset(3)
    with pytest.raises(InputError, match="--parties"):
        party_shard(data, 0, 4, "iid")
    with pytest.raises(InputError, match="--split"):
        party_shard(data, 0, 2, "dirichlet")
    with pytest.raises(InputError, match="partition"):
        party_shard(data, 2, 2, "iid")


def test_spec_survives_the_config_round_trip() -> None:
    for spec in (
        DataSpec(),
        DataSpec(data="a.tsv", limit=50, test_size=0.25, lowercase=True),
        DataSpec(test_size=100, lowercase=False, tokenizer="words"),
    ):
        assert DataSpec.from_config(spec.to_config()) == spec
