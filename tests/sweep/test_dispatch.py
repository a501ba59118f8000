"""Continuous dispatch: which launchers may run lanes, and lanes never hang on an error."""

from __future__ import annotations

import time
from types import SimpleNamespace

import optuna
import pytest
from omegaconf import OmegaConf

from lightning_app.errors import SweepError
from lightning_app.sweep import leases
from lightning_app.sweep.runner import SweepRunner, _in_process_problem


def _launcher(name: str, **attrs):
    return type(name, (), attrs)()


def _runner(launcher=None, dispatch="continuous", n_jobs=2) -> SweepRunner:
    runner = SweepRunner.__new__(SweepRunner)  # no Hydra context needed for these parts
    runner.s = OmegaConf.create(
        {
            "n_jobs": n_jobs,
            "dispatch": dispatch,
            "max_failure_rate": 0.5,
            "timeout": None,
            "heartbeat_interval": 0.2,
            "stale_after": 5.0,
            "study_name": "t",
        }
    )
    runner.launcher, runner.job_idx, runner.timed_out = launcher, 0, False
    return runner


def test_only_launchers_that_run_jobs_in_other_processes_get_lanes():
    basic = _launcher("BasicLauncher")
    one_worker = _launcher("JoblibLauncher", joblib={"n_jobs": 1})
    two_workers = _launcher("JoblibLauncher", joblib={"n_jobs": 2})
    assert "one at a time in this process" in _in_process_problem(basic)
    # joblib runs a single effective worker in the calling process: jobs would share Hydra's
    # global state (the run directory among it) if lanes launched them at the same time
    assert "n_jobs=1 (1 worker) runs them in this process" in _in_process_problem(one_worker)
    assert _in_process_problem(two_workers) is None
    assert _runner(two_workers, "auto")._continuous()
    assert not _runner(one_worker, "auto")._continuous()
    assert not _runner(two_workers, "auto", n_jobs=1)._continuous()
    assert not _runner(two_workers, "batches")._continuous()
    for launcher in (basic, one_worker):
        with pytest.raises(SweepError, match="needs a launcher that runs each job in another"):
            _runner(launcher, "continuous")._continuous()


def test_an_error_in_a_lane_stops_the_sweep_and_hands_its_trial_back(monkeypatch):
    study = optuna.create_study(direction="maximize")
    runner = _runner()
    prepared = []

    def locked(study, batch, plan, ctx, url):  # e.g. a busy database
        prepared.append(batch)
        raise RuntimeError("database is locked")

    monkeypatch.setattr(runner, "_prepare", locked)
    with leases.Heartbeat(study, 0.2) as heartbeat:
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="database is locked"):
            runner._lanes(study, None, SimpleNamespace(n_trials=4), "", heartbeat, started)
    assert time.monotonic() - started < 10
    assert prepared  # the error came from a lane, not before
    assert not [t for t in study.trials if t.state.name == "RUNNING"]
    handed_back = [t for t in study.trials if t.system_attrs.get(leases.INTERRUPTED)]
    assert len(handed_back) == sum(len(b) for b in prepared)
