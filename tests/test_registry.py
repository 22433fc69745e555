"""The plugin registry: listing, loading by name, and the three actionable errors.

Fake plugins are registered through a temporary dist-info directory on sys.path (the
``plugin_sandbox`` / ``fake_plugins`` fixtures in conftest.py), never by editing the installed
package.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hennframework_backends.numpy_backend import NumpyBackend

from hennframework import config, registry
from hennframework.backend import ArrayBackend
from hennframework.exceptions import (
    BackendUnavailableError,
    HennError,
    PluginDependencyError,
    SerializationError,
    UnknownPluginError,
)
from hennframework.io.codecs import codec_for
from hennframework.scheme import HEScheme
from hennframework.schemes.integer_vector import IntegerVectorScheme

if TYPE_CHECKING:
    from conftest import PluginSandbox

CUPY_IMPORTABLE = importlib.util.find_spec("cupy") is not None
CUPY_BACKEND_WRITTEN = importlib.util.find_spec("hennframework_backends.cupy_backend") is not None


@pytest.fixture(autouse=True)
def _no_configured_choice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Resolution from the defaults only: no env, no config files, no process-wide choice."""
    for variable in config.ENV_VARS.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "x"\n', encoding="utf-8")
    monkeypatch.chdir(project)
    config.set_backend(None)
    config.set_scheme(None)


def _by_name(kind: registry.Kind) -> dict[str, registry.PluginStatus]:
    return {status.name: status for status in registry.list_plugins(kind)}


# -- the real, installed plugins ---------------------------------------------------------------


def test_builtin_plugins_are_listed_and_usable() -> None:
    backends = _by_name("backend")
    schemes = _by_name("scheme")
    assert {"numpy", "cupy"} <= set(backends)
    numpy_status = backends["numpy"]
    assert (numpy_status.loads, numpy_status.usable) == (True, True)
    assert numpy_status.distribution == "hennframework"
    assert numpy_status.target == "hennframework_backends.numpy_backend:NumpyBackend"
    assert "NumPy" in numpy_status.detail
    vector = schemes["integer-vector"]
    assert (vector.loads, vector.usable) == (True, True)
    assert vector.plugin is IntegerVectorScheme
    assert "INSECURE" in vector.detail
    assert set(vector.as_dict()) == {
        "kind",
        "name",
        "target",
        "distribution",
        "loads",
        "usable",
        "detail",
    }


def test_default_backend_and_scheme() -> None:
    backend = registry.get_backend()
    assert isinstance(backend, NumpyBackend)
    assert isinstance(backend, ArrayBackend)
    assert registry.get_backend() is backend  # one instance per name
    assert registry.get_scheme_class() is IntegerVectorScheme


def test_backend_instance_is_passed_through() -> None:
    mine = NumpyBackend()
    assert registry.get_backend(mine) is mine


@pytest.mark.skipif(CUPY_IMPORTABLE, reason="CuPy is installed here; this checks its absence")
def test_cupy_without_cupy_is_a_dependency_error() -> None:
    with pytest.raises(PluginDependencyError) as caught:
        registry.get_backend("cupy")
    assert isinstance(caught.value, ImportError)
    assert isinstance(caught.value.__cause__, ImportError)
    if CUPY_BACKEND_WRITTEN:
        assert "hennframework[cupy]" in str(caught.value)
    else:  # backends/cupy_backend.py not in this tree: the entry point's own module is missing
        assert "does not exist" in str(caught.value)
    status = _by_name("backend")["cupy"]
    assert (status.loads, status.usable) == (False, False)
    assert status.detail == str(caught.value)


# -- the three errors, with fake plugins --------------------------------------------------------


def test_unknown_name_lists_installed(fake_plugins: PluginSandbox) -> None:
    with pytest.raises(UnknownPluginError) as caught:
        registry.get_backend("nope")
    message = str(caught.value)
    assert "'nope'" in message
    assert "fake-ok" in message and "numpy" in message
    assert "henn backends" in message
    with pytest.raises(UnknownPluginError, match=r"installed schemes: .*fake-scheme"):
        registry.get_scheme_class("nope")


def test_missing_dependency_is_chained_and_says_what_to_install(
    fake_plugins: PluginSandbox,
) -> None:
    with pytest.raises(PluginDependencyError) as caught:
        registry.get_backend("fake-nodep")
    error = caught.value
    assert isinstance(error.__cause__, ModuleNotFoundError)
    assert error.__cause__.name == "henn_missing_dependency_xyz"
    assert "henn_missing_dependency_xyz" in str(error)
    assert "pip install --force-reinstall henn-test-plugins" in str(error)


def test_missing_module_of_the_entry_point_says_reinstall(fake_plugins: PluginSandbox) -> None:
    with pytest.raises(PluginDependencyError, match=r"does not exist.*Reinstall"):
        registry.get_backend("fake-nomodule")


@pytest.mark.parametrize(
    ("missing", "extra"), [("cupy", "cupy"), ("cupy_backends.cuda", "cupy"), ("tenseal", "ckks")]
)
def test_install_hint_names_the_extra(missing: str, extra: str) -> None:
    hint = registry.install_hint(ModuleNotFoundError(f"No module named {missing!r}", name=missing))
    assert hint == f'pip install "hennframework[{extra}]"'


def test_install_hint_for_an_unknown_module() -> None:
    hint = registry.install_hint(ModuleNotFoundError("No module named 'zzz'", name="zzz"))
    assert "'zzz'" in hint


@pytest.mark.parametrize(("missing", "extra"), [("cupy", "cupy"), ("tenseal", "ckks")])
def test_dependency_error_names_the_extra(
    plugin_sandbox: PluginSandbox, missing: str, extra: str
) -> None:
    # Simulate the library being absent even where it is installed.
    plugin_sandbox.module(
        "henn_fake_needs_lib",
        f'raise ModuleNotFoundError("No module named {missing}", name="{missing}")\n',
    )
    plugin_sandbox.entry_point(registry.BACKEND_GROUP, "fake-lib", "henn_fake_needs_lib:Backend")
    with pytest.raises(PluginDependencyError) as caught:
        registry.get_backend("fake-lib")
    assert f'pip install "hennframework[{extra}]"' in str(caught.value)
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)


def test_unusable_backend_says_why_and_what_to_do(fake_plugins: PluginSandbox) -> None:
    with pytest.raises(BackendUnavailableError) as caught:
        registry.get_backend("fake-nogpu")
    message = str(caught.value)
    assert "no GPU" in message
    assert "--backend numpy" in message and "HENN_BACKEND=numpy" in message
    # The three errors are distinct classes, all HennErrors.
    assert not isinstance(caught.value, PluginDependencyError | UnknownPluginError)
    assert isinstance(caught.value, HennError)


def test_is_available_raising_is_unusable_not_a_crash(fake_plugins: PluginSandbox) -> None:
    with pytest.raises(BackendUnavailableError, match="cudaErrorInsufficientDriver") as caught:
        registry.get_backend("fake-raises")
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_backend_not_implementing_the_protocol(fake_plugins: PluginSandbox) -> None:
    with pytest.raises(BackendUnavailableError, match=r"does not implement.*matmul_int_wrap"):
        registry.get_backend("fake-incomplete")


def test_configured_fake_plugins_are_used(
    fake_plugins: PluginSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HENN_BACKEND", "fake-ok")
    monkeypatch.setenv("HENN_SCHEME", "fake-scheme")
    backend = registry.get_backend()
    assert backend.name == "fake-ok"
    scheme_class = registry.get_scheme_class()
    assert issubclass(scheme_class, HEScheme)
    assert scheme_class.name == "fake-scheme"
    assert registry.get_backend("numpy").name == "numpy"  # explicit beats the environment


def test_unusable_backend_is_not_cached(fake_plugins: PluginSandbox) -> None:
    for _ in range(2):
        with pytest.raises(BackendUnavailableError):
            registry.get_backend("fake-nogpu")
    first = registry.get_backend("fake-ok")
    assert registry.get_backend("fake-ok") is first
    registry.clear_cache()
    assert registry.get_backend("fake-ok") is not first


# -- the listing ----------------------------------------------------------------------------------


def test_listing_reports_every_state(fake_plugins: PluginSandbox) -> None:
    backends = _by_name("backend")
    expected = {
        "fake-ok": (True, True, "fake backend on the CPU"),
        "fake-nodep": (False, False, "henn_missing_dependency_xyz"),
        "fake-nogpu": (True, False, "no GPU"),
        "fake-raises": (True, False, "cudaErrorInsufficientDriver"),
        "fake-incomplete": (True, False, "does not implement"),
        "fake-nomodule": (False, False, "does not exist"),
        "numpy": (True, True, "NumPy"),
    }
    for name, (loads, usable, fragment) in expected.items():
        status = backends[name]
        assert (status.loads, status.usable) == (loads, usable), name
        assert fragment in status.detail, name
        assert status.kind == "backend"
    assert backends["fake-ok"].distribution == "henn-test-plugins"
    assert list(backends) == sorted(backends)
    schemes = _by_name("scheme")
    assert (schemes["fake-scheme"].loads, schemes["fake-scheme"].usable) == (True, True)
    assert "128-bit classical" in schemes["fake-scheme"].detail
    assert (schemes["not-a-scheme"].loads, schemes["not-a-scheme"].usable) == (True, False)
    assert "HEScheme" in schemes["not-a-scheme"].detail


def test_listing_survives_a_module_that_raises_on_import(plugin_sandbox: PluginSandbox) -> None:
    sandbox = plugin_sandbox
    sandbox.module("henn_fake_explodes", "raise RuntimeError('boom at import')\n")
    sandbox.entry_point(registry.BACKEND_GROUP, "fake-explodes", "henn_fake_explodes:Backend")
    status = _by_name("backend")["fake-explodes"]
    assert (status.loads, status.usable) == (False, False)
    assert "RuntimeError: boom at import" in status.detail
    with pytest.raises(PluginDependencyError, match=r"failed to load.*boom") as caught:
        registry.get_backend("fake-explodes")
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_same_name_from_two_packages_is_reported(plugin_sandbox: PluginSandbox) -> None:
    sandbox = plugin_sandbox
    sandbox.module(
        "henn_fake_twin",
        "from hennframework_backends.numpy_backend import NumpyBackend as A, NumpyBackend as B\n",
    )
    sandbox.entry_point(registry.BACKEND_GROUP, "twin", "henn_fake_twin:A", "henn-twin-a")
    sandbox.entry_point(registry.BACKEND_GROUP, "twin", "henn_fake_twin:B", "henn-twin-b")
    with pytest.raises(UnknownPluginError, match="More than one"):
        registry.get_backend("twin")


def test_sandbox_leaves_no_trace(tmp_path: Path, plugin_sandbox_class: type[PluginSandbox]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        sandbox = plugin_sandbox_class(tmp_path / "site", patch)
        sandbox.module(
            "henn_fake_gone",
            "from hennframework_backends.numpy_backend import NumpyBackend as Backend\n",
        )
        sandbox.entry_point(registry.BACKEND_GROUP, "fake-gone", "henn_fake_gone:Backend")
        assert registry.get_backend("fake-gone").name == "numpy"
        assert "fake-gone" in _by_name("backend")
        sandbox.close()
    assert "fake-gone" not in _by_name("backend")
    with pytest.raises(UnknownPluginError):
        registry.get_backend("fake-gone")


# -- codecs: registered by the scheme's package, found through the scheme's entry point ---------


def test_the_file_layer_finds_a_codec_through_the_scheme_entry_point() -> None:
    """A fresh process that has not imported the scheme still finds its codec: the file layer
    loads the scheme's entry point, and importing the scheme's package registers the codec."""
    code = (
        "import sys\n"
        "from hennframework.io.codecs import codec_for\n"
        "assert 'hennframework.schemes.integer_vector' not in sys.modules, 'imported too early'\n"
        "print(type(codec_for('integer-vector')).__module__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hennframework.schemes.integer_vector.codec"


def test_a_scheme_that_registers_no_codec_is_named(fake_plugins: PluginSandbox) -> None:
    with pytest.raises(
        SerializationError, match=r"'fake-scheme' has no serialisation codec"
    ) as info:
        codec_for("fake-scheme")
    assert "hennframework.plugin.register_codec" in str(info.value)
