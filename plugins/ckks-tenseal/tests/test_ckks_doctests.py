"""The examples in the plugin's docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "hennframework_ckks"
MODULES = sorted(
    f"hennframework_ckks.{path.stem}"
    for path in PACKAGE.glob("*.py")
    if ">>> " in path.read_text(encoding="utf-8")
)


def test_the_rotation_key_choice_has_examples() -> None:
    assert {"hennframework_ckks._seal", "hennframework_ckks.keys"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
