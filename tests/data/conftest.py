"""Fixtures for the data tests: small files written to tmp_path, and the shared rt-polarity data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _rt_polarity_dir() -> Path | None:
    """``shared/data/rt-polarity`` beside the repository clone (or $HENN_RT_POLARITY_DIR)."""
    override = os.environ.get("HENN_RT_POLARITY_DIR")
    candidates = [Path(override)] if override else []
    repo = Path(__file__).resolve().parents[2]
    candidates += [
        repo.parent / "shared" / "data" / "rt-polarity",
        repo / "shared" / "data" / "rt-polarity",
    ]
    for c in candidates:
        if (c / "rt-polarity.pos").is_file() and (c / "rt-polarity.neg").is_file():
            return c
    return None


@pytest.fixture(scope="session")
def rt_polarity_dir() -> Path:
    """The shared rt-polarity folder; skips (with the reason) where it is not available."""
    found = _rt_polarity_dir()
    if found is None:
        pytest.skip(
            "shared rt-polarity data not found beside the repository (../shared/data/rt-polarity); "
            "set HENN_RT_POLARITY_DIR to its folder to run this test"
        )
    return found
