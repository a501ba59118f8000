"""Scaling out. Prints tables; asserts nothing.

1. Sweep throughput with 1 and 2 workers sharing one PostgreSQL study (scripts/postgres.sh):
   `lapp train -m hparams_search=digits_mlp`, unpruned trials, 1 torch thread per worker.
   Trials per minute over the whole run (process start included) and in steady state (first
   trial start to last trial end, from the study's own timestamps).
2. DDP on CPU: one process (1 and 2 torch threads) against `trainer=ddp_cpu` with 2 processes
   of 1 thread, on two workloads (`WORKLOADS`): an MLP whose 2.2 M parameters make much
   gradient traffic per step, and a CNN doing far more arithmetic per parameter. Training rows
   per second in steady state (the median training time of the epochs after the first, timed by
   rank 0: process and rank start-up and validation excluded), and the whole command's time.

``python benchmarks/bench_scale.py [--trials N] [--epochs E] [--workload mlp|cnn] [--skip sweep|ddp]``.
The machine's load average is printed with each table: timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl

ROOT = Path(__file__).resolve().parents[1]
LAPP = [sys.executable, "-m", "lightning_app.cli"]


def _env(out: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "LAPP_OUTPUT_DIR": str(out), "OMP_NUM_THREADS": "1", **extra}


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} {five:.1f} {fifteen:.1f} on {os.cpu_count()} cores"


def _run(args: list[str], out: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run([*LAPP, *args], cwd=out, env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"lapp {' '.join(args[:3])} ... failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - started


# -- 1. sweep workers sharing PostgreSQL -----------------------------------------------------
def sweep_overrides(out: Path, study: str, trials: int, epochs: int) -> list[str]:
    return [
        "hparams_search=digits_mlp",
        f"hydra.sweeper.study_name={study}",
        f"hydra.sweep.dir={out / study}",
        f"hydra.sweeper.n_trials={trials}",
        "hydra.sweeper.pruner.name=none",
        "hydra.sweeper.plots=false",
        "hydra.sweeper.storage=${oc.env:LAPP_STORAGE_URL}",
        f"trainer.max_epochs={epochs}",
        "logger=none",
        "callbacks=none",
        "threads=1",
    ]


def sweep_rate(out: Path, url: str, workers: int, trials: int, epochs: int) -> tuple[float, float]:
    """(trials/min over the whole run, trials/min in steady state) for ``workers`` workers."""
    import optuna

    study = f"bench_w{workers}"
    args = ["train", "-m", *sweep_overrides(out, study, trials, epochs)]
    env = _env(out, LAPP_STORAGE_URL=url)
    _run([*args, "hydra.sweeper.n_trials=0"], out, env)  # the study, created once
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [*LAPP, *args],
            cwd=out,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode:
            sys.exit(f"a sweep worker failed:\n{err[-3000:]}")
    wall = time.perf_counter() - started
    done = [
        t
        for t in optuna.load_study(study_name=study, storage=url).trials
        if t.state.name == "COMPLETE"
    ]
    first = min(t.datetime_start for t in done)
    last = max(t.datetime_complete for t in done)
    return len(done) / wall * 60, len(done) / (last - first).total_seconds() * 60


def bench_sweep(out: Path, trials: int, epochs: int) -> None:
    state = out / "postgres"
    script = str(ROOT / "scripts" / "postgres.sh")
    start = subprocess.run([script, "start", str(state)], capture_output=True, text=True)
    if start.returncode == 3:
        print(f"sweep benchmark skipped: {start.stderr.strip()}")
        return
    if start.returncode:
        sys.exit(f"PostgreSQL did not start:\n{start.stderr}")
    try:
        rows = [(w, *sweep_rate(out, start.stdout.strip(), w, trials, epochs)) for w in (1, 2)]
    finally:
        subprocess.run([script, "stop", str(state)], capture_output=True)
    print(
        f"\nSweep throughput: {trials} trials of digits_mlp, {epochs} epochs, 1 thread per worker; {_load()}"
    )
    print(
        f"{'workers':>8} {'trials/min (whole)':>19} {'trials/min (steady)':>20} {'vs 1 worker':>12}"
    )
    for workers, whole, steady in rows:
        print(f"{workers:>8} {whole:>19.1f} {steady:>20.1f} {steady / rows[0][2]:>11.2f}x")


# -- 2. DDP on CPU -------------------------------------------------------------------------------
class EpochTimer(pl.Callback):
    """Rank 0 writes each epoch's training time (before validation) to ``RUN_DIR/epochs.json``."""

    def __init__(self) -> None:
        self.started, self.seconds = 0.0, []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.started = time.perf_counter()

    def on_validation_start(self, trainer, pl_module) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self.seconds.append(time.perf_counter() - self.started)

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            Path(trainer.default_root_dir, "epochs.json").write_text(json.dumps(self.seconds))


# Two workloads: an MLP (2.2 M parameters: much gradient to exchange per step) and a small CNN
# on 32x32 images (0.3 M parameters, far more arithmetic per parameter).
WORKLOADS = {
    "mlp": (
        "MLP 64-1024-1024-10 on 40,000 rows, batch 256 per process",
        ["data.source.num_samples=40000", "data.source.num_features=64",
         "data.loader.batch_size=256", "model.hidden_sizes=[1024,1024]"],
    ),
    "cnn": (
        "CNN [32, 64] channels on 8,000 32x32 images, batch 128 per process",
        ["data.source.num_samples=8000", "data.source.input_kind=image",
         "data.source.num_features=32", "data.loader.batch_size=128", "model=cnn",
         "model.channels=[32,64]"],
    ),
}  # fmt: skip
CASES = [
    ("1 process, 1 thread", ["trainer=cpu", "threads=1"]),
    ("1 process, 2 threads", ["trainer=cpu", "threads=2"]),
    ("ddp_cpu: 2 processes x 1 thread", ["trainer=ddp_cpu", "trainer.devices=2", "threads=1"]),
]


def ddp_run(out: Path, name: str, epochs: int, *overrides: str) -> tuple[float, float]:
    """(training rows per second in steady state, whole command seconds)."""
    run_dir = out / name
    args = [
        "train",
        "data=synthetic",
        "data.source.num_classes=10",
        f"trainer.max_epochs={epochs}",
        "trainer.enable_progress_bar=false",
        "logger=none",
        "callbacks=none",
        "+callbacks.timer._target_=bench_scale.EpochTimer",
        "deployment=none",
        "run_test=false",
        f"hydra.run.dir={run_dir}",
        *overrides,
    ]
    # every rank imports the timer: this directory on PYTHONPATH
    path = os.pathsep.join(
        [str(Path(__file__).parent), str(ROOT), os.environ.get("PYTHONPATH", "")]
    )
    wall = _run(args, out, _env(out, PYTHONPATH=path))
    steady = statistics.median(json.loads((run_dir / "epochs.json").read_text())[1:])
    report = json.loads((run_dir / "preprocessing.json").read_text())["report"]
    return report["split_sizes"]["train"] / steady, wall


def bench_ddp(out: Path, epochs: int, workloads: list[str]) -> None:
    for name in workloads:
        title, overrides = WORKLOADS[name]
        results = [
            (label, *ddp_run(out, f"{name}_{i}", epochs, *overrides, *case))
            for i, (label, case) in enumerate(CASES)
        ]
        print(f"\nDDP on CPU: {title}, {epochs} epochs; {_load()}")
        print(f"{'setup':<34} {'train rows/s':>13} {'vs 1x1':>7} {'command s':>10}")
        for label, rate, wall in results:
            print(f"{label:<34} {rate:>13.0f} {rate / results[0][1]:>6.2f}x {wall:>10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8, help="sweep trials per worker count")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per sweep trial")
    parser.add_argument("--ddp-epochs", type=int, default=4, help="the first is not timed")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), action="append")
    parser.add_argument("--skip", choices=["sweep", "ddp"], action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lapp-bench-scale-") as tmp:
        out = Path(tmp)
        if "sweep" not in args.skip:
            bench_sweep(out, args.trials, args.epochs)
        if "ddp" not in args.skip:
            bench_ddp(out, args.ddp_epochs, args.workload or list(WORKLOADS))


if __name__ == "__main__":
    main()
