"""The XOR and sentiment demos on the NumPy and the CuPy backend, side by side on one machine.

Prints one row per (demo, batch size, backend) with the demo's own timing (``--json``): seconds
per XOR iteration, encrypted sentiment reviews per second. Part of ``benchmarks/gpu_check.sh``;
run it alone with ``python benchmarks/gpu_models.py`` where ``henn`` and CuPy are installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

CASES = [
    ("xor", ["--iterations", "300"], "seconds_per_iteration"),
    ("sentiment", ["--batch-size", "32"], "encrypted_reviews_per_second"),
    ("sentiment", ["--batch-size", "256"], "encrypted_reviews_per_second"),
    ("sentiment", ["--batch-size", "1024", "--lr", "0.01"], "encrypted_reviews_per_second"),
]


def run(demo: str, options: list[str], backend: str) -> dict[str, object]:
    command = [sys.executable, "-m", "hennframework.cli", "--backend", backend, "demo", demo]
    command += [*options, "--json", "--no-progress"]
    if demo == "sentiment":
        command += ["--epochs", "1"]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    result: dict[str, object] = json.loads(done.stdout)
    return result


def main() -> None:
    print(
        f"{'demo':10} {'options':22} {'numpy':>14} {'cupy':>14}  accuracy / learned (numpy, cupy)"
    )
    for demo, options, key in CASES:
        row = {backend: run(demo, options, backend) for backend in ("numpy", "cupy")}
        figures = []
        for result in row.values():
            value = result.get(key)
            figures.append(f"{value:14.6g}" if isinstance(value, float) else f"{'!':>14}")
        quality = [
            result.get("encrypted_test_accuracy", result.get("learned", result.get("error")))
            for result in row.values()
        ]
        print(f"{demo:10} {' '.join(options):22} {figures[0]} {figures[1]}  {quality} ({key})")


if __name__ == "__main__":
    main()
