"""The same small workloads in three implementations: ours, TenSEAL's CKKS and plain NumPy.

Security differs and is recorded next to every number:

* ``hennframework``: integer-vector scheme, parameter set "default": INSECURE (no modulus).
* ``tenseal``: CKKS, ring dimension N = 8192, coefficient moduli [60, 40, 40, 60] (200 bits),
  scale 2**40: 128-bit security by the HE standard (at most 218 bits at N = 8192). The SGD step
  needs more levels, so it uses N = 8192, [40, 25, 25, 25, 25, 25, 40] (205 bits, still 128-bit),
  scale 2**25, as in the measurements of shared/notes/peer-measurements.md.
* ``numpy``: the plaintext computation, for the encrypted/unencrypted ratio.

Workloads (real values, fixed-point for ours): key generation; encrypting and decrypting 8
values; adding two encrypted 8-vectors; the inner product of two encrypted 8-vectors; an
encrypted 8-vector times a plain 8x8 matrix and a 64-vector times a plain 64x8 matrix; the cubic
sigmoid 0.5 + 0.197 x - 0.004 x**3 on 8 values; one SGD step of logistic regression with an
encrypted weight vector (30 features, plaintext sample, cubic sigmoid, learning rate 0.01), from
fresh weights each time (TenSEAL's level budget allows one step before a refresh).

Ours packs 8 values in one m = 8 vector for encrypt/decrypt/add/dot (like CKKS slots) and uses
one scalar ciphertext per value for the matrix, polynomial and SGD workloads (as the model API
does: no per-matrix key needed). TenSEAL is skipped, with the reason, when it is not installed
(``pip install "hennframework[ckks]"``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from benchutil import INSECURE, PLAINTEXT, make_scheme, measure

from hennframework.nn.ops import multiply_constant

TENSEAL_SECURITY = "128-bit"
HAVE_TENSEAL = importlib.util.find_spec("tenseal") is not None
SIGMOID3 = [0.5, 0.197, 0.0, -0.004]
FEATURES = 30
LR = 0.01

RNG = np.random.default_rng(7)  # workload data only (not key material)
X8 = np.linspace(-1.0, 1.0, 8)
Y8 = np.linspace(0.5, -0.5, 8)
M8 = RNG.uniform(-1, 1, (8, 8))
X64 = RNG.uniform(-1, 1, 64)
M64 = RNG.uniform(-1, 1, (64, 8)) / 8
SAMPLE = RNG.normal(0.0, 0.25, FEATURES)
LABEL = 1.0

WORKLOADS = (
    "keygen (context + keys)",
    "encrypt 8 values",
    "decrypt 8 values",
    "add",
    "dot of two encrypted 8-vectors",
    "vec(8) x plain 8x8",
    "vec(64) x plain 64x8",
    "degree-3 polynomial (8 values)",
    "logistic-regression SGD step (30 features)",
)
SLOW = {
    "keygen (context + keys)": 3,
    "vec(64) x plain 64x8": 3,
    "logistic-regression SGD step (30 features)": 3,
}


def _plain_sgd(w: np.ndarray) -> np.ndarray:
    z = SAMPLE @ w
    error = np.polynomial.polynomial.polyval(z, SIGMOID3) - LABEL
    return w - LR * error * SAMPLE


EXPECTED: dict[str, Callable[[], Any]] = {
    "encrypt 8 values": lambda: X8,
    "decrypt 8 values": lambda: X8,
    "add": lambda: X8 + Y8,
    "dot of two encrypted 8-vectors": lambda: X8 @ Y8,
    "vec(8) x plain 8x8": lambda: X8 @ M8,
    "vec(64) x plain 64x8": lambda: X64 @ M64,
    "degree-3 polynomial (8 values)": lambda: np.polynomial.polynomial.polyval(X8, SIGMOID3),
    "logistic-regression SGD step (30 features)": lambda: _plain_sgd(np.zeros(FEATURES)),
}


# ------------------------------------------------------------------------------ implementations
class Ours:
    """hennframework, integer-vector scheme, parameter set "default" (INSECURE)."""

    def __init__(self) -> None:
        self.scheme = make_scheme("default")
        self.keys = self.keygen()
        self.scale = self.scheme.params.scale
        pk = self.keys.public
        self.a8 = self.scheme.encrypt(X8, pk, dim=8, scale=self.scale)
        self.b8 = self.scheme.encrypt(Y8, pk, dim=8, scale=self.scale)
        self.t8 = self.scheme.encrypt_tensor(X8, pk)
        self.t64 = self.scheme.encrypt_tensor(X64, pk)
        self.w0 = self.scheme.encrypt_tensor(np.zeros(FEATURES), pk)

    def keygen(self) -> Any:
        keys = self.scheme.keygen(max_dim=8, dims=(1, 8), products=(1, 8))
        self.scheme.add_dot_key(keys, 8)
        return keys

    def sgd_step(self, w: Any) -> Any:
        z = w @ SAMPLE[:, None]  # (1,) encrypted: the plaintext sample times the weights
        error = z.polyval(SIGMOID3) - LABEL
        return w - multiply_constant(error * SAMPLE, LR)

    def function(self, workload: str) -> Callable[[], Any]:
        s, pk = self.scheme, self.keys.public
        return {
            "keygen (context + keys)": self.keygen,
            "encrypt 8 values": lambda: s.encrypt(X8, pk, dim=8, scale=self.scale),
            "decrypt 8 values": lambda: s.decrypt(self.a8, self.keys) / self.a8.scale_int,
            "add": lambda: self.a8 + self.b8,
            "dot of two encrypted 8-vectors": lambda: s.dot(self.a8, self.b8),
            "vec(8) x plain 8x8": lambda: self.t8 @ M8,
            "vec(64) x plain 64x8": lambda: self.t64 @ M64,
            "degree-3 polynomial (8 values)": lambda: self.t8.polyval(SIGMOID3),
            "logistic-regression SGD step (30 features)": lambda: self.sgd_step(self.w0),
        }[workload]

    def decode(self, value: Any) -> np.ndarray:
        if isinstance(value, np.ndarray):
            return value.reshape(-1)
        data = self.scheme.decrypt(value, self.keys).astype(np.float64) / value.scale_int
        return data.reshape(-1)


class TenSEAL:
    """TenSEAL CKKS at 128-bit security (see the module docstring)."""

    def __init__(self) -> None:
        import tenseal as ts

        self.ts = ts
        self.context = self.keygen()
        self.deep = self._context([40, 25, 25, 25, 25, 25, 40], 2**25)
        self.a8 = ts.ckks_vector(self.context, X8)
        self.b8 = ts.ckks_vector(self.context, Y8)
        self.a64 = ts.ckks_vector(self.context, X64)
        self.w0 = ts.ckks_vector(self.deep, np.zeros(FEATURES))
        self.m8 = M8.tolist()
        self.m64 = M64.tolist()
        self.gradient_row = [list(LR * SAMPLE)]

    def _context(self, moduli: list[int], scale: float) -> Any:
        context = self.ts.context(self.ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=moduli)
        context.global_scale = scale
        context.generate_galois_keys()
        context.generate_relin_keys()
        return context

    def keygen(self) -> Any:
        return self._context([60, 40, 40, 60], 2**40)

    def sgd_step(self, w: Any) -> Any:
        z = w.dot(SAMPLE.tolist())
        error = z.polyval(SIGMOID3) - LABEL
        return w - error.matmul(self.gradient_row)  # error (1 slot) times the row LR * x

    def function(self, workload: str) -> Callable[[], Any]:
        ts = self.ts
        return {
            "keygen (context + keys)": self.keygen,
            "encrypt 8 values": lambda: ts.ckks_vector(self.context, X8),
            "decrypt 8 values": lambda: self.a8.decrypt(),
            "add": lambda: self.a8 + self.b8,
            "dot of two encrypted 8-vectors": lambda: self.a8.dot(self.b8),
            "vec(8) x plain 8x8": lambda: self.a8.matmul(self.m8),
            "vec(64) x plain 64x8": lambda: self.a64.matmul(self.m64),
            "degree-3 polynomial (8 values)": lambda: self.a8.polyval(SIGMOID3),
            "logistic-regression SGD step (30 features)": lambda: self.sgd_step(self.w0),
        }[workload]

    def decode(self, value: Any) -> np.ndarray:
        if isinstance(value, list):
            return np.asarray(value, dtype=np.float64)
        return np.asarray(value.decrypt(), dtype=np.float64)


class Plain:
    """The plaintext computation with NumPy."""

    def function(self, workload: str) -> Callable[[], Any]:
        return {
            "add": lambda: X8 + Y8,
            "dot of two encrypted 8-vectors": lambda: X8 @ Y8,
            "vec(8) x plain 8x8": lambda: X8 @ M8,
            "vec(64) x plain 64x8": lambda: X64 @ M64,
            "degree-3 polynomial (8 values)": lambda: np.polynomial.polynomial.polyval(
                X8, SIGMOID3
            ),
            "logistic-regression SGD step (30 features)": lambda: _plain_sgd(np.zeros(FEATURES)),
        }[workload]


@pytest.fixture(scope="module")
def ours() -> Ours:
    return Ours()


@pytest.fixture(scope="module")
def tenseal_impl() -> TenSEAL:
    if not HAVE_TENSEAL:
        pytest.skip('TenSEAL is not installed (optional: pip install "hennframework[ckks]")')
    return TenSEAL()


def _record(workload: str, implementation: str, security: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "comparison",
        "operation": workload,
        "implementation": implementation,
        "security": security,
        "encrypted": implementation != "numpy",
        **extra,
    }


@pytest.mark.parametrize("workload", WORKLOADS)
def test_ours(benchmark: Any, ours: Ours, workload: str) -> None:
    benchmark.group = f"vs TenSEAL: {workload}"
    result = measure(
        benchmark,
        ours.function(workload),
        items=1,
        unit="call",
        rounds=SLOW.get(workload),
        **_record(workload, "hennframework", INSECURE, params="default"),
    )
    if workload in EXPECTED:
        error = np.abs(ours.decode(result) - np.ravel(EXPECTED[workload]())).max()
        benchmark.extra_info["max_abs_error"] = float(error)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_tenseal(benchmark: Any, tenseal_impl: TenSEAL, workload: str) -> None:
    benchmark.group = f"vs TenSEAL: {workload}"
    result = measure(
        benchmark,
        tenseal_impl.function(workload),
        items=1,
        unit="call",
        rounds=SLOW.get(workload),
        **_record(
            workload,
            "tenseal",
            TENSEAL_SECURITY,
            params="CKKS N=8192, [40,25x5,40], 2^25"
            if workload.startswith("logistic")
            else "CKKS N=8192, [60,40,40,60], 2^40",
        ),
    )
    if workload in EXPECTED:
        error = np.abs(tenseal_impl.decode(result) - np.ravel(EXPECTED[workload]())).max()
        benchmark.extra_info["max_abs_error"] = float(error)


#: Workloads with a plaintext counterpart (key generation and encryption have none).
PLAIN_WORKLOADS = WORKLOADS[3:]


@pytest.mark.parametrize("workload", PLAIN_WORKLOADS)
def test_numpy(benchmark: Any, workload: str) -> None:
    benchmark.group = f"vs TenSEAL: {workload}"
    measure(
        benchmark,
        Plain().function(workload),
        items=1,
        unit="call",
        **_record(workload, "numpy", PLAINTEXT, params="plaintext"),
    )
