"""The sentence polarity data shipped in the package: intact, cited, packaged, and loadable."""

from __future__ import annotations

import hashlib
import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

import hennframework
from hennframework.data import RT_POLARITY_CITATION, load_reviews, load_rt_polarity
from hennframework.data.bundled import rt_polarity_files

FOLDER = Path(hennframework.__file__).parent / "data" / "rt_polarity"
REPO = Path(__file__).resolve().parents[2]
README = FOLDER / "README.md"


def test_shipped_files_match_the_checksums_in_their_readme() -> None:
    text = README.read_text(encoding="utf-8")
    listed = dict(
        re.findall(r"`(rt-polarity\.(?:pos|neg))` \|[^|]*\|[^|]*\| `([0-9a-f]{64})`", text)
    )
    assert set(listed) == {"rt-polarity.pos", "rt-polarity.neg"}
    for name, digest in listed.items():
        assert hashlib.sha256((FOLDER / name).read_bytes()).hexdigest() == digest, name


def test_readme_cites_the_dataset() -> None:
    text = README.read_text(encoding="utf-8")
    assert "Bo Pang and Lillian Lee" in text and "ACL 2005" in text
    assert "Pang" in RT_POLARITY_CITATION and "2005" in RT_POLARITY_CITATION


def test_load_rt_polarity_keeps_the_encoding_traps() -> None:
    ds = load_rt_polarity()
    assert (ds.n_positive, ds.n_negative) == (5331, 5331)
    assert ds.format == "polarity" and ds.encoding == "windows-1252"
    assert "Pang and Lee" in ds.source and "shipped" in ds.source
    assert sum("\u2026" in review for review in ds.reviews) > 0  # byte 0x85 inside lines
    assert ds.reviews == load_reviews(FOLDER).reviews  # the same as loading the folder by path


def test_resources_point_at_the_shipped_files() -> None:
    pos, neg = rt_polarity_files()
    assert pos.read_bytes() == (FOLDER / "rt-polarity.pos").read_bytes()
    assert neg.name == "rt-polarity.neg"


def test_package_data_carries_the_files() -> None:
    """A wheel gets what [tool.setuptools.package-data] names: both files and the README."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["hennframework"]
    for name in ("rt-polarity.pos", "rt-polarity.neg", "README.md"):
        assert any(fnmatch(f"data/rt_polarity/{name}", p) for p in patterns), name


@pytest.mark.data
def test_same_bytes_as_the_shared_copy(rt_polarity_dir: Path) -> None:
    for name in ("rt-polarity.pos", "rt-polarity.neg"):
        assert (FOLDER / name).read_bytes() == (rt_polarity_dir / name).read_bytes()
