"""The first run a new user makes: default `lapp train` as a whole process against a plain script.

`lapp train` composes, reads the data, fits, tests, exports and verifies the ONNX artifact,
benchmarks it and writes the report; `plain_train.py` only trains the same MLP on the same
data. The two processes alternate (the machine may be shared), REPEATS times each, and the
medians and their ratio are printed. `lapp train --cfg job` (composition only) is timed the same
way. Prints figures; asserts nothing.

    python benchmarks/bench_first_run.py [--repeats N] [lapp overrides...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args, overrides = parser.parse_known_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    lapp = [sys.executable, "-m", "lightning_app.cli", "train"]
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)  # outputs/ of the runs land here
        cases = {
            "plain PyTorch script (trains only)": [sys.executable, str(ROOT / "benchmarks" / "plain_train.py")],
            "lapp train (whole default job)": [*lapp, *overrides],
            "lapp train --cfg job": [*lapp, "--cfg", "job", *overrides],
            "python -c 'import hydra' (floor of --cfg job)": [sys.executable, "-c", "import hydra"],
        }  # fmt: skip
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.repeats):
            for name, cmd in cases.items():
                times[name].append(timed(cmd, cwd, env))
    base = statistics.median(times["plain PyTorch script (trains only)"])
    print(f"{'case':<48} {'median s':>9} {'min s':>7} {'x plain':>8}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:<48} {med:9.2f} {min(values):7.2f} {med / base:8.2f}")


if __name__ == "__main__":
    main()
