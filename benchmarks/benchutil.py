"""Shared pieces of the benchmark suite: how a measurement is described, keys, data, memory.

Every benchmark describes what it measured in ``benchmark.extra_info`` so that
``henn bench report`` can build its tables without parsing test names:

* ``kind``: ``scheme-op``, ``keygen``, ``model``, ``comparison``, ``scaling``, ``keys`` or
  ``reference`` (vhe.cpp, timed by its own driver: its statistics are in ``external_stats``);
* ``operation``, ``m`` (vector length), ``batch``, ``params`` (parameter set), ``backend``;
* ``security``: ``INSECURE`` for every integer-vector parameter set, ``128-bit`` for TenSEAL's
  CKKS configuration, ``none (plaintext)`` for the NumPy baselines;
* ``implementation``: ``hennframework``, ``numpy``, ``tenseal`` or ``vhe.cpp``; ``encrypted``: bool;
* memory, where measured: ``peak_bytes`` (tracemalloc peak of one call after a first one),
  ``kept_bytes`` (what the first call kept for later calls), ``output_bytes`` (a ciphertext's
  coefficients and noise bounds), ``coefficient_bytes`` (its coefficients alone), ``key_bytes``
  (the key the operation uses);
* ``items``/``unit``: how many ciphertexts, reviews or iterations one timed call handles, so the
  report can give the amortised time per item; after the run ``seconds_per_item`` and
  ``ops_per_second`` (items per second) are added from the median.
"""

from __future__ import annotations

import copy
import os
import time
import tracemalloc
import warnings
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from hennframework.bench.vhecpp import (
    BuildOutcome,
    DriverReport,
    DriverTiming,
    ReferenceRunError,
    build_driver,
    dot_memory_reason,
    find_vhe_source,
    run_driver,
)
from hennframework.exceptions import InsecureParametersWarning
from hennframework.randomness import RandomSource
from hennframework.registry import get_backend
from hennframework.schemes.integer_vector import IntegerVectorParams, IntegerVectorScheme
from hennframework.schemes.integer_vector.params import PARAMETER_SETS

INSECURE = "INSECURE"
PLAINTEXT = "none (plaintext)"
ROOT = Path(__file__).resolve().parents[1]
#: Our timing driver for vhe.cpp, and where the suite builds it (ignored by git).
VHE_DRIVER_SOURCE = ROOT / "benchmarks" / "vhe_driver" / "driver.cpp"
VHE_BUILD_DIR = ROOT / ".benchmarks" / "vhe-build"


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


def kept_memory(function: Callable[[], Any]) -> int:
    """Run ``function`` once under tracemalloc, dropping its result at once; return the bytes
    still allocated after it: what a first call builds and keeps for later calls (the digit
    plans a scheme keeps, the parts of a key it reads), which are not temporaries."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        function()  # the result is freed here (no reference is kept)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return max(0, after - before)


def make_scheme(params: str | IntegerVectorParams) -> IntegerVectorScheme:
    """The integer-vector scheme on the NumPy backend, without the (known) insecurity warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureParametersWarning)
        return IntegerVectorScheme(params, backend=get_backend("numpy"))


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
        self._made: dict[tuple[str, int, str], Any] = {}

    def scheme(self, params: str) -> IntegerVectorScheme:
        if params not in self._schemes:
            self._schemes[params] = make_scheme(params)
        return self._schemes[params]

    def keys(self, params: str, m: int, which: int = 1) -> Any:
        """Key set number ``which`` for m-vectors: the encryption key for dim m, and for sets 1
        the product key too (sets 2 and 3, without it, are quicker to make at large m)."""
        slot = (params, m, which)
        if slot not in self._keys:
            scheme = self.scheme(params)
            products = (m,) if which == 1 else ()
            self._keys[slot] = scheme.keygen(
                seed=1000 * which + m, max_dim=m, dims=(m,), products=products
            )
        return self._keys[slot]

    def with_linear(self, params: str, m: int, which: int = 1) -> tuple[Any, np.ndarray]:
        keys = self.keys(params, m, which)
        g = transform_matrix(m)
        slot = (params, m, f"linear{which}")
        if slot not in self._made:
            self._made[slot] = self.scheme(params).add_linear_key(keys, g)
        return keys, g

    def with_dot(self, params: str, m: int, which: int = 1) -> Any:
        keys = self.keys(params, m, which)
        slot = (params, m, f"dot{which}")
        if slot not in self._made:
            self._made[slot] = self.scheme(params).add_dot_key(keys, m)
        return keys

    def made(self, params: str, m: int, kind: str, which: int = 1) -> Any:
        """The evaluation key that with_linear / with_dot made (kind "linear" or "dot")."""
        return self._made[(params, m, f"{kind}{which}")]


def output_bytes(result: Any) -> int:
    """Bytes of an operation's output: a ciphertext's coefficients and the noise bounds it
    carries (``noise``, ``noise_det``, ``noise_sg``: arrays of the batch shape, part of what the
    operation returns, not temporaries), a key's matrix, an array's."""
    data = getattr(result, "data", None)
    if data is not None and hasattr(data, "nbytes"):
        carried = (getattr(result, name, None) for name in ("noise", "noise_det", "noise_sg"))
        return int(data.nbytes) + sum(
            int(part.nbytes) for part in carried if isinstance(part, np.ndarray)
        )
    return int(getattr(result, "nbytes", 0))


def scheme_operation(
    key_cache: KeyCache, params: str, op: str, m: int, batch: int, which: int = 1
) -> tuple[Callable[[], Any], Callable[[Any], bool], int]:
    """One scheme operation on a batch of m-vectors, ready to time.

    Returns the call, a check of its result against the plaintext computation (every benchmark
    verifies what it timed) and the size in bytes of the key the operation uses. ``which`` picks
    the key set (1 has product keys; 2 does not and is quicker to make at large m).
    """
    scheme = key_cache.scheme(params)
    keys = key_cache.keys(params, m, which)
    # The `seed` set's w = 2**25 leaves little noise room for inner products of 100s: use 10s.
    bound = 10 if params == "seed" else 100
    x = integer_messages(batch, m, bound, seed=m)
    y = integer_messages(batch, m, bound, seed=m + 1)
    if op == "encrypt":
        return (
            lambda: scheme.encrypt(x, keys.public, dim=m),
            lambda c: bool((scheme.decrypt(c, keys) == x).all()),
            keys.public.encryption[m].nbytes,
        )
    if op == "dot_keygen":
        # Timed as a key holder makes keys: from the operating system's CSPRNG. The cached key
        # sets are seeded (reproducible ciphertexts across runs), and a seeded stream (SHAKE-256,
        # for tests and demos only) is not the path whose speed matters.
        owner = copy.copy(keys)
        owner.rng = RandomSource()
        made = scheme.add_dot_key(owner, m)  # the key the timed calls make again
        return lambda: scheme.add_dot_key(owner, m), lambda k: k.nbytes > 0, made.nbytes
    cx = scheme.encrypt(x, keys.public, dim=m)
    if op == "decrypt":
        return (
            lambda: scheme.decrypt(cx, keys),
            lambda d: bool((d == x).all()),
            keys.public.encryption[m].nbytes,
        )
    if op == "key_switch":
        other = key_cache.keys(params, m, which=which + 1)
        switch = scheme.make_switch_key(keys, other, dim=m)
        return (
            lambda: scheme.switch_key(cx, switch),
            lambda c: bool((scheme.decrypt(c, other) == x).all()),
            switch.nbytes,
        )
    if op == "linear_transform":
        keys, g = key_cache.with_linear(params, m, which)
        key = key_cache.made(params, m, "linear", which)
        return (
            lambda: scheme.linear_transform(cx, g),
            lambda c: bool((scheme.decrypt(c, keys) == x @ g.T).all()),
            key.nbytes,
        )
    if op == "dot":
        keys = key_cache.with_dot(params, m, which)
        cy = scheme.encrypt(y, keys.public, dim=m)
        key = key_cache.made(params, m, "dot", which)
        return (
            lambda: scheme.dot(cx, cy),
            lambda c: bool((scheme.decrypt(c, keys)[..., 0] == (x * y).sum(axis=-1)).all()),
            key.nbytes,
        )
    if op == "multiply":
        cy = scheme.encrypt(y, keys.public, dim=m)
        return (
            lambda: scheme.multiply(cx, cy),
            lambda c: bool((scheme.decrypt(c, keys) == x * y).all()),
            keys.public.evaluation.keys[f"product:{m}"].nbytes,
        )
    raise AssertionError(f"unknown operation {op}")  # pragma: no cover


def measure_scheme_operation(
    benchmark: Any,
    key_cache: KeyCache,
    params: str,
    op: str,
    m: int,
    batch: int,
    *,
    which: int = 1,
    items: int | None = None,
    unit: str = "ciphertext",
    rounds: int | None = None,
    kind: str = "scheme-op",
    **info: Any,
) -> None:
    """Time one :func:`scheme_operation` and record it with its key, peak and output bytes.

    Outside the timed rounds, a first call under tracemalloc measures what it keeps for later
    calls (``kept_bytes``: plans and key parts, not temporaries; not for key generation, whose
    output is kept), and a second the peak of one call (``peak_bytes``); its result is checked
    then and after the timing. ``items`` defaults to ``batch``; ``info`` is recorded too.
    """
    function, check, key_bytes = scheme_operation(key_cache, params, op, m, batch, which)
    kept = kept_memory(function)  # the first call
    result, peak = peak_memory(function)
    assert check(result), f"{params} {op} m={m} batch={batch} gave a wrong result"
    result = measure(
        benchmark,
        function,
        items=batch if items is None else items,
        unit=unit,
        rounds=rounds,
        kind=kind,
        operation=op,
        m=m,
        batch=batch,
        params=params,
        security=security_of(params),
        implementation="hennframework",
        encrypted=True,
        **info,
        key_bytes=key_bytes,
        peak_bytes=peak,
        output_bytes=output_bytes(result),
        **({} if kind == "keygen" else {"kept_bytes": kept}),
        **({"coefficient_bytes": int(result.data.nbytes)} if hasattr(result, "data") else {}),
    )
    assert check(result)


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


class VheCppRuns:
    """vhe.cpp for this session: the driver built on first use, its timings kept per (op, m).

    The inner-product key and its use run in one driver process (dot_keygen then dot), since
    vhe.cpp takes half a minute and ~10 GB to make that key at m = 64. ``status()`` goes into the
    results' machine_info, so the report can say why vhe.cpp was not measured.
    """

    def __init__(self) -> None:
        self._outcome: BuildOutcome | None = None
        self._timings: dict[tuple[str, int], DriverTiming] = {}
        self._reports: list[DriverReport] = []
        self._skipped: dict[str, str] = {}
        self.used = False

    def outcome(self) -> BuildOutcome:
        if self._outcome is None:
            self.used = True
            source, reason = find_vhe_source(ROOT)
            if source is None:
                self._outcome = BuildOutcome(None, reason)
            else:
                self._outcome = build_driver(VHE_DRIVER_SOURCE, source, VHE_BUILD_DIR)
        return self._outcome

    def check(self, op: str, m: int) -> None:
        """pytest.skip, with the reason, if vhe.cpp cannot time ``op`` at ``m`` here.

        Call it before the benchmark fixture: a skip from inside a timed call would leave
        pytest-benchmark an entry without data.
        """
        import pytest

        outcome = self.outcome()
        if outcome.driver is None:
            pytest.skip(f"vhe.cpp comparison skipped: {outcome.reason}")
        if (op, m) in self._timings:
            return
        reason = dot_memory_reason(m) if op in ("dot", "dot_keygen") else ""
        if reason:
            for name in ("dot_keygen", "dot"):
                self._skipped[f"{name} m={m}"] = reason
            pytest.skip(f"vhe.cpp {op} at m = {m} skipped: {reason}")

    def timing(self, op: str, m: int) -> DriverTiming:
        """vhe.cpp's timing of ``op`` at ``m`` (after :meth:`check`); runs the driver if needed."""
        outcome = self.outcome()
        if outcome.driver is None:
            raise ReferenceRunError(f"vhe.cpp is not built: {outcome.reason}")
        if (op, m) not in self._timings:
            ops = ["dot_keygen", "dot"] if op in ("dot", "dot_keygen") else [op]
            report = run_driver(outcome.driver, m, ops, min_rounds=3 if m >= 64 else 5)
            self._reports.append(report)
            for result in report.results:
                self._timings[(result.operation, m)] = result
        return self._timings[(op, m)]

    def report_for(self, m: int) -> DriverReport | None:
        return next((r for r in reversed(self._reports) if r.m == m), None)

    def status(self) -> dict[str, Any]:
        """JSON-ready: built or why not, NTL version, vhe.cpp's parameters, what was skipped."""
        if not self.used:
            return {
                "built": False,
                "reason": "the vhe.cpp comparison (benchmarks/test_bench_vhe.py) was not "
                "selected in this run",
            }
        status = self.outcome().describe()
        if self._reports:
            status["ntl_version"] = self._reports[-1].ntl_version
            status["parameters"] = dict(self._reports[-1].parameters)
            status["peak_rss_bytes"] = {str(r.m): r.peak_rss_bytes for r in self._reports}
        status["skipped"] = dict(self._skipped)
        return status


#: The session's vhe.cpp runs (module level so that conftest's machine_info hook can read it).
VHE_CPP = VheCppRuns()


class ReferenceTimer:
    """Times a reference implementation between our timed rounds, for ratios measured interleaved.

    Pass :meth:`setup` as :func:`measure`'s ``setup``: pytest-benchmark calls it before each of our
    rounds (warm-up rounds too), outside our timing, so the reference and ours alternate
    (reference, ours, reference, ours ...) and a change of machine load hits both alike.
    :meth:`describe` gives the reference's statistics, warm-up samples left out, for
    ``extra_info``.
    """

    def __init__(self, function: Callable[[], Any], calls: int = 1) -> None:
        self.function, self.calls = function, calls
        self.samples: list[float] = []

    def setup(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        started = time.perf_counter()
        for _ in range(self.calls):
            self.function()
        self.samples.append((time.perf_counter() - started) / self.calls)
        return (), {}

    def describe(self, warmup_rounds: int = 1, items: int = 1, **info: Any) -> dict[str, Any]:
        """JSON-ready: median/mean/min seconds per call, the samples, and ``info``."""
        kept = self.samples[warmup_rounds:] or self.samples
        median = float(np.median(kept))
        return {
            **info,
            "median": median,
            "mean": float(np.mean(kept)),
            "min": float(np.min(kept)),
            "rounds": len(kept),
            "calls_per_round": self.calls,
            "samples": [float(s) for s in kept],
            "items": items,
            "seconds_per_item": median / items,
        }
