"""The ``henn`` CLI foundation: info, backends, schemes, global options, errors and exit codes."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import hennframework
from hennframework import cli, config, registry

if TYPE_CHECKING:
    from conftest import PluginSandbox

CUPY_IMPORTABLE = importlib.util.find_spec("cupy") is not None


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No env choice, empty XDG config, a project without [tool.hennframework]."""
    for variable in config.ENV_VARS.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "x"\n', encoding="utf-8")
    monkeypatch.chdir(project)
    config.set_backend(None)
    config.set_scheme(None)
    return project


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def assert_one_paragraph_error(err: str) -> None:
    assert err.startswith("henn: error: ")
    assert err.count("\n") == 1 and err.endswith("\n")
    assert "Traceback" not in err


# -- henn info -------------------------------------------------------------------------------------


def test_info_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "info")
    assert code == 0, err
    assert out.startswith("hennframework ")
    for fragment in ("numpy", "stevedore", "python", "cupy", "tenseal"):
        assert fragment in out
    assert "backend: numpy  (from built-in default)" in out
    assert "scheme:  integer-vector  (from built-in default)" in out
    assert "default parameter set: default: INSECURE (no security)" in out


def test_info_json(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "info")
    assert data["versions"]["hennframework"] == hennframework.__version__
    assert data["versions"]["numpy"] and data["versions"]["stevedore"]
    assert data["backend"] == {
        "name": "numpy",
        "source": "built-in default",
        "description": registry.get_backend("numpy").describe(),
    }
    params = data["scheme"]["default_parameter_set"]
    assert data["scheme"]["name"] == "integer-vector"
    assert params["name"] == "default"
    assert params["secure"] is False
    assert params["security"] == "INSECURE (no security)"
    assert "add" in data["scheme"]["capabilities"]


@pytest.mark.parametrize(
    "argv",
    [("--backend", "numpy", "info"), ("info", "--backend", "numpy")],
    ids=["before", "after"],
)
def test_backend_option_is_explicit_and_beats_env(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...]
) -> None:
    monkeypatch.setenv("HENN_BACKEND", "nope")
    data = run_json(capsys, *argv)
    assert data["backend"]["name"] == "numpy"
    assert data["backend"]["source"] == "command-line option --backend"


def test_info_reports_each_source(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, _isolated: Path
) -> None:
    monkeypatch.setenv("HENN_BACKEND", "numpy")
    (_isolated / "pyproject.toml").write_text(
        '[tool.hennframework]\nscheme = "integer-vector"\n', encoding="utf-8"
    )
    data = run_json(capsys, "info")
    assert data["backend"]["source"] == "environment variable HENN_BACKEND"
    assert data["scheme"]["source"].startswith("[tool.hennframework] in ")
    assert data["environment"] == {"HENN_BACKEND": "numpy"}
    data = run_json(capsys, "--scheme", "integer-vector", "info")
    assert data["scheme"]["source"] == "command-line option --scheme"


def test_unknown_backend(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HENN_BACKEND", "nope")
    code, out, err = run(capsys, "info")
    assert code == 2
    assert_one_paragraph_error(err)
    assert "No backend named 'nope'" in err and "numpy" in err
    assert out == ""


def test_debug_shows_the_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HENN_BACKEND", "nope")
    code, _, err = run(capsys, "--debug", "info")
    assert code == 2
    assert "Traceback (most recent call last)" in err
    assert "UnknownPluginError" in err
    assert err.rstrip().splitlines()[-1].startswith("henn: error: No backend named 'nope'")


@pytest.mark.skipif(CUPY_IMPORTABLE, reason="CuPy is installed here; this checks its absence")
def test_cupy_not_installed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HENN_BACKEND", "cupy")
    code, _, err = run(capsys, "info")
    assert code == 1
    assert_one_paragraph_error(err)
    assert "'cupy'" in err
    if importlib.util.find_spec("hennframework_backends.cupy_backend") is not None:
        assert 'pip install "hennframework[cupy]"' in err


@pytest.mark.parametrize(
    ("backend", "code", "fragment"),
    [
        ("fake-nodep", 1, "henn_missing_dependency_xyz"),
        ("fake-nogpu", 1, "cannot run here: no GPU"),
        ("fake-raises", 1, "cudaErrorInsufficientDriver"),
        ("fake-nope", 2, "installed backends: cupy, fake-incomplete"),
    ],
)
def test_the_three_errors_through_the_cli(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fake_plugins: PluginSandbox,
    backend: str,
    code: int,
    fragment: str,
) -> None:
    monkeypatch.setenv("HENN_BACKEND", backend)
    got, out, err = run(capsys, "info")
    assert got == code
    assert_one_paragraph_error(err)
    assert fragment in err
    assert out == ""


def test_usable_fake_backend_in_info(
    capsys: pytest.CaptureFixture[str], fake_plugins: PluginSandbox
) -> None:
    data = run_json(capsys, "--backend", "fake-ok", "--scheme", "fake-scheme", "info")
    assert data["backend"]["description"] == "fake backend on the CPU"
    params = data["scheme"]["default_parameter_set"]
    assert (params["name"], params["security"]) == ("toy", "INSECURE (no security)")


def test_malformed_config_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], _isolated: Path
) -> None:
    (_isolated / "pyproject.toml").write_text("[tool.hennframework\n", encoding="utf-8")
    code, _, err = run(capsys, "info")
    assert code == 2
    assert_one_paragraph_error(err)
    assert "not valid TOML" in err


# -- henn backends / henn schemes -----------------------------------------------------------------


def test_backends_table(capsys: pytest.CaptureFixture[str], fake_plugins: PluginSandbox) -> None:
    code, out, err = run(capsys, "backends")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["BACKEND", "LOADS", "USABLE", "PACKAGE", "DETAIL"]
    rows = {line.split()[0]: line.split() for line in lines[1:] if line and line[0] not in "* "}
    assert rows["numpy*"][1:4] == ["yes", "yes", "hennframework"]
    assert rows["fake-ok"][1:3] == ["yes", "yes"]
    assert rows["fake-nogpu"][1:3] == ["yes", "no"]
    assert rows["fake-nodep"][1:3] == ["no", "no"]
    assert "no GPU" in out and "henn_missing_dependency_xyz" in out
    assert "* selected backend: numpy (from built-in default)" in out


def test_backends_json(capsys: pytest.CaptureFixture[str], fake_plugins: PluginSandbox) -> None:
    data = run_json(capsys, "--backend", "fake-nogpu", "backends")
    assert data["selected"] == {"name": "fake-nogpu", "source": "command-line option --backend"}
    by_name = {item["name"]: item for item in data["backends"]}
    assert by_name["fake-nogpu"]["usable"] is False
    assert by_name["numpy"]["loads"] is True
    assert by_name["fake-nodep"]["distribution"] == "henn-test-plugins"


def test_backends_listing_survives_a_broken_config(
    capsys: pytest.CaptureFixture[str], _isolated: Path
) -> None:
    (_isolated / "pyproject.toml").write_text("not toml at all [", encoding="utf-8")
    code, out, _ = run(capsys, "backends")
    assert code == 0
    assert "numpy" in out and "cannot tell which backend is selected" in out


def test_schemes_table_shows_parameter_sets_and_security(
    capsys: pytest.CaptureFixture[str], fake_plugins: PluginSandbox
) -> None:
    code, out, err = run(capsys, "schemes")
    assert code == 0, err
    assert "integer-vector*" in out
    assert re.search(r"^default\*\s+INSECURE \(no security\)", out, re.MULTILINE)
    assert re.search(r"^strong\s+128-bit classical", out, re.MULTILINE)
    assert "not-a-scheme" in out and "HEScheme" in out


def test_schemes_json(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "schemes")
    vector = next(item for item in data["schemes"] if item["name"] == "integer-vector")
    sets = {item["name"]: item for item in vector["parameter_sets"]}
    assert set(sets) >= {"default", "seed", "vhe"}
    assert all(item["secure"] is False for item in sets.values())
    assert sets["default"]["default"] is True
    assert sets["seed"]["security"] == "INSECURE (no security)"
    assert "mul-plain" in vector["capabilities"]


# -- parser, exit codes, command modules ----------------------------------------------------------


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys)
    assert code == 2
    assert "usage: henn" in err and "info" in err


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("hennframework ")
    code, out, _ = run(capsys, "info", "--help")
    assert code == 0 and "--json" in out and "--backend" in out


def test_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "info", "--no-such-option")
    assert code == 2
    assert "unrecognized arguments" in err


COMMANDS = """
from hennframework import config
from hennframework.exceptions import InputError


def register(subparsers):
    for name, func in [("raise-henn", raise_henn), ("raise-import", raise_import),
                       ("raise-bug", raise_bug), ("where", where)]:
        subparsers.add_parser(name).set_defaults(func=func)


def raise_henn(args):
    raise InputError("the input is wrong; give a better one")


def raise_import(args):
    import henn_absent_library_abc  # noqa: F401


def raise_bug(args):
    return {}["missing"]


def where(args):
    print(config.resolve("backend").value, config.resolve("backend").source)
    return 3
"""


@pytest.fixture
def test_commands(plugin_sandbox: PluginSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    plugin_sandbox.module("henn_fake_commands", COMMANDS)
    plugin_sandbox.module("henn_fake_broken_commands", "raise RuntimeError('broken module')\n")
    monkeypatch.setattr(
        cli,
        "COMMAND_MODULES",
        [
            *cli.COMMAND_MODULES,
            "henn_fake_commands",
            "henn_fake_broken_commands",
            "henn_fake_not_written_yet",
        ],
    )


@pytest.mark.usefixtures("test_commands")
@pytest.mark.parametrize(
    ("command", "code", "fragment"),
    [
        ("raise-henn", 1, "henn: error: the input is wrong; give a better one"),
        ("raise-import", 1, "henn_absent_library_abc"),
        ("raise-bug", 1, "internal error: KeyError"),
    ],
)
def test_errors_from_commands(
    capsys: pytest.CaptureFixture[str], command: str, code: int, fragment: str
) -> None:
    got, _, err = run(capsys, command)
    assert got == code
    warning, error = err.splitlines(keepends=True)
    assert warning.startswith("henn: warning: the commands in henn_fake_broken_commands")
    assert "broken module" in warning
    assert_one_paragraph_error(error)
    assert fragment in error
    got, _, err = run(capsys, "--debug", command)
    assert got == code
    assert "Traceback" in err


@pytest.mark.usefixtures("test_commands")
def test_global_options_reach_commands_written_elsewhere(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "where", "--backend", "cupy")
    assert code == 3
    assert out.split() == ["cupy", "backend_context()"]
    code, out, _ = run(capsys, "where")
    assert out.split() == ["numpy", "built-in", "default"]


def test_missing_command_modules_are_skipped_silently() -> None:
    parser, problems = cli.build_parser(["hennframework.cli.info", "hennframework.cli.not_there"])
    assert problems == []
    assert parser.parse_args(["info"]).func.__module__ == "hennframework.cli.info"


def test_module_without_register_is_reported() -> None:
    _, problems = cli.build_parser(["hennframework.cli.common"])
    assert [problem.module for problem in problems] == ["hennframework.cli.common"]


def test_subcommand_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "info", "--json=yes")
    assert code == 2 and out == ""
    assert err == (
        "henn info: error: argument --json: ignored explicit argument 'yes' "
        "(`henn info --help` lists the options)\n"
    )
