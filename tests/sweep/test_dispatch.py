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


def test_a_ctrl_c_the_job_swallowed_is_still_seen():
    """A SIGINT whose KeyboardInterrupt code in the job caught (OmegaConf does while it sets a
    value) still marks the event; the handler before is back afterwards."""
    import os
    import signal
    import threading

    from lightning_app.sweep.dispatch import ctrl_c_seen

    assert threading.current_thread() is threading.main_thread()
    # Python's own handler, as in `lapp` (this process may have inherited SIGINT ignored).
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    before = signal.default_int_handler
    with ctrl_c_seen() as seen:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs at the next bytecode; the sleep is cut short
            raise AssertionError("no KeyboardInterrupt")
        except KeyboardInterrupt:
            pass  # swallowed
        assert seen.is_set()
    assert signal.getsignal(signal.SIGINT) is before
    with ctrl_c_seen() as quiet:
        pass
    assert not quiet.is_set()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ignored: left alone, nothing is seen
    with ctrl_c_seen() as ignored:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
    assert not ignored.is_set() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    signal.signal(signal.SIGINT, inherited)


def test_a_batch_launched_through_a_ctrl_c_is_handed_back_not_told(monkeypatch):
    import threading

    runner = _runner(_launcher("BasicLauncher"), "batches", n_jobs=1)
    told = []
    monkeypatch.setattr(runner, "_prepare", lambda *a: [("job", ["x=1"])])
    monkeypatch.setattr(runner, "_launch", lambda jobs, idx: ([SimpleNamespace()], 0.1))
    monkeypatch.setattr(runner, "_finish", lambda *a: told.append(a) or [1.0])
    seen = threading.Event()
    assert runner._run_batch(None, [], None, None, "", seen) == [1.0] and len(told) == 1
    seen.set()
    with pytest.raises(KeyboardInterrupt):
        runner._run_batch(None, [], None, None, "", seen)
    assert len(told) == 1  # the study was not told: the loop hands the batch back
