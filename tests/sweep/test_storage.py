"""Study storage: create once, resume, refuse a changed study; recover a killed sweep's trials."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time

import optuna
import pytest

from lightning_app.errors import ConfigError, SweepError
from lightning_app.sweep import leases
from lightning_app.sweep import storage as storage_module
from lightning_app.sweep.progress import Tally
from lightning_app.sweep.storage import default_url, open_storage, open_study, shared_storage

ATTRS = {"lapp:objectives": [["return", "maximize"]], "lapp:search_space": {"x": "float"}}


def test_created_once_then_resumed_and_changes_refused(tmp_path):
    url = default_url(tmp_path)
    study, created = open_study(url, "s", ["maximize"], None, None, ATTRS)
    assert created and url.endswith(f"{tmp_path}/optuna.db")
    study.enqueue_trial({"x": 1.0})
    again, created = open_study(url, "s", ["maximize"], None, None, ATTRS)
    assert not created and len(again.trials) == 1
    with pytest.raises(
        SweepError, match=r"optimizes \['maximize'\], this sweep asks for \['minimize'\]"
    ):
        open_study(url, "s", ["minimize"], None, None, ATTRS)
    changed = {**ATTRS, "lapp:search_space": {"x": "float", "y": "int"}}
    with pytest.raises(SweepError, match=r"search_space differs in \['y'\].*study_name=NEW_NAME"):
        open_study(url, "s", ["maximize"], None, None, changed)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite://", "in-memory"),
        ("notadb://x", "not a storage URL"),
        ("sqlite:///:memory:", "in-memory"),
    ],
)
def test_unusable_storage_urls(url, expected):
    with pytest.raises(ConfigError, match=expected):
        open_storage(url)


def _open(url: str, queue) -> None:
    try:
        open_study(url, "race", ["maximize"], None, None, ATTRS)
        queue.put("ok")
    except Exception as err:
        queue.put(f"{type(err).__name__}: {err}")


def test_processes_racing_to_create_the_study_do_not_crash(tmp_path):
    url = default_url(tmp_path)
    ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_open, args=(url, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert sorted(queue.get(timeout=5) for _ in procs) == ["ok"] * 3
    assert optuna.study.get_all_study_names(url) == ["race"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lost_running_trials():
    me = leases.this_process()
    now = time.time()
    dead = {leases.OWNER: {**me, "pid": _dead_pid()}}
    live = {leases.OWNER: {**me, "pid": os.getppid()}}
    other_host = {leases.OWNER: {**me, "host": "elsewhere", "pid": 1}}
    assert leases.is_stale(dead, now, now, 60, me)  # at once, without waiting for a heartbeat
    assert not leases.is_stale(live, now - 999, now, 60, me)
    assert not leases.is_stale({leases.OWNER: me}, now - 999, now, 60, me)  # mine
    assert not leases.is_stale(other_host, now - 999, now, 60, me)  # Optuna's heartbeat tells
    assert not leases.is_stale({}, now - 10, now, 60, me)  # asked, not claimed yet
    assert leases.is_stale({}, now - 100, now, 60, me)  # its process died before claiming it


def test_trials_in_the_sweeps_process_reuse_its_storage(tmp_path, monkeypatch):
    url = default_url(tmp_path)
    study, _ = open_study(url, "s", ["maximize"], None, None, ATTRS)
    backend = study._storage._backend
    assert shared_storage(url) is backend  # a trial job in this process: no new connection
    assert shared_storage(default_url(tmp_path / "other")) is not backend  # another database
    monkeypatch.setattr(storage_module.os, "getpid", lambda: -1)  # as in a forked child
    child = shared_storage(url)
    assert child is not backend  # never the parent's connections
    assert shared_storage(url) is child  # kept for the child's next trials


def test_a_process_keeps_only_its_last_few_storages(tmp_path):
    first = shared_storage(default_url(tmp_path / "first"))
    for i in range(storage_module._SHARED_MAX):
        shared_storage(default_url(tmp_path / str(i)))
    assert len(storage_module._SHARED) <= storage_module._SHARED_MAX
    assert shared_storage(default_url(tmp_path / "first")) is not first  # dropped, reopened


def _ask(study):
    return study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})


def test_recover_fails_interrupted_trials_and_enqueues_them_again(tmp_path):
    study, _ = open_study(default_url(tmp_path), "r", ["maximize"], None, None, ATTRS)
    done = _ask(study)
    study.tell(done, 0.5)
    killed = _ask(study)
    me = leases.this_process()
    leases.claim(study, killed._trial_id, {**me, "pid": _dead_pid()})
    mine = _ask(study)
    leases.claim(study, mine._trial_id, me)

    assert leases.recover(study, 60, me) == [killed.number]
    assert leases.recover(study, 60, me) == []  # idempotent
    trials = study.get_trials()
    assert trials[killed.number].state.name == "FAIL"
    assert "interrupted" in trials[killed.number].user_attrs["fail_reason"]
    assert trials[mine.number].state.name == "RUNNING"
    waiting = [t for t in trials if t.state.name == "WAITING"]
    assert len(waiting) == 1 and waiting[0].user_attrs[leases.RETRY_OF] == killed.number
    assert waiting[0].params == trials[killed.number].params
    assert leases.OWNER not in waiting[0].system_attrs  # the retry is nobody's yet
    assert Tally.of(trials).counted == 2  # the interrupted trial's slot is free again


def test_a_trial_of_another_host_whose_heartbeat_stopped_is_retried(tmp_path):
    options = leases.storage_options(heartbeat_interval=0.2, stale_after=1)
    study, _ = open_study(default_url(tmp_path), "h", ["maximize"], None, None, ATTRS, options)
    me = leases.this_process()
    elsewhere = _ask(study)
    leases.claim(study, elsewhere._trial_id, {**me, "host": "elsewhere", "pid": 1})
    beating = _ask(study)
    leases.claim(study, beating._trial_id, {**me, "host": "elsewhere", "pid": 2})
    assert leases.recover(study, 60, me) == []  # its heartbeat is fresh
    with leases.Heartbeat(study, 0.2) as heartbeat:
        heartbeat.watch([beating._trial_id])  # still alive: it keeps beating
        time.sleep(2.5)  # past the 1 s grace period on the database's whole-second clock
        assert leases.recover(study, 60, me) == [elsewhere.number]
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["FAIL", "RUNNING", "WAITING"]
    retry = trials[2]
    assert retry.params == trials[0].params and retry.user_attrs[leases.RETRY_OF] == 0
    assert retry.system_attrs["retry_history"] == [0]  # Optuna's record of the retry
    assert leases.interrupted(trials) == {0}
    assert Tally.of(trials).counted == 1  # the stale trial's slot is free again


def test_a_storage_password_never_reaches_job_overrides(monkeypatch):
    from lightning_app.sweep import storage

    monkeypatch.delenv(storage.PASSWORD_ENV, raising=False)
    url = "postgresql://lapp:s3cret@db.example:5432/studies"
    shown = storage.job_url(url)
    assert shown == "postgresql://lapp:***@db.example:5432/studies" == storage.display_url(url)
    assert storage.resolve_job_url(shown) == url  # from the environment the sweeper set
    monkeypatch.delenv(storage.PASSWORD_ENV)
    with pytest.raises(ConfigError, match="LAPP_OPTUNA_STORAGE"):
        storage.resolve_job_url(shown)
    assert storage.job_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_bare_postgresql_urls_use_the_installed_driver():
    import importlib.util

    from lightning_app.sweep.storage import normalize_url

    if importlib.util.find_spec("psycopg") or not importlib.util.find_spec("psycopg2"):
        pytest.skip("the mapping applies when only psycopg2 (the postgres extra) is installed")
    assert normalize_url("postgresql://u:p@h/db") == "postgresql+psycopg2://u:p@h/db"
    assert normalize_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
