"""How a running sweep stops: ``hydra.sweeper.timeout`` and Ctrl-C (SIGINT), end to end."""

from __future__ import annotations

import os
import signal
import time

import optuna
from optuna.trial import TrialState

from tests.conftest import run_lapp
from tests.sweep.helpers import (
    random_sweeper,
    read_results,
    read_trials,
    start_sweep,
    sweep_args,
    write_preset,
)

SWEEPER = random_sweeper(5)


def test_timeout_stops_asking_trials_and_writes_the_results(tmp_path):
    # One trial (building a Trainer, two epochs, metrics) takes well over half a second, so the
    # first trial starts before the timeout and none after it; without the timeout all 6 run.
    sweep_dir = write_preset(tmp_path, "timeout", {**SWEEPER, "n_trials": 6, "timeout": 0.5})
    proc = run_lapp(sweep_args(tmp_path, "timeout"), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[sweep timeout] timeout of 0.5s reached: no new trials" in proc.stdout
    rows = read_trials(sweep_dir)
    assert 1 <= len(rows) < 6, rows
    assert {r["state"] for r in rows} == {"COMPLETE"}
    results = read_results(sweep_dir)
    assert results["trials"]["finished"] == len(rows) and results["trials"]["running"] == 0
    assert results["best"]["value"] == max(float(r["value"]) for r in rows)


def test_ctrl_c_hands_the_running_trial_back_and_leaves_the_results(tmp_path):
    sweep_dir = write_preset(tmp_path, "ctrlc", {**SWEEPER, "n_trials": 4})
    # Trials long enough (~2 s) that Ctrl-C, sent once trial 1 has started, lands inside it
    # even when the machine is busy (at 30 epochs a trial took 0.4 s, and under load the
    # signal sometimes came after it).
    proc = start_sweep(tmp_path, sweep_args(tmp_path, "ctrlc", epochs=150))
    try:
        started = sweep_dir / "trial_1" / ".hydra" / "config.yaml"
        deadline = time.monotonic() + 180
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert started.exists() and proc.poll() is None, proc.communicate()[0][-3000:]
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's process group
        output = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode != 0, output[-3000:]
    assert "[sweep ctrlc] trial 1 interrupted: a rerun asks it again" in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert not (sweep_dir / "trial_2").exists()  # it stopped: no trial asked after Ctrl-C

    rows = read_trials(sweep_dir)
    states = [(r["number"], r["state"]) for r in rows]
    assert states == [("0", "COMPLETE"), ("1", "FAIL"), ("2", "WAITING")], rows
    assert rows[1]["note"] == "interrupted"
    assert rows[2]["optimizer.lr"] == rows[1]["optimizer.lr"]  # its parameters, asked again
    assert read_results(sweep_dir)["trials"]["running"] == 0

    # Handed back: trial 1 failed as interrupted, its parameters waiting to be asked again.
    study = optuna.load_study(study_name="ctrlc", storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    by_state = {s: [t for t in study.trials if t.state == s] for s in TrialState}
    assert not by_state[TrialState.RUNNING]
    assert "stopped by the user" in study.trials[1].user_attrs["fail_reason"]
    assert [t.params for t in by_state[TrialState.WAITING]] == [study.trials[1].params]
