"""Repository-level pytest configuration: the CKKS plugin's tests run when the plugin is installed.

``python -m pytest`` collects ``tests/`` and ``plugins/ckks-tenseal/tests`` (pyproject's
``testpaths``). The plugin is a separate distribution (``pip install -e plugins/ckks-tenseal``,
which brings TenSEAL); without it, its tests are not collected and the report header says so.
"""

from __future__ import annotations

import importlib.util

CKKS_INSTALLED = importlib.util.find_spec("hennframework_ckks") is not None

collect_ignore_glob = [] if CKKS_INSTALLED else ["plugins/ckks-tenseal/tests/*"]


def pytest_report_header() -> str:
    if CKKS_INSTALLED:
        return "hennframework-ckks: installed, its tests (the identity kit on CKKS) are collected"
    return (
        "hennframework-ckks: NOT installed, its tests are not collected "
        "(pip install -e plugins/ckks-tenseal to run them)"
    )
