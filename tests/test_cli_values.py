"""``henn`` option values: refused at parse time in one line, random starting weights, no overwrites.

Every bad value of every command stops with exit status 2 and one line on stderr that names the
option as typed on the command line and the accepted range; nothing is read or written first.
``encrypt-model`` draws its initial weights from the OS CSPRNG unless ``--seed`` is given. No
command replaces an existing output file without ``--force``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hennframework import cli, config
from hennframework.cli import common
from hennframework.data.text import Vocabulary
from hennframework.exceptions import InputError
from hennframework.nn.initialisation import CSPRNGWeights, weight_random
from hennframework.nn.layers import Dense
from hennframework.nn.model import Sequential

#: Python names that must never reach a user (the CLI spells them --batch-size, --lr, ...).
PYTHON_NAMES = re.compile(
    r"batch_size|learning_rate|max_steps|log_every|refresh_timeout|idle_timeout|max_requests|"
    r"init_scale|min_count|polarity_cutoff|test_size|target_columns|max_dim|from_plain|"
    r"overwrite=|history_out|ArgumentTypeError|Traceback"
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No environment choice or user config; the working directory is an empty folder."""
    for variable in config.ENV_VARS.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    config.set_backend(None)
    config.set_scheme(None)
    return work


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def usage_errors(err: str) -> list[str]:
    """The error lines of stderr (the insecure-parameters warning may come first)."""
    return [line for line in err.splitlines() if not line.startswith("henn: warning:")]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- bad values at parse time ----------------------------------------------------------------------


@pytest.fixture
def files(_isolated: Path) -> dict[str, str]:
    """Placeholders: parsing only checks that inputs exist, so their content does not matter."""
    for name in ("model.henn", "public.henn", "secret.henn", "other.henn", "switch.henn"):
        (_isolated / name).write_bytes(b"not read at parse time")
    (_isolated / "folder").mkdir()
    (_isolated / "vocab.json").write_text("[]", encoding="utf-8")
    return {"file": "model.henn", "folder": "folder"}


BASE: dict[str, list[str]] = {
    command: line.split()
    for command, line in {
        "keygen": "keygen --out keys",
        "encrypt-model": "encrypt-model --public public.henn --arch xor --out m",
        "train": "train --model model.henn --public public.henn --data xor --out t.henn",
        "predict": "predict --model model.henn --data xor",
        "decrypt": "decrypt --secret secret.henn --model model.henn",
        "make-switch-key": "make-switch-key --from secret.henn --to other.henn --out s.henn",
        "switch-key": "switch-key --model model.henn --switch-key switch.henn --out b.henn",
        "refresh": "refresh --secret secret.henn --model model.henn --out r.henn",
        "serve-refresh": "serve-refresh --exchange exchange --secret secret.henn",
        "demo xor": "demo xor",
        "demo sentiment": "demo sentiment --data reviews",
    }.items()
}

INTEGER_GE_1 = "an integer >= 1"
INTEGER_GE_0 = "an integer >= 0"
RATE = "a number > 0 and <= 10"
SECONDS = "a number of seconds > 0 and <= 2592000"
EXISTING = "an existing file"
OUTPUT = "a file name in an existing, writable folder"
FOLDER = "a folder, or a path where one can be created"

#: (command, option, bad value, the accepted range as the message states it)
BAD_VALUES: list[tuple[str, str, str, str]] = [
    # train
    ("train", "--max-steps", "-1", INTEGER_GE_1),
    ("train", "--max-steps", "0", INTEGER_GE_1),
    ("train", "--batch-size", "0", INTEGER_GE_1),
    ("train", "--batch-size", "-4", INTEGER_GE_1),
    ("train", "--batch-size", "2.5", INTEGER_GE_1),
    ("train", "--batch-size", "many", INTEGER_GE_1),
    ("train", "--epochs", "0", INTEGER_GE_1),
    ("train", "--lr", "-1", RATE),
    ("train", "--lr", "0", RATE),
    ("train", "--lr", "1e9", RATE),
    ("train", "--lr", "10.000001", RATE),
    ("train", "--lr", "nan", RATE),
    ("train", "--lr", "inf", RATE),
    ("train", "--learning-rate", "-0.5", RATE),
    ("train", "--log-every", "0", INTEGER_GE_1),
    ("train", "--refresh-timeout", "0", SECONDS),
    ("train", "--refresh-timeout", "inf", SECONDS),
    ("train", "--refresh-timeout", "1e12", SECONDS),
    ("train", "--exchange", "model.henn", FOLDER),
    ("train", "--exchange", "model.henn/inside", FOLDER),
    ("train", "--skip", "-1", INTEGER_GE_0),
    ("train", "--limit", "0", INTEGER_GE_1),
    ("train", "--target-columns", "0", INTEGER_GE_1),
    ("train", "--model", "missing.henn", EXISTING),
    ("train", "--model", "folder", EXISTING),
    ("train", "--public", "missing.henn", EXISTING),
    ("train", "--out", "no-such-folder/t.henn", OUTPUT),
    ("train", "--out", "folder", OUTPUT),
    ("train", "--history-out", "folder", OUTPUT),
    # encrypt-model
    ("encrypt-model", "--arch", "mlp:3", "mlp:SIZES with at least two layer sizes >= 1"),
    ("encrypt-model", "--arch", "mlp:3,0,1", "mlp:SIZES with at least two layer sizes >= 1"),
    ("encrypt-model", "--arch", "mlp:3,-4,1", "mlp:SIZES with at least two layer sizes >= 1"),
    ("encrypt-model", "--arch", "mlp:three,4", "mlp:SIZES with at least two layer sizes >= 1"),
    ("encrypt-model", "--arch", "mlp:", "mlp:SIZES with at least two layer sizes >= 1"),
    ("encrypt-model", "--arch", "resnet", "xor, sentiment or mlp:SIZES"),
    ("encrypt-model", "--arch", "mlp:3,100000,100000", "weights"),
    ("encrypt-model", "--seed", "-1", INTEGER_GE_0),
    ("encrypt-model", "--hidden", "0", "an integer from 1 to"),
    ("encrypt-model", "--init-scale", "0", "a number > 0 and <= 100"),
    ("encrypt-model", "--init-scale", "nan", "a number > 0 and <= 100"),
    ("encrypt-model", "--activation", "relu", "one of taylor3, taylor5, taylor7, lsq3, lsq5"),
    ("encrypt-model", "--activation", "exact", "one of taylor3, taylor5, taylor7, lsq3, lsq5"),
    ("encrypt-model", "--min-count", "-1", INTEGER_GE_0),
    ("encrypt-model", "--polarity-cutoff", "-0.1", "a number >= 0"),
    ("encrypt-model", "--polarity-cutoff", "nan", "a number >= 0"),
    ("encrypt-model", "--skip", "-2", INTEGER_GE_0),
    ("encrypt-model", "--limit", "0", INTEGER_GE_1),
    ("encrypt-model", "--vocabulary", "missing.json", EXISTING),
    ("encrypt-model", "--public", "missing.henn", EXISTING),
    ("encrypt-model", "--out", "folder", OUTPUT),
    # keygen
    ("keygen", "--out", "model.henn", FOLDER),
    ("keygen", "--seed", "-1", INTEGER_GE_0),
    ("keygen", "--max-dim", "0", "an integer from 1 to 1048576"),
    ("keygen", "--max-dim", "1048577", "an integer from 1 to 1048576"),
    # the other party commands
    ("predict", "--out", "folder", OUTPUT),
    ("predict", "--limit", "-1", INTEGER_GE_1),
    ("decrypt", "--secret", "missing.henn", EXISTING),
    ("decrypt", "--out", "no-such-folder/p.henn", OUTPUT),
    ("make-switch-key", "--to", "missing.henn", EXISTING),
    ("switch-key", "--switch-key", "folder", EXISTING),
    ("refresh", "--out", "folder", OUTPUT),
    ("refresh", "--public", "missing.henn", EXISTING),
    ("serve-refresh", "--exchange", "model.henn", FOLDER),
    ("serve-refresh", "--idle-timeout", "0", SECONDS),
    ("serve-refresh", "--idle-timeout", "-5", SECONDS),
    ("serve-refresh", "--timeout", "nan", SECONDS),
    ("serve-refresh", "--max-requests", "0", INTEGER_GE_1),
    # demos
    ("demo xor", "--iterations", "0", INTEGER_GE_1),
    ("demo xor", "--lr", "-1", RATE),
    ("demo xor", "--lr", "1e9", RATE),
    ("demo xor", "--learning-rate", "0", RATE),
    ("demo xor", "--hidden", "0", "an integer from 1 to"),
    ("demo xor", "--seed", "-2", "an integer >= -1"),
    ("demo xor", "--init-scale", "-4", "a number > 0 and <= 100"),
    ("demo xor", "--activation", "relu", "one of taylor3"),
    ("demo sentiment", "--epochs", "0", INTEGER_GE_1),
    ("demo sentiment", "--batch-size", "0", INTEGER_GE_1),
    ("demo sentiment", "--batch-size", "-32", INTEGER_GE_1),
    ("demo sentiment", "--lr", "0", RATE),
    ("demo sentiment", "--hidden", "-8", "an integer from 1 to"),
    ("demo sentiment", "--min-count", "-1", INTEGER_GE_0),
    ("demo sentiment", "--polarity-cutoff", "inf", "a number >= 0"),
    ("demo sentiment", "--test-size", "0", "a whole number >= 1"),
    ("demo sentiment", "--limit", "0", INTEGER_GE_1),
    ("demo sentiment", "--seed", "-1", INTEGER_GE_0),
]


@pytest.mark.usefixtures("files")
@pytest.mark.parametrize(
    ("command", "option", "value", "accepted"),
    BAD_VALUES,
    ids=[f"{c}{o}={v}" for c, o, v, _ in BAD_VALUES],
)
def test_bad_value_is_one_line_naming_the_option(
    capsys: pytest.CaptureFixture[str], command: str, option: str, value: str, accepted: str
) -> None:
    code, out, err = run(capsys, *BASE[command], option, value)
    assert code == 2, err
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n"), err
    shown = "--lr" if option == "--learning-rate" else option
    assert err.startswith(f"henn {command}: error: {shown} must "), err
    assert accepted in err
    assert f"(got {value}" in err
    assert not PYTHON_NAMES.search(err), err


def test_nothing_is_created_when_a_value_is_bad(
    capsys: pytest.CaptureFixture[str], files: dict[str, str], _isolated: Path
) -> None:
    before = sorted(p.name for p in _isolated.iterdir())
    code, _, _ = run(capsys, "serve-refresh", "--exchange", "new-exchange", "--timeout", "0")
    assert code == 2
    code, _, _ = run(capsys, *BASE["keygen"], "--max-dim", "0")
    assert code == 2
    assert sorted(p.name for p in _isolated.iterdir()) == before


def test_architecture_cap_follows_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "_physical_memory", lambda: 1024 * common.BYTES_PER_WEIGHT)
    assert common.max_weights() == 1024
    assert common.architecture("mlp:32,31,1") == "mlp:32,31,1"  # 992 + 31 = 1023 weights
    assert common.architecture(" mlp:32,32 ") == "mlp:32,32"  # exactly 1024
    with pytest.raises(
        Exception, match=r"at most 1,024 weights .*got mlp:32,32,1, which has 1,056"
    ):
        common.architecture("mlp:32,32,1")
    assert common.layer_size("1024") == 1024
    with pytest.raises(Exception, match="from 1 to 1,024"):
        common.layer_size("1025")


def test_memory_fallback_when_the_system_does_not_say(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(name: str) -> int:
        raise ValueError(name)

    monkeypatch.setattr(os, "sysconf", refuse)
    assert common.max_weights() == common.FALLBACK_MEMORY_BYTES // common.BYTES_PER_WEIGHT


@pytest.mark.usefixtures("files")
@pytest.mark.parametrize(
    ("command", "option", "value", "dest", "parsed"),
    [
        ("train", "--lr", "10", "learning_rate", 10.0),
        ("train", "--lr", "1e-9", "learning_rate", 1e-9),
        ("train", "--batch-size", "1", "batch_size", 1),
        ("train", "--max-steps", "1", "max_steps", 1),
        ("train", "--skip", "0", "skip", 0),
        ("train", "--exchange", "folder", "exchange", "folder"),
        ("train", "--exchange", "not-yet/created", "exchange", "not-yet/created"),
        ("train", "--refresh-timeout", "2592000", "refresh_timeout", 2592000.0),
        ("encrypt-model", "--arch", "mlp:3, 8 ,1", "arch", "mlp:3, 8 ,1"),
        ("encrypt-model", "--seed", "0", "seed", 0),
        ("encrypt-model", "--min-count", "0", "min_count", 0),
        ("keygen", "--max-dim", "1048576", "max_dim", 1048576),
        ("demo xor", "--seed", "-1", "seed", -1),
        ("demo xor", "--activation", "exact", "activation", "exact"),
        ("demo sentiment", "--polarity-cutoff", "0", "polarity_cutoff", 0.0),
    ],
)
def test_values_at_the_edges_are_accepted(
    command: str, option: str, value: str, dest: str, parsed: object
) -> None:
    parser, _ = cli.build_parser()
    args = parser.parse_args([*BASE[command], option, value])
    assert getattr(args, dest) == parsed


def test_defaults_pass_their_own_checks() -> None:
    parser, _ = cli.build_parser()
    args = parser.parse_args(["demo", "sentiment", "--data", "reviews"])
    # None: the scheme's defaults (32 and 0.1 on the integer-vector scheme, 256 and 0.05 on CKKS)
    assert (args.activation, args.learning_rate, args.batch_size) == ("lsq3", None, None)
    args = parser.parse_args(["demo", "xor"])
    assert (args.activation, args.learning_rate, args.iterations) == ("taylor3", None, None)


def test_other_usage_errors_are_one_line_with_a_pointer_to_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "train", "--data", "xor")
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("henn train: error: the following arguments are required: ")
    assert "--model" in err and "--out" in err and "`henn train --help`" in err


def test_exact_sigmoid_needs_plain(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "demo", "xor", "--activation", "exact", "--iterations", "1")
    assert code == 2
    assert err == (
        "henn demo xor: error: --activation exact trains only unencrypted: add --plain, or "
        "choose a polynomial approximation such as --activation lsq3.\n"
    )


# -- a small world of real files -------------------------------------------------------------------


@pytest.fixture
def world(capsys: pytest.CaptureFixture[str], _isolated: Path) -> Path:
    """Keys A and B (seeded: fast and reproducible), a model under A, a switching key A -> B."""
    for name, seed in (("keyA", "1"), ("keyB", "2")):
        assert run(capsys, "keygen", "--out", name, "--seed", seed)[0] == 0
    argv = ["encrypt-model", "--public", "keyA/public.henn", "--arch", "xor", "--seed", "3"]
    assert run(capsys, *argv, "--out", "model.henn")[0] == 0
    argv = ["make-switch-key", "--from", "keyA/secret.henn", "--to", "keyB/secret.henn"]
    assert run(capsys, *argv, "--out", "AtoB.henn")[0] == 0
    capsys.readouterr()
    return _isolated


def decrypted_weights(capsys: pytest.CaptureFixture[str], model: str) -> list[Any]:
    summary = run_json(capsys, "decrypt", "--secret", "keyA/secret.henn", "--model", model)
    weights: list[Any] = summary["weights"]
    return weights


# -- initial weights: CSPRNG unless --seed ---------------------------------------------------------


def test_encrypt_model_without_seed_draws_fresh_weights(
    capsys: pytest.CaptureFixture[str], world: Path
) -> None:
    argv = ["encrypt-model", "--public", "keyA/public.henn", "--arch", "mlp:3,4,1"]
    first = run_json(capsys, *argv, "--out", "fresh1.henn")
    run_json(capsys, *argv, "--out", "fresh2.henn")
    assert first["seeded_weights"] is False
    a = decrypted_weights(capsys, "fresh1.henn")
    b = decrypted_weights(capsys, "fresh2.henn")
    assert np.asarray(a[0]).shape == (3, 4) and np.asarray(a[1]).shape == (4, 1)
    for layer_a, layer_b in zip(a, b, strict=True):
        assert not np.allclose(layer_a, layer_b)  # 12 and 4 independent draws each


def test_encrypt_model_with_the_same_seed_reproduces_the_weights(
    capsys: pytest.CaptureFixture[str], world: Path
) -> None:
    argv = ["encrypt-model", "--public", "keyA/public.henn", "--arch", "mlp:3,4,1", "--seed", "7"]
    summary = run_json(capsys, *argv, "--out", "seeded1.henn")
    run_json(capsys, *argv, "--out", "seeded2.henn")
    assert summary["seeded_weights"] is True
    a = decrypted_weights(capsys, "seeded1.henn")
    b = decrypted_weights(capsys, "seeded2.henn")
    assert a == b
    expected = Sequential.mlp([3, 4, 1], seed=7).weights()
    for got, want in zip(a, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-3)  # fixed-point scale 2**12
    other = run_json(capsys, *argv[:-1], "8", "--out", "seeded3.henn")
    assert other["seeded_weights"] is True
    assert not np.allclose(decrypted_weights(capsys, "seeded3.henn")[0], a[0])


def test_seeded_encrypt_model_says_so(capsys: pytest.CaptureFixture[str], world: Path) -> None:
    argv = ["encrypt-model", "--public", "keyA/public.henn", "--arch", "xor", "--seed", "1"]
    code, out, _ = run(capsys, *argv, "--out", "said.henn")
    assert code == 0
    assert "anyone who knows --seed can reproduce them" in out
    code, out, _ = run(capsys, *argv[:-2], "--out", "unsaid.henn")
    assert code == 0 and "seed" not in out


def test_seed_help_explains_what_a_seed_gives_away(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "encrypt-model", "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "for reproducible experiments only" in text
    assert "everyone who has the seed can reproduce the starting weights" in text
    assert "CSPRNG" in text


def test_csprng_weights_come_from_os_urandom(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def zeros(count: int) -> bytes:
        calls.append(count)
        return bytes(count)

    monkeypatch.setattr("hennframework.randomness.os.urandom", zeros)
    layer = Dense(4, 3, init_scale=2.0)  # no rng: the CSPRNG
    assert calls and np.all(layer.weights == -1.0)  # a zero word is the low end: -2/sqrt(4)
    model = Sequential.mlp([2, 2, 1])
    assert np.all(model.weights()[0] == -1.0 / np.sqrt(2))
    network = Sequential.bag_of_words(5, 3)
    assert np.all(network.weights()[1] == 0.0)  # Box-Muller of (1, 0): the mean


def test_csprng_weights_statistics() -> None:
    source = CSPRNGWeights()
    uniform = source.uniform(-0.5, 0.5, (200, 100))
    assert uniform.shape == (200, 100) and uniform.dtype == np.float64
    assert uniform.min() >= -0.5 and uniform.max() < 0.5
    assert abs(uniform.mean()) < 0.01  # sd of the mean: 0.29 / sqrt(20000) = 0.002
    normal = source.normal(1.0, 2.0, 20000)
    assert abs(normal.mean() - 1.0) < 0.1 and abs(normal.std() - 2.0) < 0.1
    assert np.isfinite(normal).all()
    assert source.uniform(size=()).shape == ()


def test_seeded_weights_are_numpys_stream_and_bad_seeds_are_refused() -> None:
    seeded = weight_random(5)
    assert isinstance(seeded, np.random.Generator)
    np.testing.assert_array_equal(
        seeded.uniform(-1, 1, (3, 2)), np.random.default_rng(5).uniform(-1, 1, (3, 2))
    )
    assert isinstance(weight_random(None), CSPRNGWeights)
    one, two = Sequential.mlp([3, 4, 1]), Sequential.mlp([3, 4, 1])
    assert not np.allclose(one.weights()[0], two.weights()[0])
    for bad in (-1, True, 1.5):
        with pytest.raises(InputError, match="integer >= 0, or None"):
            weight_random(bad)  # type: ignore[arg-type]


# -- no silent overwrites --------------------------------------------------------------------------

#: command line of each writing command; "OUT" is replaced by the output path.
WRITERS: dict[str, str] = {
    "encrypt-model": "encrypt-model --public keyA/public.henn --arch xor --out OUT",
    "train": "train --model model.henn --public keyA/public.henn --data xor --out OUT",
    "predict": "predict --model model.henn --public keyA/public.henn --data xor --out OUT",
    "decrypt": "decrypt --secret keyA/secret.henn --model model.henn --out OUT",
    "make-switch-key": "make-switch-key --from keyA/secret.henn --to keyB/secret.henn --out OUT",
    "switch-key": "switch-key --model model.henn --switch-key AtoB.henn --out OUT",
    "refresh": "refresh --secret keyA/secret.henn --model model.henn --out OUT",
}


def writer(command: str, out: str, *extra: str) -> list[str]:
    return [*(out if part == "OUT" else part for part in WRITERS[command].split()), *extra]


@pytest.mark.parametrize("command", list(WRITERS))
def test_existing_output_is_refused_without_force(
    capsys: pytest.CaptureFixture[str], world: Path, command: str
) -> None:
    target = world / "existing.henn"
    target.write_bytes(b"precious")
    code, out, err = run(capsys, *writer(command, "existing.henn"))
    assert code == 2 and out == ""
    errors = usage_errors(err)
    assert errors == [
        f"henn {command}: error: --out existing.henn already exists; choose another --out, "
        "or pass --force to replace it."
    ]
    assert target.read_bytes() == b"precious"
    code, _, err = run(capsys, *writer(command, "existing.henn", "--force"))
    assert code == 0, err
    assert target.read_bytes() != b"precious"


@pytest.mark.parametrize(
    ("command", "option"),
    [("train", "--model"), ("refresh", "--model"), ("decrypt", "--model"), ("predict", "--model")],
)
def test_output_onto_the_input_is_refused_without_force(
    capsys: pytest.CaptureFixture[str], world: Path, command: str, option: str
) -> None:
    before = digest(world / "model.henn")
    code, _, err = run(capsys, *writer(command, "model.henn"))
    assert code == 2
    (line,) = usage_errors(err)
    assert line.startswith(
        f"henn {command}: error: --out model.henn is the same file as {option}: the command "
        "would replace its own input. Choose another --out, or pass --force"
    )
    assert digest(world / "model.henn") == before


def test_train_sees_through_links_to_its_input(
    capsys: pytest.CaptureFixture[str], world: Path
) -> None:
    os.symlink("model.henn", world / "link.henn")
    before = digest(world / "model.henn")
    code, _, err = run(capsys, *writer("train", "link.henn"))
    assert code == 2
    assert "--out link.henn is the same file as --model" in err
    assert digest(world / "model.henn") == before


def test_train_onto_its_input_with_force_trains_on_the_whole_input(
    capsys: pytest.CaptureFixture[str], world: Path
) -> None:
    argv = writer("train", "model.henn", "--force", "--epochs", "3")
    assert run_json(capsys, *argv)["status"] == "complete"
    again = run_json(capsys, *argv)
    assert again["total_steps"] == 6  # the second run read the first run's result in full
    summary = run_json(capsys, "decrypt", "--secret", "keyA/secret.henn", "--model", "model.henn")
    assert summary["steps"] == 6 and len(summary["losses"]) == 6


def test_train_history_out_is_protected_too(
    capsys: pytest.CaptureFixture[str], world: Path
) -> None:
    (world / "history.henn").write_bytes(b"old history")
    code, _, err = run(capsys, *writer("train", "t.henn", "--history-out", "history.henn"))
    assert code == 2
    assert usage_errors(err) == [
        "henn train: error: --history-out history.henn already exists; choose another "
        "--history-out, or pass --force to replace it."
    ]
    assert not (world / "t.henn").exists()
    code, _, err = run(capsys, *writer("train", "t.henn", "--history-out", "./t.henn", "--force"))
    assert code == 2
    assert "--history-out and --out name the same file" in err
    assert not (world / "t.henn").exists()


def test_keygen_refuses_a_folder_with_keys(capsys: pytest.CaptureFixture[str], world: Path) -> None:
    before = digest(world / "keyA" / "secret.henn")
    code, _, err = run(capsys, "keygen", "--out", "keyA")
    assert code == 2
    (line,) = usage_errors(err)
    assert line.startswith("henn keygen: error: --out keyA already holds keys;")
    assert "pass --force to replace them" in line and "overwrite=" not in line
    assert digest(world / "keyA" / "secret.henn") == before
    (world / "empty").mkdir()
    assert run(capsys, "keygen", "--out", "empty")[0] == 0  # an existing folder without keys
    assert run(capsys, "keygen", "--out", "keyA", "--force")[0] == 0
    assert digest(world / "keyA" / "secret.henn") != before


def test_sentiment_hidden_is_capped_by_vocabulary_size(
    capsys: pytest.CaptureFixture[str], world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common, "_physical_memory", lambda: 1000 * common.BYTES_PER_WEIGHT)
    words = [f"w{i}" for i in range(99)]
    (world / "vocab.json").write_text(Vocabulary(words).to_json(), encoding="utf-8")
    argv = ["encrypt-model", "--public", "keyA/public.henn", "--arch", "sentiment"]
    argv += ["--vocabulary", "vocab.json", "--seed", "0"]
    code, _, err = run(capsys, *argv, "--hidden", "11", "--out", "big.henn")
    assert code == 2
    (line,) = usage_errors(err)
    assert line.startswith(
        "henn encrypt-model: error: --hidden 11 with a vocabulary of 99 words makes 1,100 "
        "weights; at most 1,000 fit"
    )
    assert not (world / "big.henn").exists()
    assert run(capsys, *argv, "--hidden", "10", "--out", "ok.henn")[0] == 0  # exactly 1,000
