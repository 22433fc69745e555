"""Error bounds for approximate (fixed-point or CKKS-style) decryption, derived from two numbers.

A scheme under test states its precision through two fixtures of the kit:

* ``tolerance``: the largest absolute error of a *fresh* encryption (``|Dec(Enc(x)) - x|``), which
  is also taken as the error of encoding a plaintext operand (for fixed point at scale ``f``:
  ``1 / (2 f)``);
* ``op_tolerance``: the largest absolute error that *one* operation adds when its result is
  rounded or rescaled (for the integer-vector scheme ``(1/2 + noise/w) / f < 1 / f``).

:class:`Tracked` carries the exact reference value (computed in float64 on the plaintexts) with a
bound on how far a correct scheme's decryption may be from it, propagated through each operation
by first-order-exact rules: if ``|x~ - x| <= a`` and ``|y~ - y| <= b`` then
``|x~ y~ - x y| <= |x| b + |y| a + a b``. Nothing here is a fudge factor: a decryption outside the
bound is a bug (or a precision statement that is too optimistic).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["ErrorModel", "Tracked", "assert_within"]

Floats = npt.NDArray[np.float64]

#: Relative slack for the float64 reference computation itself (a few ulps of the magnitudes).
REFERENCE_ULPS = 2.0**-46


@dataclass(frozen=True)
class Tracked:
    """An exact reference ``value``, a bound ``error`` on a decryption's distance from it, and
    ``magnitude`` (a bound on the sum of absolute values of the terms that formed ``value``, used
    only to allow for float64 rounding in the reference itself)."""

    value: Floats
    error: Floats
    magnitude: Floats

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    def __getitem__(self, index: Any) -> Tracked:
        return Tracked(self.value[index], self.error[index], self.magnitude[index])

    def reshape(self, *shape: int) -> Tracked:
        return Tracked(
            self.value.reshape(*shape), self.error.reshape(*shape), self.magnitude.reshape(*shape)
        )

    def transpose(self) -> Tracked:
        return Tracked(self.value.T, self.error.T, self.magnitude.T)


def _f(values: Any) -> Floats:
    return np.asarray(values, dtype=np.float64)


def _times(factor: Floats, bound: Floats) -> Floats:
    """``factor * bound`` elementwise, with ``0 * inf = 0``.

    A term ``|x| * e`` of a bound is exactly zero when ``x`` is: an exactly known zero contributes
    nothing, however loose the other operand's bound has become (an overflowed, infinite bound
    stays infinite wherever it is really used). IEEE arithmetic would give NaN instead, and a NaN
    bound can never be checked.
    """
    factor, bound = np.broadcast_arrays(_f(factor), _f(bound))
    out = np.zeros(factor.shape)
    np.multiply(factor, bound, out=out, where=(factor != 0) & (bound != 0))
    return out


@dataclass(frozen=True)
class ErrorModel:
    """Propagates error bounds through the operations of the identity suite (see module doc)."""

    tolerance: float
    op_tolerance: float

    def fresh(self, values: Any) -> Tracked:
        """A fresh encryption of ``values``."""
        x = _f(values)
        return Tracked(x, np.full(x.shape, self.tolerance), np.abs(x))

    def exact(self, values: Any) -> Tracked:
        """A value known without error (for example an already-decrypted reference)."""
        x = _f(values)
        return Tracked(x, np.zeros(x.shape), np.abs(x))

    # -- linear operations: errors add, nothing is rounded ------------------------------------------
    def add(self, a: Tracked, b: Tracked) -> Tracked:
        return Tracked(a.value + b.value, a.error + b.error, a.magnitude + b.magnitude)

    def neg(self, a: Tracked) -> Tracked:
        return Tracked(-a.value, a.error, a.magnitude)

    def sub(self, a: Tracked, b: Tracked) -> Tracked:
        return self.add(a, self.neg(b))

    def add_plain(self, a: Tracked, plain: Any) -> Tracked:
        """``a + p``: the plaintext is encoded with error at most ``tolerance``."""
        p = _f(plain)
        return Tracked(a.value + p, a.error + self.tolerance + 0.0 * p, a.magnitude + np.abs(p))

    def sum(self, a: Tracked, axis: int | None = None) -> Tracked:
        return Tracked(a.value.sum(axis=axis), a.error.sum(axis=axis), a.magnitude.sum(axis=axis))

    def scatter_add(self, a: Tracked, rows: npt.NDArray[np.integer[Any]], b: Tracked) -> Tracked:
        """``a`` with ``b[i]`` added to row ``rows[i]``. A scheme may place the rows with exact
        additions (the integer-vector scheme) or with a product by a plaintext 0/1 matrix
        (CKKS: a linear map over the slots), which encodes the 0/1 entries (error
        ``tolerance`` times each moved value) and rounds every result once, the rows left alone
        included (``op_tolerance``): the bound allows for both."""
        value, error, magnitude = a.value.copy(), a.error.copy(), a.magnitude.copy()
        np.add.at(value, rows, b.value)
        np.add.at(error, rows, b.error + (np.abs(b.value) + b.error) * self.tolerance)
        np.add.at(magnitude, rows, b.magnitude)
        return Tracked(value, error + self.op_tolerance, magnitude)

    # -- products: one rounding (op_tolerance) per result -------------------------------------------
    def mul_plain(self, a: Tracked, plain: Any) -> Tracked:
        """``a * p`` (plaintext encoded with error ``tolerance``, result rounded once)."""
        p = _f(plain)
        abs_p = np.abs(p)
        error = (
            _times(abs_p, a.error)
            + (np.abs(a.value) + a.error) * self.tolerance
            + self.op_tolerance
        )
        return Tracked(a.value * p, error, _times(a.magnitude, abs_p))

    def mul(self, a: Tracked, b: Tracked) -> Tracked:
        """``a * b`` of two ciphertexts (broadcasting), result rounded once."""
        error = (
            _times(np.abs(a.value), b.error)
            + _times(np.abs(b.value), a.error)
            + _times(a.error, b.error)
            + self.op_tolerance
        )
        return Tracked(a.value * b.value, error, _times(a.magnitude, b.magnitude))

    def matmul_plain_left(self, plain: Any, a: Tracked) -> Tracked:
        """``P @ a`` over the leading batch axis (P: J x K, a: (K, ...)), rounded once."""
        p = _f(plain)
        abs_p = np.abs(p)
        # sum_K |P_JK| e_K + (|x_K| + e_K) * tolerance (the encoding error of P_JK)
        encoding = np.tensordot(np.ones_like(abs_p), np.abs(a.value) + a.error, axes=(1, 0))
        error = (
            np.tensordot(abs_p, a.error, axes=(1, 0))
            + encoding * self.tolerance
            + self.op_tolerance
        )
        return Tracked(
            np.tensordot(p, a.value, axes=(1, 0)),
            error,
            np.tensordot(abs_p, a.magnitude, axes=(1, 0)),
        )

    def matmul_plain_right(self, a: Tracked, plain: Any) -> Tracked:
        """``a @ P`` over the trailing batch axis (a: (..., K), P: K x J), rounded once."""
        p = _f(plain)
        abs_p = np.abs(p)
        encoding = (np.abs(a.value) + a.error) @ np.ones_like(abs_p)
        error = a.error @ abs_p + encoding * self.tolerance + self.op_tolerance
        return Tracked(a.value @ p, error, a.magnitude @ abs_p)

    def matmul(self, a: Tracked, b: Tracked) -> Tracked:
        """``a @ b`` of two ciphertext tensors: elementwise products (each rounded), then sums."""
        abs_a, abs_b = np.abs(a.value), np.abs(b.value)
        inner = a.value.shape[-1]
        error = abs_a @ b.error + a.error @ abs_b + a.error @ b.error + inner * self.op_tolerance
        return Tracked(a.value @ b.value, error, a.magnitude @ b.magnitude)

    def polyval(self, a: Tracked, coefficients: Sequence[float]) -> Tracked:
        """``sum_i c_i a**i`` for any product tree that builds each power from lower powers.

        The error of ``a**n`` is bounded by the worst split ``n = i + j`` of
        ``(X**i + E_i)(X**j + E_j) - X**n + op_tolerance`` (X = |a|), which covers balanced trees,
        repeated multiplication and squaring alike. Each term ``c_i a**i`` is a plaintext product;
        ``c_0`` a plaintext addition. A scheme that evaluates by Horner's rule should override
        the suite's ``polyval_bound``.
        """
        coeffs = [float(c) for c in coefficients]
        x_abs = np.abs(a.value)
        degree = max(len(coeffs) - 1, 1)
        powers: dict[int, Floats] = {1: a.error}
        for n in range(2, degree + 1):
            worst = np.zeros(x_abs.shape)
            for i in range(1, n // 2 + 1):
                j = n - i
                candidate = (x_abs**i + powers[i]) * (x_abs**j + powers[j]) - x_abs**n
                worst = np.maximum(worst, candidate)
            powers[n] = worst + self.op_tolerance
        value = np.zeros(x_abs.shape)
        error = np.zeros(x_abs.shape)
        magnitude = np.zeros(x_abs.shape)
        for i in range(1, degree + 1):
            c = coeffs[i] if i < len(coeffs) else 0.0
            value = value + c * a.value**i
            magnitude = magnitude + abs(c) * (a.magnitude**i + x_abs**i)
            error = error + abs(c) * powers[i] + (x_abs**i + powers[i]) * self.tolerance
            error = error + self.op_tolerance
        value = value + coeffs[0]
        magnitude = magnitude + abs(coeffs[0])
        error = error + self.tolerance
        return Tracked(value, error, magnitude)


def _index(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The index of flat position ``flat`` as plain integers (for messages)."""
    return tuple(int(i) for i in np.unravel_index(flat, shape))


def assert_within(decrypted: Any, expected: Tracked, what: str) -> None:
    """Assert ``|decrypted - expected.value| <= expected.error`` elementwise (plus float64 ulps).

    The failure message names the operation, the worst element, its error and its bound.
    """
    got = np.asarray(decrypted, dtype=np.float64)
    assert got.shape == expected.shape, (
        f"{what}: decrypted shape {got.shape} differs from the expected shape {expected.shape}"
    )
    assert np.isfinite(got).all(), f"{what}: decryption returned NaN or infinity: {got}"
    for name, array in (("value", expected.value), ("error bound", expected.error)):
        # NaN compares false with everything: the check below would pass without checking
        if np.isnan(array).any():
            where = _index(int(np.argmax(np.isnan(array))), array.shape)
            raise AssertionError(
                f"{what}: the reference {name} is NaN at index {where}, so the decryption "
                f"{got[where]!r} cannot be checked there. The test's inputs overflow float64 in "
                "the reference computation: a defect of the test, not of the scheme; draw "
                "smaller inputs or stop the chain earlier."
            )
    slack = REFERENCE_ULPS * (1.0 + expected.magnitude)
    deviation = np.abs(got - expected.value)
    excess = deviation - (expected.error + slack)
    if got.size and excess.max() > 0:
        worst = _index(int(np.argmax(excess)), got.shape)
        raise AssertionError(
            f"{what}: decrypted {got[worst]!r} but expected {expected.value[worst]!r} within "
            f"{expected.error[worst]:.3g} (error {deviation[worst]:.3g}) at index {worst}.\n"
            f"decrypted: {got}\nexpected:  {expected.value}\nbounds:    {expected.error}"
        )
