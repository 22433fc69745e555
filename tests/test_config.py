"""Backend and scheme selection: the precedence order, the sources reported, malformed files.

Highest first: explicit argument > backend_context()/set_backend() > HENN_BACKEND/HENN_SCHEME >
[tool.hennframework] in the nearest pyproject.toml > the XDG user config file > the default.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hennframework import config
from hennframework.exceptions import ConfigError

SETTINGS: tuple[config.Setting, ...] = ("backend", "scheme")
LEVELS = ("explicit", "context", "global", "environment", "pyproject", "user", "default")


@dataclass
class Places:
    """Where one test's project and user config live."""

    project: Path
    xdg: Path

    @property
    def pyproject(self) -> Path:
        return self.project / "pyproject.toml"

    @property
    def user_file(self) -> Path:
        return self.xdg / "hennframework" / "config.toml"

    def write_pyproject(self, body: str = "") -> None:
        self.pyproject.write_text('[project]\nname = "demo"\n' + body, encoding="utf-8")

    def write_user(self, body: str) -> None:
        self.user_file.parent.mkdir(parents=True, exist_ok=True)
        self.user_file.write_text(body, encoding="utf-8")


def _isolate(patch: pytest.MonkeyPatch, root: Path) -> Places:
    """No env, no process-wide choice, a project dir with its own pyproject.toml, an empty XDG."""
    for variable in config.ENV_VARS.values():
        patch.delenv(variable, raising=False)
    places = Places(project=root / "project", xdg=root / "xdg")
    places.project.mkdir()
    places.write_pyproject()
    patch.setenv("XDG_CONFIG_HOME", str(places.xdg))
    patch.chdir(places.project)
    config.set_backend(None)
    config.set_scheme(None)
    return places


@pytest.fixture
def places(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Places]:
    yield _isolate(monkeypatch, tmp_path)
    config.set_backend(None)
    config.set_scheme(None)


def _set_global(setting: str, value: str | None) -> None:
    (config.set_backend if setting == "backend" else config.set_scheme)(value)


def _context(setting: str, value: str) -> ExitStack:
    stack = ExitStack()
    manager = config.backend_context if setting == "backend" else config.scheme_context
    stack.enter_context(manager(value))
    return stack


def test_default(places: Places) -> None:
    assert config.resolve("backend") == config.Choice("backend", "numpy", "built-in default")
    assert config.resolve("scheme") == config.Choice("scheme", "integer-vector", "built-in default")


@pytest.mark.parametrize("setting", SETTINGS)
def test_each_level_beats_the_ones_below(
    places: Places, monkeypatch: pytest.MonkeyPatch, setting: config.Setting
) -> None:
    """Set every level at once, then remove them from the top: each one wins in turn."""
    env_name = config.ENV_VARS[setting]
    places.write_user(f'{setting} = "from-user"\n')
    places.write_pyproject(f'[tool.hennframework]\n{setting} = "from-pyproject"\n')
    monkeypatch.setenv(env_name, "from-env")
    _set_global(setting, "from-global")
    with _context(setting, "from-context"):
        assert config.resolve(setting, "from-explicit") == config.Choice(
            setting, "from-explicit", "explicit argument"
        )
        assert config.resolve(setting) == config.Choice(
            setting, "from-context", f"{setting}_context()"
        )
    assert config.resolve(setting) == config.Choice(setting, "from-global", f"set_{setting}()")
    _set_global(setting, None)
    assert config.resolve(setting) == config.Choice(
        setting, "from-env", f"environment variable {env_name}"
    )
    monkeypatch.delenv(env_name)
    assert config.resolve(setting) == config.Choice(
        setting, "from-pyproject", f"[tool.hennframework] in {places.pyproject.resolve()}"
    )
    places.write_pyproject()  # still a pyproject.toml, but without [tool.hennframework]
    assert config.resolve(setting) == config.Choice(
        setting, "from-user", f"user config file {places.user_file}"
    )
    places.user_file.unlink()
    assert config.resolve(setting) == config.Choice(
        setting, config.DEFAULTS[setting], "built-in default"
    )


@given(present=st.frozensets(st.sampled_from(LEVELS[:-1])), setting=st.sampled_from(SETTINGS))
def test_highest_present_level_wins(present: frozenset[str], setting: config.Setting) -> None:
    """Any combination of levels: the highest one that is set decides, and says so."""
    with (
        tempfile.TemporaryDirectory() as folder,
        pytest.MonkeyPatch.context() as patch,
        ExitStack() as stack,
    ):
        places = _isolate(patch, Path(folder))
        try:
            if "user" in present:
                places.write_user(f'{setting} = "v-user"\n')
            if "pyproject" in present:
                places.write_pyproject(f'[tool.hennframework]\n{setting} = "v-pyproject"\n')
            if "environment" in present:
                patch.setenv(config.ENV_VARS[setting], "v-environment")
            if "global" in present:
                _set_global(setting, "v-global")
            if "context" in present:
                stack.enter_context(_context(setting, "v-context"))
            explicit = "v-explicit" if "explicit" in present else None
            winner = next((level for level in LEVELS if level in present), "default")
            choice = config.resolve(setting, explicit)
            expected = config.DEFAULTS[setting] if winner == "default" else f"v-{winner}"
            assert choice.value == expected
            assert choice.setting == setting
            source_words = {
                "explicit": "explicit",
                "context": "_context()",
                "global": "set_",
                "environment": "environment variable",
                "pyproject": "[tool.hennframework]",
                "user": "user config file",
                "default": "built-in default",
            }
            assert source_words[winner] in choice.source
        finally:
            config.set_backend(None)
            config.set_scheme(None)


def test_backend_and_scheme_are_independent(
    places: Places, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HENN_SCHEME", "ckks")
    places.write_pyproject('[tool.hennframework]\nbackend = "cupy"\n')
    assert config.resolve("backend").value == "cupy"
    assert config.resolve("scheme").value == "ckks"
    with config.backend_context("numpy"):
        assert config.resolve("scheme").source == "environment variable HENN_SCHEME"


def test_explicit_source_label(places: Places) -> None:
    choice = config.resolve("backend", "numpy", explicit_source="command-line option --backend")
    assert choice.source == "command-line option --backend"


def test_empty_values_do_not_count(places: Places, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HENN_BACKEND", "   ")
    config.set_backend("")
    assert config.resolve("backend", "").source == "built-in default"


def test_context_is_restored_after_an_error(places: Places) -> None:
    with (
        pytest.raises(RuntimeError),
        config.backend_context("outer"),
        config.backend_context("inner"),
    ):
        assert config.resolve("backend").value == "inner"
        raise RuntimeError("leave both contexts")
    assert config.resolve("backend").source == "built-in default"


def test_context_is_local_to_its_thread(places: Places) -> None:
    seen: list[str] = []
    with config.backend_context("cupy"):
        worker = threading.Thread(target=lambda: seen.append(config.resolve("backend").value))
        worker.start()
        worker.join()
        assert config.resolve("backend").value == "cupy"
    assert seen == ["numpy"]


def test_pyproject_found_from_a_subdirectory(
    places: Places, monkeypatch: pytest.MonkeyPatch
) -> None:
    places.write_pyproject('[tool.hennframework]\nbackend = "cupy"\n')
    deep = places.project / "src" / "pkg"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    choice = config.resolve("backend")
    assert choice.value == "cupy"
    assert str(places.pyproject.resolve()) in choice.source


def test_only_the_nearest_pyproject_counts(places: Places, monkeypatch: pytest.MonkeyPatch) -> None:
    places.write_pyproject('[tool.hennframework]\nbackend = "outer"\n')
    inner = places.project / "inner"
    inner.mkdir()
    (inner / "pyproject.toml").write_text('[project]\nname = "inner"\n', encoding="utf-8")
    monkeypatch.chdir(inner)
    assert config.resolve("backend").source == "built-in default"


def test_an_edited_pyproject_is_reread(places: Places) -> None:
    places.write_pyproject('[tool.hennframework]\nbackend = "first"\n')
    assert config.resolve("backend").value == "first"
    places.write_pyproject('[tool.hennframework]\nbackend = "second-value"\n')
    assert config.resolve("backend").value == "second-value"


@pytest.mark.parametrize("where", ["pyproject", "user"])
def test_malformed_toml_is_a_config_error(places: Places, where: str) -> None:
    if where == "pyproject":
        places.pyproject.write_text("[tool.hennframework\nbackend = ", encoding="utf-8")
        path = places.pyproject.resolve()
    else:
        places.write_user('backend = "unterminated\n')
        path = places.user_file
    with pytest.raises(ConfigError) as caught:
        config.resolve("backend")
    assert str(path) in str(caught.value)
    assert "not valid TOML" in str(caught.value)
    # A higher level still wins without reading the files.
    assert config.resolve("backend", "numpy").value == "numpy"


@pytest.mark.parametrize(
    "body",
    [
        "[tool.hennframework]\nbackend = 3\n",
        '[tool.hennframework]\nbackend = ""\n',
        'tool = { hennframework = "numpy" }\n',
    ],
)
def test_wrong_types_are_config_errors(places: Places, body: str) -> None:
    places.pyproject.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"pyproject\.toml"):
        config.resolve("backend")


def test_unknown_setting(places: Places) -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        config.resolve("colour")  # type: ignore[arg-type]


def test_user_config_path_defaults_to_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config.user_config_path() == tmp_path / ".config" / "hennframework" / "config.toml"


def test_config_files_lists_what_resolve_reads(places: Places) -> None:
    files = config.config_files()
    assert [item.path for item in files] == [places.pyproject.resolve(), places.user_file]
    assert [item.exists for item in files] == [True, False]
