"""Sweeps: what pruning saves, and what parallel trials gain. Prints tables; asserts nothing.

1. The same 20-trial TPE sweep (`hparams_search=digits_mlp`, 20 epochs a trial) with the
   preset's median pruner and without pruning: epochs spent and best val/acc.
2. Trials per minute with 1 worker (basic launcher, torch's default threads), 1 worker with one
   torch thread, and 2 joblib workers with one thread each, dispatched in batches of 2 and
   continuously (the default with joblib), on 48 unpruned trials of 20 epochs: over the whole
   sweep (process start included) and in steady state (after the first trial).
3. The same with the preset's median pruner on, where trial lengths differ most.

``python benchmarks/bench_sweep.py [--only pruning|parallel] [--trials N] [--parallel-trials N]``.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def sweep(out: Path, name: str, *overrides: str) -> tuple[Path, float]:
    """Run `lapp train -m hparams_search=digits_mlp` as study NAME; returns (sweep dir, seconds)."""
    sweep_dir = out / name
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LAPP_OUTPUT_DIR": str(out)}
    args = [
        "train",
        "-m",
        "hparams_search=digits_mlp",
        f"hydra.sweeper.study_name={name}",
        f"hydra.sweep.dir={sweep_dir}",
        "hydra.sweeper.plots=false",
        "logger=none",
        *overrides,
    ]
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "lightning_app.cli", *args],
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if proc.returncode:
        sys.exit(f"sweep {name} failed:\n{proc.stderr[-3000:]}")
    return sweep_dir, seconds


def trials(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "trials.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def steady_rate(sweep_dir: Path) -> float:
    """Trials per minute between the first trial's end and the last trial's end."""
    import optuna

    study = optuna.load_study(
        study_name=sweep_dir.name, storage=f"sqlite:///{sweep_dir / 'optuna.db'}"
    )
    ends = sorted(t.datetime_complete for t in study.trials if t.datetime_complete)
    span = (ends[-1] - ends[0]).total_seconds() if len(ends) > 1 else 0.0
    return 60 * (len(ends) - 1) / span if span else float("nan")


def pruning_table(out: Path, n: int, epochs: int) -> None:
    rows = []
    for label, extra in (("median pruner", []), ("no pruning", ["hydra.sweeper.pruner.name=none"])):
        name = "prune" if extra == [] else "noprune"
        sweep_dir, seconds = sweep(
            out, name, f"hydra.sweeper.n_trials={n}", f"trainer.max_epochs={epochs}", *extra
        )
        ts = trials(sweep_dir)
        best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())["best"][
            "value"
        ]
        spent = sum(int(t["epochs"]) for t in ts)
        pruned = sum(t["state"] == "PRUNED" for t in ts)
        rows.append((label, spent, pruned, best, seconds))
    base_epochs, base_best = rows[1][1], rows[1][3]
    print(
        f"\n{n}-trial TPE sweep, digits MLP, up to {epochs} epochs a trial (early stopping on in both)"
    )
    print(
        f"{'':16}{'epochs':>8}{'share':>8}{'pruned':>8}{'best val/acc':>14}{'vs none':>10}{'wall s':>8}"
    )
    for label, spent, pruned, best, seconds in rows:
        print(
            f"{label:16}{spent:8d}{spent / base_epochs:8.0%}{pruned:8d}{best:14.4f}"
            f"{100 * (best - base_best):+9.2f}pt{seconds:8.0f}"
        )
    print("target: pruning spends <= 60% of the epochs, best within 0.5 point")


def parallel_table(out: Path, n: int, epochs: int, pruned: bool) -> None:
    common = [f"hydra.sweeper.n_trials={n}", f"trainer.max_epochs={epochs}"]
    if not pruned:
        common.append("hydra.sweeper.pruner.name=none")
    joblib2 = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2"]
    runs = [
        ("1 worker, default threads", "serial", []),
        ("1 worker, 1 thread", "serial1", ["threads=1"]),
        ("2 joblib x 1 thread, batches", "batches", [*joblib2, "hydra.sweeper.dispatch=batches"]),
        ("2 joblib x 1 thread, continuous", "joblib2", joblib2),
    ]
    if pruned:
        del runs[1]
    rows = []
    for label, name, extra in runs:
        name = f"{name}_pruned" if pruned else name
        sweep_dir, seconds = sweep(out, name, *common, *extra)
        rows.append((label, 60 * n / seconds, steady_rate(sweep_dir), seconds))
    kind = "median-pruned" if pruned else "unpruned"
    print(f"\n{n} {kind} trials of up to {epochs} epochs (digits MLP): trials per minute")
    print(f"{'':32}{'overall':>9}{'steady':>9}{'ratio':>14}{'wall s':>8}")
    base_overall, base_steady = rows[0][1], rows[0][2]
    for label, overall, steady, seconds in rows:
        ratio = f"{overall / base_overall:.2f}x/{steady / base_steady:.2f}x"
        print(f"{label:32}{overall:9.1f}{steady:9.1f}{ratio:>14}{seconds:8.0f}")
    print(
        "ratio: overall/steady against 1 worker with default threads; target >= 1.6x with 2 workers"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=20)
    # 48 trials: the one-time start (each worker imports torch and Lightning, about 5 s) is then
    # not most of the sweep, as it is not in real sweeps; steady state excludes it anyway.
    parser.add_argument("--parallel-trials", type=int, default=48)
    parser.add_argument("--parallel-epochs", type=int, default=20)
    parser.add_argument(
        "--only", choices=("pruning", "parallel"), help="the pruning table or the parallel tables"
    )
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at {datetime.now():%H:%M}"
    )
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        if args.only != "parallel":
            pruning_table(Path(tmp), args.trials, args.epochs)
        if args.only != "pruning":
            for pruned in (False, True):
                parallel_table(Path(tmp), args.parallel_trials, args.parallel_epochs, pruned)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
