"""The sweep's dispatch: how trials' jobs reach the Hydra launcher, in batches of ``n_jobs``
or continuously (``n_jobs`` lanes, a new trial as soon as one ends).

:class:`Dispatch` is half of :class:`lightning_app.sweep.runner.SweepRunner`; the other half,
:class:`lightning_app.sweep.bookkeeping.StudyBookkeeping`, keeps the study's books.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lightning_app.errors import SweepError
from lightning_app.sweep import leases, results
from lightning_app.sweep.compat import trial_id
from lightning_app.sweep.settings import Plan

log = logging.getLogger(__name__)

# How often a worker with nothing left to ask looks whether the others' last trials ended: the
# sweep ends at most this late after its last trial (a look is a few cheap queries).
WAIT_POLL_S = 0.5


class Dispatch:
    """Launch-side steps of a sweep process; expects ``s`` (settings), ``launcher``,
    ``job_idx`` and the bookkeeping methods on the instance."""

    def _loop(
        self, study: Any, plan: Plan, ctx: results.Context, url: str
    ) -> tuple[list[Any], str | None]:
        """Ask, launch and tell until ``n_trials``, the timeout, or too many failures."""
        s, returns, started = self.s, [], time.monotonic()
        me, waiting = leases.this_process(), False
        with leases.Heartbeat(study, s.heartbeat_interval) as heartbeat:
            if self._continuous():
                returns, stop = self._lanes(study, plan, ctx, url, heartbeat, started)
                if stop:
                    return returns, stop
            # Batches of n_jobs; after continuous lanes, this waits for other processes' last
            # trials and runs any trial handed back meanwhile.
            while True:
                action, value = self._next(study, ctx, me, started, s.n_jobs)
                if action == "done":
                    return returns, value
                if action == "wait":  # other workers' last trials: see them end
                    if not waiting:
                        self._say(f"waiting for {value} trial(s) running in other processes")
                    waiting = True
                    time.sleep(min(s.heartbeat_interval, WAIT_POLL_S))
                    continue
                batch = self._ask(study, value, me, ctx.n_trials)
                heartbeat.watch([trial_id(t) for t in batch])
                try:
                    with ctrl_c_seen() as seen:
                        returns += self._run_batch(study, batch, plan, ctx, url, seen)
                except (KeyboardInterrupt, SystemExit):  # Ctrl-C (Lightning turns it into exit(1))
                    self._hand_back(study, batch, ctx)
                    raise
                heartbeat.watch([])
                results.write_tables(study, ctx)

    def _continuous(self) -> bool:
        """Start each trial as soon as a slot frees (``dispatch``), rather than in batches."""
        dispatch = self.s.dispatch
        if dispatch == "batches":
            return False
        problem = _in_process_problem(self.launcher)
        if dispatch == "continuous" and problem:
            raise SweepError(
                "hydra.sweeper.dispatch=continuous needs a launcher that runs each job in another "
                f"process (e.g. hydra/launcher=joblib with 2+ workers); {problem}. "
                "Use dispatch=auto or batches"
            )
        if dispatch == "auto":
            joblib = type(self.launcher).__name__ == "JoblibLauncher"
            return self.s.n_jobs > 1 and joblib and problem is None
        return True

    def _lanes(
        self, study: Any, plan: Plan, ctx: results.Context, url: str, heartbeat: Any, started: float
    ) -> tuple[list[Any], str | None]:
        """``n_jobs`` lanes, each launching one trial at a time: a free worker never waits for
        the slowest trial of a batch (pruned trials end early, sizes differ). The study, the job counter, the running set and the tables are touched under one lock;
        the launches run outside it, each a launcher call of one job from its own thread. A
        trial stays in the running set until it is told, so Ctrl-C hands back exactly the
        trials no lane has told. Any error in a lane stops every lane and is raised here.
        """
        lock, stop, interrupted = threading.Lock(), threading.Event(), threading.Event()
        me, running, outcome = leases.this_process(), {}, {"returns": [], "stop": None}
        errors: list[BaseException] = []

        def lane() -> None:
            mine: list[Any] = []  # this lane's trials not told yet
            try:
                while not stop.is_set():
                    with lock:
                        action, value = self._next(study, ctx, me, started, 1)
                        if action != "run":
                            if action == "done" and value:
                                outcome["stop"] = value
                                stop.set()
                            return
                        mine = self._ask(study, value, me, ctx.n_trials)
                        running.update({trial_id(t): t for t in mine})
                        heartbeat.watch(list(running))
                        jobs = self._prepare(study, mine, plan, ctx, url)
                        first = self.job_idx
                        self.job_idx += len(jobs)
                    launched = self._launch(jobs, first)
                    with lock:
                        if interrupted.is_set():  # the main thread hands them back
                            return
                        outcome["returns"] += self._finish(study, jobs, launched, plan, ctx)
                        _untrack(running, heartbeat, mine)
                        mine = []
                        results.write_tables(study, ctx)
            except BaseException as err:  # SystemExit from a job, a storage error: stop all
                with lock:
                    if mine and not interrupted.is_set():
                        leases.release(study, mine, f"the sweep stopped: {type(err).__name__}")
                    _untrack(running, heartbeat, mine)
                    errors.append(err)
                    stop.set()

        try:
            _run_threads(lane, self.s.n_jobs)
        except KeyboardInterrupt:
            interrupted.set()
            stop.set()
            with lock:
                self._hand_back(study, list(running.values()), ctx)
            _stop_workers(self.launcher)  # their trials were handed back: do not finish them
            raise
        if errors:
            raise errors[0]
        return outcome["returns"], outcome["stop"]

    def _hand_back(self, study: Any, trials: list[Any], ctx: results.Context) -> None:
        """Ctrl-C: the trials not told yet go back to the study, to be asked again."""
        for number in leases.release(study, trials):
            self._say(f"trial {number} interrupted: a rerun asks it again")
        results.write_tables(study, ctx)

    def _run_batch(
        self,
        study: Any,
        batch: list[Any],
        plan: Plan,
        ctx: results.Context,
        url: str,
        seen: threading.Event | None = None,
    ) -> list[Any]:
        """Launch one batch of trials as jobs and tell the study how each ended.

        ``seen`` (:func:`ctrl_c_seen`): a Ctrl-C during the launch that the job swallowed
        (e.g. caught inside OmegaConf while Hydra composed the job) still stops the sweep
        before the study is told, so the batch is handed back rather than told it failed.
        """
        jobs = self._prepare(study, batch, plan, ctx, url)
        launched = self._launch(jobs, self.job_idx)
        self.job_idx += len(jobs)
        if seen is not None and seen.is_set():
            raise KeyboardInterrupt
        return self._finish(study, jobs, launched, plan, ctx)

    def _launch(self, jobs: list[tuple[Any, list[str]]], first_idx: int) -> tuple[Any, float]:
        """``(returns or the launcher's exception, seconds)``; no study access (lock-free)."""
        if not jobs:
            return [], 0.0
        started = time.monotonic()
        try:
            returns = self.launcher.launch([o for _, o in jobs], initial_job_idx=first_idx)
        except Exception as err:  # a trial did not compose, or the launcher itself broke
            return err, time.monotonic() - started
        return returns, time.monotonic() - started


@contextmanager
def ctrl_c_seen() -> Iterator[threading.Event]:
    """An event set by any SIGINT (Ctrl-C) while inside, whatever becomes of its
    KeyboardInterrupt: code in the job may catch it (OmegaConf does while it sets a value) and
    carry on, and the sweep would then go on too.

    Python's own handler still raises KeyboardInterrupt as before. Outside the main thread, or
    when SIGINT has another handler (ignored, or set by other code), nothing changes and the
    event stays clear.
    """
    seen = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield seen
        return

    def handler(signum: int, frame: Any) -> None:
        seen.set()
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, handler)
    try:
        yield seen
    finally:
        if signal.getsignal(signal.SIGINT) is handler:  # Lightning may have set SIG_IGN since
            signal.signal(signal.SIGINT, previous)


def _untrack(running: dict[int, Any], heartbeat: Any, trials: list[Any]) -> None:
    """Told trials leave the running set (and the heartbeat's watch)."""
    for trial in trials:
        running.pop(trial_id(trial), None)
    heartbeat.watch(list(running))


def _run_threads(target: Any, n: int) -> None:
    """Run ``target`` in ``n`` lane threads until all end."""
    threads = [
        threading.Thread(target=target, name=f"lapp-sweep-lane-{i}", daemon=True) for i in range(n)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():  # a timed join: Ctrl-C reaches the main thread
            thread.join(timeout=0.5)


def _in_process_problem(launcher: Any) -> str | None:
    """Why ``launcher`` would run jobs in this process (where concurrent jobs would share
    Hydra's global state), or None."""
    name = type(launcher).__name__
    if name == "BasicLauncher":
        return "the basic launcher runs them one at a time in this process"
    if name == "JoblibLauncher":
        import joblib

        n_jobs = (getattr(launcher, "joblib", None) or {}).get("n_jobs", -1)
        workers = joblib.effective_n_jobs(n_jobs)
        if workers < 2:
            return f"joblib with n_jobs={n_jobs} ({workers} worker) runs them in this process"
    return None


def _stop_workers(launcher: Any) -> None:
    """Kill the joblib launcher's worker processes (after Ctrl-C in continuous dispatch)."""
    if type(launcher).__name__ != "JoblibLauncher":
        return
    try:
        from joblib.externals.loky import reusable_executor

        executor = getattr(reusable_executor, "_executor", None)
        if executor is not None:
            executor.shutdown(wait=False, kill_workers=True)
    except Exception as err:  # best effort: the workers also exit with this process
        log.debug("could not stop the joblib workers: %s", err)
