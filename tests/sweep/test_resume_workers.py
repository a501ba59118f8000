"""A killed sweep resumes to n_trials; two sweep processes share one study without duplicates."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.conftest import run_lapp
from tests.sweep.helpers import (
    random_sweeper,
    read_results,
    read_trials,
    start_sweep,
    sweep_args,
    write_preset,
)

SWEEPER = random_sweeper(3, n_trials=3)


def test_killed_sweep_resumes_to_n_trials_without_duplicates(tmp_path):
    sweep_dir = write_preset(tmp_path, "resume", SWEEPER)
    args = sweep_args(tmp_path, "resume", epochs=5)
    proc = start_sweep(tmp_path, args)
    started = sweep_dir / "trial_1" / ".hydra" / "config.yaml"
    deadline = time.monotonic() + 180
    while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # mid-trial 1: its trial is left RUNNING
    output = proc.communicate()[0]
    assert started.exists(), output[-3000:]
    assert not (sweep_dir / "trial_1" / "metrics.json").exists()

    rerun = run_lapp(args, tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "trial 1 was interrupted" in rerun.stdout
    rows = read_trials(sweep_dir)
    assert [r["number"] for r in rows] == ["0", "1", "2", "3"]
    assert [r["state"] for r in rows] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert rows[1]["note"] == "interrupted" and rows[2]["note"] == "retry of 1"
    assert rows[2]["optimizer.lr"] == rows[1]["optimizer.lr"]  # the interrupted slot, asked again
    assert len({r["run_dir"] for r in rows}) == 4
    assert read_results(sweep_dir)["trials"]["finished"] == 3


@pytest.mark.slow  # two processes each importing torch and Lightning: ~25 s on 2 cores
def test_two_sweep_processes_cooperate_on_one_storage(tmp_path):
    sweep_dir = write_preset(tmp_path, "shared", {**SWEEPER, "n_trials": 4})
    args = sweep_args(tmp_path, "shared", "threads=1", epochs=3)
    procs = [start_sweep(tmp_path, args) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-2000:] for o in outputs)
    assert sum("] created in" in o for o in outputs) == 1  # one created the study, one joined it

    rows = read_trials(sweep_dir)
    numbers = [r["number"] for r in rows]
    assert len(numbers) == len(set(numbers))
    done = [r for r in rows if r["note"] != "surplus"]
    assert [r["state"] for r in done] == ["COMPLETE"] * 4
    assert all(r["state"] == "FAIL" for r in rows if r["note"] == "surplus")
    assert len({r["run_dir"] for r in done}) == 4
    assert all((sweep_dir / f"trial_{r['number']}" / "metrics.json").is_file() for r in done)
    assert read_results(sweep_dir)["trials"]["finished"] == 4


@pytest.mark.slow  # starts two loky workers, each importing torch and Lightning
@pytest.mark.parametrize("dispatch", ["batches", "continuous"])
def test_joblib_launcher_runs_trials_in_parallel_with_one_thread_per_job(tmp_path, dispatch):
    sweeper = {**SWEEPER, "n_trials": 2, "n_jobs": 2, "dispatch": dispatch}
    sweep_dir = write_preset(tmp_path, "par", sweeper)
    proc = run_lapp(
        sweep_args(tmp_path, "par", "hydra/launcher=joblib", epochs=3), tmp_path, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["state"] for r in read_trials(sweep_dir)] == ["COMPLETE", "COMPLETE"]
    threads = max(1, len(os.sched_getaffinity(0)) // 2)
    for n in (0, 1):
        overrides = (sweep_dir / f"trial_{n}" / ".hydra" / "overrides.yaml").read_text()
        assert f"threads={threads}" in overrides
    # Each job writes .hydra/config.yaml when it starts and metrics.json when it ends: they overlap.
    spans = [
        (
            (sweep_dir / f"trial_{n}" / ".hydra" / "config.yaml").stat().st_mtime,
            (sweep_dir / f"trial_{n}" / "metrics.json").stat().st_mtime,
        )
        for n in (0, 1)
    ]
    assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1]


@pytest.mark.slow  # two loky workers, each importing torch and Lightning
def test_continuous_dispatch_starts_the_next_trial_while_a_long_one_runs(tmp_path):
    """With 2 workers, trials 2 and 3 (short) run while trial 1 (long) is still running:
    batches of 2 would have held them back until trial 1 ended."""
    from tests.sweep.helpers import TINY_DATA

    short, long = 1, 200
    sweeper = {
        **SWEEPER,
        "n_trials": 4,
        "n_jobs": 2,
        "params": {"trainer.max_epochs": f"choice({short}, {long})"},
        "enqueue": [{"trainer.max_epochs": e} for e in (short, long, short, short)],
    }
    sweep_dir = write_preset(tmp_path, "lanes", sweeper)
    args = ["train", "-m", "--config-dir", str(tmp_path / "conf"), "hparams_search=lanes"]
    proc = run_lapp([*args, *TINY_DATA, "hydra/launcher=joblib"], tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {int(r["number"]): r for r in read_trials(sweep_dir)}
    assert sorted(rows) == [0, 1, 2, 3] and {r["state"] for r in rows.values()} == {"COMPLETE"}

    def started(n):
        return (sweep_dir / f"trial_{n}" / ".hydra" / "config.yaml").stat().st_mtime

    def ended(n):
        return (sweep_dir / f"trial_{n}" / "metrics.json").stat().st_mtime

    assert started(2) < ended(1) and started(3) < ended(1)
    assert ended(0) <= started(2)  # each lane runs one trial at a time


def test_dispatch_is_checked(tmp_path):
    write_preset(tmp_path, "bad", {**SWEEPER, "dispatch": "eager"})
    proc = run_lapp(sweep_args(tmp_path, "bad"), tmp_path)
    assert proc.returncode != 0
    assert "hydra.sweeper.dispatch='eager': must be one of auto, continuous, batches" in proc.stderr
    write_preset(tmp_path, "inproc", {**SWEEPER, "dispatch": "continuous", "n_jobs": 2})
    proc = run_lapp(sweep_args(tmp_path, "inproc"), tmp_path)
    assert proc.returncode != 0
    assert (
        "dispatch=continuous needs a launcher that runs each job in another process" in proc.stderr
    )
    assert "Traceback" not in proc.stderr
