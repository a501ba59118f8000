"""Data stage on a large messy table, measured against pandas alone (nothing asserted).

A generated CSV of 1,000,000 rows x 20 columns (17 numeric with 5% missing values, 2
categorical with 5% missing, a 3-class target) is read, cleaned (missing targets, infinities,
duplicates), split, fitted (categories, fills, normalization) and encoded into the model's input
by ``ArrayDataModule.prepare()`` (the `lapp train` data path), and compared with
``pandas.read_csv`` of the same file:

- time: median over the repeats, as a ratio to pandas (goal: <= 2.0x);
- peak memory: the process's peak resident memory above its level after imports, as a ratio to
  the in-memory size of the frame pandas reads (``memory_usage(deep=True)``; goal: <= 3x).

Each measurement runs in a fresh process. The CSV is generated once and cached in the system
temp directory. ``python benchmarks/bench_preprocessing.py [--rows N] [--repeats K]``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS = int(sys.argv[sys.argv.index("--rows") + 1]) if "--rows" in sys.argv else 1_000_000
REPEATS = int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 3
CACHE = Path(tempfile.gettempdir()) / "lapp_bench"


def generate(path: Path, rows: int) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    cols = {}
    for j in range(17):
        values = rng.normal(j, 1 + j, rows)
        values[rng.random(rows) < 0.05] = np.nan
        cols[f"num_{j}"] = values
    for j, choices in enumerate(
        (["red", "green", "blue", "yellow", "black"], ["a", "b", "c", "d"])
    ):
        values = np.array(choices, dtype=object)[rng.integers(0, len(choices), rows)]
        values[rng.random(rows) < 0.05] = None
        cols[f"cat_{j}"] = values
    cols["target"] = rng.integers(0, 3, rows)
    tmp = path.with_suffix(".tmp")
    pd.DataFrame(cols).to_csv(tmp, index=False, float_format="%.6g")
    tmp.replace(path)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu_s() -> float:
    """CPU seconds of this process, all threads (steadier than wall time on a busy machine)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(mode: str, path: str) -> dict:
    """One measurement in this (fresh) process."""
    import pandas as pd

    if mode == "lapp":
        from lightning_app.data.datamodule import ArrayDataModule
        from lightning_app.data.sources.table import TableSource

        split = {"val": 0.15, "test": 0.15, "stratify": True, "seed": 0}
        loader = {"batch_size": 32, "eval_batch_size": 512, "shuffle": True, "drop_last": False}
        dm = ArrayDataModule(TableSource(path, "target"), split, loader, {})
    before, cpu = _rss_mb(), _cpu_s()
    started = time.perf_counter()
    if mode == "pandas":
        frame = pd.read_csv(path)
        seconds = time.perf_counter() - started
        return {
            "seconds": seconds,
            "cpu": _cpu_s() - cpu,
            "peak_mb": _peak_mb() - before,
            "frame_mb": frame.memory_usage(deep=True).sum() / 2**20,
        }
    spec = dm.prepare()
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "cpu": _cpu_s() - cpu,
        "peak_mb": _peak_mb() - before,
        "features": spec.input_shape[0],
        "rows": dm.report["rows_used"],
    }


def measure(mode: str, path: Path) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = []
    for _ in range(REPEATS):
        out = subprocess.run(
            [sys.executable, __file__, "--child", mode, str(path)],
            capture_output=True,
            text=True,
            env=env,
        )
        if out.returncode:
            raise SystemExit(f"{mode} run failed:\n{out.stderr[-3000:]}")
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return runs


def main() -> None:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"preprocessing_{ROWS}x20.csv"
    if not path.is_file():
        print(f"generating {path} ...", flush=True)
        generate(path, ROWS)
    print(
        f"file: {path} ({path.stat().st_size / 2**20:.0f} MiB), {os.cpu_count()} CPUs, load before: {os.getloadavg()}"
    )
    base, lapp = measure("pandas", path), measure("lapp", path)
    frame_mb = base[0]["frame_mb"]

    def med(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    def best(runs: list[dict], key: str) -> float:
        return min(r[key] for r in runs)

    print(
        f"\n{ROWS:,} rows x 20 columns; raw frame in memory: {frame_mb:.0f} MiB; {REPEATS} runs each"
    )
    print(
        f"{'':28} {'wall s':>7} {'ratio':>6} {'best s':>7} {'ratio':>6} {'CPU s':>6} {'ratio':>6} "
        f"{'peak MiB':>9} {'/ frame':>8}"
    )
    for name, runs in (("pandas.read_csv", base), ("lapp read+clean+fit+encode", lapp)):
        wall, fast, cpu = med(runs, "seconds"), best(runs, "seconds"), med(runs, "cpu")
        peak = med(runs, "peak_mb")
        print(
            f"{name:28} {wall:7.2f} {wall / med(base, 'seconds'):5.2f}x {fast:7.2f} "
            f"{fast / best(base, 'seconds'):5.2f}x {cpu:6.2f} {cpu / med(base, 'cpu'):5.2f}x "
            f"{peak:9.0f} {peak / frame_mb:7.2f}x"
        )
    print(
        "wall, CPU (all threads) and peak: medians; best: each side's fastest run (least disturbed)"
    )
    print(
        f"goals: time ratio <= 2.0x, peak / frame <= 3x; model input: {lapp[0]['rows']:,} rows x {lapp[0]['features']} features"
    )
    print(
        "all runs, wall s:",
        [round(r["seconds"], 2) for r in base],
        [round(r["seconds"], 2) for r in lapp],
    )
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    if "--child" in sys.argv:
        i = sys.argv.index("--child")
        print(json.dumps(child(sys.argv[i + 1], sys.argv[i + 2])))
    else:
        main()
