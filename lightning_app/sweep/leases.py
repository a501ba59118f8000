"""Liveness of RUNNING trials, so a killed sweep can be resumed next to live ones.

Each sweep process marks the trials it runs with its identity and refreshes a heartbeat on them
from a background thread. A RUNNING trial is *stale* when its process is gone (same host) or its
heartbeat is older than ``stale_after`` seconds (any host). Stale trials are failed with a reason
and their parameters enqueued again, so the slot is asked again and ``n_trials`` is still reached.
Works with any Optuna storage (it uses trial system attributes only).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

OWNER = "lapp:owner"
HEARTBEAT = "lapp:heartbeat"
INTERRUPTED = "lapp:interrupted"
SURPLUS = "lapp:surplus"
RETRY_OF = "retry_of"  # user attribute of a retried trial: the number of the interrupted one


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
    """Was the RUNNING trial with these attributes left behind by a dead process?

    Args:
        system_attrs: the trial's system attributes.
        started: the trial's start time (epoch seconds), used when it has no heartbeat yet.
        now: current time (epoch seconds).
        stale_after: seconds without a heartbeat after which any trial is stale.
        me: ``this_process()``.
    """
    owner = system_attrs.get(OWNER)
    beat = system_attrs.get(HEARTBEAT, started)
    if owner and owner.get("host") == me["host"] and owner.get("pidns") == me["pidns"]:
        if owner.get("pid") == me["pid"]:
            return False
        if _process_gone(int(owner["pid"])):
            return True
    return beat is not None and now - float(beat) > stale_after


def claim(study: Any, trial_id: int, me: dict[str, Any]) -> None:
    """Mark a freshly asked trial as run by this process."""
    study._storage.set_trial_system_attr(trial_id, OWNER, me)
    study._storage.set_trial_system_attr(trial_id, HEARTBEAT, time.time())


def _requeue(study: Any, trial: Any, reason: str) -> bool:
    """Fail a RUNNING trial as interrupted and enqueue its parameters; False if already finished."""
    import optuna
    from optuna.trial import TrialState

    storage = study._storage
    try:
        storage.set_trial_user_attr(trial._trial_id, "fail_reason", reason)
        storage.set_trial_system_attr(trial._trial_id, INTERRUPTED, True)
        if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False  # finished meanwhile, or another process recovered it first
    if trial.params:
        study.enqueue_trial(dict(trial.params), user_attrs={RETRY_OF: trial.number})
    return True


def recover(study: Any, stale_after: float, me: dict[str, Any]) -> list[int]:
    """Fail the study's stale RUNNING trials and enqueue their parameters again.

    Returns:
        Numbers of the trials this process failed (another process may win the race for some).
    """
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
    return failed


def release(
    study: Any, trials: list[Any], why: str = "the sweep was stopped by the user"
) -> list[int]:
    """Hand unfinished trials back at once, as interrupted (Ctrl-C, or a batch that never ran)."""
    from optuna.trial import TrialState

    released = []
    for trial in trials:
        frozen = study._storage.get_trial(trial._trial_id)
        reason = f"interrupted: {why}; its parameters were enqueued again"
        if frozen.state == TrialState.RUNNING and _requeue(study, frozen, reason):
            released.append(frozen.number)
    return released


class Heartbeat:
    """Background thread refreshing the heartbeat of the trials this process is running."""

    def __init__(self, study: Any, interval: float):
        self._storage, self._interval = study._storage, interval
        self._ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lapp-sweep-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
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
                    self._storage.set_trial_system_attr(trial_id, HEARTBEAT, time.time())
                except Exception as err:  # finished meanwhile, or a busy database
                    log.debug("heartbeat of trial id %s skipped: %s", trial_id, err)
