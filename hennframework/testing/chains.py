"""Randomized operation chains on the integer-vector scheme, every decryption checked exactly.

A chain encrypts random values (log-uniform magnitudes, zeros, halves, the largest plaintexts a
set accepts), applies random operations through the public API (``+ - *`` with ciphertexts and
plaintexts, ``@`` in both orders with plaintext matrices of large entries and long inner
dimensions, ``dot``, ``linear_transform``, ``sum``, indexing, ``polyval``, ``rescale``,
``scatter_add``, ``segment_sum``, key switching, ``absorb_noise``, whose moved messages are
checked against the distance it states) and, after every operation, checks the result
against an independent model of the exact messages (Python integers and Fractions):

* **wrong**: ``decrypt`` returned a value farther than ``1/2 + tracked/w`` from the exact message
  (for integer messages: any value but the message), without raising;
* **bound violations**: the tracked noise bound is below the true noise ``|S c - w mu|``, computed
  exactly with the secret key (the check is generic: any bound the scheme tracks must hold);
* **coefficient violations**: a ciphertext coefficient exceeds the tracked coefficient bound;
* **unrefused**: ``decrypt`` returned although the tracked bound reached ``w/2``;
* **refusals**: project errors raised as designed (overflow risk, exhausted noise budget, input
  the scheme rejects), counted by type; any other exception is a **crash**.

Run it from the command line (the long profile; ``--help`` lists the options)::

    python -m hennframework.testing.chains --decryptions 100000 --seed 1

or call :func:`run_chains` from a test (the fast profile runs in the normal test suite).
Inputs and keys come from seeded streams on purpose, so a failing chain can be replayed.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import math
import operator
import sys
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from hennframework.exceptions import HennError, InsecureParametersWarning
from hennframework.registry import get_backend
from hennframework.scheme import KeySet
from hennframework.schemes.integer_vector import IntegerVectorParams, IntegerVectorScheme
from hennframework.schemes.integer_vector.ciphertext import Ciphertext
from hennframework.schemes.integer_vector.params import PARAMETER_SETS
from hennframework.schemes.integer_vector.scheme import ABSORB_MOST

__all__ = ["CHAIN_PARAMETER_SETS", "ChainReport", "main", "run_chains"]

#: The named sets plus one with k = 2 (T has two columns), a non-power-of-two w (odd part 3)
#: and base-2**16 digits, so paths that only matter for k > 1 or odd divisors are exercised.
CHAIN_PARAMETER_SETS: dict[str, IntegerVectorParams] = {
    **PARAMETER_SETS,
    "k2-b16": IntegerVectorParams(
        name="k2-b16",
        w=3 * 2**30,
        scale=1000,
        k=2,
        t_bound=2,
        a_bound=2,
        e_bound=3,
        gadget_bits=16,
        description="chain checker: k = 2, odd w, base 2**16",
    ),
}
#: Longest vectors (m) the chains use, and the inner dimensions of the long matrix products.
MAX_DIM = 3
LONG_INNER = (100, 257, 1000, 2048)
#: Failures kept verbatim in the report (the counts are always complete).
KEEP_FAILURES = 20

Objects = npt.NDArray[Any]


@dataclass
class ChainReport:
    """Counts of one run; ``ok`` when nothing was wrong, violated, unrefused or crashed."""

    chains: int = 0
    operations: int = 0
    decryptions: int = 0
    values: int = 0
    wrong: int = 0
    bound_violations: int = 0
    coefficient_violations: int = 0
    unrefused: int = 0
    model_mismatches: int = 0
    crashes: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    operation_counts: Counter[str] = field(default_factory=Counter)
    max_noise_ratio: float = 0.0
    #: the largest true noise / tracked bound per operation (how tight each bound is)
    noise_ratio_by_operation: dict[str, float] = field(default_factory=dict)
    #: high-probability bounds (``decryption_bound``) below the true noise: a failure, since
    #: the stated failure probability is 2**-64 per decryption
    probable_bound_violations: int = 0
    #: per parameter set and bound ("worst-case", "decryption"): tracked bound / true noise of
    #: each checked result (largest bound over largest true noise, the noise floored at 1)
    tightness: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.wrong
            or self.bound_violations
            or self.coefficient_violations
            or self.unrefused
            or self.model_mismatches
            or self.crashes
            or self.probable_bound_violations
        )

    def fail(self, counter: str, message: str) -> None:
        setattr(self, counter, getattr(self, counter) + 1)
        if len(self.failures) < KEEP_FAILURES:
            self.failures.append(f"{counter}: {message}")

    def as_dict(self) -> dict[str, Any]:
        """Every field as plain JSON, in field order (``refusals_total`` after ``refusals``)."""
        out: dict[str, Any] = {}
        for item in fields(self):
            out[item.name] = getattr(self, item.name)
            if item.name == "refusals":
                out["refusals_total"] = sum(self.refusals.values())
        out.update(
            refusals=dict(self.refusals),
            operation_counts=dict(self.operation_counts),
            noise_ratio_by_operation=dict(sorted(self.noise_ratio_by_operation.items())),
            tightness=self.tightness_summary(),
            seconds=round(self.seconds, 1),
        )
        return out

    def record_tightness(self, name: str, kind: str, ratio: float) -> None:
        self.tightness.setdefault(name, {}).setdefault(kind, []).append(ratio)

    def tightness_summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """Median, 90th percentile and largest tracked-bound / true-noise ratio per set and bound."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for name, kinds in sorted(self.tightness.items()):
            for kind, ratios in sorted(kinds.items()):
                values = np.asarray(ratios, dtype=np.float64)
                out.setdefault(name, {})[kind] = {
                    "count": int(values.size),
                    "median": float(np.median(values)),
                    "p90": float(np.percentile(values, 90)),
                    "max": float(values.max()),
                }
        return out

    def summary(self) -> str:
        refused = ", ".join(f"{k} {v}" for k, v in sorted(self.refusals.items())) or "none"
        lines = [
            f"chains {self.chains}, operations {self.operations}, decryptions {self.decryptions} "
            f"({self.values} values), {self.seconds:.1f} s",
            f"wrong {self.wrong}, bound violations {self.bound_violations}, coefficient "
            f"violations {self.coefficient_violations}, unrefused {self.unrefused}, model "
            f"mismatches {self.model_mismatches}, crashes {self.crashes}",
            f"refusals {sum(self.refusals.values())}: {refused}",
            f"max true noise / tracked bound: {self.max_noise_ratio:.6g}; high-probability "
            f"bound violations {self.probable_bound_violations}",
            "  by operation: "
            + ", ".join(f"{k} {v:.3g}" for k, v in sorted(self.noise_ratio_by_operation.items())),
        ]
        for name, kinds in self.tightness_summary().items():
            for kind, stats in kinds.items():
                lines.append(
                    f"  bound / true noise, {name}, {kind}: median {stats['median']:.3g}, "
                    f"p90 {stats['p90']:.3g}, max {stats['max']:.3g} ({stats['count']} results)"
                )
        lines += [f"  {failure}" for failure in self.failures]
        return "\n".join(lines)


# ================================================================================================
# the exact model
# ================================================================================================
@dataclass
class Entry:
    """A ciphertext, its exact messages (Fractions, shape ``(*batch, m)``) and its keys."""

    ciphertext: Ciphertext
    messages: Objects
    scale: int
    keys: KeySet

    @property
    def dim(self) -> int:
        return int(self.messages.shape[-1])

    @property
    def batch(self) -> tuple[int, ...]:
        return tuple(self.messages.shape[:-1])


def decryption_bounds(ciphertext: Ciphertext) -> npt.NDArray[np.float64]:
    """The per-item noise bound that ``decrypt`` refuses on (batch shape, NumPy float64).

    The high-probability bound where the scheme tracks one, else the worst-case ``noise``.
    """
    backend = ciphertext.scheme.backend
    bounds = getattr(ciphertext, "decryption_bounds", None)
    values = bounds() if callable(bounds) else ciphertext.noise
    return np.broadcast_to(np.asarray(backend.to_numpy(values), dtype=np.float64), ciphertext.shape)


def fractions(values: Any) -> Objects:
    """An object array of exact Fractions from integers (no int64 wraparound)."""
    array = np.asarray(values)
    out = np.empty(array.shape, dtype=object)
    for index in np.ndindex(*array.shape):
        out[index] = Fraction(int(array[index]))
    return out


def encode(values: Any, scale: int) -> Objects:
    """The fixed-point encoding ``round_half_even(v * scale)`` as exact Fractions."""
    array = np.asarray(values)
    if array.dtype.kind in "biu":
        return fractions(array.astype(object) * scale)
    scaled = np.rint(array.astype(np.float64) * scale)
    out = np.empty(array.shape, dtype=object)
    for index in np.ndindex(*array.shape):
        out[index] = Fraction(int(scaled[index]))  # exact: a float64 integer as a Python int
    return out


def is_integral(values: Any) -> bool:
    array = np.asarray(values)
    return array.dtype.kind in "biu" or bool(np.array_equal(array, np.rint(array)))


def product_divisor(params: IntegerVectorParams, scale_a: int, scale_b: int) -> int:
    """Fixed-point products are rescaled by f when both factors are fixed point (docs/scheme.md)."""
    f = params.scale
    return f if scale_a > 1 and scale_b > 1 and (scale_a * scale_b) % f == 0 else 1


def fine_scale(params: IntegerVectorParams) -> int:
    f = params.scale
    square = f * f
    odd = square >> ((square & -square).bit_length() - 1)
    return square if odd < (1 << 32) and square < (1 << 40) else f


def plain_product(
    params: IntegerVectorParams, scale: int, values: Any, encode_scale: int | None = None
) -> tuple[Objects, int, int]:
    """(encoded plaintext, divisor, new scale) of ``ciphertext * values`` (docs/scheme.md)."""
    array = np.asarray(values)
    integral = array.dtype.kind in "biu" or (scale == 1 and is_integral(array))
    if integral:
        return encode(array, 1), 1, scale
    if scale > 1:
        s = encode_scale or params.scale
        return encode(array, s), s, scale
    return encode(array, params.scale), 1, params.scale


def slot_reading(plain_shape: tuple[int, ...], batch: tuple[int, ...], m: int) -> str:
    """How a plaintext added to m-vectors is read (docs/scheme.md): 'item' (m = 1 or a
    scalar), 'slot' (the last axis is the slot axis), or 'ambiguous' / 'invalid' (refused)."""
    if m == 1 or not plain_shape:
        return "item"

    def broadcasts(shape: tuple[int, ...]) -> tuple[int, ...] | None:
        try:
            return tuple(np.broadcast_shapes(shape, batch))
        except ValueError:
            return None

    if plain_shape[-1] not in (1, m) or broadcasts(plain_shape[:-1]) is None:
        return "invalid"
    one_per_item = broadcasts(plain_shape) == batch and len(plain_shape) <= len(batch)
    return "ambiguous" if one_per_item and math.prod(plain_shape) > 1 else "slot"


# ================================================================================================
# the checker
# ================================================================================================
class ChainRunner:
    """Builds random chains on one or more parameter sets and checks every result exactly."""

    def __init__(
        self,
        seed: int,
        parameter_sets: Sequence[str] = tuple(CHAIN_PARAMETER_SETS),
        backend: Any = "numpy",
        report: ChainReport | None = None,
    ) -> None:
        self.rng = np.random.default_rng(seed)  # test inputs only; keys use seeded CSPRNG streams
        self.seed = seed
        self.report = report or ChainReport()
        self.sets = [CHAIN_PARAMETER_SETS[name] for name in parameter_sets]
        self.backend = get_backend(backend)  # a name or an instance
        self._contexts: dict[str, dict[str, Any]] = {}

    # -- keys per parameter set -----------------------------------------------------------------
    def context(self, params: IntegerVectorParams) -> dict[str, Any]:
        if params.name in self._contexts:
            return self._contexts[params.name]
        scheme = IntegerVectorScheme(params, backend=self.backend)
        dims = tuple(range(1, MAX_DIM + 1))
        keys = scheme.keygen(
            seed=f"chains-{self.seed}-{params.name}".encode(),
            max_dim=MAX_DIM,
            dims=dims,
            products=dims,
        )
        other = scheme.keygen(
            seed=f"chains-{self.seed}-{params.name}-other".encode(),
            max_dim=MAX_DIM,
            dims=dims,
            products=(),
        )
        weights: dict[int, list[npt.NDArray[np.int64] | None]] = {}
        transforms: dict[int, list[npt.NDArray[np.int64]]] = {}
        switches = {}
        for m in dims:
            weights[m] = [None, self.rng.integers(-2, 3, (m, m))]
            for h in weights[m]:
                scheme.add_dot_key(keys, m, h)
            transforms[m] = [self.rng.integers(-3, 4, (out, m)) for out in (1, m)]
            for g in transforms[m]:
                scheme.add_linear_key(keys, g)
            switches[m] = scheme.make_switch_key(keys, other, dim=m)
        context = {
            "scheme": scheme,
            "keys": keys,
            "other": other,
            "weights": weights,
            "transforms": transforms,
            "switches": switches,
            "secrets": {
                keys.key_id: np.asarray(keys.secret.t_matrix).astype(object),
                other.key_id: np.asarray(other.secret.t_matrix).astype(object),
            },
        }
        self._contexts[params.name] = context
        return context

    # -- random inputs ----------------------------------------------------------------------------
    def magnitudes(
        self, shape: tuple[int, ...], high_bits: float, integer: bool, low_bits: float | None = None
    ) -> Any:
        """Log-uniform magnitudes in [2**low_bits, 2**high_bits] with random signs, zeros, halves."""
        rng = self.rng
        floor = 0.0 if integer else -14.0
        low_bits = floor if low_bits is None else max(low_bits, floor)
        high_bits = max(high_bits, low_bits + 1)
        bits = rng.uniform(low_bits, high_bits, shape)
        values = np.exp2(bits) * rng.choice([-1.0, 1.0], shape)
        special = rng.random(shape)
        values = np.where(special < 0.08, 0.0, values)
        if not integer:
            values = np.where(
                (special >= 0.08) & (special < 0.14), np.round(values) + 0.5, values
            )  # ties of round-half-even after scaling by powers of two
        if integer:
            top = int(2 ** min(high_bits, 62))
            return np.clip(np.rint(values), -top, top).astype(np.int64)
        return values

    def plaintext_bits(self, params: IntegerVectorParams, scale: int, integer: bool) -> float:
        """The largest log2 magnitude a fresh encryption at ``scale`` accepts."""
        return math.log2(max(params.max_plaintext, 2)) - math.log2(max(scale, 1)) - 0.01

    def operand_bits(self) -> float:
        """Plaintext operands: usually moderate, often extreme (large P with tiny encryptions)."""
        return float(self.rng.choice([4.0, 12.0, 20.0, 30.0, 40.0], p=[0.35, 0.25, 0.2, 0.1, 0.1]))

    def batch_shape(self) -> tuple[int, ...]:
        ndim = int(self.rng.choice([1, 1, 2, 0]))
        return tuple(int(v) for v in self.rng.integers(1, 5, ndim))

    # -- encryption -------------------------------------------------------------------------------
    def encrypt(
        self,
        params: IntegerVectorParams,
        batch: tuple[int, ...],
        m: int,
        scale: int | None = None,
        bits: float | None = None,
    ) -> Entry:
        ctx = self.context(params)
        scheme, keys = ctx["scheme"], ctx["keys"]
        if scale is None:
            scale = int(self.rng.choice([1, params.scale, params.scale, fine_scale(params)]))
        integer = scale == 1
        top = self.plaintext_bits(params, scale, integer)
        high = top if bits is None else min(bits, top)
        low = None if bits is None else high - 2.0
        if self.rng.random() < 0.1:
            high, low = top, top - 1.0  # the largest plaintexts the set accepts
        values = self.magnitudes((*batch, m), high, integer, low)
        key = keys.secret if self.rng.random() < 0.25 else keys.public
        seed = int(self.rng.integers(0, 2**62))
        if m == 1:
            ciphertext = scheme.encrypt(values[..., 0], key, scale=scale, seed=seed)
        else:
            ciphertext = scheme.encrypt(values, key, dim=m, scale=scale, seed=seed)
        return Entry(ciphertext, encode(values, scale), scale, keys)

    # -- checks -----------------------------------------------------------------------------------
    def check(self, entry: Entry, what: str) -> None:
        """Exact noise, coefficient bound and decryption checks of one result."""
        report = self.report
        ct = entry.ciphertext
        scheme = ct.scheme
        params = scheme.params
        w = params.w
        if ct.scale_int != entry.scale or tuple(ct.shape) != entry.batch or ct.dim != entry.dim:
            report.fail(
                "model_mismatches",
                f"{what}: scale/shape/dim {ct.scale_int}/{ct.shape}/{ct.dim}, model "
                f"{entry.scale}/{entry.batch}/{entry.dim}",
            )
            return
        backend = scheme.backend
        data = np.asarray(backend.to_numpy(ct.data))
        if data.size and backend.abs_max(ct.data) > ct.coeff_bound:
            report.fail(
                "coefficient_violations",
                f"{what}: |c| reaches {backend.abs_max(ct.data)} > tracked {ct.coeff_bound}",
            )
        tracked = np.broadcast_to(
            np.asarray(backend.to_numpy(ct.noise), dtype=np.float64), ct.shape
        )
        t_matrix = self.context(params)["secrets"][ct.key_id]
        m = entry.dim
        true_noise = np.empty(ct.shape, dtype=object)
        for index in np.ndindex(*ct.shape):
            c = [int(v) for v in data[index]]
            bottom = c[m:]
            worst = Fraction(0)
            for i in range(m):
                s_c = c[i] + sum(int(t) * b for t, b in zip(t_matrix[i], bottom, strict=True))
                worst = max(worst, abs(s_c - w * entry.messages[(*index, i)]))
            true_noise[index] = worst
            bound = Fraction(float(tracked[index]))
            if worst > bound:
                report.fail(
                    "bound_violations",
                    f"{what} ({params.name}): true noise {float(worst):.6g} > tracked "
                    f"{float(bound):.6g} at {index}",
                )
            if bound > 0:
                ratio = float(worst / bound)
                report.max_noise_ratio = max(report.max_noise_ratio, ratio)
                by_operation = report.noise_ratio_by_operation
                by_operation[what] = max(by_operation.get(what, 0.0), ratio)
        probable = decryption_bounds(ct)
        for index in np.ndindex(*ct.shape):
            if true_noise[index] > Fraction(float(probable[index])):
                report.fail(
                    "probable_bound_violations",
                    f"{what} ({params.name}): true noise {float(true_noise[index]):.6g} > "
                    f"high-probability bound {float(probable[index]):.6g} at {index}",
                )
        if ct.size:
            largest = max(float(max(true_noise.flat)), 1.0)
            report.record_tightness(params.name, "worst-case", float(tracked.max()) / largest)
            report.record_tightness(params.name, "decryption", float(probable.max()) / largest)
        self.check_decryption(entry, probable, what)

    def check_decryption(self, entry: Entry, tracked: npt.NDArray[np.float64], what: str) -> None:
        """Decrypt; a result farther from the exact message than 1/2 + tracked/w is wrong, and a
        decryption although ``tracked`` (the bound decryption uses) reached w/2 is unrefused."""
        report = self.report
        ct = entry.ciphertext
        scheme = ct.scheme
        w = scheme.params.w
        over = bool(tracked.size) and float(tracked.max()) * 2 >= w
        try:
            got = scheme.decrypt(ct, entry.keys.secret)
        except HennError as error:
            report.refusals[f"decrypt:{type(error).__name__}"] += 1
            return
        report.decryptions += 1
        report.values += int(got.size)
        if over:
            report.fail("unrefused", f"{what}: decrypted although the noise bound reached w/2")
        got = np.asarray(got).reshape(entry.messages.shape)
        for index in np.ndindex(*entry.messages.shape):
            mu: Any = entry.messages[index]
            allowed = Fraction(1, 2) + Fraction(float(tracked[index[:-1]])) / w
            if abs(int(got[index]) - mu) > allowed:
                report.fail(
                    "wrong",
                    f"{what} ({scheme.params.name}): decrypted {int(got[index])}, exact message "
                    f"{float(mu):.17g} at {index} (scale {entry.scale})",
                )
                break

    # -- one chain --------------------------------------------------------------------------------
    def run_chain(self) -> None:
        rng = self.rng
        params = self.sets[int(rng.integers(len(self.sets)))]
        vector = rng.random() < 0.3
        m = int(rng.integers(2, MAX_DIM + 1)) if vector else 1
        pool: list[Entry] = []
        first = self.attempt("encrypt", lambda: self.encrypt(params, self.batch_shape(), m))
        if first is None:
            return
        pool.append(first)
        steps = int(rng.integers(1, 9))
        for _ in range(steps):
            name, operation = self.pick(params, pool, m)
            result = self.attempt(name, operation)
            if result is not None:
                pool.append(result)
        self.report.chains += 1

    def attempt(self, name: str, operation: Callable[[], Entry | None]) -> Entry | None:
        """Run one operation; count refusals and crashes; check the result."""
        report = self.report
        report.operations += 1
        report.operation_counts[name] += 1
        try:
            entry = operation()
        except HennError as error:
            report.refusals[f"{name}:{type(error).__name__}"] += 1
            return None
        except Exception as error:  # a crash is what this tool looks for
            trace = traceback.format_exception_only(type(error), error)[-1].strip()
            report.fail("crashes", f"{name}: {trace}")
            return None
        if entry is None:
            return None
        try:
            self.check(entry, name)
        except Exception as error:
            trace = traceback.format_exception_only(type(error), error)[-1].strip()
            report.fail("crashes", f"checking {name}: {trace}")
            return None
        return entry

    def pick(
        self, params: IntegerVectorParams, pool: list[Entry], m: int
    ) -> tuple[str, Callable[[], Entry | None]]:
        rng = self.rng
        entry = pool[int(rng.integers(len(pool)))]
        other = pool[int(rng.integers(len(pool)))]
        choices: list[tuple[str, Callable[[], Entry | None]]] = [
            ("encrypt", lambda: self.encrypt(params, self.batch_shape(), m)),
            ("add", lambda: self.op_add(entry, other, subtract=False)),
            ("sub", lambda: self.op_add(entry, other, subtract=True)),
            ("neg", lambda: self.op_neg(entry)),
            ("add_plain", lambda: self.op_add_plain(entry)),
            ("mul_plain", lambda: self.op_mul_plain(entry, constant=False)),
            ("multiply_constant", lambda: self.op_mul_plain(entry, constant=True)),
            ("mul", lambda: self.op_mul(entry, other)),
            ("sum", lambda: self.op_sum(entry)),
            ("index", lambda: self.op_index(entry)),
            ("rescale", lambda: self.op_rescale(entry)),
            ("scatter_add", lambda: self.op_scatter_add(entry)),
            ("segment_sum", lambda: self.op_segment_sum(entry)),
            ("switch_key", lambda: self.op_switch(entry)),
            ("polyval", lambda: self.op_polyval(entry)),
            ("dot", lambda: self.op_dot(entry, other)),
            ("linear_transform", lambda: self.op_linear(entry)),
            ("absorb_noise", lambda: self.op_absorb(entry)),
        ]
        if m == 1:
            choices += [
                ("matmul_plain", lambda: self.op_matmul_plain(entry)),
                ("matmul_plain", lambda: self.op_matmul_plain(entry)),
                ("matmul_long", lambda: self.op_matmul_long(params)),
                ("matmul_long", lambda: self.op_matmul_long(params)),
                ("matmul_long", lambda: self.op_matmul_long(params)),
                ("matmul_cipher", lambda: self.op_matmul_cipher(entry, other)),
                ("transpose", lambda: self.op_transpose(entry)),
            ]
        return choices[int(rng.integers(len(choices)))]

    # -- operations: each returns the result with its exact model ------------------------------
    def _with(self, entry: Entry, ciphertext: Ciphertext, messages: Any, scale: int) -> Entry:
        return Entry(ciphertext, np.asarray(messages, dtype=object), scale, entry.keys)

    def _partner(self, entry: Entry, other: Entry) -> Entry:
        """``other`` if it can be combined with ``entry``, else a fresh encryption that can."""
        same_keys = other.keys is entry.keys and other.dim == entry.dim
        if same_keys and other.scale == entry.scale and self.rng.random() < 0.7:
            return other
        params = entry.ciphertext.scheme.params
        return self.encrypt(params, entry.batch, entry.dim, scale=entry.scale)

    def op_add(self, entry: Entry, other: Entry, subtract: bool) -> Entry:
        partner = self._partner(entry, other)
        combine = operator.sub if subtract else operator.add
        result = combine(entry.ciphertext, partner.ciphertext)
        return self._with(entry, result, combine(entry.messages, partner.messages), entry.scale)

    def op_neg(self, entry: Entry) -> Entry:
        return self._with(entry, -entry.ciphertext, -entry.messages, entry.scale)

    def _plain_shape(self, entry: Entry) -> tuple[int, ...]:
        """A plaintext shape: scalar, the batch, the full shape, one per slot, one per item."""
        batch, m = entry.batch, entry.dim
        options = [(), batch, (*batch, m), (m,), (*batch, 1)]
        return tuple(options[int(self.rng.integers(len(options)))])

    def op_add_plain(self, entry: Entry) -> Entry | None:
        rng = self.rng
        shape = self._plain_shape(entry)
        integer = entry.scale == 1 or rng.random() < 0.3
        bits = min(self.operand_bits(), 40.0)
        plain = self.magnitudes(shape, bits, integer)
        reading = slot_reading(shape, entry.batch, entry.dim)
        kind = int(rng.integers(3))  # c + p, c - p, p - c
        if reading in ("ambiguous", "invalid"):
            try:
                _ = entry.ciphertext + plain
            except HennError:
                self.report.refusals[f"add_plain:{reading}"] += 1
                return None
            self.report.fail(
                "model_mismatches",
                f"add_plain: a {reading} plaintext of shape {shape} for batch {entry.batch} "
                f"of {entry.dim}-vectors was accepted",
            )
            return None
        encoded = encode(plain, entry.scale)
        encoded = encoded[..., None] if reading == "item" else encoded
        if kind == 0:
            return self._with(
                entry, entry.ciphertext + plain, entry.messages + encoded, entry.scale
            )
        if kind == 1:
            negated = encode(-np.asarray(plain), entry.scale)
            negated = negated[..., None] if reading == "item" else negated
            return self._with(
                entry, entry.ciphertext - plain, entry.messages + negated, entry.scale
            )
        return self._with(entry, plain - entry.ciphertext, encoded - entry.messages, entry.scale)

    def op_mul_plain(self, entry: Entry, constant: bool) -> Entry:
        rng = self.rng
        params = entry.ciphertext.scheme.params
        integer = rng.random() < 0.3
        bits = self.operand_bits()
        if constant:
            value = float(self.magnitudes((), min(bits, 8.0), False))
            encoded, divisor, scale = plain_product(params, entry.scale, value, fine_scale(params))
            result = entry.ciphertext.multiply_constant(value)
            return self._with(entry, result, entry.messages * encoded / divisor, scale)
        shape = tuple(
            [(), entry.batch, entry.batch[-1:] if entry.batch else ()][int(rng.integers(3))]
        )
        plain = self.magnitudes(shape, bits, integer)
        encoded, divisor, scale = plain_product(params, entry.scale, plain)
        encoded = encoded[..., None]
        result = entry.ciphertext * plain if rng.random() < 0.5 else plain * entry.ciphertext
        messages = entry.messages * encoded
        if divisor > 1:
            messages = messages / divisor
        return self._with(entry, result, messages, scale)

    def op_mul(self, entry: Entry, other: Entry) -> Entry:
        partner = other if other.keys is entry.keys and other.dim == entry.dim else entry
        if self.rng.random() < 0.3:
            partner = self.encrypt(
                entry.ciphertext.scheme.params, entry.batch, entry.dim, scale=entry.scale, bits=8
            )
        params = entry.ciphertext.scheme.params
        r = product_divisor(params, entry.scale, partner.scale)
        result = entry.ciphertext * partner.ciphertext
        return self._with(
            entry, result, entry.messages * partner.messages / r, entry.scale * partner.scale // r
        )

    def op_sum(self, entry: Entry) -> Entry | None:
        if not entry.batch:
            return None
        axis = int(self.rng.integers(len(entry.batch)))
        return self._with(
            entry, entry.ciphertext.sum(axis=axis), entry.messages.sum(axis=axis), entry.scale
        )

    def op_index(self, entry: Entry) -> Entry | None:
        if not entry.batch:
            return None
        rows = self.rng.integers(0, entry.batch[0], int(self.rng.integers(1, 4)))
        return self._with(entry, entry.ciphertext[rows], entry.messages[rows], entry.scale)

    def op_transpose(self, entry: Entry) -> Entry:
        messages = entry.messages[..., 0].T[..., None]
        return self._with(entry, entry.ciphertext.T, messages, entry.scale)

    def op_rescale(self, entry: Entry) -> Entry | None:
        params = entry.ciphertext.scheme.params
        f = params.scale
        if entry.scale % f:
            # an integer or coarse ciphertext: rescale by a divisor of its scale (or refuse)
            divisor = entry.scale if entry.scale > 1 else 2
            if entry.scale == 1:
                try:
                    entry.ciphertext.rescale(divisor)
                except HennError:
                    self.report.refusals["rescale:integer"] += 1
                    return None
                self.report.fail("model_mismatches", "rescale of a scale-1 ciphertext accepted")
                return None
        else:
            divisor = f
        return self._with(
            entry,
            entry.ciphertext.rescale(divisor),
            entry.messages / divisor,
            entry.scale // divisor,
        )

    def op_scatter_add(self, entry: Entry) -> Entry | None:
        if not entry.batch:
            return None
        rows = self.rng.integers(0, entry.batch[0], int(self.rng.integers(1, 6)))
        values = self.encrypt(
            entry.ciphertext.scheme.params,
            (rows.size, *entry.batch[1:]),
            entry.dim,
            scale=entry.scale,
        )
        messages = entry.messages.copy()
        np.add.at(messages, rows, values.messages)
        return self._with(
            entry, entry.ciphertext.scatter_add(rows, values.ciphertext), messages, entry.scale
        )

    def op_segment_sum(self, entry: Entry) -> Entry | None:
        if not entry.batch:
            return None
        rows = entry.batch[0]
        cuts = np.sort(self.rng.integers(0, rows + 1, int(self.rng.integers(0, 3))))
        offsets = np.concatenate([[0], cuts, [rows]]).astype(np.int64)
        parts = [entry.messages[a:b].sum(axis=0) for a, b in itertools.pairwise(offsets)]
        messages = np.empty((len(parts), *entry.messages.shape[1:]), dtype=object)
        for i, part in enumerate(parts):
            messages[i] = part
        return self._with(entry, entry.ciphertext.segment_sum(offsets), messages, entry.scale)

    def op_switch(self, entry: Entry) -> Entry | None:
        ctx = self.context(entry.ciphertext.scheme.params)
        if entry.keys is not ctx["keys"]:
            return None
        moved = entry.ciphertext.switch_key(ctx["switches"][entry.dim])
        return Entry(moved, entry.messages, entry.scale, ctx["other"])

    def op_absorb(self, entry: Entry) -> Entry | None:
        """``absorb_noise``: the new exact messages are ``S c / w``; each may be at most the
        distance the scheme returned (times the scale) from the old one, else a bound
        violation. Limits: the default, and a wide one so that noisy results are absorbed too."""
        ct = entry.ciphertext
        scheme = ct.scheme
        assert isinstance(scheme, IntegerVectorScheme)
        most = ABSORB_MOST if self.rng.random() < 0.5 else 0.25
        result = scheme.absorb_noise(ct, most)
        if result is None:
            self.report.refusals["absorb_noise:too-noisy"] += 1
            return None
        absorbed, moved = result
        params = scheme.params
        t_matrix = self.context(params)["secrets"][ct.key_id]
        data = np.asarray(scheme.backend.to_numpy(ct.data))
        m = entry.dim
        allowed = Fraction(moved) * ct.scale_int
        messages = np.empty(entry.messages.shape, dtype=object)
        for index in np.ndindex(*ct.shape):
            c = [int(v) for v in data[index]]
            bottom = c[m:]
            for i in range(m):
                s_c = c[i] + sum(int(t) * b for t, b in zip(t_matrix[i], bottom, strict=True))
                value = Fraction(s_c, params.w)
                messages[(*index, i)] = value
                if abs(value - entry.messages[(*index, i)]) > allowed:
                    self.report.fail(
                        "bound_violations",
                        f"absorb_noise ({params.name}): moved a message by "
                        f"{float(abs(value - entry.messages[(*index, i)])):.6g} > stated "
                        f"{float(allowed):.6g} at {index}",
                    )
        return self._with(entry, absorbed, messages, entry.scale)

    def op_polyval(self, entry: Entry) -> Entry | None:
        params = entry.ciphertext.scheme.params
        if entry.scale not in (1, params.scale):
            return None
        rng = self.rng
        degree = int(rng.integers(1, 5))
        coefficients = [
            float(c)
            for c in self.magnitudes((degree + 1,), 3.0, entry.scale == 1 and rng.random() < 0.5)
        ]
        coeffs = list(coefficients)
        while len(coeffs) > 1 and coeffs[-1] == 0.0:
            coeffs.pop()
        r = product_divisor(params, entry.scale, entry.scale)
        mu = entry.messages
        # large inputs: the scheme builds the powers on x / 2**k (``polyval_shift``)
        shift = entry.ciphertext.scheme.polyval_shift(entry.ciphertext, len(coeffs) - 1)
        base = mu
        if shift:
            encoded, divisor, _ = plain_product(
                params, entry.scale, 2.0**-shift, fine_scale(params)
            )
            base = mu * encoded / divisor
        terms: list[tuple[Objects, int]] = []
        for d in range(1, len(coeffs)):
            if coeffs[d] == 0.0:
                continue
            power = mu if d == 1 else base**d / r ** (d - 1)
            coefficient = coeffs[d] if d == 1 else coeffs[d] * 2.0 ** (d * shift)
            encoded, divisor, scale = plain_product(
                params, entry.scale, coefficient, fine_scale(params)
            )
            terms.append((power * encoded / divisor, scale))
        if not terms:
            encoded, divisor, scale = plain_product(params, entry.scale, 0.0)
            terms.append((mu * encoded / divisor, scale))
        scales = {scale for _, scale in terms}
        result = entry.ciphertext.polyval(coefficients)
        if len(scales) > 1:
            self.report.fail("model_mismatches", f"polyval with mixed scales {scales} accepted")
            return None
        scale = scales.pop()
        messages = sum((t for t, _ in terms[1:]), terms[0][0])
        if coeffs[0] != 0.0:
            messages = messages + encode(coeffs[0], scale)
        return self._with(entry, result, messages, scale)

    def op_dot(self, entry: Entry, other: Entry) -> Entry:
        ctx = self.context(entry.ciphertext.scheme.params)
        params = entry.ciphertext.scheme.params
        m = entry.dim
        partner = other if other.keys is entry.keys and other.dim == m else entry
        options = ctx["weights"][m]
        h = options[int(self.rng.integers(len(options)))]
        weight = fractions(np.eye(m, dtype=np.int64) if h is None else h)
        r = product_divisor(params, entry.scale, partner.scale)
        result = entry.ciphertext.dot(partner.ciphertext, h)
        a, b = np.broadcast_arrays(entry.messages, partner.messages)
        total = (a[..., :, None] * weight * b[..., None, :]).sum(axis=(-2, -1))
        messages = np.asarray(total, dtype=object)[..., None] / r
        return self._with(entry, result, messages, entry.scale * partner.scale // r)

    def op_linear(self, entry: Entry) -> Entry:
        ctx = self.context(entry.ciphertext.scheme.params)
        options = ctx["transforms"][entry.dim]
        g = options[int(self.rng.integers(len(options)))]
        messages = entry.messages @ fractions(g).T
        return self._with(entry, entry.ciphertext.linear_transform(g), messages, entry.scale)

    def _plain_matrix(self, rows: int, cols: int, integer: bool) -> Any:
        return self.magnitudes((rows, cols), self.operand_bits(), integer)

    def _matmul(self, entry: Entry, plain: Any, on_left: bool) -> Entry:
        params = entry.ciphertext.scheme.params
        encoded, divisor, scale = plain_product(params, entry.scale, plain)
        mu = entry.messages[..., 0]
        if on_left:
            result = plain @ entry.ciphertext
            messages = np.tensordot(encoded, mu, axes=(1, 0))
        else:
            result = entry.ciphertext @ plain
            messages = mu @ encoded
        messages = np.asarray(messages, dtype=object)[..., None]
        if divisor > 1:
            messages = messages / divisor
        return self._with(entry, result, messages, scale)

    def op_matmul_plain(self, entry: Entry) -> Entry | None:
        if not entry.batch:
            return None
        rng = self.rng
        on_left = rng.random() < 0.5
        inner = entry.batch[0] if on_left else entry.batch[-1]
        outer = int(rng.integers(1, 4))
        integer = rng.random() < 0.3
        shape = (outer, inner) if on_left else (inner, outer)
        return self._matmul(entry, self._plain_matrix(*shape, integer), on_left)

    def op_matmul_long(self, params: IntegerVectorParams) -> Entry | None:
        """Large plaintext matrices times tiny encryptions, often over long inner dimensions.

        The plaintext is sized from the encryption's coefficient bound so that the result's
        coefficients land near 2**62, mostly between 2**55 and 2**64: the region where
        ``P @ Enc(W)`` needs 128-bit arithmetic and where refusals begin.
        """
        rng = self.rng
        inner = int(rng.choice(LONG_INNER)) if rng.random() < 0.5 else int(rng.integers(2, 17))
        on_left = rng.random() < 0.5
        scale = int(rng.choice([params.scale, params.scale, 1]))
        cols = int(rng.integers(1, 3))
        batch = (inner, cols) if on_left else (cols, inner)
        x_bits = float(rng.choice([-12.0, -10.0, -6.0, 0.0])) if scale > 1 else 0.0
        x_bits = max(x_bits, -math.log2(scale))  # at least one fixed-point unit
        entry = self.encrypt(params, batch, 1, scale=scale, bits=x_bits)
        self.check(entry, "encrypt (long)")
        integer = rng.random() < 0.3
        rescaled = not integer and scale > 1
        encode_scale = 1 if integer else params.scale
        result_bits = float(rng.uniform(55.0, 64.0) if rng.random() < 0.7 else rng.uniform(30, 55))
        row_bits = (
            result_bits
            + (math.log2(params.scale) if rescaled else 0.0)
            - math.log2(max(entry.ciphertext.coeff_bound, 1))
        )
        p_bits = row_bits - math.log2(inner) - math.log2(encode_scale)
        outer = int(rng.integers(1, 3))
        shape = (outer, inner) if on_left else (inner, outer)
        plain = self.magnitudes(shape, p_bits, integer, low_bits=p_bits - 1.0)
        return self._matmul(entry, plain, on_left)

    def op_matmul_cipher(self, entry: Entry, other: Entry) -> Entry | None:
        if len(entry.batch) not in (1, 2):
            return None
        inner = entry.batch[-1]
        params = entry.ciphertext.scheme.params
        right_batch = (inner,) if self.rng.random() < 0.5 else (inner, int(self.rng.integers(1, 3)))
        partner = self.encrypt(params, right_batch, 1, scale=entry.scale, bits=6)
        if partner.keys is not entry.keys:
            return None
        r = product_divisor(params, entry.scale, partner.scale)
        result = entry.ciphertext @ partner.ciphertext
        messages = np.asarray((entry.messages[..., 0] @ partner.messages[..., 0]) / r, dtype=object)
        return self._with(entry, result, messages[..., None], entry.scale * partner.scale // r)


def run_chains(
    decryptions: int,
    seed: int = 0,
    parameter_sets: Sequence[str] = tuple(CHAIN_PARAMETER_SETS),
    backend: Any = "numpy",
    max_seconds: float | None = None,
    progress: Callable[[ChainReport], None] | None = None,
) -> ChainReport:
    """Run random chains until ``decryptions`` decryptions were checked (or ``max_seconds``)."""
    unknown = [name for name in parameter_sets if name not in CHAIN_PARAMETER_SETS]
    if unknown:
        raise ValueError(
            f"unknown parameter sets {unknown}; choose from {', '.join(CHAIN_PARAMETER_SETS)}"
        )
    report = ChainReport()
    runner = ChainRunner(seed, parameter_sets, backend, report)
    start = time.perf_counter()
    last_progress = start
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureParametersWarning)
        while report.decryptions < decryptions:
            runner.run_chain()
            if report.chains == 0 and report.operations >= 1000:
                # every first encryption refused: a broken setup, not a long run to wait for
                raise RuntimeError(
                    "the chain checker could not start a single chain in 1,000 attempts; "
                    f"refusals: {dict(report.refusals)}"
                )
            now = time.perf_counter()
            report.seconds = now - start
            if max_seconds is not None and report.seconds > max_seconds:
                break
            if progress is not None and now - last_progress > 30:
                progress(report)
                last_progress = now
    report.seconds = time.perf_counter() - start
    return report


def _backend(name: str) -> Any:
    if name == "xp":
        # the CuPy backend's code (float64 limb GEMMs) running on NumPy
        return importlib.import_module("hennframework_backends._xp_backend").XpBackend()
    return name


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hennframework.testing.chains",
        description="Random operation chains on the integer-vector scheme, every decryption "
        "checked exactly with the secret key. Exit status 1 if anything was wrong.",
    )
    parser.add_argument("--decryptions", type=int, default=100_000, help="decryptions to check")
    parser.add_argument("--seed", type=int, default=0, help="seed of the inputs and keys")
    parser.add_argument(
        "--sets",
        default=",".join(CHAIN_PARAMETER_SETS),
        help=f"comma-separated parameter sets (default: {','.join(CHAIN_PARAMETER_SETS)})",
    )
    parser.add_argument(
        "--backend", default="numpy", help="array backend: numpy, or xp (CuPy's code on NumPy)"
    )
    parser.add_argument("--max-seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--json", default=None, help="also write the report to this JSON file")
    args = parser.parse_args(argv)
    sets = [name.strip() for name in args.sets.split(",") if name.strip()]

    def progress(report: ChainReport) -> None:
        print(
            f"... {report.decryptions} decryptions, {report.seconds:.0f} s, ok={report.ok}",
            file=sys.stderr,
            flush=True,
        )

    report = run_chains(
        args.decryptions, args.seed, sets, _backend(args.backend), args.max_seconds, progress
    )
    print(report.summary())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report.as_dict(), handle, indent=2)
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
