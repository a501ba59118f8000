"""Liveness of RUNNING trials, so a killed sweep can be resumed next to live ones.

Optuna's heartbeat does the general case: the sweep opens its RDB storage with
``heartbeat_interval`` and ``grace_period`` (``stale_after``), records a heartbeat for each trial
it runs, and ``optuna.storages.fail_stale_trials`` fails the RUNNING trials whose heartbeat is
older than the grace period (on the database's clock, so hosts' clocks need not agree) and hands
each to our subclass of ``RetryHeartbeatStaleTrialCallback``, which adds a WAITING copy with
the same parameters, so the slot is asked again and ``n_trials`` is still reached.

Ours, for what Optuna lacks:

- Same-host detection at once: a trial whose owner (host, pid namespace, pid) is a dead process
  on this machine is failed without waiting for the grace period (measured on one SQLite file,
  heartbeat 1 s, grace 5 s: failed and re-enqueued 0.3 s after a SIGKILL, against 4.9-6.0 s
  for ``fail_stale_trials`` alone; the default ``stale_after`` is 120 s).
- Reasons: a trial we fail (dead owner, Ctrl-C, a batch that never ran) gets ``fail_reason``
  and ``lapp:interrupted`` first. Optuna fails stale trials without a mark, and a finished trial
  can no longer be annotated, so :func:`interrupted` also reads the retries' ``retry_history``.
- The heartbeat thread: Optuna beats only inside ``study.optimize``, one thread per trial; the
  sweep asks and tells, so :class:`Heartbeat` beats for every trial of this process through the
  storage's public ``record_heartbeat``.

Storages without a heartbeat (Optuna's in-memory one: a single process) keep the same-host check.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import socket
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

from lightning_app.sweep import compat

log = logging.getLogger(__name__)

OWNER = "lapp:owner"
INTERRUPTED = "lapp:interrupted"
SURPLUS = "lapp:surplus"
RETRY_OF = "retry_of"  # user attribute of a retried trial: the number of the interrupted one
RETRY_HISTORY = "retry_history"  # Optuna's system attribute of a retry: the trials before it


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def this_process() -> dict[str, Any]:
    """Identity of this sweep process (host and pid namespace tell where the pid is valid)."""
    return {"host": socket.gethostname(), "pidns": _pid_namespace(), "pid": os.getpid()}


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a killed process its parent has not reaped yet is a zombie: gone for our purpose
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def is_stale(
    system_attrs: dict[str, Any],
    started: float | None,
    now: float,
    stale_after: float,
    me: dict[str, Any],
) -> bool:
    """Is this RUNNING trial lost in a way only we can tell (Optuna's heartbeat covers the rest)?

    Lost: its owner is a dead process of this host, or it has no owner ``stale_after`` seconds
    after it started (its process died between asking it and claiming it, so it never had a
    heartbeat either).

    Args:
        system_attrs: the trial's system attributes.
        started: the trial's start time (epoch seconds).
        now: current time (epoch seconds).
        stale_after: seconds after which an unclaimed trial is lost.
        me: ``this_process()``.
    """
    owner = system_attrs.get(OWNER)
    if not owner:
        return started is not None and now - started > stale_after
    if owner.get("host") != me["host"] or owner.get("pidns") != me["pidns"]:
        return False  # another machine's: its heartbeat tells (Optuna's grace period)
    return owner.get("pid") != me["pid"] and _process_gone(int(owner["pid"]))


@contextlib.contextmanager
def _experimental_ok() -> Iterator[None]:
    """Optuna flags its heartbeat API as experimental; the sweep relies on it knowingly."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def _retry_callback():
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    class Retry(RetryHeartbeatStaleTrialCallback):
        """Optuna's retry (a WAITING copy with the parameters and ``retry_history``), minus our
        marks of the failed trial, plus ``retry_of``; remembers the numbers it retried."""

        def __init__(self) -> None:
            super().__init__(max_retry=None)
            self.retried: list[int] = []

        def __call__(self, study: Any, trial: Any) -> None:
            clean = copy.deepcopy(trial)
            clean.system_attrs = {
                k: v for k, v in trial.system_attrs.items() if not k.startswith("lapp:")
            }
            clean.user_attrs = {RETRY_OF: trial.number}
            super().__call__(study, clean)
            self.retried.append(trial.number)

        def take(self) -> list[int]:
            taken, self.retried = self.retried, []
            return taken

    with _experimental_ok():
        return Retry()


def storage_options(heartbeat_interval: float, stale_after: float) -> dict[str, Any]:
    """Keyword arguments of ``RDBStorage`` enabling Optuna's heartbeat (whole seconds)."""
    return {
        "heartbeat_interval": max(1, math.ceil(heartbeat_interval)),
        "grace_period": max(1, math.ceil(stale_after)),
        "heartbeat_stale_trial_callback": _retry_callback(),
    }


def _beats(storage: Any) -> bool:
    interval = getattr(storage, "get_heartbeat_interval", None)
    return interval is not None and interval() is not None


def claim(study: Any, trial_id: int, me: dict[str, Any]) -> None:
    """Mark a freshly asked trial as run by this process, with a first heartbeat."""
    storage = compat.study_storage(study)
    storage.set_trial_system_attr(trial_id, OWNER, me)
    if _beats(storage):  # from now on a dead owner on another host is found by its heartbeat
        storage.record_heartbeat(trial_id)


def _requeue(study: Any, trial: Any, reason: str) -> bool:
    """Fail a RUNNING trial as interrupted and retry its parameters; False if already finished."""
    import optuna
    from optuna.trial import TrialState

    storage = compat.study_storage(study)
    try:
        storage.set_trial_user_attr(compat.trial_id(trial), "fail_reason", reason)
        storage.set_trial_system_attr(compat.trial_id(trial), INTERRUPTED, True)
        if not storage.set_trial_state_values(compat.trial_id(trial), state=TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False  # finished meanwhile, or another process recovered it first
    _retry_callback()(study, storage.get_trial(compat.trial_id(trial)))
    return True


def recover(study: Any, stale_after: float, me: dict[str, Any]) -> list[int]:
    """Fail the study's stale RUNNING trials and enqueue their parameters again.

    Stale: lost as :func:`is_stale` tells (a dead process of this host: at once), or without a
    heartbeat for the storage's grace period (Optuna's ``fail_stale_trials``).

    Returns:
        Numbers of the trials this process failed (another process may win the race for some).
    """
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    now, failed = time.time(), []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        started = t.datetime_start.timestamp() if t.datetime_start else None
        if not is_stale(t.system_attrs, started, now, stale_after, me):
            continue
        owner = t.system_attrs.get(OWNER) or {}
        reason = (
            f"interrupted: the sweep process running it (pid {owner.get('pid', '?')} on "
            f"{owner.get('host', '?')}) stopped; its parameters were enqueued again"
        )
        if _requeue(study, t, reason):
            failed.append(t.number)
    storage = compat.study_storage(study)
    if _beats(storage):
        with _experimental_ok():
            fail_stale_trials(study)
        callback = storage.get_heartbeat_stale_trial_callback()
        failed += callback.take() if hasattr(callback, "take") else []
    return failed


def release(
    study: Any, trials: list[Any], why: str = "the sweep was stopped by the user"
) -> list[int]:
    """Hand unfinished trials back at once, as interrupted (Ctrl-C, or a batch that never ran)."""
    from optuna.trial import TrialState

    released = []
    for trial in trials:
        frozen = compat.stored_trial(study, compat.trial_id(trial))
        reason = f"interrupted: {why}; its parameters were enqueued again"
        if frozen.state == TrialState.RUNNING and _requeue(study, frozen, reason):
            released.append(frozen.number)
    return released


def interrupted(trials: Iterable[Any]) -> set[int]:
    """Numbers of the trials that were interrupted and retried (their slot is free again)."""
    found = set()
    for t in trials:
        attrs = t.system_attrs
        if attrs.get(INTERRUPTED):
            found.add(t.number)
        found.update(attrs.get(RETRY_HISTORY, ()))
    return found


class Heartbeat:
    """Background thread recording the heartbeat of the trials this process is running."""

    def __init__(self, study: Any, interval: float):
        self._storage, self._interval = study._storage, interval
        self._ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lapp-sweep-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        if _beats(self._storage):
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._interval + 5)

    def watch(self, trial_ids: list[int]) -> None:
        with self._lock:
            self._ids = set(trial_ids)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                ids = sorted(self._ids)
            for trial_id in ids:
                try:
                    self._storage.record_heartbeat(trial_id)
                except Exception as err:  # a busy database: the next beat comes soon
                    log.debug("heartbeat of trial id %s skipped: %s", trial_id, err)
