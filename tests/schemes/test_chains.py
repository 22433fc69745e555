"""The randomized chain checker (hennframework.testing.chains): a fast profile in every run, the
long one on demand, and proof that it catches the bugs it exists for.

Long profile (>= 10**5 decryptions; a few minutes)::

    HENN_CHAIN_DECRYPTIONS=100000 python -m pytest tests/schemes/test_chains.py -k long
    python -m hennframework.testing.chains --decryptions 100000 --seed 1
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hennframework.schemes.integer_vector import IntegerVectorScheme, wide
from hennframework.testing import chains

pytestmark = pytest.mark.filterwarnings(
    "ignore::hennframework.exceptions.InsecureParametersWarning"
)

#: Every operation the generator can pick; the fast profile must exercise all of them.
OPERATIONS = {
    "encrypt",
    "add",
    "sub",
    "neg",
    "add_plain",
    "mul_plain",
    "multiply_constant",
    "mul",
    "sum",
    "index",
    "rescale",
    "scatter_add",
    "segment_sum",
    "switch_key",
    "polyval",
    "dot",
    "linear_transform",
    "matmul_plain",
    "matmul_long",
    "matmul_cipher",
    "transpose",
    "absorb_noise",
}


def test_fast_profile() -> None:
    """A few hundred chains on every parameter set: nothing wrong, every operation exercised."""
    report = chains.run_chains(600, seed=2024)
    assert report.ok, report.summary()
    assert report.decryptions >= 600
    assert set(report.operation_counts) == OPERATIONS
    # most operations succeed: the generator aims at the edges, not only past them
    assert sum(report.refusals.values()) < report.operations / 2, report.summary()
    # absorbed ciphertexts (whose new messages are checked) go on into later operations
    absorbed = report.operation_counts["absorb_noise"] - report.refusals["absorb_noise:too-noisy"]
    assert absorbed > 10, report.summary()


@pytest.mark.skipif(
    "HENN_CHAIN_DECRYPTIONS" not in os.environ,
    reason="long profile: set HENN_CHAIN_DECRYPTIONS (e.g. 100000) to run it",
)
def test_long_profile() -> None:
    count = int(os.environ["HENN_CHAIN_DECRYPTIONS"])
    seed = int(os.environ.get("HENN_CHAIN_SEED", "1"))
    report = chains.run_chains(count, seed=seed)
    print(report.summary())
    assert report.ok, report.summary()


def test_command_line_writes_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    status = chains.main(["--decryptions", "30", "--seed", "5", "--json", str(out)])
    assert status == 0
    saved = json.loads(out.read_text())
    assert saved["decryptions"] >= 30 and saved["wrong"] == 0
    assert "wrong 0, bound violations 0" in capsys.readouterr().out


def test_unknown_parameter_sets_are_named() -> None:
    with pytest.raises(ValueError, match="nosuchset"):
        chains.run_chains(1, parameter_sets=["nosuchset"])


# -- the checker catches planted bugs --------------------------------------------------------------
def unproved_wide_matmul(
    backend: Any, left: Any, right: Any, divisor: int, left_bound: int, right_bound: int
) -> Any:
    """The reported bug: only the ciphertext side split in 31-bit limbs, each limb times the
    plaintext in plain int64 with nothing proving it fits."""
    high = right >> 31
    low = right & ((1 << 31) - 1)
    prod_high = backend.matmul_int_wrap(left, high)
    prod_low = backend.matmul_int_wrap(left, low)
    value = wide.wide_add(
        (prod_high >> 33, prod_high.view("uint64") << 31),
        (prod_low >> 63, prod_low.view("uint64")),
    )
    return wide.round_div_wide(value, divisor)


def test_catches_the_unproved_limb_product(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wide, "wide_matmul_round_div", unproved_wide_matmul)
    runner = chains.ChainRunner(seed=7, parameter_sets=["default", "seed"])
    for _ in range(200):
        params = runner.sets[int(runner.rng.integers(len(runner.sets)))]
        runner.attempt("matmul_long", lambda params=params: runner.op_matmul_long(params))
        if not runner.report.ok:
            break
    report = runner.report
    assert report.wrong + report.bound_violations > 0, report.summary()


def test_catches_an_undercounted_noise_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forgetting the rounding term of rescaled products makes tracked bounds too small."""
    monkeypatch.setattr(IntegerVectorScheme, "_rounding_noise", lambda self: 0.0)
    report = chains.run_chains(300, seed=11, parameter_sets=["default"])
    assert report.bound_violations > 0, report.summary()


def test_catches_a_wrong_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """A result one unit off its exact message counts as wrong (and as noise above the bound)."""
    original = chains.ChainRunner.op_neg

    def off_by_one(self: chains.ChainRunner, entry: chains.Entry) -> chains.Entry:
        result = original(self, entry)
        result.messages = result.messages + 1  # the model now disagrees by one unit
        return result

    monkeypatch.setattr(chains.ChainRunner, "op_neg", off_by_one)
    report = chains.run_chains(200, seed=3, parameter_sets=["default"])
    assert report.wrong > 0 and report.bound_violations > 0, report.summary()


def test_exact_model_helpers() -> None:
    params = chains.CHAIN_PARAMETER_SETS["default"]
    encoded = chains.encode(np.array([0.5 / 4096, 1.5 / 4096, -2.5 / 4096, 3.0]), 4096)
    assert encoded.tolist() == [0, 2, -2, 12288]  # round half to even, as the scheme encodes
    assert chains.plain_product(params, 4096, 0.25) == (chains.encode(0.25, 4096), 4096, 4096)
    assert chains.slot_reading((3,), (3,), 3) == "ambiguous"
    assert chains.slot_reading((3,), (2,), 3) == "slot"
    assert chains.slot_reading((2,), (2,), 3) == "invalid"
    assert chains.slot_reading((2,), (2,), 1) == "item"
