"""The sweep loop: check settings, open the study, ask -> launch -> tell, write the results.

Used by ``hydra_plugins.lapp_optuna_sweeper``. Trials run in batches of ``n_jobs`` through
whichever Hydra launcher is selected; every trial is one job of the task (``lapp train``).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from lightning_app.errors import ConfigError, SweepError
from lightning_app.sweep import leases, results
from lightning_app.sweep.factories import build_pruner, build_sampler, check_sampler
from lightning_app.sweep.objectives import (
    Objective,
    Outcome,
    read_outcome,
    report_metric,
    resolve_constraints,
    resolve_objectives,
)
from lightning_app.sweep.progress import Tally, progress_line
from lightning_app.sweep.reporter import PRUNER_ATTR
from lightning_app.sweep.space import SearchSpace, override_text
from lightning_app.sweep.storage import (
    ATTR_OBJECTIVES,
    ATTR_SPACE,
    default_url,
    normalize_url,
    open_study,
)

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
        self.s, self.config, self.launcher, self.loader = settings, config, launcher, config_loader
        self.job_idx = 0

    def _check(self, space: SearchSpace) -> tuple[list[Objective], list]:
        """Every settings problem at once, as one ConfigError."""
        s, problems = self.s, []
        objectives, constraints = [], []
        for resolve, arg in (
            (resolve_objectives, (s.objectives, self.config)),
            (resolve_constraints, (s.constraints,)),
        ):
            try:
                value = resolve(*arg)
            except ConfigError as err:
                problems += err.problems
                value = []
            if resolve is resolve_objectives:
                objectives = value
            else:
                constraints = value
        if s.n_trials < 0:
            problems.append(f"hydra.sweeper.n_trials={s.n_trials}: must be >= 0")
        if s.n_jobs < 1:
            problems.append(f"hydra.sweeper.n_jobs={s.n_jobs}: must be >= 1")
        if not 0.0 <= s.max_failure_rate <= 1.0:
            problems.append(
                f"hydra.sweeper.max_failure_rate={s.max_failure_rate}: must be in [0, 1]"
            )
        if s.timeout is not None and s.timeout <= 0:
            problems.append(f"hydra.sweeper.timeout={s.timeout}: must be > 0 seconds or null")
        if s.heartbeat_interval <= 0 or s.stale_after <= 2 * s.heartbeat_interval:
            problems.append(
                f"hydra.sweeper.stale_after={s.stale_after} must exceed 2 x heartbeat_interval={s.heartbeat_interval} (> 0)"
            )
        if not space.params and not space.conditional:
            problems.append(
                "hydra.sweeper.params: nothing to search; give e.g. optimizer.lr: tag(log, interval(1e-4, 1e-1))"
            )
        problems += check_sampler(s.sampler.name, len(objectives) or 1)
        pruning = s.pruner.name != "none"
        if pruning and len(objectives) > 1:
            problems.append(
                f"hydra.sweeper.pruner.name={s.pruner.name}: Optuna cannot prune a study with {len(objectives)} "
                "objectives. Set hydra.sweeper.pruner.name=none, or keep one objective and bound the others "
                "with hydra.sweeper.constraints (e.g. [{metric: deploy/fp32/latency_p50_ms, max: 2.0}]), which prunes"
            )
        elif pruning and objectives and report_metric(objectives) is None:
            problems.append(
                f"hydra.sweeper.pruner.name={s.pruner.name}: pruning needs a per-epoch metric, but the objective "
                f"{objectives[0].metric!r} exists only at the end of a run; use metric return, val/... or "
                "best/val/..., or pruner.name=none"
            )
        if pruning and "sweep_trial" not in self.config:
            problems.append(
                f"hydra.sweeper.pruner.name={s.pruner.name}: this task cannot report per-epoch values "
                "(it has no sweep_trial key); use pruner.name=none"
            )
        if problems:
            raise ConfigError(problems)
        return objectives, constraints

    def run(self, arguments: list[str]) -> list[Any]:
        """Run (or resume) the sweep to ``n_trials``; returns the JobReturns of this process."""
        s = self.s
        space = SearchSpace.parse(s.params, arguments, s.conditional_params)
        objectives, constraints = self._check(space)
        grid = space.grid() if s.sampler.name == "grid" else None
        pruner_spec = {"name": s.pruner.name, "options": dict(s.pruner.options)}
        pruner = build_pruner(pruner_spec)
        sweep_dir = Path(self.config.hydra.sweep.dir).resolve()
        sweep_dir.mkdir(parents=True, exist_ok=True)
        url = normalize_url(s.storage or default_url(sweep_dir))
        attrs = {
            ATTR_OBJECTIVES: [[o.metric, o.direction] for o in objectives],
            ATTR_SPACE: space.describe(),
        }
        study, created = open_study(
            url, s.study_name, [o.direction for o in objectives], None, pruner, attrs
        )
        me = leases.this_process()
        for number in leases.recover(study, s.stale_after, me):
            print(
                f"[sweep {s.study_name}] trial {number} was interrupted: FAIL, its parameters enqueued again",
                flush=True,
            )
        existing = len(study.get_trials(deepcopy=False))
        seed = (
            s.sampler.seed
            if s.sampler.seed is None or created
            else (s.sampler.seed + 7919 * existing + os.getpid()) % 2**31
        )
        constraints_func = results.constraints_func if constraints else None
        study.sampler = build_sampler(
            s.sampler.name, s.sampler.options, seed, constraints_func, grid
        )
        n_trials = s.n_trials
        if grid is not None:
            size = 1
            for values in grid.values():
                size *= len(values)
            if size < n_trials:
                print(
                    f"[sweep {s.study_name}] the grid has {size} points: n_trials {n_trials} -> {size}",
                    flush=True,
                )
                n_trials = size
        print(
            f"[sweep {s.study_name}] {'created' if created else 'resumed'} in {url}: {existing} trial(s) so far, "
            f"n_trials={n_trials}, sampler={s.sampler.name}, pruner={s.pruner.name}, "
            f"objectives={[f'{o.metric} ({o.direction})' for o in objectives]}",
            flush=True,
        )
        ctx = results.Context(s.study_name, url, sweep_dir, objectives, constraints, n_trials)
        returns: list[Any] = []
        started = time.monotonic()
        stop: str | None = None
        with leases.Heartbeat(study, s.heartbeat_interval) as heartbeat:
            while True:
                tally = Tally.of(study.get_trials(deepcopy=False))
                if tally.failed > s.max_failure_rate * n_trials:
                    stop = self._failure_message(tally, n_trials)
                    break
                remaining = n_trials - tally.counted
                if remaining <= 0:
                    break
                if s.timeout is not None and time.monotonic() - started > s.timeout:
                    print(
                        f"[sweep {s.study_name}] timeout of {s.timeout:g}s reached: no new trials",
                        flush=True,
                    )
                    break
                batch = self._ask(study, min(s.n_jobs, remaining), me, n_trials)
                heartbeat.watch([t._trial_id for t in batch])
                returns += self._run_batch(study, batch, space, objectives, ctx, pruner_spec, url)
                heartbeat.watch([])
                results.write_tables(study, ctx)
        results.write_all(study, ctx, plots=s.plots)
        if stop:
            raise SweepError(stop)
        return returns

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
            leases.claim(study, trial._trial_id, me)
            batch.append(trial)
        allowed = set(Tally.slots(study.get_trials(deepcopy=False))[:n_trials])
        kept = []
        for trial in batch:
            if trial.number in allowed:
                kept.append(trial)
                continue
            study._storage.set_trial_system_attr(trial._trial_id, leases.SURPLUS, True)
            trial.set_user_attr("fail_reason", "not run: other workers reached n_trials first")
            study.tell(trial, state=TrialState.FAIL)
        return kept

    def _job_overrides(
        self, trial: Any, space: SearchSpace, pruner_spec: dict, url: str, metric: str | None
    ) -> list[str]:
        overrides = space.sample(trial)
        study = trial.study
        study._storage.set_trial_system_attr(trial._trial_id, PRUNER_ATTR, pruner_spec)
        extra = [f"hydra.sweep.subdir=trial_{trial.number}"]
        if "sweep_trial" in self.config:
            link = {
                "storage": url,
                "study_name": study.study_name,
                "trial_id": trial._trial_id,
                "number": trial.number,
                "metric": metric,
            }
            extra.append(f"sweep_trial={override_text(link)}")
        threads = self._threads(space)
        if threads:
            extra.append(f"threads={threads}")
        trial.set_user_attr("overrides", overrides)
        trial.set_user_attr(
            "run_dir", str(Path(self.config.hydra.sweep.dir).resolve() / f"trial_{trial.number}")
        )
        return overrides + extra

    def _threads(self, space: SearchSpace) -> int | None:
        """torch threads per job when trials run in parallel (unless the user set ``threads``)."""
        parallel = "BasicLauncher" not in str(self.config.hydra.launcher.get("_target_", ""))
        if (
            self.s.n_jobs < 2
            or not parallel
            or "threads" not in self.config
            or self.config.threads is not None
        ):
            return None
        if "threads" in space.params or "threads" in space.fixed:
            return None
        return self.s.threads_per_job or max(1, (os.cpu_count() or 1) // self.s.n_jobs)

    def _run_batch(self, study, batch, space, objectives, ctx, pruner_spec, url) -> list[Any]:
        from hydra.core.utils import JobStatus

        metric = report_metric(objectives)
        jobs = []
        for trial in batch:
            try:
                overrides = self._job_overrides(trial, space, pruner_spec, url, metric)
                self.loader.load_sweep_config(self.config, list(overrides))
            except Exception as err:  # a trial whose overrides do not compose fails alone
                reason = f"the trial's overrides do not compose: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                self._tell(study, trial, Outcome("FAIL", reason=reason), ctx, 0.0)
                continue
            jobs.append((trial, overrides, time.monotonic()))
        if not jobs:
            return []
        returns = self.launcher.launch([o for _, o, _ in jobs], initial_job_idx=self.job_idx)
        self.job_idx += len(returns)
        for (trial, _, t0), ret in zip(jobs, returns, strict=True):
            run_dir = Path(trial.user_attrs["run_dir"])
            metrics = results.read_metrics(run_dir)
            ok = ret.status == JobStatus.COMPLETED
            outcome = read_outcome(
                ok, ret._return_value, metrics, objectives, run_dir / "metrics.json"
            )
            self._tell(study, trial, outcome, ctx, time.monotonic() - t0)
        return list(returns)

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
