"""Where initial weights come from: the OS CSPRNG, or NumPy's PCG64 when a seed is given on purpose.

The owner encrypts a model's starting weights; if they were predictable (a fixed default seed),
anyone could subtract them from a decrypted or leaked trained model and read the sum of the
updates, which says something about the training data. So without a seed they are drawn from
:class:`hennframework.randomness.RandomSource` (``os.urandom``). A seed selects NumPy's
``default_rng(seed)`` stream instead, for reproducible experiments only: everyone who has the seed
can reproduce the weights, and seeded runs keep the weights they always had.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from hennframework.exceptions import InputError
from hennframework.randomness import RandomSource

__all__ = ["CSPRNGWeights", "WeightRandom", "weight_random"]

_UNIT = 2.0**-53  # spacing of the 53-bit doubles in [0, 1)


class CSPRNGWeights:
    """Uniform and normal float64 draws built from CSPRNG bytes (not NumPy's PCG64).

    Each value uses one 64-bit word: its top 53 bits give a double in [0, 1), every one of the
    2**53 grid points equally likely. Normals use the Box-Muller transform on two such values.
    """

    def __init__(self, source: RandomSource | None = None) -> None:
        self.source = source if source is not None else RandomSource()

    def _unit(self, count: int) -> npt.NDArray[np.float64]:
        words = np.frombuffer(self.source.random_bytes(8 * count), dtype=np.uint64)
        return (words >> np.uint64(11)).astype(np.float64) * _UNIT

    def uniform(
        self, low: float = 0.0, high: float = 1.0, size: tuple[int, ...] | int = ()
    ) -> npt.NDArray[np.float64]:
        """Values uniform on ``[low, high)`` with shape ``size``."""
        shape = (size,) if isinstance(size, int) else tuple(size)
        count = math.prod(shape)
        return (low + (high - low) * self._unit(count)).reshape(shape)

    def normal(
        self, loc: float = 0.0, scale: float = 1.0, size: tuple[int, ...] | int = ()
    ) -> npt.NDArray[np.float64]:
        """Values from N(loc, scale**2) with shape ``size`` (Box-Muller)."""
        shape = (size,) if isinstance(size, int) else tuple(size)
        count = math.prod(shape)
        radius_u = 1.0 - self._unit(count)  # (0, 1]: the logarithm stays finite
        angle_u = self._unit(count)
        values = np.sqrt(-2.0 * np.log(radius_u)) * np.cos(2.0 * np.pi * angle_u)
        return (loc + scale * values).reshape(shape)

    def __repr__(self) -> str:
        return f"CSPRNGWeights({self.source!r})"


#: What layers draw their initial weights from.
WeightRandom = np.random.Generator | CSPRNGWeights


def weight_random(seed: int | None) -> WeightRandom:
    """The source of initial weights: CSPRNG for ``seed=None``, ``default_rng(seed)`` otherwise."""
    if seed is None:
        return CSPRNGWeights()
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(
            f"the seed of the initial weights must be an integer >= 0, or None for fresh "
            f"weights from the operating system's CSPRNG; got {seed!r}."
        )
    return np.random.default_rng(int(seed))
