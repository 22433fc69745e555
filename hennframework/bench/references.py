"""The speed targets the report checks, and figures quoted from notes for context only.

**Targets** (:data:`TARGETS`) are ratios measured within one benchmark run: encrypted against
the same model unencrypted, ours against vhe.cpp built and timed in the same run
(``benchmarks/test_bench_vhe.py``), batch 256 against batch 1, temporaries against the output.

**Quoted figures** (vhe.cpp, the 2017 notebook, TenSEAL) were measured once on the project's
2-core machine and are copied from the shared notes. The report shows them in columns labelled
"notes, for context" and never divides by them for a target: a figure from another day, load or
build is not a like-for-like comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "MEMORY_TARGET",
    "SEED_MS",
    "SEED_REVIEWS_PER_SECOND",
    "SENTIMENT_TARGET_REVIEWS_PER_SECOND",
    "SOURCES",
    "TARGETS",
    "TENSEAL_NOTES_MS",
    "UNENCRYPTED_REFERENCE_REVIEWS_PER_SECOND",
    "VHE_CPP_NOTES_MS",
    "Target",
]

#: Where each family of quoted figures comes from.
SOURCES = {
    "vhe.cpp": (
        "vhe.cpp (Yu-Lai-Payor, C++/NTL, exact big integers, w = 2**40, bounds 1000, bits), "
        "single thread on this project's 2-core machine, key prebuilt, measured once "
        "(shared/notes/integer-vector-facts.md)"
    ),
    "seed": (
        'the 2017 notebook accompanying Andrew Trask\'s post "Safe AI" (w = 2**25, bounds 10, '
        "bits), same machine (shared/notes/integer-vector-facts.md)"
    ),
    "tenseal-notes": (
        "TenSEAL 0.3.18 CKKS, N = 8192, primes [60, 40, 40, 60], scale 2**40 (128-bit), median of "
        "7 single-threaded runs on the same machine (shared/notes/peer-measurements.md)"
    ),
}

#: vhe.cpp milliseconds per operation (one vector) from the notes, by (operation, m): for
#: context only. The targets divide by vhe.cpp as measured in the same run.
VHE_CPP_NOTES_MS: dict[tuple[str, int], float] = {
    (operation, m): ms
    for operation, row in {  # at m = 4, 16, 64, 256
        "encrypt": (0.023, 0.25, 4.3, 110.0),
        "decrypt": (0.002, 0.009, 0.063, 0.92),
        "key_switch": (0.033, 0.38, 5.1, 63.0),
        "linear_transform": (0.034, 0.29, 4.6, 79.0),
        "dot": (0.16, 7.0, 534.0),
        "dot_keygen": (3.1, 151.0, 31_000.0),
    }.items()
    for m, ms in zip((4, 16, 64, 256), row, strict=False)
}

#: The 2017 notebook's Python, milliseconds per operation, by (operation, m): for context only.
SEED_MS: dict[tuple[str, int], float] = {
    ("encrypt", 4): 1.0,
    ("encrypt", 8): 12.0,
    ("encrypt", 16): 115.0,
    ("dot", 4): 1.0,
    ("dot", 8): 3.0,
    ("dot", 16): 23.0,
}

#: TenSEAL 0.3.18 (CKKS, 128-bit) milliseconds from the notes, by our comparison-operation name.
TENSEAL_NOTES_MS: dict[str, float] = {
    "keygen (context + keys)": 142.0,
    "encrypt 8 values": 3.61,
    "decrypt 8 values": 0.90,
    "add": 0.080,
    "dot of two encrypted 8-vectors": 7.94,
    "vec(8) x plain 8x8": 38.1,
    "vec(64) x plain 64x8": 421.0,
    "degree-3 polynomial (8 values)": 11.0,
    "logistic-regression SGD step (30 features)": 124.0,
}

#: The 2017 notebook's encrypted sentiment training speed (IMDB, one review per step).
SEED_REVIEWS_PER_SECOND = 2.0
#: An earlier throughput target: encrypted sentiment training at the default batch of 32.
SENTIMENT_TARGET_REVIEWS_PER_SECOND = 5_000.0
#: The unencrypted NumPy reference network, one review per step, on the full rt-polarity set.
UNENCRYPTED_REFERENCE_REVIEWS_PER_SECOND = 58_000.0
#: No operation may allocate more than this many times its output's size in temporaries.
MEMORY_TARGET = 4.0


@dataclass(frozen=True)
class Target:
    """One speed or memory target: a ratio measured in one run and the bound it must meet.

    ``at_most``: the ratio must not exceed ``bound`` (a slowdown, a memory factor); otherwise it
    must reach ``bound`` (a speed-up).
    """

    key: str
    title: str
    bound: float
    at_most: bool

    def met(self, ratio: float) -> bool:
        return ratio <= self.bound if self.at_most else ratio >= self.bound


#: The targets of the headline table, in its order.
TARGETS: tuple[Target, ...] = (
    Target(
        "sentiment-32",
        "Sentiment training, batch 32: encrypted within 10x of the same network unencrypted",
        10.0,
        True,
    ),
    Target(
        "sentiment-1",
        "Sentiment training, batch 1 (per-review SGD): encrypted within 25x of unencrypted",
        25.0,
        True,
    ),
    Target("xor", "XOR training step: encrypted within 25x of unencrypted", 25.0, True),
    Target(
        "vhe-256-large",
        "Against vhe.cpp, batch 256, `vhe` set: at least 100x faster per vector for every "
        "operation at m >= 16",
        100.0,
        False,
    ),
    Target(
        "vhe-256-m4",
        "Against vhe.cpp, batch 256, `vhe` set: at least 30x faster per vector for every "
        "operation at m = 4",
        30.0,
        False,
    ),
    Target(
        "vhe-1",
        "Against vhe.cpp, batch 1, `vhe` set: never slower, for every operation at m >= 4",
        1.0,
        False,
    ),
    Target(
        "dot-batching",
        "Inner product, `vhe` set: at batch 256 at least 10x cheaper per vector than at batch 1",
        10.0,
        False,
    ),
    Target(
        "memory",
        "Memory: no operation allocates more than 4x its output's size in temporaries "
        "(batch 256 and key generation; tracemalloc peak)",
        MEMORY_TARGET,
        True,
    ),
    Target(
        "sentiment-rate",
        "Sentiment training, batch 32: at least 5,000 encrypted reviews/s (an earlier target)",
        SENTIMENT_TARGET_REVIEWS_PER_SECOND,
        False,
    ),
)
