"""Shared test setup: Hypothesis profiles and a sandbox for fake entry-point plugins.

Hypothesis profiles: ``ci`` (derandomised, so CI runs are reproducible) is loaded when the
environment variable ``CI`` is set, ``dev`` otherwise; ``HYPOTHESIS_PROFILE`` overrides both.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import stevedore._cache
from hypothesis import settings
from stevedore import ExtensionManager

from hennframework import registry

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=30, print_blob=True)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


class PluginSandbox:
    """Fake installed distributions with entry points, on ``sys.path`` for one test.

    Each distribution is a ``NAME-0.0.dist-info`` folder (``METADATA`` + ``entry_points.txt``)
    in a temporary directory that is prepended to ``sys.path``; modules are ``.py`` files next to
    it. After every change the caches that would hide it are reset: stevedore's per-group list
    (``ExtensionManager.ENTRY_POINT_CACHE``), stevedore's path-keyed entry-point cache (replaced
    by a fresh one in the temporary directory, so nothing is written under ``~/.cache``; its
    on-disk key packs mtimes as 32-bit floats, so a rewrite within ~2 minutes would look
    unchanged), importlib's finder caches, and the registry's backend instances.
    """

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self._monkeypatch = monkeypatch
        self._entry_points: dict[str, dict[str, dict[str, str]]] = {}
        self._modules: set[str] = set()
        self._generation = 0
        root.mkdir(parents=True, exist_ok=True)
        monkeypatch.setattr(ExtensionManager, "ENTRY_POINT_CACHE", {})
        monkeypatch.syspath_prepend(str(root))
        self.refresh()

    def module(self, name: str, source: str) -> None:
        """Write the module ``name`` (a top-level ``.py`` file) and forget any imported copy."""
        (self.root / f"{name}.py").write_text(source, encoding="utf-8")
        self._modules.add(name)
        sys.modules.pop(name, None)
        self.refresh()

    def entry_point(
        self, group: str, name: str, target: str, distribution: str = "henn-test-plugins"
    ) -> None:
        """Declare ``name = target`` in ``group`` for the fake ``distribution``."""
        self._entry_points.setdefault(distribution, {}).setdefault(group, {})[name] = target
        self._write(distribution)
        self.refresh()

    def _write(self, distribution: str) -> None:
        folder = self.root / f"{distribution.replace('-', '_')}-0.0.dist-info"
        folder.mkdir(exist_ok=True)
        (folder / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.0\n", encoding="utf-8"
        )
        lines = []
        for group, entries in self._entry_points[distribution].items():
            lines.append(f"[{group}]")
            lines.extend(f"{name} = {target}" for name, target in entries.items())
            lines.append("")
        (folder / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")

    def refresh(self) -> None:
        """Make the current fake distributions visible to importlib.metadata and stevedore."""
        self._generation += 1
        cache_dir = self.root.parent / f"stevedore-cache-{self._generation}"
        cache_dir.mkdir(exist_ok=True)
        (cache_dir / ".disable").touch()
        cache = stevedore._cache.Cache(str(cache_dir))
        for attribute in ("get_group_all", "get_group_named", "get_single"):
            self._monkeypatch.setattr(stevedore._cache, attribute, getattr(cache, attribute))
        ExtensionManager.ENTRY_POINT_CACHE.clear()
        registry.clear_cache()

    def close(self) -> None:
        for name in self._modules:
            sys.modules.pop(name, None)
        registry.clear_cache()


@pytest.fixture
def plugin_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginSandbox]:
    """A :class:`PluginSandbox` for registering fake backends and schemes in one test.

    Tests use it through this fixture (``from conftest import ...`` is ambiguous once several
    test folders have a conftest.py); annotate with ``PluginSandbox`` under ``TYPE_CHECKING``.
    """
    sandbox = PluginSandbox(tmp_path / "site", monkeypatch)
    yield sandbox
    sandbox.close()


@pytest.fixture
def plugin_sandbox_class() -> type[PluginSandbox]:
    """The :class:`PluginSandbox` class itself, for tests that manage its lifetime."""
    return PluginSandbox


FAKE_BACKENDS = {
    # A working backend: the NumPy backend under another name.
    "henn_fake_ok": """
from hennframework_backends.numpy_backend import NumpyBackend

class FakeBackend(NumpyBackend):
    name = "fake-ok"

    def describe(self):
        return "fake backend on the CPU"
""",
    # Declared, but a package it needs is missing.
    "henn_fake_nodep": """
import henn_missing_dependency_xyz  # noqa: F401

class FakeBackend:
    name = "fake-nodep"
""",
    # Installed, imports fine, but cannot run here (like CuPy without a GPU).
    "henn_fake_nogpu": """
from hennframework_backends.numpy_backend import NumpyBackend

class FakeBackend(NumpyBackend):
    name = "fake-nogpu"

    def is_available(self):
        return False, "no GPU"
""",
    # is_available() itself raises (as cupy.cuda.runtime.getDeviceCount() does with no driver).
    "henn_fake_raises": """
from hennframework_backends.numpy_backend import NumpyBackend

class FakeBackend(NumpyBackend):
    name = "fake-raises"

    def is_available(self):
        raise RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")
""",
    # Loads and says it is available, but is not an ArrayBackend.
    "henn_fake_incomplete": """
class FakeBackend:
    name = "fake-incomplete"

    def is_available(self):
        return True, "ok"
""",
}

FAKE_SCHEME = """
from hennframework.scheme import Capability, HEScheme, ParameterSet

class FakeScheme(HEScheme):
    name = "fake-scheme"
    capabilities = frozenset({Capability.ADD})
    default_parameter_set = "toy"

    @classmethod
    def parameter_sets(cls):
        return {
            "toy": ParameterSet("toy", "fake-scheme", "a toy set", None, "INSECURE: a test fake"),
            "strong": ParameterSet("strong", "fake-scheme", "a labelled set", 128, "claims 128 bits"),
        }

    def keygen(self, *, seed=None, **options):
        raise NotImplementedError

    def encrypt_tensor(self, values, key):
        raise NotImplementedError

    def decrypt_tensor(self, tensor, secret_key):
        raise NotImplementedError


class NotAScheme:
    pass
"""


@pytest.fixture
def fake_plugins(plugin_sandbox: PluginSandbox) -> PluginSandbox:
    """The sandbox with a standard set of fake plugins (see ``FAKE_BACKENDS`` in conftest.py).

    Backends: fake-ok (works), fake-nodep (imports a missing package), fake-nogpu (unusable:
    "no GPU"), fake-raises (is_available raises), fake-incomplete (not an ArrayBackend),
    fake-nomodule (its module does not exist). Schemes: fake-scheme, not-a-scheme.
    """
    for module, source in FAKE_BACKENDS.items():
        plugin_sandbox.module(module, source)
        name = module.removeprefix("henn_").replace("_", "-")
        plugin_sandbox.entry_point(registry.BACKEND_GROUP, name, f"{module}:FakeBackend")
    plugin_sandbox.entry_point(registry.BACKEND_GROUP, "fake-nomodule", "henn_fake_absent:Backend")
    plugin_sandbox.module("henn_fake_scheme", FAKE_SCHEME)
    plugin_sandbox.entry_point(registry.SCHEME_GROUP, "fake-scheme", "henn_fake_scheme:FakeScheme")
    plugin_sandbox.entry_point(registry.SCHEME_GROUP, "not-a-scheme", "henn_fake_scheme:NotAScheme")
    return plugin_sandbox
