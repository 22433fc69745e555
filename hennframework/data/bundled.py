"""Data shipped inside the package: the XOR rows and the sentence polarity dataset v1.0.

``henn demo sentiment`` with no ``--data`` trains on it, so the demo runs from a fresh clone. The
two files in ``hennframework/data/rt_polarity/`` are the published ones byte for byte (their
README gives the citation and checksums); they are read through :mod:`importlib.resources`, so
the copy works from a wheel or a zip as well as from a checkout.
"""

from __future__ import annotations

from dataclasses import replace
from importlib.resources import files
from importlib.resources.abc import Traversable

import numpy as np

from hennframework.data.loaders import ReviewDataset, polarity_from_bytes
from hennframework.data.naming import option
from hennframework.exceptions import DataFormatError

__all__ = [
    "RT_POLARITY_CITATION",
    "RT_POLARITY_NAME",
    "XOR_INPUTS",
    "XOR_TARGETS",
    "load_rt_polarity",
    "rt_polarity_files",
]

#: The XOR rows of Trask's 2017 post: two inputs and a constant 1 (his network has no bias).
XOR_INPUTS = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=np.float64)
#: Their targets, one column.
XOR_TARGETS = np.array([[0], [1], [1], [0]], dtype=np.float64)

#: How summaries name the shipped data.
RT_POLARITY_NAME = (
    "sentence polarity dataset v1.0 (Pang and Lee, ACL 2005), shipped with hennframework"
)
#: Whom to cite for results on it.
RT_POLARITY_CITATION = (
    'Bo Pang and Lillian Lee. "Seeing stars: Exploiting class relationships for sentiment '
    'categorization with respect to rating scales." Proceedings of ACL 2005.'
)


def rt_polarity_files() -> tuple[Traversable, Traversable]:
    """The shipped ``rt-polarity.pos`` and ``rt-polarity.neg`` (as package resources)."""
    folder = files("hennframework.data").joinpath("rt_polarity")
    return folder.joinpath("rt-polarity.pos"), folder.joinpath("rt-polarity.neg")


def load_rt_polarity() -> ReviewDataset:
    """The shipped polarity data: 5,331 positive reviews (label 1), then 5,331 negative ones."""
    pos, neg = rt_polarity_files()
    try:
        pos_bytes, neg_bytes = pos.read_bytes(), neg.read_bytes()
    except OSError as exc:
        raise DataFormatError(
            "the movie-review data shipped with hennframework (hennframework/data/rt_polarity) "
            f"cannot be read ({exc}); reinstall hennframework, or "
            f"{option('load your own copy with load_reviews()', 'pass your own data with --data')}."
        ) from exc
    dataset = polarity_from_bytes(
        pos_bytes, neg_bytes, names=("rt-polarity.pos", "rt-polarity.neg")
    )
    return replace(
        dataset,
        source=f"{RT_POLARITY_NAME}: {dataset.n_positive} positive + {dataset.n_negative} negative",
    )
