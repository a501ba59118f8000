"""The sweep's bookkeeping: the study and its trials (open or resume, what to run next, ask,
each trial's job overrides, tell how each job ended).

:class:`StudyBookkeeping` is half of :class:`lightning_app.sweep.runner.SweepRunner`; the other
half, :class:`lightning_app.sweep.dispatch.Dispatch`, launches the jobs.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

from lightning_app.config.compat import job_return_value
from lightning_app.runs import RunDir
from lightning_app.sweep import leases, ranking, results
from lightning_app.sweep.compat import set_system_attr, trial_id
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
from lightning_app.sweep.settings import Plan
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


class StudyBookkeeping:
    """Study-side steps of a sweep process; expects ``s`` (settings), ``config``, ``check``
    (a ComposeCheck) and ``timed_out`` on the instance."""

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
        heartbeat = leases.storage_options(s.heartbeat_interval, s.stale_after)
        study, created = open_study(
            url, s.study_name, directions, None, build_pruner(plan.pruner), attrs, heartbeat
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
        constraints_func = ranking.constraints_func if plan.constraints else None
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
        trials = study.get_trials(deepcopy=False)  # one read of the study for the line
        print(
            progress_line(ctx, trial.number, outcome, Tally.of(trials), trials, seconds), flush=True
        )


def _flat(err: Exception) -> str:
    """An error message on one line (Hydra's span several)."""
    return " ".join(str(err).split()) or type(err).__name__
