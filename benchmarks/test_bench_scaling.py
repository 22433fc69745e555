"""How time and memory grow with m, the batch size and the parameters w, gadget base and k.

Each benchmark varies one thing (``axis`` / ``value`` in extra_info) from a reference point
(parameter set "default", m = 16, batch 256) and records, besides the time:

* ``key_bytes``: the size of the evaluation key the operation uses (KeySwitchKey.nbytes);
* ``peak_bytes``: peak memory allocated during one call (tracemalloc, outside the timed runs);
* ``noise_budget``: bits of noise room left in the result (negative: it would not decrypt).

``test_key_material`` gives the key sizes, key-generation time and peak memory per named
parameter set. All integer-vector parameter sets are INSECURE.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from benchutil import (
    integer_messages,
    make_scheme,
    measure,
    peak_memory,
    security_of,
    transform_matrix,
)

from hennframework.schemes.integer_vector import IntegerVectorParams
from hennframework.schemes.integer_vector.params import PARAMETER_SETS

DEFAULT = PARAMETER_SETS["default"]
SCALING_OPS = ("encrypt", "multiply", "dot")


def _variant(axis: str, value: int) -> IntegerVectorParams:
    """The default parameter set with one parameter changed (named after the change)."""
    if axis == "w":
        return dataclasses.replace(DEFAULT, name=f"default w=2^{value}", w=2**value)
    if axis == "gadget_bits":
        return dataclasses.replace(DEFAULT, name=f"default b={value}", gadget_bits=value)
    if axis == "k":
        return dataclasses.replace(DEFAULT, name=f"default k={value}", k=value)
    raise AssertionError(axis)  # pragma: no cover


_SCHEMES: dict[str, Any] = {}
_KEYS: dict[tuple[str, int], Any] = {}


def _setup(params: IntegerVectorParams, m: int, op: str) -> tuple[Any, Any, Any]:
    """Scheme, keys and the evaluation key that ``op`` uses (None for encryption's own key)."""
    if params.name not in _SCHEMES:
        _SCHEMES[params.name] = make_scheme(params)
    scheme = _SCHEMES[params.name]
    slot = (params.name, m)
    if slot not in _KEYS:
        _KEYS[slot] = scheme.keygen(seed=m, max_dim=m, dims=(m,), products=(m,))
    keys = _KEYS[slot]
    if op == "encrypt":
        key = keys.public.encryption[m]
    elif op == "multiply":
        key = keys.public.evaluation.keys[f"product:{m}"]
    elif op == "dot":
        key = scheme.add_dot_key(keys, m)
    elif op == "linear_transform":
        key = scheme.add_linear_key(keys, transform_matrix(m))
    else:  # pragma: no cover
        raise AssertionError(op)
    return scheme, keys, key


def _run_case(
    benchmark: Any, params: IntegerVectorParams, op: str, m: int, batch: int, axis: str, value: int
) -> None:
    scheme, keys, key = _setup(params, m, op)
    x = integer_messages(batch, m, 10, seed=1)
    y = integer_messages(batch, m, 10, seed=2)
    cx = scheme.encrypt(x, keys.public, dim=m)
    cy = scheme.encrypt(y, keys.public, dim=m)
    g = transform_matrix(m)
    functions = {
        "encrypt": lambda: scheme.encrypt(x, keys.public, dim=m),
        "multiply": lambda: scheme.multiply(cx, cy),
        "dot": lambda: scheme.dot(cx, cy),
        "linear_transform": lambda: scheme.linear_transform(cx, g),
    }
    function = functions[op]
    function()  # a first call builds what the scheme keeps for later ones (not temporaries)
    result, peak = peak_memory(function)
    benchmark.group = f"scaling {axis}: {op}"
    slow = op == "dot" and batch >= 1024
    measure(
        benchmark,
        function,
        items=batch,
        rounds=3 if slow else None,
        kind="scaling",
        axis=axis,
        value=value,
        operation=op,
        m=m,
        batch=batch,
        params=params.name,
        security=security_of(params),
        implementation="hennframework",
        encrypted=True,
        k=params.k,
        w_bits=params.w.bit_length() - 1,
        gadget_bits=params.gadget_bits,
        key_bytes=key.nbytes,
        peak_bytes=peak,
        noise_budget=result.noise_budget,
    )


M_VALUES = (4, 8, 16, 32, 64, 128, 256)


@pytest.mark.parametrize("m", M_VALUES)
@pytest.mark.parametrize("op", ("encrypt", "linear_transform", "multiply", "dot"))
def test_scaling_m(benchmark: Any, op: str, m: int) -> None:
    """Time and memory against the vector length m (batch 64)."""
    _run_case(benchmark, DEFAULT, op, m, 64, "m", m)


@pytest.mark.parametrize("batch", (1, 4, 16, 64, 256, 1024))
@pytest.mark.parametrize("op", SCALING_OPS)
def test_scaling_batch(benchmark: Any, op: str, batch: int) -> None:
    """Time per ciphertext against the batch size (m = 16): where batching stops paying."""
    _run_case(benchmark, DEFAULT, op, 16, batch, "batch", batch)


@pytest.mark.parametrize("w_bits", (20, 30, 40, 50))
@pytest.mark.parametrize("op", SCALING_OPS)
def test_scaling_w(benchmark: Any, op: str, w_bits: int) -> None:
    """w changes the noise room (noise_budget), not the work: int64 arithmetic either way."""
    _run_case(benchmark, _variant("w", w_bits), op, 16, 256, "w", w_bits)


@pytest.mark.parametrize("bits", (1, 2, 4, 8, 12, 16))
@pytest.mark.parametrize("op", SCALING_OPS)
def test_scaling_gadget(benchmark: Any, op: str, bits: int) -> None:
    """The gadget base 2**b: b times fewer digits (smaller keys, faster switches), more noise."""
    _run_case(benchmark, _variant("gadget_bits", bits), op, 16, 256, "gadget_bits", bits)


@pytest.mark.parametrize("k", (1, 2, 4, 8, 16))
@pytest.mark.parametrize("op", SCALING_OPS)
def test_scaling_k(benchmark: Any, op: str, k: int) -> None:
    """k, the columns of T: ciphertexts have m + k entries, product keys grow with k**2."""
    _run_case(benchmark, _variant("k", k), op, 16, 256, "k", k)


@pytest.mark.parametrize("m", (16, 64))
@pytest.mark.parametrize("params", ("default", "seed", "vhe"))
def test_key_material(benchmark: Any, params: str, m: int) -> None:
    """Key generation (secret, encryption, product, inner-product, linear keys) and its size."""
    scheme = make_scheme(params)
    g = transform_matrix(m)

    def make() -> Any:
        keys = scheme.keygen(max_dim=m, dims=(m,), products=(m,))
        scheme.add_dot_key(keys, m)
        scheme.add_linear_key(keys, g)
        return keys

    keys, peak = peak_memory(make)
    sizes = {"encryption": keys.public.encryption[m].nbytes}
    for name, key in keys.public.evaluation.keys.items():
        sizes[name.split(":")[0]] = key.nbytes
    benchmark.group = "key material"
    measure(
        benchmark,
        make,
        items=1,
        unit="key set",
        rounds=3,
        kind="keys",
        operation="keygen (all keys)",
        m=m,
        batch=1,
        params=params,
        security=security_of(params),
        implementation="hennframework",
        encrypted=True,
        key_bytes=sum(sizes.values()),
        key_bytes_by_kind=sizes,
        peak_bytes=peak,
    )
