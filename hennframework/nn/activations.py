"""Polynomial approximations of the sigmoid, the only activations an HE scheme can evaluate.

An encrypted network can only add and multiply, so ``sigmoid(x) = 1 / (1 + exp(-x))`` is replaced by
a polynomial. Two families:

* the Taylor series at 0 of Trask's 2017 post (degrees 3, 5, 7):
  ``1/2 + x/4 - x**3/48 + x**5/480 - 17 x**7/80640``, accurate near 0 and useless far from it (it diverges: degree 3 is 0 at x = 4.9, then negative);
* least-squares fits of odd polynomials on an interval ``[-r, r]`` (uniform weight), which trade
  a little accuracy near 0 for a bounded error on the whole interval.

``max_error`` is measured on a 20,001-point grid of the interval when the approximation is built.
The table in docs/model.md is generated from :func:`error_table`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from hennframework.exceptions import InputError

__all__ = ["SIGMOID_APPROXIMATIONS", "SigmoidApproximation", "error_table", "get_sigmoid"]

TAYLOR = [0.5, 0.25, 0.0, -1.0 / 48.0, 0.0, 1.0 / 480.0, 0.0, -17.0 / 80640.0]


def sigmoid(x: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The exact logistic function, numerically stable for large |x|."""
    values = np.asarray(x, dtype=np.float64)
    return np.where(
        values >= 0,
        1.0 / (1.0 + np.exp(-np.abs(values))),
        1.0 - 1.0 / (1.0 + np.exp(-np.abs(values))),
    )


@dataclass(frozen=True)
class SigmoidApproximation:
    """A polynomial standing in for the sigmoid on ``[-radius, radius]`` (coefficients lowest first)."""

    name: str
    coefficients: tuple[float, ...]
    radius: float
    description: str

    @property
    def degree(self) -> int:
        return len(self.coefficients) - 1

    @property
    def derivative_coefficients(self) -> tuple[float, ...]:
        return tuple(i * c for i, c in enumerate(self.coefficients) if i > 0)

    def __call__(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return np.asarray(
            np.polynomial.polynomial.polyval(np.asarray(x, dtype=np.float64), self.coefficients),
            dtype=np.float64,
        )

    def derivative(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return np.asarray(
            np.polynomial.polynomial.polyval(
                np.asarray(x, dtype=np.float64), self.derivative_coefficients
            ),
            dtype=np.float64,
        )

    @property
    def max_error(self) -> float:
        """max |p(x) - sigmoid(x)| on [-radius, radius]."""
        return _max_error(self.coefficients, self.radius)


@cache
def _max_error(coefficients: tuple[float, ...], radius: float) -> float:
    grid = np.linspace(-radius, radius, 20_001)
    return float(np.abs(np.polynomial.polynomial.polyval(grid, coefficients) - sigmoid(grid)).max())


def least_squares_odd(degree: int, radius: float) -> tuple[float, ...]:
    """Least-squares fit of 1/2 + (odd polynomial of ``degree``) to the sigmoid on [-radius, radius]."""
    grid = np.linspace(-radius, radius, 4_001)
    powers = list(range(1, degree + 1, 2))
    design = np.stack([grid**p for p in powers], axis=1)
    solution, *_ = np.linalg.lstsq(design, sigmoid(grid) - 0.5, rcond=None)
    coefficients = [0.5] + [0.0] * degree
    for power, value in zip(powers, solution, strict=True):
        coefficients[power] = float(value)
    return tuple(coefficients)


def _taylor(degree: int) -> SigmoidApproximation:
    return SigmoidApproximation(
        f"taylor{degree}",
        tuple(TAYLOR[: degree + 1]),
        radius={3: 1.5, 5: 2.0, 7: 2.5}[degree],
        description=f"Taylor series at 0 to degree {degree} (Trask's 2017 post); "
        "diverges for large |x|",
    )


def _lsq(degree: int, radius: float) -> SigmoidApproximation:
    return SigmoidApproximation(
        f"lsq{degree}",
        least_squares_odd(degree, radius),
        radius=radius,
        description=f"least-squares odd polynomial of degree {degree} on [-{radius:g}, {radius:g}]",
    )


SIGMOID_APPROXIMATIONS: dict[str, SigmoidApproximation] = {
    approximation.name: approximation
    for approximation in (
        _taylor(3),
        _taylor(5),
        _taylor(7),
        _lsq(3, 6.0),
        _lsq(5, 8.0),
    )
}


def get_sigmoid(name: str | SigmoidApproximation) -> SigmoidApproximation:
    if isinstance(name, SigmoidApproximation):
        return name
    if name not in SIGMOID_APPROXIMATIONS:
        raise InputError(
            f"unknown sigmoid approximation {name!r}; choose one of {', '.join(SIGMOID_APPROXIMATIONS)}"
        )
    return SIGMOID_APPROXIMATIONS[name]


def error_table(names: Sequence[str] | None = None) -> list[dict[str, object]]:
    """Rows of (name, degree, interval, max error on the interval, error at the interval's edge)."""
    rows = []
    for name in names or list(SIGMOID_APPROXIMATIONS):
        approx = SIGMOID_APPROXIMATIONS[name]
        rows.append(
            {
                "name": approx.name,
                "degree": approx.degree,
                "interval": f"[-{approx.radius:g}, {approx.radius:g}]",
                "max_error": approx.max_error,
                "description": approx.description,
            }
        )
    return rows
