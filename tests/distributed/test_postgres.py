"""Sweep workers sharing one Optuna study on a real PostgreSQL server (scripts/postgres.sh).

Skipped when PostgreSQL's server binaries (initdb, pg_ctl) or the psycopg2 driver are missing,
except under CI: .ci/run starts the server and passes its URL in LAPP_TEST_POSTGRES_URL.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, lapp_env
from tests.sweep.helpers import TINY_DATA

pytestmark = pytest.mark.slow

N_TRIALS = 4


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory):
    """The server CI started (`LAPP_TEST_POSTGRES_URL`, see .ci/run), else a throwaway one."""
    given = os.environ.get("LAPP_TEST_POSTGRES_URL")
    if given:  # CI: the server must be there; a missing driver is a failure, not a skip
        import psycopg2  # noqa: F401

        yield given
        return
    pytest.importorskip(
        "psycopg2", reason="the PostgreSQL driver (lapp-ml[postgres]) is not installed"
    )
    state = tmp_path_factory.mktemp("postgres")
    script = ROOT / "scripts" / "postgres.sh"
    proc = subprocess.run(
        [str(script), "start", str(state)], capture_output=True, text=True, timeout=120
    )
    if proc.returncode == 3:
        pytest.skip(f"PostgreSQL is not installed: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    yield proc.stdout.strip()
    subprocess.run([str(script), "stop", str(state)], capture_output=True, timeout=120)


def _sweep(tmp_path: Path, study: str, epochs: int) -> list[str]:
    """Overrides of a small sweep on tiny data, stored in the shared database."""
    return [
        "hparams_search=digits_mlp",
        *TINY_DATA,
        "data.source.num_samples=300",
        f"trainer.max_epochs={epochs}",
        "callbacks=none",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        f"hydra.sweeper.study_name={study}",
        f"hydra.sweeper.n_trials={N_TRIALS}",
        "hydra.sweeper.pruner.name=none",
        "hydra.sweeper.plots=false",
        "hydra.sweeper.heartbeat_interval=1",
        "hydra.sweeper.stale_after=5",
        "hydra.sweeper.storage=${oc.env:LAPP_STORAGE_URL}",  # the password stays off command lines
    ]


def _env(tmp_path: Path, url: str) -> dict[str, str]:
    return {
        **lapp_env(tmp_path),
        "LAPP_STORAGE_URL": url,
        "LAPP": f"{sys.executable} -m lightning_app.cli",
    }


def _worker(tmp_path: Path, url: str, overrides: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "lightning_app.cli", "train", "-m", *overrides, "threads=1"],
        cwd=tmp_path,
        env=_env(tmp_path, url),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _study(url: str, name: str):
    import optuna

    return optuna.load_study(study_name=name, storage=url)


def _told(log: Path) -> list[int]:
    """Numbers of the trials a worker ran to the end, from its progress lines."""
    return [int(n) for n in re.findall(r"^\[sweep \S+\] trial (\d+) \(", log.read_text(), re.M)]


def _kill_when_running(url: str, name: str, pid: int, timeout: float = 300) -> int:
    """SIGKILL worker ``pid`` once it runs a trial (its mark is on a RUNNING trial); the trial's number.

    With Hydra's basic launcher the trial runs inside the worker process, so it dies with it.
    """
    from optuna.trial import TrialState

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            running = _study(url, name).get_trials(states=(TrialState.RUNNING,))
        except KeyError:  # not created yet
            continue
        mine = [t for t in running if (t.system_attrs.get("lapp:owner") or {}).get("pid") == pid]
        if mine:
            time.sleep(2)  # mid-trial
            os.kill(pid, signal.SIGKILL)
            return mine[0].number
    pytest.fail("the worker never started a trial")


def _check_settled(url: str, name: str, killed: int | None = None) -> None:
    """The study holds N_TRIALS complete trials, none running; a killed trial failed and reran."""
    trials = _study(url, name).get_trials()
    states = [t.state.name for t in trials]
    assert "RUNNING" not in states, states
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == N_TRIALS, states
    assert (
        len({t.user_attrs["run_dir"] for t in complete}) == N_TRIALS
    )  # each ran once, in its own dir
    if killed is not None:
        dead = trials[killed]
        assert dead.state.name == "FAIL" and dead.system_attrs.get("lapp:interrupted"), dead
        retried = [t for t in complete if t.user_attrs.get("retry_of") == killed]
        assert len(retried) == 1 and retried[0].params == dead.params


def _sessions(url: str) -> int:
    """Connections the database has accepted so far (PostgreSQL 14+ counts them)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        query = "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        count = conn.execute(text(query)).scalar_one()
    engine.dispose()
    return int(count)


def test_a_worker_keeps_its_connections_across_trials(tmp_path, postgres_url):
    """The trials a worker runs report through the worker's own storage: no new connection per
    trial (each would cost the server a process start and Optuna's schema checks)."""
    trials = 6
    overrides = [*_sweep(tmp_path, "connections", epochs=2), f"hydra.sweeper.n_trials={trials}"]
    env = _env(tmp_path, postgres_url)
    cli = [sys.executable, "-m", "lightning_app.cli", "train", "-m", *overrides, "threads=1"]
    create = subprocess.run(
        [*cli, "hydra.sweeper.n_trials=0"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert create.returncode == 0, create.stderr[-3000:]
    before = _sessions(postgres_url)
    run = subprocess.run(cli, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    opened = _sessions(postgres_url) - before  # the worker's, plus our two counting queries
    assert opened <= 4 < trials, f"{opened} connections for {trials} trials"
    assert (
        len([t for t in _study(postgres_url, "connections").trials if t.state.name == "COMPLETE"])
        == trials
    )


def test_two_workers_share_one_study_without_duplicates(tmp_path, postgres_url):
    env = _env(tmp_path, postgres_url)
    proc = subprocess.run(
        [
            str(ROOT / "scripts" / "distributed_sweep.sh"),
            "2",
            *_sweep(tmp_path, "shared", epochs=2),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    _check_settled(postgres_url, "shared")
    logs = tmp_path / "outputs" / "sweep_workers"
    one, two = _told(logs / "worker_1.log"), _told(logs / "worker_2.log")
    assert one and two, "both workers ran trials"
    assert sorted(one + two) == sorted(set(one + two))  # no trial told by both
    assert len(one) + len(two) == N_TRIALS


def test_the_surviving_worker_finishes_the_work(tmp_path, postgres_url):
    overrides = _sweep(tmp_path, "survivor", epochs=30)
    env = _env(tmp_path, postgres_url)
    create = subprocess.run(
        [
            sys.executable,
            "-m",
            "lightning_app.cli",
            "train",
            "-m",
            *overrides,
            "hydra.sweeper.n_trials=0",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert create.returncode == 0, create.stderr[-3000:]
    survivor = _worker(tmp_path, postgres_url, overrides, tmp_path / "survivor.log")
    victim = _worker(tmp_path, postgres_url, overrides, tmp_path / "victim.log")
    killed = _kill_when_running(postgres_url, "survivor", victim.pid)
    victim.wait()
    assert survivor.wait(timeout=900) == 0, (tmp_path / "survivor.log").read_text()[-3000:]
    _check_settled(postgres_url, "survivor", killed)
