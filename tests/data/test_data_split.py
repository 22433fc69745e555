"""Test sizes: counts, fractions, the default, and the errors at the edges."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hennframework.data import (
    ReviewDataset,
    parse_test_size,
    resolve_test_size,
    train_test_split_last,
)
from hennframework.data.naming import command_line_names
from hennframework.exceptions import InputError


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (2, 1),
        (3, 1),
        (4, 1),
        (10, 2),
        (60, 12),
        (1000, 200),
        (4997, 999),
        (5000, 1000),
        (10662, 1000),
    ],
)
def test_default_is_20_percent_at_most_1000_at_least_1(n: int, expected: int) -> None:
    assert resolve_test_size(None, n) == expected
    assert 0 < expected < n  # the table itself leaves at least one item on each side


@pytest.mark.parametrize(
    ("size", "n", "expected"),
    [
        (0.2, 5, 1),
        (0.5, 3, 2),
        (0.99, 3, 2),
        (0.01, 10, 1),
        (0.25, 1000, 250),
        (np.float32(0.5), 4, 2),
    ],
)
def test_fractions_round_and_keep_one_on_each_side(size: float, n: int, expected: int) -> None:
    assert resolve_test_size(size, n) == expected


def test_counts() -> None:
    assert resolve_test_size(1, 2) == 1
    assert resolve_test_size(np.int64(9), 10) == 9
    for bad in (0, 10, 11, -1):
        with pytest.raises(InputError, match=f"test_size {bad} does not fit 10 reviews"):
            resolve_test_size(bad, 10)


@pytest.mark.parametrize("bad", [1.0, 1.5, 0.0, -0.2, math.nan, math.inf, True, "0.2"])
def test_not_a_count_or_a_fraction(bad: object) -> None:
    with pytest.raises(InputError, match="must be a number of reviews"):
        resolve_test_size(bad, 10)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [0, 1])
def test_too_small_to_split(n: int) -> None:
    for size in (None, 1, 0.5):
        with pytest.raises(InputError, match=f"{n} review\\(s\\) cannot be split"):
            resolve_test_size(size, n)


def test_command_line_spelling() -> None:
    with command_line_names(), pytest.raises(InputError, match="--test-size 50 does not fit"):
        resolve_test_size(50, 10)


@pytest.mark.parametrize(
    ("text", "value"),
    [("200", 200), (" 1 ", 1), ("0.2", 0.2), (".5", 0.5), ("20%", 0.2), ("2.5%", 0.025)],
)
def test_parse_test_size(text: str, value: int | float) -> None:
    parsed = parse_test_size(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("text", ["0", "1.0", "1.5", "-3", "100%", "0%", "abc", "", "nan", "1e3"])
def test_parse_test_size_refuses(text: str) -> None:
    with pytest.raises(InputError, match="expected a number of reviews"):
        parse_test_size(text)


def test_split_keeps_order() -> None:
    ds = ReviewDataset([f"r{i}" for i in range(10)], np.array([1, 0] * 5, np.int8), "t", "utf-8")
    train, test = train_test_split_last(ds)
    assert train.reviews == [f"r{i}" for i in range(8)] and test.reviews == ["r8", "r9"]
    train, test = train_test_split_last(ds, 0.3)
    assert len(train) == 7 and test.reviews[0] == "r7"
