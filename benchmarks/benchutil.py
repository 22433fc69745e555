"""Shared pieces of the benchmark suite: how a measurement is described, keys, data, memory.

Every benchmark describes what it measured in ``benchmark.extra_info`` so that
``henn bench report`` can build its tables without parsing test names:

* ``kind``: ``scheme-op``, ``keygen``, ``model``, ``comparison`` or ``scaling``;
* ``operation``, ``m`` (vector length), ``batch``, ``params`` (parameter set), ``backend``;
* ``security``: ``INSECURE`` for every integer-vector parameter set, ``128-bit`` for TenSEAL's
  CKKS configuration, ``none (plaintext)`` for the NumPy baselines;
* ``implementation``: ``hennframework``, ``numpy`` or ``tenseal``; ``encrypted``: bool;
* ``items``/``unit``: how many ciphertexts, reviews or iterations one timed call handles, so the
  report can give the amortised time per item; after the run ``seconds_per_item`` and
  ``ops_per_second`` (items per second) are added from the median.
"""

from __future__ import annotations

import os
import tracemalloc
import warnings
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from hennframework.exceptions import InsecureParametersWarning
from hennframework.schemes.integer_vector import IntegerVectorParams, IntegerVectorScheme
from hennframework.schemes.integer_vector.params import PARAMETER_SETS

INSECURE = "INSECURE"
PLAINTEXT = "none (plaintext)"
ROOT = Path(__file__).resolve().parents[1]


def security_of(params: str | IntegerVectorParams) -> str:
    """The security label of an integer-vector parameter set.

    No set has a modulus yet, and without one the scheme is broken (see docs/scheme.md), so every
    set, named or built by hand, is labelled INSECURE.
    """
    chosen = PARAMETER_SETS[params] if isinstance(params, str) else params
    return INSECURE if chosen.modulus is None else f"{chosen.name}: see its security note"


def measure(
    benchmark: Any,
    function: Callable[..., Any],
    *,
    items: int = 1,
    unit: str = "ciphertext",
    rounds: int | None = None,
    setup: Callable[[], tuple[tuple[Any, ...], dict[str, Any]]] | None = None,
    warmup_rounds: int = 1,
    **info: Any,
) -> Any:
    """Time ``function`` and record what it measured (see the module docstring).

    Fast calls use pytest-benchmark's calibrated loop; slow ones pass ``rounds`` (a few rounds of
    one call each, via ``benchmark.pedantic``) so the whole suite stays short. ``setup`` (pedantic
    only) builds fresh arguments for each round outside the timed region.
    """
    benchmark.extra_info.update(info)
    benchmark.extra_info["items"] = items
    benchmark.extra_info["unit"] = unit
    benchmark.extra_info.setdefault("backend", "numpy")
    if rounds is None and setup is None:
        result = benchmark(function)
    else:
        result = benchmark.pedantic(
            function,
            setup=setup,
            rounds=rounds or 3,
            iterations=1,
            warmup_rounds=warmup_rounds,
        )
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    median = getattr(stats, "median", None)
    if median:  # absent with --benchmark-disable
        benchmark.extra_info["seconds_per_item"] = median / items
        benchmark.extra_info["ops_per_second"] = items / median
    return result


def peak_memory(function: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``function`` once under tracemalloc; return its result and the peak bytes it allocated.

    NumPy reports its array buffers to tracemalloc, so this counts key matrices and temporaries.
    """
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = function()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return result, max(0, peak - before)


def make_scheme(params: str | IntegerVectorParams) -> IntegerVectorScheme:
    """The integer-vector scheme on the NumPy backend, without the (known) insecurity warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureParametersWarning)
        return IntegerVectorScheme(params, backend="numpy")


def integer_messages(batch: int, m: int, bound: int = 100, seed: int = 0) -> np.ndarray:
    """Reproducible integer plaintexts in [-bound, bound], shape (batch, m) (not key material)."""
    return np.random.default_rng(seed).integers(-bound, bound + 1, size=(batch, m))


def transform_matrix(m: int, out: int | None = None, seed: int = 1) -> np.ndarray:
    """A reproducible small-integer matrix G (out x m) with entries in [-2, 2]."""
    return np.random.default_rng(seed).integers(-2, 3, size=(out or m, m))


class KeyCache:
    """Keys per (parameter set, m), made once per session with a fixed seed (reproducible)."""

    def __init__(self) -> None:
        self._schemes: dict[str, IntegerVectorScheme] = {}
        self._keys: dict[tuple[str, int, int], Any] = {}
        self._extras: set[tuple[str, int, str]] = set()

    def scheme(self, params: str) -> IntegerVectorScheme:
        if params not in self._schemes:
            self._schemes[params] = make_scheme(params)
        return self._schemes[params]

    def keys(self, params: str, m: int, which: int = 1) -> Any:
        """Key set number ``which`` for m-vectors: encryption and product keys for dim m."""
        slot = (params, m, which)
        if slot not in self._keys:
            scheme = self.scheme(params)
            products = (m,) if which == 1 else ()
            self._keys[slot] = scheme.keygen(
                seed=1000 * which + m, max_dim=m, dims=(m,), products=products
            )
        return self._keys[slot]

    def with_linear(self, params: str, m: int) -> tuple[Any, np.ndarray]:
        keys = self.keys(params, m)
        g = transform_matrix(m)
        if (params, m, "linear") not in self._extras:
            self.scheme(params).add_linear_key(keys, g)
            self._extras.add((params, m, "linear"))
        return keys, g

    def with_dot(self, params: str, m: int) -> Any:
        keys = self.keys(params, m)
        if (params, m, "dot") not in self._extras:
            self.scheme(params).add_dot_key(keys, m)
            self._extras.add((params, m, "dot"))
        return keys


@cache
def rt_polarity_dir() -> Path | None:
    """The shared rt-polarity folder (HENN_BENCH_DATA overrides), or None if it is absent."""
    override = os.environ.get("HENN_BENCH_DATA")
    candidates = [Path(override)] if override else []
    candidates += [ROOT.parent / "shared" / "data" / "rt-polarity", ROOT / "data" / "rt-polarity"]
    for candidate in candidates:
        if (candidate / "rt-polarity.pos").is_file() and (candidate / "rt-polarity.neg").is_file():
            return candidate
    return None
