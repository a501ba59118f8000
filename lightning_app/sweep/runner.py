"""The sweep loop: check settings, open the study, ask -> launch -> tell, write the results.

Used by ``hydra_plugins.lapp_optuna_sweeper``. Every trial is one job of the task (``lapp
train``), run through whichever Hydra launcher is selected: ``n_jobs`` at a time, either in
batches (the next batch when the whole batch has ended) or continuously (a new trial as soon as
one ends; ``dispatch``).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

from lightning_app.config.compat import job_return_value
from lightning_app.errors import SweepError
from lightning_app.runs import RunDir
from lightning_app.sweep import leases, results
from lightning_app.sweep.compat import set_system_attr, trial_id
from lightning_app.sweep.compose_check import ComposeCheck
from lightning_app.sweep.factories import (
    build_pruner,
    build_sampler,
    chosen_options,
)
from lightning_app.sweep.objectives import (
    Outcome,
    read_outcome,
    report_metric,
)
from lightning_app.sweep.progress import Tally, progress_line
from lightning_app.sweep.settings import Plan, check_settings
from lightning_app.sweep.storage import (
    ATTR_OBJECTIVES,
    ATTR_SPACE,
    default_url,
    display_url,
    normalize_url,
    open_study,
)
from lightning_app.sweep.trial_overrides import job_overrides

log = logging.getLogger(__name__)


class SweepRunner:
    """One sweep process.

    Args:
        settings: the ``hydra.sweeper`` node (see the plugin's ``config.py``).
        config: the composed task config (with its ``hydra`` node).
        launcher: Hydra's launcher, already set up.
        config_loader: Hydra's config loader (checks each trial's overrides compose).
    """

    def __init__(self, settings: Any, config: Any, launcher: Any, config_loader: Any):
        self.s, self.config, self.launcher = settings, config, launcher
        self.check = ComposeCheck(config_loader, config)
        self.job_idx = 0
        self.timed_out = False

    def run(self, arguments: list[str]) -> list[Any]:
        """Run (or resume) the sweep to ``n_trials``; returns the JobReturns of this process."""
        plan = check_settings(self.s, self.config, arguments)
        study, url, ctx = self._open(plan)
        returns, stop = self._loop(study, plan, ctx, url)
        results.write_all(study, ctx, plots=self.s.plots)
        if stop:
            raise SweepError(stop)
        return returns

    def _open(self, plan: Plan) -> tuple[Any, str, results.Context]:
        """Create or resume the study, recover interrupted trials, set up the sampler."""
        s = self.s
        sweep_dir = Path(self.config.hydra.sweep.dir).resolve()
        sweep_dir.mkdir(parents=True, exist_ok=True)
        url = normalize_url(s.storage or default_url(sweep_dir))
        attrs = {
            ATTR_OBJECTIVES: [[o.metric, o.direction] for o in plan.objectives],
            ATTR_SPACE: plan.space.describe(),
        }
        directions = [o.direction for o in plan.objectives]
        study, created = open_study(
            url, s.study_name, directions, None, build_pruner(plan.pruner), attrs
        )
        if created:  # only the creating process: a resumed or shared study has them already
            for point in plan.points:
                study.enqueue_trial(point, user_attrs={"enqueued": True})
        for number in leases.recover(study, s.stale_after, leases.this_process()):
            self._say(f"trial {number} was interrupted: FAIL, its parameters enqueued again")
        trials = study.get_trials(deepcopy=False)
        seed = s.sampler.seed
        if seed is not None and not created:  # resumed or shared: not the same sequence again
            seed = (seed + 7919 * len(trials) + os.getpid()) % 2**31
        constraints_func = results.constraints_func if plan.constraints else None
        study.sampler = build_sampler(
            s.sampler.name, chosen_options(s.sampler), seed, constraints_func, plan.grid
        )
        n_trials = s.n_trials
        if plan.grid is not None and math.prod(len(v) for v in plan.grid.values()) < n_trials:
            n_trials = math.prod(len(v) for v in plan.grid.values())
            self._say(f"the grid has {n_trials} points: n_trials {s.n_trials} -> {n_trials}")
        self._say(
            f"{'created' if created else 'resumed'} in {display_url(url)}: "
            f"{Tally.of(trials).finished} trial(s) finished so far, n_trials={n_trials}, "
            f"sampler={s.sampler.name}, pruner={s.pruner.name}, "
            f"objectives={[f'{o.metric} ({o.direction})' for o in plan.objectives]}"
        )
        ctx = results.Context(
            s.study_name, display_url(url), sweep_dir, plan.objectives, plan.constraints, n_trials
        )
        return study, url, ctx

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
                    time.sleep(min(s.heartbeat_interval, 2.0))
                    continue
                batch = self._ask(study, value, me, ctx.n_trials)
                heartbeat.watch([trial_id(t) for t in batch])
                try:
                    returns += self._run_batch(study, batch, plan, ctx, url)
                except (KeyboardInterrupt, SystemExit):  # Ctrl-C (Lightning turns it into exit(1))
                    for number in leases.release(study, batch):
                        self._say(f"trial {number} interrupted: a rerun asks it again")
                    results.write_tables(study, ctx)
                    raise
                heartbeat.watch([])
                results.write_tables(study, ctx)

    def _next(
        self, study: Any, ctx: results.Context, me: dict, started: float, most: int
    ) -> tuple[str, Any]:
        """What to do now: ``("run", n)`` trials, ``("wait", running)``, ``("done", stop)``."""
        s = self.s
        for number in leases.recover(study, s.stale_after, me):  # another worker died
            self._say(f"trial {number} was interrupted: FAIL, its parameters enqueued again")
        tally = Tally.of(study.get_trials(deepcopy=False))
        if tally.failed > s.max_failure_rate * ctx.n_trials:
            return "done", self._failure_message(tally, ctx.n_trials)
        remaining = ctx.n_trials - tally.counted
        if remaining <= 0 and tally.running:
            return "wait", tally.running
        if remaining <= 0:
            return "done", None
        if s.timeout is not None and time.monotonic() - started > s.timeout:
            if not self.timed_out:
                self._say(f"timeout of {s.timeout:g}s reached: no new trials")
            self.timed_out = True
            return "done", None
        return "run", min(most, remaining)

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
        the slowest trial of a batch (pruned trials end early, sizes differ).

        The study, the job counter, the running set and the tables are touched under one lock;
        the launches run outside it, each a launcher call of one job from its own thread. A
        trial stays in the running set until it is told, so Ctrl-C hands back exactly the
        trials no lane has told. Any error in a lane stops every lane and is raised here.
        """
        lock, stop, interrupted = threading.Lock(), threading.Event(), threading.Event()
        me, running, outcome = leases.this_process(), {}, {"returns": [], "stop": None}
        errors: list[BaseException] = []

        def untrack(trials: list[Any]) -> None:
            for trial in trials:
                running.pop(trial_id(trial), None)
            heartbeat.watch(list(running))

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
                        untrack(mine)
                        mine = []
                        results.write_tables(study, ctx)
            except BaseException as err:  # SystemExit from a job, a storage error: stop all
                with lock:
                    if mine and not interrupted.is_set():
                        leases.release(study, mine, f"the sweep stopped: {type(err).__name__}")
                    untrack(mine)
                    errors.append(err)
                    stop.set()

        threads = [
            threading.Thread(target=lane, name=f"lapp-sweep-lane-{i}", daemon=True)
            for i in range(self.s.n_jobs)
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(timeout=0.5)
        except KeyboardInterrupt:
            interrupted.set()
            stop.set()
            with lock:
                for number in leases.release(study, list(running.values())):
                    self._say(f"trial {number} interrupted: a rerun asks it again")
                results.write_tables(study, ctx)
            _stop_workers(self.launcher)  # their trials were handed back: do not finish them
            raise
        if errors:
            raise errors[0]
        return outcome["returns"], outcome["stop"]

    def _say(self, text: str) -> None:
        print(f"[sweep {self.s.study_name}] {text}", flush=True)

    def _failure_message(self, tally: Tally, n_trials: int) -> str:
        last = (
            f"; last failure: trial {tally.last_failure[0]}: {tally.last_failure[1]}"
            if tally.last_failure
            else ""
        )
        return (
            f"sweep {self.s.study_name!r} stopped: {tally.failed} trial(s) failed, more than "
            f"hydra.sweeper.max_failure_rate={self.s.max_failure_rate} x n_trials={n_trials} allows{last}. "
            f"Fix the cause (see trials.csv in {self.config.hydra.sweep.dir}) or raise max_failure_rate; "
            "rerunning the command resumes the study"
        )

    def _ask(self, study: Any, n: int, me: dict, n_trials: int) -> list[Any]:
        """Ask ``n`` trials; those beyond ``n_trials`` (other workers got there first) are dropped."""
        from optuna.trial import TrialState

        batch = []
        for _ in range(n):
            trial = study.ask()
            leases.claim(study, trial_id(trial), me)
            batch.append(trial)
        allowed = set(Tally.slots(study.get_trials(deepcopy=False))[:n_trials])
        kept = []
        for trial in batch:
            if trial.number in allowed:
                kept.append(trial)
                continue
            set_system_attr(study, trial_id(trial), leases.SURPLUS, True)
            trial.set_user_attr("fail_reason", "not run: other workers reached n_trials first")
            study.tell(trial, state=TrialState.FAIL)
        return kept

    def _run_batch(
        self, study: Any, batch: list[Any], plan: Plan, ctx: results.Context, url: str
    ) -> list[Any]:
        """Launch one batch of trials as jobs and tell the study how each ended."""
        jobs = self._prepare(study, batch, plan, ctx, url)
        launched = self._launch(jobs, self.job_idx)
        self.job_idx += len(jobs)
        return self._finish(study, jobs, launched, plan, ctx)

    def _prepare(
        self, study: Any, batch: list[Any], plan: Plan, ctx: results.Context, url: str
    ) -> list[tuple[Any, list[str]]]:
        """Each trial's job overrides; a trial whose overrides cannot be made fails here."""
        metric, jobs = report_metric(plan.objectives), []
        for trial in batch:
            try:
                overrides = job_overrides(trial, plan, url, metric, self.config, self.s)
            except Exception as err:  # e.g. a parameter asked again with another distribution
                reason = f"{type(err).__name__}: {_flat(err)}"
                self._tell(study, trial, Outcome("FAIL", reason=reason), ctx, 0.0)
            else:
                jobs.append((trial, overrides))
        return jobs

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

    def _finish(
        self,
        study: Any,
        jobs: list[tuple[Any, list[str]]],
        launched: tuple[Any, float],
        plan: Plan,
        ctx: results.Context,
    ) -> list[Any]:
        """Tell the study how each launched trial ended; returns the JobReturns."""
        from hydra.core.utils import JobStatus

        returns, seconds = launched
        if isinstance(returns, Exception):
            self._launch_failed(study, jobs, returns, ctx, seconds)
            return []
        for (trial, _), ret in zip(jobs, returns, strict=True):
            run_dir = Path(trial.user_attrs["run_dir"])
            ok = ret.status == JobStatus.COMPLETED
            outcome = read_outcome(
                ok,
                job_return_value(ret),
                results.read_metrics(run_dir),
                plan.objectives,
                RunDir(run_dir).metrics,
            )
            self._tell(study, trial, outcome, ctx, seconds)
        return list(returns)

    def _launch_failed(
        self, study: Any, jobs: list, err: Exception, ctx: results.Context, seconds: float
    ) -> None:
        """A launch raised: fail the trials that do not compose, ask the others again.

        Overrides are composed here, on failure only, so a healthy sweep pays nothing for the
        check. When every trial composes, the launcher broke: the whole batch fails with why.
        """
        from optuna.distributions import CategoricalDistribution

        problems = {}
        for trial, overrides in jobs:
            numeric = {
                k
                for k, d in trial.distributions.items()
                if not isinstance(d, CategoricalDistribution)
            }
            problems[trial.number] = self.check.problem(overrides, numeric)
        if not any(problems.values()):
            reason = f"the launcher failed: {type(err).__name__}: {_flat(err)}"
            for trial, _ in jobs:
                self._tell(study, trial, Outcome("FAIL", reason=reason), ctx, seconds)
            return
        for trial, _ in jobs:
            if problems[trial.number]:
                reason = f"the trial's overrides do not compose: {problems[trial.number]}"
                self._tell(study, trial, Outcome("FAIL", reason=reason), ctx, seconds)
            elif leases.release(study, [trial], "another trial of its batch did not compose"):
                self._say(
                    f"trial {trial.number} not run: another trial of its batch did not compose; asked again"
                )

    def _tell(
        self, study: Any, trial: Any, outcome: Outcome, ctx: results.Context, seconds: float
    ) -> None:
        import optuna
        from optuna.trial import TrialState

        outcome = results.record(study, trial, outcome, ctx)
        try:
            study.tell(trial, state=getattr(TrialState, outcome.state), values=outcome.values)
        except optuna.exceptions.UpdateFinishedTrialError:
            log.warning("trial %s was finished by another process (stale heartbeat?)", trial.number)
        except RuntimeError as err:
            if "Study.stop" not in str(err):  # the grid sampler, once the grid is exhausted
                raise
        tally = Tally.of(study.get_trials(deepcopy=False))
        print(progress_line(ctx, trial.number, outcome, tally, study, seconds), flush=True)


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


def _flat(err: Exception) -> str:
    """An error message on one line (Hydra's span several)."""
    return " ".join(str(err).split()) or type(err).__name__
