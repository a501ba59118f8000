"""Scaling out. Prints tables; asserts nothing.

1. Sweep throughput with 1 and 2 workers sharing one PostgreSQL study (scripts/postgres.sh):
   `lapp train -m hparams_search=digits_mlp`, 24 unpruned trials, 1 thread per worker, the
   two counts alternated (``--repeat`` times) so both see the same spells of load. Trials per
   minute over the whole run (process start included) and in steady state (from the moment
   every worker has ended its first trial, which pays for importing torch and Lightning, to the
   last trial's end, from the study's own timestamps). Figures that hold when other jobs share
   the machine: the CPU seconds per trial of the workers and of the database server in steady
   state, the share of that time the workers were running (below ~95%: no free core), and the
   database transactions per trial.
2. DDP on CPU: one process (1 and 2 torch threads) against `trainer=ddp_cpu` with 2 processes
   of 1 thread, on workloads (`WORKLOADS`; mlp and cnn by default): an MLP whose 2.2 M parameters make much
   gradient traffic per step, and a CNN doing far more arithmetic per parameter. Training rows
   per second in steady state (the median training time of the epochs after the first, timed by
   rank 0: process and rank start-up and validation excluded), rank 0's CPU time per 1,000 of
   its rows (the gradient exchange's cost, whatever the load), and the whole command's time.

``python benchmarks/bench_scale.py [--trials N] [--repeat R] [--epochs E] [--workload mlp|mlp1024|cnn] [--case I]
[--skip sweep|ddp]``. The machine's load average is printed with each table.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
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


class CpuSampler:
    """Samples the CPU seconds (user + system, reaped children included) of groups of processes in
    a thread, a few times a second, so the seconds spent inside a time window can be read
    afterwards: figures that hold when other jobs take cores (a starved worker runs fewer trials
    but spends about the same CPU on each).

    Args:
        groups: name -> a function listing the group's processes now (a server's backends come
            and go; one that exited is counted in its parent's children times once reaped).
        sticky: the groups whose processes are not reaped by a member (the sweep workers).
    """

    def __init__(self, groups: dict[str, Any], period: float = 0.2, sticky: tuple = ()):
        self.groups, self.period, self.sticky = groups, period, sticky
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._last: dict[str, dict[int, float]] = {}  # group -> pid -> CPU seconds last read
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _cpu(self, group: str, procs: list[psutil.Process]) -> float:
        """The group's CPU seconds. In a ``sticky`` group a process that has exited keeps its
        last reading (else a sample taken just after a worker ends would drop its seconds);
        in the others it drops out, its seconds counted in its parent's once reaped."""
        seen = self._last.setdefault(group, {}) if group in self.sticky else {}
        for proc in procs:
            try:
                t = proc.cpu_times()
            except psutil.Error:
                continue  # exited: its last reading stays
            seen[proc.pid] = t.user + t.system + t.children_user + t.children_system
        return sum(seen.values())

    def sample(self) -> None:
        now = {k: self._cpu(k, f()) for k, f in self.groups.items()}
        self.samples.append((time.time(), now))

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.sample()

    def __enter__(self) -> CpuSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def between(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds of each group from ``start`` to ``end`` (nearest samples)."""
        first = min(self.samples, key=lambda s: abs(s[0] - start))[1]
        last = min(self.samples, key=lambda s: abs(s[0] - end))[1]
        return {k: last[k] - first[k] for k in first}


def server_processes(state: Path) -> list[psutil.Process]:
    """The PostgreSQL server's processes: the postmaster (its reaped backends' CPU counts in its
    children times) and its children now."""
    pid = int(
        (Path((state / "datadir").read_text().strip()) / "data" / "postmaster.pid")
        .read_text()
        .split()[0]
    )
    master = psutil.Process(pid)
    return [master, *master.children()]


def transactions(url: str) -> int:
    """Committed + rolled back transactions of the database so far (one per storage call)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
            )
        ).one()
    engine.dispose()
    return int(row[0])


def sweep_run(
    out: Path, url: str, state: Path, study: str, workers: int, trials: int, epochs: int
) -> dict[str, float]:
    """One sweep of ``trials`` by ``workers`` workers: rates, and CPU and transactions per trial."""
    import optuna

    args = ["train", "-m", *sweep_overrides(out, study, trials, epochs)]
    env = _env(out, LAPP_STORAGE_URL=url)
    _run([*args, "hydra.sweeper.n_trials=0"], out, env)  # the study, created once
    xacts = transactions(url)
    started = time.time()
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
    workers_ = [psutil.Process(p.pid) for p in procs]
    groups = {"workers": lambda: workers_, "server": lambda: server_processes(state)}
    with CpuSampler(groups, sticky=("workers",)) as cpu:
        for proc in procs:
            _, err = proc.communicate()
            if proc.returncode:
                sys.exit(f"a sweep worker failed:\n{err[-3000:]}")
        wall = time.time() - started
    xacts = transactions(url) - xacts
    done = [
        t
        for t in optuna.load_study(study_name=study, storage=url).trials
        if t.state.name == "COMPLETE"
    ]
    # Steady state: from the moment every worker has finished its first trial (imports of torch
    # and Lightning, first compose) to the last trial's end.
    firsts: dict[int, float] = {}
    for t in done:
        pid = (t.system_attrs.get("lapp:owner") or {}).get("pid", 0)
        end = t.datetime_complete.timestamp()
        firsts[pid] = min(firsts.get(pid, end), end)
    start, last = max(firsts.values()), max(t.datetime_complete.timestamp() for t in done)
    steady = [t for t in done if t.datetime_complete.timestamp() > start]
    spent = cpu.between(start, last)
    return {
        "whole": len(done) / wall * 60,
        "steady": len(steady) / (last - start) * 60,
        "worker_cpu": spent["workers"] / len(steady),
        "server_cpu": spent["server"] / len(steady),
        "busy": spent["workers"] / (workers * (last - start)),
        "xacts": xacts / len(done),
    }


def bench_sweep(out: Path, trials: int, epochs: int, repeat: int) -> None:
    state = out / "postgres"
    script = str(ROOT / "scripts" / "postgres.sh")
    start = subprocess.run([script, "start", str(state)], capture_output=True, text=True)
    if start.returncode == 3:
        print(f"sweep benchmark skipped: {start.stderr.strip()}")
        return
    if start.returncode:
        sys.exit(f"PostgreSQL did not start:\n{start.stderr}")
    # a SIGTERM (a timeout, a killed session) still stops the server in the finally below
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    url, rows = start.stdout.strip(), []
    loads = [_load()]
    try:
        for r in range(repeat):  # alternating, so both see the same spells of load
            for w in (1, 2):
                rows.append(
                    (r, w, sweep_run(out, url, state, f"bench_r{r}_w{w}", w, trials, epochs))
                )
                loads.append(_load())
    finally:
        subprocess.run([script, "stop", str(state)], capture_output=True)
    print(
        f"\nSweep throughput: {trials} trials of digits_mlp, {epochs} epochs, 1 thread per worker, "
        f"alternating 1 and 2 workers {repeat}x; {loads[0]} before, {loads[-1]} after"
    )
    print(
        f"{'run':>3} {'workers':>7} {'trials/min':>10} {'vs 1':>6} {'steady':>7} {'vs 1':>6} "
        f"{'worker CPU s/trial':>18} {'server CPU s/trial':>18} {'workers on CPU':>14} {'xacts/trial':>11} "
        f"{'free cores':>10}"
    )
    for r, w, m in rows:
        one = next(m1 for r1, w1, m1 in rows if r1 == r and w1 == 1)
        print(
            f"{r + 1:>3} {w:>7} {m['whole']:>10.1f} {m['whole'] / one['whole']:>5.2f}x "
            f"{m['steady']:>7.1f} {m['steady'] / one['steady']:>5.2f}x "
            f"{m['worker_cpu']:>18.3f} {m['server_cpu']:>18.3f} {m['busy']:>13.0%} {m['xacts']:>11.0f} "
            f"{w * one['worker_cpu'] / m['worker_cpu']:>9.2f}x"
        )
    print(
        "workers on CPU: the share of the steady-state time each worker spent running; below ~95% "
        "the machine had no free core for it (other jobs), and the rate ratio understates scaling. "
        "free cores: the ratio to 1 worker if every worker had a core of its own, from the CPU "
        "seconds per trial (workers x 1-worker CPU/trial / this CPU/trial; the server's share, "
        "a few %, not counted)"
    )


# -- 2. DDP on CPU -------------------------------------------------------------------------------
class EpochTimer(pl.Callback):
    """Rank 0 writes each epoch's training time (before validation) and the CPU seconds its
    process spent meanwhile (all its threads, gloo's included) to ``RUN_DIR/epochs.json``."""

    def __init__(self) -> None:
        self.started, self.cpu_started, self.seconds, self.cpu = 0.0, 0.0, [], []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.started, self.cpu_started = time.perf_counter(), time.process_time()

    def on_validation_start(self, trainer, pl_module) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self.seconds.append(time.perf_counter() - self.started)
            self.cpu.append(time.process_time() - self.cpu_started)

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            record = {"seconds": self.seconds, "cpu": self.cpu, "world": trainer.world_size}
            Path(trainer.default_root_dir, "epochs.json").write_text(json.dumps(record))


# Two workloads: an MLP (2.2 M parameters: much gradient to exchange per step) and a small CNN
# on 32x32 images (0.3 M parameters, far more arithmetic per parameter).
WORKLOADS = {
    "mlp": (
        "MLP 64-1024-1024-10 on 40,000 rows, batch 256 per process",
        ["data.source.num_samples=40000", "data.source.num_features=64",
         "data.loader.batch_size=256", "model.hidden_sizes=[1024,1024]"],
    ),
    "mlp1024": (  # the same MLP, 4x the rows per gradient exchange
        "MLP 64-1024-1024-10 on 40,000 rows, batch 1024 per process",
        ["data.source.num_samples=40000", "data.source.num_features=64",
         "data.loader.batch_size=1024", "model.hidden_sizes=[1024,1024]"],
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
    (
        "  same, gradient_as_bucket_view",  # gradients as views into DDP's buckets: no copy
        ["trainer=ddp_cpu", "trainer.devices=2", "threads=1",
         "+trainer.strategy.gradient_as_bucket_view=true"],
    ),
]  # fmt: skip


def ddp_run(
    out: Path, name: str, epochs: int, *overrides: str
) -> tuple[float, float, float, float]:
    """(training rows per second in steady state, rank 0's CPU ms per 1,000 of its rows, the
    share of the time rank 0 was on a CPU, whole command seconds)."""
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
    record = json.loads((run_dir / "epochs.json").read_text())
    steady = statistics.median(record["seconds"][1:])
    cpu = statistics.median(record["cpu"][1:])
    rows = json.loads((run_dir / "preprocessing.json").read_text())["report"]["split_sizes"][
        "train"
    ]
    return rows / steady, cpu / (rows / record["world"]) * 1e6, cpu / steady, wall


def bench_ddp(out: Path, epochs: int, workloads: list[str], cases: list) -> None:
    for name in workloads:
        title, overrides = WORKLOADS[name]
        results = [
            (label, *ddp_run(out, f"{name}_{i}", epochs, *overrides, *case))
            for i, (label, case) in enumerate(cases)
        ]
        print(f"\nDDP on CPU: {title}, {epochs} epochs; {_load()}")
        print(
            f"{'setup':<34} {'train rows/s':>13} {'vs 1x1':>7} {'CPU ms/1k rows/rank':>20} "
            f"{'rank 0 on CPU':>13} {'command s':>10}"
        )
        for label, rate, cpu, busy, wall in results:
            print(
                f"{label:<34} {rate:>13.0f} {rate / results[0][1]:>6.2f}x {cpu:>20.0f} "
                f"{busy:>12.0%} {wall:>10.1f}"
            )
        print(
            "CPU ms/1k rows/rank: the CPU one process spends on 1,000 of its rows (computing and "
            "exchanging gradients): equal across setups means no overhead; 'on CPU' far below "
            "100% per thread means it waited (for a core held by other jobs, or the other rank)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24, help="sweep trials per worker count")
    parser.add_argument("--repeat", type=int, default=2, help="sweep runs of 1 and 2 workers")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per sweep trial")
    parser.add_argument("--ddp-epochs", type=int, default=4, help="the first is not timed")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), action="append")
    parser.add_argument(
        "--case",
        type=int,
        action="append",
        help=f"DDP cases by index (default all): {[c[0].strip() for c in CASES]}",
    )
    parser.add_argument("--skip", choices=["sweep", "ddp"], action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lapp-bench-scale-") as tmp:
        out = Path(tmp)
        if "sweep" not in args.skip:
            bench_sweep(out, args.trials, args.epochs, args.repeat)
        if "ddp" not in args.skip:
            cases = [CASES[i] for i in args.case] if args.case else CASES
            bench_ddp(out, args.ddp_epochs, args.workload or ["mlp", "cnn"], cases)


if __name__ == "__main__":
    main()
